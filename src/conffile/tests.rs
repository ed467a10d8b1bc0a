//! Unit tests of the configuration file's syntax: each rule, each error with its line and
//! fix, the limits.

use super::*;

fn kind(text: &str) -> (usize, ErrorKind) {
    let e = parse(text).unwrap_err();
    (e.line, e.kind)
}

#[test]
fn settings_comments_blanks_and_quotes() {
    let text = "# regmirror\n\n  listen = :5000\r\ncache-dir=\"/srv/my cache\"\n\
                upstream = ghcr.io=https://ghcr.io\nupstream = quay.io=https://quay.io\n\
                \t# indented comment\nverbose = yes";
    let got = parse(text).unwrap();
    let pairs: Vec<_> = got
        .iter()
        .map(|e| (e.line, e.key, e.value.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (3, Key::Listen, ":5000"),
            (4, Key::CacheDir, "/srv/my cache"),
            (5, Key::Upstream, "ghcr.io=https://ghcr.io"),
            (6, Key::Upstream, "quay.io=https://quay.io"),
            (8, Key::Verbose, "yes"),
        ]
    );
}

#[test]
fn an_empty_file_is_all_defaults() {
    assert_eq!(parse(""), Ok(vec![]));
    assert_eq!(parse("\n\n# nothing\n"), Ok(vec![]));
}

#[test]
fn every_key_is_accepted() {
    for k in Key::ALL {
        let e = parse(&format!("{k} = x")).unwrap();
        assert_eq!(e[0].key, k);
    }
}

#[test]
fn errors_name_the_line_and_the_fix() {
    assert_eq!(
        kind("listen = :5000\nlisten = :6000"),
        (2, ErrorKind::Repeated(Key::Listen, 1))
    );
    assert_eq!(
        kind("\nlisen = :5000"),
        (2, ErrorKind::UnknownKey("lisen".into(), Some(Key::Listen)))
    );
    assert_eq!(
        kind("colour = red"),
        (1, ErrorKind::UnknownKey("colour".into(), None))
    );
    assert_eq!(kind("listen :5000"), (1, ErrorKind::NotKeyValue));
    assert_eq!(kind("= :5000"), (1, ErrorKind::NotKeyValue));
    assert_eq!(kind("tag ttl = 5m"), (1, ErrorKind::NotKeyValue));
    assert_eq!(
        kind("--listen = :5000"),
        (1, ErrorKind::Dashes("listen".into()))
    );
    assert_eq!(kind("config = /etc/x"), (1, ErrorKind::Nested));
    assert_eq!(kind("tag-ttl ="), (1, ErrorKind::EmptyValue(Key::TagTtl)));
    assert_eq!(
        kind("tag-ttl = \"\""),
        (1, ErrorKind::EmptyValue(Key::TagTtl))
    );
    assert_eq!(
        kind("tag-ttl = 5m # five minutes"),
        (1, ErrorKind::InlineComment(Key::TagTtl))
    );
    assert_eq!(
        kind("cache-dir = \"/a"),
        (1, ErrorKind::BadQuotes(Key::CacheDir))
    );
    assert_eq!(
        kind("cache-dir = \"/a\"b\""),
        (1, ErrorKind::BadQuotes(Key::CacheDir))
    );
    assert_eq!(
        kind("cache-dir = /a\u{1b}[2J"),
        (1, ErrorKind::ControlCharacter(Key::CacheDir))
    );
    let msg = parse("x\nmax-size = 1\nmax-size = 2")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("line 1: expected `key = value`"), "{msg}");
    let msg = parse("max-size = 1\nmax-size = 2").unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("line 1"), "{msg}");
}

#[test]
fn limits_are_enforced() {
    let big = "#".repeat(MAX_FILE_BYTES + 1);
    assert_eq!(kind(&big), (0, ErrorKind::TooBig));
    let long = format!("cache-dir = /{}", "a".repeat(MAX_LINE_BYTES));
    assert_eq!(kind(&long), (1, ErrorKind::LineTooLong));
    let many = "upstream = a.io=http://a\n".repeat(MAX_ENTRIES + 1);
    assert_eq!(kind(&many), (MAX_ENTRIES + 1, ErrorKind::TooManyEntries));
    let just = "upstream = a.io=http://a\n".repeat(MAX_ENTRIES);
    assert_eq!(parse(&just).unwrap().len(), MAX_ENTRIES);
}

#[test]
fn a_value_may_hold_equals_signs_and_hashes_without_a_blank() {
    let e = parse("upstream-auth = docker.io=bob:/etc/regmirror/pw#1").unwrap();
    assert_eq!(e[0].value, "docker.io=bob:/etc/regmirror/pw#1");
    let e = parse("cache-dir = \"/srv/a #b\"").unwrap();
    assert_eq!(e[0].value, "/srv/a #b");
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("listen", "listen"), 0);
    assert_eq!(edit_distance("lisen", "listen"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("maxsize", "max-size"), 1);
}
