//! The value parsers of flags and the configuration file (src/config.rs): sizes,
//! durations, listen addresses, upstream URLs. Properties: a parsed size reads back from
//! its digits (also with a `B`); a parsed duration reads back from its human form; a
//! listen address and an upstream URL read back from their printed forms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::config::{
    human_duration, human_size, parse_duration, parse_listen, parse_size, UpstreamUrl,
};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = parse_size(s) {
        assert_eq!(parse_size(&n.to_string()), Ok(n));
        assert_eq!(parse_size(&format!("{n}B")), Ok(n));
        let _ = parse_size(&human_size(n));
    }
    if let Ok(d) = parse_duration(s) {
        assert_eq!(d.subsec_nanos(), 0, "{d:?}");
        assert_eq!(
            parse_duration(&human_duration(d)),
            Ok(d),
            "{}",
            human_duration(d)
        );
    }
    if let Ok(a) = parse_listen(s) {
        assert_eq!(parse_listen(&a.to_string()), Ok(a));
    }
    if let Ok(u) = UpstreamUrl::parse(s) {
        assert_eq!(UpstreamUrl::parse(&u.to_string()).as_ref(), Ok(&u), "{u}");
    }
});
