//! The instruction table: the single definition of every opcode.
//!
//! Each row gives an instruction's mnemonic, operand format, its opcode number in each
//! opcode profile (`-` when the profile lacks it) and whether it ends a basic block in the
//! Gray Paper / PolkaVM terminator set. The decoder, the interpreter, the disassembler, the
//! assembler and every later consumer derive what they need from this one table.

use std::fmt;

pub use crate::semantics::{BinaryOp, Cond, UnaryOp};

/// Opcode-numbering profile (PVMSPEC-1 §0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Gray Paper <= 0.7.2 numbering, used by the w3f v0.4 vectors.
    A,
    /// Gray Paper 0.8.0 numbering (PolkaVM `JamV1`), used by the spectool vectors.
    B,
    /// javm: profile A plus `unlikely` (2) and `ecall` (3).
    J,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::A, Profile::B, Profile::J];

    /// Short lower-case name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::A => "a",
            Profile::B => "b",
            Profile::J => "j",
        }
    }

    /// Parses `a`, `b` or `j` (case-insensitive).
    pub fn parse(s: &str) -> Option<Profile> {
        match s.to_ascii_lowercase().as_str() {
            "a" => Some(Profile::A),
            "b" => Some(Profile::B),
            "j" => Some(Profile::J),
            _ => None,
        }
    }

    fn column(self) -> usize {
        self as usize
    }

    /// The instruction an opcode byte denotes in this profile, if any.
    #[inline]
    pub fn op(self, byte: u8) -> Option<Op> {
        OPCODE_TABLES[self.column()][byte as usize]
    }

    /// Whether `op` ends a basic block in this profile (PVMSPEC-1 §3.1). javm (profile J)
    /// additionally ends blocks at `unlikely`, `ecalli` and `ecall`.
    #[inline]
    pub fn is_terminator(self, op: Op) -> bool {
        terminates(self.column(), op, TABLE[op as usize].ends_block)
    }

    /// Everything program preparation needs to know of an opcode byte in this profile, in
    /// one lookup.
    #[inline(always)]
    pub fn row(self, byte: u8) -> &'static OpcodeRow {
        &OPCODE_ROWS[self.column()][byte as usize]
    }

    /// Whether a conditional static branch needs *both* successors to be valid jump targets
    /// (PolkaVM's rule, used for profile B), instead of only the taken target when the
    /// branch is actually taken (the Gray Paper rule, used for profiles A and J).
    #[inline]
    pub fn strict_branch_targets(self) -> bool {
        self == Profile::B
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::A => "A",
            Profile::B => "B",
            Profile::J => "J",
        })
    }
}

/// Operand layout of an instruction (PVMSPEC-1 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// No operands.
    NoArgs,
    /// One immediate `X`.
    OneImm,
    /// Register `rA` and an 8-byte immediate `X`.
    RegExtImm,
    /// Two immediates `X`, `Y`.
    TwoImm,
    /// One pc-relative offset.
    OneOffset,
    /// Register `rA` and immediate `X`.
    RegImm,
    /// Register `rA` and immediates `X`, `Y`.
    RegTwoImm,
    /// Register `rA`, immediate `X` and an offset.
    RegImmOffset,
    /// Destination `rD` and source `rA`.
    TwoReg,
    /// Registers `rA`, `rB` and immediate `X`.
    TwoRegImm,
    /// Registers `rA`, `rB` and an offset.
    TwoRegOffset,
    /// Registers `rA`, `rB` and immediates `X`, `Y`.
    TwoRegTwoImm,
    /// Sources `rA`, `rB` and destination `rD`.
    ThreeReg,
}

impl Format {
    pub const ALL: [Format; 13] = [
        Format::NoArgs,
        Format::OneImm,
        Format::RegExtImm,
        Format::TwoImm,
        Format::OneOffset,
        Format::RegImm,
        Format::RegTwoImm,
        Format::RegImmOffset,
        Format::TwoReg,
        Format::TwoRegImm,
        Format::TwoRegOffset,
        Format::TwoRegTwoImm,
        Format::ThreeReg,
    ];

    /// Whether the format carries a static jump target.
    pub fn has_offset(self) -> bool {
        matches!(self, Format::OneOffset | Format::RegImmOffset | Format::TwoRegOffset)
    }
}

macro_rules! opcode_number {
    (-) => {
        None
    };
    ($n:literal) => {
        Some($n)
    };
}

macro_rules! kind {
    ((load $width:tt $sign:ident $addr:ident)) => {
        Kind::Load { width: width!($width), signed: sign!($sign), addr: addr!($addr) }
    };
    ((store $width:tt $value:ident $addr:ident)) => {
        Kind::Store { width: width!($width), value: source!($value), addr: addr!($addr) }
    };
    ((branch $cond:ident $rhs:ident)) => {
        Kind::Branch { cond: Cond::$cond, rhs: source!($rhs) }
    };
    ((unary $op:ident)) => {
        Kind::Unary(UnaryOp::$op)
    };
    ((binary $op:ident $operands:ident)) => {
        Kind::Binary { op: BinaryOp::$op, operands: operands!($operands) }
    };
    ($simple:ident) => {
        Kind::$simple
    };
}

