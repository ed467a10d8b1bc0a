//! Decoding a `Transfer-Encoding: chunked` body (RFC 9112 §7.1): a small state machine over
//! bytes, no I/O, so that it can be fuzzed; `wire.rs` feeds it what the connection reads.
//!
//! Every part from outside is bounded while it is read: a chunk-size line (hex digits plus
//! any extension) by [`MAX_CHUNK_LINE_BYTES`], the size by checked arithmetic, the trailer
//! section by [`MAX_TRAILER_BYTES`]. Extensions and trailer fields are read and discarded,
//! whatever bytes they hold. Line ends may be CRLF or a bare LF.

use std::fmt;

/// Longest chunk-size line, extensions included. A size is at most 16 hex digits; real
/// extensions are rare and short. Bounds a line that never ends.
pub(crate) const MAX_CHUNK_LINE_BYTES: usize = 4 << 10;

/// Largest trailer section (all its lines). Registries send none; trailers are discarded,
/// so this only bounds how long we keep reading them.
pub(crate) const MAX_TRAILER_BYTES: usize = 16 << 10;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkError(&'static str);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad chunked body: {}", self.0)
    }
}

/// Where a chunk-size line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Hex digits (none yet, or some).
    Digits,
    /// Whitespace after the digits: only more of it or `;` may follow.
    Space,
    /// After `;`: anything up to the line end, discarded.
    Extension,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line: `value` so far, whether any digit came, which `part`, `line`
    /// bytes read, a CR just seen.
    Size {
        value: u64,
        digits: bool,
        part: Part,
        line: usize,
        cr: bool,
    },
    /// In chunk data, `left` bytes to go.
    Data { left: u64 },
    /// After chunk data: the line end that must follow (`cr`: its CR has come).
    DataEnd { cr: bool },
    /// In the trailer section: `total` bytes so far, `line` in the current field line.
    Trailer { total: usize, line: usize },
    /// The last chunk and the trailer section are through.
    Done,
}

const NEW_SIZE: State = State::Size {
    value: 0,
    digits: false,
    part: Part::Digits,
    line: 0,
    cr: false,
};

/// A chunked-body decoder. Feed it input with [`Decoder::decode`] until [`Decoder::is_done`].
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder { state: NEW_SIZE }
    }

    /// The terminating chunk and trailers are through: the body is complete.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input` into `out`: returns (bytes of `input` consumed, bytes of `out`
    /// written). Stops when `input` is used up, `out` is full while data is pending, or the
    /// body is done (bytes after its end are not consumed).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), ChunkError> {
        let (mut i, mut o) = (0, 0);
        while i < input.len() {
            match &mut self.state {
                State::Done => break,
                State::Data { left } => {
                    if o == out.len() {
                        break;
                    }
                    let n = (input.len() - i)
                        .min(out.len() - o)
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out[o..o + n].copy_from_slice(&input[i..i + n]);
                    (i, o) = (i + n, o + n);
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::DataEnd { cr: false };
                    }
                }
                state => {
                    *state = step(*state, input[i])?;
                    i += 1;
                }
            }
        }
        Ok((i, o))
    }
}

