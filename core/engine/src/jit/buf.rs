//! The bytes the [`super::emit::Emitter`] assembles into: either a region of executable
//! memory's writable view, leased from the [`CodeArena`] for one compilation so that the code
//! is written where it will run (placing it afterwards costs no copy), or a heap buffer (for
//! the runtime's assembly, for tests, and when a compilation outgrows its lease).

use std::ptr;

use super::code::{Code, CodeArena, Lease};

/// A growable byte buffer over either backing; see the module documentation.
pub(crate) struct CodeBuf {
    /// Start of the bytes: `heap`'s allocation, or the lease's region.
    ptr: *mut u8,
    len: usize,
    /// Bytes writable from `ptr` on.
    cap: usize,
    /// Storage in heap mode, its length kept at 0 (its capacity is the buffer's room).
    heap: Vec<u8>,
    /// The region the bytes are in, in lease mode.
    lease: Option<Lease>,
}

// SAFETY: the raw pointer is either into `heap` (owned) or into a chunk the lease keeps
// mapped; the buffer is used by one thread at a time through `&mut`, like a `Vec`.
unsafe impl Send for CodeBuf {}

impl Default for CodeBuf {
    fn default() -> Self {
        let mut heap = Vec::new();
        CodeBuf { ptr: heap.as_mut_ptr(), len: 0, cap: heap.capacity(), heap, lease: None }
    }
}

impl CodeBuf {
    /// Empties the buffer and returns it to heap mode (a lease still held is given up: the
    /// arena hands its region out again only after that).
    pub fn clear(&mut self) {
        self.lease = None;
        self.ptr = self.heap.as_mut_ptr();
        self.cap = self.heap.capacity();
        self.len = 0;
    }

    /// Empties the buffer and makes `lease` its storage.
    pub fn clear_into(&mut self, lease: Lease) {
        self.clear();
        self.ptr = lease.writable();
        self.cap = lease.capacity();
        self.lease = Some(lease);
    }

    /// Places the finished code: in its lease, where it already is; else copied into `arena`.
    pub fn place(&mut self, arena: &mut CodeArena) -> std::io::Result<Code> {
        let code = match self.lease.take() {
            Some(lease) => arena.commit(lease, self.len),
            None => arena.place(self.as_slice()),
        };
        self.clear();
        code
    }

    /// Whether the bytes are still in a leased region (for tests).
    #[cfg(test)]
    pub fn is_leased(&self) -> bool {
        self.lease.is_some()
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Makes room for `additional` more bytes.
    #[inline(always)]
    pub fn reserve(&mut self, additional: usize) {
        if self.cap - self.len < additional {
            self.grow(additional);
        }
    }

    /// Moves the bytes to a heap buffer with room for `additional` more (at least twice the
    /// room there was, so appending stays amortised constant time).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) {
        let needed = self.len.checked_add(additional).expect("code size overflows usize");
        let mut heap = Vec::with_capacity(needed.max(self.cap * 2).max(64));
        // SAFETY: the first `len` bytes at `ptr` are initialised (written by this buffer) and
        // `heap`'s fresh allocation of at least `needed` bytes does not overlap them.
        unsafe { ptr::copy_nonoverlapping(self.ptr, heap.as_mut_ptr(), self.len) };
        self.heap = heap;
        self.lease = None;
        self.ptr = self.heap.as_mut_ptr();
        self.cap = self.heap.capacity();
    }

    /// Appends the first `len` of the 16 bytes of `bytes` with one unaligned store.
    #[inline(always)]
    pub fn put16(&mut self, bytes: u128, len: usize) {
        debug_assert!(len <= 16);
        self.reserve(16);
        // SAFETY: `reserve` left at least 16 writable bytes at `ptr + len`.
        unsafe { self.ptr.add(self.len).cast::<[u8; 16]>().write_unaligned(bytes.to_le_bytes()) };
        self.len += len.min(16);
    }

