//! A program prepared for execution: decoded instructions, basic blocks, valid jump targets
//! (ϖ), the resolved jump table and per-block gas costs. Both backends run from this.

use crate::blob::{Blob, BlobError};
use crate::decode::{Code, Decoded};
use crate::gas::GasModel;
use std::sync::OnceLock;

use crate::isa::{Op, OpcodeRow, Profile};

/// Marks "no instruction" in index fields.
pub const NONE: u32 = u32::MAX;

/// An instruction prepared for execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inst {
    /// The instruction (`Trap` for anything that decodes as a trap).
    pub op: Op,
    pub ra: u8,
    pub rb: u8,
    pub rd: u8,
    /// Ends a basic block in the active profile (after it, the next block is charged).
    pub terminator: bool,
    /// This instruction's pc.
    pub pc: u32,
    /// `pc + 1 + skip`.
    pub next_pc: u32,
    /// Index of the instruction at `next_pc`.
    pub next: u32,
    /// Static jump target pc (formats with an offset).
    pub target_pc: u32,
    /// Index of the static target when it is a valid jump target (`NONE` otherwise). Under
    /// the strict branch rule a conditional branch whose fall-through is invalid also has
    /// `NONE` here, so it always panics.
    pub target: u32,
    pub x: u64,
    pub y: u64,
    /// Gas charged when a block is entered at this instruction.
    pub cost: u64,
    /// Whether this pc is a valid jump target (in ϖ).
    pub jump_target: bool,
}

impl Inst {
    /// An instruction as decoded at `pc`, before its fall-through and target are resolved.
    #[inline]
    pub(crate) fn from_decoded(pc: u32, d: &Decoded, terminator: bool, jump_target: bool) -> Inst {
        Inst {
            op: d.op,
            ra: d.ra,
            rb: d.rb,
            rd: d.rd,
            terminator,
            pc,
            next_pc: d.next_pc(pc),
            next: NONE,
            target_pc: d.target,
            target: NONE,
            x: d.x,
            y: d.y,
            cost: 0,
            jump_target,
        }
    }
}

/// Options that shape how a blob is prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub profile: Profile,
    pub gas: GasModel,
}

impl Config {
    pub fn new(profile: Profile, gas: GasModel) -> Self {
        Config { profile, gas }
    }
}

/// A program prepared for execution: its blob and configuration, and the instruction list
/// both backends' translations start from, decoded and resolved the first time it is asked
/// for. The JIT compiles straight from the blob and never needs the list.
#[derive(Debug)]
pub struct Program {
    pub blob: Blob,
    pub config: Config,
    list: OnceLock<List>,
}

/// The decoded and resolved instructions of a program.
#[derive(Debug)]
struct List {
    /// Instructions in pc order: every instruction start plus a `Trap` at every fall-through
    /// pc that is not an instruction start (inside a long gap, or the end of code).
    insts: Vec<Inst>,
    /// `pc → index` for pcs `0..=code.len()`; `NONE` where no instruction is recorded.
    index: Vec<u32>,
    /// Jump-table entries resolved to instruction indices (`NONE` when not a valid target).
    jump_targets: Vec<u32>,
    /// Resolution of every entry when the table is stored with entry size 0 (all zeros).
    zero_entry_target: u32,
}

impl Program {
    /// Parses a blob for execution.
    pub fn from_bytes(bytes: &[u8], config: Config) -> Result<Program, BlobError> {
        Ok(Program::new(Blob::parse(bytes)?, config))
    }

    /// A parsed blob for execution. Never fails: anything undecodable is a trap. A blob
    /// built in code with fewer start flags than code bytes has no starts where flags are
    /// missing (and flags past the code are dropped), so every pass over it sees one flag
    /// per byte.
    pub fn new(mut blob: Blob, config: Config) -> Program {
        blob.starts.resize(blob.code.len());
        Program { blob, config, list: OnceLock::new() }
    }

