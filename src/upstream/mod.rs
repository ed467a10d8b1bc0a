//! Talking to upstream registries: one [`Registry`] per allowlisted upstream, reached through
//! [`Upstreams`]. The only module besides `server` that may name http-types (for `Url` and
//! `Method`); the HTTP/1.1 client itself is ours, not async-h1's.
//!
//! Layout: `client.rs` (connections over smol, TLS via rustls, timeouts, redirects),
//! `dns.rs` (the `regmirror-dns` resolver thread), `wire.rs` (request head out, response
//! head in, the body by its framing), `head.rs` and `chunked.rs` (pure parsers of the
//! response head and of chunked bodies, for fuzzing), `stream.rs` (plain/TLS connection,
//! idle timeout, the body reader callers get), `auth.rs` (Bearer token flow, per-repository
//! token cache, where credentials may go), `challenge.rs` (`WWW-Authenticate` parsing, Basic
//! header), `breaker.rs` (circuit breaker), `health.rs` (breaker + last failure + rate-limit
//! headers, shared with blob bodies), `response.rs` (status → error, header parsing),
//! `registry.rs` (manifest/blob GET/HEAD on one upstream), `answers.rs` (what those calls
//! return), [`fuzz`] (the parsers' entry points for fuzz targets). [`Upstreams`] is below.
//!
//! # Threads
//! [`Upstreams::new`] starts one thread, `regmirror-dns`, which resolves upstream host
//! names with the blocking `getaddrinfo`, one lookup at a time (see `dns.rs`); it ends when
//! the `Upstreams` and every `Registry` are dropped. Nothing else here starts a thread:
//! connections, TLS and timers run on the caller's executor. IP-literal upstreams never
//! use the resolver.
//!
//! # Limits
//! Response heads: [`MAX_RESPONSE_HEAD_BYTES`] (each, capped while read), at most
//! `MAX_RESPONSE_HEADERS` lines and `MAX_INTERIM_RESPONSES` 1xx heads before the final one.
//! Chunked bodies: `MAX_CHUNK_LINE_BYTES` per chunk-size line, `MAX_TRAILER_BYTES` of
//! trailers. Bodies held whole: [`MAX_MANIFEST_BYTES`]; token answers 64 KiB.
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
//!   `Protocol`; nothing else is required).
//! - `Registry::blob(&self, repo, digest, offset) -> Result<BlobStream, UpstreamError>`: GET,
//!   with `Range: bytes=<offset>-` when offset > 0; follows redirects; the body reader
//!   fails with an io error on reset or on `upstream_timeout` of silence.
//! - `Registry::blob_head(&self, repo, digest) -> Result<u64, UpstreamError>`: length.
//! - `Registry::referrers(&self, repo, digest, artifact_type) -> Result<ReferrersPage, _>`:
//!   the body (≤ `MAX_MANIFEST_BYTES`) as sent, with `Content-Type` and `OCI-Filters-Applied`.
//! - `Registry::tags_list(&self, repo, query) -> Result<TagsPage, UpstreamError>`: only `n`
//!   and `last` of `query` are passed on; the page keeps upstream's `Content-Type` and `Link`.
//! - 404 → `NotFound`, 429 → `TooManyRequests{retry_after, host}`, 401 after auth (or from
//!   a host reached by redirect) → `Unauthorized`, 403 → `Denied`, other non-2xx → `Status`;
//!   network/TLS/timeout/open breaker → `Unavailable`; malformed answers → `Protocol`. Every
//!   message but `NotFound`'s names the host and the cause.
//! - A blob body reports to the breaker itself (first bytes: success; a stall, reset or
//!   early end: failure); `Registry::status` shows the last failure's cause and time and
//!   the last `ratelimit-limit` / `ratelimit-remaining` with when each was seen.

mod answers;
mod auth;
mod breaker;
mod challenge;
mod chunked;
mod client;
mod dns;
pub mod fuzz;
mod head;
mod health;
mod registry;
mod response;
mod stream;
#[cfg(test)]
mod testing;
mod wire;

pub use answers::{BlobStream, Failure, Manifest, RegistryStatus, Seen};
pub use dns::THREAD_NAME as DNS_THREAD_NAME;
pub use head::MAX_RESPONSE_HEAD_BYTES;
pub use registry::{ReferrersPage, Registry, TagsPage};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::reference::UpstreamName;
use client::{tls_config, Client};
use dns::Resolver;
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
    /// error (a startup failure, not a surprise at the first pull). Starts the
    /// `regmirror-dns` thread (see the module docs).
    pub fn new(config: &Config, metrics: Rc<Metrics>) -> Result<Upstreams, String> {
        let tls = tls_config(config.upstream_ca.as_deref())?;
        let resolver = Resolver::start()
            .map_err(|e| format!("starting the {} thread: {e}", dns::THREAD_NAME))?;
        let client = Client::new(tls, config.upstream_timeout, metrics, resolver);
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
