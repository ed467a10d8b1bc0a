//! How big the cache may grow on the disk it is on: the default byte budget when no
//! `--max-size` is given, and the warnings for a `--max-size` the disk cannot hold. The
//! rules are pure functions of a [`Space`] (tested without a disk); [`space`] measures one.

use crate::config::human_size;
use std::io;
use std::path::Path;

/// The default budget leaves at least this much of the filesystem free (or 5 % of it, if
/// more): the cache often shares the SD card with the OS and its logs.
pub const MIN_FREE_BYTES: u64 = 256 << 20;

/// When the cache is on the root filesystem, the default budget takes at most this share
/// (percent) of its free space, so apt upgrades, logs and the journal keep room to grow on
/// a machine that does other things too. A disk of its own (USB disk, the SD image's cache
/// partition, a container volume) is used up to the 5 % reserve.
pub const ROOT_FS_SHARE_PERCENT: u64 = 80;

/// Sizes of the filesystem a cache directory is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes in the filesystem.
    pub total: u64,
    /// Bytes free for an unprivileged writer.
    pub avail: u64,
    /// Is it the filesystem `/` is on?
    pub root_fs: bool,
}

/// Measures the filesystem `dir` is on (which must exist).
pub fn space(dir: &Path) -> io::Result<Space> {
    let st = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    let dev = |p: &Path| rustix::fs::stat(p).map(|s| s.st_dev);
    let root_fs =
        dev(dir).map_err(io::Error::from)? == dev(Path::new("/")).map_err(io::Error::from)?;
    Ok(Space {
        total: st.f_blocks.saturating_mul(st.f_frsize),
        avail: st.f_bavail.saturating_mul(st.f_frsize),
        root_fs,
    })
}

/// The default budget: what the cache holds plus the free space, minus the reserve; on the
/// root filesystem at most [`ROOT_FS_SHARE_PERCENT`] of the free space is added.
pub fn derived(space: &Space, cached: u64) -> u64 {
    let keep_free = (space.total / 20).max(MIN_FREE_BYTES).min(space.total / 2);
    let mut usable = space.avail.saturating_sub(keep_free);
    if space.root_fs {
        // In u128: the product cannot overflow, and the share is exact to the byte.
        let share = u128::from(space.avail) * u128::from(ROOT_FS_SHARE_PERCENT) / 100;
        usable = usable.min(share as u64);
    }
    cached.saturating_add(usable)
}

/// Why the default budget is what it is, for the start-up line.
pub fn why_derived(space: &Space) -> String {
    if space.root_fs {
        format!(
            "default: at most {ROOT_FS_SHARE_PERCENT} % of the free space, as the cache shares \
             the root filesystem; set --max-size to choose"
        )
    } else {
        "default: the free space of the cache's filesystem minus a 5 % reserve; set --max-size \
         to choose"
            .into()
    }
}

/// A warning when an explicit budget is more than the disk can hold: the disk would then
/// fill up (and other programs on it fail) before the budget is reached.
pub fn check_explicit(space: &Space, max: u64, cached: u64) -> Option<String> {
    let room = cached.saturating_add(space.avail);
    if max > space.total {
        Some(format!(
            "--max-size {} is more than the whole filesystem the cache is on ({}): the disk will \
             fill up before the budget does; a budget below {} leaves it room",
            human_size(max),
            human_size(space.total),
            human_size(derived(space, cached)),
        ))
    } else if max > room {
        Some(format!(
            "--max-size {} is more than the cache holds plus the free space on its filesystem \
             ({}): the disk may fill up before the budget does",
            human_size(max),
            human_size(room),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_disk_of_its_own_is_used_up_to_the_reserve() {
        let s = Space {
            total: 100 * GIB,
            avail: 60 * GIB,
            root_fs: false,
        };
        // 5 % of 100 GiB is kept free; the cache's own 10 GiB count as room.
        assert_eq!(derived(&s, 10 * GIB), 10 * GIB + 55 * GIB);
    }

    #[test]
    fn on_the_root_filesystem_at_most_80_percent_of_the_free_space() {
        let s = Space {
            total: 100 * GIB,
            avail: 60 * GIB,
            root_fs: true,
        };
        assert_eq!(derived(&s, 0), 48 * GIB);
        assert_eq!(
            derived(&s, 10 * GIB),
            58 * GIB,
            "what the cache holds is room"
        );
        // Nearly full: the 5 % reserve is the smaller share.
        let s = Space {
            avail: 6 * GIB,
            ..s
        };
        assert_eq!(derived(&s, 0), GIB);
    }

    #[test]
    fn small_and_full_disks_give_no_room_not_an_underflow() {
        let tiny = Space {
            total: 100 << 20,
            avail: 90 << 20,
            root_fs: false,
        };
        // Reserve: 256 MiB, but never more than half the disk.
        assert_eq!(derived(&tiny, 0), 40 << 20);
        let full = Space {
            total: 32 * GIB,
            avail: 0,
            root_fs: true,
        };
        assert_eq!(derived(&full, 5 * GIB), 5 * GIB);
    }

    #[test]
    fn an_explicit_budget_beyond_the_disk_is_warned_about() {
        let s = Space {
            total: 32 * GIB,
            avail: 20 * GIB,
            root_fs: true,
        };
        assert_eq!(check_explicit(&s, 10 * GIB, 0), None);
        let w = check_explicit(&s, 2000 * GIB, 0).unwrap();
        assert!(
            w.contains("whole filesystem") && w.contains("32.0 GiB"),
            "{w}"
        );
        let w = check_explicit(&s, 25 * GIB, 1).unwrap();
        assert!(w.contains("free space"), "{w}");
    }

    #[test]
    fn space_measures_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = space(dir.path()).unwrap();
        assert!(s.total > 0 && s.avail <= s.total, "{s:?}");
        assert!(space(Path::new("/")).unwrap().root_fs);
    }
}
