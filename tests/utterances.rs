//! The deterministic extractors against utterances written the way customers write them
//! (`tests/utterances/booking.yaml`: typos, lower case, emoji, Arabic-Indic digits, several slots
//! in one line, names with particles, plates of many countries). Every value they read must be
//! the one a person would read: a wrong value fails the test. Values they leave unread are
//! counted per slot and printed as the accuracy table README reports (`cargo test --test
//! utterances -- --nocapture`).

use std::collections::BTreeMap;
use std::path::Path;

use carewell::engine::GuardResults;
use carewell::flow::FlowSet;
use carewell::flow::graph::{ChoiceOption, OptionSource};
use carewell::guard::extract;
use serde::Deserialize;

/// Wednesday 2 December 2026, 10:00 in Dubai.
const WEDNESDAY_10AM: i64 = 1_796_191_200;

#[derive(Deserialize)]
struct Case {
    #[serde(default)]
    ask: Option<String>,
    say: String,
    #[serde(default)]
    known: Vec<String>,
    expect: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Default)]
struct Tally {
    expected: usize,
    read: usize,
    wrong: usize,
}

fn catalog() -> Vec<ChoiceOption> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/catalog.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ChoiceOption {
            id: r["item_code"].as_str().unwrap().into(),
            title: r["item_name"].as_str().unwrap().into(),
            description: r["description"].as_str().map(String::from),
            synonyms: vec![],
            price: r["standard_rate"].as_f64(),
        })
        .collect()
}

#[test]
fn the_extractors_read_customers_words_and_never_a_wrong_value() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let flows = FlowSet::load(&root.join("flows")).unwrap();
    let flow = flows.flow("booking").unwrap().clone();
    let text = std::fs::read_to_string(root.join("tests/utterances/booking.yaml")).unwrap();
    let options = serde_saphyr::options! { strict_booleans: true };
    let cases: Vec<Case> = serde_saphyr::from_str_with_options(&text, options).unwrap();
    assert!(cases.len() >= 300, "the table holds {} utterances; it must hold at least 300", cases.len());

    let now = jiff::Timestamp::from_second(WEDNESDAY_10AM).unwrap().to_zoned(flows.business.time_zone.clone());
    let mut lookups = BTreeMap::new();
    lookups.insert("catalog".to_string(), catalog());
    lookups.insert("visit_slots".to_string(), extract::visit_slots(&now, &flows.business, None));
    let view = GuardResults { lookups, ..Default::default() };
    let options_of = |slot: &str| match flow.slots.get(slot).map(|s| &s.options) {
        Some(OptionSource::Static(items)) => items.clone(),
        Some(OptionSource::Lookup(name)) => view.lookups.get(name).cloned().unwrap_or_default(),
        _ => vec![],
    };
    // The collect steps in order, with their slots.
    let steps: Vec<(String, Vec<String>)> = flow
        .steps
        .values()
        .filter_map(|s| match &s.kind {
            carewell::flow::graph::StepKind::Collect { slots, .. } => Some((s.id.clone(), slots.clone())),
            _ => None,
        })
        .collect();

    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut wrong: Vec<String> = Vec::new();
    let mut missed: Vec<String> = Vec::new();
    for case in &cases {
        let (focus, filled): (Vec<String>, Vec<String>) = match &case.ask {
            None => (vec![], case.known.clone()),
            Some(ask) => {
                let at = steps.iter().position(|(id, _)| id == ask).unwrap_or_else(|| panic!("no step {ask}"));
                let mut filled: Vec<String> = steps[..at].iter().flat_map(|(_, s)| s.clone()).collect();
                filled.extend(case.known.iter().cloned());
                let focus = steps[at].1.iter().filter(|s| !filled.contains(s)).cloned().collect();
                (focus, filled)
            }
        };
        let others: Vec<String> =
            flow.slots.keys().filter(|s| !focus.contains(s) && !filled.contains(s)).cloned().collect();
        let found = extract::extract(&case.say, &flow, &focus, &others, &options_of, &flows.business, &now, None);
        let got: BTreeMap<String, String> = found.slots.iter().map(|(k, v)| (k.clone(), v.value.display())).collect();
        for (slot, want) in &case.expect {
            let t = tally.entry(slot.clone()).or_default();
            t.expected += 1;
            match got.get(slot) {
                Some(v) if v == want => t.read += 1,
                Some(v) => {
                    t.wrong += 1;
                    wrong.push(format!("{:?} ({}): {slot} = {v:?}, expected {want:?}", case.say, ask_of(case)));
                }
                None => missed.push(format!("{:?} ({}): {slot} not read, expected {want:?}", case.say, ask_of(case))),
            }
        }
        for (slot, v) in &got {
            if !case.expect.contains_key(slot) {
                tally.entry(slot.clone()).or_default().wrong += 1;
                wrong.push(format!("{:?} ({}): {slot} = {v:?}, expected nothing", case.say, ask_of(case)));
            }
        }
    }
    let mut report = String::from("| slot | utterances with it | read | not read | wrong |\n|---|---|---|---|---|\n");
    let (mut all_expected, mut all_read) = (0, 0);
    for (slot, t) in &tally {
        all_expected += t.expected;
        all_read += t.read;
        report.push_str(&format!(
            "| {slot} | {} | {} ({:.0}%) | {} | {} |\n",
            t.expected,
            t.read,
            100.0 * t.read as f64 / t.expected.max(1) as f64,
            t.expected - t.read - t.wrong.min(t.expected - t.read),
            t.wrong
        ));
    }
    report.push_str(&format!(
        "\n{} utterances; {all_read} of {all_expected} values read ({:.1}%); {} wrong\n",
        cases.len(),
        100.0 * all_read as f64 / all_expected.max(1) as f64,
        wrong.len()
    ));
    eprintln!("{report}\nNot read (asked again, never guessed):\n{}", missed.join("\n"));
    assert!(wrong.is_empty(), "values read wrong:\n{}\n\n{report}", wrong.join("\n"));
}

fn ask_of(case: &Case) -> String {
    case.ask.clone().map(|a| format!("asked {a}")).unwrap_or_else(|| "first message".into())
}
