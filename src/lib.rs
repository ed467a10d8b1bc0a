//! regmirror — a pull-through Docker/OCI registry mirror for small boards.
//!
//! One process; one thread runs all our tasks: a smol `LocalExecutor` runs every connection
//! and every upstream fill (the one other thread running our code only resolves upstream
//! host names, see below). Clients (Docker, containerd, podman, skopeo) pull through it;
//! each blob is fetched from upstream once, verified, kept on disk under a byte budget, and
//! served from disk afterwards — also when the upstream is gone.
//!
//! # Threads
//! Exactly these exist (`ls /proc/PID/task; cat /proc/PID/task/*/comm`), all started at
//! start-up; nothing a client sends starts one (`tests/hostile_binary.rs` checks every
//! kind of request against the running binary):
//! - `regmirror`, the main thread: runs the executor inside `smol::block_on`, so every task
//!   of ours — connections, fills, revalidations — and all file I/O (direct `pread`,
//!   `pwrite`, `sendfile`) run here.
//! - `async-io`, async-io's reactor thread, started with the first socket. It runs none of
//!   our code: it and the main thread take turns holding the reactor — whichever holds it
//!   waits in `epoll_wait`, the other on a futex — so while the main thread is busy running
//!   tasks, this one waits for I/O events and wakes it. (Checked with `strace -f`: its
//!   system calls are `epoll_pwait`, `futex` and reads of the reactor's wake-up pipe.)
//! - `regmirror-dns`, the upstream resolver: `getaddrinfo` blocks, so upstream host names
//!   are resolved on this one named thread (see `upstream/`), never on the executor.
//!
//! Signals (SIGTERM, SIGINT, SIGHUP) need no thread: `async-signal` writes them to a socket
//! pair the reactor reads (`server/signals.rs`).
//!
//! # Layout
//! A file's unit tests, where they would crowd it, are its `tests.rs` sibling: `x.rs`'s in
//! `x/tests.rs`, `x/mod.rs`'s in `x/tests.rs`.
//! ```text
//! main.rs          argv → Config → logger → app::start → LocalExecutor running server::serve
//! access/          who may pull: mod.rs (the one check every request passes), cidr.rs
//!                  (--allow ranges), htpasswd.rs (--htpasswd, bcrypt, remembered checks)
//! cli.rs           flags (argh): --help, --version, the subcommands (the only reader of argv)
//! conffile.rs      the configuration file's syntax (`key = value`), a pure parser
//! settings.rs      file + flags → validated Config, errors naming the flag or file line
//! config.rs        Config, upstream URLs; config/values.rs: sizes, durations, addresses
//! budget.rs        the default byte budget from the cache's filesystem; --max-size checks
//! app.rs           start-up: bind, open the cache, start-up errors and line; spawn (tests)
//! logger.rs        `log` to stderr + a ring of recent lines for /_regmirror/log
//! ls.rs            `regmirror ls`: a cache directory's images, read with the mirror stopped
//! remote.rs        `regmirror prefetch`: a blocking client of a running mirror's admin API
//! reference.rs     Repository, Tag, Reference, UpstreamName: validated at the edge
//! image_ref.rs     ImageRef (`ghcr.io/org/app:1.4`) and Platform, as operators write them
//! keep.rs          the keep list's syntax (`--keep FILE`), a pure parser
//! digest.rs        Digest (sha256), the only thing cache paths are built from
//! media_type.rs    MediaType and the four manifest types we ask for and serve
//! error.rs         the one Error enum → HTTP status + OCI code (spec codes only) + side
//!                  at fault
//! server/          mod.rs: start-up, limits; accept.rs: accept loop, shutdown; slots.rs:
//!                  connection slots and whom to close for a newcomer; connection.rs: one
//!                  connection's requests (pipelining, access log; connection/input.rs:
//!                  the head buffer, bounded reads, dropped bodies, lingering);
//!                  conn.rs: the client socket, plain or TLS (write timeout, sendfile);
//!                  tls.rs: TLS on the same port (the first byte decides); reply.rs:
//!                  writing replies; signals.rs: SIGTERM/SIGINT/SIGHUP
//! http/            our own Request/Reply/Body types; head.rs: the request-head parser
//!                  (pure, on httparse); status.rs: Status; range.rs: the Range header
//! routes.rs        path → Route; dispatch; Error → OCI JSON
//! control/         /_regmirror/images and /prefetch as JSON (json.rs); the admin actions
//! mirror/          the pull logic across cache and upstream: mod.rs (state), flight.rs
//!                  (work in flight, shared by every request for it), manifests.rs (by
//!                  digest, Accept), tags.rs (freshness, revalidation, stale), tags_list.rs
//!                  (tags/list pages), referrers.rs (the referrers API), blobs.rs
//!                  (lookups, following, pass-through), fill.rs (how a cold blob is
//!                  fetched: resume, verify, a full disk), source.rs (its upstream stream,
//!                  resuming itself within a patience); inventory.rs (images by tag,
//!                  derived from disk), walk.rs (an image's manifests and blobs, parsed
//!                  once), pulls.rs (pull counters, saved rarely), pins.rs
//!                  (keep list and operator pins), jobs.rs (prefetch jobs and their
//!                  progress), prefetch.rs, read_ahead.rs (an image's other blobs once
//!                  a client has its manifest), keeper.rs (the keep list's rounds),
//!                  allowance.rs (Docker Hub's allowance), evict.rs
//! manifest.rs      sniffing a stored manifest's type, Accept negotiation, default platform
//! memory.rs        the process's resident memory (/proc/self/status) for status and metrics
//! status.rs        /_regmirror/status, /metrics, /v2/_catalog
//! page/            the status page at `/` and a page per image: server-rendered HTML,
//!                  inline CSS and SVG (mod.rs: routes and layout; overview.rs, upstreams.rs,
//!                  images.rs: its sections; connect.rs: client snippets for the `Host`
//!                  the browser used; html.rs: escaping and formatting)
//! host_info.rs     `--host-info FILE`: the host's name and addresses, for the status
//! upstream/        the only HTTP client code, our own HTTP/1.1: client.rs (connect, TLS,
//!                  redirects), wire.rs + head.rs + chunked.rs (bytes ↔ answers, limits),
//!                  dns.rs (the regmirror-dns thread), auth.rs, breaker.rs, health.rs,
//!                  registry.rs (one upstream's manifest/blob calls; registry/pages.rs:
//!                  tags/list and referrers), fuzz.rs (entry points the fuzz targets in
//!                  `fuzz/` call into the crate-private parsers)
//! cache/           store.rs (files, commit, scan), partial.rs (partial blobs kept for a
//!                  resume), index.rs (budget, recency; index/evict.rs:
//!                  reservations, choosing victims), rebuild.rs (the start-up scan
//!                  that rebuilds the index), permit.rs (the permit a fill writes
//!                  through; permit/settle.rs: how it ends; books.rs: the cache's side of
//!                  it — eviction, commit), fill.rs (the fill its readers
//!                  follow), checked.rs (the hash that decides how far they may read),
//!                  relay.rs (an uncached blob shared through a bounded window), tags.rs
//!                  (tag → digest); never talks to an upstream
//! tls_init.rs      `regmirror tls init`: a local CA and a server certificate (rcgen), and
//!                  where each client must put the CA
//! metrics/         one Metrics per mirror: counters, per upstream too, the fill histogram
//!                  (mod.rs); Prometheus text at /metrics (render.rs); the page's 24 h
//!                  chart and recent requests, in memory and bounded (traffic.rs)
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod access;
pub mod app;
pub mod budget;
pub mod cache;
pub mod cli;
pub mod conffile;
pub mod config;
pub mod control;
pub mod digest;
pub mod error;
pub mod host_info;
pub mod http;
pub mod image_ref;
pub mod keep;
pub mod logger;
pub mod ls;
pub mod manifest;
pub mod media_type;
pub mod memory;
pub mod metrics;
pub mod mirror;
pub mod page;
pub mod reference;
pub mod remote;
pub mod routes;
pub mod server;
pub mod settings;
pub mod status;
pub mod tls_init;
pub mod upstream;
