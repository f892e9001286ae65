//! PolkaVM itself on the bench programs, as its own tools run them (feature `polkavm`): each
//! run compiles a new `Module` from the program's own PolkaVM blob (`NAME.polkavm`, aux data
//! 16 MiB), instantiates it and runs it from pc 0 to its halt with synchronous gas metering
//! under the naive cost model, serving `host_mix`. Its interpreter and its compiler (in its
//! Linux sandbox) are the yardsticks `bench` reports ratios against.

use std::path::Path;
use std::time::{Duration, Instant};

use polkavm::{
    ArcBytes, BackendKind, CostModel, CostModelKind, Engine, GasMeteringKind, InterruptKind, Module, ModuleConfig,
    ProgramBlob, ProgramCounter, ProgramParts, Reg,
};

use crate::bench_programs::{BenchProgram, HOST_MIX};

/// A PolkaVM backend `bench` can time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    Interpreter,
    Compiler,
}

impl Reference {
    pub const ALL: [Reference; 2] = [Reference::Interpreter, Reference::Compiler];

    pub fn name(self) -> &'static str {
        match self {
            Reference::Interpreter => "polkavm-interp",
            Reference::Compiler => "polkavm-compiler",
        }
    }

    pub fn from_name(name: &str) -> Option<Reference> {
        Reference::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One timed run.
pub struct Timing {
    /// `Module::from_blob` (PolkaVM's compile step).
    pub compile: Duration,
    /// Instantiating, setting registers, running to the halt and serving host calls.
    pub run: Duration,
    pub checksum: u64,
    pub instructions: u64,
    pub host_calls: u64,
}

/// An engine for one PolkaVM backend, reused across runs.
pub struct Runner {
    engine: Engine,
    blob: Option<(String, ProgramBlob)>,
}

impl Runner {
    pub fn new(reference: Reference) -> Result<Runner, String> {
        let mut config = polkavm::Config::new();
        config.set_backend(Some(match reference {
            Reference::Interpreter => BackendKind::Interpreter,
            Reference::Compiler => BackendKind::Compiler,
        }));
        let engine = Engine::new(&config).map_err(|e| format!("{}: {e}", reference.name()))?;
        Ok(Runner { engine, blob: None })
    }

    /// Compiles `blob` once (as a run does) and returns how long it took.
    pub fn compile(&self, blob: &ProgramBlob) -> Result<Duration, String> {
        let started = Instant::now();
        Module::from_blob(&self.engine, &module_config(), blob.clone()).map_err(|e| format!("polkavm: {e}"))?;
        Ok(started.elapsed())
    }

    /// Compiles, instantiates and runs `bench` once from its PolkaVM blob in `dir`.
    pub fn run(&mut self, dir: &Path, bench: &BenchProgram) -> Result<Timing, String> {
        if self.blob.as_ref().is_none_or(|(name, _)| *name != bench.name) {
            let path = dir.join(format!("{}.polkavm", bench.name));
            let bytes = crate::input::read_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let blob = ProgramBlob::parse(ArcBytes::from(bytes)).map_err(|e| format!("{}: {e}", path.display()))?;
            self.blob = Some((bench.name.clone(), blob));
        }
        let blob = self.blob.as_ref().expect("just parsed").1.clone();
        let started = Instant::now();
        let module = Module::from_blob(&self.engine, &module_config(), blob).map_err(|e| format!("polkavm: {e}"))?;
        let compile = started.elapsed();
        let started = Instant::now();
        let mut instance = module.instantiate().map_err(|e| format!("polkavm: {e}"))?;
        let gas = 1i64 << 40;
        instance.set_gas(gas);
        for (i, &value) in bench.initial_regs.iter().enumerate() {
            instance.set_reg(Reg::from_raw(i as u32).expect("13 registers"), value);
        }
        instance.set_next_program_counter(ProgramCounter(bench.entry_pc));
        let mut host_calls = 0;
        loop {
            match instance.run().map_err(|e| format!("polkavm: {e}"))? {
                InterruptKind::Finished => break,
                InterruptKind::Ecalli(HOST_MIX) => {
                    host_calls += 1;
                    let mixed =
                        instance.reg(Reg::A0).wrapping_mul(6364136223846793005).wrapping_add(instance.reg(Reg::A1));
                    instance.set_reg(Reg::A0, mixed);
                }
                other => return Err(format!("polkavm: {} stopped with {other:?}", bench.name)),
            }
        }
        let run = started.elapsed();
        Ok(Timing {
            compile,
            run,
            checksum: instance.reg(Reg::from_raw(bench.checksum_register as u32).expect("13 registers")),
            instructions: (gas - instance.gas()) as u64,
            host_calls,
        })
    }
}

/// How every run configures its module: 16 MiB of aux data, synchronous gas metering under the
/// naive cost model.
fn module_config() -> ModuleConfig {
    let mut config = ModuleConfig::new();
    config.set_aux_data_size(1 << 24);
    config.set_gas_metering(Some(GasMeteringKind::Sync));
    config.set_cost_model(Some(CostModelKind::Simple(CostModel::naive_ref())));
    config
}

/// A PolkaVM blob holding `code` (a code blob, profile B) in place of the code of the bench
/// program `template` in `dir` (whose memory sizes, imports and exports it keeps).
pub fn blob_with_code(dir: &Path, template: &str, code: &[u8]) -> Result<ProgramBlob, String> {
    let path = dir.join(format!("{template}.polkavm"));
    let bytes = crate::input::read_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut parts = ProgramParts::from_bytes(ArcBytes::from(bytes)).map_err(|e| format!("{}: {e}", path.display()))?;
    parts.code_and_jump_table = ArcBytes::from(code.to_vec());
    ProgramBlob::from_parts(parts).map_err(|e| format!("polkavm: large program: {e}"))
}
