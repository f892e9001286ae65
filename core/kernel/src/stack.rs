//! The call stack with its instance and reference entries (KSPEC-1 §8).

use crate::error::KernelError;
use crate::frame::InstanceEntry;

/// The default stack capacity, counting both entry types (KSPEC-1 §1).
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// Whether an entry is the one executing (KSPEC-1 §8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryStatus {
    /// The top of the stack.
    Running,
    /// Every other entry.
    Waiting,
}

/// One stack entry (KSPEC-1 §8.1).
#[derive(Debug)]
pub enum Entry {
    /// An entered instance.
    Instance(Box<InstanceEntry>),
    /// Pushed by a successful yield or a routed out-of-gas: points at the catcher.
    Reference {
        /// Position of an earlier Instance entry.
        target: usize,
        /// Its status.
        status: EntryStatus,
    },
}

impl Entry {
    /// The entry's status.
    pub fn status(&self) -> EntryStatus {
        match self {
            Entry::Instance(e) => e.status,
            Entry::Reference { status, .. } => *status,
        }
    }

    fn set_status(&mut self, s: EntryStatus) {
        match self {
            Entry::Instance(e) => e.status = s,
            Entry::Reference { status, .. } => *status = s,
        }
    }

    /// The instance entry, if this is one.
    pub fn as_instance(&self) -> Option<&InstanceEntry> {
        match self {
            Entry::Instance(e) => Some(e),
            Entry::Reference { .. } => None,
        }
    }

    /// The instance entry, if this is one.
    pub fn as_instance_mut(&mut self) -> Option<&mut InstanceEntry> {
        match self {
            Entry::Instance(e) => Some(e),
            Entry::Reference { .. } => None,
        }
    }
}

/// The call stack (KSPEC-1 §8.2).
#[derive(Debug)]
pub struct CallStack {
    entries: Vec<Entry>,
    max_depth: usize,
}

impl Default for CallStack {
    fn default() -> Self {
        CallStack::new(DEFAULT_MAX_DEPTH)
    }
}

impl CallStack {
    /// An empty stack holding at most `max_depth` entries.
    pub fn new(max_depth: usize) -> Self {
        CallStack { entries: Vec::new(), max_depth }
    }

    /// The capacity.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the stack is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether one more entry fits.
    pub fn has_room(&self) -> bool {
        self.entries.len() < self.max_depth
    }

    /// The entries, bottom to top.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    /// Entry `i`.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Entry> {
        self.entries.get_mut(i)
    }

    /// The instance entry at position `i`, if there is one.
    pub fn instance(&self, i: usize) -> Option<&InstanceEntry> {
        self.entries.get(i).and_then(Entry::as_instance)
    }

    /// The instance entry at position `i`, if there is one.
    pub fn instance_mut(&mut self, i: usize) -> Option<&mut InstanceEntry> {
        self.entries.get_mut(i).and_then(Entry::as_instance_mut)
    }

    /// `push_instance(e)`: the old top becomes Waiting and `e` Running on top.
    pub fn push_instance(&mut self, mut e: InstanceEntry) -> Result<(), KernelError> {
        if !self.has_room() {
            return Err(KernelError::StackFull);
        }
        if let Some(top) = self.entries.last_mut() {
            top.set_status(EntryStatus::Waiting);
        }
        e.status = EntryStatus::Running;
        self.entries.push(Entry::Instance(Box::new(e)));
        Ok(())
    }

    /// `push_reference(p)`: fails when full, or when entry `p` is not an earlier Instance entry.
    pub fn push_reference(&mut self, target: usize) -> Result<(), KernelError> {
        if !self.has_room() {
            return Err(KernelError::StackFull);
        }
        if self.instance(target).is_none() {
            return Err(KernelError::Invariant("reference target is not an instance entry"));
        }
        if let Some(top) = self.entries.last_mut() {
            top.set_status(EntryStatus::Waiting);
        }
        self.entries.push(Entry::Reference { target, status: EntryStatus::Running });
        Ok(())
    }

    /// `pop()`: removes the top; the new top becomes Running.
    pub fn pop(&mut self) -> Option<Entry> {
        let e = self.entries.pop();
        if let Some(top) = self.entries.last_mut() {
            top.set_status(EntryStatus::Running);
        }
        e
    }

    /// Pops until `len` entries remain.
    pub fn truncate(&mut self, len: usize) {
        while self.entries.len() > len {
            self.pop();
        }
    }

    /// The position of `running_instance()`: the top if it is an Instance, a Reference's
    /// target otherwise.
    pub fn running_position(&self) -> Option<usize> {
        match self.entries.last()? {
            Entry::Instance(_) => Some(self.entries.len() - 1),
            Entry::Reference { target, .. } => Some(*target),
        }
    }

    /// `running_instance()` (KSPEC-1 §8.2).
    pub fn running_instance(&self) -> Option<&InstanceEntry> {
        self.running_position().and_then(|p| self.instance(p))
    }

    /// `running_instance()`, mutably.
    pub fn running_instance_mut(&mut self) -> Option<&mut InstanceEntry> {
        let p = self.running_position()?;
        self.instance_mut(p)
    }

    /// Checks the invariants of KSPEC-1 §8.3; the first one broken, if any.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.entries.len() > self.max_depth {
            return Err(format!("{} entries exceed max_depth {}", self.entries.len(), self.max_depth));
        }
        for (i, e) in self.entries.iter().enumerate() {
            let want = if i + 1 == self.entries.len() { EntryStatus::Running } else { EntryStatus::Waiting };
            if e.status() != want {
                return Err(format!("entry {i} is {:?}, expected {want:?}", e.status()));
            }
            if let Entry::Reference { target, .. } = e {
                if *target >= i || self.instance(*target).is_none() {
                    return Err(format!("reference at {i} targets {target}, which is not an earlier instance"));
                }
            }
        }
        Ok(())
    }
}
