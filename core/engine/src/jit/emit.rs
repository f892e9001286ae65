//! The buffer compiled code is assembled into: dynasm's `DynasmApi`/`DynasmLabelApi` over a
//! [`CodeBuf`], which writes a module's code straight into executable memory leased from the
//! arena. It is kept by the JIT instance and cleared (not freed) between programs, so
//! compiling a small program allocates nothing here.
//!
//! Labels: dynamic labels (`=>label`) as dynasm defines them, each reference patched as soon
//! as its label is defined (at once for a label already defined); local labels (`name:` with
//! `>name`/`<name`) patched when defined, since a local label's references are a few
//! instructions away. Global labels are not used by the compiler and are refused.

use dynasmrt::components::{LabelRegistry, PatchLoc};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{AssemblyOffset, DynamicLabel, DynasmApi, DynasmLabelApi};

use super::buf::CodeBuf;
use super::code::{Code, CodeArena, Lease};
use super::x64::{Cond, Enc};

/// A relocation waiting for its label.
type Pending = (PatchLoc<X64Relocation>, DynamicLabel);

#[derive(Default)]
pub(crate) struct Emitter {
    ops: CodeBuf,
    labels: LabelRegistry,
    /// References to dynamic labels not defined when they were made.
    pending: Vec<Pending>,
    /// Jumps assembled by [`Emitter::jump_label`] to labels not defined then: the offset just
    /// past each 32-bit displacement, and its label.
    pending_rel32: Vec<(usize, DynamicLabel)>,
    /// Forward references to local labels, by name.
    local_forward: Vec<(&'static str, PatchLoc<X64Relocation>)>,
    /// The latest definition of each local label name.
    local_defined: Vec<(&'static str, usize)>,
    error: Option<String>,
    /// The code every module starts with, assembled once per feature set (see
    /// `compile::Compiler::emit_runtime`): its bytes and the offsets of its labels.
    pub runtime: Option<(super::compile::Features, Vec<u8>, Vec<usize>)>,
}

impl Emitter {
    /// Empties the buffer for the next program, keeping its memory (and the runtime).
    pub fn clear(&mut self) {
        self.clear_labels();
        self.ops.clear();
    }

    /// [`Emitter::clear`], then assembles into `lease` (see [`Emitter::place`]).
    pub fn clear_into(&mut self, lease: Lease) {
        self.clear_labels();
        self.ops.clear_into(lease);
    }

    /// Places the code assembled (patched by [`Emitter::code`]) in executable memory: where
    /// it is, when it was assembled into a lease of `arena` and stayed there; else by a copy.
    /// The buffer is empty afterwards.
    pub fn place(&mut self, arena: &mut CodeArena) -> std::io::Result<Code> {
        self.ops.place(arena)
    }

    fn clear_labels(&mut self) {
        self.labels.clear();
        self.pending.clear();
        self.pending_rel32.clear();
        self.local_forward.clear();
        self.local_defined.clear();
        self.error = None;
    }

    /// Appends `bytes` (code assembled before) with one copy.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.ops.extend_from_slice(bytes);
    }

    pub fn reserve(&mut self, bytes: usize) {
        self.ops.reserve(bytes);
    }

    #[inline]
    pub fn new_dynamic_label(&mut self) -> DynamicLabel {
        self.labels.new_dynamic_label()
    }

    /// Defines `label` at an offset already emitted (code copied in whole).
    #[inline]
    pub fn define_at(&mut self, label: DynamicLabel, offset: usize) {
        if let Err(e) = self.labels.define_dynamic(label, AssemblyOffset(offset)) {
            self.error.get_or_insert(e.to_string());
        }
    }

    /// Offset of a defined label.
    #[inline]
    pub fn offset_of(&self, label: DynamicLabel) -> Option<usize> {
        self.labels.resolve_dynamic(label).ok().map(|o| o.0)
    }

    /// Patches every reference whose label is defined by now; the others stay pending.
    pub fn resolve_defined(&mut self) {
        let mut k = 0;
        while k < self.pending.len() {
            match self.offset_of(self.pending[k].1) {
                Some(target) => {
                    let (loc, _) = self.pending.swap_remove(k);
                    self.patch(&loc, target);
                }
                None => k += 1,
            }
        }
        let mut k = 0;
        while k < self.pending_rel32.len() {
            let (end, label) = self.pending_rel32[k];
            match self.offset_of(label) {
                Some(target) => {
                    self.pending_rel32.swap_remove(k);
                    self.patch_jump(end, target);
                }
                None => k += 1,
            }
        }
    }

    /// Makes room for one unit of code (a guest instruction's charge and body, or a cold
    /// stub: at most [`super::buf::MAX_UNIT`] bytes), which [`Emitter::put`] and the jumps
    /// write into. Every unit begins with it.
    #[inline(always)]
    pub fn reserve_room(&mut self) {
        self.ops.reserve_room();
    }

    /// The most bytes one unit of code has written by [`Emitter::put`], from the start of its
    /// room (debug builds).
    #[cfg(all(test, debug_assertions))]
    pub fn longest_unit(&self) -> usize {
        self.ops.longest_unit
    }

    /// Appends one fixed encoding ([`super::x64`]) with a single copy, within the room made
    /// for the unit of code it is part of ([`Emitter::reserve_room`]).
    #[inline(always)]
    pub fn put(&mut self, enc: Enc) {
        self.ops.put16(enc.bits, enc.len);
    }

    /// `jmp rel32` to `label`: dynasm's `jmp =>label`, without its relocation records.
    #[inline]
    pub fn jmp(&mut self, label: DynamicLabel) {
        self.jump_label(None, label);
    }

    /// `jmp rel32` (`cond` none) or `j<cond> rel32` to `label`: dynasm's `jmp =>label` or
    /// `j<cond> =>label`, without its relocation records.
    #[inline]
    pub fn jump_label(&mut self, cond: Option<Cond>, label: DynamicLabel) {
        let target = self.offset_of(label);
        let end = self.jump(cond, target);
        if target.is_none() {
            self.pending_rel32.push((end, label));
        }
    }

    /// `jmp rel32` (`cond` none) or `j<cond> rel32` to the code offset `target`; when it is
    /// not known yet, with a displacement of 0 for [`Emitter::patch_jump`] to fill in.
    /// Returns the offset just past the jump.
    #[inline]
    pub fn jump(&mut self, cond: Option<Cond>, target: Option<usize>) -> usize {
        // The opcode bytes, then the displacement from the end of the jump.
        let (opcode, len) = match cond {
            None => (0xE9, 1),
            Some(cond) => (u128::from(0x0F | (0x80 | cond as u16) << 8), 2),
        };
        let end = self.ops.len() + len + 4;
        let displacement = u128::from(target.map_or(0, |t| rel32(end, t)) as u32);
        match cond {
            None => self.put(Enc { bits: opcode | displacement << 8, len: 5 }),
            Some(_) => self.put(Enc { bits: opcode | displacement << 16, len: 6 }),
        }
        end
    }

    /// Points the jump that ends at `end` (see [`Emitter::jump`]) to `target`.
    #[inline]
    pub fn patch_jump(&mut self, end: usize, target: usize) {
        if let Some(field) = self.ops.as_mut_slice().get_mut(end.wrapping_sub(4)..end) {
            field.copy_from_slice(&rel32(end, target).to_le_bytes());
        } else {
            self.error.get_or_insert_with(|| "jump outside the code".to_string());
        }
    }

    /// Records an error in the code being assembled (the first one is reported).
    pub fn fail(&mut self, error: &str) {
        self.error.get_or_insert_with(|| error.to_string());
    }

    /// Overwrites the four bytes at `at` (an immediate emitted as a placeholder).
    #[inline]
    pub fn patch_u32(&mut self, at: usize, value: u32) {
        if let Some(field) = self.ops.as_mut_slice().get_mut(at..at.wrapping_add(4)) {
            field.copy_from_slice(&value.to_le_bytes());
        } else {
            self.error.get_or_insert_with(|| "immediate outside the code".to_string());
        }
    }

    /// The finished code: every reference patched, or the first error.
    pub fn code(&mut self) -> Result<&[u8], String> {
        self.resolve_defined();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let unresolved = self.pending.first().map(|p| p.1).or(self.pending_rel32.first().map(|p| p.1));
        if let Some(label) = unresolved {
            return Err(format!("dynamic label {} referenced but not defined", label.get_id()));
        }
        if let Some((name, _)) = self.local_forward.first() {
            return Err(format!("local label {name} referenced forward but not defined"));
        }
        Ok(self.ops.as_slice())
    }

    pub fn bytes(&self) -> &[u8] {
        self.ops.as_slice()
    }

    #[inline]
    fn patch(&mut self, loc: &PatchLoc<X64Relocation>, target: usize) {
        let range = loc.range(0);
        let Some(field) = self.ops.as_mut_slice().get_mut(range) else {
            self.error.get_or_insert_with(|| "relocation outside the code".to_string());
            return;
        };
        if loc.patch(field, 0, target).is_err() {
            self.error.get_or_insert_with(|| format!("relocation to offset {target} out of range"));
        }
    }
}

/// The displacement from the end of a jump at `end` to `target` (code is far below 2 GiB).
fn rel32(end: usize, target: usize) -> i32 {
    (target as i64 - end as i64) as i32
}

impl Extend<u8> for Emitter {
    #[inline]
    fn extend<T: IntoIterator<Item = u8>>(&mut self, iter: T) {
        let iter = iter.into_iter();
        self.ops.reserve(iter.size_hint().0);
        for byte in iter {
            self.ops.push(byte);
        }
    }
}

impl<'a> Extend<&'a u8> for Emitter {
    #[inline]
    fn extend<T: IntoIterator<Item = &'a u8>>(&mut self, iter: T) {
        self.extend(iter.into_iter().copied())
    }
}

