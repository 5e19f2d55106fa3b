//! SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit counter passed through a mixing function;
//! every output costs a handful of integer operations. Statistically sound for shuffling and for
//! test inputs, not for cryptography. `train`'s batch order ([`crate::harness::Batches::fast`])
//! and the double-double tests draw from it.

/// The generator's state: the seed, then the counter.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-shift; its bias, under n / 2⁶⁴, is far
    /// below anything a shuffle of a dataset could show).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher–Yates: every permutation of `v` equally likely.
    pub(crate) fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    /// SplitMix64's published first outputs for seed 0 (the reference `splitmix64.c`).
    #[test]
    fn splitmix64_is_the_reference_generator() {
        let mut g = SplitMix64(0);
        assert_eq!(
            [g.next(), g.next(), g.next()],
            [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]
        );
    }
}
