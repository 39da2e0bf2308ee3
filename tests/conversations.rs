//! The conversation tests under tests/conversations/ run through `carewell simulate` (the real
//! pipeline, in process, against the fakes), cover every step and transition of the shipped
//! flows, and a deliberately broken test fails with a readable account of what differed.

use std::path::Path;
use std::process::Command;

fn simulate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carewell"))
        .arg("simulate")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn every_conversation_test_passes_and_covers_every_step_and_transition() {
    let mut files: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conversations"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
    args.push("--coverage");
    let (ok, out) = simulate(&args);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{} passed, 0 failed", files.len())), "{out}");
    assert!(out.contains("booking      steps  13/13  100.0%   transitions  19/19  100.0%"), "{out}");
    assert!(out.contains("lead         steps  15/15  100.0%   transitions  20/20  100.0%"), "{out}");
    assert!(out.contains("cancel       steps   7/7   100.0%   transitions   7/7   100.0%"), "{out}");
    assert!(!out.contains("no test reaches") && !out.contains("no test takes"), "{out}");
}

#[test]
fn a_broken_conversation_test_fails_with_a_readable_diff() {
    let file = std::env::temp_dir().join(format!("carewell-broken-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &file,
        "name: expects the wrong question\nturns:\n  - send: book a full wash\n    expect:\n      says: [\"What is your favourite colour?\"]\n      step: booking/service\n",
    )
    .unwrap();
    let (ok, out) = simulate(&[file.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL") && out.contains("turn 1 (send \"book a full wash\")"), "{out}");
    assert!(out.contains("expected the bot to say \"What is your favourite colour?\""), "{out}");
    assert!(out.contains("expected step booking/service, at booking/name"), "{out}");
    assert!(
        out.contains("| Happy to book that for you! What's your first and last name?"),
        "what the bot really said is shown:\n{out}"
    );
}

#[test]
fn generated_shortest_paths_take_every_transition_and_pass() {
    let (ok, out) = simulate(&["--generate", "booking", "--coverage"]);
    assert!(ok, "{out}");
    assert!(out.contains("generated 19 conversation(s)") && out.contains("19 passed, 0 failed"), "{out}");
    assert!(out.contains("transitions  19/19  100.0%"), "{out}");
    // What the generated paths cannot reach is listed by name.
    assert!(out.contains("recovery paths not covered: rephrased, summary and choices, hand-off"), "{out}");
}
