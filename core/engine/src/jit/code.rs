//! Executable memory for compiled modules: chunks of a memfd mapped twice, once writable and
//! once executable (never both in one mapping), filled by bump allocation. A module's code is
//! assembled straight into the free part of a chunk (a [`Lease`]) and placed where it is;
//! placing costs no system call; a chunk is unmapped when the last module in it is dropped.

use std::ffi::CStr;
use std::io;
use std::ptr;
use std::sync::Arc;

/// Default chunk size (address space; pages are faulted in as code is placed).
const CHUNK_SIZE: usize = 4 << 20;
/// Full chunks kept for reuse.
const RETIRED_CHUNKS: usize = 4;
/// Alignment of each module's start.
const ALIGN: usize = 64;
/// Pages are faulted in ahead of use this many bytes at a time, by one system call per view
/// instead of one page fault per page and view.
const POPULATE: usize = 256 << 10;

/// One memfd with its two views.
pub(crate) struct Chunk {
    fd: libc::c_int,
    writable: *mut u8,
    executable: *mut u8,
    size: usize,
}

// SAFETY: the chunk is plain memory plus a file descriptor; the writable view is only written
// by the `CodeArena` that owns the chunk (while no module in that part is running), and the
// executable view is only read/executed.
unsafe impl Send for Chunk {}
// SAFETY: shared references only expose the executable view's address.
unsafe impl Sync for Chunk {}

impl Chunk {
    fn new(size: usize) -> io::Result<Chunk> {
        const NAME: &CStr = c"javm-jit-code";
        // SAFETY: a valid NUL-terminated name and flags.
        let fd = unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let close_on_error = |e: io::Error| {
            // SAFETY: fd is ours and not used afterwards.
            unsafe { libc::close(fd) };
            e
        };
        // SAFETY: fd is a fresh memfd; size fits off_t on 64-bit Linux.
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
            return Err(close_on_error(io::Error::last_os_error()));
        }
        let map = |prot| {
            // SAFETY: a shared mapping of our own memfd, which is `size` bytes long.
            let p = unsafe { libc::mmap(ptr::null_mut(), size, prot, libc::MAP_SHARED, fd, 0) };
            if p == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(p.cast::<u8>())
            }
        };
        let writable = map(libc::PROT_READ | libc::PROT_WRITE).map_err(close_on_error)?;
        let executable = match map(libc::PROT_READ | libc::PROT_EXEC) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: `writable` was mapped above with this size and is not used afterwards.
                unsafe { libc::munmap(writable.cast(), size) };
                return Err(close_on_error(e));
            }
        };
        Ok(Chunk { fd, writable, executable, size })
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: both views were mapped with `size` bytes in `new`; no module referring to
        // this chunk is alive any more (they hold an Arc to it).
        unsafe {
            libc::munmap(self.writable.cast(), self.size);
            libc::munmap(self.executable.cast(), self.size);
            libc::close(self.fd);
        }
    }
}

/// A region of a chunk's writable view for one module's code to be written into: from the
/// chunk's first free byte to its end. Keeps the chunk mapped.
pub(crate) struct Lease {
    chunk: Arc<Chunk>,
    offset: usize,
    capacity: usize,
}

impl Lease {
    /// The region's first byte, in the writable view.
    pub fn writable(&self) -> *mut u8 {
        // SAFETY: `offset` is within the chunk (at most its size), whose view is mapped.
        unsafe { self.chunk.writable.add(self.offset) }
    }

    /// Bytes the region holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A placed module's code. Keeps its chunk mapped.
pub(crate) struct Code {
    chunk: Arc<Chunk>,
    offset: usize,
    len: usize,
}

impl Code {
    /// Address of the first byte (in the executable view).
    pub fn start(&self) -> usize {
        self.chunk.executable as usize + self.offset
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The code, as seen through the executable view.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the range was placed by the arena and its chunk stays mapped while `self`
        // lives; the executable view is readable, and nothing writes this range while a
        // module holds it (the arena hands a chunk's space out again only once no module is
        // in it).
        unsafe { std::slice::from_raw_parts(self.start() as *const u8, self.len) }
    }

    /// [`Code::bytes`], copied.
    #[cfg(test)]
    pub fn executable_bytes(&self) -> Vec<u8> {
        self.bytes().to_vec()
    }

    /// Address of the first byte in the writable view.
    #[cfg(test)]
    pub fn writable_start(&self) -> *const u8 {
        self.chunk.writable.wrapping_add(self.offset)
    }
}

/// Bump allocator over chunks. A full chunk is retired; once no module in a retired chunk is
/// alive any more, the chunk is filled again from its start, so a process that compiles one
/// program after another keeps reusing memory it has already faulted in.
#[derive(Default)]
pub(crate) struct CodeArena {
    current: Option<Arc<Chunk>>,
    used: usize,
    /// Bytes of the current chunk already faulted in (both views).
    populated: usize,
    /// Full chunks with how much of each is faulted in, oldest first.
    retired: Vec<(Arc<Chunk>, usize)>,
}

impl CodeArena {
    /// Copies `bytes` into executable memory.
    pub fn place(&mut self, bytes: &[u8]) -> io::Result<Code> {
        let lease = self.lease(bytes.len())?;
        // SAFETY: the lease's region holds at least `bytes.len()` bytes of the chunk's
        // writable view that no live module's code is in (see `lease`), so nothing executes
        // it. x86 keeps instruction fetch coherent with these stores, through either view.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), lease.writable(), bytes.len()) };
        self.commit(lease, bytes.len())
    }

