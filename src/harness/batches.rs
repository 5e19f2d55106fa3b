//! The order in which samples are visited: the batches of every step.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Sample indices of each step: the full batch in order, or mini-batches of a fresh seeded
/// shuffle every epoch (the last batch of an epoch may be shorter).
pub fn batch_order(n: usize, batch_size: usize, steps: usize, seed: u64) -> Vec<Vec<usize>> {
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
