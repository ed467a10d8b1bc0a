//! A small `log::Log`: one line per record to stderr with a UTC timestamp, and the most
//! recent lines kept in a fixed ring for `/_regmirror/log` — a Pi on a shelf has no screen,
//! so its log must be readable over the network.

use heapless::HistoryBuf;
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lines kept for `/_regmirror/log`: a few minutes of a busy office's pulls, at most a few
/// hundred KiB.
pub const RECENT_LINES: usize = 500;

/// The ring of recent lines. A `Mutex` because `log` requires `Sync`; it is never contended.
static RECENT: Mutex<HistoryBuf<String, RECENT_LINES>> = Mutex::new(HistoryBuf::new());

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
        let line = format!(
            "{} {:<5} {}",
            timestamp(SystemTime::now()),
            r.level(),
            r.args()
        );
        let _ = writeln!(std::io::stderr().lock(), "{line}");
        if let Ok(mut recent) = RECENT.lock() {
            recent.write(line);
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
    let mut out = String::new();
    for line in recent.oldest_ordered() {
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
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_363_446);
        assert_eq!(timestamp(t), "2026-11-22T16:04:06Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00Z");
    }
}
