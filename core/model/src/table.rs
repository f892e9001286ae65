//! The model's own opcode table, transcribed from PVMSPEC-1 §0 (profiles), §3.1 (the
//! terminator set T) and §5 (numbers, names, operand formats).
//!
//! `harness/tests/tables_agree.rs` compares it with the engine's table row by row, so a typo
//! on either side fails a test instead of hiding behind agreement.

/// Opcode-numbering profile (§0), as the model reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbering {
    /// GP ≤ 0.7.2, w3f v0.4 vectors.
    A,
    /// GP 0.8.0, PolkaVM JamV1, spectool vectors.
    B,
    /// javm: A plus `unlikely` (2) and `ecall` (3).
    J,
}

/// Operand layouts, named as the rows of §4's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    NoArgs,
    OneImm,
    RegExtImm,
    TwoImms,
    OneOffset,
    RegImm,
    RegTwoImms,
    RegImmOffset,
    TwoRegs,
    TwoRegsImm,
    TwoRegsOffset,
    TwoRegsTwoImms,
    ThreeRegs,
}

macro_rules! rows {
    ($( $id:ident $name:literal $layout:ident $a:tt $b:tt $j:tt $t:ident; )*) => {
        /// Every instruction the spec names.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(non_camel_case_types)]
        pub enum I { $($id,)* }

        /// One row: the instruction, its name, layout, its number in A, B and J, and whether
        /// it is in the terminator set T of §3.1 (GP/PolkaVM).
        pub const ROWS: &[(I, &str, Layout, Option<u8>, Option<u8>, Option<u8>, bool)] = &[
            $( (I::$id, $name, Layout::$layout, num!($a), num!($b), num!($j), term!($t)), )*
        ];
    };
}
macro_rules! num {
    (-) => {
        None
    };
    ($n:literal) => {
        Some($n)
    };
}
macro_rules! term {
    (T) => {
        true
    };
    (x) => {
        false
    };
}

