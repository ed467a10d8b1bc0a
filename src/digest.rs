//! [`Digest`]: the content address of every blob and manifest, `sha256:<64 hex>`, and the
//! only thing a cache path is ever built from.

use crate::reference::Invalid;
use std::fmt;

/// A content digest. Only `sha256` exists in practice; other algorithms are refused
/// rather than stored unverified.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The 32 raw bytes of the SHA-256.
    bytes: [u8; 32],
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Digest, Invalid> {
        let hex = s.strip_prefix("sha256:").ok_or(Invalid::Digest)?;
        Digest::from_hex(hex).ok_or(Invalid::Digest)
    }

    /// Parses 64 lowercase hex characters (a file name in the blob store).
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let h = hex.as_bytes();
        if h.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in h.chunks_exact(2).enumerate() {
            bytes[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Digest { bytes })
    }

    /// Wraps a finished SHA-256.
    pub fn from_sha256(bytes: [u8; 32]) -> Digest {
        Digest { bytes }
    }

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_sha256(sha2::Sha256::digest(data).into())
    }

    /// The 64 lowercase hex characters, without the algorithm.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_round_trips_and_matches_sha256() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::of(b""), d);
    }

    #[test]
    fn digest_refuses_other_forms() {
        for bad in [
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:../../../../etc/passwd",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert_eq!(Digest::parse(bad), Err(Invalid::Digest), "{bad}");
        }
    }
}
