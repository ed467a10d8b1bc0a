//! `regmirror tls init`: a small local CA and a server certificate for the box's names and
//! addresses (rcgen, ECDSA P-256), and the text that says exactly where each client must
//! put the CA. Run again (more names, a new address), it keeps the CA — clients that trust
//! it go on trusting the new certificate — and replaces only the server's.
//!
//! Files in the directory: `ca.crt` (give it to clients), `ca.key` (keep it; mode 0600),
//! `server.crt`, `server.key` (for `--tls-cert`, `--tls-key`; the key mode 0600).
//!
//! Validity starts at [`VALID_FROM`], not "now": a Pi has no clock battery, and a
//! certificate made while its clock still says 1970 would be expired for every client.
//! A clock before that date is refused outright.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Where certificates' validity starts; also the earliest system clock `tls init` believes.
pub const VALID_FROM: (i32, u8, u8) = (2025, 1, 1);

/// How long the CA is valid: clients are set up once, so long; it never leaves the box.
pub const CA_YEARS: i32 = 20;

/// How long a server certificate is valid; `tls init` again makes a new one with the same CA.
pub const SERVER_YEARS: i32 = 5;

/// What `tls init` is asked to make.
#[derive(Debug, Clone)]
pub struct Request {
    /// Directory for the four files (created if missing).
    pub dir: PathBuf,
    /// DNS names clients use for the box (`pi.local`).
    pub names: Vec<String>,
    /// Addresses clients use.
    pub ips: Vec<IpAddr>,
    /// The port regmirror listens on (for the paths clients need).
    pub port: u16,
}

/// What `tls init` did.
#[derive(Debug)]
pub struct Made {
    /// The CA was there already and kept.
    pub kept_ca: bool,
    /// The text for the user.
    pub instructions: String,
}

/// Makes (or keeps) the CA and makes the server certificate, as the module docs say.
pub fn run(req: &Request, now: OffsetDateTime) -> Result<Made, String> {
    let from = rcgen::date_time_ymd(VALID_FROM.0, VALID_FROM.1, VALID_FROM.2);
    if now < from {
        return Err(format!(
            "the system clock says {}, before {}: set the time first (a Pi has no clock \
             battery; `date -s`, or wait for NTP), else the certificates would be expired",
            now.date(),
            from.date()
        ));
    }
    if req.names.is_empty() && req.ips.is_empty() {
        return Err(
            "give the names and addresses clients use for this box: --name pi.local \
                    --ip 192.168.1.50 (each repeatable)"
                .into(),
        );
    }
    fs::create_dir_all(&req.dir).map_err(|e| format!("{}: {e}", req.dir.display()))?;
    let (ca_key, kept_ca) = ca(&req.dir, now)?;
    let issuer = Issuer::new(ca_params(&ca_key, now), &ca_key);

    let mut sans: Vec<String> = req.names.clone();
    sans.extend(req.ips.iter().map(ToString::to_string));
    let mut params = CertificateParams::new(sans).map_err(|e| format!("bad name: {e}"))?;
    params.distinguished_name = DistinguishedName::new();
    let first = req
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| req.ips[0].to_string());
    params.distinguished_name.push(DnType::CommonName, first);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = from;
    params.not_after = years_after(now, SERVER_YEARS);
    params.serial_number = Some(serial()?);
    let key = KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| format!("signing the server certificate: {e}"))?;
    write(&req.dir.join("server.key"), &key.serialize_pem(), true)?;
    write(&req.dir.join("server.crt"), &cert.pem(), false)?;
    Ok(Made {
        kept_ca,
        instructions: instructions(req, kept_ca),
    })
}

/// The CA key: read from `ca.key` (with `ca.crt` beside it), or made with its certificate.
fn ca(dir: &Path, now: OffsetDateTime) -> Result<(KeyPair, bool), String> {
    let (key_path, crt_path) = (dir.join("ca.key"), dir.join("ca.crt"));
    if key_path.exists() {
        let pem = read(&key_path)?;
        let key = KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", key_path.display()))?;
        let crt = read(&crt_path)?;
        let der = pem_der(&crt).ok_or_else(|| format!("{}: no certificate", crt_path.display()))?;
        if !der
            .windows(key.public_key_raw().len())
            .any(|w| w == key.public_key_raw())
        {
            return Err(format!(
                "{} does not belong to {}: move both away to make a new CA",
                crt_path.display(),
                key_path.display()
            ));
        }
        return Ok((key, true));
    }
    let key = KeyPair::generate().map_err(|e| format!("generating the CA key: {e}"))?;
    let mut params = ca_params(&key, now);
    params.serial_number = Some(serial()?);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("making the CA certificate: {e}"))?;
    write(&key_path, &key.serialize_pem(), true)?;
    write(&crt_path, &cert.pem(), false)?;
    Ok((key, false))
}

/// The CA's parameters, a function of its key alone, so that a kept CA signs with the same
/// subject (its name carries a fingerprint of the key, so two boxes' CAs differ by name).
fn ca_params(key: &KeyPair, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let fp = Sha256::digest(key.public_key_raw());
    let fp: String = fp[..4].iter().map(|b| format!("{b:02x}")).collect();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "regmirror");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("regmirror local CA {fp}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(VALID_FROM.0, VALID_FROM.1, VALID_FROM.2);
    params.not_after = years_after(now, CA_YEARS);
    params
}

fn years_after(t: OffsetDateTime, years: i32) -> OffsetDateTime {
    let d = t.date();
    // 29 February has no twin in most years: the 28th is close enough.
    let day = d.day().min(28);
    rcgen::date_time_ymd(d.year() + years, u8::from(d.month()), day)
}

