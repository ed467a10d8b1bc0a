//! A fake upstream registry for integration tests, written with std only (threads, hand-
//! written HTTP/1.1; rustls's blocking API for the TLS mode) so that it shares no code
//! with the crate under test.
//!
//! It holds manifests and blobs per repository in memory, serves `GET`/`HEAD` of
//! manifests, blobs and `tags/list` (paginated with `n`, `last` and a `Link` to the next
//! page, as Docker Hub does) with `Content-Length`, `Docker-Content-Digest`,
//! `Content-Type` and `Range` → 206, and records every request (method, path and query,
//! `Host`, `Authorization`) for assertions. Scriptable misbehaviour: Bearer tokens from its
//! own `/token` endpoint (optionally checking Basic credentials), Basic auth, blob redirects
//! to a second listener reached by another host name (`localhost` instead of `127.0.0.1`,
//! standing for a CDN), fixed error statuses (429 with `Retry-After`, 500, 503) for every
//! request or for GETs only, headers left out of HEAD answers, a
//! connection cut or stalled after N body bytes (once), wrong bytes, a frozen server, a
//! delay (the knobs are `misbehave.rs`). [`FakeUpstream::start_tls`] serves the same over
//! TLS with a test CA.
//!
//! ```no_run
//! mod support;
//! let fake = support::FakeUpstream::start();
//! let img = support::TestImage::new(1, &[1000, 2000]);
//! fake.push_image("library/alpine", "latest", &img);
//! fake.require_bearer(None);
//! // … point an UpstreamUrl at fake.url() …
//! assert_eq!(fake.count("GET", &img.layer_digest(0)), 0);
//! ```
//!
//! Dropping the `FakeUpstream` stops its listeners; connection threads end when their
//! client goes away. Nothing here keeps the test process alive.
#![allow(dead_code)]

pub mod client;
mod http;
mod image;
pub mod mirror;
mod misbehave;
pub mod process;
pub mod raw;
pub mod raw_upstream;
mod registry;
pub mod session;
mod tls;
pub mod upstream;

#[allow(unused_imports)] // for other test files
pub use image::{digest_of, pseudo_random_bytes, TestImage};
#[allow(unused_imports)]
pub use tls::test_ca_path;

use futures_rustls::rustls;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// Media type of the manifests [`TestImage`] builds.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Which listener a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The registry itself (`url()`).
    Registry,
    /// The second listener blobs are redirected to (`cdn_url()`).
    Cdn,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub listener: Listener,
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub host: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub accept: Option<String>,
}

/// The scriptable state, shared with the connection threads.
#[derive(Default)]
struct State {
    /// (repository, tag or digest) → (bytes, media type).
    manifests: HashMap<(String, String), (Vec<u8>, String)>,
    /// (repository, digest) → bytes.
    blobs: HashMap<(String, String), Vec<u8>>,
    /// repository → tags in insertion order.
    tags: HashMap<String, Vec<String>>,
    /// `Some`: registry requests need `Bearer <token issued for the repository>`.
    bearer: Option<BearerMode>,
    /// `Some`: registry requests need these Basic credentials.
    basic: Option<(String, String)>,
    redirect_blobs: bool,
    /// The CDN listener answers HEAD with 403 (URLs signed for GET only).
    cdn_refuses_head: bool,
    /// Answer every registry request (not `/token`) with this status and `Retry-After`.
    failure: Option<(u16, Option<u64>)>,
    /// The same for registry `GET`s only (Docker Hub's pull limit: HEADs are free).
    get_failure: Option<(u16, Option<u64>)>,
    /// Header names left out of every `HEAD` answer (`Content-Type`, …).
    omit_on_head: Vec<String>,
    /// Stop the next blob body after this many bytes (close or stall), then behave.
    cut: Option<(usize, Cut)>,
    corrupt: bool,
    /// Corrupt the next blob body only.
    corrupt_next_blob: bool,
    /// Stop every blob body after this many bytes, leaving the connection silent.
    stall_blobs: Option<usize>,
    /// Send blob bodies chunked, without `Content-Length`.
    chunked_blobs: bool,
    frozen: bool,
    delay: Duration,
    ignore_range: bool,
    ratelimit_remaining: Option<String>,
    /// Sent on every registry answer.
    extra_headers: Vec<(String, String)>,
    /// Issued token → the scope it was issued for.
    tokens: HashMap<String, String>,
}

