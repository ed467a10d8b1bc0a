//! How a permit ends, each way settling its fill: [`Permit::verify`] then
//! [`Permit::commit`] (the file becomes the blob), [`Permit::pass`] (readers share a relay
//! instead), [`Permit::fail`], or `Drop` — which marks an unfinished fill abandoned, takes it
//! out of the in-flight map, releases its reservation and keeps or deletes its partial file.

use super::{Permit, KEEP_PARTIAL_MIN};
use crate::cache::checked::Mismatch;
use crate::cache::fill::{FillFailure, Phase};
use crate::cache::relay::Relay;
use crate::cache::store::Store;
use std::io;
use std::rc::Rc;
use std::time::SystemTime;

impl Permit {
    /// All bytes are written: checks the length and the digest. On success readers may read
    /// the last byte — before the `fsync` of [`Permit::commit`], which would only delay
    /// them. On a mismatch nothing changes: restart the permit, or drop it.
    pub fn verify(&mut self) -> Result<(), Finish> {
        let len = self.fill.written();
        if let Some(total) = self.total.filter(|t| *t != len) {
            return Err(Finish::Short { len, total });
        }
        self.fill
            .update(|s| s.checked.verify())
            .map_err(Finish::Mismatch)
    }

    /// After [`Permit::verify`]: makes the file the blob — `fsync`, rename, index. A
    /// draining fill ends `Streamed` instead (it was never going to be kept).
    pub fn commit(&mut self) -> io::Result<()> {
        let (Some(file), true) = (self.file.clone(), self.fill.state().checked.is_verified())
        else {
            return Err(io::Error::other("commit of an unverified fill"));
        };
        let len = self.fill.written();
        if self.draining {
            self.fill
                .update(|s| s.phase = Phase::Streamed { total: len });
            return Ok(());
        }
        file.sync_all()?;
        self.books.store().commit_partial(&self.fill.digest())?;
        self.committed = true;
        self.release(self.reserved);
        self.books.committed(self.fill.digest(), len);
        self.books.end_fill(&self.fill);
        self.fill
            .update(|s| s.phase = Phase::Committed { total: len, file });
        Ok(())
    }

    /// Readers share an upstream stream through `relay` instead (the blob cannot fit).
    /// The fill stays findable until the permit is dropped, so later requests join too.
    pub fn pass(&mut self, relay: Rc<Relay>) {
        self.fill.update(|s| s.phase = Phase::Pass(relay));
    }

    /// Ends the fill as failed (readers get `f`); the partial file is kept if `f` leaves
    /// it worth resuming.
    pub fn fail(self, f: FillFailure) {
        match &f {
            // The client asked for something upstream doesn't have: its 404 says enough.
            FillFailure::NotFound { .. } => {
                log::debug!("fill {}: not found upstream", self.fill.digest())
            }
            _ => log::warn!("fill {} failed: {f:?}", self.fill.digest()),
        }
        self.fill.update(|s| s.phase = Phase::Failed(f));
    }
}

/// Why [`Permit::verify`] found the bytes are not the blob.
#[derive(Debug)]
pub enum Finish {
    /// The bytes do not hash to the digest.
    Mismatch(Mismatch),
    /// Upstream ended before the announced length.
    Short {
        /// Bytes received.
        len: u64,
        /// Bytes announced.
        total: u64,
    },
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (final_phase, failure) = {
            let s = self.fill.state();
            let failure = match &s.phase {
                Phase::Failed(f) => Some(f.clone()),
                _ => None,
            };
            (s.phase.is_final(), failure)
        };
        if !final_phase {
            log::warn!("fill {} abandoned", self.fill.digest());
            self.fill
                .update(|s| s.phase = Phase::Failed(FillFailure::Abandoned));
        }
        let failure = failure.or((!final_phase).then_some(FillFailure::Abandoned));
        self.books.end_fill(&self.fill);
        self.release(self.reserved);
        if self.committed || self.draining {
            return;
        }
        let written = self.fill.written();
        let keep = self.file.is_some()
            && written >= KEEP_PARTIAL_MIN
            && failure.is_some_and(|f| f.keeps_partial());
        if keep {
            if let Some(file) = &self.file {
                Store::trim_partial(file, written);
            }
            self.books
                .index()
                .insert_partial(self.fill.digest(), written, SystemTime::now());
            log::info!(
                "kept {written} bytes of {} for a resume",
                self.fill.digest()
            );
        } else if self.file.is_some() || self.partial > 0 {
            self.books.store().remove_partial(&self.fill.digest());
        }
    }
}
