//! Conversation tests generated from a flow: the shortest paths that together take every
//! transition, each with answers that fill the steps' slots (`simulate --generate`).

#[allow(unused_imports)]
use super::*;

/// A customer's answer filling a collect step's slots; `choose` picks a choice slot's option.
fn answer(flow: &crate::flow::graph::Flow, slots: &[String], choose: Option<&str>) -> Turn {
    use crate::flow::format::SlotType;
    use crate::flow::graph::OptionSource;
    let blank = Turn { send: None, press: None, location: None, image: None, review: None, expect: Expect::default() };
    let kinds: Vec<(SlotType, &crate::flow::graph::Slot)> =
        slots.iter().filter_map(|s| flow.slots.get(s)).map(|d| (d.kind, d)).collect();
    if let Some((_, slot)) = kinds.iter().find(|(k, _)| *k == SlotType::Choice) {
        let title = match (&slot.options, choose) {
            (OptionSource::Static(items), Some(id)) => {
                items.iter().find(|o| o.id == id).map(|o| o.title.clone()).unwrap_or_default()
            }
            (OptionSource::Static(items), None) => items.first().map(|o| o.title.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        return Turn { press: Some(title), ..blank };
    }
    if kinds.iter().any(|(k, _)| *k == SlotType::DateTime) {
        return Turn { press: Some(String::new()), ..blank };
    }
    let mut words = Vec::new();
    let has = |k: SlotType| kinds.iter().any(|(x, _)| *x == k);
    if has(SlotType::GivenName) {
        words.push("Jane");
    }
    if has(SlotType::FamilyName) {
        words.push("Doe");
    }
    if has(SlotType::CarMake) {
        words.push("Toyota");
    }
    if has(SlotType::CarModel) {
        words.push("Corolla");
    }
    if has(SlotType::Plate) {
        words.push("ABC-1234");
    }
    if has(SlotType::Address) {
        words.push("Villa 12, Al Wasl Road, Jumeirah");
    }
    if has(SlotType::Text) {
        words.push("a note");
    }
    Turn { send: Some(words.join(" ")), ..blank }
}

/// The shortest conversation taking each transition of `flow` (as XState's graph utilities do for
/// state machines): a path of transitions from the start found breadth-first, turned into the
/// customer's answers that take it, ending with the step it must reach.
pub fn generate(flow: &crate::flow::graph::Flow) -> Vec<ConversationTest> {
    use crate::flow::graph::{Condition, StepKind};
    use std::collections::{HashMap, VecDeque};
    // (from, to, how): how = "" (slots filled), "=id" (branch), "!" (otherwise), "Confirm", "Cancel", "Change:<title>", "ok", "failed".
    let mut edges: Vec<(String, String, String)> = Vec::new();
    for s in flow.steps.values() {
        match &s.kind {
            StepKind::Collect { branches, next, .. } => {
                for b in branches {
                    if let Condition::Equals { value, .. } = &b.when {
                        edges.push((s.id.clone(), b.goto.clone(), format!("={value}")));
                    }
                }
                edges.push((s.id.clone(), next.clone(), if branches.is_empty() { String::new() } else { "!".into() }));
            }
            StepKind::Confirm { on_confirm, on_cancel, change, .. } => {
                edges.push((s.id.clone(), on_confirm.clone(), "Confirm".into()));
                edges.push((s.id.clone(), on_cancel.clone(), "Cancel".into()));
                for c in change {
                    let title = flow.step(c).map(|x| x.title.clone()).unwrap_or_default();
                    edges.push((s.id.clone(), c.clone(), format!("Change:{title}")));
                }
            }
            StepKind::Erp { on_success, on_failure, .. } => {
                edges.push((s.id.clone(), on_success.clone(), "ok".into()));
                edges.push((s.id.clone(), on_failure.clone(), "failed".into()));
            }
            StepKind::End { .. } => {}
        }
    }
    // Shortest path of edges to each step (breadth-first), preferring plain transitions.
    let start = flow.start_step().to_string();
    let mut path_to: HashMap<String, Vec<usize>> = HashMap::from([(start.clone(), vec![])]);
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(step) = queue.pop_front() {
        for (i, (from, to, how)) in edges.iter().enumerate() {
            if *from == step && !path_to.contains_key(to) && !how.starts_with("Change:") && how != "failed" {
                let mut p = path_to[&step].clone();
                p.push(i);
                path_to.insert(to.clone(), p);
                queue.push_back(to.clone());
            }
        }
    }
    let keyword = flow.keywords.first().cloned().unwrap_or_else(|| "hello".into());
    let mut tests = Vec::new();
    for (i, (from, to, how)) in edges.iter().enumerate() {
        let Some(prefix) = path_to.get(from) else { continue };
        let mut path = prefix.clone();
        path.push(i);
        let mut turns = vec![Turn {
            send: Some(keyword.clone()),
            press: None,
            location: None,
            image: None,
            review: None,
            expect: Expect::default(),
        }];
        let mut erp_failures = 0;
        let mut k = 0;
        while k < path.len() {
            let (f, t, h) = &edges[path[k]];
            match flow.step(f).map(|s| &s.kind) {
                // The WhatsApp number fills it: nothing to answer.
                Some(StepKind::Collect { .. }) if channel_filled(flow, f) => {}
                Some(StepKind::Collect { slots, .. }) => {
                    let choose = h.strip_prefix('=').map(String::from).or_else(|| {
                        // "otherwise": an option no branch asks for.
                        (h == "!").then(|| {
                            let taken: Vec<String> = edges
                                .iter()
                                .filter(|(ff, _, hh)| ff == f && hh.starts_with('='))
                                .map(|(_, _, hh)| hh[1..].to_string())
                                .collect();
                            match flow
                                .slots
                                .get(slots.first().map(String::as_str).unwrap_or_default())
                                .map(|s| &s.options)
                            {
                                Some(crate::flow::graph::OptionSource::Static(items)) => items
                                    .iter()
                                    .find(|o| !taken.contains(&o.id))
                                    .map(|o| o.id.clone())
                                    .unwrap_or_default(),
                                _ => String::new(),
                            }
                        })
                    });
                    turns.push(answer(flow, slots, choose.as_deref()));
                }
                Some(StepKind::Confirm { .. }) => {
                    let blank = Turn {
                        send: None,
                        press: None,
                        location: None,
                        image: None,
                        review: None,
                        expect: Expect::default(),
                    };
                    if let Some(title) = h.strip_prefix("Change:") {
                        turns.push(Turn { press: Some("Change".into()), ..blank.clone() });
                        turns.push(Turn { press: Some(title.to_string()), ..blank });
                        // The changed step asks again; answer it and come back to the summary.
                        if let Some(StepKind::Collect { slots, .. }) = flow.step(t).map(|s| &s.kind) {
                            turns.push(answer(flow, slots, None));
                        }
                    } else {
                        turns.push(Turn { press: Some(h.clone()), ..blank });
                    }
                }
                Some(StepKind::Erp { .. }) if h == "failed" => erp_failures = 100,
                _ => {}
            }
            k += 1;
        }
        // A step the WhatsApp number fills is passed through: the journey stops at the next one.
        let stop = match edges.iter().find(|(ff, _, _)| ff == to && channel_filled(flow, to)) {
            Some((_, next, _)) => next,
            None => to,
        };
        let target_is_end = matches!(flow.step(stop).map(|s| &s.kind), Some(StepKind::End { .. }));
        let target_is_erp = matches!(flow.step(stop).map(|s| &s.kind), Some(StepKind::Erp { .. }));
        let expected = if target_is_end || target_is_erp {
            "-".to_string()
        } else if how.starts_with("Change:") {
            // Answering the changed step leads back to the summary.
            format!("{}/{from}", flow.id)
        } else {
            format!("{}/{stop}", flow.id)
        };
        if let Some(last) = turns.last_mut() {
            last.expect.step = Some(expected);
        }
        let label = if how.is_empty() { "filled".to_string() } else { how.clone() };
        tests.push(ConversationTest {
            name: format!("{from} → {to} ({label})"),
            customer: format!("97150888{:04}", i),
            llm: LlmSetting::Absent,
            pinned: IndexMap::new(),
            erp_failures,
            erp_sample: true,
            turns,
        });
    }
    tests
}

/// Whether the step only collects phone slots, which a WhatsApp customer's own number fills.
fn channel_filled(flow: &crate::flow::graph::Flow, step: &str) -> bool {
    use crate::flow::graph::StepKind;
    match flow.step(step).map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => {
            slots.iter().all(|n| flow.slots.get(n).is_some_and(|d| d.kind == crate::flow::format::SlotType::Phone))
        }
        _ => false,
    }
}
