//! The differential runner: two interpreters agree; a deliberately broken backend is reported
//! at the first ecall whose observation differs, with the differing field.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use common::*;
use javm_cap::{CNodeCap, CacheDirectory, InstanceCap, MemoryMapping, SlotIdx};
use javm_engine::memory::MemoryError;
use javm_engine::{Backend, Exit, Interpreter, Op, Program};
use javm_kernel::differential::{differential, Leg, Scenario};
use javm_kernel::observe::Point;
use javm_kernel::{default_config, CallResult, InMemoryAssist, KernelAssist, DEFAULT_MAX_DEPTH};

/// A parent that mints data, calls a child that yields, and halts after the resume; every
/// frame does some arithmetic and memory traffic between ecalls.
fn scenario() -> Scenario {
    let mut cache = CacheDirectory::new();
    let mut assist = InMemoryAssist::new();
    assist.storage_quota_set(0, 1 << 20);
    let catcher = assist.yield_catcher_new();
    let marker = [0x3C; 32];
    assist.yield_catcher_add(catcher, marker);

    let child = publish_instance(
        &mut cache,
        image_asm(
            "load_imm r3, 7\nadd_imm_64 r3, r3, 5\nstore_u64 r3, 0x100\n\
             load_imm r7, 5\necalli 16\n\
             add_imm_64 r3, r3, 1\nload_imm r7, 5\nload_imm r8, 0\necalli 1\necalli 0",
        ),
        4,
        &[(5, marker)],
        [0x44; 32],
        4096,
    );
    let mut parent_img = image_asm(
        "load_imm r1, 0x616263\nstore_u32 r1, 0x20\n\
         load_imm r7, 0x20\nload_imm r8, 3\nload_imm r9, 0\nload_imm r10, 6\necalli 23\n\
         add_imm_64 r2, r2, 9\n\
         load_imm r7, 9\nload_imm r8, 0\necalli 26\n\
         add_imm_64 r2, r2, 1\nload_imm r7, 6\nload_imm r8, 0x40\nload_imm r9, 3\necalli 22\n\
         ecalli 0",
    );
    parent_img.yield_marker_slot = Some(SlotIdx(4));
    parent_img.mappings = vec![MemoryMapping { start: 0, size: 4096, source_path: vec![] }];
    let ih = cache.put(parent_img.into()).unwrap();
    let mut cn = CNodeCap::empty(4).unwrap();
    cn.set(SlotIdx(4), Some(hash(catcher))).unwrap();
    cn.set(SlotIdx(9), Some(hash(child))).unwrap();
    let ch = cache.put(cn.into()).unwrap();
    let mut inst = InstanceCap::new([0x55; 32], ih, hash(ch));
    inst.mem_size = 4096;
    let parent = cache.put(inst.into()).unwrap();
    Scenario {
        cache,
        assist,
        config: default_config(),
        max_depth: DEFAULT_MAX_DEPTH,
        legs: vec![
            Leg::Invoke { instance: parent, endpoint: 0, args: [0; 4], gas: 10_000 },
            Leg::Resume { scratchpad: Some(hash([0x66; 32])), extra_gas: 0 },
        ],
    }
}

#[test]
fn two_interpreters_agree() {
    let s = scenario();
    let (a, b, d) = differential(&s, &interp, &interp, 1);
    assert_eq!(d, None);
    assert!(a.violations.is_empty() && b.violations.is_empty(), "{:?}", a.violations);
    assert!(matches!(a.legs[0].result, Ok(CallResult::Paused { .. })), "{:?}", a.legs);
    assert!(matches!(a.legs[1].result, Ok(CallResult::Halt { .. })), "{:?}", a.legs);
    assert_eq!(a.records.iter().filter(|r| r.kobs.point == Point::P2).count(), 2);
    assert_eq!(a.records.iter().filter(|r| r.kobs.point == Point::P1).count(), 7);
    let halt = a.vm.last_leg.as_ref().unwrap();
    assert_eq!(halt.regs[7], 3, "READ_DATA_CAP read 3 bytes");
}

#[test]
fn sampling_memory_still_agrees() {
    let s = scenario();
    let (a, _, d) = differential(&s, &interp, &interp, 3);
    assert_eq!(d, None);
    let zero = a.records.iter().filter(|r| r.kobs.live.mem == [0; 32]).count();
    assert!(zero > 0, "some Continue records are unsampled");
}

/// Forwards everything to an interpreter, but after its `at`-th ecall exit (counted across every
/// backend of the run) flips a bit of φ[reg].
struct Corrupting {
    inner: Interpreter,
    seen: Rc<Cell<u32>>,
    at: u32,
    reg: usize,
}

