//! Image references and platforms as operators write them (src/image_ref.rs: `--keep`
//! lines, prefetch requests) and platforms from manifests. Properties: what parses prints
//! as text that parses back to the same value; `from_json` agrees with `parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::image_ref::{ImageRef, Platform};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = ImageRef::parse(s) {
        let text = r.to_string();
        assert_eq!(ImageRef::parse(&text).as_ref(), Ok(&r), "{text}");
    }
    if let Ok(p) = Platform::parse(s) {
        let text = p.to_string();
        assert_eq!(Platform::parse(&text).as_ref(), Ok(&p));
        let json = serde_json::json!({"os": p.os, "architecture": p.arch, "variant": p.variant});
        assert_eq!(Platform::from_json(&json).as_ref(), Some(&p));
        assert!(p.selects(&p));
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = Platform::from_json(&v);
    }
});
