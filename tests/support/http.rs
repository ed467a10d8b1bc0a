//! The fake registry's HTTP side: read requests off a connection, route them, write answers.

use super::{image::base64, Cut, Listener, Logged, Shared, State};
use futures_rustls::rustls;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

/// How often a frozen connection checks whether its client left or the fake stopped.
const FROZEN_POLL: Duration = Duration::from_millis(50);

struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| percent_decode(v))
        })
    }
}

/// One answer. `cut`: stop after that many body bytes, closing or stalling the connection.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    cut: Option<(usize, Cut)>,
}

impl Answer {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            cut: None,
        }
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn error(status: u16, code: &str) -> Answer {
        let body = format!(r#"{{"errors":[{{"code":"{code}","message":"fake","detail":null}}]}}"#);
        Answer::new(status, body).header("Content-Type", "application/json")
    }
}

/// A connection the fake can serve: plain TCP or rustls over TCP.
pub(super) trait Wire: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Wire for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Serves one connection until the client closes it.
pub(super) fn serve<W: Wire>(conn: W, which: Listener, shared: &Shared) {
    let mut conn = BufReader::new(conn);
    loop {
        let Some(req) = read_request(&mut conn) else {
            return;
        };
        shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Logged {
                listener: which,
                method: req.method.clone(),
                target: req.target.clone(),
                host: req.header("host").unwrap_or("").to_owned(),
                authorization: req.header("authorization").map(str::to_owned),
                range: req.header("range").map(str::to_owned),
                accept: req.header("accept").map(str::to_owned),
            });
        let (frozen, delay) = {
            let s = shared.state();
            (s.frozen, s.delay)
        };
        if frozen {
            return hold(conn.get_mut(), shared);
        }
        thread::sleep(delay);
        let answer = route(&req, which, shared);
        let head = req.method == "HEAD";
        let w = conn.get_mut();
        let written = write_answer(w, &answer, head);
        match (written, answer.cut) {
            (false, _) => return,
            (true, Some((_, Cut::Close))) if !head => {
                let _ = w.flush();
                let _ = w.tcp().shutdown(Shutdown::Both);
                return;
            }
            (true, Some((_, Cut::Stall))) if !head => return hold(w, shared),
            (true, _) => {}
        }
    }
}

/// Reads a request head (and discards any body). `None` at end of stream.
fn read_request<R: BufRead>(reader: &mut R) -> Option<Req> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let req = Req {
        method,
        target,
        headers,
    };
    let len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut reader.by_ref().take(len), &mut std::io::sink()).ok()?;
    Some(req)
}

