//! The fake's TLS identity: a test CA and a leaf for `localhost` and `127.0.0.1`, both valid
//! until 2126, checked in under `tests/support/tls/` (the CA key was thrown away). Made with
//! `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 … -addext
//! basicConstraints=critical,CA:TRUE` for the CA and `openssl x509 -req … -extfile` with
//! `subjectAltName=DNS:localhost,IP:127.0.0.1` for the leaf: webpki refuses a self-signed
//! CA certificate used directly as a server certificate.

use futures_rustls::pki_types::pem::PemObject;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls;
use std::path::PathBuf;
use std::sync::Arc;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls")
}

/// The PEM file of the CA that signed the fake's certificate: give it to the client as
/// its extra CA (`Config::upstream_ca`).
pub fn test_ca_path() -> PathBuf {
    dir().join("ca.pem")
}

/// Server side: the leaf certificate and its key, ring provider.
pub(super) fn server_config() -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir().join("server.pem"))
            .expect("tests/support/tls/server.pem")
            .collect::<Result<_, _>>()
            .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_file(dir().join("server-key.pem")).expect("server-key.pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key match");
    Arc::new(config)
}
