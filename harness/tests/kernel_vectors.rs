//! The kernel vectors of `vectors/kernel/`: each passes its expectations on the interpreter
//! (invariant checks on), two interpreters observe it identically, and its full observation
//! (every KOBS-1 record, rendered) matches its insta snapshot in `vectors/kernel/snapshots/`.
//! Review changes with `cargo insta review`.

use std::path::{Path, PathBuf};

use javm_engine::{Backend, Interpreter};
use javm_harness::kernel_vectors::{collect_kernel_vectors, load_kernel_vector};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/kernel")
}

fn interp() -> Box<dyn Backend> {
    Box::new(Interpreter::new())
}

#[test]
fn kernel_vectors_pass_and_match_their_snapshots() {
    let files = collect_kernel_vectors(&dir()).expect("vectors/kernel holds kernel vectors");
    assert!(files.len() >= 40, "only {} kernel vectors", files.len());
    let mut failed = Vec::new();
    for file in &files {
        let v = load_kernel_vector(file).unwrap_or_else(|e| panic!("{e}"));
        let run = v.run(&[("interp", &interp), ("interp-2", &interp)]);
        for f in &run.failures {
            failed.push(format!("{}: leg {} {}: {}", v.name, f.step, f.backend, f.difference));
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir().join("snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_input_file(file);
        settings.bind(|| insta::assert_snapshot!(v.name.clone(), run.observation));
    }
    assert!(failed.is_empty(), "{} failure(s):\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn malformed_kernel_vectors_are_reported_with_the_file() {
    let tmp = std::env::temp_dir().join(format!("javm-kernel-vectors-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let cases = [
        ("bad_json.json", "{\"kernel\": 1,", "malformed JSON"),
        ("unknown_op.json", r#"{"kernel": 1, "name": "u", "legs": [{"call": {}}]}"#, "unknown field `call`"),
        (
            "dangling.json",
            r#"{"kernel": 1, "name": "d", "legs": [{"invoke": {"instance": "nobody", "gas": 1}}]}"#,
            "legs[0].invoke.instance: dangling reference `nobody`",
        ),
        (
            "bad_image.json",
            r#"{"kernel": 1, "name": "b", "caps": {"i": {"image": {"code": ["load_imm r99, 1"]}}}, "legs": [{"resume": {}}]}"#,
            "caps.i.image.code: line 1",
        ),
    ];
    for (name, text, want) in cases {
        let path = tmp.join(name);
        std::fs::write(&path, text).unwrap();
        let e = load_kernel_vector(&path).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(e.contains(want), "{e:?} should contain {want:?}");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
