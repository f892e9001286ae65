//! Arbitrary bytes and arbitrary initial states never panic or hang the parser, the decoder
//! or the interpreter. Bounded: a fixed number of seeded cases, each ending by gas.

use std::sync::Arc;

use javm_engine::backend::{Backend, Exit};
use javm_engine::blob::Blob;
use javm_engine::{Config, GasModel, Interpreter, Profile, Program};

/// xorshift64*: small, seeded, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// Register values biased towards edge cases.
    fn value(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 63,
            3 => 0xFFFF_0000,
            4 => self.below(0x40000),
            5 => 0x2_0000 + self.below(0x3000),
            6 => 0xFFFF_FFFF - self.below(16),
            _ => self.next(),
        }
    }
}

const CASES: u64 = 20_000;

#[test]
fn random_bytes_as_blobs_never_panic() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut parsed = 0;
    for _ in 0..CASES * 5 {
        let bytes = match rng.below(3) {
            0 => {
                let len = rng.below(64) as usize;
                rng.bytes(len)
            }
            _ => {
                // A well-formed blob, then maybe one corruption.
                let mut bytes = random_program(&mut rng).encode();
                let at = rng.below(bytes.len() as u64) as usize;
                match rng.below(4) {
                    0 => bytes.truncate(at),
                    1 => bytes[at] = rng.next() as u8,
                    2 => bytes.push(rng.next() as u8),
                    _ => {}
                }
                bytes
            }
        };
        if let Ok(blob) = Blob::parse(&bytes) {
            parsed += 1;
            assert_eq!(Blob::parse(&blob.encode()).as_ref(), Ok(&blob), "re-encoding changed the blob");
            for profile in Profile::ALL {
                let _ = Program::new(blob.clone(), Config::new(profile, GasModel::BlockUnit));
            }
        }
    }
    assert!(parsed > CASES, "too few random blobs parsed ({parsed}) for the test to mean much");
}

fn random_program(rng: &mut Rng) -> Blob {
    let len = 1 + rng.below(80) as usize;
    let code = rng.bytes(len);
    let starts: Vec<bool> = (0..len).map(|i| i == 0 || rng.below(3) == 0).collect();
    let table = (0..rng.below(6)).map(|_| rng.below(len as u64 + 4) as u32).collect();
    Blob::new(table, code, starts)
}

#[test]
fn random_programs_and_states_never_panic_or_hang() {
    let mut rng = Rng(0xDEAD_BEEF_0BAD_F00D);
    let mut interp = Interpreter::new();
    let mut exits = std::collections::HashMap::new();
    for case in 0..CASES {
        let blob = random_program(&mut rng);
        let profile = Profile::ALL[(case % 3) as usize];
        let gas = match rng.below(3) {
            0 => GasModel::BlockUnit,
            1 => GasModel::Instruction,
            _ => GasModel::table((0..4).map(|_| (rng.below(90) as u32, 1 + rng.below(20)))),
        };
        let program = Arc::new(Program::new(blob, Config::new(profile, gas)));
        interp.load(program);
        for _ in 0..rng.below(4) {
            let page = if rng.below(2) == 0 { 0x10 + rng.below(0x40) } else { rng.below(1 << 20) };
            let pages = 1 + rng.below(3);
            let _ = interp.map((page << 12) as u32, pages << 12, rng.below(2) == 0);
        }
        for r in 0..13 {
            interp.set_reg(r, rng.value());
        }
        interp.set_pc(if rng.below(8) == 0 { rng.next() as u32 } else { 0 });
        interp.set_gas(rng.below(2000) as i64 - 10);
        // Resume up to a few times, as a host would after each resumable exit.
        for _ in 0..8 {
            let exit = interp.run();
            *exits.entry(exit.status()).or_insert(0) += 1;
            match exit {
                Exit::PageFault(address) => {
                    let _ = interp.map(address, 4096, true);
                }
                Exit::OutOfGas => interp.set_gas(100),
                Exit::HostCall(_) | Exit::Ecall => {}
                _ => break,
            }
        }
    }
    // The generator must reach the interesting exits, or the test proves little.
    for status in ["panic", "halt", "out-of-gas", "page-fault", "ecalli"] {
        assert!(exits.get(status).copied().unwrap_or(0) > 0, "no {status} exit in {exits:?}");
    }
}

#[test]
fn single_steps_agree_with_a_full_run() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let blob = random_program(&mut rng);
        let program = Arc::new(Program::new(blob, Config::new(Profile::A, GasModel::BlockUnit)));
        let mut full = Interpreter::new();
        let mut stepped = Interpreter::new();
        for vm in [&mut full, &mut stepped] {
            vm.load(program.clone());
            vm.map(0x20000, 8192, true).unwrap();
            vm.set_gas(500);
        }
        for r in 0..13 {
            let v = rng.value();
            full.set_reg(r, v);
            stepped.set_reg(r, v);
        }
        let exit = full.run();
        let mut steps = 0;
        let step_exit = loop {
            if let Some(e) = stepped.step() {
                break e;
            }
            steps += 1;
            assert!(steps < 10_000, "single-stepping did not end");
        };
        assert_eq!(exit, step_exit);
        assert_eq!(full.pc(), stepped.pc());
        assert_eq!(full.gas(), stepped.gas());
        assert_eq!(full.regs(), stepped.regs());
        assert_eq!(full.memory_pages(), stepped.memory_pages());
    }
}
