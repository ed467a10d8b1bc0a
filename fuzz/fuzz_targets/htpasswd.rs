//! The `--htpasswd` file (src/access/htpasswd.rs) and a client's `Authorization` header
//! checked against a fixed file. Input: `FILE\0AUTHORIZATION`. Properties: a parsed file
//! has at least one user and no more than it has lines; any header is a verdict, and only
//! the right password is `Valid`. The fuzzed file is never checked against (a fuzzed
//! bcrypt cost could take hours: the file is the operator's, not outside bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::access::htpasswd::{Htpasswd, Verdict};
use regmirror::http::{parse_head, Parsed};
use std::time::Instant;

/// The fixed file: user `u`, password `pw`, bcrypt cost 4 (the smallest: a check that
/// reaches bcrypt costs about a millisecond).
fn fixed() -> Htpasswd {
    let hash = bcrypt::hash_with_salt("pw", 4, [7; 16]).expect("bcrypt");
    Htpasswd::parse(&format!(
        "u:{}\n",
        hash.format_for_version(bcrypt::Version::TwoB)
    ))
    .expect("the fixed file parses")
}

fuzz_target!(|data: &[u8]| {
    let (file, auth) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(text) = std::str::from_utf8(file) {
        if let Ok(h) = Htpasswd::parse(text) {
            assert!(h.users() >= 1 && h.users() <= text.lines().count());
        }
    }
    // Not Sync (it remembers checks in a RefCell): one per thread; libFuzzer runs one.
    thread_local! { static H: Htpasswd = fixed(); }
    let mut head = b"GET /v2/ HTTP/1.1\r\nHost: m\r\nAuthorization: ".to_vec();
    head.extend_from_slice(auth);
    head.extend_from_slice(b"\r\n\r\n");
    let Ok(Parsed::Complete { head, .. }) = parse_head(&head) else {
        return;
    };
    let verdict = H.with(|h| h.check(&head.request, Instant::now()));
    if verdict == Verdict::Valid {
        let value = head
            .request
            .headers
            .get("authorization")
            .unwrap_or_default();
        // base64("u:pw") is dTpwdw==; its first five characters are fixed by those bytes.
        assert!(value.contains("dTpwd"), "Valid for {value:?}");
    }
});
