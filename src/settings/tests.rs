//! Unit tests of settings: the file and the flags merged, errors that name their source, and
//! the checks both go through.

use super::*;

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regmirror.conf");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn flags_override_the_file_and_upstreams_merge_by_name() {
    let (_d, path) = file(
        "listen = :6000\ntag-ttl = 1h\nupstream = ghcr.io=https://ghcr.io\n\
         upstream = docker.io=http://10.0.0.5:5000\n",
    );
    let mut s = Settings::from_file(&path).unwrap();
    s.flag(Key::Listen, "127.0.0.1:7000");
    s.flag(Key::Upstream, "docker.io=http://127.0.0.1:9");
    let c = s.into_config().unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
    assert_eq!(c.tag_ttl.as_secs(), 3600);
    let ups: Vec<_> = c
        .upstreams
        .iter()
        .map(|u| format!("{}={}", u.name, u.url))
        .collect();
    assert_eq!(
        ups,
        [
            "ghcr.io=https://ghcr.io:443",
            "docker.io=http://127.0.0.1:9"
        ]
    );
    assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
}

#[test]
fn errors_say_which_line_of_which_file() {
    let (_d, path) = file("# x\nmax-size = lots\n");
    let e = Settings::from_file(&path)
        .unwrap()
        .into_config()
        .unwrap_err();
    assert!(
        e.starts_with(&format!("{}: line 2: max-size \"lots\"", path.display())),
        "{e}"
    );
    let (_d, path) = file("listen = :5000\nlisten = :6000\n");
    let e = Settings::from_file(&path).unwrap_err();
    assert!(e.contains("line 2") && e.contains("line 1"), "{e}");
}

#[test]
fn a_registry_given_twice_in_one_source_is_an_error() {
    let (_d, path) = file("upstream = ghcr.io=https://a.io\nupstream = ghcr.io=https://b.io\n");
    let e = Settings::from_file(&path)
        .unwrap()
        .into_config()
        .unwrap_err();
    assert!(e.contains("line 2") && e.contains("line 1"), "{e}");
    let mut s = Settings::default();
    s.flag(Key::UpstreamAuth, "docker.io=a:/x");
    s.flag(Key::UpstreamAuth, "docker.io=b:/y");
    let e = s.into_config().unwrap_err();
    assert!(
        e.starts_with("--upstream-auth") && e.contains("already"),
        "{e}"
    );
}

#[test]
fn allow_lines_add_up_and_flags_replace_them() {
    let (_d, path) = file("allow = 10.0.0.0/8\nallow = private, 203.0.113.0/24\n");
    let c = Settings::from_file(&path).unwrap().into_config().unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let admits = |c: &Config, s: &str| c.allow.iter().any(|r| r.contains(ip(s)));
    assert!(admits(&c, "203.0.113.7") && admits(&c, "192.168.0.1"));
    let mut s = Settings::from_file(&path).unwrap();
    s.flag(Key::Allow, "198.51.100.0/24");
    let c = s.into_config().unwrap();
    assert!(admits(&c, "198.51.100.1") && !admits(&c, "10.0.0.1") && !admits(&c, "127.0.0.1"));
    assert!(
        admits(&Config::new("x".into()), "127.0.0.1"),
        "default: private"
    );
    let mut s = Settings::default();
    s.flag(Key::Allow, "10.1.2.3/8");
    let e = s.into_config().unwrap_err();
    assert!(e.starts_with("--allow") && e.contains("10.0.0.0/8"), "{e}");
}

#[test]
fn max_size_has_a_floor() {
    let mut s = Settings::default();
    s.flag(Key::MaxSize, "10");
    let e = s.into_config().unwrap_err();
    assert!(e.contains("10 B") && e.contains("floor"), "{e}");
    let mut s = Settings::default();
    s.flag(Key::MaxSize, "100MB");
    assert_eq!(s.into_config().unwrap().max_size, Some(MIN_MAX_SIZE));
}

#[test]
fn verbose_and_read_ahead_read_yes_and_no() {
    assert!(
        Settings::default().into_config().unwrap().read_ahead,
        "on by default"
    );
    for (v, want) in [("yes", true), ("No", false), ("on", true), ("0", false)] {
        let mut s = Settings::default();
        s.flag(Key::Verbose, v);
        s.flag(Key::ReadAhead, v);
        let c = s.into_config().unwrap();
        assert_eq!((c.verbose, c.read_ahead), (want, want), "{v}");
    }
    for key in [Key::Verbose, Key::ReadAhead] {
        let mut s = Settings::default();
        s.flag(key, "maybe");
        let e = s.into_config().unwrap_err();
        assert!(e.contains(key.name()) && e.contains("yes or no"), "{e}");
    }
}

#[test]
fn a_file_that_is_not_text_or_too_big_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::write(&bin, b"listen = :5000\n\xff\xfe\n").unwrap();
    let e = Settings::from_file(&bin).unwrap_err();
    assert!(e.contains("line 2") && e.contains("UTF-8"), "{e}");
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES + 10]).unwrap();
    assert!(Settings::from_file(&big).unwrap_err().contains("KiB"));
    let e = Settings::from_file(&dir.path().join("missing")).unwrap_err();
    assert!(e.starts_with("--config") && e.contains("missing"), "{e}");
}
