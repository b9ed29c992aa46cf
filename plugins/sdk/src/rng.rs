//! A small deterministic generator whose whole state is two words, so that runs repeat
//! from a seed and the state goes into checkpoints. (xoshiro128++ would do as well; this is
//! SplitMix64-seeded xorshift128+, which is enough for masking draws and shuffles.)

use crate::masking::Draws;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng {
    state: [u64; 2],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let state = [next(), next() | 1];
        Self { state }
    }

    /// A generator for one stream of a run, e.g. (seed, epoch, sample).
    pub fn derive(seed: u64, stream: &[u64]) -> Self {
        let mut h = seed ^ 0x6A09_E667_F3BC_C908;
        for &s in stream {
            h = Self::new(h ^ s.rotate_left(17)).next_u64();
        }
        Self::new(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        let [mut s1, s0] = self.state;
        let result = s0.wrapping_add(s1);
        self.state[0] = s0;
        s1 ^= s1 << 23;
        self.state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        result
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth mentioning for n < 2^32.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    pub fn state(&self) -> [u64; 2] {
        self.state
    }

    pub fn from_state(state: [u64; 2]) -> Self {
        Self { state }
    }
}

impl Draws for Rng {
    fn uniform(&mut self) -> f64 {
        self.next_f64()
    }
    fn choice(&mut self, n: u64) -> u64 {
        self.below(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_uniforms_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<f64> = (0..1000).map(|_| a.next_f64()).collect();
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        assert_eq!(xs[999], (0..1000).map(|_| b.next_f64()).last().unwrap());
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
        assert_ne!(
            Rng::derive(1, &[0, 1]).next_u64(),
            Rng::derive(1, &[1, 0]).next_u64()
        );
    }
}
