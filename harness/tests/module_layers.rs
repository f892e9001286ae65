//! The harness's modules form layers: no module imports, directly or through others, a
//! module that imports it. A cycle fails here with its path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `crate::NAME` references per top-level module of `src/`, comment lines skipped.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.components().next().unwrap().as_os_str().to_string_lossy().to_string();
            let module = first.trim_end_matches(".rs").to_string();
            if matches!(module.as_str(), "lib" | "main") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String =
                        line[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !name.is_empty() && name != module {
                        edges.entry(module.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    edges
}

/// A path from `from` back to itself, if any.
fn cycle_through(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut queue = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop() {
        for next in edges.get(path.last().unwrap()).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                queue.push(longer);
            }
        }
    }
    None
}

#[test]
fn harness_modules_import_each_other_without_cycles() {
    let edges = imports();
    assert!(edges.contains_key("run") && edges.contains_key("commands"), "the scan found the modules");
    let cycles: Vec<String> = edges.keys().filter_map(|m| cycle_through(&edges, m)).map(|c| c.join(" -> ")).collect();
    assert!(cycles.is_empty(), "import cycles between harness modules:\n{}", cycles.join("\n"));
}

#[test]
fn the_scan_sees_a_cycle() {
    let mut edges = imports();
    edges.entry("run".into()).or_default().insert("commands".into());
    assert!(cycle_through(&edges, "run").is_some());
}
