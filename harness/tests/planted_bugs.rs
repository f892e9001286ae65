//! Every planted bug of `scripts/mutants.txt` still applies to the tree: the text it replaces
//! stands exactly once in its file, so `scripts/mutants.sh` measures what it says it does.
//! A change that moves such code must update the bug with it.

use std::path::Path;

#[test]
fn every_planted_bug_still_applies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let list = std::fs::read_to_string(root.join("scripts/mutants.txt")).unwrap();
    let mut stale = Vec::new();
    let mut count = 0;
    for block in list.split("\nid ").skip(1) {
        let lines: Vec<&str> = block.lines().collect();
        let id = lines[0].trim();
        let file = lines.iter().find_map(|l| l.strip_prefix("file ")).unwrap_or_else(|| panic!("{id}: no file line"));
        let find: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("- ")).collect();
        assert!(!find.is_empty(), "{id}: no text to replace");
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{id}: {file}: {e}"));
        let times = text.matches(&find.join("\n")).count();
        if times != 1 {
            stale.push(format!("{id} ({file}): found {times} times"));
        }
        count += 1;
    }
    assert!(count >= 40, "only {count} planted bugs read");
    assert!(stale.is_empty(), "planted bugs that no longer apply:\n{}", stale.join("\n"));
}
