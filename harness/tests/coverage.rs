//! The generator reaches every rule of the spec it can: a fixed seeded run per configuration,
//! counted by the reference model. A construct lost from the generator fails here.

use javm_engine::{Backend, Profile};
use javm_harness::coverage::missing;
use javm_harness::diff::generate;
use javm_harness::generator::GenConfig;
use javm_harness::run::{run_case, GasChoice};
use javm_model::coverage::Coverage;
use javm_model::Model;

fn coverage_of(config: GenConfig, count: u64) -> Coverage {
    let mut model = Model::new();
    model.enable_coverage();
    for index in 0..count {
        let program = generate(2026, index, config);
        run_case(&program.case("generated"), &program.options(), &mut [&mut model as &mut dyn Backend]);
    }
    model.coverage().cloned().expect("enabled")
}

#[test]
fn structured_programs_reach_every_applicable_rule() {
    for (profile, gas) in [
        (Profile::A, GasChoice::Auto),
        (Profile::B, GasChoice::BlockTable),
        (Profile::J, GasChoice::BlockTable),
        (Profile::J, GasChoice::Instruction),
    ] {
        let config = GenConfig { profile, gas, raw: false };
        let never = missing(&coverage_of(config, 20_000), &config);
        assert!(never.is_empty(), "profile {profile}, gas {gas:?}: never reached: {never:?}");
    }
}

#[test]
fn raw_programs_reach_every_applicable_rule() {
    let config = GenConfig { profile: Profile::A, gas: GasChoice::Auto, raw: true };
    let never = missing(&coverage_of(config, 20_000), &config);
    assert!(never.is_empty(), "raw: never reached: {never:?}");
}