    /// A program whose instruction list is changed by `edit` once prepared: for tests that
    /// build deliberately wrong backends on the interpreter. (The JIT compiles from a list
    /// that is already built, so it would run the change too.)
    pub fn with_edited_list(blob: Blob, config: Config, edit: impl FnOnce(&mut [Inst])) -> Program {
        let program = Program::new(blob, config);
        let mut list = List::new(&program.blob, &program.config);
        edit(&mut list.insts);
        Program { list: OnceLock::from(list), ..program }
    }

    fn list(&self) -> &List {
        self.list.get_or_init(|| List::new(&self.blob, &self.config))
    }

    /// The instructions in pc order (see [`Inst`]), decoded on first use.
    pub fn insts(&self) -> &[Inst] {
        &self.list().insts
    }

    pub fn profile(&self) -> Profile {
        self.config.profile
    }

    pub fn code_len(&self) -> u32 {
        self.blob.code.len() as u32
    }

    /// Index of the instruction recorded at `pc`, if any.
    #[inline]
    pub fn index_of(&self, pc: u32) -> Option<u32> {
        self.list().index.get(pc as usize).copied().filter(|&i| i != NONE)
    }

    /// Whether `pc` is a valid jump target (in ϖ).
    pub fn is_jump_target(&self, pc: u32) -> bool {
        self.index_of(pc).is_some_and(|i| self.insts()[i as usize].jump_target)
    }

    /// Resolves a dynamic jump to address `a` (already reduced mod 2^32) (PVMSPEC-1 §6).
    #[inline]
    pub fn dynamic_target(&self, a: u32) -> DynamicJump {
        if a == HALT_ADDRESS {
            return DynamicJump::Halt;
        }
        if a == 0 || a % 2 == 1 || (a / 2) as u64 > self.blob.jump_table_len as u64 {
            return DynamicJump::Invalid;
        }
        let entry = (a / 2 - 1) as usize;
        let list = self.list();
        let target = if self.blob.entry_size == 0 { list.zero_entry_target } else { list.jump_targets[entry] };
        if target == NONE {
            DynamicJump::Invalid
        } else {
            DynamicJump::To(target)
        }
    }

    /// The instruction at `pc` decoded on its own (a trap where no instruction starts), as
    /// the list records it, for a backend that needs one instruction's operands.
    pub fn decode_at(&self, pc: u32) -> Decoded {
        Code::new(&self.blob.code, &self.blob.starts).decode(pc, self.config.profile)
    }

    /// Gas charged when execution starts at a pc with no instruction (a trap there): the
    /// enclosing block's table cost, else one unit (the trap's).
    pub fn stray_cost(&self, pc: u32) -> u64 {
        entry_cost(&self.config.gas, pc)
    }
}

impl List {
    /// Decodes and resolves the instructions of `blob` under `config`.
    fn new(blob: &Blob, config: &Config) -> List {
        let profile = config.profile;
        let n = blob.code.len();
        let code = Code::new(&blob.code, &blob.starts);

        // One pass in pc order over the instruction starts: decode each, and record a `Trap`
        // at every fall-through pc that is not one (inside a gap longer than the largest
        // skip, or the end of code). Such a pc lies before the next start, so recording it
        // right after the instruction that falls there keeps the list in pc order, and every
        // instruction start falls through to the next instruction in the list. Only the
        // start just before a start can fall through to it, so whether a start follows a
        // terminator (and is a valid jump target, ϖ) is known when the pass reaches it. A
        // block ends at its terminator, so under unit block costs the cost of entering at
        // each of its instructions is known there.
        let index = vec![NONE; n + 1];
        let insts: Vec<Inst> = Vec::with_capacity(n / 2 + 2);
        // Instructions with a static target, and traps in gaps (whose fall-through may be any
        // pc): resolved once every instruction is recorded. The trap at the end of code falls
        // through past it, to no instruction, as recorded.
        let mut builder = ListBuilder {
            index,
            insts,
            with_target: Vec::with_capacity(n / 16 + 4),
            gap_traps: Vec::new(),
            block_start: 0,
        };
        if config.gas == GasModel::BlockUnit {
            walk::<true, _>(&code, profile, &config.gas, &mut builder);
        } else {
            walk::<false, _>(&code, profile, &config.gas, &mut builder);
        }
        let ListBuilder { index, mut insts, with_target, gap_traps, .. } = builder;

        let resolve = |insts: &[Inst], pc: u32| match index.get(pc as usize) {
            Some(&i) if i != NONE && insts[i as usize].jump_target => i,
            _ => NONE,
        };
        for &i in &gap_traps {
            let inst = &insts[i as usize];
            insts[i as usize].next = index.get(inst.next_pc as usize).copied().unwrap_or(NONE);
        }
        // Under the strict branch rule a conditional branch whose fall-through (the next
        // instruction in the list) is not a valid jump target has no valid target.
        let strict = profile.strict_branch_targets();
        for &i in &with_target {
            let inst = &insts[i as usize];
            let target = resolve(&insts, inst.target_pc);
            let allowed = target_allowed(strict, inst.op, target != NONE, insts[i as usize + 1].jump_target);
            insts[i as usize].target = if allowed { target } else { NONE };
        }

        let jump_targets = blob.jump_table.iter().map(|&t| resolve(&insts, t)).collect();
        let zero_entry_target = resolve(&insts, 0);
        List { insts, index, jump_targets, zero_entry_target }
    }
}