/// How a blob body stops early.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Close the connection (the client sees the end of the stream too soon).
    Close,
    /// Keep the connection open and send nothing more.
    Stall,
}

struct BearerMode {
    credentials: Option<(String, String)>,
    expires_in: Option<u64>,
}

struct Shared {
    state: Mutex<State>,
    log: Mutex<Vec<Logged>>,
    stop: AtomicBool,
    registry: SocketAddr,
    cdn: SocketAddr,
    /// `Some`: both listeners speak TLS with the test certificate.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Shared {
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake registry. See the module docs.
pub struct FakeUpstream {
    shared: Arc<Shared>,
}

impl FakeUpstream {
    /// Starts both listeners on `127.0.0.1:0`, plain HTTP.
    pub fn start() -> FakeUpstream {
        FakeUpstream::start_with(None)
    }

    /// Starts both listeners speaking TLS with `tls/server.pem` (valid for `127.0.0.1` and
    /// `localhost`, signed by [`test_ca_path`]).
    pub fn start_tls() -> FakeUpstream {
        FakeUpstream::start_with(Some(tls::server_config()))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> FakeUpstream {
        let registry = TcpListener::bind("127.0.0.1:0").expect("bind registry listener");
        let cdn = TcpListener::bind("127.0.0.1:0").expect("bind cdn listener");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            registry: registry.local_addr().unwrap(),
            cdn: cdn.local_addr().unwrap(),
            tls,
        });
        for (listener, which) in [(registry, Listener::Registry), (cdn, Listener::Cdn)] {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(listener, which, shared));
        }
        FakeUpstream { shared }
    }

    /// `http://127.0.0.1:PORT` (`https://` from [`FakeUpstream::start_tls`]): the registry.
    pub fn url(&self) -> String {
        format!("{}://{}", self.shared.scheme(), self.shared.registry)
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> SocketAddr {
        self.shared.registry
    }

    /// `http://localhost:PORT2`: where blobs are redirected (another host name).
    pub fn cdn_url(&self) -> String {
        format!(
            "{}://localhost:{}",
            self.shared.scheme(),
            self.shared.cdn.port()
        )
    }

    /// Stores a manifest under `reference` (a tag) and under its digest; returns the digest.
    pub fn add_manifest(&self, repo: &str, tag: &str, bytes: &[u8], media_type: &str) -> String {
        let digest = digest_of(bytes);
        let mut s = self.shared.state();
        let entry = (bytes.to_vec(), media_type.to_owned());
        s.manifests
            .insert((repo.into(), digest.clone()), entry.clone());
        s.manifests.insert((repo.into(), tag.into()), entry);
        let tags = s.tags.entry(repo.into()).or_default();
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.into());
        }
        digest
    }

    /// Stores a blob; returns its digest.
    pub fn add_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = digest_of(bytes);
        self.shared
            .state()
            .blobs
            .insert((repo.into(), digest.clone()), bytes.to_vec());
        digest
    }

    /// Stores an image's config, layers and manifest (under `tag` and its digest).
    pub fn push_image(&self, repo: &str, tag: &str, image: &TestImage) -> String {
        self.add_blob(repo, &image.config);
        for layer in &image.layers {
            self.add_blob(repo, layer);
        }
        self.add_manifest(repo, tag, &image.manifest, DOCKER_MANIFEST_V2)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests with this method whose path contains `needle` (e.g. a digest, `/token`).
    pub fn count(&self, method: &str, needle: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.target.contains(needle))
            .count()
    }

    /// Token requests so far.
    pub fn token_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.target.starts_with("/token"))
            .count()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake both accept loops so they see the flag.
        let _ = TcpStream::connect(self.shared.registry);
        let _ = TcpStream::connect(self.shared.cdn);
    }
}

fn accept_loop(listener: TcpListener, which: Listener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || match &shared.tls {
            None => http::serve(conn, which, &shared),
            Some(config) => {
                let Ok(tls) = rustls::ServerConnection::new(Arc::clone(config)) else {
                    return;
                };
                http::serve(rustls::StreamOwned::new(tls, conn), which, &shared)
            }
        });
    }
}
