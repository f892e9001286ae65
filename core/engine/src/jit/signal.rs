//! The process-wide SIGSEGV/SIGBUS handler. It acts only on faults raised by a registered
//! guest access inside the code of the module running on the *current thread*, whose fault
//! address lies inside that run's guest reservation: it then redirects execution to the slow
//! memory path, which applies the exact rules of PVMSPEC-1 §7. Every other fault goes to the
//! handler that was installed before (or gets the default action).

use std::cell::Cell;
use std::io;
use std::mem;
use std::ptr;
use std::sync::OnceLock;

use libc::{c_int, c_void, siginfo_t};

use super::compile::GuestAccess;
use super::ctx::Ctx;

/// What the handler needs to know about the JIT run active on a thread.
pub(crate) struct Active {
    pub code_start: usize,
    pub code_end: usize,
    /// The registered guest accesses, at ascending code offsets.
    pub accesses: *const GuestAccess,
    pub access_count: usize,
    /// Host range of the guest space plus guard.
    pub mem_lo: usize,
    pub mem_hi: usize,
    /// Absolute address of the slow memory path.
    pub slow_entry: usize,
    pub ctx: *mut Ctx,
}

thread_local! {
    // Const-initialised and without a destructor: reading it needs no lazy initialisation, so
    // it is safe to touch from a signal handler.
    static ACTIVE: Cell<*const Active> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with `active` registered for this thread (restoring the previous registration
/// afterwards, so nested runs on one thread work).
pub(crate) fn with_active<R>(active: &Active, f: impl FnOnce() -> R) -> R {
    struct Restore(*const Active);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(ACTIVE.with(|a| a.replace(active)));
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    let result = f();
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    result
}

struct Previous {
    segv: libc::sigaction,
    bus: libc::sigaction,
}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();

/// Installs the handler once per process.
pub(crate) fn install() -> io::Result<()> {
    let result = INSTALLED.get_or_init(|| {
        // SAFETY: sigaction is called with valid pointers to zero-initialised (valid) sigaction
        // structs; the previous actions are recorded before our handler becomes active, so the
        // handler can always chain to them.
        unsafe {
            let mut segv: libc::sigaction = mem::zeroed();
            let mut bus: libc::sigaction = mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, ptr::null(), &mut segv) != 0
                || libc::sigaction(libc::SIGBUS, ptr::null(), &mut bus) != 0
            {
                return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            let _ = PREVIOUS.set(Previous { segv, bus });
            let mut action: libc::sigaction = mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGSEGV, &action, ptr::null_mut()) != 0
                || libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) != 0
            {
                return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
        }
        Ok(())
    });
    result.map_err(io::Error::from_raw_os_error)
}

extern "C" fn handler(sig: c_int, info: *mut siginfo_t, uctx: *mut c_void) {
    // SAFETY: the kernel passes valid siginfo and ucontext pointers to an SA_SIGINFO handler.
    unsafe {
        if !redirect(info, uctx) {
            chain(sig, info, uctx);
        }
    }
}

/// Redirects a guest access fault to the slow path; `false` when the fault is not ours.
///
/// # Safety
/// `info` and `uctx` must be the handler's arguments.
unsafe fn redirect(info: *mut siginfo_t, uctx: *mut c_void) -> bool {
    let active = ACTIVE.with(|a| a.get());
    if active.is_null() || info.is_null() || uctx.is_null() {
        return false;
    }
    // SAFETY: a registered `Active` outlives the run it describes (see `with_active`).
    let active = unsafe { &*active };
    // SAFETY: on x86-64 Linux the third handler argument is a ucontext_t.
    let uc = unsafe { &mut *(uctx as *mut libc::ucontext_t) };
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    // SAFETY: `info` is valid; si_addr is defined for SIGSEGV and SIGBUS.
    let address = unsafe { (*info).si_addr() } as usize;
    if rip < active.code_start || rip >= active.code_end || address < active.mem_lo || address >= active.mem_hi {
        return false;
    }
    // SAFETY: the access table belongs to the running module and has `access_count` entries.
    let accesses = unsafe { std::slice::from_raw_parts(active.accesses, active.access_count) };
    let Ok(desc) = accesses.binary_search_by_key(&((rip - active.code_start) as u32), |a| a.at) else {
        return false;
    };
    // SAFETY: the context page is mapped read-write for as long as the run is registered, and
    // the interrupted compiled code does not access `slow_desc` concurrently.
    unsafe { (*active.ctx).slow_desc = desc as u32 };
    uc.uc_mcontext.gregs[libc::REG_RIP as usize] = active.slow_entry as i64;
    true
}

/// Hands a fault to the previously installed handler, or applies the default action.
///
/// # Safety
/// Must only be called from the signal handler with its arguments.
unsafe fn chain(sig: c_int, info: *mut siginfo_t, uctx: *mut c_void) {
    let previous = PREVIOUS.get().map(|p| if sig == libc::SIGBUS { &p.bus } else { &p.segv });
    match previous {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: with SA_SIGINFO the recorded address is a three-argument handler.
                let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) = unsafe { mem::transmute(p.sa_sigaction) };
                f(sig, info, uctx);
            } else {
                // SAFETY: without SA_SIGINFO the recorded address is a one-argument handler.
                let f: extern "C" fn(c_int) = unsafe { mem::transmute(p.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // Default action: restore it; returning re-executes the faulting instruction, which
            // then terminates the process the usual way. A signal sent by a process (si_code <= 0)
            // would not recur, so it is raised again.
            // SAFETY: plain libc calls with valid arguments; sigaction and raise are
            // async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = mem::zeroed();
                action.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, ptr::null_mut());
                if info.is_null() || (*info).si_code <= 0 {
                    libc::raise(sig);
                }
            }
        }
    }
}