/// What a pass over a program's instructions ([`walk`]) does with each one: record it in
/// the list ([`List::new`]), or compile it (the JIT).
pub(crate) trait Visit {
    /// The next instruction start in pc order, before it is decoded. Instructions are
    /// numbered in the order visited, and every start falls through to the next one visited.
    /// `unit`: the pass charges unit block costs (the walk's `UNIT`); then the visit of a
    /// terminator ends its block ([`Visit::block_end`]) once it is recorded.
    fn start(&mut self, code: &Code, start: Start, unit: bool);
    /// The trap recorded at a fall-through pc that is not an instruction start, right after
    /// the instruction that falls there: inside a gap longer than the largest skip
    /// (`in_gap`), or at the end of code. Its own fall-through is not resolved.
    /// `following`: the start the pass visits next (the code length when there is none).
    fn gap_trap(&mut self, inst: Inst, in_gap: bool, following: u32);
    /// Under unit block costs: the block that began after the previous block end (or at the
    /// first instruction) ends with the last instruction visited.
    fn block_end(&mut self);
}

/// An instruction start as [`walk`] finds it, before it is decoded.
#[derive(Clone, Copy)]
pub(crate) struct Start {
    pub pc: u32,
    /// `skip(pc)`.
    pub skip: u32,
    /// Its opcode's row.
    pub row: &'static OpcodeRow,
    /// Whether it is a valid jump target (ϖ).
    pub jump_target: bool,
    /// The gas charged on entering a block there (under unit block costs, 1 until its block
    /// ends).
    pub cost: u64,
}

/// The pass over the instruction starts, with unit block costs (`UNIT`) or costs that do
/// not depend on the rest of the block: finds each start's skip, opcode row and whether it
/// is a valid jump target (ϖ), and visits it (the visitor decodes it), the traps at
/// fall-throughs that are not starts, and the block ends.
#[inline(always)]
pub(crate) fn walk<const UNIT: bool, V: Visit>(code: &Code, profile: Profile, gas: &GasModel, v: &mut V) {
    let n = code.len();
    // The starts in pc order, one bit scan each.
    let mut starts = code.starts.cursor();
    let mut pc = starts.next_start();
    // Whether the start the pass is at is where a terminator falls through to (or pc 0):
    // with a defined opcode there, a valid jump target.
    let mut follows_terminator = pc == 0;
    // Whether the start visited last falls through to the next start (after the last one:
    // to the end of code, where the walk then visits the trap).
    let mut last_falls_through = false;
    while pc < n {
        // The next start bounds this instruction's skip (§2) and is where the pass goes
        // next.
        let following = starts.next_start();
        let skip = (following - pc - 1).min(crate::decode::MAX_SKIP as usize) as u32;
        let row = profile.row(code.bytes[pc]);
        let next_pc = pc as u32 + 1 + skip;
        let jump_target = row.defined && follows_terminator;
        let cost = if UNIT { 1 } else { entry_cost(gas, pc as u32) };
        // Under unit block costs a terminator's visit ends its block itself (where the
        // compiler knows the opcode, ending a block is a constant).
        v.start(code, Start { pc: pc as u32, skip, row, jump_target, cost }, UNIT);
        // The fall-through is the next start unless the gap before it is longer than the
        // largest skip. (It is never past the next start, which is the code length when
        // there is none: so the end of code is only ever fallen to by the last start.)
        let fall = next_pc as usize;
        let falls_to_next = fall == following;
        follows_terminator = row.ends_block && falls_to_next;
        if !falls_to_next {
            debug_assert!(fall < n, "a gap before the next start lies inside the code");
            visit_trap::<UNIT, V>(v, code, profile, gas, next_pc, true, following as u32);
        }
        last_falls_through = falls_to_next;
        pc = following;
    }
    if last_falls_through {
        // The last start falls through to the end of code: the trap there.
        visit_trap::<UNIT, V>(v, code, profile, gas, n as u32, false, n as u32);
    }
}

