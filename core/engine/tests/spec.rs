//! The spec tests, one small program per rule, run on every backend of the engine (the
//! interpreter, and the JIT where it exists). Programs are written in the assembler's
//! text form, or as raw `.inst` bytes where the encoding itself is what is being tested.
//! Every expected exit, pc, gas value, register and memory byte is worked out by hand from
//! PVMSPEC-1 (section numbers in the comments), independently of the engine's semantics.

mod interp {
    type Vm = javm_engine::Interpreter;

    fn new_vm() -> Vm {
        Vm::new()
    }

    include!("spec/cases.rs");
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod jit {
    type Vm = javm_engine::jit::Jit;

    fn new_vm() -> Vm {
        Vm::new().expect("the JIT starts")
    }

    include!("spec/cases.rs");
}
