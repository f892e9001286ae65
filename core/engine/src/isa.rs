//! The instruction table: the single definition of every opcode.
//!
//! Each row gives an instruction's mnemonic, operand format, its opcode number in each
//! opcode profile (`-` when the profile lacks it) and whether it ends a basic block in the
//! Gray Paper / PolkaVM terminator set. The decoder, the interpreter, the disassembler, the
//! assembler and every later consumer derive what they need from this one table.

use std::fmt;

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
        op.ends_block() || (self == Profile::J && matches!(op, Op::Unlikely | Op::Ecalli | Op::Ecall))
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

macro_rules! memory_access {
    (-) => {
        None
    };
    ((load $width:literal $sign:ident)) => {
        Some(MemoryAccess::Load { width: $width, signed: sign!($sign) })
    };
    ((store $width:literal)) => {
        Some(MemoryAccess::Store { width: $width })
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

/// What a load or store instruction does to memory (its address and value come from its
/// format: `X` absolute, or `rA`/`rB` plus `X`; a stored value from `Y` or a register).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryAccess {
    /// Reads `width` bytes, sign-extended when `signed`.
    Load { width: u8, signed: bool },
    /// Writes the low `width` bytes.
    Store { width: u8 },
}

impl MemoryAccess {
    /// Width in bytes, and whether a load sign-extends.
    pub fn width_signed(self) -> (u32, bool) {
        match self {
            MemoryAccess::Load { width, signed } => (u32::from(width), signed),
            MemoryAccess::Store { width } => (u32::from(width), false),
        }
    }
}

macro_rules! isa_table {
    ($( $variant:ident $mnemonic:literal $format:ident [$a:tt $b:tt $j:tt] $term:literal $mem:tt; )*) => {
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
            /// The memory access of a load or store.
            pub memory: Option<MemoryAccess>,
        }

        /// The instruction table.
        pub const TABLE: &[OpInfo] = &[
            $(OpInfo {
                op: Op::$variant,
                mnemonic: $mnemonic,
                format: Format::$format,
                numbers: [opcode_number!($a), opcode_number!($b), opcode_number!($j)],
                ends_block: $term,
                memory: memory_access!($mem),
            },)*
        ];
    };
}