macro_rules! width {
    (1) => {
        Width::B1
    };
    (2) => {
        Width::B2
    };
    (4) => {
        Width::B4
    };
    (8) => {
        Width::B8
    };
}

macro_rules! sign {
    (u) => {
        false
    };
    (s) => {
        true
    };
}

macro_rules! addr {
    (abs) => {
        Addr::Absolute
    };
    (ind_a) => {
        Addr::IndirectA
    };
    (ind_b) => {
        Addr::IndirectB
    };
}

macro_rules! source {
    (imm) => {
        Source::Imm
    };
    (reg) => {
        Source::Reg
    };
}

macro_rules! operands {
    (rr) => {
        Operands::Regs
    };
    (ri) => {
        Operands::RegImm
    };
    (ir) => {
        Operands::ImmReg
    };
}

/// What an instruction does: its semantic class, in a form every consumer matches on
/// exhaustively (the interpreter's handlers, the JIT's code selection and slow path, the
/// generator). Operands come from the format: `rA`, `rB`, `rD`, immediates `X`, `Y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `trap`, and anything that decodes as one: panics.
    Trap,
    /// `fallthrough`, `unlikely`: nothing.
    Nop,
    /// `ecall` (javm): exits to the kernel, continuing after it.
    Ecall,
    /// `ecalli X`: a host call, continuing after it.
    HostCall,
    /// `sbrk`: not supported, panics.
    Sbrk,
    /// `rA ← X`.
    LoadImm,
    /// `rA ← memory at addr`, `width` bytes, sign-extended when `signed`.
    Load { width: Width, signed: bool, addr: Addr },
    /// `memory at addr ← value` (`Y` or `rA`), its low `width` bytes.
    Store { width: Width, value: Source, addr: Addr },
    /// Static jump to the offset.
    Jump,
    /// `rA ← X`, then a static jump.
    LoadImmJump,
    /// Dynamic jump to `rA + X`.
    JumpInd,
    /// Dynamic jump to `rB + Y`, with `rA ← X` (the address read first).
    LoadImmJumpInd,
    /// Branch to the offset when `rA cond rhs` (`rhs` is `X` or `rB`).
    Branch { cond: Cond, rhs: Source },
    /// `rD ← op(rA)`.
    Unary(UnaryOp),
    /// A two-operand ALU operation (see [`Operands`] for which registers it reads and writes).
    Binary { op: BinaryOp, operands: Operands },
}

/// The width of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    B1,
    B2,
    B4,
    B8,
}

impl Width {
    pub const fn bytes(self) -> u32 {
        match self {
            Width::B1 => 1,
            Width::B2 => 2,
            Width::B4 => 4,
            Width::B8 => 8,
        }
    }
}

/// Where a load or store accesses memory (mod 2^32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// At `X`.
    Absolute,
    /// At `rA + X` (`store_imm_ind_*`).
    IndirectA,
    /// At `rB + X` (`load_ind_*`, `store_ind_*`).
    IndirectB,
}

/// An operand that is an immediate or a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// `X` for a branch, `Y` for a store.
    Imm,
    /// `rB` for a branch, `rA` for a store.
    Reg,
}

/// Which registers a [`Kind::Binary`] instruction reads and writes: `op(lhs, rhs)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operands {
    /// `rD ← op(rA, rB)` (three-register format).
    Regs,
    /// `rA ← op(rB, X)`.
    RegImm,
    /// `rA ← op(X, rB)` (the `_alt` forms, `neg_add_imm`, `set_gt_*_imm`, `cmov_*_imm`).
    ImmReg,
}

impl Kind {
    /// Whether the instruction loads or stores.
    pub const fn accesses_memory(self) -> bool {
        matches!(self, Kind::Load { .. } | Kind::Store { .. })
    }
}

macro_rules! isa_table {
    ($( $variant:ident $mnemonic:literal $format:ident [$a:tt $b:tt $j:tt] $term:literal $kind:tt; )*) => {
        /// Every instruction of every profile.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Op { $($variant,)* }

        /// One row of the instruction table.
        #[derive(Clone, Copy, Debug)]
        pub struct OpInfo {
            pub op: Op,
            pub mnemonic: &'static str,
            pub format: Format,
            /// Opcode number in profiles A, B and J.
            pub numbers: [Option<u8>; 3],
            /// Member of the Gray Paper / PolkaVM terminator set.
            pub ends_block: bool,
            /// What the instruction does.
            pub kind: Kind,
        }

        /// The instruction table.
        pub const TABLE: &[OpInfo] = &[
            $(OpInfo {
                op: Op::$variant,
                mnemonic: $mnemonic,
                format: Format::$format,
                numbers: [opcode_number!($a), opcode_number!($b), opcode_number!($j)],
                ends_block: $term,
                kind: kind!($kind),
            },)*
        ];
    };
}