/// Never answers; returns when the client leaves or the fake stops.
fn hold<W: Wire>(conn: &mut W, shared: &Shared) {
    let _ = conn.tcp().set_read_timeout(Some(FROZEN_POLL));
    let mut buf = [0u8; 512];
    while !shared.stop.load(Ordering::SeqCst) {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Writes an answer (up to the cut, if any); false on a write error.
fn write_answer<W: Write>(w: &mut W, a: &Answer, head: bool) -> bool {
    let mut out = format!("HTTP/1.1 {} {}\r\n", a.status, reason(a.status));
    for (n, v) in &a.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", a.body.len()));
    let mut bytes = out.into_bytes();
    if !head {
        let n = a.cut.map_or(a.body.len(), |(c, _)| c.min(a.body.len()));
        bytes.extend_from_slice(&a.body[..n]);
    }
    w.write_all(&bytes).is_ok() && w.flush().is_ok()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn route(req: &Req, which: Listener, shared: &Shared) -> Answer {
    let path = req.path().to_owned();
    if which == Listener::Cdn {
        if req.method == "HEAD" && shared.state().cdn_refuses_head {
            return Answer::error(403, "DENIED");
        }
        return match path
            .strip_prefix("/cdn/")
            .and_then(|p| p.rsplit_once("/blobs/"))
        {
            Some((repo, digest)) => blob(req, &mut shared.state(), repo, digest),
            None => Answer::error(404, "NOT_FOUND"),
        };
    }
    if path == "/token" {
        return token(req, &mut shared.state());
    }
    let mut s = shared.state();
    let mut answer = registry(req, &path, &mut s, shared);
    if let Some(v) = &s.ratelimit_remaining {
        answer = answer.header("ratelimit-remaining", v.clone());
    }
    for (n, v) in &s.extra_headers {
        answer = answer.header(n, v.clone());
    }
    answer
}

fn registry(req: &Req, path: &str, s: &mut State, shared: &Shared) -> Answer {
    if let Some((status, retry_after)) = s.failure {
        let a = Answer::error(
            status,
            if status == 429 {
                "TOOMANYREQUESTS"
            } else {
                "UNAVAILABLE"
            },
        );
        return match retry_after {
            Some(secs) => a.header("Retry-After", secs.to_string()),
            None => a,
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Answer::error(404, "NOT_FOUND");
    };
    let (repo, kind, arg) = if let Some((r, t)) = rest.rsplit_once("/manifests/") {
        (r, "manifests", t)
    } else if let Some((r, d)) = rest.rsplit_once("/blobs/") {
        (r, "blobs", d)
    } else if let Some(r) = rest.strip_suffix("/tags/list") {
        (r, "tags", "")
    } else {
        ("", "base", "")
    };
    if let Some(denied) = check_auth(req, s, shared, repo) {
        return denied;
    }
    match kind {
        "manifests" => manifest(s, repo, arg),
        "blobs" if s.redirect_blobs => {
            let to = format!(
                "{}://localhost:{}/cdn/{repo}/blobs/{arg}?sig=s3cr3t",
                shared.scheme(),
                shared.cdn.port()
            );
            Answer::new(307, Vec::new()).header("Location", to)
        }
        "blobs" => blob(req, s, repo, arg),
        "tags" => match s.tags.get(repo) {
            Some(tags) => {
                let n: usize = req
                    .query("n")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                let list: Vec<String> = tags.iter().take(n).map(|t| format!("\"{t}\"")).collect();
                let body = format!(r#"{{"name":"{repo}","tags":[{}]}}"#, list.join(","));
                Answer::new(200, body).header("Content-Type", "application/json")
            }
            None => Answer::error(404, "NAME_UNKNOWN"),
        },
        _ if rest.is_empty() => Answer::new(200, "{}").header("Content-Type", "application/json"),
        _ => Answer::error(404, "NOT_FOUND"),
    }
}

/// `None` when the request may proceed; else the 401.
fn check_auth(req: &Req, s: &State, shared: &Shared, repo: &str) -> Option<Answer> {
    let given = req.header("authorization");
    if s.bearer.is_some() {
        let scope = format!("repository:{repo}:pull");
        let ok = given
            .and_then(|g| g.strip_prefix("Bearer "))
            .and_then(|t| s.tokens.get(t))
            .is_some_and(|sc| repo.is_empty() || *sc == scope);
        if ok {
            return None;
        }
        let realm = format!("{}://{}/token", shared.scheme(), shared.registry);
        let challenge =
            format!(r#"Bearer realm="{realm}",service="fake-registry",scope="{scope}""#);
        return Some(Answer::error(401, "UNAUTHORIZED").header("WWW-Authenticate", challenge));
    }
    if let Some((u, p)) = &s.basic {
        if given == Some(basic(u, p).as_str()) {
            return None;
        }
        return Some(
            Answer::error(401, "UNAUTHORIZED").header("WWW-Authenticate", r#"Basic realm="fake""#),
        );
    }
    None
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn token(req: &Req, s: &mut State) -> Answer {
    let Some(mode) = &s.bearer else {
        return Answer::error(404, "NOT_FOUND");
    };
    if let Some((u, p)) = &mode.credentials {
        if req.header("authorization") != Some(basic(u, p).as_str()) {
            return Answer::error(401, "UNAUTHORIZED");
        }
    }
    let expires = mode
        .expires_in
        .map_or(String::new(), |e| format!(r#","expires_in":{e}"#));
    let token = format!("tok{}", s.tokens.len() + 1);
    s.tokens
        .insert(token.clone(), req.query("scope").unwrap_or_default());
    Answer::new(200, format!(r#"{{"token":"{token}"{expires}}}"#))
        .header("Content-Type", "application/json")
}

fn manifest(s: &State, repo: &str, reference: &str) -> Answer {
    let Some((bytes, media_type)) = s.manifests.get(&(repo.to_owned(), reference.to_owned()))
    else {
        return Answer::error(404, "MANIFEST_UNKNOWN");
    };
    let digest = super::digest_of(bytes);
    let mut body = bytes.clone();
    if s.corrupt {
        flip(&mut body);
    }
    Answer::new(200, body)
        .header("Content-Type", media_type.clone())
        .header("Docker-Content-Digest", digest)
}

fn blob(req: &Req, s: &mut State, repo: &str, digest: &str) -> Answer {
    let Some(bytes) = s.blobs.get(&(repo.to_owned(), digest.to_owned())) else {
        return Answer::error(404, "BLOB_UNKNOWN");
    };
    let mut body = bytes.clone();
    if s.corrupt {
        flip(&mut body);
    }
    let total = body.len();
    // `bytes=N-` or `bytes=N-M`; anything else is ignored (whole blob).
    let range = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok())))
        .filter(|_| !s.ignore_range);
    let mut answer = match range {
        Some((start, _)) if start >= total => {
            return Answer::error(416, "RANGE_INVALID")
                .header("Content-Range", format!("bytes */{total}"));
        }
        Some((start, end)) => {
            let end = end.map_or(total - 1, |e| e.min(total - 1)).max(start);
            Answer::new(206, body[start..=end].to_vec())
                .header("Content-Range", format!("bytes {start}-{end}/{total}"))
        }
        None => Answer::new(200, body),
    };
    answer = answer
        .header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", digest)
        .header("Accept-Ranges", "bytes");
    if req.method == "GET" {
        answer.cut = s.cut.take();
    }
    answer
}

fn flip(bytes: &mut [u8]) {
    if let Some(b) = bytes.last_mut() {
        *b ^= 0x01;
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
