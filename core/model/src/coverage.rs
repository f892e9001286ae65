//! The rules of PVMSPEC-1 a program can exercise, counted by the model as it applies them, so
//! a run can say which rules its programs reached and which they never did.

macro_rules! rules {
    ($( $id:ident $name:literal $section:literal $construct:literal; )*) => {
        /// One rule of the spec.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Rule { $($id,)* }

        /// Every rule: `(rule, name, spec section, the generator construct that exercises it)`.
        pub const RULES: &[(Rule, &str, &str, &str)] = &[ $( (Rule::$id, $name, $section, $construct), )* ];
    };
}

rules! {
    BlobInvalid "blob.invalid" "§1.2" "damaged blob forms (trailing bytes, padding bit, entry size > 4, truncation)";
    BlobZeroEntrySizeTable "blob.z0-with-entries" "§1.2, §6" "tables written with 0-byte entries, dynamic jumps into them";
    BlobWideEntries "blob.entries-4-bytes" "§1.2" "wide jump-table entries; table entries above 2^24";
    FormatNoArgs "decode.no-args" "§4" "table-drawn instructions";
    FormatOneImm "decode.one-imm" "§4" "ecalli";
    FormatRegExtImm "decode.reg-ext-imm" "§4" "load_imm_64";
    FormatTwoImms "decode.two-imms" "§4" "store_imm_*";
    FormatOneOffset "decode.one-offset" "§4" "jump";
    FormatRegImm "decode.reg-imm" "§4" "loads, stores, load_imm, jump_ind";
    FormatRegTwoImms "decode.reg-two-imms" "§4" "store_imm_ind_*";
    FormatRegImmOffset "decode.reg-imm-offset" "§4" "branch_*_imm, load_imm_jump";
    FormatTwoRegs "decode.two-regs" "§4" "move_reg, bit counts, extensions";
    FormatTwoRegsImm "decode.two-regs-imm" "§4" "ALU with immediate, indirect loads and stores";
    FormatTwoRegsOffset "decode.two-regs-offset" "§4" "branch_*";
    FormatTwoRegsTwoImms "decode.two-regs-two-imms" "§4" "load_imm_jump_ind";
    FormatThreeRegs "decode.three-regs" "§4" "three-register ALU";
    ImmLen0 "imm.length-0" "§4" "immediate lengths drawn 0..=4";
    ImmLen1 "imm.length-1" "§4" "immediate lengths drawn 0..=4";
    ImmLen2 "imm.length-2" "§4" "immediate lengths drawn 0..=4";
    ImmLen3 "imm.length-3" "§4, §11 item 7" "immediate lengths drawn 0..=4";
    ImmLen4 "imm.length-4" "§4" "immediate lengths drawn 0..=4";
    ImmLenNibbleCapped "imm.length-nibble-above-4" "§4" "raw mode: length nibbles 5..=7";
    ImmShortSkip "imm.second-shortened-by-skip" "§4, §11 item 8" "shorter encodings than the operand wants";
    OperandPastCode "decode.operand-past-end" "§2, §11 item 9" "an instruction cut by the end of code";
    RegNibbleLow13 "reg.low-nibble-13-15" "§4, §11 item 10" "register nibbles 13..=15";
    RegNibbleHigh13 "reg.high-nibble-13-15" "§4, §11 item 10" "register nibbles 13..=15";
    RegThirdByte13 "reg.third-byte-13-15" "§4" "three-register destination byte 13..=15";
    RegThirdByte16 "reg.third-byte-16-or-more" "§4 note (GP vs PolkaVM)" "three-register destination byte ≥ 16";
    SkipCapped "skip.capped-at-24" "§2" "instructions padded past the skip cap";
    SkipExtraBytes "skip.bytes-ignored" "§2" "padding inside the skip";
    TrapUndefined "trap.undefined-opcode" "§2, §5.15" "blocks starting with an undefined opcode; raw mode";
    TrapNotStart "trap.not-an-instruction-start" "§2" "fall-through into padding; start pcs inside instructions";
    TrapEndOfCode "trap.end-of-code" "§2, §11 item 16" "the last block falling through";
    TrapExplicit "trap.explicit" "§5.1" "trap drawn as a terminator";
    JumpValid "jump.static-valid" "§3.2" "branches to block starts";
    JumpInvalidOutside "jump.static-target-outside-code" "§3.3" "raw mode: offsets past either end";
    JumpInvalidMid "jump.static-target-mid-instruction" "§3.3" "raw mode";
    JumpInvalidNotAfterTerm "jump.static-target-after-non-terminator" "§3.2" "raw mode; start pcs";
    JumpInvalidUndefined "jump.static-target-undefined-opcode" "§3.2" "branches to blocks that start with an undefined opcode";
    BranchNotTakenInvalid "branch.not-taken-invalid-target" "§3.3 (GP)" "profiles A/J: invalid targets, condition false";
    BranchStrictFallthrough "branch.strict-invalid-fall-through" "§3.3 (PolkaVM)" "profile B: branch last in code or before an undefined opcode";
    BranchStrictTarget "branch.strict-invalid-target-not-taken" "§3.3 (PolkaVM)" "profile B: invalid target, condition false";
    LoadImmJumpPanics "load-imm-jump.write-kept-on-panic" "§5.8" "load_imm_jump to an invalid target";
    DjumpHalt "djump.halt" "§6 step 1" "dynamic jumps aimed at 0xFFFF0000";
    DjumpZero "djump.zero" "§6 step 2" "dynamic jumps aimed at junk";
    DjumpOdd "djump.odd" "§6 step 2" "dynamic jumps aimed at junk";
    DjumpBeyond "djump.beyond-table" "§6 step 2" "dynamic jumps aimed at junk";
    DjumpLastEntry "djump.last-entry" "§6 step 3" "dynamic jumps aimed at table entries";
    DjumpInvalidTarget "djump.entry-not-a-target" "§6 step 3" "raw table entries";
    DjumpValid "djump.valid" "§6 step 4" "dynamic jumps aimed at table entries";
    DjumpSameReg "djump.load-imm-jump-ind-same-register" "§5.12" "load_imm_jump_ind with rA = rB";
    GasBlockCharge "gas.block-charged" "§9" "every run";
    GasMidBlockStart "gas.start-inside-a-block" "§9.2 rule 3" "start pcs other than 0";
    GasOutOfGas "gas.out-of-gas" "§9" "small gas values, loops";
    GasTableNoEntry "gas.table-without-entry" "§9.2, project rule (cost ≥ 1)" "tables with missing entries";
    GasNegative "gas.instruction-model-negative" "§9.1 (GP text)" "instruction gas model running out";
    GasChargeAfterHostCall "gas.block-after-host-call-charged" "§9.2 (javm)" "profile J: ecalli";
    MemLoad "mem.load" "§7" "loads at mapped addresses";
    MemStore "mem.store" "§7" "stores at mapped addresses";
    MemLowPanic "mem.below-64k-panics" "§7" "accesses below 64 KiB";
    MemUnmapped "mem.page-fault-unmapped" "§7" "accesses to unmapped pages";
    MemReadOnly "mem.page-fault-read-only" "§7" "stores to the read-only page";
    MemStraddle "mem.straddling-second-page-bad" "§7, §11 item 24" "accesses at region edges";
    MemWrap "mem.wraps-past-2^32" "§7" "accesses at 0xFFFFFFF8..";
    MemWrapLowPanic "mem.wrap-to-low-memory-panics" "§7" "top page mapped, wrapping access";
    ExitHalt "exit.halt" "§8" "dynamic jumps to the halt address";
    ExitPanic "exit.panic" "§8" "invalid jumps, low memory";
    ExitPageFault "exit.page-fault" "§8" "unmapped / read-only accesses";
    ExitHostCall "exit.host-call" "§8" "ecalli";
    ExitEcall "exit.ecall" "§8 (javm)" "profile J: ecall";
    HostCallNegative "host-call.negative-immediate" "§5.2" "ecalli immediates with the sign bit set";
    ResumeHostCall "resume.after-host-call" "§8" "several runs per program";
    ResumePageFault "resume.after-page-fault" "§8" "several runs per program";
    ResumeOutOfGas "resume.after-out-of-gas" "§9.2 rule 5" "several runs per program";
    RunAfterEnd "run.after-halt-or-panic" "§8" "several runs per program";
    Sbrk "sbrk.panics" "§5.14 (project decision)" "sbrk in profiles A/J";
}

/// Rule counters.
#[derive(Clone, Debug)]
pub struct Coverage {
    pub counts: Vec<u64>,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage { counts: vec![0; RULES.len()] }
    }
}

impl Coverage {
    pub fn hit(&mut self, rule: Rule) {
        self.counts[rule as usize] += 1;
    }

    pub fn merge(&mut self, other: &Coverage) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn count(&self, rule: Rule) -> u64 {
        self.counts[rule as usize]
    }
}
