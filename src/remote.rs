//! `regmirror prefetch IMAGE…`: asks a running mirror to fetch images now
//! (`POST /_regmirror/admin/prefetch`), then follows the jobs
//! (`GET /_regmirror/prefetch?id=…`) and draws a progress bar per image until every one is
//! done or failed. On a terminal the bars are redrawn in place; otherwise (a log, a CI job)
//! a line is printed whenever a job's state changes.
//!
//! This runs in the CLI's own process, not in the server: a small blocking client on
//! `std::net` (one request per connection, `Connection: close`, every read and write under
//! [`IO_TIMEOUT`], the answer bounded by [`MAX_ANSWER_BYTES`] while read), the head parsed
//! with httparse as the server's and the upstream client's are.

use crate::config::human_size;
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// Longest a read or write to the mirror may wait: it answers these requests from memory.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read: the jobs of one request are a few hundred bytes each.
pub const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// How often the jobs are asked about while they run.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// Width of a progress bar, in characters.
const BAR_WIDTH: usize = 24;

/// Where the mirror is and how to act on it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`
    pub authority: String,
    /// The admin token.
    pub token: String,
}

impl Target {
    /// From `http://host:port` (or `host:port`) and the token file.
    pub fn new(mirror: &str, token_file: &Path) -> Result<Target, String> {
        let rest = mirror.strip_prefix("http://").unwrap_or(mirror);
        if mirror.starts_with("https://") {
            return Err(format!(
                "--mirror {mirror}: use the mirror's plain http:// address on this machine \
                 (the admin API needs no TLS on loopback)"
            ));
        }
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "--mirror {mirror:?}: expected http://HOST:PORT, e.g. http://127.0.0.1:5000"
            ));
        }
        let mut text = String::new();
        std::fs::File::open(token_file)
            .and_then(|f| f.take(4096).read_to_string(&mut text))
            .map_err(|e| {
                format!(
                    "--admin-token-file {}: {e} (the file the mirror was started with; \
                     run as a user who may read it, e.g. with sudo)",
                    token_file.display()
                )
            })?;
        Ok(Target {
            authority: authority.to_owned(),
            token: text.lines().next().unwrap_or("").trim().to_owned(),
        })
    }

    /// Sends `method path` with the token; the status and the JSON answer.
    fn call(&self, method: &str, path: &str) -> Result<(u16, Value), String> {
        let addr = self
            .authority
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.authority))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.authority))?;
        let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| {
            format!(
                "cannot reach the mirror at {}: {e} (is it running? use --mirror)",
                self.authority
            )
        })?;
        s.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\nContent-Length: 0\r\n\r\n",
            self.authority, self.token
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.take(MAX_ANSWER_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("reading the mirror's answer: {e}"))?;
        if raw.len() as u64 > MAX_ANSWER_BYTES {
            return Err("the mirror's answer is too large".into());
        }
        parse_answer(&raw)
    }
}

/// A response's status and JSON body (`Null` when the body is not JSON).
fn parse_answer(raw: &[u8]) -> Result<(u16, Value), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let end = match res.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("the mirror's answer is not HTTP".into()),
    };
    let status = res.code.unwrap_or(0);
    let body = &raw[end..];
    Ok((status, serde_json::from_slice(body).unwrap_or(Value::Null)))
}

/// The error message of an OCI error answer.
fn error_message(status: u16, v: &Value) -> String {
    v["errors"][0]["message"]
        .as_str()
        .map_or_else(|| format!("the mirror answered {status}"), str::to_owned)
}

/// Percent-encodes a query value (image references have `/` and `:`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// One line for a job: the image, a bar, bytes, blobs or why it waits or failed.
pub fn line(job: &Value, width: usize) -> String {
    let image = job["image"].as_str().unwrap_or("?");
    let n = |k: &str| job[k].as_u64().unwrap_or(0);
    let (done, total) = (n("done_bytes"), n("total_bytes"));
    let state = job["state"].as_str().unwrap_or("?");
    let bar = |fraction: f64| {
        let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
        format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
    };
    let tail = match state {
        "done" => format!("{} done", bar(1.0)),
        "failed" => format!("failed: {}", job["error"].as_str().unwrap_or("")),
        "waiting" => format!("waiting: {}", job["reason"].as_str().unwrap_or("")),
        "queued" => "queued".into(),
        _ if total == 0 => "resolving manifests".into(),
        _ => format!(
            "{} {:>3}%  {} / {}  {}/{} blobs",
            bar(done as f64 / total as f64),
            done * 100 / total,
            human_size(done),
            human_size(total),
            n("blobs_done"),
            n("blobs_total")
        ),
    };
    format!("{image:<width$}  {tail}")
}

