//! An upstream's `WWW-Authenticate` challenge and the Basic header we answer with
//! (src/upstream/challenge.rs, through `regmirror::upstream::fuzz::challenge`, which
//! asserts the properties).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| regmirror::upstream::fuzz::challenge(data));
