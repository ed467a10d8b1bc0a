//! Entry points for fuzzing the upstream parsers from outside the crate (cargo-fuzz targets,
//! property tests): each takes arbitrary bytes, runs a parser over them as `wire.rs` does,
//! and panics only if one of the parser's own promises breaks. The mirror never calls them.

use super::chunked::Decoder;
use super::head::{framing, head_end, parse_head, MAX_RESPONSE_HEAD_BYTES};

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
        }
    }
}
