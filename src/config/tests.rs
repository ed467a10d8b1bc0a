//! Unit tests of the value parsers: sizes, durations, listen addresses, upstream URLs, and
//! redacted credentials.

use super::*;

#[test]
fn sizes() {
    assert_eq!(parse_size("500MB"), Ok(500_000_000));
    assert_eq!(parse_size("20GiB"), Ok(20 << 30));
    assert_eq!(parse_size("1.5G"), Ok(3 << 29));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("10 kB"), Ok(10_000));
    assert_eq!(parse_size("0.25TB"), Ok(250_000_000_000));
    assert_eq!(parse_size(".5k"), Ok(512));
    assert_eq!(parse_size("16T"), Ok(16 << 40));
    assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    for bad in ["ten", "5XB", "", ".", "1.2.3G", "-5G", "1.0000001G"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
    // Out of range is an error, never a rounded or wrapped number.
    for huge in [
        "18446744073709551616",
        "16777216T",
        "99999999999999999999999G",
    ] {
        let e = parse_size(huge).unwrap_err();
        assert!(e.contains("out of range"), "{huge}: {e}");
    }
}

#[test]
fn size_errors_list_every_unit() {
    for bad in ["5XB", "lots"] {
        let e = parse_size(bad).unwrap_err();
        for unit in [
            "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "T",
        ] {
            assert!(
                e.split(|c: char| !c.is_ascii_alphabetic())
                    .any(|w| w == unit),
                "{bad}: {unit} missing from {e}"
            );
        }
    }
    // …and every unit listed is accepted, in any case.
    for unit in [
        "B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "T",
    ] {
        assert!(parse_size(&format!("1{unit}")).is_ok(), "{unit}");
        assert!(
            parse_size(&format!("1{}", unit.to_lowercase())).is_ok(),
            "{unit}"
        );
    }
}

#[test]
fn human_sizes() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1536), "1.5 KiB");
    assert_eq!(human_size(500_000_000), "476.8 MiB");
    assert_eq!(human_size(25 << 30), "25.0 GiB");
    assert_eq!(human_size(u64::MAX), "16384.0 PiB");
    let back = parse_size(&human_size(25 << 30).replace(' ', "")).unwrap();
    assert_eq!(back, 25 << 30);
}

#[test]
fn listen_addresses() {
    let ok = |s: &str| parse_listen(s).map(|a| a.to_string());
    assert_eq!(ok("0.0.0.0:5000").as_deref(), Ok("0.0.0.0:5000"));
    assert_eq!(ok(":5000").as_deref(), Ok("0.0.0.0:5000"));
    assert_eq!(ok("*:5000").as_deref(), Ok("0.0.0.0:5000"));
    assert_eq!(ok("localhost:5000").as_deref(), Ok("127.0.0.1:5000"));
    assert_eq!(ok("LOCALHOST:80").as_deref(), Ok("127.0.0.1:80"));
    assert_eq!(ok("[::]:5000").as_deref(), Ok("[::]:5000"));
    assert_eq!(ok("[::1]:0").as_deref(), Ok("[::1]:0"));
    assert_eq!(ok("192.168.1.10:5000").as_deref(), Ok("192.168.1.10:5000"));
    let e = parse_listen("5000").unwrap_err();
    assert!(e.contains(":5000"), "{e}");
    let e = parse_listen("::5000").unwrap_err();
    assert!(e.contains("brackets"), "{e}");
    for bad in ["nowhere", "pi.local:5000", ":http", ":65536", "", "[::]"] {
        let e = parse_listen(bad).unwrap_err();
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    for bad in ["", "300", "5x", "m", "1h 5m", "-1s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn upstream_urls() {
    let u = UpstreamUrl::parse("http://127.0.0.1:5000").unwrap();
    assert_eq!(
        (u.https, u.host.as_str(), u.port),
        (false, "127.0.0.1", 5000)
    );
    let u = UpstreamUrl::parse("https://ghcr.io/").unwrap();
    assert_eq!((u.https, u.host.as_str(), u.port), (true, "ghcr.io", 443));
    let u = UpstreamUrl::parse("http://[::1]:8080").unwrap();
    assert_eq!(u.authority(), "[::1]:8080");
    let u = UpstreamUrl::parse("http://central:5000/ghcr.io/").unwrap();
    assert_eq!(u.prefix.as_ref().map(|p| p.as_str()), Some("ghcr.io"));
    assert_eq!(
        (u.origin(), u.to_string()),
        (
            "http://central:5000".into(),
            "http://central:5000/ghcr.io".into()
        )
    );
    let u = UpstreamUrl::parse("https://harbor.example/proxy/hub").unwrap();
    assert_eq!(u.prefix.unwrap().as_str(), "proxy/hub");
    for bad in [
        "ftp://x",
        "https://",
        "https://h/Path",
        "https://h/../x",
        "https://h/a?ns=b",
        "http://u:p@h",
        "http://h:port",
    ] {
        assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn credentials_debug_is_redacted() {
    let c = Credentials {
        user: "bob".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{c:?}").contains("hunter2"));
}