    #[inline(always)]
    pub fn push(&mut self, byte: u8) {
        self.reserve(1);
        // SAFETY: `reserve` left room for one byte at `ptr + len`.
        unsafe { self.ptr.add(self.len).write(byte) };
        self.len += 1;
    }

    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        // SAFETY: `reserve` left room for `bytes.len()` bytes at `ptr + len`; a borrowed
        // slice cannot overlap the buffer's spare room, which nothing else references.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes at `ptr` are initialised and owned by this buffer
        // (heap) or its lease (a region no one else writes); `ptr` is non-null and aligned
        // for bytes even when empty (a Vec's dangling pointer).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn heap_mode_appends_and_grows_like_a_vector() {
        let mut b = CodeBuf::default();
        let mut expected = Vec::new();
        for k in 0..2000usize {
            match k % 3 {
                0 => {
                    b.push(k as u8);
                    expected.push(k as u8);
                }
                1 => {
                    let bits = u128::from_le_bytes(std::array::from_fn(|i| (k + i) as u8));
                    b.put16(bits, k % 17);
                    expected.extend_from_slice(&bits.to_le_bytes()[..k % 17]);
                }
                _ => {
                    b.extend_from_slice(&pattern(k % 40));
                    expected.extend_from_slice(&pattern(k % 40));
                }
            }
            assert_eq!(b.as_slice(), &expected[..], "after step {k}");
        }
        b.as_mut_slice()[5] = 0xAA;
        expected[5] = 0xAA;
        assert_eq!(b.as_slice(), &expected[..]);
        b.clear();
        assert!(b.as_slice().is_empty());
    }

    #[test]
    fn code_written_in_a_lease_is_placed_without_moving() {
        let mut arena = CodeArena::default();
        let mut b = CodeBuf::default();
        b.clear_into(arena.lease(1000).unwrap());
        b.extend_from_slice(&pattern(900));
        b.as_mut_slice()[0] = 0xC3;
        let written_at = b.as_slice().as_ptr();
        assert!(b.is_leased());
        let code = b.place(&mut arena).unwrap();
        let mut expected = pattern(900);
        expected[0] = 0xC3;
        assert_eq!(code.executable_bytes(), expected);
        assert_eq!(code.writable_start(), written_at, "placed where it was written");
        // The next module goes after it, not over it.
        b.clear_into(arena.lease(10).unwrap());
        b.push(0x90);
        let next = b.place(&mut arena).unwrap();
        assert!(next.start() >= code.start() + 900);
        assert_eq!(code.executable_bytes(), expected, "the first module is untouched");
        assert_eq!(next.executable_bytes(), vec![0x90]);
    }

    #[test]
    fn code_that_outgrows_its_lease_moves_to_the_heap_intact() {
        let mut arena = CodeArena::default();
        let mut b = CodeBuf::default();
        let lease = arena.lease(100).unwrap();
        let room = lease.capacity();
        b.clear_into(lease);
        let all = pattern(room + 5000);
        b.extend_from_slice(&all[..room - 3]);
        assert!(b.is_leased());
        b.put16(u128::from_le_bytes(all[room - 3..room + 13].try_into().unwrap()), 16);
        assert!(!b.is_leased(), "16 bytes did not fit in what was left");
        b.extend_from_slice(&all[room + 13..]);
        assert_eq!(b.as_slice(), &all[..]);
        let code = b.place(&mut arena).unwrap();
        assert_eq!(code.executable_bytes(), all);
    }

    #[test]
    fn an_abandoned_lease_is_handed_out_again() {
        let mut arena = CodeArena::default();
        let mut b = CodeBuf::default();
        b.clear_into(arena.lease(100).unwrap());
        b.extend_from_slice(&pattern(50));
        let first = b.as_slice().as_ptr();
        // A failed compilation clears the buffer without placing anything.
        b.clear();
        b.clear_into(arena.lease(100).unwrap());
        assert_eq!(b.as_slice().as_ptr(), first);
        b.push(1);
        assert_eq!(b.place(&mut arena).unwrap().executable_bytes(), vec![1]);
    }
}