/// One byte outside chunk data.
fn step(state: State, b: u8) -> Result<State, ChunkError> {
    Ok(match state {
        State::Size {
            value,
            digits,
            part,
            line,
            cr,
        } => {
            let line = line + 1;
            if line > MAX_CHUNK_LINE_BYTES {
                return Err(ChunkError("chunk-size line over the limit"));
            }
            let next = |value, digits, part, cr| State::Size {
                value,
                digits,
                part,
                line,
                cr,
            };
            match (b, part) {
                (b'\n', _) if !digits => return Err(ChunkError("chunk-size line without a size")),
                (b'\n', _) if value == 0 => State::Trailer { total: 0, line: 0 },
                (b'\n', _) => State::Data { left: value },
                _ if cr => return Err(ChunkError("CR without LF in a chunk-size line")),
                (b'\r', _) if digits => next(value, digits, part, true),
                (_, Part::Extension) => next(value, digits, part, false),
                (b';', Part::Digits | Part::Space) if digits => {
                    next(value, digits, Part::Extension, false)
                }
                (b' ' | b'\t', Part::Digits | Part::Space) if digits => {
                    next(value, digits, Part::Space, false)
                }
                (_, Part::Digits) => {
                    let digit = char::from(b)
                        .to_digit(16)
                        .ok_or(ChunkError("chunk size is not hex"))?;
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(u64::from(digit)))
                        .ok_or(ChunkError("chunk size overflows 64 bits"))?;
                    next(value, true, part, false)
                }
                (_, Part::Space) => return Err(ChunkError("junk after the chunk size")),
            }
        }
        State::DataEnd { cr } => match b {
            b'\n' => NEW_SIZE,
            b'\r' if !cr => State::DataEnd { cr: true },
            _ => return Err(ChunkError("chunk data not followed by a line end")),
        },
        State::Trailer { total, line } => {
            let total = total + 1;
            if total > MAX_TRAILER_BYTES {
                return Err(ChunkError("trailer section over the limit"));
            }
            match b {
                b'\n' if line == 0 => State::Done,
                b'\n' => State::Trailer { total, line: 0 },
                b'\r' => State::Trailer { total, line },
                _ => State::Trailer {
                    total,
                    line: line + 1,
                },
            }
        }
        State::Data { .. } | State::Done => state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::testing::Rng;

    /// Decodes `input` fed in pieces of `piece` bytes into an `out` of `room` bytes at a time.
    fn decode_all(input: &[u8], piece: usize, room: usize) -> Result<(Vec<u8>, bool), ChunkError> {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        let mut out = vec![0u8; room];
        let mut at = 0;
        while at < input.len() && !d.is_done() {
            let end = (at + piece).min(input.len());
            let (used, wrote) = d.decode(&input[at..end], &mut out)?;
            got.extend_from_slice(&out[..wrote]);
            assert!(used <= end - at && wrote <= room);
            assert!(used > 0 || wrote > 0 || d.is_done(), "progress");
            at += used;
        }
        Ok((got, d.is_done()))
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let body =
            b"5;a=b\r\nhello\r\n6 ; q=\"x;y\"\r\n world\r\n0\r\nX-T: caf\xc3\xa9\xff\r\n\r\n";
        for piece in [1, 2, 7, 1000] {
            for room in [1, 3, 64] {
                assert_eq!(
                    decode_all(body, piece, room).unwrap(),
                    (b"hello world".to_vec(), true),
                    "{piece} {room}"
                );
            }
        }
        assert_eq!(
            decode_all(b"A\nabcdefghij\n0\n\n", 4, 4).unwrap(),
            (b"abcdefghij".to_vec(), true),
            "bare LF line ends"
        );
        assert_eq!(
            decode_all(b"00000000000000000000003\r\nabc\r\n0\r\n\r\n", 5, 5).unwrap(),
            (b"abc".to_vec(), true),
            "leading zeros are not an overflow"
        );
    }

    #[test]
    fn bytes_after_the_end_are_not_consumed() {
        let mut d = Decoder::new();
        let mut out = [0u8; 16];
        assert_eq!(d.decode(b"0\r\n\r\nHTTP/1.1", &mut out), Ok((5, 0)));
        assert!(d.is_done());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"fffffffffffffffff\r\n"[..],
            b"x\r\n",
            b"\r\n",
            b";ext\r\n",
            b"5\rX",
            b"5\r\nhelloX",
            b"5\r\nhello\r\r",
            b"-1\r\n",
            b"1 2\r\n",
        ] {
            assert!(
                decode_all(bad, 3, 8).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            decode_all(&[b'1'; MAX_CHUNK_LINE_BYTES + 1], 100, 8).unwrap_err(),
            ChunkError("chunk size overflows 64 bits")
        );
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_CHUNK_LINE_BYTES + 1, b'e');
        assert_eq!(
            decode_all(&long_ext, 100, 8).unwrap_err(),
            ChunkError("chunk-size line over the limit")
        );
        let mut trailers = b"0\r\n".to_vec();
        trailers.resize(3 + MAX_TRAILER_BYTES + 1, b't');
        assert_eq!(
            decode_all(&trailers, 100, 8).unwrap_err(),
            ChunkError("trailer section over the limit")
        );
    }

    #[test]
    fn a_body_cut_short_is_not_done() {
        for cut in ["5\r\nhel", "5\r\nhello\r\n", "0\r\n", "0\r\nX: y\r\n"] {
            let (_, done) = decode_all(cut.as_bytes(), 2, 8).unwrap();
            assert!(!done, "{cut:?}");
        }
    }

    /// Property: random data, chunked with random sizes, extensions and trailers and fed in
    /// random pieces, decodes to itself; random bytes never panic the decoder.
    #[test]
    fn random_round_trips_and_random_bytes() {
        let mut rng = Rng::new(0x5eed_0002);
        for _ in 0..2_000 {
            let data = rng.bytes_upto(3000, b"\r\n0;");
            let mut encoded = Vec::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(700));
                encoded.extend(format!("{n:x}").bytes());
                if rng.below(4) == 0 {
                    encoded.extend(b";e=\"v\"");
                }
                encoded.extend(b"\r\n");
                encoded.extend_from_slice(&rest[..n]);
                encoded.extend(b"\r\n");
                rest = &rest[n..];
            }
            encoded.extend(b"0\r\n");
            if rng.below(2) == 0 {
                let mut field = rng.bytes_upto(40, b":\r");
                field.retain(|&b| b != b'\n');
                encoded.extend(field);
                encoded.extend(b"\r\n");
            }
            encoded.extend(b"\r\n");
            let (piece, room) = (1 + rng.below(300), 1 + rng.below(300));
            assert_eq!(decode_all(&encoded, piece, room), Ok((data, true)));
            let noise = rng.mutate(&encoded);
            let _ = decode_all(&noise, piece, room);
            let noise = rng.bytes_upto(200, b"0123456789abcdefABCDEF;\r\n ");
            let _ = decode_all(&noise, piece, room);
        }
    }
}
