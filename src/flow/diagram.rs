//! Diagrams of a compiled flow, as Mermaid (renders in GitHub and most Markdown viewers) or
//! Graphviz DOT: steps, transitions with their guards, and the stuck-state recovery edges in
//! another style.

use super::graph::{Condition, Flow, StepKind};

fn label(flow: &Flow, id: &str) -> String {
    let Some(step) = flow.step(id) else { return id.to_string() };
    match &step.kind {
        StepKind::Collect { slots, .. } => format!("{id}\\nasks {}", slots.join(", ")),
        StepKind::Confirm { .. } => format!("{id}\\nsummary"),
        StepKind::Erp { action, .. } => format!("{id}\\nERP {action}"),
        StepKind::End { handoff: true, .. } => format!("{id}\\nend, to a person"),
        StepKind::End { .. } => format!("{id}\\nend"),
    }
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::Equals { slot, value } => format!("{slot} = {value}"),
        Condition::NotEquals { slot, value } => format!("{slot} ≠ {value}"),
        Condition::AtLeast { slot, value } => format!("{slot} ≥ {value}"),
        Condition::Below { slot, value } => format!("{slot} < {value}"),
        Condition::Emotion(e) => {
            format!("customer {}", e.iter().map(|e| format!("{e:?}").to_lowercase()).collect::<Vec<_>>().join(" or "))
        }
        Condition::Stage(s) => {
            format!("stage {}", s.iter().map(|e| format!("{e:?}").to_lowercase()).collect::<Vec<_>>().join(" or "))
        }
    }
}

/// The flow's edges: (from, to, label, whether it is a recovery edge).
pub fn edges(flow: &Flow) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for step in flow.steps.values() {
        match &step.kind {
            StepKind::Collect { branches, next, if_none, .. } => {
                for b in branches {
                    out.push((step.id.clone(), b.goto.clone(), condition(&b.when), false));
                }
                if let Some(none) = if_none {
                    out.push((step.id.clone(), none.clone(), "none found".into(), false));
                }
                out.push((
                    step.id.clone(),
                    next.clone(),
                    if branches.is_empty() { "filled".into() } else { "otherwise".into() },
                    false,
                ));
                out.push((step.id.clone(), "handoff".into(), format!("stuck {}×", flow.recovery.handoff_after), true));
            }
            StepKind::Confirm { on_confirm, on_cancel, change, .. } => {
                out.push((step.id.clone(), on_confirm.clone(), "Confirm".into(), false));
                out.push((step.id.clone(), on_cancel.clone(), "Cancel".into(), false));
                for c in change {
                    out.push((step.id.clone(), c.clone(), "Change".into(), true));
                }
            }
            StepKind::Erp { on_success, on_failure, .. } => {
                out.push((step.id.clone(), on_success.clone(), "ERP ok".into(), false));
                out.push((step.id.clone(), on_failure.clone(), "ERP failed".into(), false));
                if visit_label(flow).is_some() {
                    out.push((on_success.clone(), "visit".into(), "visit booked".into(), true));
                }
            }
            StepKind::End { .. } => {}
        }
    }
    out
}

/// What follows a visit this flow books (its reminder and its answers, its rating), for the
/// diagrams' `visit` node; `None` when the flow books none or nothing follows.
fn visit_label(flow: &Flow) -> Option<String> {
    let v = flow.visit.as_ref()?;
    let mut parts = Vec::new();
    if let Some(r) = &v.reminder {
        let answers: Vec<String> = r
            .answers
            .iter()
            .map(|a| match &a.start {
                Some((f, _)) => format!("{} → {f}", a.title),
                None => a.title.clone(),
            })
            .collect();
        parts.push(format!("reminder {}h before: {}", r.before_seconds / 3600, answers.join(" · ")));
    }
    if let Some(r) = &v.rating {
        parts.push(format!("rating 1–5 {}h after (below {}: a person offered)", r.after_seconds / 3600, r.low_below));
    }
    (!parts.is_empty()).then(|| parts.join("\\n"))
}

/// The flow as a Mermaid flowchart.
pub fn mermaid(flow: &Flow) -> String {
    let mut out = format!(
        "flowchart TD\n    %% {} v{} ({})\n    start(( )) --> {}\n",
        flow.id,
        flow.version,
        flow.file,
        flow.start_step()
    );
    for step in flow.steps.values() {
        let text = label(flow, &step.id).replace("\\n", "<br/>");
        let node = match step.kind {
            StepKind::End { .. } => format!("    {}([\"{text}\"])\n", step.id),
            StepKind::Confirm { .. } => format!("    {}{{\"{text}\"}}\n", step.id),
            StepKind::Erp { .. } => format!("    {}[[\"{text}\"]]\n", step.id),
            StepKind::Collect { .. } => format!("    {}[\"{text}\"]\n", step.id),
        };
        out.push_str(&node);
    }
    out.push_str("    handoff>\"person takes over\"]\n");
    if let Some(v) = visit_label(flow) {
        out.push_str(&format!("    visit[/\"{}\"/]\n", v.replace("\\n", "<br/>")));
    }
    for (from, to, label, recovery) in edges(flow) {
        let arrow = if recovery { "-.->" } else { "-->" };
        out.push_str(&format!("    {from} {arrow}|{}| {to}\n", label.replace('|', "/")));
    }
    out.push_str("    classDef recovery stroke-dasharray: 4 4;\n    class handoff recovery;\n");
    out
}

/// The flow as Graphviz DOT.
pub fn dot(flow: &Flow) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  label=\"{} v{} ({})\";\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  start [shape=point];\n  start -> \"{}\";\n",
        flow.id,
        flow.id,
        flow.version,
        flow.file,
        flow.start_step()
    );
    for step in flow.steps.values() {
        let shape = match step.kind {
            StepKind::End { .. } => "doublecircle",
            StepKind::Confirm { .. } => "diamond",
            StepKind::Erp { .. } => "component",
            StepKind::Collect { .. } => "box",
        };
        out.push_str(&format!("  \"{}\" [label=\"{}\", shape={shape}];\n", step.id, label(flow, &step.id)));
    }
    out.push_str("  \"handoff\" [label=\"person takes over\", shape=cds, style=dashed];\n");
    if let Some(v) = visit_label(flow) {
        out.push_str(&format!("  \"visit\" [label=\"{v}\", shape=note, style=dashed];\n"));
    }
    for (from, to, label, recovery) in edges(flow) {
        let style = if recovery { ", style=dashed, color=gray40" } else { "" };
        out.push_str(&format!("  \"{from}\" -> \"{to}\" [label=\"{label}\"{style}];\n"));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_booking_flow_draws_every_step_and_transition() {
        let set = crate::flow::FlowSet::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).unwrap();
        let flow = set.flow("booking").unwrap();
        let m = mermaid(flow);
        for step in flow.steps.keys() {
            assert!(m.contains(&format!("    {step}")), "{step} missing from\n{m}");
        }
        assert!(m.contains("plan -->|plan = subscription| frequency"), "{m}");
        assert!(m.contains("-.->|stuck 4×| handoff"), "recovery edges are dotted: {m}");
        let d = dot(flow);
        assert!(d.contains("\"summary\" -> \"submit\" [label=\"Confirm\"]"), "{d}");
        assert!(d.contains("style=dashed"), "{d}");
        // What follows the booked visit: the reminder's answers and the rating.
        assert!(m.contains("booked -.->|visit booked| visit"), "{m}");
        assert!(m.contains("reminder 24h before: Confirm · Reschedule → reschedule · Cancel → cancel"), "{m}");
        assert!(d.contains("rating 1–5 3h after"), "{d}");
    }
}
