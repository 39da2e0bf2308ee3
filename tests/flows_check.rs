//! `carewell flows check` on the shipped flows and on deliberately broken copies.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn check(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carewell")).args(["flows", "check"]).arg(dir).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A copy of the project's flows, prompts and fixtures; returns its flows/.
fn copy_project() -> PathBuf {
    common::copy_project().join("flows")
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path).unwrap().lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn shipped_flows_pass() {
    let (ok, out) = check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows"));
    assert!(ok, "{out}");
    assert!(out.contains("booking v1"), "{out}");
}

#[test]
fn a_broken_target_and_slot_are_reported_with_file_line_col() {
    let flows = copy_project();
    let file = flows.join("booking.flow.yaml");
    edit(&file, "next: plan\n", "next: plann\n");
    edit(&file, "collect: [car_make, car_model, car_plate]", "collect: [car_make, car_model, car_plates]");
    let (ok, out) = check(&flows);
    assert!(!ok, "a broken flow must fail: {out}");
    let target_line = line_of(&file, "next: plann");
    assert!(out.contains(&format!("flows/booking.flow.yaml:{target_line}:11: flow.unknown_step")), "{out}");
    let slot_line = line_of(&file, "car_plates");
    assert!(
        out.contains(&format!("flows/booking.flow.yaml:{slot_line}:")) && out.contains("flow.unknown_slot"),
        "{out}"
    );
    assert!(out.contains("\"car_plates\", which is not declared under `slots`"), "{out}");
}

#[test]
fn yaml_errors_unknown_keys_unreachable_steps_and_bad_times_are_reported() {
    let flows = copy_project();
    let file = flows.join("booking.flow.yaml");
    edit(&file, "  booking_failed:\n", "  orphan:\n    end: \"never reached\"\n\n  booking_failed:\n");
    edit(&file, "title: Book a car-care service", "title: Book a car-care service\ncolour: blue");
    edit(&flows.join("business.yaml"), "time_zone: Asia/Dubai", "time_zone: Mars/Olympus");
    let (ok, out) = check(&flows);
    assert!(!ok);
    assert!(out.contains("flow.parse") && out.contains("unknown field `colour`"), "{out}");
    assert!(out.contains(&format!("flows/business.yaml:{}:", line_of(&flows.join("business.yaml"), "Mars"))), "{out}");
    assert!(out.contains("unknown time zone \"Mars/Olympus\""), "{out}");

    // With the YAML fixed, the graph checks run.
    edit(&file, "\ncolour: blue", "");
    let (_, out) = check(&flows);
    assert!(out.contains("flow.unreachable_step") && out.contains("step \"orphan\""), "{out}");
}

#[test]
fn an_erp_write_that_could_be_repeated_is_refused() {
    let flows = copy_project();
    edit(&flows.join("erp.yaml"), "        idempotency_field: wa_idempotency_key\n", "");
    let (ok, out) = check(&flows);
    assert!(!ok);
    assert!(out.contains("flows/erp.yaml:") && out.contains("a repeated POST would create a second document"), "{out}");
}

