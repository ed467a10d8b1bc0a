//! The upstream client against answers no well-behaved registry sends, byte for byte
//! (`support/raw_upstream.rs`): chunked bodies with trailers of any bytes, chunk sizes that
//! overflow, heads after 1xx answers, heads and header lines without end. Each must give a
//! clean `UpstreamError` (or the right answer), never a panic, and a head is cut at its
//! limit while it is read, not after it is buffered.

mod support;

use futures_lite::AsyncReadExt;
use regmirror::error::UpstreamError;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use support::raw_upstream::{RawUpstream, Step};
use support::upstream::*;

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;
const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A raw upstream answering every request with `bytes`, then closing.
fn answering(bytes: impl AsRef<[u8]>) -> RawUpstream {
    let bytes = bytes.as_ref().to_vec();
    RawUpstream::start(move |_| vec![Step::Send(bytes.clone())])
}

fn get_manifest(raw: &RawUpstream) -> Result<regmirror::upstream::Manifest, UpstreamError> {
    let r = registry_at(&raw.url(), None);
    run(r.manifest(&repo("library/alpine"), &tag("latest"), false))
}

/// `what` failed as a protocol error whose message names the upstream's address.
fn assert_protocol_error<T: std::fmt::Debug>(
    what: Result<T, UpstreamError>,
    raw: &RawUpstream,
    needle: &str,
) {
    let addr = raw.url().trim_start_matches("http://").to_owned();
    match what {
        Err(UpstreamError::Protocol(m)) => {
            assert!(m.contains(&addr), "message names the host: {m}");
            assert!(m.contains(needle), "message says why ({needle}): {m}");
        }
        other => panic!("expected a protocol error about {needle}, got {other:?}"),
    }
}

fn chunked_head() -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
}

#[test]
fn a_chunked_manifest_with_trailers_of_any_bytes_is_read_whole() {
    let (a, b) = MANIFEST.split_at(20);
    let mut answer = chunked_head().into_bytes();
    answer.extend(format!("{:x}\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\n", a.len(), b.len()).bytes());
    answer.extend(b"X-Checksum: caf\xc3\xa9\r\nX-Binary: \xff\xfe\x80\r\n\r\n");
    let raw = answering(answer);
    let m = get_manifest(&raw).unwrap();
    assert_eq!(m.body.as_deref(), Some(MANIFEST.as_bytes()));
}

#[test]
fn chunk_extensions_are_ignored() {
    let (a, b) = MANIFEST.split_at(20);
    let answer = format!(
        "{}{:x};name=value\r\n{a}\r\n{:X} ; x=\"q;uoted\"\r\n{b}\r\n0;last\r\n\r\n",
        chunked_head(),
        a.len(),
        b.len()
    );
    let raw = answering(answer);
    let m = get_manifest(&raw).unwrap();
    assert_eq!(m.body.as_deref(), Some(MANIFEST.as_bytes()));
}

#[test]
fn an_overflowing_chunk_size_is_a_clean_error() {
    let mut answer = chunked_head();
    answer.push_str("fffffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n");
    let raw = answering(answer);
    assert_protocol_error(get_manifest(&raw), &raw, "chunk");
}

#[test]
fn a_chunk_size_line_without_end_is_cut_at_its_limit() {
    let raw = RawUpstream::start(|_| {
        vec![
            Step::send(chunked_head()),
            Step::Repeat {
                byte: b'1',
                count: 32 << 20,
            },
            Step::Hold,
        ]
    });
    let started = Instant::now();
    assert_protocol_error(get_manifest(&raw), &raw, "chunk");
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    assert!(raw.bytes_written() < 16 << 20, "{}", raw.bytes_written());
}

#[test]
fn heads_after_interim_1xx_answers_are_the_answer() {
    let answer = format!(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nX-Name: caf\u{e9}\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_TYPE}\r\nContent-Length: {}\r\n\r\n{MANIFEST}",
        MANIFEST.len()
    );
    let raw = answering(answer);
    let m = get_manifest(&raw).unwrap();
    assert_eq!(m.body.as_deref(), Some(MANIFEST.as_bytes()));
}

#[test]
fn endless_interim_answers_are_an_error() {
    let raw = answering("HTTP/1.1 100 Continue\r\n\r\n".repeat(1000));
    assert_protocol_error(get_manifest(&raw), &raw, "1xx");
}

#[test]
fn a_head_over_the_limit_is_an_error() {
    let mut answer = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..2000 {
        answer.push_str(&format!("X-Pad-{i}: {}\r\n", "a".repeat(40)));
    }
    answer.push_str("Content-Length: 0\r\n\r\n");
    let raw = answering(answer);
    assert_protocol_error(get_manifest(&raw), &raw, "limit");
}

#[test]
fn too_many_header_lines_are_an_error() {
    let mut answer = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..1000 {
        answer.push_str(&format!("X-{i}: 1\r\n"));
    }
    answer.push_str("Content-Length: 0\r\n\r\n");
    let raw = answering(answer);
    assert_protocol_error(get_manifest(&raw), &raw, "header");
}

