//! regmirror — a pull-through Docker/OCI registry mirror for small boards.
//!
//! One process, one thread: a smol `LocalExecutor` runs every connection and every
//! upstream fill. Clients (Docker, containerd, podman, skopeo) pull through it; each blob
//! is fetched from upstream once, verified, kept on disk under a byte budget, and served
//! from disk afterwards — also when the upstream is gone.
//!
//! # Layout
//! ```text
//! main.rs          argv → Config → logger → LocalExecutor running server::serve
//! cli.rs           flags → validated Config (the only reader of argv)
//! config.rs        Config and the parsers for sizes, durations, upstream URLs
//! logger.rs        `log` to stderr + a ring of recent lines for /_regmirror/log
//! reference.rs     Repository, Tag, Reference, UpstreamName: validated at the edge
//! digest.rs        Digest (sha256), the only thing cache paths are built from
//! media_type.rs    MediaType and the four manifest types we ask for and serve
//! error.rs         the one Error enum → HTTP status + OCI code (spec codes only) + side
//!                  at fault
//! server/        mod.rs: accept loop, connection limit, header timeout, request parsing
//!                  (async-h1's decoder), access log; conn.rs: the client socket (write
//!                  timeout, sendfile); reply.rs: writing replies
//! http/            our own Request/Reply/Body types (routes never see async-h1 or
//!                  http-types); status.rs: Status; range.rs: the Range header
//! routes.rs        path → Route; dispatch; Error → OCI JSON
//! mirror/          the pull logic across cache and upstream: mod.rs (state), flight.rs
//!                  (work in flight, shared by every request for it), manifests.rs (by
//!                  digest, Accept), tags.rs (freshness, revalidation, stale), tags_list.rs
//!                  (tags/list pages), blobs.rs
//! manifest.rs      sniffing a stored manifest's type, Accept negotiation, default platform
//! status.rs        /_regmirror/status, /metrics, /v2/_catalog
//! upstream/        the only HTTP client code, our own HTTP/1.1: client.rs (connect, TLS,
//!                  redirects), wire.rs + head.rs + chunked.rs (bytes ↔ answers, limits),
//!                  dns.rs (the regmirror-dns thread), auth.rs, breaker.rs, health.rs,
//!                  registry.rs (one upstream's manifest/blob/tag calls)
//! cache/           store.rs (files, commit, scan), index.rs (byte LRU, budget),
//!                  fill.rs (one upstream fetch, many readers), tags.rs (tag → digest)
//! metrics.rs       one Metrics per mirror: counters; Prometheus text at /metrics
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod cache;
pub mod cli;
pub mod config;
pub mod digest;
pub mod error;
pub mod http;
pub mod logger;
pub mod manifest;
pub mod media_type;
pub mod metrics;
pub mod mirror;
pub mod reference;
pub mod routes;
pub mod server;
pub mod status;
pub mod upstream;