impl DynasmApi for Emitter {
    #[inline]
    fn offset(&self) -> AssemblyOffset {
        AssemblyOffset(self.ops.len())
    }

    #[inline]
    fn push(&mut self, byte: u8) {
        self.ops.push(byte);
    }

    fn align(&mut self, alignment: usize, with: u8) {
        while !self.ops.len().is_multiple_of(alignment) {
            self.ops.push(with);
        }
    }
}

impl DynasmLabelApi for Emitter {
    type Relocation = X64Relocation;

    fn local_label(&mut self, name: &'static str) {
        let here = self.ops.len();
        let mut k = 0;
        while k < self.local_forward.len() {
            if self.local_forward[k].0 == name {
                let (_, loc) = self.local_forward.swap_remove(k);
                self.patch(&loc, here);
            } else {
                k += 1;
            }
        }
        match self.local_defined.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = here,
            None => self.local_defined.push((name, here)),
        }
    }

    fn global_label(&mut self, name: &'static str) {
        self.error.get_or_insert_with(|| format!("global label {name} is not supported"));
    }

    #[inline]
    fn dynamic_label(&mut self, id: DynamicLabel) {
        let here = self.ops.len();
        self.define_at(id, here);
    }

    fn global_relocation(&mut self, name: &'static str, _: isize, _: u8, _: u8, _: X64Relocation) {
        self.error.get_or_insert_with(|| format!("global label {name} is not supported"));
    }

    #[inline]
    fn dynamic_relocation(
        &mut self,
        id: DynamicLabel,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: X64Relocation,
    ) {
        let loc = PatchLoc::new(self.offset(), target_offset, field_offset, ref_offset, kind);
        match self.offset_of(id) {
            Some(target) => self.patch(&loc, target),
            None => self.pending.push((loc, id)),
        }
    }

    fn forward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: X64Relocation,
    ) {
        let loc = PatchLoc::new(self.offset(), target_offset, field_offset, ref_offset, kind);
        self.local_forward.push((name, loc));
    }

    fn backward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: X64Relocation,
    ) {
        let loc = PatchLoc::new(self.offset(), target_offset, field_offset, ref_offset, kind);
        match self.local_defined.iter().find(|(n, _)| *n == name) {
            Some(&(_, target)) => self.patch(&loc, target),
            None => {
                self.error
                    .get_or_insert_with(|| format!("local label {name} referenced backward before it is defined"));
            }
        }
    }

    fn value_relocation(&mut self, value: usize, field_offset: u8, ref_offset: u8, kind: X64Relocation) {
        let loc = PatchLoc::new(self.offset(), 0, field_offset, ref_offset, kind);
        self.patch(&loc, value);
    }
}

