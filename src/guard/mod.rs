//! Guards: everything a turn needs to know before the engine decides — lookups (the ERP catalog,
//! the offered visit times), the deterministic extractors, and the LLM guard.
//!
//! Order of work for a typed message: the deterministic extractors first; the LLM only when they
//! could not settle the current question (so a button press, or text a parser settles, costs no
//! LLM call). An LLM answer must validate against the schema of [`SlotExtraction`] (narrowed to
//! this flow's slot names), and every value must be *grounded*: found in the customer's own words
//! after normalisation, or one of the options the bot offered. An ungrounded value is dropped with
//! the code `guard.ungrounded` (see [`grounding`]); it never fills a slot. Where the parsers and
//! the LLM read one slot differently, neither is taken and the customer is asked (`guard.conflict`).

pub mod extract;
pub mod grounding;
pub mod knowledge;
pub mod understand;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use jiff::Zoned;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::capacity::{Availability, Booked, HeldFor};
use crate::engine::{Extracted, GuardPlan, GuardResults, GuardRun, SlotSource, Understanding};
use crate::erp::ErpClient;
use crate::flow::graph::{ChoiceOption, Flow};
use crate::flow::{Business, FlowSet};
use crate::llm::{Attempt, LlmClient};

/// Messages longer than this, outside a specific question, go to the LLM guard even when the
/// parsers found something, since they may carry more (a name, an address).
pub const LONG_MESSAGE_WORDS: usize = 6;

/// What the LLM guard must answer: the slots it found in the customer's message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotExtraction {
    /// One entry per slot found; empty when the message holds none.
    pub slots: Vec<SlotAnswer>,
}

/// One slot found by the LLM.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotAnswer {
    /// The slot's name (the schema restricts it to this flow's slots).
    pub slot: String,
    /// The value: for a choice, the option id; otherwise the customer's words for it.
    pub value: String,
    /// The exact words of the customer's message it was read from.
    pub quote: String,
}

/// The JSON Schema of [`SlotExtraction`], with `slot` restricted to `allowed`.
pub fn slot_extraction_schema(allowed: &[String]) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(SlotExtraction)).unwrap_or_default();
    if let Some(slot) = schema.pointer_mut("/$defs/SlotAnswer/properties/slot") {
        slot["enum"] = json!(allowed);
    }
    schema
}

/// Runs a [`GuardPlan`].
#[derive(Clone)]
pub struct Guards {
    /// Reads the catalog.
    pub erp: Arc<ErpClient>,
    /// The LLM, when configured.
    pub llm: Option<Arc<LlmClient>>,
    /// The knowledge base enquiries are answered from.
    pub knowledge: Arc<crate::knowledge::Library>,
    /// The ERP's bookings as last worked out (see [`BookedMemo`]).
    pub booked: Arc<BookedMemo>,
}

/// The ERP's bookings by window ([`Booked`]) for the last answer of the `capacity.booked`
/// lookup, kept with that answer and the business facts it was worked out with: while the
/// lookup cache hands out the same answer and the flows were not reloaded, the turns share it.
#[derive(Default)]
pub struct BookedMemo(std::sync::Mutex<Option<BookedFor>>);

/// What [`BookedMemo`] keeps.
struct BookedFor {
    rows: Arc<Vec<ChoiceOption>>,
    business: Arc<crate::flow::Business>,
    booked: Arc<Booked>,
}

impl BookedMemo {
    /// The bookings of `rows` for `business`, worked out now unless they were for the same two.
    pub fn of(&self, business: &Arc<crate::flow::Business>, rows: Arc<Vec<ChoiceOption>>) -> Arc<Booked> {
        let kept = self.0.lock().ok().and_then(|m| {
            m.as_ref()
                .filter(|k| Arc::ptr_eq(&k.rows, &rows) && Arc::ptr_eq(&k.business, business))
                .map(|k| k.booked.clone())
        });
        if let Some(booked) = kept {
            return booked;
        }
        let booked = Arc::new(Booked::of(business, rows.iter().map(|o| (o.id.as_str(), o.title.as_str()))));
        if let Ok(mut m) = self.0.lock() {
            *m = Some(BookedFor { rows, business: business.clone(), booked: booked.clone() });
        }
        booked
    }
}

