//! Well-formed chunked bodies (src/upstream/chunked.rs), through
//! `regmirror::upstream::fuzz::chunked_round_trip`: what is encoded decodes back exactly,
//! whatever the chunk sizes, extensions, trailers and read sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| regmirror::upstream::fuzz::chunked_round_trip(data));
