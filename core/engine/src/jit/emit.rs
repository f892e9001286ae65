//! The buffer compiled code is assembled into: dynasm's `DynasmApi`/`DynasmLabelApi` over a
//! byte vector, kept by the JIT instance and cleared (not freed) between programs, so
//! compiling a small program allocates nothing here.
//!
//! Labels: dynamic labels (`=>label`) as dynasm defines them, each reference patched as soon
//! as its label is defined (at once for a label already defined); local labels (`name:` with
//! `>name`/`<name`) patched when defined, since a local label's references are a few
//! instructions away. Global labels are not used by the compiler and are refused.

use dynasmrt::components::{LabelRegistry, PatchLoc};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{AssemblyOffset, DynamicLabel, DynasmApi, DynasmLabelApi};

/// A relocation waiting for its label.
type Pending = (PatchLoc<X64Relocation>, DynamicLabel);

#[derive(Default)]
pub(crate) struct Emitter {
    ops: Vec<u8>,
    labels: LabelRegistry,
    /// References to dynamic labels not defined when they were made.
    pending: Vec<Pending>,
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
        self.ops.clear();
        self.labels.clear();
        self.pending.clear();
        self.local_forward.clear();
        self.local_defined.clear();
        self.error = None;
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
        let pending = std::mem::take(&mut self.pending);
        for (loc, label) in &pending {
            match self.offset_of(*label) {
                Some(target) => self.patch(loc, target),
                None => self.pending.push((loc.clone(), *label)),
            }
        }
    }

    /// The finished code: every reference patched, or the first error.
    pub fn code(&mut self) -> Result<&[u8], String> {
        self.resolve_defined();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((_, label)) = self.pending.first() {
            return Err(format!("dynamic label {} referenced but not defined", label.get_id()));
        }
        if let Some((name, _)) = self.local_forward.first() {
            return Err(format!("local label {name} referenced forward but not defined"));
        }
        Ok(&self.ops)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.ops
    }

    #[inline]
    fn patch(&mut self, loc: &PatchLoc<X64Relocation>, target: usize) {
        let range = loc.range(0);
        let Some(field) = self.ops.get_mut(range) else {
            self.error.get_or_insert_with(|| "relocation outside the code".to_string());
            return;
        };
        if loc.patch(field, 0, target).is_err() {
            self.error.get_or_insert_with(|| format!("relocation to offset {target} out of range"));
        }
    }
}

impl Extend<u8> for Emitter {
    #[inline]
    fn extend<T: IntoIterator<Item = u8>>(&mut self, iter: T) {
        self.ops.extend(iter)
    }
}

impl<'a> Extend<&'a u8> for Emitter {
    #[inline]
    fn extend<T: IntoIterator<Item = &'a u8>>(&mut self, iter: T) {
        self.ops.extend(iter)
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
