//! Which code bytes begin an instruction: the blob's bitmask kept as it is stored, one bit
//! per code byte (bit `i % 8` of byte `i / 8`), so that parsing a blob copies it instead of
//! unpacking it, and the pass over the code reads 64 flags in one load.

use std::fmt;

/// Zero bytes kept after the mask, so that eight bytes can be read from any flag's byte.
const PAD: usize = 8;

/// A list of instruction-start flags, one per code byte.
#[derive(Clone, PartialEq, Eq)]
pub struct Starts {
    /// `len.div_ceil(8)` bytes of flags, then [`PAD`] zero bytes; no bit is set at or past
    /// `len`.
    mask: Vec<u8>,
    len: usize,
}

impl Default for Starts {
    fn default() -> Self {
        Starts { mask: vec![0; PAD], len: 0 }
    }
}

impl Starts {
    /// The first `len` flags of `mask` (bit `i % 8` of byte `i / 8`); flags past the mask
    /// are clear, bits past `len` are ignored.
    pub fn from_mask(mask: &[u8], len: usize) -> Starts {
        let bytes = len.div_ceil(8);
        let mut out = Vec::with_capacity(bytes + PAD);
        out.extend_from_slice(&mask[..bytes.min(mask.len())]);
        out.resize(bytes + PAD, 0);
        let mut starts = Starts { mask: out, len };
        starts.clear_from(len);
        starts
    }

    /// The flags, packed as a blob stores them (`len.div_ceil(8)` bytes).
    pub fn mask(&self) -> &[u8] {
        &self.mask[..self.len.div_ceil(8)]
    }

    /// The flags of `len` code bytes packed as a blob stores them: flags past `len` dropped,
    /// missing ones clear.
    pub fn packed(&self, len: usize) -> Vec<u8> {
        if len == self.len {
            return self.mask().to_vec();
        }
        let mut starts = self.clone();
        starts.resize(len);
        starts.mask().to_vec()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Flag `i`, if there is one.
    #[inline]
    pub fn get(&self, i: usize) -> Option<bool> {
        (i < self.len).then(|| self.mask[i / 8] >> (i % 8) & 1 != 0)
    }

    /// Flag `i`; false past the end.
    #[inline]
    pub fn is_set(&self, i: usize) -> bool {
        self.get(i).unwrap_or(false)
    }

    pub fn set(&mut self, i: usize, start: bool) {
        assert!(i < self.len, "flag {i} of {}", self.len);
        let bit = 1 << (i % 8);
        if start {
            self.mask[i / 8] |= bit;
        } else {
            self.mask[i / 8] &= !bit;
        }
    }

    pub fn push(&mut self, start: bool) {
        self.resize(self.len + 1);
        self.set(self.len - 1, start);
    }

    /// Keeps the first `len` flags (adding clear ones when there are fewer).
    pub fn resize(&mut self, len: usize) {
        self.clear_from(len);
        self.mask.resize(len.div_ceil(8) + PAD, 0);
        self.len = len;
    }

    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.resize(len);
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = bool> + '_ {
        (0..self.len).map(|i| self.mask[i / 8] >> (i % 8) & 1 != 0)
    }

    /// The positions of the set flags, in order.
    pub fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.mask[i / 8] >> (i % 8) & 1 != 0)
    }

    pub fn to_vec(&self) -> Vec<bool> {
        self.iter().collect()
    }

    /// The first set flag at or after `from`, or the length when there is none. Flags are
    /// a few bytes apart, so the next one is nearly always among the 57 read in one load.
    #[inline(always)]
    pub fn next_from(&self, from: usize) -> usize {
        // Eight bytes from the flag's byte: always there while `from` is at most the length
        // (the padding), its low `from % 8` bits belong to earlier flags.
        if let Some(word) = self.mask.get(from / 8..from / 8 + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes")) >> (from % 8);
            if word != 0 {
                return from + word.trailing_zeros() as usize;
            }
        }
        self.next_from_far(from)
    }

    /// The last set flag before `p` and at most `within` before it, if any.
    #[inline]
    pub fn last_before(&self, p: usize, within: usize) -> Option<usize> {
        debug_assert!(within <= 56);
        if p == 0 || p > self.len {
            return (p.saturating_sub(within)..p).rev().find(|&q| self.is_set(q));
        }
        // The eight bytes that end with the one flag `p - 1` is in: at least 57 flags before
        // `p` (or all of them), the ones from `p` on masked off.
        let first = ((p - 1) / 8).saturating_sub(7);
        let word = u64::from_le_bytes(self.mask[first..first + 8].try_into().expect("eight bytes"));
        let below = p - 8 * first;
        let word = if below < 64 { word & ((1 << below) - 1) } else { word };
        let last = (8 * first + 63).checked_sub(word.leading_zeros() as usize)?;
        (last + within >= p).then_some(last)
    }

    /// The set flags in order, then the length for ever: a walk over the instruction starts.
    #[inline]
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor { starts: self, base: 0, word: self.word_at(0) }
    }

    /// The 64 flags from `8 * byte`, when they are within the mask.
    #[inline(always)]
    fn word_at(&self, byte: usize) -> u64 {
        self.mask.get(byte..byte + 8).map_or(0, |w| u64::from_le_bytes(w.try_into().expect("eight bytes")))
    }

    /// [`Starts::next_from`] past 57 clear flags: a word at a time.
    #[inline(never)]
    fn next_from_far(&self, from: usize) -> usize {
        if from >= self.len {
            return self.len;
        }
        // From the byte after the one `from` is in (its flags from `from` on were read).
        let mut byte = from / 8 + 1;
        while let Some(word) = self.mask.get(byte..byte + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if word != 0 {
                return (8 * byte + word.trailing_zeros() as usize).min(self.len);
            }
            byte += 8;
        }
        self.len
    }

    /// Clears the bits at and past `len` within the mask's bytes.
    fn clear_from(&mut self, len: usize) {
        let first = len.div_ceil(8);
        if !len.is_multiple_of(8) {
            self.mask[len / 8] &= (1u8 << (len % 8)) - 1;
        }
        for byte in self.mask.iter_mut().skip(first) {
            *byte = 0;
        }
    }
}

