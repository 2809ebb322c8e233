//! Which stream ids the peer has opened, for a peer whose SYNs may arrive
//! out of id order.
//!
//! rust-yamux sends a stream's SYN with its first frame, so a stream
//! opened first and written second announces itself second. Telling such a
//! late SYN from a reused id needs a record of the ids already opened; a
//! record per id would grow with the connection's lifetime, so this keeps
//! one bit for each of the [`WINDOW`] ids below the highest opened one. A
//! SYN older than that is refused as a reuse: no real peer holds back that
//! many opens (rust-yamux stops at 512 streams).

/// How many ids below the highest one are remembered.
pub(crate) const WINDOW: u32 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// The ids of one parity the peer opened, as a window of bits counting
/// down from the highest: bit `k` stands for id `highest - 2k`.
#[derive(Debug, Default)]
pub(crate) struct SeenIds {
    highest: Option<u32>,
    bits: [u64; WORDS],
}

impl SeenIds {
    /// Records a SYN for `id`; `false` when `id` was opened before, or is
    /// too far below the highest to tell.
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(id);
            self.bits = [0; WORDS];
            self.set(0);
            return true;
        };
        if id > highest {
            self.shift(id.saturating_sub(highest) / 2);
            self.highest = Some(id);
            self.set(0);
            return true;
        }
        let k = highest.saturating_sub(id) / 2;
        if k >= WINDOW || self.get(k) {
            return false;
        }
        self.set(k);
        true
    }

    fn get(&self, k: u32) -> bool {
        let (word, bit) = split(k);
        self.bits.get(word).is_some_and(|w| w >> bit & 1 == 1)
    }

    fn set(&mut self, k: u32) {
        let (word, bit) = split(k);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= 1 << bit;
        }
    }

    /// Moves every bit `n` places toward the old end (the highest id grew
    /// by `n` ids); bits pushed past the window are forgotten.
    fn shift(&mut self, n: u32) {
        if n >= WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let (words, bits) = split(n);
        let old = self.bits;
        let at = |i: Option<usize>| i.and_then(|i| old.get(i).copied()).unwrap_or(0);
        for (i, w) in self.bits.iter_mut().enumerate() {
            let src = i.checked_sub(words);
            let carry = match (bits, src.and_then(|s| s.checked_sub(1))) {
                (0, _) | (_, None) => 0,
                (b, below) => at(below) >> 64u32.saturating_sub(b),
            };
            *w = at(src) << bits | carry;
        }
    }
}

/// The word and bit of position `k` (below [`WINDOW`]).
fn split(k: u32) -> (usize, u32) {
    (usize::try_from(k / 64).unwrap_or(usize::MAX), k % 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_opens_are_new_and_repeats_are_reuses() {
        let mut seen = SeenIds::default();
        for id in [7, 1, 5, 3] {
            assert!(seen.insert(id), "{id} is new");
        }
        for id in [1, 3, 5, 7] {
            assert!(!seen.insert(id), "{id} was opened");
        }
        assert!(seen.insert(9));
    }

    #[test]
    fn the_window_slides_with_the_highest_id_across_word_boundaries() {
        let mut seen = SeenIds::default();
        assert!(seen.insert(1));
        // 100 ids later: 1 is still within the window and remembered.
        assert!(seen.insert(1 + 2 * 100));
        assert!(!seen.insert(1));
        assert!(seen.insert(1 + 2 * 37));
        // Jump so that 1 sits exactly at the window's last position.
        assert!(seen.insert(1 + 2 * (WINDOW - 1)));
        assert!(!seen.insert(1));
        assert!(!seen.insert(1 + 2 * 37));
        assert!(seen.insert(1 + 2 * 38));
        // One more and 1 falls out: too old to tell, so refused.
        assert!(seen.insert(1 + 2 * WINDOW));
        assert!(!seen.insert(1));
        // A huge jump forgets everything below.
        assert!(seen.insert(u32::MAX));
        assert!(!seen.insert(1 + 2 * WINDOW));
        assert!(seen.insert(u32::MAX - 2));
    }
}