impl Guards {
    /// Guards answering enquiries from the flow set's knowledge file (no database).
    pub fn new(erp: Arc<ErpClient>, llm: Option<Arc<LlmClient>>) -> Guards {
        Guards { erp, llm, knowledge: Arc::new(crate::knowledge::Library::new(None)), booked: Arc::default() }
    }

    /// Works out the [`GuardResults`] for `plan` at time `now` (the message's timestamp, so that a
    /// replay reads "tomorrow" the same way); `held` lists the places other conversations hold
    /// (counted when the business declares a capacity). Never fails: a failing guard is recorded
    /// with its code and the engine takes the flow's fallback.
    pub async fn run(
        &self,
        flows: &FlowSet,
        plan: &GuardPlan,
        now: jiff::Timestamp,
        held: HeldFor<'_>,
    ) -> GuardResults {
        #[cfg(feature = "fakes")]
        crate::fakes::injected_guard_panic(plan.text.as_deref());
        let mut results = self.read(flows, plan, now, true, None, held).await;
        if let Some(text) = &plan.understand {
            let mut reading = understand::deterministic(flows, text);
            // Naming a service the catalog sells ("Interior Cleaning") asks for the journey that
            // books it, though no keyword said "book".
            let mut named_service = false;
            if reading.intent == "other" && plan.flow.is_none() {
                if let Some(flow) = self.flow_selling(flows, text).await {
                    reading = Understanding { intent: flow, confidence: 0.8, ..reading };
                    named_service = true;
                }
            }
            if let (true, false, Some(llm), Some(prompt)) =
                (plan.understand_with_llm, named_service, &self.llm, &flows.understand_prompt)
            {
                let (run, answer) = understand::ask_llm(llm, flows, prompt, text).await;
                results.runs.push(run);
                if let Some(answer) = answer {
                    // The cues' anger is kept: an LLM that misses it must not let an offer through.
                    let emotion = if reading.emotion.is_upset() && !answer.emotion.is_upset() {
                        reading.emotion
                    } else {
                        answer.emotion
                    };
                    reading = Understanding { emotion, ..answer };
                }
            }
            // A question nothing routed: the knowledge base may answer it (its flow is picked);
            // one it cannot answer is noted, so it is flagged for review like any other.
            if reading.intent == "other" && plan.flow.is_none() && knowledge::looks_like_question(text) {
                match self.flow_answering(flows, text).await {
                    Some((flow, true)) => reading = Understanding { intent: flow, confidence: 0.8, ..reading },
                    Some((_, false)) => {
                        let question = text.trim().to_string();
                        results.knowledge = Some(crate::engine::answers::KnowledgeReading {
                            question,
                            passages: vec![],
                            unsure: false,
                        });
                    }
                    None => {}
                }
            }
            // A journey the intent guard picked (no keyword routed the text): its lookups and
            // slots are read now, so it starts knowing what the message said.
            let picked = flows
                .flow(&reading.intent)
                .filter(|_| plan.flow.is_none() && reading.confidence >= crate::engine::MIN_INTENT_CONFIDENCE)
                .cloned();
            results.understanding = Some(reading);
            if let Some(flow) = picked {
                let flow_plan = whole_message_plan(&flow, plan.understand.clone(), &plan.customer);
                let read = self.read(flows, &flow_plan, now, false, None, held).await;
                results.flow = read.flow;
                results.slots = read.slots;
                results.lookups.extend(read.lookups);
                results.knowledge = read.knowledge.or(results.knowledge.take());
                results.availability = read.availability.or(results.availability.take());
                results.failed_lookups.extend(read.failed_lookups);
                results.runs.extend(read.runs);
            }
        }
        if let Some(alt) = plan.alternative.as_deref().and_then(|f| flows.flow(f)) {
            // A possible digression: the parsers read the text for the other flow as well.
            let alt_plan = whole_message_plan(alt, plan.text.clone(), &plan.customer);
            // Its lookups were read for this turn already (the plan includes them): reused.
            let mut read = self.read(flows, &alt_plan, now, false, Some(&results.lookups), held).await;
            read.lookups.clear();
            results.alternative = Some(Box::new(read));
        }
        results
    }

