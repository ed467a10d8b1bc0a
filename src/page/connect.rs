//! "Connect your machines": copy-paste configuration for Docker, containerd, k3s and podman,
//! one set per configured upstream, written for the address the browser used to reach the
//! page — the `Host` header, if it is a plain `host[:port]` ([`mirror_host`]); anything
//! else (a hostile `Host` carrying markup, a path, user info) is ignored for the listen
//! address. Every snippet is escaped again when written into the page.

use super::html::esc;
use crate::reference::UpstreamName;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Longest DNS name (RFC 1035): a longer `Host` is not a host we could be reached by.
const MAX_HOST_NAME: usize = 253;

/// `Host` as the page may repeat it: `name[:port]`, `IPv4[:port]` or `[IPv6][:port]`.
pub fn valid_host(host: &str) -> Option<String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            v6.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (format!("[{v6}]"), port)
        }
        None => {
            let (name, port) = match host.rsplit_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (host, None),
            };
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            };
            if name.is_empty() || name.len() > MAX_HOST_NAME || !name.split('.').all(label_ok) {
                return None;
            }
            (name.to_ascii_lowercase(), port)
        }
    };
    match port {
        None => Some(name),
        Some(p) => {
            let n: u16 = p
                .parse()
                .ok()
                .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))?;
            (n != 0).then(|| format!("{name}:{n}"))
        }
    }
}

/// The address to put in the snippets: the request's `Host` if valid, else the listen
/// address (its port with this machine's name when it listens on every address).
pub fn mirror_host(host: Option<&str>, listen: Option<SocketAddr>) -> String {
    if let Some(h) = host.and_then(valid_host) {
        return h;
    }
    match listen {
        Some(a) if !a.ip().is_unspecified() => a.to_string(),
        Some(a) => format!("{}:{}", machine_name(), a.port()),
        None => machine_name(),
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`), if it is a valid one.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|n| valid_host(n.trim()))
        .unwrap_or_else(|| "THIS-MACHINE".to_owned())
}

/// Where containerd should find the upstream itself: Docker Hub's API host, else the
/// registry's own name.
fn origin(up: &UpstreamName) -> String {
    if up.is_docker_hub() {
        "https://registry-1.docker.io".into()
    } else {
        format!("https://{up}")
    }
}

/// The snippets, as an HTML section. `scheme` is `http` or `https` (TLS on the port).
pub fn section(host: &str, scheme: &str, upstreams: &[UpstreamName]) -> String {
    let mut out = String::from("<section id=\"connect\"><h2>Connect your machines</h2>");
    let _ = write!(
        out,
        "<p class=\"muted\">For <code data-k=\"connect-host\">{}</code> (the address this page \
         was opened with). Each file below goes on the machine that pulls.</p>",
        esc(host)
    );
    for up in upstreams {
        let name = up.as_str();
        let _ = write!(
            out,
            "<details{}><summary>{}</summary>",
            if up.is_docker_hub() { " open" } else { "" },
            esc(name)
        );
        if up.is_docker_hub() {
            snippet(
                &mut out,
                "Docker: /etc/docker/daemon.json (then restart dockerd)",
                &format!(
                    "{{\n  \"registry-mirrors\": [\"{scheme}://{host}\"]{}\n}}",
                    if scheme == "http" {
                        format!(",\n  \"insecure-registries\": [\"{host}\"]")
                    } else {
                        String::new()
                    }
                ),
            );
        } else {
            snippet(
                &mut out,
                "Docker mirrors only Docker Hub: pull through the path prefix",
                &format!("docker pull {host}/{name}/OWNER/IMAGE:TAG"),
            );
        }
        snippet(
            &mut out,
            &format!("containerd: /etc/containerd/certs.d/{name}/hosts.toml"),
            &format!(
                "server = \"{}\"\n\n[host.\"{scheme}://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]",
                origin(up)
            ),
        );
        snippet(
            &mut out,
            "containerd 1.x: /etc/containerd/config.toml (version = 2)",
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"",
        );
        snippet(
            &mut out,
            "containerd 2.x: /etc/containerd/config.toml (version = 3)",
            "[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"",
        );
        snippet(
            &mut out,
            "k3s: /etc/rancher/k3s/registries.yaml",
            &format!("mirrors:\n  {name}:\n    endpoint:\n      - \"{scheme}://{host}\""),
        );
        snippet(
            &mut out,
            "podman, cri-o, skopeo: /etc/containers/registries.conf",
            &format!(
                "[[registry]]\nprefix = \"{name}\"\nlocation = \"{name}\"\n\n[[registry.mirror]]\nlocation = \"{host}\"{}",
                if scheme == "http" { "\ninsecure = true" } else { "" }
            ),
        );
        out.push_str("</details>");
    }
    out.push_str("</section>");
    out
}

fn snippet(out: &mut String, title: &str, text: &str) {
    let _ = write!(
        out,
        "<h3>{}</h3><pre data-k=\"snippet\">{}</pre>",
        esc(title),
        esc(text)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hosts_are_kept_and_anything_else_refused() {
        assert_eq!(
            valid_host("pi.local:5000").as_deref(),
            Some("pi.local:5000")
        );
        assert_eq!(valid_host("PI.Local").as_deref(), Some("pi.local"));
        assert_eq!(
            valid_host("192.168.1.20:5000").as_deref(),
            Some("192.168.1.20:5000")
        );
        assert_eq!(
            valid_host("[fe80::1]:5000").as_deref(),
            Some("[fe80::1]:5000")
        );
        assert_eq!(valid_host("[::1]").as_deref(), Some("[::1]"));
        for bad in [
            "",
            "pi\"><script>alert(1)</script>",
            "pi:5000/x",
            "user@pi",
            "pi:0",
            "pi:70000",
            "pi:+5",
            "-pi",
            "pi..local",
            "[zz::1]:5000",
            "[::1]x",
            "pi'onload=x",
            &"a".repeat(300),
        ] {
            assert_eq!(valid_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_hostile_host_falls_back_to_the_listen_address() {
        let listen = "127.0.0.1:5000".parse().ok();
        assert_eq!(mirror_host(Some("<script>"), listen), "127.0.0.1:5000");
        assert_eq!(mirror_host(None, listen), "127.0.0.1:5000");
        assert_eq!(mirror_host(Some("pi:5000"), listen), "pi:5000");
        let any = "0.0.0.0:5000".parse().ok();
        assert!(mirror_host(Some("x y"), any).ends_with(":5000"));
    }

    #[test]
    fn snippets_for_each_client_and_upstream() {
        let ups = [UpstreamName::docker_hub(), "ghcr.io".parse().unwrap()];
        let s = section("pi:5000", "http", &ups);
        for want in [
            "&quot;registry-mirrors&quot;: [&quot;http://pi:5000&quot;]",
            "certs.d/docker.io/hosts.toml",
            "server = &quot;https://registry-1.docker.io&quot;",
            "[host.&quot;http://pi:5000&quot;]",
            "io.containerd.grpc.v1.cri",
            "io.containerd.cri.v1.images",
            "config_path = &quot;/etc/containerd/certs.d&quot;",
            "mirrors:\n  ghcr.io:\n    endpoint:\n      - &quot;http://pi:5000&quot;",
            "prefix = &quot;ghcr.io&quot;",
            "location = &quot;pi:5000&quot;\ninsecure = true",
            "docker pull pi:5000/ghcr.io/OWNER/IMAGE:TAG",
        ] {
            assert!(s.contains(want), "missing {want:?}");
        }
    }
}
