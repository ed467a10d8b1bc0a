//! Tiny test images with correct digests: deterministic layer bytes, a config, a Docker v2
//! manifest naming them. Also the hashing and base64 helpers of the fake.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `len` deterministic, incompressible-looking bytes (xorshift64*) for a given seed.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A config blob, layer blobs, and a Docker v2 manifest pointing at them.
#[derive(Clone, Debug)]
pub struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    /// An image whose layers have the given sizes; `seed` makes distinct images.
    pub fn new(seed: u64, layer_sizes: &[usize]) -> TestImage {
        let layers: Vec<Vec<u8>> = layer_sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| pseudo_random_bytes(seed * 1000 + i as u64, n))
            .collect();
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| format!("\"{}\"", digest_of(l)))
            .collect();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"seed":{seed}}}"#,
            diff_ids.join(",")
        )
        .into_bytes();
        let descriptor = |media_type: &str, bytes: &[u8]| {
            format!(
                r#"{{"mediaType":"{media_type}","size":{},"digest":"{}"}}"#,
                bytes.len(),
                digest_of(bytes)
            )
        };
        let layer_descriptors: Vec<String> = layers
            .iter()
            .map(|l| descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", l))
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}}"#,
            super::DOCKER_MANIFEST_V2,
            descriptor("application/vnd.docker.container.image.v1+json", &config),
            layer_descriptors.join(",")
        )
        .into_bytes();
        TestImage {
            config,
            layers,
            manifest,
        }
    }

    pub fn manifest_digest(&self) -> String {
        digest_of(&self.manifest)
    }

    pub fn config_digest(&self) -> String {
        digest_of(&self.config)
    }

    pub fn layer_digest(&self, i: usize) -> String {
        digest_of(&self.layers[i])
    }
}

/// Standard base64 with padding, for Basic credentials.
pub(super) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            let c = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            };
            out.push(char::from(c));
        }
    }
    out
}
