//! Seeded randomness for datasets and training.
//!
//! Training data order, augmentation and ground-truth padding must be bit-identical across
//! runs, machines and crate upgrades (resumed runs continue exactly), so they use the crate's
//! own generator ([`crate::geometry::rng`]) rather than a general-purpose crate whose
//! algorithms may change between versions.

use crate::geometry::rng::{splitmix64, Rng};

/// Deterministic pseudo-random numbers for data: the crate's generator
/// ([`crate::geometry::Rng`]) plus item streams, shuffles and the modulo-rejection integer
/// draw that the data streams (and the demo model's training run) were fixed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededRng(Rng);

impl SeededRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRng(Rng::new(seed))
    }

    /// An independent stream for item `index` of a run seeded with `seed`, so that item `i`
    /// is the same whatever was drawn before it (random access into a dataset).
    pub fn for_item(seed: u64, index: u64) -> Self {
        let mut x = seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mixed = splitmix64(&mut x);
        SeededRng::new(mixed ^ index)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        self.0.uniform()
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        self.0.uniform_in(lo, hi)
    }

    /// Uniform integer in `0..n` (unbiased, by rejection); 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Reject the top partial copy of 0..n so every residue is equally likely.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Standard normal (Box–Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        self.0.normal()
    }

    /// Fisher–Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_item_streams_differ() {
        let a: Vec<u64> = (0..4).map(|_| SeededRng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r0 = SeededRng::for_item(7, 0);
        let mut r1 = SeededRng::for_item(7, 1);
        assert_ne!(r0.next_u64(), r1.next_u64());
    }

    #[test]
    fn uniform_moments_and_below_range() {
        let mut rng = SeededRng::new(1);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        // Standard error of the mean of U(0,1) over 20k draws is 0.29/141 ≈ 0.002; 5σ bound.
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[rng.below(3) as usize] += 1;
        }
        // Each bin expects 1000 ± 26 (binomial σ); 6σ bound.
        assert!(
            counts.iter().all(|&c| (840..1160).contains(&c)),
            "{counts:?}"
        );
    }
}