/// [`walk`]'s visit of the trap at `pc`, a fall-through that is not a start, and under unit
/// block costs of the end of its block (a trap ends one).
#[inline(always)]
fn visit_trap<const UNIT: bool, V: Visit>(
    v: &mut V,
    code: &Code,
    profile: Profile,
    gas: &GasModel,
    pc: u32,
    in_gap: bool,
    following: u32,
) {
    v.gap_trap(gap_trap(code, profile, gas, pc), in_gap, following);
    if UNIT {
        v.block_end();
    }
}

/// The list's side of [`walk`].
struct ListBuilder {
    index: Vec<u32>,
    insts: Vec<Inst>,
    /// Instructions with a static target, and traps in gaps (whose fall-through may be any
    /// pc): resolved once every instruction is recorded. The trap at the end of code falls
    /// through past it, to no instruction, as recorded.
    with_target: Vec<u32>,
    gap_traps: Vec<u32>,
    block_start: usize,
}

impl Visit for ListBuilder {
    /// Records the instruction decoded; its `next` is the next one visited, its `target` is
    /// resolved once every instruction is recorded.
    #[inline(always)]
    fn start(&mut self, code: &Code, start: Start, unit: bool) {
        let Start { pc, skip, row, jump_target, cost } = start;
        let d = code.decode_start(pc, skip, row);
        let mut inst = Inst::from_decoded(pc, &d, row.terminator, jump_target);
        inst.cost = cost;
        let i = self.insts.len();
        self.index[pc as usize] = i as u32;
        inst.next = i as u32 + 1;
        if row.format.has_offset() {
            self.with_target.push(i as u32);
        }
        self.insts.push(inst);
        if unit && row.terminator {
            self.block_end();
        }
    }

    #[inline(always)]
    fn gap_trap(&mut self, inst: Inst, in_gap: bool, _following: u32) {
        if in_gap {
            self.gap_traps.push(self.insts.len() as u32);
        }
        self.index[inst.pc as usize] = self.insts.len() as u32;
        self.insts.push(inst);
    }

    #[inline(always)]
    fn block_end(&mut self) {
        charge_block(&mut self.insts[self.block_start..]);
        self.block_start = self.insts.len();
    }
}

/// The trap at a fall-through pc that is not an instruction start (rare: out of the loop
/// that decodes the starts, so that loop stays small).
#[cold]
#[inline(never)]
fn gap_trap(code: &Code, profile: Profile, gas: &GasModel, pc: u32) -> Inst {
    let trap = code.decode(pc, profile);
    let mut inst = Inst::from_decoded(pc, &trap, true, false);
    inst.cost = entry_cost(gas, pc);
    inst
}

/// Whether a static branch or jump may go to its target: the target must be a valid jump
/// target, and under the strict rule ([`Profile::strict_branch_targets`]) a conditional
/// branch also needs its fall-through to be one.
#[inline]
pub(crate) fn target_allowed(strict: bool, op: Op, target_valid: bool, fall_through_valid: bool) -> bool {
    target_valid && !(strict && op.is_conditional_branch() && !fall_through_valid)
}

