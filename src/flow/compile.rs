//! Compiling one parsed flow file into a [`Flow`]: every reference resolved and checked (steps,
//! slots, placeholders, ERP actions, branches, the recovery ladder), every problem reported with
//! its file, line and column.

use super::analysis::{definitely_filled, sample_context};
#[allow(unused_imports)]
use super::*;

/// The smallest number a `number` slot takes unless it says `min`.
const DEFAULT_NUMBER_MIN: u64 = 1;
/// The largest number a `number` slot takes unless it says `max`.
const DEFAULT_NUMBER_MAX: u64 = 100_000;

/// Placeholders every text may use besides slot names.
const BUILTIN_PLACEHOLDERS: &[&str] = &["business", "summary", "erp.reference", "erp.error"];

/// Compiles one parsed flow file, pushing every problem; returns the flow only when it has none.
pub fn compile_flow(
    file: &str,
    f: FlowFile,
    prompts: &HashMap<String, String>,
    actions: &IndexMap<String, ActionDecl>,
    known_lookups: &[String],
    problems: &mut Vec<FlowProblem>,
) -> Option<Flow> {
    let before = problems.len();
    let id_ok =
        !f.id.value.is_empty() && f.id.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !id_ok {
        problems.push(at(
            file,
            &f.id,
            "flow.id",
            format!("flow id {:?} must be lowercase letters, digits and _", f.id.value),
        ));
    }
    if let Some(t) = &f.start.menu_title {
        if t.value.chars().count() > MAX_BUTTON_TITLE {
            problems.push(at(
                file,
                t,
                "flow.limit",
                format!(
                    "menu_title {:?} has {} characters; WhatsApp reply buttons allow at most {MAX_BUTTON_TITLE}",
                    t.value,
                    t.value.chars().count()
                ),
            ));
        }
    }

    let mut slots = IndexMap::new();
    for (name, decl) in &f.slots {
        let options = match &decl.value.options {
            Some(o) => {
                if let Some(lookup) = &o.lookup {
                    if !known_lookups.contains(&lookup.value) {
                        problems.push(at(
                            file,
                            lookup,
                            "flow.unknown_lookup",
                            format!(
                                "slot {name:?}: unknown lookup {:?}; known lookups: {}",
                                lookup.value,
                                known_lookups.join(", ")
                            ),
                        ));
                    }
                    OptionSource::Lookup(lookup.value.clone())
                } else {
                    let limit = if o.items.len() <= MAX_BUTTONS { MAX_BUTTON_TITLE } else { MAX_ROW_TITLE };
                    if o.items.len() > MAX_LIST_ROWS {
                        problems.push(at(
                            file,
                            decl,
                            "flow.limit",
                            format!(
                                "slot {name:?} has {} options; a WhatsApp list shows at most {MAX_LIST_ROWS}",
                                o.items.len()
                            ),
                        ));
                    }
                    for item in &o.items {
                        if item.value.title.chars().count() > limit {
                            problems.push(at(file, item, "flow.limit", format!(
                                "option title {:?} has {} characters; with {} options it is shown as a {} (at most {limit})",
                                item.value.title, item.value.title.chars().count(), o.items.len(),
                                if limit == MAX_BUTTON_TITLE { "reply button" } else { "list row" })));
                        }
                    }
                    OptionSource::Static(
                        o.items
                            .iter()
                            .map(|i| ChoiceOption {
                                id: i.value.id.clone(),
                                title: i.value.title.clone(),
                                description: i.value.description.clone(),
                                synonyms: i.value.synonyms.clone(),
                                price: None,
                            })
                            .collect(),
                    )
                }
            }
            None => OptionSource::None,
        };
        if decl.value.kind == SlotType::Choice && matches!(options, OptionSource::None) {
            problems.push(at(
                file,
                decl,
                "flow.slot",
                format!("choice slot {name:?} needs `options` (items or a lookup)"),
            ));
        }
        slots.insert(
            name.clone(),
            Slot {
                name: name.clone(),
                kind: decl.value.kind,
                label: decl.value.label.clone().unwrap_or_else(|| name.replace('_', " ")),
                profile: decl.value.profile,
                options,
                opening: decl.value.opening && decl.value.kind == SlotType::Text,
                at_most: decl.value.at_most.as_ref().map(|a| a.value.clone()),
                range: (decl.value.kind == SlotType::Number).then(|| {
                    (decl.value.min.unwrap_or(DEFAULT_NUMBER_MIN), decl.value.max.unwrap_or(DEFAULT_NUMBER_MAX))
                }),
                units: decl.value.units.iter().map(|u| crate::text::fold(u)).collect(),
            },
        );
        let shaped = decl.value.min.is_some() || decl.value.max.is_some() || !decl.value.units.is_empty();
        if shaped && decl.value.kind != SlotType::Number {
            problems.push(at(
                file,
                decl,
                "flow.slot",
                format!("slot {name:?}: `min`, `max` and `units` belong on a number slot"),
            ));
        }
        if let (Some(lo), Some(hi)) = (decl.value.min, decl.value.max) {
            if lo > hi {
                problems.push(at(
                    file,
                    decl,
                    "flow.slot",
                    format!("slot {name:?}: `min` ({lo}) is larger than `max` ({hi})"),
                ));
            }
        }
    }
    for (name, decl) in &f.slots {
        if let Some(limit) = &decl.value.at_most {
            let limit_is_choice = f.slots.get(&limit.value).is_some_and(|l| l.value.kind == SlotType::Choice);
            if decl.value.kind != SlotType::Amount || !limit_is_choice {
                problems.push(at(
                    file,
                    limit,
                    "flow.slot",
                    format!(
                        "slot {name:?}: `at_most` belongs on an amount slot and names a choice slot; {:?} is not one",
                        limit.value
                    ),
                ));
            }
        }
    }

    let llm = match &f.llm {
        Some(g) => {
            let template = prompts.get(&g.value.prompt.value).cloned();
            if template.is_none() {
                problems.push(at(
                    file,
                    &g.value.prompt,
                    "flow.unknown_prompt",
                    format!("prompt {:?} not found: add prompts/{}.md", g.value.prompt.value, g.value.prompt.value),
                ));
            }
            if let Some(t) = &template {
                let allowed = super::placeholders_for(&g.value.output.value);
                for name in prompt_placeholders(t) {
                    if !allowed.contains(&name.as_str()) {
                        problems.push(at(
                            file,
                            &g.value.prompt,
                            "flow.prompt_placeholder",
                            format!(
                                "prompts/{}.md uses {{{{{name}}}}}, which the LLM guard does not fill; it fills {}",
                                g.value.prompt.value,
                                allowed.iter().map(|p| format!("{{{{{p}}}}}")).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                }
            }
            if !KNOWN_OUTPUTS.contains(&g.value.output.value.as_str()) {
                problems.push(at(
                    file,
                    &g.value.output,
                    "flow.unknown_output",
                    format!("output type {:?} is unknown; known: {}", g.value.output.value, KNOWN_OUTPUTS.join(", ")),
                ));
            }
            template.map(|template| LlmGuard {
                prompt: g.value.prompt.value.clone(),
                template,
                output: g.value.output.value.clone(),
            })
        }
        None => None,
    };

    let step_ids: BTreeSet<&str> = f.steps.keys().map(String::as_str).collect();
    let check_target = |problems: &mut Vec<FlowProblem>, t: &Located<String>, from: &str| {
        if !step_ids.contains(t.value.as_str()) {
            problems.push(at(
                file,
                t,
                "flow.unknown_step",
                format!(
                    "step {from:?} goes to {:?}, which is not a step; steps are: {}",
                    t.value,
                    step_ids.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    };
    let check_text = |problems: &mut Vec<FlowProblem>, text: &str, l: (u64, u64), step: &str| {
        for p in text_placeholders(text) {
            // `{slot.description}` and `{slot.amount}` read a chosen option's second line and amount.
            let base = p.strip_suffix(".description").or_else(|| p.strip_suffix(".amount")).unwrap_or(&p);
            if !slots.contains_key(base) && !BUILTIN_PLACEHOLDERS.contains(&p.as_str()) {
                problems.push(FlowProblem {
                    file: file.into(),
                    line: l.0,
                    column: l.1,
                    code: "flow.template",
                    message: format!(
                        "step {step:?}: {{{p}}} is not a slot of this flow nor one of {}",
                        BUILTIN_PLACEHOLDERS.join(", ")
                    ),
                });
            }
        }
    };

    let mut collected_by: HashMap<String, String> = HashMap::new();
    let mut steps = IndexMap::new();
    for (id, decl) in &f.steps {
        let d = &decl.value;
        let source = SourceRef { file: file.into(), line: decl.line, column: decl.column };
        let kinds = [!d.collect.is_empty(), d.confirm.is_some(), d.erp.is_some(), d.end.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            problems.push(at(
                file,
                decl,
                "flow.step_kind",
                format!("step {id:?} must have exactly one of `collect`, `confirm`, `erp` or `end`"),
            ));
            continue;
        }
        let kind = if !d.collect.is_empty() {
            for s in &d.collect {
                if !slots.contains_key(&s.value) {
                    problems.push(at(
                        file,
                        s,
                        "flow.unknown_slot",
                        format!("step {id:?} collects {:?}, which is not declared under `slots`", s.value),
                    ));
                } else if let Some(other) = collected_by.insert(s.value.clone(), id.clone()) {
                    problems.push(at(
                        file,
                        s,
                        "flow.duplicate_collect",
                        format!(
                            "slot {:?} is collected by steps {other:?} and {id:?}: the second would ask for a slot that may \
                             already be filled; let one step own it",
                            s.value
                        ),
                    ));
                }
            }
            let Some(ask) = &d.ask else {
                problems.push(at(
                    file,
                    decl,
                    "flow.step",
                    format!("collect step {id:?} needs `ask`: the question to send"),
                ));
                continue;
            };
            check_text(problems, ask, (decl.line, decl.column), id);
            let Some(next) = &d.next else {
                problems.push(at(
                    file,
                    decl,
                    "flow.dead_end",
                    format!("collect step {id:?} needs `next`: where to go once its slots are filled"),
                ));
                continue;
            };
            check_target(problems, next, id);
            let mut branches = Vec::new();
            for b in &d.branches {
                check_target(problems, &b.goto, id);
                let w = &b.when;
                let tests = [w.equals.is_some(), w.not_equals.is_some(), w.at_least.is_some(), w.below.is_some()];
                let one_test = tests.iter().filter(|t| **t).count() == 1;
                let when = match (&w.slot, &w.emotion, &w.stage) {
                    (Some(slot), None, None) if one_test => {
                        let slot_name = slot.value.clone();
                        let numeric = f
                            .slots
                            .get(&slot_name)
                            .is_some_and(|s| matches!(s.value.kind, SlotType::Number | SlotType::Amount));
                        if (w.at_least.is_some() || w.below.is_some()) && !numeric {
                            problems.push(at(
                                file,
                                slot,
                                "flow.condition",
                                format!(
                                    "branch of step {id:?}: `at_least` and `below` compare a number or amount slot; {slot_name:?} is not one"
                                ),
                            ));
                        }
                        match (&w.equals, &w.not_equals, w.at_least, w.below) {
                            (Some(v), ..) => Condition::Equals { slot: slot_name, value: v.clone() },
                            (_, Some(v), ..) => Condition::NotEquals { slot: slot_name, value: v.clone() },
                            (_, _, Some(v), _) => Condition::AtLeast { slot: slot_name, value: v },
                            (_, _, _, Some(v)) => Condition::Below { slot: slot_name, value: v },
                            _ => continue,
                        }
                    }
                    (None, Some(e), None) if !tests.contains(&true) => Condition::Emotion(e.value.clone()),
                    (None, None, Some(s)) if !tests.contains(&true) => Condition::Stage(s.value.clone()),
                    _ => {
                        problems.push(at(
                            file,
                            &b.goto,
                            "flow.condition",
                            format!(
                                "branch of step {id:?}: write `slot` with exactly one of `equals`, `not_equals`, `at_least` or `below`; or `emotion`; or `stage`"
                            ),
                        ));
                        continue;
                    }
                };
                if let Some(slot) = &w.slot {
                    if !slots.contains_key(&slot.value) {
                        problems.push(at(
                            file,
                            slot,
                            "flow.unknown_slot",
                            format!("branch of step {id:?} tests {:?}, which is not a slot", slot.value),
                        ));
                    }
                }
                branches.push(Branch {
                    when,
                    goto: b.goto.value.clone(),
                    source: SourceRef { file: file.into(), line: b.goto.line, column: b.goto.column },
                });
            }
            if let Some(none) = &d.if_none {
                check_target(problems, none, id);
            }
            if (d.if_none.is_some() || d.pick_single)
                && !(d.collect.len() == 1
                    && f.slots
                        .get(&d.collect[0].value)
                        .is_some_and(|s| s.value.options.as_ref().is_some_and(|o| o.lookup.is_some())))
            {
                problems.push(at(
                    file,
                    &d.collect.first().cloned().unwrap_or_else(|| next.clone()),
                    "flow.if_none",
                    format!(
                        "step {id:?}: `if_none` and `pick_single` need exactly one collected slot whose options come from a lookup"
                    ),
                ));
            }
            StepKind::Collect {
                ask: ask.clone(),
                example: d.example.clone(),
                slots: d.collect.iter().map(|s| s.value.clone()).collect(),
                branches,
                next: next.value.clone(),
                if_none: d.if_none.as_ref().map(|n| n.value.clone()),
                pick_single: d.pick_single,
            }
        } else if let Some(c) = &d.confirm {
            check_target(problems, &c.on_confirm, id);
            check_target(problems, &c.on_cancel, id);
            check_text(problems, &c.text.value, (c.text.line, c.text.column), id);
            for ch in &c.change {
                check_target(problems, ch, id);
                if let Some(target) = f.steps.get(&ch.value) {
                    if target.value.collect.is_empty() {
                        problems.push(at(
                            file,
                            ch,
                            "flow.change",
                            format!("step {id:?} offers to change {:?}, which collects nothing", ch.value),
                        ));
                    }
                }
            }
            StepKind::Confirm {
                text: c.text.value.clone(),
                on_confirm: c.on_confirm.value.clone(),
                on_cancel: c.on_cancel.value.clone(),
                change: c.change.iter().map(|s| s.value.clone()).collect(),
            }
        } else if let Some(e) = &d.erp {
            if !actions.contains_key(&e.action.value) {
                problems.push(at(
                    file,
                    &e.action,
                    "flow.unknown_action",
                    format!(
                        "step {id:?} runs ERP action {:?}, which flows/erp.yaml does not declare; declared: {}",
                        e.action.value,
                        actions.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            } else if let Some(action) = actions.get(&e.action.value) {
                let mut used = Vec::new();
                for doc in &action.documents {
                    erp_actions::placeholders(&doc.body, &mut used);
                    if let Some(f) = &doc.find_by {
                        erp_actions::placeholders(&serde_json::Value::Object(f.clone()), &mut used);
                    }
                }
                let aliases: Vec<&str> = action.documents.iter().map(|d| d.alias.as_str()).collect();
                for p in used {
                    let head = p.split('.').next().unwrap_or("");
                    if !slots.contains_key(head)
                        && !aliases.contains(&head)
                        && !["wa_id", "idempotency_key", "today", "customer_phone"].contains(&head)
                    {
                        problems.push(at(
                            file,
                            &e.action,
                            "flow.erp_body",
                            format!(
                                "ERP action {:?} uses ${{{p}}}, but this flow has no slot {head:?}",
                                e.action.value
                            ),
                        ));
                    }
                }
                // Render the bodies with a sample value for every slot and check them against
                // their schemas, so a body that can never validate is caught here, not by a customer.
                if let Err(found) = erp_actions::render_action(
                    &e.action.value,
                    action,
                    &sample_context(&slots),
                    "sample-journey:action",
                ) {
                    for b in found {
                        problems.push(at(
                            file,
                            &e.action,
                            "flow.erp_body_invalid",
                            format!(
                                "ERP action {:?}, document {:?}: with sample values the body fails its schema at {}: {}",
                                e.action.value, b.document, b.at, b.message
                            ),
                        ));
                    }
                }
            }
            check_target(problems, &e.on_success, id);
            check_target(problems, &e.on_failure, id);
            StepKind::Erp {
                action: e.action.value.clone(),
                say: d.erp.as_ref().and_then(|e| e.say.clone()),
                on_success: e.on_success.value.clone(),
                on_failure: e.on_failure.value.clone(),
            }
        } else if let Some(end) = &d.end {
            check_text(problems, &end.value, (end.line, end.column), id);
            if d.offer && f.stage == Some(graph::Stage::Complaint) {
                problems.push(at(
                    file,
                    end,
                    "flow.offer",
                    format!("step {id:?}: a complaint journey never shows an offer; remove `offer: true`"),
                ));
            }
            StepKind::End { text: end.value.clone(), offer: d.offer, offer_person: d.offer_person, handoff: d.handoff }
        } else {
            continue;
        };
        let title = d.title.clone().unwrap_or_else(|| id.replace('_', " "));
        if title.chars().count() > MAX_ROW_TITLE {
            problems.push(at(
                file,
                decl,
                "flow.limit",
                format!("step {id:?}: title {title:?} is longer than a list row allows ({MAX_ROW_TITLE})"),
            ));
        }
        steps.insert(id.clone(), Step { id: id.clone(), title, kind, source });
    }
    if problems.len() != before {
        return None;
    }
    if steps.is_empty() {
        problems.push(FlowProblem {
            file: file.into(),
            line: 1,
            column: 1,
            code: "flow.empty",
            message: "a flow needs at least one step".into(),
        });
        return None;
    }

    // Reachability from the start, and every step able to reach an end.
    let start = steps.keys().next().cloned().unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(s) = queue.pop_front() {
        if seen.insert(s.clone()) {
            if let Some(step) = steps.get(&s) {
                queue.extend(step.targets().into_iter().map(String::from));
            }
        }
    }
    let mut can_end: BTreeSet<String> =
        steps.values().filter(|s| matches!(s.kind, StepKind::End { .. })).map(|s| s.id.clone()).collect();
    loop {
        let grew: Vec<String> = steps
            .values()
            .filter(|s| !can_end.contains(&s.id) && s.targets().iter().any(|t| can_end.contains(*t)))
            .map(|s| s.id.clone())
            .collect();
        if grew.is_empty() {
            break;
        }
        can_end.extend(grew);
    }
    for step in steps.values() {
        if !seen.contains(&step.id) {
            problems.push(FlowProblem {
                file: file.into(),
                line: step.source.line,
                column: step.source.column,
                code: "flow.unreachable_step",
                message: format!(
                    "step {:?} cannot be reached from the start step {start:?}: link it or remove it",
                    step.id
                ),
            });
        } else if !can_end.contains(&step.id) {
            problems.push(FlowProblem {
                file: file.into(),
                line: step.source.line,
                column: step.source.column,
                code: "flow.dead_end",
                message: format!("step {:?} can never reach an `end` step: a customer would be stuck there", step.id),
            });
        }
    }
    if problems.len() != before {
        return None;
    }
    // A text may only show a slot that is filled on every path to its step.
    for (id, filled) in definitely_filled(&steps) {
        let Some(step) = steps.get(&id) else { continue };
        let (texts, own): (Vec<&String>, Vec<String>) = match &step.kind {
            StepKind::Collect { ask, .. } => (vec![ask], vec![]),
            StepKind::Confirm { text, .. } => (vec![text], vec![]),
            StepKind::Erp { say, .. } => (say.iter().collect(), vec![]),
            StepKind::End { text, .. } => (vec![text], vec![]),
        };
        for text in texts {
            for p in text_placeholders(text) {
                if slots.contains_key(&p) && !filled.contains(&p) && !own.contains(&p) {
                    problems.push(FlowProblem {
                        file: file.into(),
                        line: step.source.line,
                        column: step.source.column,
                        code: "flow.placeholder_may_be_empty",
                        message: format!(
                            "step {id:?} shows {{{p}}}, but not every path to it collects {p:?}: a customer could see it empty"
                        ),
                    });
                }
            }
        }
    }
    if problems.len() != before {
        return None;
    }
    let r = f.recovery;
    if !(1 <= r.rephrase_after && r.rephrase_after <= r.summary_after && r.summary_after <= r.handoff_after) {
        problems.push(FlowProblem {
            file: file.into(),
            line: 1,
            column: 1,
            code: "flow.recovery",
            message: format!(
                "recovery must satisfy 1 <= rephrase_after ({}) <= summary_after ({}) <= handoff_after ({})",
                r.rephrase_after, r.summary_after, r.handoff_after
            ),
        });
        return None;
    }
    if let Some(rem) = &f.reminder {
        if rem.after_minutes == 0 || rem.after_minutes >= 24 * 60 {
            problems.push(FlowProblem { file: file.into(), line: 1, column: 1, code: "flow.reminder",
                message: format!("reminder.after_minutes is {}; it must be between 1 and 1439 to leave inside WhatsApp's 24-hour window", rem.after_minutes) });
            return None;
        }
    }
    if let Some(q) = &f.handoff_queue {
        let ok = !q.value.is_empty()
            && q.value.len() <= 40
            && q.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            problems.push(FlowProblem {
                file: file.into(),
                line: q.line,
                column: q.column,
                code: "flow.handoff_queue",
                message: format!(
                    "handoff_queue {:?} must be 1 to 40 lowercase letters, digits, '_' or '-' (e.g. sales)",
                    q.value
                ),
            });
            return None;
        }
    }
    let visit = match &f.visit {
        Some(v) => Some(super::visits::compile_visit(file, v, &slots, problems)?),
        None => None,
    };
    let mut flow = Flow {
        visit,
        handoff_queue: f.handoff_queue.as_ref().map(|q| q.value.clone()),
        hash: String::new(),
        recovery: graph::Recovery {
            rephrase_after: r.rephrase_after,
            summary_after: r.summary_after,
            handoff_after: r.handoff_after,
        },
        reminder: f
            .reminder
            .as_ref()
            .map(|r| graph::Reminder { after_seconds: i64::from(r.after_minutes) * 60, text: r.text.clone() }),
        id: f.id.value,
        version: f.version,
        title: f.title,
        stage: f.stage.unwrap_or(graph::Stage::Exploring),
        file: file.into(),
        menu_title: f.start.menu_title.map(|t| t.value),
        menu_position: f.start.menu_position,
        keywords: f.start.keywords.iter().map(|k| crate::text::fold(k)).collect(),
        priority: f.start.priority,
        slots,
        steps,
        llm,
    };
    flow.hash = flow_hash(&flow);
    Some(flow)
}