/// A walk over the set flags ([`Starts::cursor`]): one word of flags is read per 64 code
/// bytes, and each start is found with one bit scan.
pub struct Cursor<'a> {
    starts: &'a Starts,
    /// The position of the low bit of `word`.
    base: usize,
    /// The flags from `base` not returned yet.
    word: u64,
}

impl Cursor<'_> {
    /// The next set flag, or the length when there are no more.
    #[inline(always)]
    pub fn next_start(&mut self) -> usize {
        while self.word == 0 {
            if self.base + 64 >= self.starts.len {
                self.base = self.starts.len;
                return self.base;
            }
            self.base += 64;
            self.word = self.starts.word_at(self.base / 8);
        }
        let at = self.base + self.word.trailing_zeros() as usize;
        self.word &= self.word - 1;
        at
    }
}

impl From<&[bool]> for Starts {
    fn from(flags: &[bool]) -> Starts {
        let mut mask = vec![0u8; flags.len().div_ceil(8) + PAD];
        for (i, _) in flags.iter().enumerate().filter(|(_, &s)| s) {
            mask[i / 8] |= 1 << (i % 8);
        }
        Starts { mask, len: flags.len() }
    }
}

impl From<Vec<bool>> for Starts {
    fn from(flags: Vec<bool>) -> Starts {
        Starts::from(&flags[..])
    }
}

impl FromIterator<bool> for Starts {
    fn from_iter<I: IntoIterator<Item = bool>>(iter: I) -> Starts {
        Starts::from(iter.into_iter().collect::<Vec<bool>>())
    }
}

impl Extend<bool> for Starts {
    fn extend<I: IntoIterator<Item = bool>>(&mut self, iter: I) {
        for start in iter {
            self.push(start);
        }
    }
}

impl std::ops::Index<usize> for Starts {
    type Output = bool;

    /// Flag `i`; panics past the end, as a slice does.
    fn index(&self, i: usize) -> &bool {
        match self.get(i) {
            Some(true) => &true,
            Some(false) => &false,
            None => panic!("flag {i} of {}", self.len),
        }
    }
}

impl PartialEq<[bool]> for Starts {
    fn eq(&self, other: &[bool]) -> bool {
        self.len == other.len() && self.iter().zip(other).all(|(a, &b)| a == b)
    }
}

impl PartialEq<Vec<bool>> for Starts {
    fn eq(&self, other: &Vec<bool>) -> bool {
        *self == other[..]
    }
}

