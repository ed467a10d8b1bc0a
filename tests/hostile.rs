//! Hostile and unusual clients (issue 6): bytes that must not kill the process, pipelined
//! and HTTP/1.0 requests, heads that never end, ranges at the edge of `u64`, hosts and
//! methods that must not change a route, a request with a body. Each test is one promise
//! the mirror keeps. All run in-process against the fake upstream; floods of idle and
//! slowloris sockets are `floods.rs`, and what must hold of the real binary (no thread
//! started by anything a client sends, bounded logs) is `hostile_binary.rs`.

mod support;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};
use support::client::{get, request};
use support::mirror::{pull, Mirror};
use support::raw::{connect, exchange, read_response, read_until_close, responses, AT_ONCE};
use support::{FakeUpstream, TestImage};

fn still_alive(m: std::net::SocketAddr) {
    assert_eq!(get(m, "/v2/").status, 200, "the mirror still answers");
}

/// The status code of the first response in `bytes`, if any.
fn first_status(bytes: &[u8]) -> Option<u16> {
    responses(bytes).first().map(|r| r.status)
}

#[test]
fn non_ascii_and_obs_text_header_values_are_answered_not_fatal() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    for value in [&b"caf\xc3\xa9"[..], b"\xff\xfe", b"a\x80b", b"\xc3"] {
        let mut req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: ".to_vec();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let status = first_status(&exchange(m.addr, &req, AT_ONCE));
        assert!(
            matches!(status, Some(200) | Some(400)),
            "{value:?} → {status:?}"
        );
        still_alive(m.addr);
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[test]
fn no_byte_sequence_in_a_head_kills_the_server() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let mut rng = Rng(0x5eed);
    let valid = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nRange: bytes=0-1\r\n\r\n";
    for round in 0..150 {
        // A valid head with a few bytes replaced, or plain noise.
        let mut head = if round % 3 == 0 {
            // Noise (not starting with a blank line, which a server waits past: RFC 9112 §2.2).
            let mut noise: Vec<u8> = (0..1 + (rng.next() % 300) as usize)
                .map(|_| rng.byte())
                .collect();
            if matches!(noise[0], b'\r' | b'\n') {
                noise[0] = 0;
            }
            noise
        } else {
            let mut h = valid.to_vec();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % h.len();
                h[i] = rng.byte();
            }
            h
        };
        head.extend_from_slice(b"\r\n\r\n");
        let mut s = connect(m.addr, AT_ONCE);
        let _ = s.write_all(&head);
        let status = read_response(&mut s, false, AT_ONCE).map(|r| r.status);
        // Any answer but a failure of ours (501 is the answer to an unknown method).
        assert!(
            status.is_some_and(|s| s < 500 || s == 501),
            "round {round}: {:?} → {status:?}",
            String::from_utf8_lossy(&head)
        );
    }
    still_alive(m.addr);
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(61, &[5000]);
    fake.push_image("library/app", "1", &img);
    let m = Mirror::start(&fake);
    pull(m.addr, "library/app", "1", &img);
    let blob = img.layer_digest(0);
    let batch = format!(
        "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n\
         HEAD /v2/library/app/blobs/{blob} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /v2/library/app/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /v2/nope/x/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let t = Instant::now();
    let mut s = connect(m.addr, AT_ONCE);
    s.write_all(batch.as_bytes()).unwrap();
    let mut got = Vec::new();
    for head_only in [false, true, false, false] {
        match read_response(&mut s, head_only, AT_ONCE) {
            Some(r) => got.push(r),
            None => break,
        }
    }
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 404], "{got:?}");
    assert_eq!(got[1].header("content-length"), Some("5000"));
    assert_eq!(got[2].body, img.manifest);
    assert!(t.elapsed() < AT_ONCE, "took {:?}", t.elapsed());
    assert!(
        read_until_close(&mut s, AT_ONCE).is_empty(),
        "closed after the last"
    );
}

#[test]
fn a_pipelined_request_split_across_writes_is_answered() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let mut s = connect(m.addr, AT_ONCE);
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/_cat")
        .unwrap();
    let first = read_response(&mut s, false, AT_ONCE).expect("first answer");
    assert_eq!(first.status, 200);
    thread::sleep(Duration::from_millis(100));
    s.write_all(b"alog HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let second = read_response(&mut s, false, AT_ONCE).expect("second answer");
    assert_eq!(
        (second.status, second.text().contains("repositories")),
        (200, true)
    );
}