    /// The journey that answers from the knowledge base (the first in the menu whose choice slot
    /// lists the `knowledge` lookup) and whether the knowledge base answers `text`; `None` when no
    /// journey answers from it.
    async fn flow_answering(&self, flows: &FlowSet, text: &str) -> Option<(String, bool)> {
        let mut answering: Vec<&Arc<Flow>> = flows
            .flows
            .values()
            .filter(|f| {
                f.slots
                    .values()
                    .any(|s| matches!(&s.options, crate::flow::graph::OptionSource::Lookup(l) if l == "knowledge"))
            })
            .collect();
        answering.sort_by_key(|f| (-f.priority, f.menu_position));
        let flow = answering.first()?.id.clone();
        let catalog = self.erp.catalog(&flows.catalog, &flows.root).await.map(|c| c.0).unwrap_or_default();
        let answered = match self.knowledge.shelf(&flows.knowledge, &catalog).await {
            Ok(shelf) => !shelf.find(text).is_empty(),
            Err(_) => false,
        };
        Some((flow, answered))
    }

    /// The journey that books what `text` names from the catalog (a whole item title, case and
    /// accents aside): of the flows whose choice slot lists the catalog, the first in the menu.
    async fn flow_selling(&self, flows: &FlowSet, text: &str) -> Option<String> {
        let mut sellers: Vec<&Arc<Flow>> = flows
            .flows
            .values()
            .filter(|f| {
                f.slots
                    .values()
                    .any(|s| matches!(&s.options, crate::flow::graph::OptionSource::Lookup(l) if l == "catalog"))
            })
            .collect();
        if sellers.is_empty() {
            return None;
        }
        sellers.sort_by_key(|f| (-f.priority, f.menu_position));
        let catalog = self.erp.catalog(&flows.catalog, &flows.root).await.ok()?.0;
        match extract::read_choice(text, &catalog, false) {
            extract::ChoiceRead::One(..) => sellers.first().map(|f| f.id.clone()),
            _ => None,
        }
    }

