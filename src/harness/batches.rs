//! The order in which samples are visited: the batches of every step.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

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
    rng: Option<ChaCha8Rng>,
}

impl Batches {
    /// The batches of `batch_size` samples out of `n`, shuffled with `seed`; a `batch_size` of 0
    /// or at least `n` is the full batch, in order, every step.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Batches {
        let full = batch_size == 0 || batch_size >= n;
        Batches {
            perm: (0..n).collect(),
            batch: if full { n } else { batch_size },
            at: n,
            rng: (!full).then(|| ChaCha8Rng::seed_from_u64(seed ^ 0xba7c4)),
        }
    }

    /// The sample indices of the next step.
    pub fn next_batch(&mut self) -> &[usize] {
        if self.at >= self.perm.len() {
            if let Some(rng) = &mut self.rng {
                self.perm.shuffle(rng);
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
        let mut batches = Batches::new(10, 3, 7);
        for _ in 0..3 {
            let mut seen: Vec<usize> = (0..4).flat_map(|_| batches.next_batch().to_vec()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
    }
}
