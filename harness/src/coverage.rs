//! Rule coverage of a `diff` run: how often each rule of PVMSPEC-1 fired (counted by the
//! reference model as it applies them), which rules were never reached, and which cannot be
//! reached in the run's configuration and why.

use javm_engine::Profile;
use javm_model::coverage::{Coverage, Rule, RULES};

use crate::generator::GenConfig;
use crate::run::GasChoice;

/// Why a rule cannot fire in a configuration, if it cannot.
pub fn not_applicable(rule: Rule, config: &GenConfig) -> Option<&'static str> {
    let p = config.profile;
    let gas = config.gas;
    match rule {
        Rule::ExitEcall if p != Profile::J => Some("ecall exists only in profile J"),
        Rule::GasChargeAfterHostCall if p != Profile::J => Some("only profile J ends a block at ecalli"),
        Rule::GasChargeAfterHostCall if gas == GasChoice::Instruction => {
            Some("the instruction gas model charges every instruction")
        }
        Rule::Sbrk if p == Profile::B => Some("profile B has no sbrk"),
        Rule::BranchStrictFallthrough | Rule::BranchStrictTarget if p != Profile::B => {
            Some("the both-successors rule is profile B's")
        }
        Rule::BranchNotTakenInvalid if p == Profile::B => Some("profile B panics on any invalid successor"),
        Rule::GasNegative if gas != GasChoice::Instruction => Some("only the instruction gas model goes negative"),
        Rule::GasBlockCharge | Rule::GasMidBlockStart if gas == GasChoice::Instruction => {
            Some("the instruction gas model has no block charge")
        }
        Rule::GasTableNoEntry if gas != GasChoice::BlockTable => Some("only the table gas model has entries"),
        Rule::DjumpValid | Rule::DjumpLastEntry | Rule::BlobZeroEntrySizeTable if config.raw => {
            Some("random bytes seldom aim a dynamic jump at a valid entry; structured mode does")
        }
        _ => None,
    }
}

/// The coverage table as text: every rule with its count, then the rules never reached.
pub fn render(coverage: &Coverage, config: &GenConfig, programs: u64) -> String {
    let mut out = format!("rule coverage over {programs} programs (counted by the reference model):\n");
    out += &format!("  {:<44} {:>12}  {}\n", "rule", "times", "spec");
    let mut missing = Vec::new();
    let mut inapplicable = Vec::new();
    for &(rule, name, section, construct) in RULES {
        let n = coverage.count(rule);
        let note = match (n, not_applicable(rule, config)) {
            (0, Some(why)) => {
                inapplicable.push((name, why));
                "  (not applicable)"
            }
            (0, None) => {
                missing.push((name, construct));
                "  NEVER REACHED"
            }
            _ => "",
        };
        out += &format!("  {name:<44} {n:>12}  {section}{note}\n");
    }
    let reached = RULES.len() - missing.len() - inapplicable.len();
    out += &format!(
        "{reached} of {} applicable rules reached; {} not applicable here\n",
        RULES.len() - inapplicable.len(),
        inapplicable.len()
    );
    for (name, why) in &inapplicable {
        out += &format!("  not applicable: {name}: {why}\n");
    }
    for (name, construct) in &missing {
        out += &format!("  never reached: {name} (construct: {construct})\n");
    }
    out
}

/// The rules never reached although applicable.
pub fn missing(coverage: &Coverage, config: &GenConfig) -> Vec<&'static str> {
    RULES
        .iter()
        .filter(|&&(rule, ..)| coverage.count(rule) == 0 && not_applicable(rule, config).is_none())
        .map(|&(_, name, ..)| name)
        .collect()
}
