//! [`Checked`]: the bytes of a blob as they arrive, hashed, and how far a reader may go in
//! them — everything but the last byte until the digest has been checked.
//!
//! This is the one place that decides what readers of a blob still arriving (a fill's temp
//! file, a pass-through relay) may be handed. [`Checked::readable`] can reach the end only
//! after [`Checked::verify`] found the SHA-256 equal to the expected digest: a client can
//! never receive a *complete* blob with wrong bytes, whatever order the callers do things
//! in. (Clients verify digests themselves; a blob cut one byte short is retried, a wrong
//! blob that looks complete might be stored.)

use crate::digest::Digest;
use sha2::{Digest as _, Sha256};

/// Bytes held back from readers until the digest is checked: the last one.
pub const HOLD_BACK: u64 = 1;

/// A running SHA-256 over a blob's bytes from offset 0, with the verdict once checked.
#[derive(Clone)]
pub struct Checked {
    expected: Digest,
    hasher: Sha256,
    /// Bytes hashed: the blob's bytes `[0, len)` have gone through `hasher`.
    len: u64,
    /// `verify` found the hash equal to `expected` at `len`; no byte was added since.
    verified: bool,
}

/// The bytes hashed so far are not the blob asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// What they hash to.
    pub got: Digest,
    /// How many there were.
    pub len: u64,
}

impl Checked {
    /// Nothing hashed yet, expecting `expected`.
    pub fn new(expected: Digest) -> Checked {
        Checked {
            expected,
            hasher: Sha256::new(),
            len: 0,
            verified: false,
        }
    }

    /// Adds the next bytes of the blob.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        self.verified = false;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How far a reader may read: all hashed bytes once verified, else all but the last
    /// [`HOLD_BACK`].
    pub fn readable(&self) -> u64 {
        if self.verified {
            self.len
        } else {
            self.len.saturating_sub(HOLD_BACK)
        }
    }

    /// Whether the bytes so far were checked and are the whole blob.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// Checks the bytes so far as the whole blob. On success readers may read them all.
    pub fn verify(&mut self) -> Result<(), Mismatch> {
        let got = Digest::from_sha256(self.hasher.clone().finalize().into());
        if got == self.expected {
            self.verified = true;
            Ok(())
        } else {
            Err(Mismatch { got, len: self.len })
        }
    }

    /// Starts over from offset 0 (a fetch from zero after a mismatch).
    pub fn reset(&mut self) {
        *self = Checked::new(self.expected);
    }
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Checked({} bytes of {}, verified: {})",
            self.len, self.expected, self.verified
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_byte_is_readable_only_after_a_matching_digest() {
        let blob = b"hello, world";
        let mut c = Checked::new(Digest::of(blob));
        assert_eq!(c.readable(), 0);
        c.update(&blob[..5]);
        assert_eq!(c.readable(), 4);
        c.update(&blob[5..]);
        assert_eq!(
            c.readable(),
            blob.len() as u64 - 1,
            "held back until checked"
        );
        c.verify().unwrap();
        assert_eq!(c.readable(), blob.len() as u64);
    }

    #[test]
    fn a_mismatch_never_releases_the_end() {
        let mut c = Checked::new(Digest::of(b"hello"));
        c.update(b"jello");
        assert_eq!(c.verify().unwrap_err().len, 5);
        assert_eq!(c.readable(), 4);
        c.reset();
        assert_eq!((c.len(), c.readable()), (0, 0));
    }

    #[test]
    fn bytes_after_a_verdict_need_a_new_one() {
        let mut c = Checked::new(Digest::of(b"ab"));
        c.update(b"ab");
        c.verify().unwrap();
        c.update(b"c");
        assert!(!c.is_verified());
        assert_eq!(c.readable(), 2);
    }
}
