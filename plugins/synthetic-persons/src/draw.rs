//! Draw helpers on the SDK generator, the only source of randomness in this crate.

use gadms_plugin::rng::Rng;

pub trait Draw {
    /// A uniform element of `items` (non-empty).
    fn pick<T: Copy>(&mut self, items: &[T]) -> T;
    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f32, hi: f32) -> f32;
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool;
    /// An index drawn with probability proportional to `weights`.
    fn weighted(&mut self, weights: &[f64]) -> usize;
    /// Fisher–Yates shuffle.
    fn shuffle<T>(&mut self, items: &mut [T]);
}

impl Draw for Rng {
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f64() as f32
    }

    fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    fn weighted(&mut self, weights: &[f64]) -> usize {
        let mut u = self.next_f64() * weights.iter().sum::<f64>();
        for (i, &w) in weights.iter().enumerate() {
            if u < w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}