impl<const N: usize> PartialEq<[bool; N]> for Starts {
    fn eq(&self, other: &[bool; N]) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Starts {
    /// The positions of the starts, and the length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Starts {{ len: {}, at: {:?} }}", self.len, self.positions().collect::<Vec<_>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_flags(seed: u64, len: usize, density: u64) -> Vec<bool> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.is_multiple_of(density)
            })
            .collect()
    }

    #[test]
    fn flags_read_back_as_they_were_given() {
        for len in 0..200 {
            for density in [1, 2, 7, 40, 1000] {
                let flags = random_flags(len as u64 * 31 + density, len, density);
                let starts = Starts::from(&flags[..]);
                assert_eq!(starts, flags);
                assert_eq!(starts.to_vec(), flags);
                assert_eq!(starts.len(), len);
                for (i, &f) in flags.iter().enumerate() {
                    assert_eq!((starts.get(i), starts[i], starts.is_set(i)), (Some(f), f, f));
                }
                assert_eq!((starts.get(len), starts.is_set(len)), (None, false));
                // Packed and unpacked again, as a blob stores them.
                assert_eq!(Starts::from_mask(starts.mask(), len), starts);
                assert_eq!(starts.mask().len(), len.div_ceil(8));
            }
        }
    }

    #[test]
    fn the_next_start_is_the_first_set_flag_at_or_after_every_position() {
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 100, 300, 1000] {
            for density in [1, 3, 30, 200, 100_000] {
                let flags = random_flags(len as u64 + density, len, density);
                let starts = Starts::from(&flags[..]);
                for from in 0..=len + 2 {
                    let expected = (from..len).find(|&i| flags[i]).unwrap_or(len);
                    assert_eq!(starts.next_from(from), expected, "len {len}, density {density}, from {from}");
                }
            }
        }
    }

    #[test]
    fn a_cursor_visits_every_start_in_order_then_stays_at_the_end() {
        for len in [0, 1, 7, 8, 63, 64, 65, 127, 128, 129, 300, 1000] {
            for density in [1, 3, 30, 200, 100_000] {
                let flags = random_flags(len as u64 * 7 + density, len, density);
                let starts = Starts::from(&flags[..]);
                let mut cursor = starts.cursor();
                let visited: Vec<usize> =
                    std::iter::from_fn(|| Some(cursor.next_start()).filter(|&p| p < len)).collect();
                let expected: Vec<usize> = (0..len).filter(|&i| flags[i]).collect();
                assert_eq!(visited, expected, "len {len}, density {density}");
                assert_eq!((cursor.next_start(), cursor.next_start()), (len, len));
            }
        }
    }

    #[test]
    fn the_last_start_before_a_position_is_found_within_its_reach() {
        for len in [0, 1, 9, 64, 65, 200] {
            for density in [1, 4, 20, 100_000] {
                let flags = random_flags(len as u64 * 13 + density, len, density);
                let starts = Starts::from(&flags[..]);
                for within in [1, 25, 56] {
                    for p in 0..=len + 3 {
                        let expected = (p.saturating_sub(within)..p).rev().find(|&q| q < len && flags[q]);
                        assert_eq!(starts.last_before(p, within), expected, "len {len}, density {density}, p {p}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_next_start_is_found_across_long_gaps() {
        for len in [1usize, 8, 9, 40, 100] {
            for gap_end in 0..len {
                let starts: Vec<bool> = (0..len).map(|i| i == gap_end).collect();
                for from in 0..=len {
                    let expected = if from <= gap_end { gap_end } else { len };
                    assert_eq!(
                        Starts::from(&starts[..]).next_from(from),
                        expected,
                        "len {len}, start {gap_end}, from {from}"
                    );
                }
            }
        }
        assert_eq!(Starts::default().next_from(0), 0);
    }

    #[test]
    fn the_next_start_is_found_from_every_position_of_short_lists() {
        // Flag vectors of every length up to 40 with starts at assorted strides, so that the
        // next start is inside the word read, past it, within the last eight flags, or absent.
        for len in 0..40usize {
            for stride in [1usize, 3, 7, 8, 9, 17, 41] {
                for offset in 0..3 {
                    let starts: Vec<bool> = (0..len).map(|i| i >= offset && (i - offset) % stride == 0).collect();
                    for from in 0..=len + 1 {
                        let naive = (from..len).find(|&i| starts[i]).unwrap_or(len);
                        let packed = Starts::from(&starts[..]);
                        assert_eq!(packed.next_from(from), naive, "len {len}, stride {stride}, from {from}");
                    }
                }
            }
        }
    }

    #[test]
    fn bits_past_the_length_are_not_flags() {
        // A mask whose padding bits and extra bytes are set: none of them is a start.
        let starts = Starts::from_mask(&[0b1111_0001, 0xFF, 0xFF], 3);
        assert_eq!(starts, [true, false, false]);
        assert_eq!(starts.next_from(1), 3);
        assert_eq!(starts.mask(), &[0b0000_0001]);
        // Packed for fewer code bytes, and for more.
        assert_eq!(starts.packed(3), [0b0000_0001]);
        assert_eq!(Starts::from(vec![true, false, true, true]).packed(3), [0b0000_0101]);
        assert_eq!(starts.packed(17), [0b0000_0001, 0, 0]);
        let mut grown = starts.clone();
        grown.resize(20);
        assert_eq!(grown.positions().collect::<Vec<_>>(), vec![0]);
        assert_eq!(grown.next_from(1), 20);
    }

    #[test]
    fn editing_keeps_the_flags_in_step_with_a_vector() {
        let mut starts = Starts::default();
        let mut flags = Vec::new();
        for k in 0..300usize {
            match k % 5 {
                0..=2 => {
                    starts.push(k % 3 == 0);
                    flags.push(k % 3 == 0);
                }
                3 => {
                    let i = k * 7 % flags.len();
                    starts.set(i, !flags[i]);
                    flags[i] = !flags[i];
                }
                _ => {
                    let keep = flags.len() - flags.len() / 10;
                    starts.truncate(keep);
                    flags.truncate(keep);
                }
            }
            assert_eq!(starts, flags, "after step {k}");
            for from in 0..=flags.len() {
                assert_eq!(starts.next_from(from), (from..flags.len()).find(|&i| flags[i]).unwrap_or(flags.len()));
            }
        }
        starts.extend([true, false, true]);
        flags.extend([true, false, true]);
        assert_eq!(starts, flags);
    }
}
