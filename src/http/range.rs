//! The `Range` request header (RFC 9110 §14): which part of a blob of known length a
//! client asks for.
//!
//! One range only. RFC 9110 §14.2 lets a server ignore `Range`: a header with several
//! ranges, or one we cannot read, is answered with the whole blob (200). Registry clients
//! ask for one range, to resume a download; multipart/byteranges replies would be code
//! no client of ours needs. Every number is parsed as digits only with checked
//! arithmetic: `bytes=5-18446744073709551615` means "from 5 to the end".

/// A satisfiable byte range, `end` exclusive. Invariant: `start < end <= total` of the
/// blob it was parsed against, so `end - start` and `end - 1` never overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Bytes in the range (never 0).
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Always false: a satisfiable range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a `Range` header asks of a blob of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Send everything with 200 (no header, or one we don't honour, like multiple ranges).
    Full,
    /// Send this part with 206.
    Partial(ByteRange),
    /// 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` against a blob of `total` bytes.
pub fn parse_range(header: Option<&str>, total: u64) -> RangeAnswer {
    let Some(header) = header else {
        return RangeAnswer::Full;
    };
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return RangeAnswer::Full;
    };
    // The unit is case-insensitive (RFC 9110 §14.1); several ranges are ignored.
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    match (digits(a), digits(b)) {
        // Suffix: the last n bytes.
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || total == 0 {
                return RangeAnswer::Unsatisfiable;
            }
            RangeAnswer::Partial(ByteRange {
                start: total.saturating_sub(n),
                end: total,
            })
        }
        (Some(start), last) if last.is_some() || b.is_empty() => {
            if last.is_some_and(|last| last < start) {
                return RangeAnswer::Full; // invalid: ignored
            }
            if start >= total {
                return RangeAnswer::Unsatisfiable;
            }
            // `last` may be anything up to u64::MAX: the range ends at the blob's end.
            let end = last.map_or(total, |last| last.saturating_add(1).min(total));
            RangeAnswer::Partial(ByteRange { start, end })
        }
        _ => RangeAnswer::Full,
    }
}

/// A non-empty run of ASCII digits as a `u64`; `None` for anything else or an overflow.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeAnswer {
        RangeAnswer::Partial(ByteRange { start, end })
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), RangeAnswer::Full);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), part(0, 10));
        assert_eq!(parse_range(Some("Bytes=0-9"), 100), part(0, 10));
        assert_eq!(parse_range(Some("bytes=90-"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=90-500"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=-500"), 100), part(0, 100));
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=5-3"), 100), RangeAnswer::Full);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeAnswer::Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeAnswer::Full);
    }

    #[test]
    fn numbers_at_the_edge_of_u64() {
        let max = u64::MAX.to_string();
        assert_eq!(
            parse_range(Some(&format!("bytes=5-{max}")), 100),
            part(5, 100)
        );
        assert_eq!(
            parse_range(Some(&format!("bytes=-{max}")), 100),
            part(0, 100)
        );
        assert_eq!(
            parse_range(Some(&format!("bytes={max}-")), 100),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some(&format!("bytes={max}-{max}")), u64::MAX),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some(&format!("bytes=0-{max}")), u64::MAX),
            part(0, u64::MAX)
        );
        for ignored in [
            "bytes=99999999999999999999-",
            "bytes=+5-9",
            "bytes=5-+9",
            "bytes=-",
            "bytes=0x1-2",
        ] {
            assert_eq!(
                parse_range(Some(ignored), 100),
                RangeAnswer::Full,
                "{ignored}"
            );
        }
    }

    #[test]
    fn every_partial_answer_keeps_the_invariant() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let edge = [0, 1, 2, 99, 100, 101, u64::MAX - 1, u64::MAX];
        for _ in 0..20_000 {
            let mut pick = || match next() % 3 {
                0 => edge[(next() % edge.len() as u64) as usize],
                1 => next() % 200,
                _ => next(),
            };
            let (a, b, total) = (pick(), pick(), pick());
            for header in [
                format!("bytes={a}-{b}"),
                format!("bytes={a}-"),
                format!("bytes=-{b}"),
            ] {
                if let RangeAnswer::Partial(r) = parse_range(Some(&header), total) {
                    assert!(
                        r.start < r.end && r.end <= total,
                        "{header} of {total}: {r:?}"
                    );
                }
            }
        }
    }
}