    /// One flow's reading of the plan; the LLM only with `use_llm`; lookups found in `known` are
    /// reused rather than read again.
    async fn read(
        &self,
        flows: &FlowSet,
        plan: &GuardPlan,
        now: jiff::Timestamp,
        use_llm: bool,
        known: Option<&BTreeMap<String, Vec<ChoiceOption>>>,
        held: HeldFor<'_>,
    ) -> GuardResults {
        let mut results = GuardResults { flow: plan.flow.clone(), ..Default::default() };
        let flow = match (plan.flow.as_deref(), plan.flow_version) {
            (Some(f), Some(v)) => plan.flow_hash.as_ref().and_then(|h| flows.by_hash.get(h)).or(flows.flow_at(f, v)),
            (Some(f), None) => flows.flow(f),
            _ => None,
        };
        let Some(flow) = flow.cloned() else {
            return results;
        };
        let now = now.to_zoned(flows.business.time_zone.clone());
        for lookup in &plan.lookups {
            if let Some(options) = known.and_then(|k| k.get(lookup)) {
                results.lookups.insert(lookup.clone(), options.clone());
                continue;
            }
            let started = Instant::now();
            let (options, outcome, detail) = match lookup.as_str() {
                "catalog" => match self.erp.catalog(&flows.catalog, &flows.root).await {
                    Ok((items, source)) => (items, "ok".to_string(), json!({"source": source})),
                    Err(e) => (vec![], e.code().to_string(), json!({"error": e.to_string()})),
                },
                "visit_slots" => {
                    let (availability, outcome, mut detail) = self.availability(flows, plan, &now, held).await;
                    let options = extract::visit_slots(&now, &flows.business, availability.as_ref());
                    detail["from"] = json!(now.to_string());
                    results.availability = availability;
                    (options, outcome, detail)
                }
                "knowledge" => {
                    let (options, outcome, detail, run) = self.knowledge(flows, &flow, plan.text.as_deref()).await;
                    if let Some(question) = plan.text.clone() {
                        let unsure = run.as_ref().is_some_and(|r| r.outcome == "knowledge.unsure");
                        let passages = options.iter().map(|o| o.id.clone()).collect();
                        results.knowledge =
                            Some(crate::engine::answers::KnowledgeReading { question, passages, unsure });
                    }
                    results.runs.extend(run);
                    (options, outcome, detail)
                }
                other => match flows.lookups.get(other) {
                    Some(decl) => {
                        let context = lookup_context(plan, &now);
                        match self.erp.lookup(decl, &context, &flows.root).await {
                            Ok(rows) => {
                                let n = rows.len();
                                (rows, "ok".to_string(), json!({"rows": n}))
                            }
                            Err(e) => (vec![], e.code().to_string(), json!({"error": e.to_string()})),
                        }
                    }
                    None => (vec![], "guard.unknown_lookup".into(), json!({"lookup": other})),
                },
            };
            if outcome != "ok" {
                results.failed_lookups.push(lookup.clone());
            }
            results.runs.push(GuardRun {
                guard: format!("lookup:{lookup}"),
                outcome,
                filled: vec![],
                latency_ms: started.elapsed().as_millis() as u64,
                detail,
            });
            results.lookups.insert(lookup.clone(), options);
        }
        let Some(text) = &plan.text else { return results };

        let started = Instant::now();
        // The lookups are copied once per turn (not once per slot read) for the extractors.
        let lookup_view = GuardResults { lookups: results.lookups.clone(), ..Default::default() };
        let options = |slot: &str| crate::engine::slot_options(&lookup_view, &flow, slot);
        let pending_day = plan.pending_day.as_deref().and_then(|d| d.parse::<jiff::civil::Date>().ok());
        let found =
            extract::extract(text, &flow, &plan.focus, &plan.others, &options, &flows.business, &now, pending_day);
        results.runs.push(GuardRun {
            guard: "parser".into(),
            outcome: if plan.focus.iter().all(|f| found.slots.contains_key(f)) {
                "ok".into()
            } else {
                "guard.unsettled".into()
            },
            filled: found.slots.keys().cloned().collect(),
            latency_ms: started.elapsed().as_millis() as u64,
            detail: json!({"focus": plan.focus, "problem": found.problem}),
        });
        results.slots = found.slots;
        results.problem = found.problem;
        results.candidates = found.candidates;
        results.unsure = found.unsure;
        results.date_only = found.date_only.map(|d| d.to_string());
        results.day_mentioned = found.day_mentioned.map(|d| d.to_string());
        if results.date_only.is_some() {
            // Half an answer the parsers understood: the engine keeps the day and asks the time.
            return results;
        }

        // The LLM is asked only when the parsers could not settle the question: every asked slot
        // filled, or (when nothing in particular was asked) anything found at all, settles it.
        let settled = if plan.focus.is_empty() {
            // A long message that starts a journey may hold more than the parsers understood.
            !results.slots.is_empty() && text.split_whitespace().count() <= LONG_MESSAGE_WORDS
        } else {
            plan.focus.iter().all(|f| results.slots.contains_key(f))
        };
        if settled {
            results.problem = None;
            return results;
        }
        let (Some(llm), Some(guard), true) = (&self.llm, &flow.llm, use_llm) else { return results };
        if guard.output != "slot_extraction" {
            return results;
        }
        if plan.focus.is_empty() && plan.others.is_empty() {
            return results;
        }
        let (mut run, llm_found) = llm_guard(llm, guard, &flow, plan, text, &options, &flows.business, &now).await;
        // Where the parsers and the LLM read the same slot differently, neither is taken: the
        // customer is asked again rather than one reading picked silently.
        let mut conflicts = Vec::new();
        for (slot, ex) in llm_found {
            match results.slots.get(&slot) {
                Some(parsed) if parsed.value != ex.value => {
                    conflicts.push(json!({"slot": slot, "parser": parsed.value.display(), "llm": ex.value.display(), "code": "guard.conflict"}));
                    results.slots.remove(&slot);
                }
                Some(_) => {}
                None => {
                    results.slots.insert(slot, ex);
                }
            }
        }
        if !conflicts.is_empty() {
            let labels: Vec<String> = conflicts
                .iter()
                .filter_map(|c| c["slot"].as_str().and_then(|s| flow.slots.get(s)).map(|d| d.label.to_lowercase()))
                .collect();
            results.problem =
                Some(format!("I want to get this right: could you give your {} again?", labels.join(" and ")));
            run.detail["conflicts"] = json!(conflicts);
            if run.outcome == "ok" {
                run.outcome = "guard.conflict".into();
            }
        } else if plan.focus.iter().all(|f| results.slots.contains_key(f)) {
            results.problem = None;
        }
        results.runs.push(run);
        results
    }
}

