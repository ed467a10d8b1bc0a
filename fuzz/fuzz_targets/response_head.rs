//! An upstream's response head (src/upstream/head.rs) and the body framing it implies,
//! through `regmirror::upstream::fuzz::response_head`, which asserts the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| regmirror::upstream::fuzz::response_head(data));