/// 16 random bytes, the top bit clear (serials are positive).
fn serial() -> Result<SerialNumber, String> {
    let mut b = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    b[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&b))
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use futures_rustls::pki_types::pem::PemObject;
    futures_rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|c| c.to_vec())
}

fn read(p: &Path) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Writes `text` to `p` through a temporary file and a rename; `secret`: mode 0600.
fn write(p: &Path, text: &str, secret: bool) -> Result<(), String> {
    let tmp = p.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mode = if secret { 0o600 } else { 0o644 };
    let what = |e: std::io::Error| format!("{}: {e}", p.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(what)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(what)?;
    fs::rename(&tmp, p).map_err(what)
}

/// Where each kind of client needs the CA, for every name and address of `req`.
fn instructions(req: &Request, kept_ca: bool) -> String {
    let dir = fs::canonicalize(&req.dir).unwrap_or_else(|_| req.dir.clone());
    let d = dir.display();
    let port = req.port;
    let mut hosts: Vec<String> = req.names.clone();
    hosts.extend(req.ips.iter().map(|ip| match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }));
    let host = &hosts[0];
    let ca = if kept_ca {
        format!("kept the CA already in {d} (clients that trust it need nothing new)")
    } else {
        format!("made a new CA in {d}")
    };
    let mut out = format!(
        "regmirror tls init: {ca}; server certificate for {} (valid {SERVER_YEARS} years).\n\n\
         Serve with:\n  regmirror serve --tls-cert {d}/server.crt --tls-key {d}/server.key …\n\
         (or `tls-cert =` and `tls-key =` lines in /etc/regmirror/regmirror.conf; the service\n\
         user must be able to read server.key: e.g. chgrp regmirror {d}/server.key && chmod 0640 {d}/server.key)\n\
         TLS and plain HTTP then share port {port}.\n\n\
         Give each client the CA, {d}/ca.crt (keep ca.key on this box only):\n\n",
        hosts.join(", ")
    );
    out.push_str("Docker Engine (daemon.json \"registry-mirrors\": [\"https://HOST:PORT\"]):\n");
    for h in &hosts {
        out.push_str(&format!("  /etc/docker/certs.d/{h}:{port}/ca.crt\n"));
    }
    out.push_str(&format!(
        "\ncontainerd (and nerdctl), /etc/containerd/certs.d/docker.io/hosts.toml:\n\
         \x20 server = \"https://registry-1.docker.io\"\n\
         \x20 [host.\"https://{host}:{port}\"]\n\
         \x20   capabilities = [\"pull\", \"resolve\"]\n\
         \x20   ca = \"/etc/containerd/certs.d/docker.io/regmirror-ca.crt\"\n\
         \x20 (copy ca.crt to that path; the same for other registries' directories)\n\
         \npodman, cri-o, skopeo, buildah:\n"
    ));
    for h in &hosts {
        out.push_str(&format!("  /etc/containers/certs.d/{h}:{port}/ca.crt\n"));
    }
    out.push_str(&format!(
        "  and in /etc/containers/registries.conf: [[registry.mirror]] location = \"{host}:{port}\"\n\
         \nk3s, /etc/rancher/k3s/registries.yaml:\n\
         \x20 mirrors:\n\
         \x20   docker.io:\n\
         \x20     endpoint: [\"https://{host}:{port}\"]\n\
         \x20 configs:\n\
         \x20   \"{host}:{port}\":\n\
         \x20     tls:\n\
         \x20       ca_file: /etc/rancher/k3s/regmirror-ca.crt\n\
         \nCheck from a client: curl --cacert ca.crt https://{host}:{port}/v2/\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(dir: &Path) -> Request {
        Request {
            dir: dir.to_path_buf(),
            names: vec!["pi.local".into(), "localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            port: 5000,
        }
    }

    #[test]
    fn makes_a_ca_and_a_certificate_rustls_accepts_and_says_where_the_ca_goes() {
        let dir = tempfile::tempdir().unwrap();
        let made = run(&req(dir.path()), OffsetDateTime::now_utc()).unwrap();
        assert!(!made.kept_ca);
        for f in ["ca.crt", "ca.key", "server.crt", "server.key"] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        crate::server::tls::acceptor(
            &dir.path().join("server.crt"),
            &dir.path().join("server.key"),
        )
        .unwrap();
        let text = made.instructions;
        for want in [
            "/etc/docker/certs.d/pi.local:5000/ca.crt",
            "/etc/docker/certs.d/127.0.0.1:5000/ca.crt",
            "/etc/docker/certs.d/[::1]:5000/ca.crt",
            "ca = \"/etc/containerd/certs.d/docker.io/regmirror-ca.crt\"",
            "/etc/containers/certs.d/pi.local:5000/ca.crt",
            "ca_file: /etc/rancher/k3s/regmirror-ca.crt",
            "--tls-cert",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }

    #[test]
    fn a_second_run_keeps_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        run(&req(dir.path()), OffsetDateTime::now_utc()).unwrap();
        let ca = fs::read(dir.path().join("ca.crt")).unwrap();
        let server = fs::read(dir.path().join("server.crt")).unwrap();
        let made = run(&req(dir.path()), OffsetDateTime::now_utc()).unwrap();
        assert!(made.kept_ca);
        assert_eq!(fs::read(dir.path().join("ca.crt")).unwrap(), ca);
        assert_ne!(fs::read(dir.path().join("server.crt")).unwrap(), server);
    }

    #[test]
    fn a_clock_in_1970_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(&req(dir.path()), OffsetDateTime::UNIX_EPOCH).unwrap_err();
        assert!(e.contains("1970") && e.contains("clock"), "{e}");
        let mut r = req(dir.path());
        r.names.clear();
        r.ips.clear();
        assert!(run(&r, OffsetDateTime::now_utc())
            .unwrap_err()
            .contains("--name"));
    }
}