isa_table! {
    // variant            mnemonic               format        [ A   B   J ]  terminator kind
    Trap                 "trap"                 NoArgs        [  0   0   0 ] true Trap;
    Fallthrough          "fallthrough"          NoArgs        [  1   1   1 ] true Nop;
    Unlikely             "unlikely"             NoArgs        [  -   2   2 ] false Nop;
    Ecall                "ecall"                NoArgs        [  -   -   3 ] false Ecall;
    Ecalli               "ecalli"               OneImm        [ 10  10  10 ] false HostCall;
    LoadImm64            "load_imm_64"          RegExtImm     [ 20  20  20 ] false LoadImm;
    StoreImmU8           "store_imm_u8"         TwoImm        [ 30  30  30 ] false (store 1 imm abs);
    StoreImmU16          "store_imm_u16"        TwoImm        [ 31  31  31 ] false (store 2 imm abs);
    StoreImmU32          "store_imm_u32"        TwoImm        [ 32  32  32 ] false (store 4 imm abs);
    StoreImmU64          "store_imm_u64"        TwoImm        [ 33  33  33 ] false (store 8 imm abs);
    Jump                 "jump"                 OneOffset     [ 40  40  40 ] true Jump;
    JumpInd              "jump_ind"             RegImm        [ 50  50  50 ] true JumpInd;
    LoadImm              "load_imm"             RegImm        [ 51  51  51 ] false LoadImm;
    LoadU8               "load_u8"              RegImm        [ 52  52  52 ] false (load 1 u abs);
    LoadI8               "load_i8"              RegImm        [ 53  53  53 ] false (load 1 s abs);
    LoadU16              "load_u16"             RegImm        [ 54  54  54 ] false (load 2 u abs);
    LoadI16              "load_i16"             RegImm        [ 55  55  55 ] false (load 2 s abs);
    LoadU32              "load_u32"             RegImm        [ 56  56  56 ] false (load 4 u abs);
    LoadI32              "load_i32"             RegImm        [ 57  57  57 ] false (load 4 s abs);
    LoadU64              "load_u64"             RegImm        [ 58  58  58 ] false (load 8 u abs);
    StoreU8              "store_u8"             RegImm        [ 59  59  59 ] false (store 1 reg abs);
    StoreU16             "store_u16"            RegImm        [ 60  60  60 ] false (store 2 reg abs);
    StoreU32             "store_u32"            RegImm        [ 61  61  61 ] false (store 4 reg abs);
    StoreU64             "store_u64"            RegImm        [ 62  62  62 ] false (store 8 reg abs);
    StoreImmIndU8        "store_imm_ind_u8"     RegTwoImm     [ 70  70  70 ] false (store 1 imm ind_a);
    StoreImmIndU16       "store_imm_ind_u16"    RegTwoImm     [ 71  71  71 ] false (store 2 imm ind_a);
    StoreImmIndU32       "store_imm_ind_u32"    RegTwoImm     [ 72  72  72 ] false (store 4 imm ind_a);
    StoreImmIndU64       "store_imm_ind_u64"    RegTwoImm     [ 73  73  73 ] false (store 8 imm ind_a);
    LoadImmJump          "load_imm_jump"        RegImmOffset  [ 80  80  80 ] true LoadImmJump;
    BranchEqImm          "branch_eq_imm"        RegImmOffset  [ 81  81  81 ] true (branch Eq imm);
    BranchNeImm          "branch_ne_imm"        RegImmOffset  [ 82  82  82 ] true (branch Ne imm);
    BranchLtUImm         "branch_lt_u_imm"      RegImmOffset  [ 83  83  83 ] true (branch LtU imm);
    BranchLeUImm         "branch_le_u_imm"      RegImmOffset  [ 84  84  84 ] true (branch LeU imm);
    BranchGeUImm         "branch_ge_u_imm"      RegImmOffset  [ 85  85  85 ] true (branch GeU imm);
    BranchGtUImm         "branch_gt_u_imm"      RegImmOffset  [ 86  86  86 ] true (branch GtU imm);
    BranchLtSImm         "branch_lt_s_imm"      RegImmOffset  [ 87  87  87 ] true (branch LtS imm);
    BranchLeSImm         "branch_le_s_imm"      RegImmOffset  [ 88  88  88 ] true (branch LeS imm);
    BranchGeSImm         "branch_ge_s_imm"      RegImmOffset  [ 89  89  89 ] true (branch GeS imm);
    BranchGtSImm         "branch_gt_s_imm"      RegImmOffset  [ 90  90  90 ] true (branch GtS imm);
    MoveReg              "move_reg"             TwoReg        [100 100 100 ] false (unary Move);
    Sbrk                 "sbrk"                 TwoReg        [101   - 101 ] false Sbrk;
    CountSetBits64       "count_set_bits_64"    TwoReg        [102 101 102 ] false (unary CountSetBits64);
    CountSetBits32       "count_set_bits_32"    TwoReg        [103 102 103 ] false (unary CountSetBits32);
    LeadingZeroBits64    "leading_zero_bits_64" TwoReg        [104 103 104 ] false (unary LeadingZeroBits64);
    LeadingZeroBits32    "leading_zero_bits_32" TwoReg        [105 104 105 ] false (unary LeadingZeroBits32);
    TrailingZeroBits64   "trailing_zero_bits_64" TwoReg       [106 105 106 ] false (unary TrailingZeroBits64);
    TrailingZeroBits32   "trailing_zero_bits_32" TwoReg       [107 106 107 ] false (unary TrailingZeroBits32);
    SignExtend8          "sign_extend_8"        TwoReg        [108 107 108 ] false (unary SignExtend8);
    SignExtend16         "sign_extend_16"       TwoReg        [109 108 109 ] false (unary SignExtend16);
    ZeroExtend16         "zero_extend_16"       TwoReg        [110 109 110 ] false (unary ZeroExtend16);
    ReverseBytes         "reverse_bytes"        TwoReg        [111 110 111 ] false (unary ReverseBytes);
    StoreIndU8           "store_ind_u8"         TwoRegImm     [120 120 120 ] false (store 1 reg ind_b);
    StoreIndU16          "store_ind_u16"        TwoRegImm     [121 121 121 ] false (store 2 reg ind_b);
    StoreIndU32          "store_ind_u32"        TwoRegImm     [122 122 122 ] false (store 4 reg ind_b);
    StoreIndU64          "store_ind_u64"        TwoRegImm     [123 123 123 ] false (store 8 reg ind_b);
    LoadIndU8            "load_ind_u8"          TwoRegImm     [124 124 124 ] false (load 1 u ind_b);
    LoadIndI8            "load_ind_i8"          TwoRegImm     [125 125 125 ] false (load 1 s ind_b);
    LoadIndU16           "load_ind_u16"         TwoRegImm     [126 126 126 ] false (load 2 u ind_b);
    LoadIndI16           "load_ind_i16"         TwoRegImm     [127 127 127 ] false (load 2 s ind_b);
    LoadIndU32           "load_ind_u32"         TwoRegImm     [128 128 128 ] false (load 4 u ind_b);
    LoadIndI32           "load_ind_i32"         TwoRegImm     [129 129 129 ] false (load 4 s ind_b);
    LoadIndU64           "load_ind_u64"         TwoRegImm     [130 130 130 ] false (load 8 u ind_b);
    AddImm32             "add_imm_32"           TwoRegImm     [131 131 131 ] false (binary Add32 ri);
    AndImm               "and_imm"              TwoRegImm     [132 132 132 ] false (binary And ri);
    XorImm               "xor_imm"              TwoRegImm     [133 133 133 ] false (binary Xor ri);
    OrImm                "or_imm"               TwoRegImm     [134 134 134 ] false (binary Or ri);
    MulImm32             "mul_imm_32"           TwoRegImm     [135 135 135 ] false (binary Mul32 ri);
    SetLtUImm            "set_lt_u_imm"         TwoRegImm     [136 136 136 ] false (binary SetLtU ri);
    SetLtSImm            "set_lt_s_imm"         TwoRegImm     [137 137 137 ] false (binary SetLtS ri);
    ShloLImm32           "shlo_l_imm_32"        TwoRegImm     [138 138 138 ] false (binary ShloL32 ri);
    ShloRImm32           "shlo_r_imm_32"        TwoRegImm     [139 139 139 ] false (binary ShloR32 ri);
    SharRImm32           "shar_r_imm_32"        TwoRegImm     [140 140 140 ] false (binary SharR32 ri);
    NegAddImm32          "neg_add_imm_32"       TwoRegImm     [141 141 141 ] false (binary Sub32 ir);
    SetGtUImm            "set_gt_u_imm"         TwoRegImm     [142 142 142 ] false (binary SetLtU ir);
    SetGtSImm            "set_gt_s_imm"         TwoRegImm     [143 143 143 ] false (binary SetLtS ir);
    ShloLImmAlt32        "shlo_l_imm_alt_32"    TwoRegImm     [144 144 144 ] false (binary ShloL32 ir);
    ShloRImmAlt32        "shlo_r_imm_alt_32"    TwoRegImm     [145 145 145 ] false (binary ShloR32 ir);
    SharRImmAlt32        "shar_r_imm_alt_32"    TwoRegImm     [146 146 146 ] false (binary SharR32 ir);
    CmovIzImm            "cmov_iz_imm"          TwoRegImm     [147 147 147 ] false (binary CmovIz ir);
    CmovNzImm            "cmov_nz_imm"          TwoRegImm     [148 148 148 ] false (binary CmovNz ir);
    AddImm64             "add_imm_64"           TwoRegImm     [149 149 149 ] false (binary Add64 ri);
    MulImm64             "mul_imm_64"           TwoRegImm     [150 150 150 ] false (binary Mul64 ri);
    ShloLImm64           "shlo_l_imm_64"        TwoRegImm     [151 151 151 ] false (binary ShloL64 ri);
    ShloRImm64           "shlo_r_imm_64"        TwoRegImm     [152 152 152 ] false (binary ShloR64 ri);
    SharRImm64           "shar_r_imm_64"        TwoRegImm     [153 153 153 ] false (binary SharR64 ri);
    NegAddImm64          "neg_add_imm_64"       TwoRegImm     [154 154 154 ] false (binary Sub64 ir);
    ShloLImmAlt64        "shlo_l_imm_alt_64"    TwoRegImm     [155 155 155 ] false (binary ShloL64 ir);
    ShloRImmAlt64        "shlo_r_imm_alt_64"    TwoRegImm     [156 156 156 ] false (binary ShloR64 ir);
    SharRImmAlt64        "shar_r_imm_alt_64"    TwoRegImm     [157 157 157 ] false (binary SharR64 ir);
    RotR64Imm            "rot_r_64_imm"         TwoRegImm     [158 158 158 ] false (binary RotR64 ri);
    RotR64ImmAlt         "rot_r_64_imm_alt"     TwoRegImm     [159 159 159 ] false (binary RotR64 ir);
    RotR32Imm            "rot_r_32_imm"         TwoRegImm     [160 160 160 ] false (binary RotR32 ri);
    RotR32ImmAlt         "rot_r_32_imm_alt"     TwoRegImm     [161 161 161 ] false (binary RotR32 ir);
    BranchEq             "branch_eq"            TwoRegOffset  [170 170 170 ] true (branch Eq reg);
    BranchNe             "branch_ne"            TwoRegOffset  [171 171 171 ] true (branch Ne reg);
    BranchLtU            "branch_lt_u"          TwoRegOffset  [172 172 172 ] true (branch LtU reg);
    BranchLtS            "branch_lt_s"          TwoRegOffset  [173 173 173 ] true (branch LtS reg);
    BranchGeU            "branch_ge_u"          TwoRegOffset  [174 174 174 ] true (branch GeU reg);
    BranchGeS            "branch_ge_s"          TwoRegOffset  [175 175 175 ] true (branch GeS reg);
    LoadImmJumpInd       "load_imm_jump_ind"    TwoRegTwoImm  [180 180 180 ] true LoadImmJumpInd;
    Add32                "add_32"               ThreeReg      [190 190 190 ] false (binary Add32 rr);
    Sub32                "sub_32"               ThreeReg      [191 191 191 ] false (binary Sub32 rr);
    Mul32                "mul_32"               ThreeReg      [192 192 192 ] false (binary Mul32 rr);
    DivU32               "div_u_32"             ThreeReg      [193 193 193 ] false (binary DivU32 rr);
    DivS32               "div_s_32"             ThreeReg      [194 194 194 ] false (binary DivS32 rr);
    RemU32               "rem_u_32"             ThreeReg      [195 195 195 ] false (binary RemU32 rr);
    RemS32               "rem_s_32"             ThreeReg      [196 196 196 ] false (binary RemS32 rr);
    ShloL32              "shlo_l_32"            ThreeReg      [197 197 197 ] false (binary ShloL32 rr);
    ShloR32              "shlo_r_32"            ThreeReg      [198 198 198 ] false (binary ShloR32 rr);
    SharR32              "shar_r_32"            ThreeReg      [199 199 199 ] false (binary SharR32 rr);
    Add64                "add_64"               ThreeReg      [200 200 200 ] false (binary Add64 rr);
    Sub64                "sub_64"               ThreeReg      [201 201 201 ] false (binary Sub64 rr);
    Mul64                "mul_64"               ThreeReg      [202 202 202 ] false (binary Mul64 rr);
    DivU64               "div_u_64"             ThreeReg      [203 203 203 ] false (binary DivU64 rr);
    DivS64               "div_s_64"             ThreeReg      [204 204 204 ] false (binary DivS64 rr);
    RemU64               "rem_u_64"             ThreeReg      [205 205 205 ] false (binary RemU64 rr);
    RemS64               "rem_s_64"             ThreeReg      [206 206 206 ] false (binary RemS64 rr);
    ShloL64              "shlo_l_64"            ThreeReg      [207 207 207 ] false (binary ShloL64 rr);
    ShloR64              "shlo_r_64"            ThreeReg      [208 208 208 ] false (binary ShloR64 rr);
    SharR64              "shar_r_64"            ThreeReg      [209 209 209 ] false (binary SharR64 rr);
    And                  "and"                  ThreeReg      [210 210 210 ] false (binary And rr);
    Xor                  "xor"                  ThreeReg      [211 211 211 ] false (binary Xor rr);
    Or                   "or"                   ThreeReg      [212 212 212 ] false (binary Or rr);
    MulUpperSS           "mul_upper_s_s"        ThreeReg      [213 213 213 ] false (binary MulUpperSS rr);
    MulUpperUU           "mul_upper_u_u"        ThreeReg      [214 214 214 ] false (binary MulUpperUU rr);
    MulUpperSU           "mul_upper_s_u"        ThreeReg      [215 215 215 ] false (binary MulUpperSU rr);
    SetLtU               "set_lt_u"             ThreeReg      [216 216 216 ] false (binary SetLtU rr);
    SetLtS               "set_lt_s"             ThreeReg      [217 217 217 ] false (binary SetLtS rr);
    CmovIz               "cmov_iz"              ThreeReg      [218 218 218 ] false (binary CmovIz rr);
    CmovNz               "cmov_nz"              ThreeReg      [219 219 219 ] false (binary CmovNz rr);
    RotL64               "rot_l_64"             ThreeReg      [220 220 220 ] false (binary RotL64 rr);
    RotL32               "rot_l_32"             ThreeReg      [221 221 221 ] false (binary RotL32 rr);
    RotR64               "rot_r_64"             ThreeReg      [222 222 222 ] false (binary RotR64 rr);
    RotR32               "rot_r_32"             ThreeReg      [223 223 223 ] false (binary RotR32 rr);
    AndInv               "and_inv"              ThreeReg      [224 224 224 ] false (binary AndInv rr);
    OrInv                "or_inv"               ThreeReg      [225 225 225 ] false (binary OrInv rr);
    Xnor                 "xnor"                 ThreeReg      [226 226 226 ] false (binary Xnor rr);
    Max                  "max"                  ThreeReg      [227 227 227 ] false (binary Max rr);
    MaxU                 "max_u"                ThreeReg      [228 228 228 ] false (binary MaxU rr);
    Min                  "min"                  ThreeReg      [229 229 229 ] false (binary Min rr);
    MinU                 "min_u"                ThreeReg      [230 230 230 ] false (binary MinU rr);
}

