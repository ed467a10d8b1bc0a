//! Test-only helpers of the upstream module: a small deterministic random generator for the
//! property tests of the byte parsers (no crate for it; the seed makes failures repeatable).

/// xorshift64*: fast, deterministic, good enough to spray bytes at a parser.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// `len` bytes, half of them any byte, half from `alphabet` (the bytes a parser cares
    /// about), so that random input reaches past the first check.
    pub(crate) fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| {
                if self.below(2) == 0 || alphabet.is_empty() {
                    self.next_u64() as u8
                } else {
                    alphabet[self.below(alphabet.len())]
                }
            })
            .collect()
    }

    /// [`Rng::bytes`] of a random length below `max_len`.
    pub(crate) fn bytes_upto(&mut self, max_len: usize, alphabet: &[u8]) -> Vec<u8> {
        let len = self.below(max_len);
        self.bytes(len, alphabet)
    }

    /// `valid` with a few bytes changed, inserted or removed.
    pub(crate) fn mutate(&mut self, valid: &[u8]) -> Vec<u8> {
        let mut out = valid.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(3) {
                0 if at < out.len() => out[at] = self.next_u64() as u8,
                1 => out.insert(at, self.next_u64() as u8),
                _ if at < out.len() => {
                    out.remove(at);
                }
                _ => {}
            }
        }
        out
    }
}
