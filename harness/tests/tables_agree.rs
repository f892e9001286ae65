//! The model's opcode table against the engine's, row by row: a typo on either side fails
//! here instead of hiding behind two backends that agree with each other. It lives in the
//! harness, which knows both, so that nothing in `core/model` (its tests included) imports
//! the engine code the model judges.

use javm_engine::isa::{Format, Profile, TABLE};
use javm_model::table::{Layout, ROWS};

/// The engine's format as the model's layout (§4's rows).
fn layout(format: Format) -> Layout {
    match format {
        Format::NoArgs => Layout::NoArgs,
        Format::OneImm => Layout::OneImm,
        Format::RegExtImm => Layout::RegExtImm,
        Format::TwoImm => Layout::TwoImms,
        Format::OneOffset => Layout::OneOffset,
        Format::RegImm => Layout::RegImm,
        Format::RegTwoImm => Layout::RegTwoImms,
        Format::RegImmOffset => Layout::RegImmOffset,
        Format::TwoReg => Layout::TwoRegs,
        Format::TwoRegImm => Layout::TwoRegsImm,
        Format::TwoRegOffset => Layout::TwoRegsOffset,
        Format::TwoRegTwoImm => Layout::TwoRegsTwoImms,
        Format::ThreeReg => Layout::ThreeRegs,
    }
}

#[test]
fn every_engine_row_matches_the_model_row_of_the_same_name() {
    let mut differences = Vec::new();
    for e in TABLE {
        let Some(&(_, _, model_layout, a, b, j, in_t)) = ROWS.iter().find(|r| r.1 == e.mnemonic) else {
            differences.push(format!("{}: in the engine's table only", e.mnemonic));
            continue;
        };
        let engine = (layout(e.format), e.numbers[0], e.numbers[1], e.numbers[2], e.ends_block);
        let model = (model_layout, a, b, j, in_t);
        if engine != model {
            differences.push(format!("{}: engine {engine:?}, model {model:?}", e.mnemonic));
        }
        // The engine's per-profile lookup agrees with its own rows.
        for (column, profile) in Profile::ALL.iter().enumerate() {
            if let Some(n) = e.numbers[column] {
                assert_eq!(profile.op(n), Some(e.op), "engine lookup of {n} in {profile}");
            }
        }
    }
    for r in ROWS {
        if !TABLE.iter().any(|e| e.mnemonic == r.1) {
            differences.push(format!("{}: in the model's table only", r.1));
        }
    }
    assert!(differences.is_empty(), "the tables differ:\n{}", differences.join("\n"));
}

#[test]
fn profiles_differ_exactly_where_the_spec_says() {
    // §0: B renumbers the two-register group down by one and drops sbrk; J adds 2 and 3.
    let number = |name: &str| ROWS.iter().find(|r| r.1 == name).map(|r| (r.3, r.4, r.5)).unwrap();
    assert_eq!(number("sbrk"), (Some(101), None, Some(101)));
    assert_eq!(number("count_set_bits_64"), (Some(102), Some(101), Some(102)));
    assert_eq!(number("reverse_bytes"), (Some(111), Some(110), Some(111)));
    assert_eq!(number("unlikely"), (None, Some(2), Some(2)));
    assert_eq!(number("ecall"), (None, None, Some(3)));
    let differing: Vec<&str> = ROWS.iter().filter(|r| !(r.3 == r.4 && r.4 == r.5)).map(|r| r.1).collect();
    assert_eq!(differing.len(), 13, "{differing:?}");
}