const fn build_opcode_table(column: usize) -> [Option<Op>; 256] {
    let mut table = [None; 256];
    let mut i = 0;
    while i < TABLE.len() {
        if let Some(n) = TABLE[i].numbers[column] {
            table[n as usize] = Some(TABLE[i].op);
        }
        i += 1;
    }
    table
}

static OPCODE_TABLES: [[Option<Op>; 256]; 3] = [build_opcode_table(0), build_opcode_table(1), build_opcode_table(2)];

/// [`Profile::is_terminator`] for the profile in table column `column`.
const fn terminates(column: usize, op: Op, ends_block: bool) -> bool {
    ends_block || (column == Profile::J as usize && matches!(op, Op::Unlikely | Op::Ecalli | Op::Ecall))
}

/// What an opcode byte means in one profile, derived from the table (see [`Profile::row`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpcodeRow {
    /// The instruction; `Trap` when the byte is undefined in the profile.
    pub op: Op,
    pub format: Format,
    /// Whether the byte is an opcode of the profile.
    pub defined: bool,
    /// Ends a basic block in the profile ([`Profile::is_terminator`]); false when undefined.
    pub ends_block: bool,
    /// `op` is `Trap` (explicit or undefined) or ends a block: the instruction ends a block.
    pub terminator: bool,
}