    /// The free rest of a chunk, with at least `len` bytes faulted in, for code to be written
    /// into and then placed where it is by [`CodeArena::commit`]. Until then the arena hands
    /// the same region out again, so a lease not committed is simply given up.
    pub fn lease(&mut self, len: usize) -> io::Result<Lease> {
        if self.current.as_ref().is_some_and(|c| Arc::strong_count(c) == 1) {
            // No module in the current chunk is alive: fill it again from its start.
            self.used = 0;
        }
        let fits = self.current.as_ref().is_some_and(|c| self.used + len <= c.size);
        if !fits {
            self.next_chunk(len)?;
        }
        let chunk = self.current.clone().expect("chunk allocated above");
        let offset = self.used;
        if offset + len > self.populated {
            let end = (offset + len).next_multiple_of(POPULATE).min(chunk.size);
            let (start, span) = (self.populated, end - self.populated);
            // SAFETY: both ranges lie inside the chunk's two views; populating changes no
            // contents. A kernel without these advice values refuses them and the pages are
            // faulted in on first touch instead.
            unsafe {
                libc::madvise(chunk.writable.add(start).cast(), span, libc::MADV_POPULATE_WRITE);
                libc::madvise(chunk.executable.add(start).cast(), span, libc::MADV_POPULATE_READ);
            }
            self.populated = end;
        }
        let capacity = chunk.size - offset;
        Ok(Lease { chunk, offset, capacity })
    }

    /// Places the first `len` bytes written into `lease` (the arena's latest) as a module's
    /// code: the space after them is what the next lease begins with.
    pub fn commit(&mut self, lease: Lease, len: usize) -> io::Result<Code> {
        let current = self.current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &lease.chunk));
        if !current || lease.offset != self.used || len > lease.capacity {
            return Err(io::Error::other("code placed outside the arena's latest lease"));
        }
        self.used = (lease.offset + len).next_multiple_of(ALIGN).min(lease.chunk.size);
        Ok(Code { chunk: lease.chunk, offset: lease.offset, len })
    }

    /// Retires the current chunk and makes current one that holds `len` bytes: a retired
    /// chunk no module uses any more, else a new one.
    fn next_chunk(&mut self, len: usize) -> io::Result<()> {
        if let Some(chunk) = self.current.take() {
            self.retired.push((chunk, self.populated));
        }
        // Only this arena holds a free chunk, and no other thread can take a reference to it.
        let free = self.retired.iter().position(|(c, _)| Arc::strong_count(c) == 1 && c.size >= len);
        let (chunk, populated) = match free {
            Some(i) => self.retired.remove(i),
            None => (Arc::new(Chunk::new(CHUNK_SIZE.max(len.next_multiple_of(4096)))?), 0),
        };
        self.current = Some(chunk);
        self.used = 0;
        self.populated = populated;
        while self.retired.len() > RETIRED_CHUNKS {
            // Dropping the arena's reference unmaps the chunk once its last module is gone.
            self.retired.remove(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executable_bytes(code: &Code) -> Vec<u8> {
        code.executable_bytes()
    }

    #[test]
    fn a_chunk_is_refilled_only_after_its_last_module_is_gone() {
        let mut arena = CodeArena::default();
        let big = vec![0xC3u8; CHUNK_SIZE / 2 + 1];
        let first = arena.place(&big).unwrap();
        let first_chunk = first.chunk.executable;
        // Two such modules do not fit in one chunk: a second chunk, since `first` is alive.
        let second = arena.place(&big).unwrap();
        assert_ne!(second.chunk.executable, first_chunk);
        // Both are alive: a third chunk.
        let third = arena.place(&big).unwrap();
        assert_ne!(third.chunk.executable, first_chunk);
        assert_ne!(third.chunk.executable, second.chunk.executable);
        // Once the first chunk's module is dropped, a full chunk's successor reuses it.
        drop(first);
        let pattern: Vec<u8> = (0..CHUNK_SIZE / 2 + 1).map(|i| i as u8).collect();
        let reused = arena.place(&pattern).unwrap();
        assert_eq!(reused.chunk.executable, first_chunk);
        assert_eq!(reused.offset, 0);
        assert_eq!(executable_bytes(&reused), pattern, "new contents are visible to execution");
        assert_eq!(executable_bytes(&second), big, "a live module's code is untouched");
    }

    #[test]
    fn a_chunk_without_live_modules_is_filled_from_its_start_again() {
        let mut arena = CodeArena::default();
        let first = arena.place(&[0xC3; 100]).unwrap();
        let (chunk, offset) = (first.chunk.executable, first.offset);
        let second = arena.place(&[0x90; 100]).unwrap();
        assert_eq!(second.offset, 100usize.next_multiple_of(ALIGN), "a live module keeps its space");
        drop((first, second));
        let third = arena.place(&[0xCC; 100]).unwrap();
        assert_eq!((third.chunk.executable, third.offset), (chunk, offset));
        assert_eq!(executable_bytes(&third), vec![0xCC; 100]);
    }

    #[test]
    fn a_module_larger_than_a_chunk_gets_a_chunk_of_its_own_size() {
        let mut arena = CodeArena::default();
        let huge = vec![0xCCu8; CHUNK_SIZE + 5000];
        let code = arena.place(&huge).unwrap();
        assert_eq!(code.len(), huge.len());
        assert_eq!(executable_bytes(&code), huge);
    }
}
