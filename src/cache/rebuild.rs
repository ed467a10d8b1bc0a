//! The start-up scan: [`Cache::rebuild_index`] indexes the blobs on disk in slices of at
//! most [`SCAN_BATCH`] blobs or [`SCAN_SLICE`], letting requests in between
//! ([`let_io_in`]), then settles the budget; [`Cache::index_ready`] waits for it.

use super::Cache;
use crate::config::human_size;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Most blobs the start-up scan indexes between yields to the executor.
pub const SCAN_BATCH: usize = 64;

/// Longest the start-up scan runs between yields: with a cold page cache each `stat` may
/// wait for the disk (an SD card's random reads take about a millisecond), so a batch is
/// cut short by time too. A request waits at most about this long for the thread.
pub const SCAN_SLICE: Duration = Duration::from_millis(2);

/// How long [`let_io_in`] parks: long enough that the timer is still pending when it is
/// first polled (so the task really waits for the reactor), short enough to cost nothing.
const IO_YIELD: Duration = Duration::from_micros(10);

/// Lets the other tasks run *and* the reactor look at the sockets before going on.
/// `yield_now` alone is not enough for work that is always ready (a scan, a fill from a
/// fast upstream): the executor runs up to 200 ready tasks before it polls for I/O, so new
/// connections and requests would wait for the whole scan. Waiting on a timer makes the
/// executor idle, and an idle executor polls the reactor.
pub async fn let_io_in() {
    futures_lite::future::yield_now().await;
    smol::Timer::after(IO_YIELD).await;
}
impl Cache {
    /// Rebuilds the index from the blobs on disk, at most [`SCAN_BATCH`] blobs or
    /// [`SCAN_SLICE`] at a time, letting requests in between ([`let_io_in`]); then sets a
    /// derived budget and evicts down to it if the disk holds more. Run it as a task of
    /// its own.
    pub async fn rebuild_index(self: Rc<Self>) {
        let started = Instant::now();
        match self.store.scan() {
            Ok(mut scan) => loop {
                let slice = Instant::now();
                let mut done = true;
                {
                    let mut index = self.index.borrow_mut();
                    for (n, found) in scan.by_ref().enumerate() {
                        index.insert_found(found.digest, found.size, found.used);
                        if n + 1 >= SCAN_BATCH || slice.elapsed() >= SCAN_SLICE {
                            done = false;
                            break;
                        }
                    }
                }
                if done {
                    break;
                }
                let_io_in().await;
            },
            Err(e) => log::error!("cannot scan {}: {e}", self.store.root().display()),
        }
        let evict = {
            let mut index = self.index.borrow_mut();
            match (self.max_size, crate::budget::space(self.store.root())) {
                (None, Ok(space)) => {
                    let max = crate::budget::derived(&space, index.cached_bytes());
                    index.set_max(max);
                }
                (Some(max), Ok(space)) => {
                    let warning = crate::budget::check_explicit(&space, max, index.cached_bytes());
                    if let Some(warning) = warning {
                        log::warn!("{warning}");
                    }
                }
                (_, Err(e)) => log::warn!("cannot read free space: {e}"),
            }
            index.set_complete();
            if index.cached_bytes() + index.reserved_bytes() > index.max_bytes() {
                index.reserve(0).map(|a| a.evict).unwrap_or_default()
            } else {
                Vec::new()
            }
        };
        self.evict(&evict);
        self.indexed.notify(usize::MAX);
        let s = self.stats();
        log::info!(
            "cache index rebuilt in {} ms: {} blobs, {} ({} in partial blobs) of a {} budget",
            started.elapsed().as_millis(),
            s.blobs,
            human_size(s.cached),
            human_size(s.partial),
            human_size(s.max)
        );
    }

    /// Waits until the start-up scan is done (eviction needs the whole index).
    pub async fn index_ready(&self) {
        loop {
            let listener = self.indexed.listen();
            if self.index.borrow().is_complete() {
                return;
            }
            listener.await;
        }
    }
}