/// Whether `pc` is a valid jump target (in ϖ), worked out from the code around it alone,
/// for a target [`walk`] has not reached yet: a start holding a defined opcode, at pc 0 or
/// where the start before it ends a block and falls through to it (the gap between them is
/// within the largest skip). The walk's own rule, read backwards;
/// `tests::the_local_jump_target_rule_agrees_with_the_walk` checks the two agree.
pub(crate) fn is_jump_target_at(code: &Code, profile: Profile, pc: u32) -> bool {
    let p = pc as usize;
    // A flag missing from the list (a blob built with fewer flags than bytes) is no start.
    if p >= code.len() || !code.starts.is_set(p) || !profile.row(code.bytes[p]).defined {
        return false;
    }
    if p == 0 {
        return true;
    }
    match code.starts.last_before(p, crate::decode::MAX_SKIP as usize + 1) {
        Some(previous) => profile.row(code.bytes[previous]).ends_block,
        None => false,
    }
}

/// [`is_jump_target_at`] for the pc a block's last instruction (at the start just before
/// it) falls through to: a valid jump target exactly when it is a start holding a defined
/// opcode, since the fall-through is at most the largest skip away and nothing between them
/// is a start.
#[inline]
pub(crate) fn is_jump_target_after_block(code: &Code, profile: Profile, pc: u32) -> bool {
    let p = pc as usize;
    let valid = p < code.len() && code.starts.is_set(p) && profile.row(code.bytes[p]).defined;
    debug_assert_eq!(valid, is_jump_target_at(code, profile, pc));
    valid
}

/// The gas charged on entering at `pc` a block of one instruction, or a block whose cost
/// does not depend on its length: its table cost, else one unit. Under unit block costs a
/// longer block's costs are set when it ends, by [`charge_block`].
#[inline]
pub(crate) fn entry_cost(gas: &GasModel, pc: u32) -> u64 {
    match gas {
        GasModel::BlockTable(table) => GasModel::table_cost(table, pc),
        GasModel::BlockUnit => 1,
        GasModel::Instruction => 1,
    }
}

/// Unit block costs of a block that ends with its last instruction: entering at an
/// instruction costs one unit per instruction from there to the end.
#[inline]
fn charge_block(block: &mut [Inst]) {
    let len = block.len() as u64;
    for (k, inst) in block.iter_mut().enumerate() {
        inst.cost = len - k as u64;
    }
}

/// The dynamic-jump address that halts the machine.
pub const HALT_ADDRESS: u32 = 0xFFFF_0000;

