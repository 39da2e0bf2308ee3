//! Compiling a flow's `visit:` block: what the journey does to a visit, and the reminder and
//! rating of a booked one. The answers of a reminder may start another journey, which is checked
//! once every flow is compiled ([`check_answers`]).

use std::sync::Arc;

use indexmap::IndexMap;

use super::format::{Located, SlotType, TemplateDecl, VisitDecl};
use super::graph::{Flow, OptionSource, Rating, Slot, Template, VisitAnswer, VisitEffect, VisitReminder, VisitRule};
use super::{FlowProblem, MAX_BUTTON_TITLE, MAX_BUTTONS, at, text_placeholders};

/// Placeholders a visit's texts may use besides the booking's slots.
const VISIT_PLACEHOLDERS: &[&str] = &["business", "rating", "erp.reference"];

/// Compiles `decl` against the flow's `slots`, pushing every problem; `None` when there is one.
pub fn compile_visit(
    file: &str,
    decl: &Located<VisitDecl>,
    slots: &IndexMap<String, Slot>,
    problems: &mut Vec<FlowProblem>,
) -> Option<VisitRule> {
    let before = problems.len();
    let v = &decl.value;
    let mut slot_of = |name: &Located<String>, kind: SlotType, what: &str| {
        if !slots.get(&name.value).is_some_and(|s| s.kind == kind) {
            problems.push(at(
                file,
                name,
                "flow.visit",
                format!("visit: {what} must name a {kind:?} slot of this flow; {:?} is not one", name.value),
            ));
        }
        name.value.clone()
    };
    let effect = match (&v.books, &v.moves, &v.to, &v.cancels) {
        (Some(t), None, None, None) => VisitEffect::Books { time: slot_of(t, SlotType::DateTime, "`books`") },
        (None, Some(m), Some(t), None) => VisitEffect::Moves {
            visit: slot_of(m, SlotType::Choice, "`moves`"),
            to: slot_of(t, SlotType::DateTime, "`to`"),
        },
        (None, None, None, Some(c)) => VisitEffect::Cancels { visit: slot_of(c, SlotType::Choice, "`cancels`") },
        _ => {
            problems.push(at(
                file,
                decl,
                "flow.visit",
                "visit: write exactly one of `books: <date_time slot>`, `moves: <choice slot>` with `to: <date_time slot>`, or `cancels: <choice slot>`".into(),
            ));
            return None;
        }
    };
    let books = matches!(effect, VisitEffect::Books { .. });
    if !books && (v.reminder.is_some() || v.rating.is_some()) {
        problems.push(at(
            file,
            decl,
            "flow.visit",
            "visit: `reminder` and `rating` belong to the journey that `books` the visit".into(),
        ));
    }
    let check_text = |problems: &mut Vec<FlowProblem>, text: &str, line: u64, column: u64, what: &str| {
        check_placeholders(problems, file, slots, text, (line, column), what)
    };
    let template = |problems: &mut Vec<FlowProblem>, t: &TemplateDecl, line: u64, column: u64| {
        for p in &t.parameters {
            check_text(problems, p, line, column, "template parameter");
        }
        Template { name: t.name.clone(), language: t.language.clone(), parameters: t.parameters.clone() }
    };
    let reminder = v.reminder.as_ref().map(|r| {
        check_text(problems, &r.text.value, r.text.line, r.text.column, "reminder");
        let tpl = template(problems, &r.template, r.text.line, r.text.column);
        if r.answers.is_empty() || r.answers.len() > MAX_BUTTONS {
            problems.push(at(
                file,
                &r.text,
                "flow.visit",
                format!(
                    "visit reminder: give 1 to {MAX_BUTTONS} answers (WhatsApp's reply-button limit); it has {}",
                    r.answers.len()
                ),
            ));
        }
        let answers = r
            .answers
            .iter()
            .map(|a| {
                let d = &a.value;
                if d.title.value.chars().count() > MAX_BUTTON_TITLE {
                    problems.push(at(
                        file,
                        &d.title,
                        "flow.limit",
                        format!("answer {:?} is longer than a reply button allows ({MAX_BUTTON_TITLE})", d.title.value),
                    ));
                }
                let start = match (&d.say, &d.start, &d.fill) {
                    (Some(say), None, None) => {
                        check_text(problems, say, a.line, a.column, "answer");
                        None
                    }
                    (None, Some(flow), Some(slot)) => Some((flow.value.clone(), slot.value.clone())),
                    _ => {
                        problems.push(at(
                            file,
                            a,
                            "flow.visit",
                            format!(
                                "answer {:?}: write `say: <reply>`, or `start: <flow>` with `fill: <its choice slot>`",
                                d.title.value
                            ),
                        ));
                        None
                    }
                };
                VisitAnswer { title: d.title.value.clone(), say: d.say.clone(), start }
            })
            .collect();
        VisitReminder {
            before_seconds: i64::from(r.hours_before) * 3600,
            text: r.text.value.clone(),
            template: tpl,
            answers,
        }
    });
    let rating = v.rating.as_ref().map(|r| {
        check_text(problems, &r.text.value, r.text.line, r.text.column, "rating");
        check_text(problems, &r.thanks, r.text.line, r.text.column, "rating thanks");
        check_text(problems, &r.sorry, r.text.line, r.text.column, "rating sorry");
        let tpl = template(problems, &r.template, r.text.line, r.text.column);
        if !(2..=5).contains(&r.low_below) {
            problems.push(at(
                file,
                &r.text,
                "flow.visit",
                format!("rating: low_below is {}; give 2 to 5", r.low_below),
            ));
        }
        Rating {
            after_seconds: i64::from(r.hours_after) * 3600,
            text: r.text.value.clone(),
            template: tpl,
            thanks: r.thanks.clone(),
            low_below: r.low_below,
            sorry: r.sorry.clone(),
        }
    });
    (problems.len() == before).then_some(VisitRule { effect, reminder, rating })
}

