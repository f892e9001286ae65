//! The JIT's fault handler must only act on guest accesses of compiled code: every other
//! SIGSEGV reaches the handler installed before it (or kills the process as usual). These
//! tests install their own handler first, so they live in their own test binary, in one test.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod jit_common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use javm_engine::isa::{Op, Profile};
use javm_engine::jit::Jit;
use javm_engine::{Backend, Exit, GasModel, Interpreter};

use jit_common::*;

static TRAP_PAGE: AtomicUsize = AtomicUsize::new(0);
static FOREIGN_FAULTS: AtomicUsize = AtomicUsize::new(0);

/// A handler standing for whatever the embedding process installed before the JIT: it repairs
/// faults on its own page and counts them.
extern "C" fn foreign_handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: called by the kernel with a valid siginfo; mprotect is async-signal-safe.
    unsafe {
        let address = (*info).si_addr() as usize;
        let page = TRAP_PAGE.load(Ordering::SeqCst);
        if page != 0 && address >= page && address < page + 4096 {
            libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_READ | libc::PROT_WRITE);
            FOREIGN_FAULTS.fetch_add(1, Ordering::SeqCst);
        } else {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        }
    }
}

fn install_foreign_handler() {
    // SAFETY: a valid sigaction with a three-argument handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = foreign_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGSEGV, &action, ptr::null_mut()), 0);
    }
}

fn protected_page() -> *mut u8 {
    // SAFETY: a fresh anonymous inaccessible page.
    let page =
        unsafe { libc::mmap(ptr::null_mut(), 4096, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    assert_ne!(page, libc::MAP_FAILED);
    page.cast()
}

/// Stores to 0x20000 (unmapped): a page fault the JIT handles.
fn faulting_program(profile: Profile) -> std::sync::Arc<javm_engine::Program> {
    let mut asm = Asm::new(profile);
    asm.two_imm(Op::StoreImmU32, 0x2_0010, 0x1234);
    asm.ecalli(1);
    asm.two_reg_imm(Op::LoadIndU64, 1, 2, 0);
    asm.no_args(Op::Trap);
    asm.program(GasModel::BlockUnit)
}

#[test]
fn fault_handler_acts_only_on_guest_accesses() {
    install_foreign_handler();
    let mut jit = Jit::new().expect("jit");

    // A guest fault is handled by the JIT.
    let program = faulting_program(Profile::A);
    jit.load(program.clone());
    jit.set_gas(100);
    assert_eq!(jit.run(), Exit::PageFault(0x2_0000));

    // A host fault outside JIT code reaches the earlier handler.
    let page = protected_page();
    TRAP_PAGE.store(page as usize, Ordering::SeqCst);
    // SAFETY: the page is ours; the read faults once and the foreign handler makes it readable.
    let value = unsafe { ptr::read_volatile(page) };
    assert_eq!(value, 0);
    assert_eq!(FOREIGN_FAULTS.load(Ordering::SeqCst), 1);

    // Interleaved runs of two JITs on one thread, each faulting and resuming.
    let mut other = Jit::new().expect("jit");
    let mut interp = Interpreter::new();
    let mut interp_other = Interpreter::new();
    let mut a = Pair::new(&mut interp, &mut jit, &program);
    a.each(|b| {
        b.set_gas(100);
        b.set_reg(2, 0x3_0FFC);
    });
    let mut b = Pair::new(&mut interp_other, &mut other, &program);
    b.each(|x| {
        x.set_gas(100);
        x.set_reg(2, 0xFFFF_FFFC);
    });
    let run = |p: &mut Pair<'_>| {
        let (x, y) = (p.interp.run(), p.jit.run());
        p.compare(Some(x), Some(y)).unwrap();
        x
    };
    assert_eq!(run(&mut a), Exit::PageFault(0x2_0000));
    assert_eq!(run(&mut b), Exit::PageFault(0x2_0000));
    a.map(0x2_0000, 4096, true);
    assert_eq!(run(&mut a), Exit::HostCall(1));
    b.map(0x2_0000, 4096, true);
    assert_eq!(run(&mut b), Exit::HostCall(1));
    assert_eq!(run(&mut a), Exit::PageFault(0x3_0000));
    assert_eq!(run(&mut b), Exit::PageFault(0xFFFF_F000));
    a.map(0x3_0000, 4096, false);
    b.map(0xFFFF_F000, 4096, false);
    assert_eq!(run(&mut a), Exit::PageFault(0x3_1000));
    assert_eq!(run(&mut b), Exit::Panic);
    a.map(0x3_1000, 4096, false);
    assert_eq!(run(&mut a), Exit::Trap);

    // Many threads faulting at once, while this thread's handler chain stays intact.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut jit = Jit::new().expect("jit");
                let mut interp = Interpreter::new();
                let program = faulting_program(Profile::B);
                for k in 0..200u64 {
                    let mut pair = Pair::new(&mut interp, &mut jit, &program);
                    pair.each(|b| {
                        b.set_gas(100);
                        b.set_reg(2, (k * 4093 + t) & 0xFFFF_FFFF);
                    });
                    pair.run(Policy { max_runs: 6, map_on_fault: true, ..Policy::default() }).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }

    // Still chained afterwards.
    let page = protected_page();
    TRAP_PAGE.store(page as usize, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { ptr::write_volatile(page, 7) };
    assert_eq!(FOREIGN_FAULTS.load(Ordering::SeqCst), 2);
}

/// Runs `child` of this test binary in a new process and returns how it ended.
fn run_child(mode: &str) -> std::process::Output {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "crash_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("JIT_CRASH_MODE", mode)
        .output()
        .expect("spawn child")
}

#[test]
fn foreign_segfaults_still_kill_the_process() {
    for mode in ["default", "rust"] {
        let output = run_child(mode);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("guest fault handled"), "mode {mode}: {stdout}");
        assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "mode {mode}: {:?}", output.status);
    }
}

/// Child process body for `foreign_segfaults_still_kill_the_process`: creates a JIT, runs a
/// faulting guest program, then dereferences an inaccessible host page. It must die of SIGSEGV.
#[test]
#[ignore = "run as a child process by foreign_segfaults_still_kill_the_process"]
fn crash_child() {
    let Ok(mode) = std::env::var("JIT_CRASH_MODE") else { return };
    if mode == "default" {
        // SAFETY: resetting a signal disposition.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
    }
    let mut jit = Jit::new().expect("jit");
    jit.load(faulting_program(Profile::A));
    jit.set_gas(100);
    assert_eq!(jit.run(), Exit::PageFault(0x2_0000));
    println!("guest fault handled");
    let page = protected_page();
    // SAFETY: deliberately faults; the process is expected to die here.
    unsafe { ptr::read_volatile(page) };
    std::process::exit(0);
}
