//! Unit tests of one connection: the size of an idle connection's future, and the access
//! log's text.

use super::*;
use std::time::Duration;

/// What an idle connection costs besides its socket: its task's future. The handler's
/// and the reply writer's futures are boxed while they run, so this stays small.
const MAX_CONNECTION_FUTURE: usize = 4096;

#[test]
fn an_idle_connection_is_a_small_future() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::Config::new(dir.path().to_path_buf());
    let metrics = Rc::new(crate::metrics::Metrics::new());
    let cache = crate::cache::Cache::open(dir.path(), None, metrics.clone()).unwrap();
    let upstreams = crate::upstream::Upstreams::new(&config, metrics.clone()).unwrap();
    let ex = Rc::new(smol::LocalExecutor::new());
    let mirror = Rc::new(Mirror::new(cache, upstreams, config.tag_ttl, ex, metrics));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (sock, peer) = listener.accept().unwrap();
    let conn = Conn::new(smol::Async::new(sock).unwrap(), Duration::from_secs(1));
    let limits = Limits::from(&config);
    let slots = super::super::slots::Slots::new(4);
    let slot = slots.admit(peer.ip(), Instant::now()).1.unwrap();
    let req = crate::http::Request::get("/v2/");
    let handler = std::mem::size_of_val(&routes::handle(&mirror, &req));
    let f = serve(conn, peer, mirror, limits, slot, None);
    let size = std::mem::size_of_val(&f);
    eprintln!("connection future {size} bytes, handler {handler}");
    assert!(
        size <= MAX_CONNECTION_FUTURE,
        "{size} bytes (handler: {handler})"
    );
    assert!(handler > size, "the handler's future is boxed");
    drop(client);
}

#[test]
fn log_text_is_cut_and_escaped() {
    assert_eq!(loggable("/v2/", 10), "/v2/");
    assert_eq!(
        loggable(&"a".repeat(20), 10),
        format!("{}…", "a".repeat(10))
    );
    assert_eq!(loggable("a\nb", 10), "a\\nb");
}