const fn build_opcode_rows(column: usize) -> [OpcodeRow; 256] {
    let undefined =
        OpcodeRow { op: Op::Trap, format: Format::NoArgs, defined: false, ends_block: false, terminator: true };
    let mut rows = [undefined; 256];
    let mut i = 0;
    while i < TABLE.len() {
        let info = &TABLE[i];
        if let Some(n) = info.numbers[column] {
            let ends_block = terminates(column, info.op, info.ends_block);
            rows[n as usize] = OpcodeRow {
                op: info.op,
                format: info.format,
                defined: true,
                ends_block,
                terminator: ends_block || matches!(info.op, Op::Trap),
            };
        }
        i += 1;
    }
    rows
}

static OPCODE_ROWS: [[OpcodeRow; 256]; 3] = [build_opcode_rows(0), build_opcode_rows(1), build_opcode_rows(2)];

impl Op {
    /// The table row of this instruction.
    #[inline]
    pub fn info(self) -> &'static OpInfo {
        &TABLE[self as usize]
    }

    /// What the instruction does.
    #[inline]
    pub fn kind(self) -> Kind {
        self.info().kind
    }

    pub fn mnemonic(self) -> &'static str {
        self.info().mnemonic
    }

    pub fn format(self) -> Format {
        self.info().format
    }

    /// Member of the Gray Paper / PolkaVM terminator set (see [`Profile::is_terminator`]
    /// for the per-profile set).
    #[inline]
    pub fn ends_block(self) -> bool {
        self.info().ends_block
    }

    /// The opcode byte of this instruction in `profile`, if the profile has it.
    pub fn number(self, profile: Profile) -> Option<u8> {
        self.info().numbers[profile.column()]
    }

    /// Looks an instruction up by mnemonic.
    pub fn from_mnemonic(name: &str) -> Option<Op> {
        TABLE.iter().find(|row| row.mnemonic == name).map(|row| row.op)
    }

    /// Every instruction, in table order.
    pub fn all() -> impl Iterator<Item = Op> {
        TABLE.iter().map(|row| row.op)
    }

    /// Whether this is a conditional static branch (`branch_*` / `branch_*_imm`).
    pub fn is_conditional_branch(self) -> bool {
        matches!(self.kind(), Kind::Branch { .. })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_rows_agree_with_the_table() {
        for profile in Profile::ALL {
            for byte in 0..=255u8 {
                let row = profile.row(byte);
                assert_eq!(row.defined, profile.op(byte).is_some(), "{profile:?} {byte}");
                assert_eq!(row.op, profile.op(byte).unwrap_or(Op::Trap), "{profile:?} {byte}");
                assert_eq!(row.format, row.op.format(), "{profile:?} {byte}");
                assert_eq!(row.ends_block, row.defined && profile.is_terminator(row.op), "{profile:?} {byte}");
                assert_eq!(row.terminator, row.ends_block || row.op == Op::Trap, "{profile:?} {byte}");
            }
        }
        // The per-profile terminator set: javm also ends blocks at ecalli, the others do not.
        let ecalli = Op::Ecalli.number(Profile::A).unwrap();
        assert!(!Profile::A.row(ecalli).ends_block);
        assert!(Profile::J.row(ecalli).ends_block);
        assert!(Profile::A.row(0).terminator && Profile::A.row(0).defined);
        assert!(Profile::B.row(3).terminator && !Profile::B.row(3).defined);
    }

    #[test]
    fn table_rows_are_in_variant_order() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.op as usize, i, "{}", row.mnemonic);
        }
    }

    #[test]
    fn the_memory_column_agrees_with_the_mnemonics() {
        for row in TABLE {
            let m = row.mnemonic;
            let loads = m.starts_with("load_") && !m.starts_with("load_imm");
            let stores = m.starts_with("store_");
            let width =
                m.rsplit(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<u8>().ok()).map(|bits| bits / 8);
            let signed = m.contains("_i8") || m.contains("_i16") || m.contains("_i32");
            let expected = match (loads, stores) {
                (true, _) => Some((true, width.unwrap(), signed)),
                (_, true) => Some((false, width.unwrap(), false)),
                _ => None,
            };
            // (loads, width in bytes, sign-extends) as the kind says.
            let access = match row.kind {
                Kind::Load { width, signed, .. } => Some((true, width.bytes() as u8, signed)),
                Kind::Store { width, .. } => Some((false, width.bytes() as u8, false)),
                _ => None,
            };
            assert_eq!(access, expected, "{m}");
            assert_eq!(row.kind.accesses_memory(), access.is_some(), "{m}");
        }
        assert_eq!(TABLE.iter().filter(|r| r.kind.accesses_memory()).count(), 30);
    }

    #[test]
    fn each_kind_reads_its_operands_from_its_format() {
        for row in TABLE {
            let expected: &[Format] = match row.kind {
                Kind::Trap | Kind::Nop | Kind::Ecall => &[Format::NoArgs],
                Kind::HostCall => &[Format::OneImm],
                Kind::Sbrk | Kind::Unary(_) => &[Format::TwoReg],
                Kind::LoadImm => &[Format::RegImm, Format::RegExtImm],
                Kind::Load { addr: Addr::Absolute, .. }
                | Kind::Store { value: Source::Reg, addr: Addr::Absolute, .. } => &[Format::RegImm],
                Kind::Load { addr: Addr::IndirectB, .. }
                | Kind::Store { value: Source::Reg, addr: Addr::IndirectB, .. } => &[Format::TwoRegImm],
                Kind::Store { value: Source::Imm, addr: Addr::Absolute, .. } => &[Format::TwoImm],
                Kind::Store { value: Source::Imm, addr: Addr::IndirectA, .. } => &[Format::RegTwoImm],
                Kind::Load { addr: Addr::IndirectA, .. }
                | Kind::Store { value: Source::Reg, addr: Addr::IndirectA, .. } => &[],
                Kind::Store { value: Source::Imm, addr: Addr::IndirectB, .. } => &[],
                Kind::Jump => &[Format::OneOffset],
                Kind::LoadImmJump => &[Format::RegImmOffset],
                Kind::JumpInd => &[Format::RegImm],
                Kind::LoadImmJumpInd => &[Format::TwoRegTwoImm],
                Kind::Branch { rhs: Source::Imm, .. } => &[Format::RegImmOffset],
                Kind::Branch { rhs: Source::Reg, .. } => &[Format::TwoRegOffset],
                Kind::Binary { operands: Operands::Regs, .. } => &[Format::ThreeReg],
                Kind::Binary { operands: Operands::RegImm | Operands::ImmReg, .. } => &[Format::TwoRegImm],
            };
            assert!(expected.contains(&row.format), "{}: {:?} with format {:?}", row.mnemonic, row.kind, row.format);
            assert_eq!(
                row.ends_block,
                matches!(
                    row.kind,
                    Kind::Trap
                        | Kind::Jump
                        | Kind::LoadImmJump
                        | Kind::JumpInd
                        | Kind::LoadImmJumpInd
                        | Kind::Branch { .. }
                ) || row.op == Op::Fallthrough,
                "{}",
                row.mnemonic
            );
        }
    }

    #[test]
    fn every_alu_operation_has_a_three_register_instruction() {
        for &op in BinaryOp::ALL {
            let rows =
                TABLE.iter().filter(|r| matches!(r.kind, Kind::Binary { op: o, operands: Operands::Regs } if o == op));
            assert_eq!(rows.count(), 1, "{op:?}");
        }
        for &op in UnaryOp::ALL {
            assert_eq!(TABLE.iter().filter(|r| r.kind == Kind::Unary(op)).count(), 1, "{op:?}");
        }
        for &cond in Cond::ALL {
            assert_eq!(
                TABLE.iter().filter(|r| r.kind == Kind::Branch { cond, rhs: Source::Imm }).count(),
                1,
                "{cond:?}"
            );
        }
    }

    #[test]
    fn opcode_numbers_are_unique_per_profile() {
        for p in Profile::ALL {
            let mut seen = [false; 256];
            for row in TABLE {
                if let Some(n) = row.numbers[p.column()] {
                    assert!(!seen[n as usize], "profile {p}: opcode {n} defined twice");
                    seen[n as usize] = true;
                    assert_eq!(p.op(n), Some(row.op));
                }
            }
        }
    }

    #[test]
    fn mnemonics_are_unique() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert_ne!(a.mnemonic, b.mnemonic);
            }
        }
    }

    #[test]
    fn profile_differences_match_the_spec() {
        // Profile A: 2 and 3 undefined, 101 sbrk, 102..=111 the two-register group.
        assert_eq!(Profile::A.op(2), None);
        assert_eq!(Profile::A.op(3), None);
        assert_eq!(Profile::A.op(101), Some(Op::Sbrk));
        assert_eq!(Profile::A.op(102), Some(Op::CountSetBits64));
        assert_eq!(Profile::A.op(111), Some(Op::ReverseBytes));
        // Profile B: 2 unlikely, 3 and 111 undefined, group renumbered down by one.
        assert_eq!(Profile::B.op(2), Some(Op::Unlikely));
        assert_eq!(Profile::B.op(3), None);
        assert_eq!(Profile::B.op(101), Some(Op::CountSetBits64));
        assert_eq!(Profile::B.op(110), Some(Op::ReverseBytes));
        assert_eq!(Profile::B.op(111), None);
        // Profile J: A plus unlikely and ecall.
        assert_eq!(Profile::J.op(2), Some(Op::Unlikely));
        assert_eq!(Profile::J.op(3), Some(Op::Ecall));
        assert_eq!(Profile::J.op(101), Some(Op::Sbrk));
        // Everything outside the defined ranges is undefined everywhere.
        for p in Profile::ALL {
            for n in [4u8, 9, 11, 19, 21, 29, 34, 39, 41, 49, 63, 69, 74, 79, 91, 99, 112, 119] {
                assert_eq!(p.op(n), None, "profile {p} opcode {n}");
            }
            for n in 162..=169u8 {
                assert_eq!(p.op(n), None);
            }
            for n in 231..=255u8 {
                assert_eq!(p.op(n), None);
            }
        }
    }

    #[test]
    fn terminator_sets() {
        let gp: Vec<Op> = Op::all().filter(|op| op.ends_block()).collect();
        assert_eq!(gp.len(), 2 + 1 + 1 + 1 + 10 + 6 + 1);
        for p in [Profile::A, Profile::B] {
            assert!(!p.is_terminator(Op::Ecalli));
            assert!(!p.is_terminator(Op::Unlikely));
        }
        assert!(Profile::J.is_terminator(Op::Ecalli));
        assert!(Profile::J.is_terminator(Op::Ecall));
        assert!(Profile::J.is_terminator(Op::Unlikely));
    }
}
