//! The process's own memory, as the kernel counts it, for `/_regmirror/status` and
//! `/metrics`: what the box's owner reads to know the mirror stays small, and what the SD
//! image's boot test reports for the ARM binary.
//!
//! Resident memory is of two kinds: anonymous pages (heap, stacks: what the mirror really
//! costs) and file pages (the binary's code, shared with the page cache; the kernel maps
//! them around each page touched and can drop them under pressure). Both are reported.

use std::io::Read;

/// Most bytes read of `/proc/self/status` (about 1.5 KiB on Linux 6): the file is the
/// kernel's, but a bound keeps a surprise from costing memory.
const MAX_PROC_STATUS_BYTES: u64 = 16 * 1024;

/// The process's memory now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Resident bytes (VmRSS).
    pub resident: u64,
    /// Of them, anonymous: heap and stacks (RssAnon).
    pub anonymous: u64,
    /// Of them, pages of files, mostly the binary's code (RssFile + RssShmem).
    pub file: u64,
    /// The most resident bytes so far (VmHWM).
    pub peak: u64,
}

/// Reads `/proc/self/status`; `None` where there is none (not Linux, no /proc).
pub fn now() -> Option<Memory> {
    let mut text = String::new();
    std::fs::File::open("/proc/self/status")
        .ok()?
        .take(MAX_PROC_STATUS_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    parse(&text)
}

/// The fields of a `/proc/PID/status` text; `None` without VmRSS.
pub fn parse(text: &str) -> Option<Memory> {
    let kib = |key: &str| -> Option<u64> {
        let line = text.lines().find_map(|l| l.strip_prefix(key))?;
        let n: u64 = line
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        n.checked_mul(1024)
    };
    let resident = kib("VmRSS")?;
    let shmem = kib("RssShmem").unwrap_or(0);
    Some(Memory {
        resident,
        anonymous: kib("RssAnon").unwrap_or(0),
        file: kib("RssFile").unwrap_or(0).saturating_add(shmem),
        peak: kib("VmHWM").unwrap_or(resident),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_fields_are_read_in_bytes() {
        let text = "Name:\tregmirror\nVmHWM:\t    3600 kB\nVmRSS:\t    3100 kB\n\
                    RssAnon:\t     336 kB\nRssFile:\t    2760 kB\nRssShmem:\t       4 kB\n";
        let m = parse(text).unwrap();
        assert_eq!(m.resident, 3100 * 1024);
        assert_eq!(m.anonymous, 336 * 1024);
        assert_eq!(m.file, 2764 * 1024);
        assert_eq!(m.peak, 3600 * 1024);
    }

    #[test]
    fn garbage_and_overflow_give_nothing() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("VmRSS:\tlots kB\n"), None);
        assert_eq!(parse("VmRSS:\t99999999999999999999 kB\n"), None);
        assert_eq!(
            parse("VmRSS:\t18014398509481984 kB\n"),
            None,
            "× 1024 overflows"
        );
        assert_eq!(parse("VmRSS:\t10 kB\n").unwrap().peak, 10 * 1024);
    }

    #[test]
    fn this_process_has_some() {
        let m = now().expect("Linux has /proc/self/status");
        assert!(m.resident > 0 && m.peak >= m.resident, "{m:?}");
    }
}
