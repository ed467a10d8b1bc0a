//! The keep list (src/keep.rs): `IMAGE [PLATFORMS]` lines. Properties: within the entry
//! limit; no image twice; the entries printed one a line parse back to the same list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::keep::{self, MAX_KEEP_ENTRIES, MAX_PLATFORMS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = keep::parse_platforms(text);
    let Ok(entries) = keep::parse(text) else {
        return;
    };
    assert!(entries.len() <= MAX_KEEP_ENTRIES);
    for (i, e) in entries.iter().enumerate() {
        assert!(e.platforms.len() <= MAX_PLATFORMS);
        assert!(entries[..i].iter().all(|f| f.image != e.image), "{e} twice");
    }
    let printed: String = entries.iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(keep::parse(&printed).as_ref(), Ok(&entries), "{printed}");
});
