//! The bytes the [`super::emit::Emitter`] assembles into: either a region of executable
//! memory's writable view, leased from the [`CodeArena`] for one compilation so that the code
//! is written where it will run (placing it afterwards costs no copy), or a heap buffer (for
//! the runtime's assembly, for tests, and when a compilation outgrows its lease).

use std::ptr;

use super::code::{Code, CodeArena, Lease};

/// The most bytes of code one unit is assembled into: a guest instruction's charge and body,
/// or one cold stub. The longest is far shorter (`jit::compile::tests::every_unit_fits_its_room`
/// compiles every opcode with its widest operands and measures).
pub(crate) const MAX_UNIT: usize = 256;

/// The room [`CodeBuf::reserve_room`] makes: a unit's longest code, and the 16 bytes its
/// last store writes in whole.
const ROOM: usize = MAX_UNIT + 16;

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
    /// Where the room made by the last [`CodeBuf::reserve_room`] begins, and where the unit
    /// of code it is for must end.
    #[cfg(debug_assertions)]
    room_start: usize,
    #[cfg(debug_assertions)]
    room_end: usize,
    /// The most bytes a unit of code has written with [`CodeBuf::put16`] from the start of
    /// its room.
    #[cfg(debug_assertions)]
    pub longest_unit: usize,
}

// SAFETY: the raw pointer is either into `heap` (owned) or into a chunk the lease keeps
// mapped; the buffer is used by one thread at a time through `&mut`, like a `Vec`.
unsafe impl Send for CodeBuf {}

impl Default for CodeBuf {
    fn default() -> Self {
        let mut heap = Vec::new();
        CodeBuf {
            ptr: heap.as_mut_ptr(),
            len: 0,
            cap: heap.capacity(),
            heap,
            lease: None,
            #[cfg(debug_assertions)]
            room_end: 0,
            #[cfg(debug_assertions)]
            room_start: 0,
            #[cfg(debug_assertions)]
            longest_unit: 0,
        }
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
        #[cfg(debug_assertions)]
        {
            self.room_end = 0;
            self.room_start = 0;
        }
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

    /// Makes room for [`ROOM`] more bytes: what the [`CodeBuf::put16`]s of one unit of code
    /// (one guest instruction's code, one cold stub) write.
    #[inline(always)]
    pub fn reserve_room(&mut self) {
        self.reserve(ROOM);
        #[cfg(debug_assertions)]
        {
            self.room_start = self.len;
            self.room_end = self.len + MAX_UNIT;
        }
    }

    /// Appends the first `len` of the 16 bytes of `bytes` with one unaligned store, within
    /// the room the last [`CodeBuf::reserve_room`] made: the capacity is not tested again
    /// for each of the few encodings a unit of code is made of (debug builds test that every
    /// store stays within the room).
    #[inline(always)]
    pub fn put16(&mut self, bytes: u128, len: usize) {
        debug_assert!(len <= 16);
        #[cfg(debug_assertions)]
        {
            assert!(self.len + len <= self.room_end, "code written past the room reserved for it");
            self.longest_unit = self.longest_unit.max(self.len + len - self.room_start);
        }
        debug_assert!(self.cap - self.len >= 16);
        // SAFETY: the unit of code being written began with `reserve_room`, which left ROOM
        // (MAX_UNIT + 16) writable bytes from the end of the code then. No unit is longer
        // than MAX_UNIT: the compiler's code for one instruction or stub is a fixed sequence
        // of bounded encodings whatever the guest's operands, the longest is measured over
        // every opcode by `every_unit_fits_its_room` (well under half of MAX_UNIT), and debug
        // builds check each store. So `len` is at most MAX_UNIT past the room's start, and the 16 bytes from
        // `ptr + len` are inside the room.
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
                    b.reserve_room();
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
    #[cfg(debug_assertions)]
    #[should_panic(expected = "past the room")]
    fn a_store_without_room_made_for_it_is_caught() {
        let mut b = CodeBuf::default();
        b.reserve(1000);
        b.put16(0x90, 1);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "past the room")]
    fn a_unit_longer_than_its_room_is_caught() {
        let mut b = CodeBuf::default();
        b.reserve_room();
        for _ in 0..MAX_UNIT / 16 {
            b.put16(u128::MAX, 16);
        }
        b.put16(u128::MAX, 1);
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
        b.reserve_room();
        assert!(!b.is_leased(), "a unit's room did not fit in what was left");
        b.put16(u128::from_le_bytes(all[room - 3..room + 13].try_into().unwrap()), 16);
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
