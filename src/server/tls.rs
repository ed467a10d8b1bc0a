//! The TLS side of the listener: the server configuration from `--tls-cert`/`--tls-key`
//! (rustls with the ring provider, the same stack as the upstream client) and what a
//! connection's first byte decides.
//!
//! One port for both. A connection whose first byte is `0x16` (a TLS handshake record) is
//! TLS, anything else plain HTTP: a request line starts with a method's letters, never with
//! that byte. So every client keeps the one address it knows (`pi:5000`) whether it is set
//! up for `http://` or `https://`, a network needs one port opened, and clients can move to
//! TLS one at a time. Without `--tls-cert`, a ClientHello (skopeo, podman and cri-o try
//! https first on an `insecure` mirror) is answered with a TLS alert and logged at debug
//! level only: the client falls back to http at once, and the log gets no line per pull.
//!
//! Cost: `sendfile(2)` cannot go through TLS, so cached blobs are read into a
//! [`TLS_COPY_BUF`] buffer and encrypted. Measured on the x86 build machine (a cached 200 MB
//! blob 5 times to curl on loopback): plain 331 MB/s at 0.32 s of our CPU per GB, TLS
//! 271 MB/s at 0.80 s per GB; the e2e `tls` scenario prints the same comparison. Each TLS
//! connection also holds rustls's buffers (up to [`TLS_SEND_BUFFER`] of records not yet
//! sent, plus the record it reads): measured (release, 200 idle keep-alive connections after
//! one request each), ≈8.7 KiB per TLS connection against ≈3.2 KiB per plain one.

use futures_rustls::pki_types::pem::PemObject;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{self, ServerConfig};
use futures_rustls::TlsAcceptor;
use std::path::Path;
use std::sync::Arc;

/// First byte of a TLS record carrying a handshake message (a ClientHello).
pub const TLS_HANDSHAKE: u8 = 0x16;

/// Buffer through which file bytes go to a TLS connection (in place of `sendfile`): one
/// TLS record's worth of plaintext, so each read becomes one record.
pub const TLS_COPY_BUF: usize = 16 * 1024;

/// Most TLS bytes rustls keeps queued for a connection that is slow to read; past it a
/// write waits (and the write timeout applies), so a slow TLS reader costs bounded memory.
pub const TLS_SEND_BUFFER: usize = 64 * 1024;

/// A fatal `handshake_failure` alert (TLS record type 21, version 3.1, length 2, level 2,
/// description 40): what a plain-HTTP-only port answers a ClientHello with.
pub const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28];

/// The acceptor for `cert` (a PEM chain, the server's certificate first) and `key`. Errors
/// are one line naming the file and the fix.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let c = cert.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {c}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {c}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {c}: no PEM certificate in it (`regmirror tls init` makes one)"
        ));
    }
    let k = key.display();
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {k}: no PEM private key could be read: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert {c} with --tls-key {k}: {e}"))?;
    // We speak HTTP/1.1 only; a client offering h2 and http/1.1 gets http/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.send_half_rtt_data = false;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Both TLS files or neither: the start-up error for one without the other.
pub fn from_config(config: &crate::config::Config) -> Result<Option<TlsAcceptor>, String> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => acceptor(cert, key).map(Some),
        (None, None) => Ok(None),
        (Some(_), None) => Err("--tls-cert needs --tls-key (its private key)".into()),
        (None, Some(_)) => Err("--tls-key needs --tls-cert (the certificate)".into()),
    }
}
