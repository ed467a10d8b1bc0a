//! Repository names, tags, references, registry names and digests (src/reference.rs,
//! src/digest.rs), as they arrive in request paths and operator input. Properties: what
//! parses is within its length limit and reads back from its text as the same value; a
//! digest's text is canonical; Docker Hub's `library/` prefix keeps a name valid (the input itself) and its hex round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::digest::Digest;
use regmirror::reference::{
    Reference, Repository, Tag, UpstreamName, MAX_REPOSITORY_LEN, MAX_TAG_LEN,
    MAX_UPSTREAM_NAME_LEN,
};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Repository::parse(s) {
        assert!(r.as_str().len() <= MAX_REPOSITORY_LEN);
        assert_eq!(r.as_str(), s);
        assert!(r.components().all(|c| !c.is_empty()));
        if let Ok(prefixed) = r.clone().with_library_prefix() {
            assert!(prefixed.as_str().len() <= MAX_REPOSITORY_LEN);
            assert_eq!(Repository::parse(prefixed.as_str()).as_ref(), Ok(&prefixed));
        }
    }
    if let Ok(t) = Tag::parse(s) {
        assert!(t.as_str().len() <= MAX_TAG_LEN);
        assert_eq!(t.as_str(), s);
    }
    if let Ok(r) = Reference::parse(s) {
        assert_eq!(r.to_string(), s);
        assert_eq!(Reference::parse(&r.to_string()).as_ref(), Ok(&r));
    }
    if let Ok(n) = UpstreamName::parse(s) {
        assert!(n.as_str().len() <= MAX_UPSTREAM_NAME_LEN);
        assert_eq!(UpstreamName::parse(n.as_str()).as_ref(), Ok(&n));
    }
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.to_string(), s);
        assert_eq!(Digest::from_hex(&d.hex()), Some(d));
    }
    let d = Digest::of(data);
    assert_eq!(Digest::parse(&d.to_string()), Ok(d));
});
