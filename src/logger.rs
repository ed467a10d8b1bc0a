//! A small `log::Log`: one line per record to stderr with a UTC timestamp, and the most
//! recent lines kept in a ring for `/_regmirror/log` — a Pi on a shelf has no screen, so its
//! log must be readable over the network. Each line and the ring are bounded in bytes.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest log line, on stderr and in the ring; the rest is cut and the cut marked
/// (`… [+N bytes]`). A request path can be nearly 8 KiB: without this, 600 such requests
/// held 4 MB of log.
pub const MAX_LINE_BYTES: usize = 1024;

/// Lines kept for `/_regmirror/log`: a few minutes of a busy office's pulls.
pub const RECENT_LINES: usize = 500;

/// Bytes kept for `/_regmirror/log` (line text, without the ring's bookkeeping): the
/// oldest lines go first when either this or [`RECENT_LINES`] is reached.
pub const RECENT_BYTES: usize = 256 * 1024;

/// The most recent lines, oldest first, at most [`RECENT_LINES`] and [`RECENT_BYTES`].
struct Ring {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Ring {
    const fn new() -> Ring {
        Ring {
            lines: VecDeque::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, line: String) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.lines.len() > RECENT_LINES || self.bytes > RECENT_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len() + 1,
                None => break,
            }
        }
    }
}

/// The ring of recent lines. A `Mutex` because `log` requires `Sync`; it is never contended.
static RECENT: Mutex<Ring> = Mutex::new(Ring::new());

/// `line` cut to [`MAX_LINE_BYTES`] (at a character boundary), the cut marked.
fn bounded(mut line: String) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line;
    }
    let total = line.len();
    // Room for the marker: "… [+NNNNNNN bytes]" is at most 24 bytes.
    let mut keep = MAX_LINE_BYTES - 24;
    while !line.is_char_boundary(keep) {
        keep -= 1;
    }
    line.truncate(keep);
    line.push_str(&format!("… [+{} bytes]", total - keep));
    line.shrink_to_fit();
    line
}

struct Logger {
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        // Only our own debug lines: dependencies' debug output is noise here.
        m.level() <= self.level && (m.level() <= Level::Info || m.target().starts_with("regmirror"))
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = bounded(format!(
            "{} {:<5} {}",
            timestamp(SystemTime::now()),
            r.level(),
            r.args()
        ));
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        if let Ok(mut recent) = RECENT.lock() {
            recent.push(line);
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: info by default, debug with `verbose`. Safe to call twice (tests).
pub fn init(verbose: bool) {
    let level = if verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    if log::set_boxed_logger(Box::new(Logger { level })).is_ok() {
        log::set_max_level(level);
    }
}

/// The recent lines, oldest first, newline-terminated.
pub fn recent() -> String {
    let recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::with_capacity(recent.bytes);
    for line in &recent.lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `2026-11-22T16:04:06Z` (no time-zone database on a FROM-scratch image: always UTC).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn long_lines_are_cut_and_marked() {
        assert_eq!(bounded("short".into()), "short");
        let long = bounded("é".repeat(3000));
        assert!(long.len() <= MAX_LINE_BYTES, "{}", long.len());
        assert!(long.ends_with(" bytes]") && long.contains("… [+"));
    }

    #[test]
    fn the_ring_is_bounded_by_lines_and_bytes() {
        let mut ring = Ring::new();
        for i in 0..2 * RECENT_LINES {
            ring.push(format!("line {i}"));
        }
        assert_eq!(ring.lines.len(), RECENT_LINES);
        assert_eq!(ring.lines[0], format!("line {RECENT_LINES}"));
        for _ in 0..2 * RECENT_LINES {
            ring.push("x".repeat(MAX_LINE_BYTES - 1));
        }
        assert!(ring.bytes <= RECENT_BYTES);
        let sum: usize = ring.lines.iter().map(|l| l.len() + 1).sum();
        assert_eq!(sum, ring.bytes);
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_363_446);
        assert_eq!(timestamp(t), "2026-11-22T16:04:06Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00Z");
    }
}