/// Each lint, one broken copy at a time, with the code and the place it names.
#[test]
fn every_lint_reports_its_code_and_place() {
    let cases: Vec<(&str, &str, &str, &str, &str)> = vec![
        // (file, from, to, code, words in the message)
        (
            "booking.flow.yaml",
            "  booked:\n    end:",
            "  booked:\n    next: booked\n    collect: [first_name]\n    ask: \"again?\"\n    end:",
            "flow.step_kind",
            "exactly one of",
        ),
        (
            "booking.flow.yaml",
            "    collect: [frequency]\n    next: car",
            "    collect: [frequency]\n    next: frequency",
            "flow.dead_end",
            "can never reach an `end`",
        ),
        (
            "booking.flow.yaml",
            "    collect: [service]",
            "    collect: [service, first_name]",
            "flow.duplicate_collect",
            "may already be filled",
        ),
        (
            "booking.flow.yaml",
            "menu_title: Book a service",
            "menu_title: Book a car-care service today",
            "flow.limit",
            "at most 20",
        ),
        (
            "booking.flow.yaml",
            "{ id: one_time, title: One-time,",
            "{ id: one_time, title: A one-time visit to your door,",
            "flow.limit",
            "reply button",
        ),
        (
            "erp.yaml",
            "            qty: { type: integer, minimum: 1 }",
            "            qty: { type: integer, minimum: 2 }",
            "flow.erp_body_invalid",
            "fails its schema at /items/0/qty",
        ),
        (
            "booking.flow.yaml",
            "    ask: \"Which service would you like?\"",
            "    ask: \"Which service would you like for your {car_model}?\"",
            "flow.placeholder_may_be_empty",
            "{car_model}",
        ),
        ("booking.flow.yaml", "      on_failure: booking_failed\n", "", "flow.parse", "on_failure"),
        (
            "lead.flow.yaml",
            "      - when: { slot: cars, at_least: 10 }",
            "      - when: { slot: company, at_least: 10 }",
            "flow.condition",
            "compare a number or amount slot; \"company\" is not one",
        ),
        (
            "lead.flow.yaml",
            "      - when: { slot: cars, at_least: 10 }",
            "      - when: { slot: cars, at_least: 10, equals: \"10\" }",
            "flow.condition",
            "exactly one of `equals`, `not_equals`, `at_least` or `below`",
        ),
        (
            "lead.flow.yaml",
            "    min: 1\n    max: 5000",
            "    min: 50\n    max: 5",
            "flow.slot",
            "`min` (50) is larger than `max` (5)",
        ),
        (
            "lead.flow.yaml",
            "  area: { type: text, label: Area }",
            "  area: { type: text, label: Area, units: [km] }",
            "flow.slot",
            "belong on a number slot",
        ),
        ("erp.yaml", "        find_only: true\n", "", "flow.erp", "give it a `body` and the `schema`"),
        (
            "booking.flow.yaml",
            "      - { title: Cancel, start: cancel, fill: booking }",
            "      - { title: Cancel, start: cancell, fill: booking }",
            "flow.visit",
            "there must be a flow \"cancell\" with a choice slot \"booking\"",
        ),
        ("booking.flow.yaml", "  books: visit_time", "  books: address", "flow.visit", "must name a DateTime slot"),
        (
            "booking.flow.yaml",
            "    text: \"Hi {first_name}! A reminder",
            "    text: \"Hi {nickname}! A reminder",
            "flow.placeholder",
            "{nickname} is not a slot of this flow",
        ),
        (
            "booking.flow.yaml",
            "      - { title: Confirm, say:",
            "      - { title: Maybe later, say: \"ok\" }\n      - { title: Confirm, say:",
            "flow.visit",
            "give 1 to 3 answers",
        ),
        (
            "erp.yaml",
            "        find_only: true\n",
            "        find_only: true\n        body: { customer_name: x }\n",
            "flow.erp",
            "a `find_only` document is looked up by `find_by` and never written",
        ),
    ];
    for (file, from, to, code, words) in cases {
        let flows = copy_project();
        edit(&flows.join(file), from, to);
        let (ok, out) = check(&flows);
        assert!(!ok, "{code}: the broken copy must fail\n{out}");
        assert!(out.contains(code) && out.contains(words), "{code} / {words:?} expected in:\n{out}");
        let located = out.lines().filter(|l| l.contains(code)).all(|l| {
            let rest = l.trim().split_once(": ").map(|(place, _)| place.to_string()).unwrap_or_default();
            let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
            parts.len() == 3 && parts[0].parse::<u64>().is_ok() && parts[1].parse::<u64>().is_ok()
        });
        assert!(located, "{code} is reported as file:line:col:\n{out}");
    }
    // A prompt that uses a placeholder the LLM guard does not fill.
    let flows = copy_project();
    let prompt = flows.parent().unwrap().join("prompts/booking_extract.md");
    std::fs::write(&prompt, "You help {{business}} customers. Their loyalty tier: {{tier}}.").unwrap();
    let (ok, out) = check(&flows);
    assert!(!ok && out.contains("flow.prompt_placeholder") && out.contains("{{tier}}"), "{out}");
}

/// Every ERP body schema of every shipped action rejects deliberately wrong bodies: an empty one,
/// and one whose fields all have the wrong type.
#[test]
fn every_erp_body_schema_rejects_a_wrong_body() {
    use carewell::flow::erp_actions::validate;
    use serde_json::{Value, json};
    let set = carewell::flow::FlowSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).unwrap();
    assert!(set.actions.len() >= 2, "booking and complaint actions");
    for (name, action) in &set.actions {
        for doc in action.documents.iter().filter(|d| !d.find_only) {
            assert!(!validate(&doc.schema, &json!({})).is_empty(), "{name}/{}: an empty body must fail", doc.alias);
            let wrong: serde_json::Map<String, Value> = doc.schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| (k.clone(), json!({"not": "this"})))
                .collect();
            let errors = validate(&doc.schema, &Value::Object(wrong));
            assert!(!errors.is_empty(), "{name}/{}: wrong types must fail", doc.alias);
            assert!(errors.iter().all(|(at, _)| at.starts_with('/')), "errors carry JSON pointers: {errors:?}");
        }
    }
}