/// Runs `regmirror prefetch`: `Ok(true)` when every image was fetched.
pub fn prefetch(t: &Target, images: &[String], platforms: Option<&str>) -> Result<bool, String> {
    let mut path = String::from("/_regmirror/admin/prefetch?");
    let params: Vec<String> = images
        .iter()
        .map(|i| format!("image={}", encode(i)))
        .chain(platforms.map(|p| format!("platform={}", encode(p))))
        .collect();
    path.push_str(&params.join("&"));
    let (status, v) = t.call("POST", &path)?;
    if status != 202 {
        return Err(error_message(status, &v));
    }
    let ids: Vec<String> = v["jobs"]
        .as_array()
        .ok_or("the mirror's answer has no jobs")?
        .iter()
        .filter_map(|id| id.as_u64().map(|n| n.to_string()))
        .collect();
    let follow = format!("/_regmirror/prefetch?id={}", ids.join(","));
    let tty = std::io::stdout().is_terminal();
    let mut out = std::io::stdout();
    let mut shown: Vec<String> = Vec::new();
    let mut drawn = 0;
    loop {
        let (status, v) = t.call("GET", &follow)?;
        let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
        if status != 200 || jobs.len() != ids.len() {
            return Err(format!(
                "the mirror no longer knows these jobs (restarted?): {}",
                error_message(status, &v)
            ));
        }
        let width = jobs
            .iter()
            .map(|j| j["image"].as_str().unwrap_or("").len())
            .max()
            .unwrap_or(0);
        let lines: Vec<String> = jobs.iter().map(|j| line(j, width)).collect();
        if tty {
            if drawn > 0 {
                let _ = write!(out, "\x1b[{drawn}A");
            }
            for l in &lines {
                let _ = writeln!(out, "\r\x1b[2K{l}");
            }
            drawn = lines.len();
        } else {
            // A line when a job's state (not its byte count) changes.
            for (j, l) in jobs.iter().zip(&lines) {
                let key = format!("{}:{}", j["id"], j["state"]);
                if !shown.contains(&key) {
                    let _ = writeln!(out, "{l}");
                    shown.push(key);
                }
            }
        }
        let _ = out.flush();
        let finished = |j: &Value| j["state"] == "done" || j["state"] == "failed";
        if jobs.iter().all(finished) {
            return Ok(jobs.iter().all(|j| j["state"] == "done"));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_per_state() {
        let j = |state: &str| {
            json!({"image":"docker.io/library/a:1","state":state,"done_bytes":512,"total_bytes":2048,
                   "blobs_done":1,"blobs_total":3,"reason":"Docker Hub allowance: 18 of 100 left","error":"boom"})
        };
        assert_eq!(
            line(&j("fetching"), 22),
            "docker.io/library/a:1   [######------------------]  25%  512 B / 2.0 KiB  1/3 blobs"
        );
        assert!(line(&j("waiting"), 0).ends_with("waiting: Docker Hub allowance: 18 of 100 left"));
        assert!(line(&j("failed"), 0).ends_with("failed: boom"));
        assert!(line(&j("done"), 0).contains(&format!("[{}] done", "#".repeat(BAR_WIDTH))));
        let mut resolving = j("fetching");
        resolving["total_bytes"] = json!(0);
        assert!(line(&resolving, 0).ends_with("resolving manifests"));
    }

    #[test]
    fn answers_and_addresses() {
        let (s, v) =
            parse_answer(b"HTTP/1.1 202 Accepted\r\nContent-Length: 11\r\n\r\n{\"jobs\":[]}")
                .unwrap();
        assert_eq!((s, v["jobs"].as_array().map(Vec::len)), (202, Some(0)));
        assert!(parse_answer(b"garbage").is_err());
        assert_eq!(encode("ghcr.io/o/a:1"), "ghcr.io%2Fo%2Fa%3A1");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "tok-tok-tok-tok-tok\n").unwrap();
        let t = Target::new("http://127.0.0.1:5000/", &f).unwrap();
        assert_eq!(
            (t.authority.as_str(), t.token.as_str()),
            ("127.0.0.1:5000", "tok-tok-tok-tok-tok")
        );
        assert!(Target::new("https://x", &f).is_err());
        assert!(Target::new("http://x/y", &f).is_err());
        assert!(Target::new("x:1", &dir.path().join("none"))
            .unwrap_err()
            .contains("--admin-token-file"));
    }
}