#[test]
fn ranges_at_the_edge_of_u64_are_answered_correctly() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(62, &[1000]);
    fake.push_image("library/app", "1", &img);
    let m = Mirror::start(&fake);
    pull(m.addr, "library/app", "1", &img);
    let path = format!("/v2/library/app/blobs/{}", img.layer_digest(0));
    let layer = &img.layers[0];
    let ask = |range: &str| request(m.addr, "GET", &path, &[("Range", range)]);

    let r = ask("bytes=5-18446744073709551615");
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.header("content-length"), Some("995"));
    assert_eq!(r.header("content-range"), Some("bytes 5-999/1000"));
    assert_eq!(r.body, layer[5..]);

    let r = ask("bytes=-18446744073709551615");
    assert_eq!((r.status, r.body.len()), (206, 1000));

    for unsatisfiable in ["bytes=18446744073709551615-", "bytes=1000-"] {
        let r = ask(unsatisfiable);
        assert_eq!(r.status, 416, "{unsatisfiable}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"));
    }
    // Ignored (RFC 9110 §14.2 lets a server ignore Range): the whole blob with 200.
    for ignored in [
        "bytes=0-1,5-6",
        "bytes=+5-9",
        "bytes=5-+9",
        "bytes=99999999999999999999-",
        "bytes=9-5",
        "bytes=- 5",
    ] {
        let r = ask(ignored);
        assert_eq!((r.status, r.body.len()), (200, 1000), "{ignored}");
    }
}

#[test]
fn a_head_without_a_newline_is_cut_at_8_kib_with_431() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let mut s = connect(m.addr, AT_ONCE);
    let t = Instant::now();
    // 1 MiB of a request line that never ends; the mirror must stop reading at 8 KiB.
    let mut line = b"GET /".to_vec();
    line.resize(1 << 20, b'a');
    let _ = s.write_all(&line);
    let answer = read_until_close(&mut s, AT_ONCE);
    assert_eq!(
        first_status(&answer),
        Some(431),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(t.elapsed() < AT_ONCE, "took {:?}", t.elapsed());
    still_alive(m.addr);
}

#[test]
fn bare_lf_and_binary_garbage_get_400_at_once() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let cases: [&[u8]; 4] = [
        b"GET /v2/ HTTP/1.1\nHost: x\n\n",
        b"GET /v2/ HTTP/1.1\r\nHost: x\n\r\n",
        b"\x00\x01\x02\x03\xff\xfe",
        b"\x80GET / HTTP/1.1",
    ];
    for bytes in cases {
        let t = Instant::now();
        let answer = exchange(m.addr, bytes, AT_ONCE);
        assert_eq!(first_status(&answer), Some(400), "{bytes:?}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{bytes:?} took {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn http_1_0_is_answered_and_closed_unless_keep_alive_is_asked() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let t = Instant::now();
    let answer = exchange(m.addr, b"GET /v2/ HTTP/1.0\r\n\r\n", AT_ONCE);
    assert_eq!(
        first_status(&answer),
        Some(200),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(t.elapsed() < AT_ONCE, "the server closed by itself");

    let mut s = connect(m.addr, AT_ONCE);
    s.write_all(b"GET /v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let first = read_response(&mut s, false, AT_ONCE).expect("an answer");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), Some("keep-alive"));
    s.write_all(b"HEAD /v2/ HTTP/1.0\r\n\r\n").unwrap();
    let second = read_response(&mut s, true, AT_ONCE).expect("a second answer");
    assert_eq!(second.status, 200);
}

#[test]
fn the_host_header_and_absolute_form_never_change_the_route() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    // A Host carrying a path is not a valid Host (RFC 9112 §3.2: 400).
    let answer = exchange(
        m.addr,
        b"GET /v2/ HTTP/1.1\r\nHost: e/v2/library/x/manifests/1?\r\n\r\n",
        AT_ONCE,
    );
    let r = &responses(&answer)[0];
    assert_eq!(r.status, 400, "{}", r.text());
    // Absolute form: the route is the target's path, whatever the authority.
    let answer = exchange(
        m.addr,
        b"GET http://elsewhere.example/v2/ HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n",
        AT_ONCE,
    );
    assert_eq!(first_status(&answer), Some(200));
    // HTTP/1.1 without Host, or with two (RFC 9112 §3.2).
    for bad in [
        &b"GET /v2/ HTTP/1.1\r\n\r\n"[..],
        b"GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        assert_eq!(first_status(&exchange(m.addr, bad, AT_ONCE)), Some(400));
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[test]
fn methods_are_case_sensitive() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let answer = exchange(m.addr, b"get /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", AT_ONCE);
    // RFC 9110 §9.1: an unrecognised method is 501; `get` is not GET.
    assert_eq!(first_status(&answer), Some(501));
    let answer = exchange(m.addr, b"PUT /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", AT_ONCE);
    assert_eq!(first_status(&answer), Some(405));
}

#[test]
fn a_request_with_a_body_is_answered_and_the_connection_stays_usable() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let mut s = connect(m.addr, AT_ONCE);
    s.write_all(
        b"PUT /v2/a/manifests/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let first = read_response(&mut s, false, AT_ONCE).expect("an answer");
    assert_eq!(first.status, 405);
    let second = read_response(&mut s, false, AT_ONCE).expect("the next request's answer");
    assert_eq!(second.status, 200);
    // A chunked upload is answered too (and the connection closed: we read no uploads).
    let answer = exchange(
        m.addr,
        b"PATCH /v2/a/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
          Expect: 100-continue\r\n\r\n",
        AT_ONCE,
    );
    assert_eq!(first_status(&answer), Some(405));
}
