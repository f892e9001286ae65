//! Gas models (PVMSPEC-1 §9).

use std::fmt;
use std::sync::Arc;

/// How gas is charged. Chosen per run; both backends read the same costs from
/// [`crate::program::Program`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GasModel {
    /// Each instruction costs 1; a whole basic block is charged when it is entered (the w3f
    /// v0.4 vectors, produced by PolkaVM).
    BlockUnit,
    /// Each basic block costs what a `{pc, cost}` table says, charged on entry; a start
    /// inside a block is charged the enclosing block's cost (spectool `block-gas-costs`).
    BlockTable(Arc<[(u32, u64)]>),
    /// Each instruction costs 1, charged before it runs (the Gray Paper text). Running out
    /// leaves the state before the instruction and the decremented, negative gas.
    Instruction,
}

impl GasModel {
    /// Builds a table model; entries may come in any order.
    pub fn table(entries: impl IntoIterator<Item = (u32, u64)>) -> GasModel {
        let mut v: Vec<(u32, u64)> = entries.into_iter().collect();
        v.sort_unstable();
        v.dedup_by_key(|e| e.0);
        GasModel::BlockTable(v.into())
    }

    /// The cost charged when a block is entered at `pc` under the table model: the entry
    /// with the largest pc not above `pc`. A block costs at least 1 (also when the table has
    /// no entry for it): no cost model produces free blocks, and a positive cost guarantees
    /// that every run ends, whatever table a vector supplies.
    pub fn table_cost(table: &[(u32, u64)], pc: u32) -> u64 {
        let cost = match table.binary_search_by_key(&pc, |e| e.0) {
            Ok(i) => table[i].1,
            Err(0) => 0,
            Err(i) => table[i - 1].1,
        };
        cost.max(1)
    }

    /// Name used on the command line.
    pub fn kind_name(&self) -> &'static str {
        match self {
            GasModel::BlockUnit => "block-unit",
            GasModel::BlockTable(_) => "block-table",
            GasModel::Instruction => "instruction",
        }
    }
}

impl fmt::Display for GasModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cost_uses_the_enclosing_block() {
        let GasModel::BlockTable(t) = GasModel::table([(6, 3), (0, 10)]) else { unreachable!() };
        assert_eq!(GasModel::table_cost(&t, 0), 10);
        assert_eq!(GasModel::table_cost(&t, 5), 10);
        assert_eq!(GasModel::table_cost(&t, 6), 3);
        assert_eq!(GasModel::table_cost(&t, 100), 3);
        let GasModel::BlockTable(t) = GasModel::table([(4, 7), (8, 0)]) else { unreachable!() };
        assert_eq!(GasModel::table_cost(&t, 2), 1);
        assert_eq!(GasModel::table_cost(&t, 9), 1);
    }
}