#[test]
fn an_endless_header_line_is_cut_while_it_is_read() {
    let raw = RawUpstream::start(|_| {
        vec![
            Step::send("HTTP/1.1 200 OK\r\nX-Long: "),
            Step::Repeat {
                byte: b'a',
                count: 64 << 20,
            },
            Step::Hold,
        ]
    });
    let started = Instant::now();
    assert_protocol_error(get_manifest(&raw), &raw, "limit");
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    assert!(
        raw.bytes_written() < 16 << 20,
        "read no further than the limit (plus socket buffers): {}",
        raw.bytes_written()
    );
}

#[test]
fn a_redirect_targets_endless_head_is_cut_too() {
    let raw = RawUpstream::start(|req| {
        if req.target.starts_with("/cdn/") {
            return vec![
                Step::send("HTTP/1.1 200 OK\r\nX-Long: "),
                Step::Repeat {
                    byte: b'a',
                    count: 64 << 20,
                },
                Step::Hold,
            ];
        }
        vec![Step::send(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /cdn/blob\r\nContent-Length: 0\r\n\r\n",
        )]
    });
    let r = registry_at(&raw.url(), None);
    let b = run(r.blob(
        &repo("library/alpine"),
        &digest(&support::digest_of(b"x")),
        0,
        None,
    ));
    assert_protocol_error(b, &raw, "limit");
    assert!(raw.bytes_written() < 16 << 20, "{}", raw.bytes_written());
}

#[test]
fn a_chunked_blob_streams_with_an_unknown_total() {
    let blob = support::pseudo_random_bytes(7, 100_000);
    let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in blob.chunks(7777) {
        answer.extend(format!("{:x}\r\n", chunk.len()).bytes());
        answer.extend(chunk);
        answer.extend(b"\r\n");
    }
    answer.extend(b"0\r\n\r\n");
    let raw = answering(answer);
    let r = registry_at(&raw.url(), None);
    let got = run(async {
        let b = r
            .blob(
                &repo("library/alpine"),
                &digest(&support::digest_of(&blob)),
                0,
                None,
            )
            .await
            .unwrap();
        assert_eq!((b.offset, b.total), (0, None));
        read_all(b).await.unwrap()
    });
    assert_eq!(got, blob);
}

#[test]
fn a_chunked_body_cut_before_its_last_chunk_is_unexpected_eof() {
    let raw = answering("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    let r = registry_at(&raw.url(), None);
    let err = run(async {
        let mut b = r
            .blob(
                &repo("library/alpine"),
                &digest(&support::digest_of(b"x")),
                0,
                None,
            )
            .await
            .unwrap();
        let mut got = Vec::new();
        let err = b.body.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(got, b"hello");
        err
    });
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn a_close_delimited_http_1_0_answer_is_read_to_its_end() {
    let raw = answering(format!(
        "HTTP/1.0 200 OK\r\nContent-Type: {MANIFEST_TYPE}\r\n\r\n{MANIFEST}"
    ));
    let m = get_manifest(&raw).unwrap();
    assert_eq!(m.body.as_deref(), Some(MANIFEST.as_bytes()));
}

#[test]
fn conflicting_content_lengths_are_refused() {
    let raw = answering(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_TYPE}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{MANIFEST}"
    ));
    assert_protocol_error(get_manifest(&raw), &raw, "Content-Length");
    let raw = answering(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_TYPE}\r\nContent-Length: +5\r\n\r\n{MANIFEST}"
    ));
    assert_protocol_error(get_manifest(&raw), &raw, "Content-Length");
}

#[test]
fn an_unknown_transfer_coding_is_refused() {
    let raw = answering(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_TYPE}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    ));
    assert_protocol_error(get_manifest(&raw), &raw, "Transfer-Encoding");
}

#[test]
fn garbage_instead_of_a_status_line_is_a_protocol_error() {
    for garbage in [
        &b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"HTTP/1.1 999999 Big\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
    ] {
        let raw = answering(garbage);
        assert_protocol_error(get_manifest(&raw), &raw, "response head");
    }
}

#[test]
fn an_answer_that_ends_inside_its_head_is_unavailable() {
    let raw = answering("HTTP/1.1 200 OK\r\nContent-Le");
    let e = get_manifest(&raw);
    assert!(
        matches!(&e, Err(UpstreamError::Unavailable(m)) if m.contains("closed")),
        "{e:?}"
    );
}

#[test]
fn a_silent_upstream_times_out_waiting_for_the_head() {
    let raw = RawUpstream::start(|_| vec![Step::send("HTTP/1.1 200"), Step::Hold]);
    let started = Instant::now();
    let e = get_manifest(&raw);
    assert!(
        // The head deadline and the idle timeout are both the upstream timeout here: either
        // may fire first, and both are the same clean failure.
        matches!(&e, Err(UpstreamError::Unavailable(m))
            if m.contains("no response head") || m.contains("sent nothing for")),
        "{e:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= TIMEOUT - Duration::from_millis(50) && took < TIMEOUT * 4,
        "{took:?}"
    );
}
