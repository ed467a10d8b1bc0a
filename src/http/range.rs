//! The `Range` request header (RFC 9110 §14): which part of a blob of known length a
//! client asks for.

/// A satisfiable byte range, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
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
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        // Suffix: the last n bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeAnswer::Full;
        };
        if n == 0 || total == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        ByteRange {
            start: total.saturating_sub(n),
            end: total,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeAnswer::Full;
        };
        let end = match b {
            "" => total,
            b => match b.parse::<u64>() {
                Ok(last) if last >= start => (last + 1).min(total),
                _ => return RangeAnswer::Full,
            },
        };
        if start >= total {
            return RangeAnswer::Unsatisfiable;
        }
        ByteRange { start, end }
    };
    RangeAnswer::Partial(range)
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
}
