//! The `Range` request header (src/http/range.rs) against a blob length taken from the
//! input's first 8 bytes. Properties: a partial answer lies within the blob and holds at
//! least one byte; it reads back the same when written as `bytes=first-last`; no header
//! is a full answer; nothing in an empty blob is satisfiable as a part.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::http::{parse_range, RangeAnswer};

fuzz_target!(|data: &[u8]| {
    let Some((len, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    // Small lengths half of the time, so that the header's numbers fall around them.
    let total = match u64::from_le_bytes(*len) {
        t if t & 1 == 0 => t >> 1,
        t => (t >> 1) % 4096,
    };
    assert_eq!(parse_range(None, total), RangeAnswer::Full);
    match parse_range(Some(header), total) {
        RangeAnswer::Partial(r) => {
            assert!(r.start < r.end && r.end <= total, "{r:?} of {total}");
            assert_eq!(r.len(), r.end - r.start);
            let again = format!("bytes={}-{}", r.start, r.end - 1);
            assert_eq!(
                parse_range(Some(&again), total),
                RangeAnswer::Partial(r),
                "{again}"
            );
        }
        RangeAnswer::Unsatisfiable | RangeAnswer::Full => {}
    }
});