isa_table! {
    // variant            mnemonic               format        [ A   B   J ]  terminator memory (bytes, sign)
    Trap                 "trap"                 NoArgs        [  0   0   0 ] true -;
    Fallthrough          "fallthrough"          NoArgs        [  1   1   1 ] true -;
    Unlikely             "unlikely"             NoArgs        [  -   2   2 ] false -;
    Ecall                "ecall"                NoArgs        [  -   -   3 ] false -;
    Ecalli               "ecalli"               OneImm        [ 10  10  10 ] false -;
    LoadImm64            "load_imm_64"          RegExtImm     [ 20  20  20 ] false -;
    StoreImmU8           "store_imm_u8"         TwoImm        [ 30  30  30 ] false (store 1);
    StoreImmU16          "store_imm_u16"        TwoImm        [ 31  31  31 ] false (store 2);
    StoreImmU32          "store_imm_u32"        TwoImm        [ 32  32  32 ] false (store 4);
    StoreImmU64          "store_imm_u64"        TwoImm        [ 33  33  33 ] false (store 8);
    Jump                 "jump"                 OneOffset     [ 40  40  40 ] true -;
    JumpInd              "jump_ind"             RegImm        [ 50  50  50 ] true -;
    LoadImm              "load_imm"             RegImm        [ 51  51  51 ] false -;
    LoadU8               "load_u8"              RegImm        [ 52  52  52 ] false (load 1 u);
    LoadI8               "load_i8"              RegImm        [ 53  53  53 ] false (load 1 s);
    LoadU16              "load_u16"             RegImm        [ 54  54  54 ] false (load 2 u);
    LoadI16              "load_i16"             RegImm        [ 55  55  55 ] false (load 2 s);
    LoadU32              "load_u32"             RegImm        [ 56  56  56 ] false (load 4 u);
    LoadI32              "load_i32"             RegImm        [ 57  57  57 ] false (load 4 s);
    LoadU64              "load_u64"             RegImm        [ 58  58  58 ] false (load 8 u);
    StoreU8              "store_u8"             RegImm        [ 59  59  59 ] false (store 1);
    StoreU16             "store_u16"            RegImm        [ 60  60  60 ] false (store 2);
    StoreU32             "store_u32"            RegImm        [ 61  61  61 ] false (store 4);
    StoreU64             "store_u64"            RegImm        [ 62  62  62 ] false (store 8);
    StoreImmIndU8        "store_imm_ind_u8"     RegTwoImm     [ 70  70  70 ] false (store 1);
    StoreImmIndU16       "store_imm_ind_u16"    RegTwoImm     [ 71  71  71 ] false (store 2);
    StoreImmIndU32       "store_imm_ind_u32"    RegTwoImm     [ 72  72  72 ] false (store 4);
    StoreImmIndU64       "store_imm_ind_u64"    RegTwoImm     [ 73  73  73 ] false (store 8);
    LoadImmJump          "load_imm_jump"        RegImmOffset  [ 80  80  80 ] true -;
    BranchEqImm          "branch_eq_imm"        RegImmOffset  [ 81  81  81 ] true -;
    BranchNeImm          "branch_ne_imm"        RegImmOffset  [ 82  82  82 ] true -;
    BranchLtUImm         "branch_lt_u_imm"      RegImmOffset  [ 83  83  83 ] true -;
    BranchLeUImm         "branch_le_u_imm"      RegImmOffset  [ 84  84  84 ] true -;
    BranchGeUImm         "branch_ge_u_imm"      RegImmOffset  [ 85  85  85 ] true -;
    BranchGtUImm         "branch_gt_u_imm"      RegImmOffset  [ 86  86  86 ] true -;
    BranchLtSImm         "branch_lt_s_imm"      RegImmOffset  [ 87  87  87 ] true -;
    BranchLeSImm         "branch_le_s_imm"      RegImmOffset  [ 88  88  88 ] true -;
    BranchGeSImm         "branch_ge_s_imm"      RegImmOffset  [ 89  89  89 ] true -;
    BranchGtSImm         "branch_gt_s_imm"      RegImmOffset  [ 90  90  90 ] true -;
    MoveReg              "move_reg"             TwoReg        [100 100 100 ] false -;
    Sbrk                 "sbrk"                 TwoReg        [101   - 101 ] false -;
    CountSetBits64       "count_set_bits_64"    TwoReg        [102 101 102 ] false -;
    CountSetBits32       "count_set_bits_32"    TwoReg        [103 102 103 ] false -;
    LeadingZeroBits64    "leading_zero_bits_64" TwoReg        [104 103 104 ] false -;
    LeadingZeroBits32    "leading_zero_bits_32" TwoReg        [105 104 105 ] false -;
    TrailingZeroBits64   "trailing_zero_bits_64" TwoReg       [106 105 106 ] false -;
    TrailingZeroBits32   "trailing_zero_bits_32" TwoReg       [107 106 107 ] false -;
    SignExtend8          "sign_extend_8"        TwoReg        [108 107 108 ] false -;
    SignExtend16         "sign_extend_16"       TwoReg        [109 108 109 ] false -;
    ZeroExtend16         "zero_extend_16"       TwoReg        [110 109 110 ] false -;
    ReverseBytes         "reverse_bytes"        TwoReg        [111 110 111 ] false -;
    StoreIndU8           "store_ind_u8"         TwoRegImm     [120 120 120 ] false (store 1);
    StoreIndU16          "store_ind_u16"        TwoRegImm     [121 121 121 ] false (store 2);
    StoreIndU32          "store_ind_u32"        TwoRegImm     [122 122 122 ] false (store 4);
    StoreIndU64          "store_ind_u64"        TwoRegImm     [123 123 123 ] false (store 8);
    LoadIndU8            "load_ind_u8"          TwoRegImm     [124 124 124 ] false (load 1 u);
    LoadIndI8            "load_ind_i8"          TwoRegImm     [125 125 125 ] false (load 1 s);
    LoadIndU16           "load_ind_u16"         TwoRegImm     [126 126 126 ] false (load 2 u);
    LoadIndI16           "load_ind_i16"         TwoRegImm     [127 127 127 ] false (load 2 s);
    LoadIndU32           "load_ind_u32"         TwoRegImm     [128 128 128 ] false (load 4 u);
    LoadIndI32           "load_ind_i32"         TwoRegImm     [129 129 129 ] false (load 4 s);
    LoadIndU64           "load_ind_u64"         TwoRegImm     [130 130 130 ] false (load 8 u);
    AddImm32             "add_imm_32"           TwoRegImm     [131 131 131 ] false -;
    AndImm               "and_imm"              TwoRegImm     [132 132 132 ] false -;
    XorImm               "xor_imm"              TwoRegImm     [133 133 133 ] false -;
    OrImm                "or_imm"               TwoRegImm     [134 134 134 ] false -;
    MulImm32             "mul_imm_32"           TwoRegImm     [135 135 135 ] false -;
    SetLtUImm            "set_lt_u_imm"         TwoRegImm     [136 136 136 ] false -;
    SetLtSImm            "set_lt_s_imm"         TwoRegImm     [137 137 137 ] false -;
    ShloLImm32           "shlo_l_imm_32"        TwoRegImm     [138 138 138 ] false -;
    ShloRImm32           "shlo_r_imm_32"        TwoRegImm     [139 139 139 ] false -;
    SharRImm32           "shar_r_imm_32"        TwoRegImm     [140 140 140 ] false -;
    NegAddImm32          "neg_add_imm_32"       TwoRegImm     [141 141 141 ] false -;
    SetGtUImm            "set_gt_u_imm"         TwoRegImm     [142 142 142 ] false -;
    SetGtSImm            "set_gt_s_imm"         TwoRegImm     [143 143 143 ] false -;
    ShloLImmAlt32        "shlo_l_imm_alt_32"    TwoRegImm     [144 144 144 ] false -;
    ShloRImmAlt32        "shlo_r_imm_alt_32"    TwoRegImm     [145 145 145 ] false -;
    SharRImmAlt32        "shar_r_imm_alt_32"    TwoRegImm     [146 146 146 ] false -;
    CmovIzImm            "cmov_iz_imm"          TwoRegImm     [147 147 147 ] false -;
    CmovNzImm            "cmov_nz_imm"          TwoRegImm     [148 148 148 ] false -;
    AddImm64             "add_imm_64"           TwoRegImm     [149 149 149 ] false -;
    MulImm64             "mul_imm_64"           TwoRegImm     [150 150 150 ] false -;
    ShloLImm64           "shlo_l_imm_64"        TwoRegImm     [151 151 151 ] false -;
    ShloRImm64           "shlo_r_imm_64"        TwoRegImm     [152 152 152 ] false -;
    SharRImm64           "shar_r_imm_64"        TwoRegImm     [153 153 153 ] false -;
    NegAddImm64          "neg_add_imm_64"       TwoRegImm     [154 154 154 ] false -;
    ShloLImmAlt64        "shlo_l_imm_alt_64"    TwoRegImm     [155 155 155 ] false -;
    ShloRImmAlt64        "shlo_r_imm_alt_64"    TwoRegImm     [156 156 156 ] false -;
    SharRImmAlt64        "shar_r_imm_alt_64"    TwoRegImm     [157 157 157 ] false -;
    RotR64Imm            "rot_r_64_imm"         TwoRegImm     [158 158 158 ] false -;
    RotR64ImmAlt         "rot_r_64_imm_alt"     TwoRegImm     [159 159 159 ] false -;
    RotR32Imm            "rot_r_32_imm"         TwoRegImm     [160 160 160 ] false -;
    RotR32ImmAlt         "rot_r_32_imm_alt"     TwoRegImm     [161 161 161 ] false -;
    BranchEq             "branch_eq"            TwoRegOffset  [170 170 170 ] true -;
    BranchNe             "branch_ne"            TwoRegOffset  [171 171 171 ] true -;
    BranchLtU            "branch_lt_u"          TwoRegOffset  [172 172 172 ] true -;
    BranchLtS            "branch_lt_s"          TwoRegOffset  [173 173 173 ] true -;
    BranchGeU            "branch_ge_u"          TwoRegOffset  [174 174 174 ] true -;
    BranchGeS            "branch_ge_s"          TwoRegOffset  [175 175 175 ] true -;
    LoadImmJumpInd       "load_imm_jump_ind"    TwoRegTwoImm  [180 180 180 ] true -;
    Add32                "add_32"               ThreeReg      [190 190 190 ] false -;
    Sub32                "sub_32"               ThreeReg      [191 191 191 ] false -;
    Mul32                "mul_32"               ThreeReg      [192 192 192 ] false -;
    DivU32               "div_u_32"             ThreeReg      [193 193 193 ] false -;
    DivS32               "div_s_32"             ThreeReg      [194 194 194 ] false -;
    RemU32               "rem_u_32"             ThreeReg      [195 195 195 ] false -;
    RemS32               "rem_s_32"             ThreeReg      [196 196 196 ] false -;
    ShloL32              "shlo_l_32"            ThreeReg      [197 197 197 ] false -;
    ShloR32              "shlo_r_32"            ThreeReg      [198 198 198 ] false -;
    SharR32              "shar_r_32"            ThreeReg      [199 199 199 ] false -;
    Add64                "add_64"               ThreeReg      [200 200 200 ] false -;
    Sub64                "sub_64"               ThreeReg      [201 201 201 ] false -;
    Mul64                "mul_64"               ThreeReg      [202 202 202 ] false -;
    DivU64               "div_u_64"             ThreeReg      [203 203 203 ] false -;
    DivS64               "div_s_64"             ThreeReg      [204 204 204 ] false -;
    RemU64               "rem_u_64"             ThreeReg      [205 205 205 ] false -;
    RemS64               "rem_s_64"             ThreeReg      [206 206 206 ] false -;
    ShloL64              "shlo_l_64"            ThreeReg      [207 207 207 ] false -;
    ShloR64              "shlo_r_64"            ThreeReg      [208 208 208 ] false -;
    SharR64              "shar_r_64"            ThreeReg      [209 209 209 ] false -;
    And                  "and"                  ThreeReg      [210 210 210 ] false -;
    Xor                  "xor"                  ThreeReg      [211 211 211 ] false -;
    Or                   "or"                   ThreeReg      [212 212 212 ] false -;
    MulUpperSS           "mul_upper_s_s"        ThreeReg      [213 213 213 ] false -;
    MulUpperUU           "mul_upper_u_u"        ThreeReg      [214 214 214 ] false -;
    MulUpperSU           "mul_upper_s_u"        ThreeReg      [215 215 215 ] false -;
    SetLtU               "set_lt_u"             ThreeReg      [216 216 216 ] false -;
    SetLtS               "set_lt_s"             ThreeReg      [217 217 217 ] false -;
    CmovIz               "cmov_iz"              ThreeReg      [218 218 218 ] false -;
    CmovNz               "cmov_nz"              ThreeReg      [219 219 219 ] false -;
    RotL64               "rot_l_64"             ThreeReg      [220 220 220 ] false -;
    RotL32               "rot_l_32"             ThreeReg      [221 221 221 ] false -;
    RotR64               "rot_r_64"             ThreeReg      [222 222 222 ] false -;
    RotR32               "rot_r_32"             ThreeReg      [223 223 223 ] false -;
    AndInv               "and_inv"              ThreeReg      [224 224 224 ] false -;
    OrInv                "or_inv"               ThreeReg      [225 225 225 ] false -;
    Xnor                 "xnor"                 ThreeReg      [226 226 226 ] false -;
    Max                  "max"                  ThreeReg      [227 227 227 ] false -;
    MaxU                 "max_u"                ThreeReg      [228 228 228 ] false -;
    Min                  "min"                  ThreeReg      [229 229 229 ] false -;
    MinU                 "min_u"                ThreeReg      [230 230 230 ] false -;
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

impl Op {
    /// The table row of this instruction.
    #[inline]
    pub fn info(self) -> &'static OpInfo {
        &TABLE[self as usize]
    }

    /// The memory access of a load or store; `None` for every other instruction.
    #[inline]
    pub fn memory(self) -> Option<MemoryAccess> {
        self.info().memory
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
        self.format() == Format::TwoRegOffset || (self.format() == Format::RegImmOffset && self != Op::LoadImmJump)
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
                (true, _) => Some(MemoryAccess::Load { width: width.unwrap(), signed }),
                (_, true) => Some(MemoryAccess::Store { width: width.unwrap() }),
                _ => None,
            };
            assert_eq!(row.memory, expected, "{m}");
        }
        assert_eq!(TABLE.iter().filter(|r| r.memory.is_some()).count(), 30);
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
