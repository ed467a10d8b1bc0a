//! Entry points for fuzzing the upstream parsers from outside the crate (cargo-fuzz targets,
//! property tests): each takes arbitrary bytes, runs a parser over them as `wire.rs` does,
//! and panics only if one of the parser's own promises breaks. The mirror never calls them.

use super::challenge::{basic_header, parse_challenge, Challenge};
use super::chunked::Decoder;
use super::head::{framing, head_end, parse_head, MAX_RESPONSE_HEAD_BYTES};
use crate::config::Credentials;

/// The response-head path: finds where a head ends (also when the search resumes at every
/// earlier read boundary, as the reader does), parses it, decides the body's framing.
/// Input longer than [`MAX_RESPONSE_HEAD_BYTES`] is cut there, as the reader cuts it.
pub fn response_head(data: &[u8]) {
    let data = &data[..data.len().min(MAX_RESPONSE_HEAD_BYTES)];
    let Some(end) = head_end(data, 0) else {
        let _ = parse_head(data);
        return;
    };
    assert!(end <= data.len(), "head end {end} beyond {}", data.len());
    for searched in [end.saturating_sub(1), end / 2, 1] {
        let searched = searched.min(end.saturating_sub(1));
        assert_eq!(head_end(data, searched), Some(end), "resumed at {searched}");
    }
    if let Ok(head) = parse_head(&data[..end]) {
        let _ = framing(&head, false);
        let _ = framing(&head, true);
    }
}

/// The chunked decoder, fed `data[2..]` in pieces of `data[0]` bytes (at least one) into an
/// output buffer of `data[1]` bytes (at least one), as a body reader does with its reads.
pub fn chunked_body(data: &[u8]) {
    let (piece, room, input) = match data {
        [p, r, rest @ ..] => (usize::from(*p).max(1), usize::from(*r).max(1), rest),
        _ => return,
    };
    let mut decoder = Decoder::new();
    let mut out = vec![0u8; room];
    let mut at = 0;
    while at < input.len() && !decoder.is_done() {
        let end = (at + piece).min(input.len());
        let Ok((used, wrote)) = decoder.decode(&input[at..end], &mut out) else {
            return;
        };
        assert!(
            used <= end - at && wrote <= room,
            "decoder overran its buffers"
        );
        assert!(
            used > 0 || wrote > 0 || decoder.is_done(),
            "decoder made no progress"
        );
        at += used;
    }
}

/// A body that *is* chunked correctly: `data[2..]` cut into chunks of sizes taken from
/// `data[0]` (hex digits upper or lower case by `data[1]`'s low bit, an extension by its
/// next bit), encoded, then decoded in pieces by [`chunked_body`]'s rules: the decoder must
/// give back exactly the bytes encoded and be done at the end.
pub fn chunked_round_trip(data: &[u8]) {
    let (size, style, body) = match data {
        [s, t, rest @ ..] => (usize::from(*s).max(1), *t, rest),
        _ => return,
    };
    let mut wire = Vec::new();
    for chunk in body.chunks(size) {
        let line = if style & 1 == 1 {
            format!("{:X}", chunk.len())
        } else {
            format!("{:x}", chunk.len())
        };
        wire.extend_from_slice(line.as_bytes());
        if style & 2 == 2 {
            wire.extend_from_slice(b";ext=\"v\"");
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n");
    if style & 4 == 4 {
        wire.extend_from_slice(b"Trailer: caf\xc3\xa9 \xff\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    let piece = usize::from(style >> 3).max(1);
    let mut decoder = Decoder::new();
    let mut out = vec![0u8; size];
    let mut got = Vec::with_capacity(body.len());
    let mut at = 0;
    while at < wire.len() && !decoder.is_done() {
        let end = (at + piece).min(wire.len());
        let (used, wrote) = decoder
            .decode(&wire[at..end], &mut out)
            .expect("a well-formed chunked body is refused");
        got.extend_from_slice(&out[..wrote]);
        at += used;
    }
    assert!(decoder.is_done(), "a complete chunked body is not done");
    assert_eq!(at, wire.len(), "the decoder stopped before the body's end");
    assert!(got == body, "decoded bytes differ from those encoded");
}

/// A `WWW-Authenticate` value, as an upstream's 401 carries it. A Bearer challenge always
/// has its realm, and leading or trailing blanks change nothing; the Basic header we would
/// answer with decodes back to the credentials (`data` split at its first NUL into user and
/// password).
pub fn challenge(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_challenge(text);
    assert_eq!(parsed, parse_challenge(&format!(" \t{text} ")));
    if let Some(Challenge::Bearer { realm, .. }) = &parsed {
        assert!(text.contains(realm.as_str()) || realm.is_empty() || text.contains('\\'));
    }
    let (user, password) = text.split_once('\0').unwrap_or((text, ""));
    let header = basic_header(&Credentials {
        user: user.into(),
        password: password.into(),
    });
    let encoded = header.strip_prefix("Basic ").expect("a Basic header");
    let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
        .expect("our base64 is standard base64");
    assert!(
        decoded == format!("{user}:{password}").as_bytes(),
        "Basic header does not decode to user:password"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::testing::Rng;

    #[test]
    fn the_fuzz_entry_points_hold_on_random_input() {
        let mut rng = Rng::new(0x5eed_0003);
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let chunked = b"\x03\x05a;x\r\n0123456789\r\n0\r\nT: v\r\n\r\n".to_vec();
        for _ in 0..20_000 {
            response_head(&rng.mutate(&head));
            response_head(&rng.bytes_upto(300, b"HTTP/1. 0\r\n:"));
            chunked_body(&rng.mutate(&chunked));
            chunked_body(&rng.bytes_upto(300, b"0123456789abcdef;\r\n"));
            chunked_round_trip(&rng.bytes_upto(300, b"\r\n0a;"));
            challenge(&rng.mutate(br#"Bearer realm="https://a/t",service="s",scope="x""#));
        }
    }
}
