//! Start-up: from a validated [`Config`] to a bound socket and a ready [`Mirror`], with
//! every start-up failure as one sentence that names the fix, and the start-up line that
//! says where the mirror listens, where its cache is and how big its budget is.
//! [`spawn`] runs a whole server on a thread of its own, for tests and embedding.

use crate::access::Access;
use crate::budget;
use crate::cache::Cache;
use crate::config::{human_size, Config};
use crate::metrics::Metrics;
use crate::mirror::{Background, Mirror};
use crate::server::{self, Limits, Listener};
use crate::upstream::Upstreams;
use smol::LocalExecutor;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

/// Binds the socket, opens the cache and builds the upstream clients.
///
/// The socket comes first: a second regmirror started by mistake on the same cache must fail
/// on the taken port before it opens the cache, because opening cleans `tmp/` — where the
/// running one writes its downloads.
pub fn start(
    config: &Config,
    executor: Rc<LocalExecutor<'static>>,
) -> Result<(Listener, Rc<Mirror>), String> {
    let listener = Listener::bind(config.listen).map_err(|e| bind_error(config, &e))?;
    let listener = listener.with_tls(server::tls::from_config(config)?);
    let dir = &config.cache_dir;
    let metrics = Rc::new(Metrics::new());
    let cache =
        Cache::open(dir, config.max_size, metrics.clone()).map_err(|e| cache_error(config, &e))?;
    let upstreams = Upstreams::new(config, metrics.clone())?;
    let shown = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let space = budget::space(dir);
    let (why, size) = match (config.max_size, &space) {
        (Some(max), _) => (
            "--max-size".to_owned(),
            format!("a {} budget", human_size(max)),
        ),
        (None, Ok(s)) => (
            budget::why_derived(s),
            format!(
                "a budget of what it holds plus {}",
                human_size(budget::derived(s, 0))
            ),
        ),
        (None, Err(_)) => ("default".to_owned(), "the default budget".to_owned()),
    };
    // The blobs are counted by the index rebuilt in the background (it logs when done, and
    // warns then if an explicit budget is more than the disk can hold).
    log::info!(
        "regmirror {} listening on {}; cache {}: {size} ({why}); indexing its blobs",
        env!("CARGO_PKG_VERSION"),
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        shown.display(),
    );
    if let Some(cert) = config.tls_cert.as_ref().filter(|_| listener.tls()) {
        log::info!(
            "TLS and plain HTTP on the same port, certificate {}",
            cert.display()
        );
    }
    if let Some(file) = &config.config_file {
        log::info!("settings from {}", file.display());
    }
    for u in &config.upstreams {
        let auth = if u.credentials.is_some() {
            " (with credentials)"
        } else {
            ""
        };
        log::info!("upstream {} = {}{auth}", u.name, u.url);
    }
    let keep = match &config.keep {
        Some(path) => {
            let list = crate::keep::read(path)?;
            crate::mirror::keeper::check_upstreams(&list, &upstreams)
                .map_err(|e| format!("keep list {}: {e}", path.display()))?;
            log::info!(
                "keep list {}: {} images, revalidated every {}",
                path.display(),
                list.len(),
                crate::config::human_duration(config.keep_refresh)
            );
            list
        }
        None => Vec::new(),
    };
    let mut mirror = Mirror::new(cache, upstreams, config.tag_ttl, executor, metrics);
    mirror.access = Access::from_config(config)?;
    mirror.listen = listener.local_addr().ok();
    mirror.tls = listener.tls();
    mirror.host_info = config.host_info.clone();
    log::info!("{}", mirror.access.describe());
    let mirror = Rc::new(mirror);
    mirror.start_background(Background::from(config), keep);
    Ok((listener, mirror))
}

/// Runs a server on its own thread and executor; returns its address once it listens.
/// For tests and embedding: the product runs [`start`] + `server::serve` on the main thread.
pub fn spawn(config: Config) -> Result<SocketAddr, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let executor = Rc::new(LocalExecutor::new());
        match start(&config, executor.clone()) {
            Ok((listener, mirror)) => {
                let _ = tx.send(listener.local_addr().map_err(|e| e.to_string()));
                let limits = Limits::from(&config);
                // Runs until a start-up check made after start fails (then it stops, as
                // the binary does).
                let failing = mirror.clone();
                let stop = async move {
                    failing.failed().await;
                    "a failed start-up check"
                };
                smol::block_on(executor.run(server::serve(
                    listener,
                    mirror,
                    limits,
                    executor.clone(),
                    stop,
                )));
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

/// How to change a setting: the flag, and the file's line when there is a file.
fn how_to_set(config: &Config, key: &str) -> String {
    match &config.config_file {
        Some(f) => format!("`{key} =` in {} (or --{key})", f.display()),
        None => format!("--{key}"),
    }
}

/// Why the socket could not be bound, and what to do about it.
fn bind_error(config: &Config, e: &io::Error) -> String {
    let addr = config.listen;
    let port = addr.port();
    let listen = how_to_set(config, "listen");
    let no_ipv6 = e.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error());
    let advice = match e.kind() {
        _ if no_ipv6 => {
            format!("IPv6 is switched off on this machine; use :{port} (IPv4) with {listen}")
        }
        io::ErrorKind::AddrInUse => format!(
            "port {port} is in use — is another regmirror running (systemctl status regmirror)? \
             Stop it, or choose another port with {listen}, e.g. :{}",
            port.wrapping_add(1).max(1024)
        ),
        io::ErrorKind::PermissionDenied => format!(
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port such as 5000 with \
             {listen}"
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine; use :{port} for every interface ({listen})",
            addr.ip()
        ),
        _ => e.to_string(),
    };
    format!("cannot listen on {addr}: {advice}")
}

/// Why the cache directory cannot be used, and what to do about it.
fn cache_error(config: &Config, e: &io::Error) -> String {
    let dir = config.cache_dir.display();
    let cache_dir = how_to_set(config, "cache-dir");
    let advice = match e.kind() {
        io::ErrorKind::ReadOnlyFilesystem => format!(
            "; under the systemd unit only /var/cache/regmirror is writable — for another \
             directory add ReadWritePaths={dir} with `systemctl edit regmirror`, or choose another \
             with {cache_dir}"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "; give the user regmirror runs as write access to it, or choose another with \
             {cache_dir}"
        ),
        _ => format!("; choose another with {cache_dir}"),
    };
    format!("cache directory {dir} is not usable: {e}{advice}")
}