/// Where a dynamic jump goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicJump {
    Halt,
    Invalid,
    /// Index of the target instruction.
    To(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(code: &[u8], starts: &[usize], table: Vec<u32>, profile: Profile) -> Program {
        let starts: Vec<bool> = (0..code.len()).map(|i| starts.contains(&i)).collect();
        Program::new(Blob::new(table, code.to_vec(), starts), Config::new(profile, GasModel::BlockUnit))
    }

    #[test]
    fn worked_example_blocks_and_targets() {
        // load_imm r7,2; add_imm_64 r7,r7,-100; jump_ind r7,100; trap; load_imm_64 r8,..
        let code = [
            0x33, 0x07, 0x02, 0x95, 0x77, 0x9c, 0x32, 0x07, 0x64, 0x00, 0x14, 0x08, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0,
        ];
        let p = program(&code, &[0, 3, 6, 9, 10], vec![10], Profile::A);
        assert!(p.is_jump_target(0));
        assert!(!p.is_jump_target(3)); // follows load_imm
        assert!(p.is_jump_target(9)); // follows jump_ind
        assert!(p.is_jump_target(10)); // follows trap
        assert!(!p.is_jump_target(20)); // end of code
        assert_eq!(p.dynamic_target(2), DynamicJump::To(p.index_of(10).unwrap()));
        assert_eq!(p.dynamic_target(4), DynamicJump::Invalid);
        assert_eq!(p.dynamic_target(3), DynamicJump::Invalid);
        assert_eq!(p.dynamic_target(0), DynamicJump::Invalid);
        assert_eq!(p.dynamic_target(HALT_ADDRESS), DynamicJump::Halt);
        // The implicit trap at the end of code is recorded.
        let end = p.index_of(20).unwrap();
        assert_eq!(p.insts()[end as usize].op, Op::Trap);
        // Block costs: the first block has 3 instructions, the one at 10 has 2 (with the
        // implicit trap).
        assert_eq!(p.insts()[0].cost, 3);
        assert_eq!(p.insts()[p.index_of(10).unwrap() as usize].cost, 2);
        // Every resolved static target agrees with is_jump_target.
        for inst in p.insts() {
            if inst.target != NONE {
                assert!(p.is_jump_target(inst.target_pc));
            }
        }
    }

    /// `rounds` pieces of random code shorter than `max_len` (xorshift from `seed`), with
    /// instruction starts dense (gaps within the largest skip) and sparse (longer gaps) in
    /// turn.
    fn random_code(seed: u64, rounds: usize, max_len: u64) -> impl Iterator<Item = (Vec<u8>, Vec<bool>)> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..rounds).map(move |round| {
            let len = (next() % max_len) as usize;
            let density = [2, 3, 30][round % 3];
            let code: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let starts: Vec<bool> = (0..len).map(|_| next() % density == 0).collect();
            (code, starts)
        })
    }

    #[test]
    fn the_local_jump_target_rule_agrees_with_the_walk() {
        // In every profile the rule read backwards from one pc gives the walk's ϖ.
        let mut targets = 0;
        for (code, starts) in random_code(0x9E37_79B9_7F4A_7C15, 600, 90) {
            let len = code.len();
            for profile in Profile::ALL {
                let blob = Blob::new(vec![], code.clone(), starts.clone());
                let local = Code::new(&blob.code, &blob.starts);
                let p = Program::new(blob.clone(), Config::new(profile, GasModel::BlockUnit));
                for pc in 0..len as u32 + 3 {
                    assert_eq!(
                        is_jump_target_at(&local, profile, pc),
                        p.is_jump_target(pc),
                        "{profile:?} pc {pc} of {code:?} starts {starts:?}"
                    );
                    targets += usize::from(p.is_jump_target(pc));
                }
            }
        }
        assert!(targets > 1000, "only {targets} jump targets: the check saw too few");
        // At the edge of the largest skip: `trap` at 0 falls through to a start at most 25
        // bytes on.
        for d in 1..40usize {
            let mut code = vec![0u8; d + 1];
            code[d] = 1; // fallthrough
            let starts: Vec<bool> = (0..=d).map(|i| i == 0 || i == d).collect();
            let blob = Blob::new(vec![], code, starts);
            let local = Code::new(&blob.code, &blob.starts);
            let p = Program::new(blob.clone(), Config::new(Profile::A, GasModel::BlockUnit));
            assert_eq!(p.is_jump_target(d as u32), d <= 25, "start {d} bytes after a trap");
            assert_eq!(is_jump_target_at(&local, Profile::A, d as u32), d <= 25, "start {d} bytes after a trap");
        }
    }

    #[test]
    fn a_gap_longer_than_the_largest_skip_holds_a_trap_at_the_fall_through() {
        // add_imm_64 r7, r7, -100 followed by 30 bytes without a start, then a trap: the
        // skip is capped at 24, so the fall-through pc 0 + 1 + 24 = 25 is recorded as a trap.
        let mut code = vec![0x95, 0x77, 0x9c];
        code.extend([0u8; 30]);
        code.push(0);
        let p = program(&code, &[0, 33], vec![], Profile::A);
        let first = &p.insts()[0];
        assert_eq!(first.next_pc, 25);
        let trap = p.index_of(25).expect("a trap at the capped fall-through");
        assert_eq!(p.insts()[trap as usize].op, Op::Trap);
        assert_eq!(first.next, trap);
        assert!(p.index_of(33).is_some());
        assert_eq!(p.insts().len(), 4, "the two starts, the trap in the gap and the one at the end");
    }

    #[test]
    fn strict_rule_rejects_branches_without_a_valid_fall_through() {
        // branch_eq_imm r0, 0, -> 0 as the last instruction: the fall-through is the end.
        let code = [81, 0x00, 0x00];
        let a = program(&code, &[0], vec![], Profile::A);
        let b = program(&code, &[0], vec![], Profile::B);
        assert_eq!(a.insts()[0].target, 0);
        assert_eq!(b.insts()[0].target, NONE);
    }
}