/// Reports each `{placeholder}` of `text` that is neither a slot of the flow nor one of
/// [`VISIT_PLACEHOLDERS`].
fn check_placeholders(
    problems: &mut Vec<FlowProblem>,
    file: &str,
    slots: &IndexMap<String, Slot>,
    text: &str,
    (line, column): (u64, u64),
    what: &str,
) {
    for p in text_placeholders(text) {
        let head = p.split('.').next().unwrap_or_default();
        if !slots.contains_key(head) && !VISIT_PLACEHOLDERS.contains(&p.as_str()) && head != "business" {
            problems.push(FlowProblem {
                file: file.into(),
                line,
                column,
                code: "flow.placeholder",
                message: format!("visit {what}: {{{p}}} is not a slot of this flow"),
            });
        }
    }
}

/// Checks, once every flow is compiled, that each reminder answer's `start` names a flow and
/// `fill` one of its choice slots whose options come from a lookup (the customer's bookings).
pub fn check_answers(flows: &IndexMap<String, Arc<Flow>>, problems: &mut Vec<FlowProblem>) {
    for flow in flows.values() {
        let Some(reminder) = flow.visit.as_ref().and_then(|v| v.reminder.as_ref()) else { continue };
        for answer in &reminder.answers {
            let Some((target, slot)) = &answer.start else { continue };
            let fits = flows
                .get(target)
                .and_then(|f| f.slots.get(slot))
                .is_some_and(|s| s.kind == SlotType::Choice && matches!(s.options, OptionSource::Lookup(_)));
            if !fits {
                problems.push(FlowProblem {
                    file: flow.file.clone(),
                    line: 1,
                    column: 1,
                    code: "flow.visit",
                    message: format!(
                        "reminder answer {:?} starts {target:?} filling {slot:?}: there must be a flow {target:?} with a choice slot {slot:?} read from a lookup",
                        answer.title
                    ),
                });
            }
        }
    }
}
