//! regmirror — a pull-through Docker/OCI registry mirror for small boards.
//!
//! One process, one thread: a smol `LocalExecutor` runs every connection and every
//! upstream fill. Clients (Docker, containerd, podman, skopeo) pull through it; each blob
//! is fetched from upstream once, verified, kept on disk under a byte budget, and served
//! from disk afterwards — also when the upstream is gone.
//!
//! # Layout
//! ```text
//! main.rs          argv → Config → logger → app::start → LocalExecutor running server::serve
//! cli.rs           flags (argh): --help, --version, the subcommands (the only reader of argv)
//! conffile.rs      the configuration file's syntax (`key = value`), a pure parser
//! settings.rs      file + flags → validated Config, errors naming the flag or file line
//! config.rs        Config and the parsers for sizes, durations, addresses, upstream URLs
//! budget.rs        the default byte budget from the cache's filesystem; --max-size checks
//! app.rs           start-up: bind, open the cache, start-up errors and line; spawn (tests)
//! logger.rs        `log` to stderr + a ring of recent lines for /_regmirror/log
//! reference.rs     Digest, Repository, Tag, Reference: validated at the edge
//! error.rs         the one Error enum → HTTP status + OCI code + side at fault
//! server/        mod.rs: accept loop, connection limit, header timeout, request parsing
//!                  (async-h1's decoder), access log; conn.rs: the client socket (write
//!                  timeout, sendfile); reply.rs: writing replies
//! http.rs          our own Request/Reply types, Range parsing (routes never see
//!                  async-h1/http-types)
//! routes.rs        path → Route; dispatch; Error → OCI JSON
//! mirror/          the pull logic across cache and upstream: mod.rs (state, per-reference
//!                  locks), manifests.rs (tags, freshness, Accept), blobs.rs
//! manifest.rs      media types, Accept negotiation, default platform of an index
//! status.rs        /_regmirror/status, /metrics, /v2/_catalog, tags/list fallback
//! upstream/        client.rs, auth.rs, breaker.rs, registry.rs — the only HTTP client code
//! cache/           store.rs (files, commit, scan), index.rs (byte LRU, budget),
//!                  fill.rs (one upstream fetch, many readers), tags.rs (tag → digest)
//! metrics.rs       counters; Prometheus text at /metrics
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod app;
pub mod budget;
pub mod cache;
pub mod cli;
pub mod conffile;
pub mod config;
pub mod error;
pub mod http;
pub mod logger;
pub mod manifest;
pub mod metrics;
pub mod mirror;
pub mod reference;
pub mod routes;
pub mod server;
pub mod settings;
pub mod status;
pub mod upstream;
