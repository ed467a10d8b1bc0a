//! The TLS listener (issue 9): `regmirror tls init`'s certificate served with
//! `--tls-cert/--tls-key` on the same port as plain HTTP; a client that trusts only the CA
//! pulls manifests and blobs (cached blobs go through a copy buffer, not `sendfile`); and a
//! ClientHello on a port without TLS gets a TLS alert, not an HTTP 400.

mod support;

use futures_rustls::pki_types::pem::PemObject;
use futures_rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::client::{exchange, get, Resp};
use support::mirror::Mirror;
use support::{FakeUpstream, TestImage};

fn tls_init(dir: &Path) {
    let req = regmirror::tls_init::Request {
        dir: dir.to_path_buf(),
        names: vec!["localhost".into()],
        ips: vec!["127.0.0.1".parse().unwrap()],
        port: 5000,
    };
    regmirror::tls_init::run(&req, time::OffsetDateTime::now_utc()).unwrap();
}

/// A client trusting only `ca`: no web PKI roots, no "insecure".
fn tls_get(addr: SocketAddr, ca: &Path, path: &str) -> Resp {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let stream = rustls::StreamOwned::new(conn, tcp);
    exchange(stream, &addr.to_string(), "GET", path, &[])
}

#[test]
fn a_client_trusting_only_the_ca_pulls_over_tls_and_plain_http_still_works() {
    let fake = FakeUpstream::start();
    // A layer larger than the copy buffer and than rustls's send buffer.
    let img = TestImage::new(7, &[300_000, 5_000]);
    fake.push_image("library/alpine", "latest", &img);
    let tls = tempfile::tempdir().unwrap();
    tls_init(tls.path());
    let m = Mirror::start_with(&fake, |c| {
        c.tls_cert = Some(tls.path().join("server.crt"));
        c.tls_key = Some(tls.path().join("server.key"));
    });
    let ca = tls.path().join("ca.crt");
    let r = tls_get(m.addr, &ca, "/v2/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let r = tls_get(m.addr, &ca, "/v2/library/alpine/manifests/latest");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, img.manifest);
    let layer = img.layer_digest(0);
    for round in ["cold", "cached"] {
        let r = tls_get(m.addr, &ca, &format!("/v2/library/alpine/blobs/{layer}"));
        assert_eq!(r.status, 200, "{round}");
        assert_eq!(r.body, img.layers[0], "{round}");
    }
    // Plain HTTP on the same port.
    let r = get(m.addr, &format!("/v2/library/alpine/blobs/{layer}"));
    assert_eq!((r.status, r.body == img.layers[0]), (200, true));
}

#[test]
fn a_tls_hello_on_a_port_without_tls_gets_a_tls_alert() {
    let fake = FakeUpstream::start();
    let m = Mirror::start(&fake);
    let tls = tempfile::tempdir().unwrap();
    tls_init(tls.path());
    let mut tcp = TcpStream::connect(m.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Any ClientHello: the one our own client sends.
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(tls.path().join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    conn.write_tls(&mut tcp).unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert_eq!(
        got,
        [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28],
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn tls_files_that_do_not_fit_are_clear_startup_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = regmirror::config::Config::new(dir.path().join("cache"));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.tls_cert = Some(dir.path().join("missing.crt"));
    let e = regmirror::app::spawn(c.clone()).unwrap_err();
    assert!(e.contains("--tls-key"), "{e}");
    c.tls_key = Some(dir.path().join("missing.key"));
    let e = regmirror::app::spawn(c).unwrap_err();
    assert!(e.contains("--tls-cert") && e.contains("missing.crt"), "{e}");
}
