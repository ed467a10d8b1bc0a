//! Any bytes as an upstream's chunked body (src/upstream/chunked.rs), fed in pieces,
//! through `regmirror::upstream::fuzz::chunked_body`: the decoder never overruns its
//! buffers and always makes progress.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| regmirror::upstream::fuzz::chunked_body(data));
