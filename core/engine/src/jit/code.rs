//! Executable memory for compiled modules: chunks of a memfd mapped twice, once writable and
//! once executable (never both in one mapping), filled by bump allocation. Placing a module
//! costs a copy, not a system call; a chunk is unmapped when the last module in it is dropped.

use std::ffi::CStr;
use std::io;
use std::ptr;
use std::sync::Arc;

/// Default chunk size (address space; pages are only allocated when written).
const CHUNK_SIZE: usize = 16 << 20;
/// Alignment of each module's start.
const ALIGN: usize = 64;

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
}

/// Bump allocator over chunks.
#[derive(Default)]
pub(crate) struct CodeArena {
    current: Option<Arc<Chunk>>,
    used: usize,
}

impl CodeArena {
    /// Copies `bytes` into executable memory.
    pub fn place(&mut self, bytes: &[u8]) -> io::Result<Code> {
        let len = bytes.len();
        let fits = self.current.as_ref().is_some_and(|c| self.used + len <= c.size);
        if !fits {
            let size = CHUNK_SIZE.max(len.next_multiple_of(4096));
            self.current = Some(Arc::new(Chunk::new(size)?));
            self.used = 0;
        }
        let chunk = self.current.clone().expect("chunk allocated above");
        let offset = self.used;
        // SAFETY: [offset, offset + len) lies inside the chunk's writable view and no code has
        // been placed there yet (bump allocation never reuses space), so nothing executes it.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), chunk.writable.add(offset), len) };
        self.used = (offset + len).next_multiple_of(ALIGN);
        Ok(Code { chunk, offset, len })
    }
}