#[cfg(test)]
mod tests {
    use dynasmrt::dynasm;

    use super::*;

    #[test]
    fn put_appends_exactly_the_bytes_of_each_encoding() {
        // Every length an encoding can have, with bytes set past each one's length, from an
        // empty buffer that has to grow on the way.
        let mut e = Emitter::default();
        let mut expected = Vec::new();
        for k in 0..300usize {
            let len = k % 16;
            let bits = u128::from_le_bytes(std::array::from_fn(|b| (k * 31 + b * 7 + 1) as u8));
            e.reserve_room();
            e.put(Enc { bits, len });
            expected.extend_from_slice(&bits.to_le_bytes()[..len]);
            assert_eq!(e.bytes(), &expected[..], "after {} encodings", k + 1);
        }
    }

    #[test]
    fn forward_and_backward_references_are_patched() {
        let mut e = Emitter::default();
        let ahead = e.new_dynamic_label();
        let behind = e.new_dynamic_label();
        dynasm!(e
            ; .arch x64
            ; =>behind
            ; jmp =>ahead
            ; jmp =>behind
            ; jz >skip
            ; nop
            ; skip:
            ; =>ahead
            ; ret
        );
        let code = e.code().unwrap().to_vec();
        // jmp rel32 (5 bytes) to offset 17, jmp rel32 back to 0, jz rel32 (6 bytes) over a
        // nop, ret at 17.
        let rel = |at: usize| i32::from_le_bytes(code[at..at + 4].try_into().unwrap());
        assert_eq!((code[0], rel(1)), (0xE9, 17 - 5));
        assert_eq!((code[5], rel(6)), (0xE9, -10));
        assert_eq!((code[10], code[11], rel(12)), (0x0F, 0x84, 1));
        assert_eq!(&code[16..], &[0x90, 0xC3]);
    }