/// A plan that reads `text` for every slot of `flow` (nothing in particular was asked), with the
/// flow's lookups: for a journey the message may start.
fn whole_message_plan(flow: &Flow, text: Option<String>, customer: &str) -> GuardPlan {
    GuardPlan {
        flow: Some(flow.id.clone()),
        flow_version: Some(flow.version),
        text,
        others: flow.slots.keys().cloned().collect(),
        lookups: flow.lookups(),
        customer: customer.to_string(),
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn llm_guard(
    llm: &LlmClient,
    guard: &crate::flow::graph::LlmGuard,
    flow: &Flow,
    plan: &GuardPlan,
    text: &str,
    options: &(dyn Fn(&str) -> Vec<ChoiceOption> + Sync),
    business: &Business,
    now: &Zoned,
) -> (GuardRun, BTreeMap<String, Extracted>) {
    let started = Instant::now();
    let allowed: Vec<String> = plan.focus.iter().chain(plan.others.iter()).cloned().collect();
    let schema = slot_extraction_schema(&allowed);
    let slot_lines: Vec<String> = allowed
        .iter()
        .filter_map(|s| flow.slots.get(s))
        .map(|s| {
            let opts = options(&s.name);
            let kind = serde_json::to_value(s.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            if opts.is_empty() {
                format!("- {} ({kind}): {}", s.name, s.label)
            } else {
                let ids: Vec<String> = opts.iter().map(|o| format!("{} = {}", o.id, o.title)).collect();
                format!("- {} (choice): {}; value must be one of the ids: {}", s.name, s.label, ids.join("; "))
            }
        })
        .collect();
    let system = guard
        .template
        .replace("{{business}}", &business.name)
        .replace("{{now}}", &now.strftime("%A %-d %B %Y, %H:%M").to_string())
        .replace("{{time_zone}}", &business.time_zone_name)
        .replace("{{question}}", plan.question.as_deref().unwrap_or("(none)"))
        .replace("{{slots}}", &slot_lines.join("\n"));
    let mut attempts: Vec<Attempt> = Vec::new();
    let answer = llm.structured(&system, text, "slot_extraction", &schema, &mut attempts).await;
    let mut filled = BTreeMap::new();
    let mut rejected = Vec::new();
    let outcome = match answer {
        Ok(structured) => match serde_json::from_value::<SlotExtraction>(structured.value) {
            Ok(extraction) => {
                for a in extraction.slots {
                    match grounding::ground(&a, text, flow, &plan.focus, options, business, now) {
                        Ok(value) => {
                            filled.insert(a.slot.clone(), Extracted { value, source: SlotSource::Llm, evidence: a.quote.clone() });
                        }
                        Err(why) => rejected.push(json!({"slot": a.slot, "value": a.value, "quote": a.quote, "code": "guard.ungrounded", "why": why})),
                    }
                }
                if filled.is_empty() && !rejected.is_empty() {
                    "guard.ungrounded".to_string()
                } else {
                    "ok".to_string()
                }
            }
            Err(e) => {
                rejected.push(json!({"code": "llm.invalid_output", "why": e.to_string()}));
                "llm.invalid_output".to_string()
            }
        },
        Err(e) => {
            rejected.push(json!({"code": e.code(), "why": e.to_string()}));
            e.code().to_string()
        }
    };
    let run = GuardRun {
        guard: "llm".into(),
        outcome,
        filled: filled.keys().cloned().collect(),
        latency_ms: started.elapsed().as_millis() as u64,
        detail: json!({
            "model": llm.model(),
            "prompt": guard.prompt,
            "output": guard.output,
            "attempts": attempts,
            "rejected": rejected,
        }),
    };
    (run, filled)
}

/// What a lookup's filters may name: `${wa_id}`, `${customer_phone}` and `${today}` (in the
/// business's time zone).
fn lookup_context(plan: &GuardPlan, now: &jiff::Zoned) -> serde_json::Map<String, serde_json::Value> {
    let mut context = serde_json::Map::new();
    context.insert("wa_id".into(), json!(plan.customer));
    context.insert("customer_phone".into(), json!(format!("+{}", plan.customer)));
    context.insert("today".into(), json!(now.date().to_string()));
    context
}

impl Guards {
    /// The `knowledge` lookup for `question`: the options, outcome and record, and the LLM's run
    /// when the flow words its answers (see [`knowledge`]). When the knowledge base cannot be
    /// read, the knowledge file's facts answer and the record says why.
    async fn knowledge(
        &self,
        flows: &FlowSet,
        flow: &Flow,
        question: Option<&str>,
    ) -> (Vec<ChoiceOption>, String, serde_json::Value, Option<GuardRun>) {
        let catalog = self.erp.catalog(&flows.catalog, &flows.root).await.map(|c| c.0).unwrap_or_default();
        let (shelf, trouble) = match self.knowledge.shelf(&flows.knowledge, &catalog).await {
            Ok(shelf) => (shelf, None),
            Err(e) => {
                let items: Vec<crate::knowledge::Item> =
                    flows.knowledge.iter().map(crate::knowledge::Item::from_fact).collect();
                (
                    Arc::new(crate::knowledge::Shelf::build(0, &items, &catalog)),
                    Some(json!({"code": e.code(), "error": e.to_string()})),
                )
            }
        };
        let (mut options, mut detail) = knowledge::closest(&shelf, question);
        if let Some(t) = trouble {
            detail["fallback"] = t;
        }
        let mut run = None;
        if let (Some(llm), Some(guard), Some(q), false) = (&self.llm, &flow.llm, question, options.is_empty()) {
            if guard.output == knowledge::KNOWLEDGE_ANSWER {
                let (r, worded) = knowledge::worded(llm, guard, &flows.business, &shelf, q).await;
                run = Some(r);
                if let Some(o) = worded {
                    options = vec![o];
                }
            }
        }
        (options, "ok".into(), detail, run)
    }

    /// The places taken per window, when the business declares a capacity: the ERP's bookings
    /// (its `capacity.booked` lookup) and `held`, the other conversations' holds. A failed ERP
    /// read is recorded with its code and the holds alone are counted (the commit's hold still
    /// keeps two customers of this service off one place).
    async fn availability(
        &self,
        flows: &FlowSet,
        plan: &GuardPlan,
        now: &jiff::Zoned,
        held: HeldFor<'_>,
    ) -> (Option<Availability>, String, serde_json::Value) {
        let Some(capacity) = &flows.business.capacity else { return (None, "ok".into(), json!({})) };
        let mut booked = Arc::new(Booked::default());
        let mut outcome = "ok".to_string();
        let mut detail = json!({"held": held.len()});
        if let Some(decl) = capacity.booked.as_ref().and_then(|name| flows.lookups.get(name)) {
            match self.erp.lookup_shared(decl, &lookup_context(plan, now), &flows.root).await {
                Ok(rows) => booked = self.booked.of(&flows.business, rows),
                Err(e) => {
                    outcome = e.code().to_string();
                    detail["error"] = json!(e.to_string());
                }
            }
        }
        detail["booked"] = json!(booked.len());
        (Some(Availability::count(&flows.business, &booked, held)), outcome, detail)
    }
}
