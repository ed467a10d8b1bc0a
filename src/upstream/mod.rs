//! Talking to upstream registries: one [`Registry`] per allowlisted upstream, reached through
//! [`Upstreams`]. The only module besides `server` that may name async-h1 or http-types.
//!
//! Layout: `client.rs` (connections over smol, TLS via rustls, timeouts, redirects),
//! `stream.rs` (plain/TLS connection, idle timeout, length-checked body reader),
//! `auth.rs` (Bearer token flow, per-repository token cache), `challenge.rs`
//! (`WWW-Authenticate` parsing, Basic header), `breaker.rs` (circuit breaker),
//! `response.rs` (status → error, header parsing), `registry.rs` (manifest/blob GET/HEAD on
//! one upstream), `answers.rs` (what those calls return). [`Upstreams`] is below.
//!
//! CONTRACT (implemented by the upstream work; callers rely on exactly this):
//! - `Upstreams::new(&Config, Rc<Metrics>) -> Result<Upstreams, String>`: builds one `Registry` per
//!   `config.upstreams` entry; loads `config.upstream_ca` (PEM, added to webpki-roots);
//!   an unreadable/invalid CA file is an `Err` with a clear message (startup error).
//! - `Upstreams::get(&self, name) -> Option<Rc<Registry>>`, `Upstreams::all()`.
//! - `Registry::manifest(&self, repo, reference, head: bool) -> Result<Manifest, UpstreamError>`
//!   sends `Accept` with the four manifest media types; GET reads at most
//!   `MAX_MANIFEST_BYTES` (else `BadContent`), verifies sha256 against the digest reference
//!   or against `Docker-Content-Digest` when asking by tag (mismatch → `BadContent`).
//!   HEAD returns `body: None` and the digest from `Docker-Content-Digest` (missing →
//!   `Protocol`).
//! - `Registry::blob(&self, repo, digest, offset) -> Result<BlobStream, UpstreamError>`: GET,
//!   with `Range: bytes=<offset>-` when offset > 0; follows redirects; the body reader
//!   fails with an io error on reset or on `upstream_timeout` of silence.
//! - `Registry::blob_head(&self, repo, digest) -> Result<u64, UpstreamError>`: length.
//! - `Registry::tags_list(&self, repo, query) -> Result<(String, Vec<u8>), UpstreamError>`.
//! - 404 → `NotFound`, 429 → `TooManyRequests{retry_after}`, 401 after auth → `Unauthorized`,
//!   403 → `Denied`, other non-2xx → `Status`; network/TLS/timeout/open breaker →
//!   `Unavailable`.

mod answers;
mod auth;
mod breaker;
mod challenge;
mod client;
mod registry;
mod response;
mod stream;

pub use answers::{BlobStream, Manifest, RegistryStatus};
pub use registry::Registry;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::reference::UpstreamName;
use client::{tls_config, Client};
use std::rc::Rc;

/// Largest manifest we accept (the design's limit; distribution's own is 4 MiB). Read into
/// memory whole, so it bounds memory per manifest request.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The configured upstreams, by name.
#[derive(Debug)]
pub struct Upstreams {
    registries: Vec<Rc<Registry>>,
}

impl Upstreams {
    /// One [`Registry`] per `config.upstreams`, all trusting the web PKI roots plus
    /// `config.upstream_ca`. A CA file that cannot be read or holds no certificate is an
    /// error (a startup failure, not a surprise at the first pull).
    pub fn new(config: &Config, metrics: Rc<Metrics>) -> Result<Upstreams, String> {
        let tls = tls_config(config.upstream_ca.as_deref())?;
        let client = Client::new(tls, config.upstream_timeout, metrics);
        let registries = config
            .upstreams
            .iter()
            .map(|u| Rc::new(Registry::new(u, client.clone())))
            .collect();
        Ok(Upstreams { registries })
    }

    /// The upstream called `name` (`docker.io`, `ghcr.io`, …), if allowlisted.
    pub fn get(&self, name: &UpstreamName) -> Option<Rc<Registry>> {
        self.registries.iter().find(|r| r.name() == name).cloned()
    }

    /// Every configured upstream, in configuration order.
    pub fn all(&self) -> impl Iterator<Item = &Rc<Registry>> {
        self.registries.iter()
    }
}