rows! {
    // §5.1
    trap "trap" NoArgs 0 0 0 T;
    fallthrough "fallthrough" NoArgs 1 1 1 T;
    unlikely "unlikely" NoArgs - 2 2 x;
    ecall "ecall" NoArgs - - 3 x;
    // §5.2
    ecalli "ecalli" OneImm 10 10 10 x;
    // §5.3
    load_imm_64 "load_imm_64" RegExtImm 20 20 20 x;
    // §5.4
    store_imm_u8 "store_imm_u8" TwoImms 30 30 30 x;
    store_imm_u16 "store_imm_u16" TwoImms 31 31 31 x;
    store_imm_u32 "store_imm_u32" TwoImms 32 32 32 x;
    store_imm_u64 "store_imm_u64" TwoImms 33 33 33 x;
    // §5.5
    jump "jump" OneOffset 40 40 40 T;
    // §5.6
    jump_ind "jump_ind" RegImm 50 50 50 T;
    load_imm "load_imm" RegImm 51 51 51 x;
    load_u8 "load_u8" RegImm 52 52 52 x;
    load_i8 "load_i8" RegImm 53 53 53 x;
    load_u16 "load_u16" RegImm 54 54 54 x;
    load_i16 "load_i16" RegImm 55 55 55 x;
    load_u32 "load_u32" RegImm 56 56 56 x;
    load_i32 "load_i32" RegImm 57 57 57 x;
    load_u64 "load_u64" RegImm 58 58 58 x;
    store_u8 "store_u8" RegImm 59 59 59 x;
    store_u16 "store_u16" RegImm 60 60 60 x;
    store_u32 "store_u32" RegImm 61 61 61 x;
    store_u64 "store_u64" RegImm 62 62 62 x;
    // §5.7
    store_imm_ind_u8 "store_imm_ind_u8" RegTwoImms 70 70 70 x;
    store_imm_ind_u16 "store_imm_ind_u16" RegTwoImms 71 71 71 x;
    store_imm_ind_u32 "store_imm_ind_u32" RegTwoImms 72 72 72 x;
    store_imm_ind_u64 "store_imm_ind_u64" RegTwoImms 73 73 73 x;
    // §5.8
    load_imm_jump "load_imm_jump" RegImmOffset 80 80 80 T;
    branch_eq_imm "branch_eq_imm" RegImmOffset 81 81 81 T;
    branch_ne_imm "branch_ne_imm" RegImmOffset 82 82 82 T;
    branch_lt_u_imm "branch_lt_u_imm" RegImmOffset 83 83 83 T;
    branch_le_u_imm "branch_le_u_imm" RegImmOffset 84 84 84 T;
    branch_ge_u_imm "branch_ge_u_imm" RegImmOffset 85 85 85 T;
    branch_gt_u_imm "branch_gt_u_imm" RegImmOffset 86 86 86 T;
    branch_lt_s_imm "branch_lt_s_imm" RegImmOffset 87 87 87 T;
    branch_le_s_imm "branch_le_s_imm" RegImmOffset 88 88 88 T;
    branch_ge_s_imm "branch_ge_s_imm" RegImmOffset 89 89 89 T;
    branch_gt_s_imm "branch_gt_s_imm" RegImmOffset 90 90 90 T;
    // §5.9
    move_reg "move_reg" TwoRegs 100 100 100 x;
    sbrk "sbrk" TwoRegs 101 - 101 x;
    count_set_bits_64 "count_set_bits_64" TwoRegs 102 101 102 x;
    count_set_bits_32 "count_set_bits_32" TwoRegs 103 102 103 x;
    leading_zero_bits_64 "leading_zero_bits_64" TwoRegs 104 103 104 x;
    leading_zero_bits_32 "leading_zero_bits_32" TwoRegs 105 104 105 x;
    trailing_zero_bits_64 "trailing_zero_bits_64" TwoRegs 106 105 106 x;
    trailing_zero_bits_32 "trailing_zero_bits_32" TwoRegs 107 106 107 x;
    sign_extend_8 "sign_extend_8" TwoRegs 108 107 108 x;
    sign_extend_16 "sign_extend_16" TwoRegs 109 108 109 x;
    zero_extend_16 "zero_extend_16" TwoRegs 110 109 110 x;
    reverse_bytes "reverse_bytes" TwoRegs 111 110 111 x;
    // §5.10
    store_ind_u8 "store_ind_u8" TwoRegsImm 120 120 120 x;
    store_ind_u16 "store_ind_u16" TwoRegsImm 121 121 121 x;
    store_ind_u32 "store_ind_u32" TwoRegsImm 122 122 122 x;
    store_ind_u64 "store_ind_u64" TwoRegsImm 123 123 123 x;
    load_ind_u8 "load_ind_u8" TwoRegsImm 124 124 124 x;
    load_ind_i8 "load_ind_i8" TwoRegsImm 125 125 125 x;
    load_ind_u16 "load_ind_u16" TwoRegsImm 126 126 126 x;
    load_ind_i16 "load_ind_i16" TwoRegsImm 127 127 127 x;
    load_ind_u32 "load_ind_u32" TwoRegsImm 128 128 128 x;
    load_ind_i32 "load_ind_i32" TwoRegsImm 129 129 129 x;
    load_ind_u64 "load_ind_u64" TwoRegsImm 130 130 130 x;
    add_imm_32 "add_imm_32" TwoRegsImm 131 131 131 x;
    and_imm "and_imm" TwoRegsImm 132 132 132 x;
    xor_imm "xor_imm" TwoRegsImm 133 133 133 x;
    or_imm "or_imm" TwoRegsImm 134 134 134 x;
    mul_imm_32 "mul_imm_32" TwoRegsImm 135 135 135 x;
    set_lt_u_imm "set_lt_u_imm" TwoRegsImm 136 136 136 x;
    set_lt_s_imm "set_lt_s_imm" TwoRegsImm 137 137 137 x;
    shlo_l_imm_32 "shlo_l_imm_32" TwoRegsImm 138 138 138 x;
    shlo_r_imm_32 "shlo_r_imm_32" TwoRegsImm 139 139 139 x;
    shar_r_imm_32 "shar_r_imm_32" TwoRegsImm 140 140 140 x;
    neg_add_imm_32 "neg_add_imm_32" TwoRegsImm 141 141 141 x;
    set_gt_u_imm "set_gt_u_imm" TwoRegsImm 142 142 142 x;
    set_gt_s_imm "set_gt_s_imm" TwoRegsImm 143 143 143 x;
    shlo_l_imm_alt_32 "shlo_l_imm_alt_32" TwoRegsImm 144 144 144 x;
    shlo_r_imm_alt_32 "shlo_r_imm_alt_32" TwoRegsImm 145 145 145 x;
    shar_r_imm_alt_32 "shar_r_imm_alt_32" TwoRegsImm 146 146 146 x;
    cmov_iz_imm "cmov_iz_imm" TwoRegsImm 147 147 147 x;
    cmov_nz_imm "cmov_nz_imm" TwoRegsImm 148 148 148 x;
    add_imm_64 "add_imm_64" TwoRegsImm 149 149 149 x;
    mul_imm_64 "mul_imm_64" TwoRegsImm 150 150 150 x;
    shlo_l_imm_64 "shlo_l_imm_64" TwoRegsImm 151 151 151 x;
    shlo_r_imm_64 "shlo_r_imm_64" TwoRegsImm 152 152 152 x;
    shar_r_imm_64 "shar_r_imm_64" TwoRegsImm 153 153 153 x;
    neg_add_imm_64 "neg_add_imm_64" TwoRegsImm 154 154 154 x;
    shlo_l_imm_alt_64 "shlo_l_imm_alt_64" TwoRegsImm 155 155 155 x;
    shlo_r_imm_alt_64 "shlo_r_imm_alt_64" TwoRegsImm 156 156 156 x;
    shar_r_imm_alt_64 "shar_r_imm_alt_64" TwoRegsImm 157 157 157 x;
    rot_r_64_imm "rot_r_64_imm" TwoRegsImm 158 158 158 x;
    rot_r_64_imm_alt "rot_r_64_imm_alt" TwoRegsImm 159 159 159 x;
    rot_r_32_imm "rot_r_32_imm" TwoRegsImm 160 160 160 x;
    rot_r_32_imm_alt "rot_r_32_imm_alt" TwoRegsImm 161 161 161 x;
    // §5.11
    branch_eq "branch_eq" TwoRegsOffset 170 170 170 T;
    branch_ne "branch_ne" TwoRegsOffset 171 171 171 T;
    branch_lt_u "branch_lt_u" TwoRegsOffset 172 172 172 T;
    branch_lt_s "branch_lt_s" TwoRegsOffset 173 173 173 T;
    branch_ge_u "branch_ge_u" TwoRegsOffset 174 174 174 T;
    branch_ge_s "branch_ge_s" TwoRegsOffset 175 175 175 T;
    // §5.12
    load_imm_jump_ind "load_imm_jump_ind" TwoRegsTwoImms 180 180 180 T;
    // §5.13
    add_32 "add_32" ThreeRegs 190 190 190 x;
    sub_32 "sub_32" ThreeRegs 191 191 191 x;
    mul_32 "mul_32" ThreeRegs 192 192 192 x;
    div_u_32 "div_u_32" ThreeRegs 193 193 193 x;
    div_s_32 "div_s_32" ThreeRegs 194 194 194 x;
    rem_u_32 "rem_u_32" ThreeRegs 195 195 195 x;
    rem_s_32 "rem_s_32" ThreeRegs 196 196 196 x;
    shlo_l_32 "shlo_l_32" ThreeRegs 197 197 197 x;
    shlo_r_32 "shlo_r_32" ThreeRegs 198 198 198 x;
    shar_r_32 "shar_r_32" ThreeRegs 199 199 199 x;
    add_64 "add_64" ThreeRegs 200 200 200 x;
    sub_64 "sub_64" ThreeRegs 201 201 201 x;
    mul_64 "mul_64" ThreeRegs 202 202 202 x;
    div_u_64 "div_u_64" ThreeRegs 203 203 203 x;
    div_s_64 "div_s_64" ThreeRegs 204 204 204 x;
    rem_u_64 "rem_u_64" ThreeRegs 205 205 205 x;
    rem_s_64 "rem_s_64" ThreeRegs 206 206 206 x;
    shlo_l_64 "shlo_l_64" ThreeRegs 207 207 207 x;
    shlo_r_64 "shlo_r_64" ThreeRegs 208 208 208 x;
    shar_r_64 "shar_r_64" ThreeRegs 209 209 209 x;
    and "and" ThreeRegs 210 210 210 x;
    xor "xor" ThreeRegs 211 211 211 x;
    or "or" ThreeRegs 212 212 212 x;
    mul_upper_s_s "mul_upper_s_s" ThreeRegs 213 213 213 x;
    mul_upper_u_u "mul_upper_u_u" ThreeRegs 214 214 214 x;
    mul_upper_s_u "mul_upper_s_u" ThreeRegs 215 215 215 x;
    set_lt_u "set_lt_u" ThreeRegs 216 216 216 x;
    set_lt_s "set_lt_s" ThreeRegs 217 217 217 x;
    cmov_iz "cmov_iz" ThreeRegs 218 218 218 x;
    cmov_nz "cmov_nz" ThreeRegs 219 219 219 x;
    rot_l_64 "rot_l_64" ThreeRegs 220 220 220 x;
    rot_l_32 "rot_l_32" ThreeRegs 221 221 221 x;
    rot_r_64 "rot_r_64" ThreeRegs 222 222 222 x;
    rot_r_32 "rot_r_32" ThreeRegs 223 223 223 x;
    and_inv "and_inv" ThreeRegs 224 224 224 x;
    or_inv "or_inv" ThreeRegs 225 225 225 x;
    xnor "xnor" ThreeRegs 226 226 226 x;
    max "max" ThreeRegs 227 227 227 x;
    max_u "max_u" ThreeRegs 228 228 228 x;
    min "min" ThreeRegs 229 229 229 x;
    min_u "min_u" ThreeRegs 230 230 230 x;
}

/// An instruction's row.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub i: I,
    pub name: &'static str,
    pub layout: Layout,
    /// In the GP/PolkaVM terminator set T (§3.1).
    pub in_t: bool,
}

/// Per numbering, the row each opcode byte names (`None`: undefined, §5.15).
pub struct OpcodeMap {
    rows: [Option<Row>; 256],
}

impl OpcodeMap {
    pub fn new(numbering: Numbering) -> OpcodeMap {
        let mut rows = [None; 256];
        for &(i, name, layout, a, b, j, in_t) in ROWS {
            let number = match numbering {
                Numbering::A => a,
                Numbering::B => b,
                Numbering::J => j,
            };
            if let Some(n) = number {
                rows[n as usize] = Some(Row { i, name, layout, in_t });
            }
        }
        OpcodeMap { rows }
    }

    pub fn get(&self, byte: u8) -> Option<Row> {
        self.rows[byte as usize]
    }
}