/// Forwards everything to an interpreter, but loads programs with the first `add_imm_64`
/// turned into `or_imm`.
struct SwappedOp {
    inner: Interpreter,
}

macro_rules! forward {
    () => {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn load_invalid(&mut self) {
            self.inner.load_invalid()
        }
        fn regs(&self) -> [u64; 13] {
            self.inner.regs()
        }
        fn set_reg(&mut self, reg: usize, value: u64) {
            self.inner.set_reg(reg, value)
        }
        fn pc(&self) -> u32 {
            self.inner.pc()
        }
        fn set_pc(&mut self, pc: u32) {
            self.inner.set_pc(pc)
        }
        fn resume_pc(&self) -> u32 {
            self.inner.resume_pc()
        }
        fn gas(&self) -> i64 {
            self.inner.gas()
        }
        fn set_gas(&mut self, gas: i64) {
            self.inner.set_gas(gas)
        }
        fn map(&mut self, address: u32, length: u64, writable: bool) -> Result<(), MemoryError> {
            self.inner.map(address, length, writable)
        }
        fn write_memory(&mut self, address: u32, bytes: &[u8]) -> Result<(), MemoryError> {
            self.inner.write_memory(address, bytes)
        }
        fn read_memory(&self, address: u32, length: u64) -> Result<Vec<u8>, MemoryError> {
            self.inner.read_memory(address, length)
        }
        fn memory_pages(&self) -> Vec<(u32, bool, Vec<u8>)> {
            self.inner.memory_pages()
        }
        fn step(&mut self) -> Option<Exit> {
            self.inner.step()
        }
    };
}

impl Backend for Corrupting {
    forward!();
    fn load(&mut self, program: Arc<Program>) {
        self.inner.load(program)
    }
    fn run(&mut self) -> Exit {
        let exit = self.inner.run();
        if matches!(exit, Exit::HostCall(_) | Exit::Ecall) {
            self.seen.set(self.seen.get() + 1);
            if self.seen.get() == self.at {
                let v = self.inner.regs()[self.reg];
                self.inner.set_reg(self.reg, v ^ 1);
            }
        }
        exit
    }
}

impl Backend for SwappedOp {
    forward!();
    fn load(&mut self, program: Arc<Program>) {
        let p = Program::with_edited_list(program.blob.clone(), program.config.clone(), |insts| {
            if let Some(i) = insts.iter_mut().find(|i| i.op == Op::AddImm64) {
                i.op = Op::OrImm;
            }
        });
        self.inner.load(Arc::new(p))
    }
    fn run(&mut self) -> Exit {
        self.inner.run()
    }
}

#[test]
fn a_corrupted_register_is_reported_at_its_ecall() {
    let s = scenario();
    for (at, reg) in [(1, 2), (2, 3), (4, 2), (6, 0)] {
        let seen = Rc::new(Cell::new(0));
        let broken =
            || -> Box<dyn Backend> { Box::new(Corrupting { inner: Interpreter::new(), seen: seen.clone(), at, reg }) };
        let (_, _, d) = differential(&s, &interp, &broken, 1);
        let d = d.unwrap_or_else(|| panic!("corruption at ecall {at} was not noticed"));
        let e = d.ecall.as_ref().expect("found at an ecall");
        assert_eq!(e.index, u64::from(at - 1), "{d}");
        assert_eq!(d.point, Some(Point::P1));
        let field = format!("live.regs[{reg}]");
        assert!(d.fields.iter().any(|f| f.field == field), "expected {field} in {d}");
    }
}

#[test]
fn a_swapped_instruction_is_reported_at_the_first_ecall_after_it() {
    let s = scenario();
    let broken = || -> Box<dyn Backend> { Box::new(SwappedOp { inner: Interpreter::new() }) };
    let (_, _, d) = differential(&s, &interp, &broken, 1);
    let d = d.expect("the swapped op is noticed");
    // The parent's first add_imm_64 (r2 += 9, r2 = 0) gives the same value under or_imm; the
    // child's (r3 = 7 + 5 vs 7 | 5) does not, and shows at the child's yield: ecall #2.
    let e = d.ecall.as_ref().unwrap();
    assert_eq!(e.index, 2, "{d}");
    assert_eq!(e.op, 16);
    assert!(d.fields.iter().any(|f| f.field == "live.regs[3]"), "{d}");
    assert!(d.fields.iter().any(|f| f.field == "live.mem"), "the stored value differs too: {d}");
    let text = d.to_string();
    assert!(text.contains("HOST_YIELD") && text.contains("live.regs[3]"), "{text}");
}
