//! `--allow` ranges (src/access/cidr.rs). Properties: a range prints as text that parses
//! back to it, contains its own network address, and a list parses word by word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::access::cidr::{self, Cidr};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Cidr::parse(s) {
        let text = c.to_string();
        assert_eq!(Cidr::parse(&text), Ok(c), "{text}");
        let net = text.split('/').next().unwrap().parse().unwrap();
        assert!(c.contains(net), "{text} does not contain its own address");
    }
    if let Ok(list) = cidr::parse_list(s) {
        assert!(!list.is_empty());
    }
});
