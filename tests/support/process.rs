//! The `regmirror` binary as a child process, for tests of what an operator meets: run it
//! to completion with a deadline ([`run`]), or keep a `serve` running ([`Server`]) that is
//! killed and reaped when dropped, pass or fail. Nothing reaches the network: every `serve`
//! listens on `127.0.0.1:0` with Docker Hub replaced by a closed port ([`NO_UPSTREAM`]).
//! [`flag_words`] reads the flags out of its help text.

use super::client::{get, Resp};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_regmirror");

/// Docker Hub's replacement in every `serve`: a port nothing listens on.
pub const NO_UPSTREAM: &str = "docker.io=http://127.0.0.1:9";

/// Longest a command that should exit at once (bad flag, start-up error, `verify`) may run.
pub const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Longest a `serve` may take to start listening.
pub const START_WITHIN: Duration = Duration::from_secs(5);

/// A finished run of the binary.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// Kills and reaps a child when dropped, so no test leaves a process behind.
pub struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `regmirror ARGS` in `cwd` and waits for it to exit; panics (after killing it) if it
/// is still running after [`EXIT_WITHIN`] — a bad flag must never leave a server running.
/// `serve` on port 0 of loopback, Docker Hub at `fake`, the cache in `dir/cache`, then
/// `extra`: the argument list most binary tests start from.
pub fn serve_args(dir: &Path, fake: &super::FakeUpstream, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--upstream"]
        .map(String::from)
        .into();
    args.push(format!("docker.io={}", fake.url()));
    args.push("--cache-dir".into());
    args.push(dir.join("cache").to_str().unwrap().into());
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

pub fn run(cwd: &Path, args: &[&str]) -> Finished {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start regmirror");
    let mut child = Reaped(child);
    // Read both pipes on threads so a chatty child can never block on a full pipe.
    let stdout = drain(child.0.stdout.take().expect("piped stdout"));
    let stderr = drain(child.0.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + EXIT_WITHIN;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for regmirror") {
            break status;
        }
        if Instant::now() > deadline {
            drop(child);
            panic!(
                "regmirror {args:?} still running after {EXIT_WITHIN:?}; stderr so far:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A running `regmirror serve`: its address and everything it has written to stderr so far.
/// Dropping it kills and reaps the process.
pub struct Server {
    child: Option<Reaped>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `regmirror serve --listen 127.0.0.1:0 --upstream docker.io=http://127.0.0.1:9
    /// EXTRA…` in `cwd`, and waits for its start-up line to say where it listens.
    pub fn start(cwd: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            NO_UPSTREAM,
        ];
        args.extend_from_slice(extra);
        Server::start_args(cwd, &args)
    }

    /// Starts `regmirror ARGS` exactly as given (a `serve` whose `--listen` the test chooses),
    /// and waits for its start-up line to say where it listens.
    pub fn start_args(cwd: &Path, args: &[&str]) -> Server {
        Server::start_wrapped(cwd, &[], args)
    }

    /// Starts `WRAPPER… regmirror ARGS` (e.g. `unshare -rn` for a network namespace of its
    /// own), and waits for its start-up line to say where it listens.
    pub fn start_wrapped(cwd: &Path, wrapper: &[&str], args: &[&str]) -> Server {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start regmirror serve");
        let mut child = Reaped(child);
        let pipe = child.0.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let reader = {
            let stderr = stderr.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            })
        };
        let mut server = Server {
            child: Some(child),
            stderr,
            reader: Some(reader),
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Some(addr) = listening_address(&server.stderr()) {
                server.addr = addr;
                return server;
            }
            let exited = server.child.as_mut().unwrap().0.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let log = server.stop();
                panic!("regmirror serve did not start ({exited:?}); stderr:\n{log}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id (for `/proc/PID/…`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.0.id())
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`; false if it does not within `within`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.stderr().contains(needle)
    }

    /// `GET path` against the server.
    pub fn get(&self, path: &str) -> Resp {
        get(self.addr, path)
    }

    /// Sends `signal` (`TERM`, `INT`, `HUP`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits for the process to exit by itself; `None` if still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = &mut self.child.as_mut().expect("running").0;
        loop {
            if let Some(status) = child.try_wait().expect("wait for regmirror") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and returns all it wrote to stderr.
    pub fn stop(&mut self) -> String {
        drop(self.child.take());
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.stderr()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The address in the start-up line `… listening on 127.0.0.1:PORT; …`.
pub fn listening_address(stderr: &str) -> Option<SocketAddr> {
    let rest = &stderr[stderr.find("listening on ")? + "listening on ".len()..];
    let end = rest.find(|c: char| c == ';' || c.is_whitespace())?;
    rest[..end].parse().ok()
}

/// The words of a help text that look like flags (`--upstream-ca`, `-v`).
pub fn flag_words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .collect()
}
