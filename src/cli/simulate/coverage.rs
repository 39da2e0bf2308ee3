//! How much of each flow a set of conversation tests walked: the steps and transitions taken.

use std::collections::BTreeSet;

/// Step and transition coverage of one flow across every test's turn records.
pub(super) fn coverage(flows: &crate::flow::FlowSet, records: &[crate::record::TurnRecord]) -> (String, bool) {
    let mut out = String::new();
    let mut complete = true;
    for flow in flows.flows.values() {
        let mut steps: BTreeSet<String> = BTreeSet::new();
        let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
        let mut outcomes: BTreeSet<String> = BTreeSet::new();
        let mut rungs: BTreeSet<String> = BTreeSet::new();
        for r in records {
            let this_flow = r.journey_flow.as_ref().is_some_and(|f| f.id == flow.id);
            for t in &r.trace {
                let from_file = t.source.as_ref().is_some_and(|s| s.file == flow.file);
                match t.what.as_str() {
                    "start" if t.detail.starts_with(&format!("journey {} ", flow.id)) => {
                        steps.insert(flow.start_step().to_string());
                    }
                    "transition" if this_flow || from_file => {
                        if let Some((a, b)) = t.edge.clone().filter(|(_, b)| flow.step(b).is_some()) {
                            if flow.step(&a).is_some() {
                                steps.insert(a.clone());
                            }
                            steps.insert(b.clone());
                            edges.insert((a, b));
                        }
                    }
                    "stuck" if this_flow => {
                        rungs.insert(t.detail.rsplit(": ").next().unwrap_or_default().to_string());
                    }
                    "handoff" if this_flow => {
                        rungs.insert("hand-off".into());
                    }
                    _ => {}
                }
            }
            if this_flow || r.plan.flow.as_deref() == Some(flow.id.as_str()) {
                for run in &r.guards.runs {
                    outcomes.insert(format!("{} {}", run.guard, run.outcome));
                }
            }
        }
        let all_edges: Vec<(String, String)> = flow
            .steps
            .values()
            .flat_map(|s| match &s.kind {
                crate::flow::graph::StepKind::Confirm { on_confirm, on_cancel, change, .. } => {
                    let mut v = vec![(s.id.clone(), on_confirm.clone()), (s.id.clone(), on_cancel.clone())];
                    v.extend(change.iter().map(|c| ("(change)".to_string(), c.clone())));
                    v
                }
                _ => s.targets().into_iter().map(|t| (s.id.clone(), t.to_string())).collect(),
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let missing_steps: Vec<&String> = flow.steps.keys().filter(|k| !steps.contains(*k)).collect();
        let missing_edges: Vec<String> =
            all_edges.iter().filter(|e| !edges.contains(e)).map(|(a, b)| format!("{a} → {b}")).collect();
        let pct = |have: usize, all: usize| if all == 0 { 100.0 } else { 100.0 * have as f64 / all as f64 };
        out.push_str(&format!(
            "{:<12} steps {:>3}/{:<3} {:>5.1}%   transitions {:>3}/{:<3} {:>5.1}%\n",
            flow.id,
            flow.steps.len() - missing_steps.len(),
            flow.steps.len(),
            pct(flow.steps.len() - missing_steps.len(), flow.steps.len()),
            all_edges.len() - missing_edges.len(),
            all_edges.len(),
            pct(all_edges.len() - missing_edges.len(), all_edges.len())
        ));
        if !missing_steps.is_empty() {
            complete = false;
            out.push_str(&format!(
                "  steps no test reaches: {}\n",
                missing_steps.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        if !missing_edges.is_empty() {
            complete = false;
            out.push_str(&format!("  transitions no test takes: {}\n", missing_edges.join(", ")));
        }
        let wanted_outcomes =
            ["parser ok", "parser guard.unsettled", "llm ok", "llm guard.ungrounded", "llm llm.transport"];
        let missing_outcomes: Vec<&str> = wanted_outcomes.iter().copied().filter(|o| !outcomes.contains(*o)).collect();
        out.push_str(&format!("  guard outcomes seen: {}\n", outcomes.iter().cloned().collect::<Vec<_>>().join(", ")));
        if !missing_outcomes.is_empty() {
            out.push_str(&format!("  guard outcomes not covered: {}\n", missing_outcomes.join(", ")));
        }
        let ladder = ["rephrased", "summary and choices", "hand-off"];
        let missing_rungs: Vec<&str> = ladder.iter().copied().filter(|r| !rungs.contains(*r)).collect();
        out.push_str(&format!("  recovery rungs seen: {}\n", rungs.iter().cloned().collect::<Vec<_>>().join(", ")));
        if !missing_rungs.is_empty() {
            out.push_str(&format!("  recovery paths not covered: {}\n", missing_rungs.join(", ")));
        }
    }
    (out, complete)
}
