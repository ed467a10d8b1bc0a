//! The fake upstream's scriptable misbehaviour, one method a knob: Bearer or Basic auth,
//! blob redirects to the CDN listener, fixed error statuses, headers left out of HEAD
//! answers, cut, stalled or corrupted bodies, chunked bodies, a frozen or slow server,
//! `Range` ignored, extra headers. [`FakeUpstream::heal`] ends the lasting failures.

use super::{BearerMode, Cut, FakeUpstream};
use std::time::Duration;

impl FakeUpstream {
    /// Registry requests need a Bearer token from `/token` (issued per repository scope);
    /// with `credentials`, `/token` wants them as Basic auth. Tokens say `expires_in: 300`.
    pub fn require_bearer(&self, credentials: Option<(&str, &str)>) {
        self.require_bearer_expiring(credentials, Some(300));
    }

    /// Like [`FakeUpstream::require_bearer`] with a chosen `expires_in` (`None`: omitted).
    pub fn require_bearer_expiring(
        &self,
        credentials: Option<(&str, &str)>,
        expires_in: Option<u64>,
    ) {
        let credentials = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
        self.shared.state().bearer = Some(BearerMode {
            credentials,
            expires_in,
        });
    }

    /// Registry requests need these Basic credentials (`WWW-Authenticate: Basic`).
    pub fn require_basic(&self, user: &str, password: &str) {
        self.shared.state().basic = Some((user.into(), password.into()));
    }

    /// Blob GET/HEAD on the registry answer 307 to the CDN listener (`cdn_url()`).
    pub fn redirect_blobs(&self, on: bool) {
        self.shared.state().redirect_blobs = on;
    }

    /// The CDN listener answers HEAD with 403, as S3-style URLs signed for GET do.
    pub fn cdn_refuses_head(&self, on: bool) {
        self.shared.state().cdn_refuses_head = on;
    }

    /// Every registry request (not `/token`) gets `status` (e.g. 429 with `Retry-After`).
    pub fn fail_with(&self, status: u16, retry_after: Option<u64>) {
        self.shared.state().failure = Some((status, retry_after));
    }

    /// Every registry `GET` (not `HEAD`, not `/token`) gets `status`: Docker Hub's pull
    /// limit, which counts GETs of manifests but not HEADs.
    pub fn fail_gets_with(&self, status: u16, retry_after: Option<u64>) {
        self.shared.state().get_failure = Some((status, retry_after));
    }

    /// `HEAD` answers leave out header `name` (`Content-Type`, `Content-Length`, …), as
    /// some registries' do.
    pub fn omit_on_head(&self, name: &str) {
        self.shared.state().omit_on_head.push(name.to_owned());
    }

    /// Ends [`FakeUpstream::fail_with`], [`FakeUpstream::fail_gets_with`],
    /// [`FakeUpstream::freeze`] and [`FakeUpstream::stall_blobs_after`].
    pub fn heal(&self) {
        let mut s = self.shared.state();
        s.failure = None;
        s.get_failure = None;
        s.frozen = false;
        s.stall_blobs = None;
    }

    /// The next blob body longer than `bytes` is cut (connection closed) after `bytes` bytes;
    /// later ones are whole.
    pub fn cut_next_blob_after(&self, bytes: usize) {
        self.shared.state().cut = Some((bytes, Cut::Close));
    }

    /// The next blob body longer than `bytes` stops after `bytes` bytes with the connection left
    /// open and silent (an upstream that hangs mid-body); later ones are whole.
    pub fn stall_next_blob_after(&self, bytes: usize) {
        self.shared.state().cut = Some((bytes, Cut::Stall));
    }

    /// Serve manifests and blobs with one byte changed (same length, same digest headers).
    pub fn corrupt(&self, on: bool) {
        self.shared.state().corrupt = on;
    }

    /// The next blob body (only) has one byte changed.
    pub fn corrupt_next_blob(&self) {
        self.shared.state().corrupt_next_blob = true;
    }

    /// Every blob body stops after `bytes` bytes with the connection left open and silent,
    /// until [`FakeUpstream::heal`].
    pub fn stall_blobs_after(&self, bytes: usize) {
        self.shared.state().stall_blobs = Some(bytes);
    }

    /// Send blob bodies with `Transfer-Encoding: chunked` and no `Content-Length`.
    pub fn chunked_blobs(&self, on: bool) {
        self.shared.state().chunked_blobs = on;
    }

    /// Accept connections and read requests, but never answer.
    pub fn freeze(&self) {
        self.shared.state().frozen = true;
    }

    /// Wait this long before answering each request.
    pub fn delay(&self, d: Duration) {
        self.shared.state().delay = d;
    }

    /// Answer `Range` requests with the whole blob (200), as some servers do.
    pub fn ignore_range(&self, on: bool) {
        self.shared.state().ignore_range = on;
    }

    /// Send `ratelimit-remaining: <value>` on registry answers (Docker Hub style).
    pub fn ratelimit_remaining(&self, value: &str) {
        self.shared.state().ratelimit_remaining = Some(value.into());
    }

    /// Send this header on every registry answer (any bytes, e.g. non-ASCII UTF-8).
    pub fn extra_header(&self, name: &str, value: &str) {
        self.shared
            .state()
            .extra_headers
            .push((name.into(), value.into()));
    }
}
