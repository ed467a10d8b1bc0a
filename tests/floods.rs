//! Floods of idle and slowloris sockets (issue 6): 500 connections that never send a
//! request, or send one byte at a time, must not keep a fresh `/v2/` probe waiting more
//! than a second. In-process against the fake upstream.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};
use support::mirror::Mirror;
use support::raw::{exchange, responses};
use support::FakeUpstream;

/// `/v2/` latencies of `n` fresh probes, each on a new connection.
fn probe(addr: std::net::SocketAddr, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let answer = exchange(
                addr,
                b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                Duration::from_secs(5),
            );
            assert_eq!(
                responses(&answer).first().map(|r| r.status),
                Some(200),
                "probe answered"
            );
            t.elapsed()
        })
        .collect()
}

#[test]
fn v2_answers_within_a_second_under_500_idle_connections() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(m.addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(300));
    let times = probe(m.addr, 5);
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(1)),
        "{times:?}"
    );
    drop(idle);
}

#[test]
fn v2_answers_within_a_second_under_500_slowloris_connections() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let mut slow: Vec<TcpStream> = (0..500)
        .map(|_| {
            let mut s = TcpStream::connect(m.addr).unwrap();
            let _ = s.write_all(b"G");
            s
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..3 {
        // A byte a second on every socket that is still open.
        for s in &mut slow {
            let _ = s.write_all(b"E");
        }
        times.extend(probe(m.addr, 2));
        thread::sleep(Duration::from_millis(500));
    }
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(1)),
        "{times:?}"
    );
}
