//! Hashing for kwire's hot tables. std's default hasher (SipHash) resists
//! keys chosen to collide, at a cost that shows when every packet and every
//! frame looks something up. Here one multiply-and-fold mixer (as in
//! foldhash) serves two kinds of table: those keyed by what kwire makes
//! itself (connection indexes, message layouts), which need no defence and
//! use it unseeded ([`PlainHashing`]), and those keyed by what the traffic
//! chooses (addresses and ports), which seed it from std's random source
//! ([`SeededHashing`]) so that crafted keys cannot aim at one bucket.

use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// For tables keyed by values kwire makes.
pub type PlainHashing = BuildHasherDefault<MixHasher>;

/// For tables keyed by values the traffic chooses: the mixer starts from
/// a random seed, one per table.
#[derive(Clone, Debug)]
pub struct SeededHashing {
    seed: u64,
}

impl SeededHashing {
    pub fn new() -> SeededHashing {
        SeededHashing {
            seed: RandomState::new().hash_one(0u64),
        }
    }
}

impl Default for SeededHashing {
    fn default() -> SeededHashing {
        SeededHashing::new()
    }
}

impl BuildHasher for SeededHashing {
    type Hasher = MixHasher;

    fn build_hasher(&self) -> MixHasher {
        MixHasher(self.seed)
    }
}

/// Folds each word in with a 64-by-64-bit multiply whose two halves are
/// xored together.
#[derive(Clone, Copy, Debug, Default)]
pub struct MixHasher(u64);

/// The high and low halves of `n`.
fn halves(n: u128) -> (u64, u64) {
    let low = u64::try_from(n & u128::from(u64::MAX)).unwrap_or(0);
    (u64::try_from(n >> 64).unwrap_or(0), low)
}

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let word = chunk
                .iter()
                .fold(0u64, |word, byte| (word << 8) | u64::from(*byte));
            self.write_u64(word);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        let (high, low) = halves(u128::from(self.0 ^ n) * 0x9e37_79b9_7f4a_7c15);
        self.0 = high ^ low;
    }

    fn write_u128(&mut self, n: u128) {
        let (high, low) = halves(n);
        self.write_u64(high);
        self.write_u64(low);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_small_keys_spread_over_buckets() {
        // Sequential indexes and nearby ports must not pile into a few of
        // 1024 buckets (the low bits a hash table uses).
        let mut buckets = vec![0u32; 1024];
        for n in 0u32..4096 {
            let mut hasher = MixHasher::default();
            hasher.write_u32(n);
            let bucket = usize::try_from(hasher.finish() & 1023).unwrap();
            buckets[bucket] += 1;
        }
        let fullest = buckets.iter().max().copied().unwrap_or(0);
        assert!(fullest <= 16, "a bucket holds {fullest} of 4096 keys");
    }

    #[test]
    fn test_seeded_tables_hash_differently() {
        let (a, b) = (SeededHashing::new(), SeededHashing::new());
        assert_ne!(a.hash_one(9092u16), b.hash_one(9092u16));
    }
}
