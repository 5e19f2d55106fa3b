//! The order in which samples are visited: the batches of every step.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::model::splitmix::SplitMix64;

/// Sample indices of each step: the full batch in order, or mini-batches of a fresh seeded
/// shuffle every epoch (the last batch of an epoch may be shorter). The same order as
/// [`Batches`], collected.
pub fn batch_order(n: usize, batch_size: usize, steps: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut batches = Batches::new(n, batch_size, seed);
    (0..steps).map(|_| batches.next_batch().to_vec()).collect()
}

/// The batches of [`batch_order`] one step at a time, from one permutation buffer that every
/// epoch reshuffles in place: nothing is allocated after [`Batches::new`].
#[derive(Clone, Debug)]
pub struct Batches {
    perm: Vec<usize>,
    batch: usize,
    /// Where the next batch starts in `perm`; `perm.len()` when the epoch is used up.
    at: usize,
    /// `None` for the full batch, which is never shuffled.
    rng: Option<Shuffler>,
}

/// The generator behind the reshuffles: ChaCha8 through `rand`'s `shuffle` (the order of
/// [`batch_order`], which `compare`, `check` and `study` use), or SplitMix64 through a plain
/// Fisher–Yates ([`Batches::fast`], `train`'s own order).
#[derive(Clone, Debug)]
// One per run: the unused bytes of the small variant cost nothing.
#[allow(clippy::large_enum_variant)]
enum Shuffler {
    ChaCha(ChaCha8Rng),
    SplitMix(SplitMix64),
}

impl Batches {
    /// The batches of `batch_size` samples out of `n`, shuffled with `seed`; a `batch_size` of 0
    /// or at least `n` is the full batch, in order, every step.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Batches {
        Batches::with(n, batch_size, || Shuffler::ChaCha(ChaCha8Rng::seed_from_u64(seed ^ 0xba7c4)))
    }

    /// As [`Batches::new`], with every epoch reshuffled by a SplitMix64 Fisher–Yates: the same
    /// kind of order (every sample once per epoch, every permutation equally likely), a few times
    /// cheaper to draw, but another order for the same seed. `train` visits its samples in this
    /// order; the harness commands keep [`batch_order`]'s.
    pub fn fast(n: usize, batch_size: usize, seed: u64) -> Batches {
        Batches::with(n, batch_size, || Shuffler::SplitMix(SplitMix64(seed ^ 0xba7c4)))
    }

    /// The batches of `batch_size` samples out of `n`, reshuffled by `shuffler()` unless the
    /// batch is full (`batch_size` 0 or at least `n`: in order, every step).
    fn with(n: usize, batch_size: usize, shuffler: impl FnOnce() -> Shuffler) -> Batches {
        let full = batch_size == 0 || batch_size >= n;
        Batches {
            perm: (0..n).collect(),
            batch: if full { n } else { batch_size },
            at: n,
            rng: (!full).then(shuffler),
        }
    }

    /// The sample indices of the next step.
    pub fn next_batch(&mut self) -> &[usize] {
        if self.at >= self.perm.len() {
            match &mut self.rng {
                Some(Shuffler::ChaCha(rng)) => self.perm.shuffle(rng),
                Some(Shuffler::SplitMix(rng)) => rng.shuffle(&mut self.perm),
                None => {}
            }
            self.at = 0;
        }
        let start = self.at;
        self.at = (start + self.batch.max(1)).min(self.perm.len());
        &self.perm[start..self.at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the order as it was built before [`Batches`], one vector per step.
    fn collected(n: usize, batch_size: usize, steps: usize, seed: u64) -> Vec<Vec<usize>> {
        if batch_size == 0 || batch_size >= n {
            return vec![(0..n).collect(); steps];
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xba7c4);
        let mut out = Vec::with_capacity(steps);
        let mut perm: Vec<usize> = (0..n).collect();
        while out.len() < steps {
            perm.shuffle(&mut rng);
            for chunk in perm.chunks(batch_size) {
                if out.len() == steps {
                    break;
                }
                out.push(chunk.to_vec());
            }
        }
        out
    }

    #[test]
    fn one_batch_at_a_time_is_the_collected_order() {
        for (n, b, steps) in
            [(10, 3, 17), (10, 5, 9), (7, 0, 3), (7, 7, 2), (7, 9, 2), (1, 1, 4), (64, 32, 5)]
        {
            assert_eq!(batch_order(n, b, steps, 42), collected(n, b, steps, 42), "n {n}, batch {b}");
        }
    }

    #[test]
    fn every_epoch_visits_every_sample_once() {
        for mut batches in [Batches::new(10, 3, 7), Batches::fast(10, 3, 7)] {
            for _ in 0..3 {
                let mut seen: Vec<usize> = (0..4).flat_map(|_| batches.next_batch().to_vec()).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..10).collect::<Vec<_>>());
            }
        }
    }

    /// The fast order is a fair shuffle: over many epochs of 4 samples, each of the 24
    /// permutations comes up about equally often, and each sample at each place about a quarter of
    /// the time; it is not the harness's order, and a full batch stays in order.
    #[test]
    fn the_fast_order_is_a_fair_shuffle_of_its_own() {
        let epochs = 48_000;
        let mut counts = std::collections::HashMap::<Vec<usize>, usize>::new();
        let mut g = SplitMix64(5);
        let mut perm = vec![0, 1, 2, 3];
        for _ in 0..epochs {
            g.shuffle(&mut perm);
            *counts.entry(perm.clone()).or_default() += 1;
        }
        assert_eq!(counts.len(), 24);
        // Expected 2000 each; σ ≈ 44, so ±250 is over 5σ.
        for (p, c) in &counts {
            assert!((1750..2250).contains(c), "{p:?} came up {c} times in {epochs}");
        }
        assert_ne!(
            batch_order(1000, 10, 1, 11)[0],
            Batches::fast(1000, 10, 11).next_batch().to_vec(),
            "the fast order should be train's own"
        );
        assert_eq!(Batches::fast(5, 0, 3).next_batch(), &[0, 1, 2, 3, 4]);
    }
}
