//! Unit tests of the command line: defaults, upstream flags, one-line errors, help and
//! version, credentials from a file.

use super::*;

fn serve(args: &[&str]) -> Result<Config, String> {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    match parse("regmirror", &all)? {
        Parsed::Run(Command::Serve(s)) => s.into_config(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults() {
    let c = serve(&[]).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
    assert_eq!(c.cache_dir, PathBuf::from("regmirror-cache"));
    assert_eq!(c.upstreams.len(), 1);
    assert_eq!(
        c.upstreams[0].url.to_string(),
        "https://registry-1.docker.io:443"
    );
    assert_eq!(c.max_size, None);
}

#[test]
fn upstream_override_and_extra() {
    let c = serve(&[
        "--upstream",
        "docker.io=http://127.0.0.1:5000",
        "--upstream",
        "ghcr.io=https://ghcr.io",
    ])
    .unwrap();
    let names: Vec<_> = c
        .upstreams
        .iter()
        .map(|u| (u.name.as_str(), u.url.to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("docker.io", "http://127.0.0.1:5000".into()),
            ("ghcr.io", "https://ghcr.io:443".into())
        ]
    );
}

#[test]
fn bad_flags_are_one_line() {
    for args in [
        vec!["--max-size", "lots"],
        vec!["--tag-ttl", "300"],
        vec!["--upstream", "docker.io"],
        vec!["--listen", "nowhere"],
    ] {
        let err = serve(&args).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }
    for args in [vec!["serve", "--bogus"], vec![]] {
        let msg = parse("regmirror", &args).unwrap_err();
        assert!(!msg.trim_end().contains('\n'), "{msg}");
    }
}

#[test]
fn help_and_version_are_text_to_print() {
    for args in [
        vec!["--help"],
        vec!["-h"],
        vec!["serve", "-h"],
        vec!["verify", "--help"],
    ] {
        match parse("regmirror", &args) {
            Ok(Parsed::Print(text)) => assert!(text.contains("Usage"), "{text}"),
            other => panic!("{args:?}: {other:?}"),
        }
    }
    for flag in ["--version", "-V"] {
        match parse("regmirror", &[flag]) {
            Ok(Parsed::Print(text)) => {
                assert_eq!(text, format!("regmirror {}\n", env!("CARGO_PKG_VERSION")))
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn credentials_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let auth = format!("docker.io=bob:{}", pw.display());
    let c = serve(&["--upstream-auth", &auth]).unwrap();
    let creds = c.upstreams[0].credentials.as_ref().unwrap();
    assert_eq!(
        (creds.user.as_str(), creds.password.as_str()),
        ("bob", "s3cret")
    );
    assert!(serve(&["--upstream-auth", "docker.io=bob:/nonexistent"]).is_err());
}