    #[test]
    fn direct_jumps_match_dynasm() {
        // The same code through dynasm's jumps and through `jmp`/`jump_label`: labels defined
        // before, after and at the very end, reached by jmp and by conditional jumps.
        let mut theirs = Emitter::default();
        let (b, a, end) = (theirs.new_dynamic_label(), theirs.new_dynamic_label(), theirs.new_dynamic_label());
        dynasm!(theirs
            ; .arch x64
            ; =>b ; jmp =>a ; jmp =>b ; je =>a ; jl =>b ; jne =>end ; js =>end ; jg =>a
            ; =>a ; ret ; jb =>b ; jmp =>end
            ; =>end
        );
        let mut ours = Emitter::default();
        let (b, a, end) = (ours.new_dynamic_label(), ours.new_dynamic_label(), ours.new_dynamic_label());
        dynasm!(ours ; .arch x64 ; =>b);
        ours.reserve_room();
        ours.jmp(a);
        ours.jmp(b);
        ours.jump_label(Some(Cond::E), a);
        ours.jump_label(Some(Cond::L), b);
        ours.jump_label(Some(Cond::Ne), end);
        ours.jump_label(Some(Cond::S), end);
        ours.jump_label(Some(Cond::G), a);
        dynasm!(ours ; .arch x64 ; =>a ; ret);
        ours.jump_label(Some(Cond::B), b);
        ours.jmp(end);
        dynasm!(ours ; .arch x64 ; =>end);
        assert_eq!(ours.code().unwrap(), theirs.code().unwrap());
    }

    #[test]
    fn jumps_to_offsets_match_dynasm_once_patched() {
        let mut theirs = Emitter::default();
        let (back, ahead) = (theirs.new_dynamic_label(), theirs.new_dynamic_label());
        dynasm!(theirs ; .arch x64 ; =>back ; nop ; jmp =>back ; jle =>ahead ; jmp =>ahead ; nop ; =>ahead ; ret);
        let mut ours = Emitter::default();
        dynasm!(ours ; .arch x64 ; nop);
        ours.reserve_room();
        ours.jump(None, Some(0));
        let first = ours.jump(Some(Cond::Le), None);
        let second = ours.jump(None, None);
        dynasm!(ours ; .arch x64 ; nop);
        let here = ours.bytes().len();
        ours.patch_jump(first, here);
        ours.patch_jump(second, here);
        dynasm!(ours ; .arch x64 ; ret);
        assert_eq!(ours.code().unwrap(), theirs.code().unwrap());
    }

    #[test]
    fn a_direct_jump_to_a_label_never_defined_is_an_error() {
        let mut e = Emitter::default();
        let never = e.new_dynamic_label();
        e.reserve_room();
        e.jump_label(Some(Cond::E), never);
        assert!(e.code().is_err());
    }

    #[test]
    fn an_undefined_label_is_an_error_and_clear_starts_over() {
        let mut e = Emitter::default();
        let never = e.new_dynamic_label();
        dynasm!(e ; .arch x64 ; jmp =>never);
        assert!(e.code().is_err());
        e.clear();
        dynasm!(e ; .arch x64 ; ret);
        assert_eq!(e.code().unwrap(), &[0xC3]);
    }
}
