//! Erasing a customer's words while keeping the counts: the right to erasure, done so that the
//! conversation's turns remain (their steps, transitions, outcomes, timings: what the business
//! counts) and what the customer said or gave is gone.
//!
//! Two rules, applied to every stored JSON document of the conversation:
//! - in what came from the customer (inbound events, what the guards read, the state's slots),
//!   every text under a key that holds words ([`WORD_KEYS`]: a message's `body`, a `caption`, a
//!   slot's `value`, an `address`…) is replaced by [`ERASED`], and coordinates are removed;
//! - everywhere else (the bot's replies, the trace, ERP bodies, outbox payloads) each of the
//!   customer's values and words ([`Redactor`]) is replaced by [`ERASED`] wherever it appears.
//!
//! Keys that name things rather than hold words ([`PROTECTED_KEYS`]: flow and step ids,
//! outcomes, codes, references) are never touched, so records still parse and still say what was
//! decided. A turn record gets `erased_at`, and replay skips it.

use regex::Regex;
use serde_json::Value;

use crate::engine::{ConversationState, PhaseMachine, SlotValue};

/// What stands where the customer's words were.
pub const ERASED: &str = "[erased]";

/// Keys whose texts are the customer's words, in what came from the customer.
pub const WORD_KEYS: &[&str] = &[
    "body",
    "caption",
    "text",
    "value",
    "evidence",
    "quote",
    "transcript",
    "address",
    "name",
    "filename",
    "profile_name",
    "understand",
    "last_text",
    "description",
];

/// Keys that name things (never erased, never searched for words).
pub const PROTECTED_KEYS: &[&str] = &[
    "id",
    "flow",
    "step",
    "step_before",
    "step_after",
    "what",
    "outcome",
    "kind",
    "type",
    "code",
    "guard",
    "file",
    "action",
    "status",
    "stage",
    "mood",
    "emotion",
    "journey_id",
    "message_id",
    "idempotency_key",
    "key",
    "hash",
    "flow_hash",
    "lookup_snapshot",
    "phase",
    "doctype",
    "alias",
    "reference",
    "minted_key",
    "write_key",
    "civil",
    "zone",
    "edge",
    "intent",
    "language",
    "source",
    "media_type",
    "mime_type",
    "media_id",
    "phone_number_id",
    "conversation_id",
    "references",
    "journey_flow",
    "flow_versions",
    "timings",
    "holds",
    "to",
    "recipient",
    "messaging_product",
    "recipient_type",
    "sub_type",
    "index",
    "payload",
];

/// Words of a message too common to say anything about the customer; erased with the message,
/// but not searched for in the bot's own sentences.
const COMMON: &[&str] = &[
    "the", "and", "for", "you", "your", "with", "this", "that", "have", "has", "want", "would", "like", "can", "could",
    "please", "book", "booking", "wash", "car", "cars", "what", "when", "where", "how", "are", "was", "not", "but",
    "yes", "all", "any", "now", "today", "tomorrow", "thanks", "thank", "hello", "from", "about", "need", "just",
    "there", "here", "time", "service", "full", "one", "two", "get", "our", "out", "will", "still",
];

/// Keys whose numbers say where the customer is.
const PLACE_KEYS: &[&str] = &["latitude", "longitude"];

/// Replaces a customer's values and words wherever they appear.
#[derive(Debug)]
pub struct Redactor {
    pattern: Option<Regex>,
    words: usize,
}

impl Redactor {
    /// Collects the customer's values from `state` (every slot of the profile, the journeys and
    /// the visits) and their words from `events` (inbound events as stored: every text under a
    /// [`WORD_KEYS`] key), each whole and word by word (words of three characters or more).
    pub fn new(state: &ConversationState, events: &[Value]) -> Redactor {
        let mut values: Vec<String> = Vec::new();
        let slots = state
            .profile
            .values()
            .chain(state.journey.iter().flat_map(|j| j.slots.values()))
            .chain(state.suspended.iter().flat_map(|j| j.slots.values()))
            .chain(state.visits.iter().flat_map(|v| v.slots.values()));
        for s in slots {
            values.push(s.value.display());
            match &s.value {
                SlotValue::Text { value } => values.push(value.clone()),
                SlotValue::Address { text, .. } => values.push(text.clone()),
                SlotValue::Media { caption: Some(c), .. } => values.push(c.clone()),
                _ => {}
            }
        }
        let mut typed: Vec<String> = Vec::new();
        for e in events {
            collect_words(e, None, &mut typed);
        }
        let mut words: Vec<String> = Vec::new();
        for (v, from_text) in values.iter().map(|v| (v, false)).chain(typed.iter().map(|t| (t, true))) {
            let v = v.trim();
            if v.chars().count() >= 3 {
                words.push(v.to_string());
            }
            // A slot's every word is the customer's; of a message, the words that could say who or
            // where they are (not the common words every message has).
            let parts = v.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3);
            words
                .extend(parts.filter(|w| !from_text || !COMMON.contains(&w.to_lowercase().as_str())).map(String::from));
        }
        words.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        words.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let alternation = words.iter().map(|w| regex::escape(w)).collect::<Vec<_>>().join("|");
        let pattern = (!words.is_empty()).then(|| Regex::new(&format!("(?i){alternation}")).ok()).flatten();
        Redactor { pattern, words: words.len() }
    }

    /// How many values and words it looks for.
    pub fn len(&self) -> usize {
        self.words
    }

    /// Whether it looks for nothing.
    pub fn is_empty(&self) -> bool {
        self.words == 0
    }

    /// `text` with every value and word of the customer replaced.
    pub fn text(&self, text: &str) -> String {
        match &self.pattern {
            Some(p) => p.replace_all(text, ERASED).into_owned(),
            None => text.to_string(),
        }
    }

    /// Erases in `v`: with `from_customer`, texts under [`WORD_KEYS`] wholly; every other text
    /// (not under [`PROTECTED_KEYS`]) word by word. Coordinates go in both cases.
    pub fn json(&self, v: &mut Value, from_customer: bool) {
        self.walk(v, None, from_customer);
    }

    fn walk(&self, v: &mut Value, key: Option<&str>, from_customer: bool) {
        // A protected key keeps its text, or its list of texts; an object under it (an event's
        // `kind`) is looked into, key by key.
        if key.is_some_and(|k| PROTECTED_KEYS.contains(&k)) && !v.is_object() {
            return;
        }
        match v {
            Value::String(s) => {
                *s = if from_customer && key.is_some_and(|k| WORD_KEYS.contains(&k)) {
                    ERASED.to_string()
                } else {
                    self.text(s)
                };
            }
            Value::Number(_) if key.is_some_and(|k| PLACE_KEYS.contains(&k)) => *v = Value::Null,
            Value::Array(items) => items.iter_mut().for_each(|i| self.walk(i, key, from_customer)),
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    self.walk(item, Some(k.as_str()), from_customer);
                }
            }
            _ => {}
        }
    }
}

fn collect_words(v: &Value, key: Option<&str>, out: &mut Vec<String>) {
    if key.is_some_and(|k| PROTECTED_KEYS.contains(&k)) && !v.is_object() {
        return;
    }
    match v {
        Value::String(s) if key.is_some_and(|k| WORD_KEYS.contains(&k)) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| collect_words(i, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, i)| collect_words(i, Some(k.as_str()), out)),
        _ => {}
    }
}

/// The state without the customer's data: no profile, journeys, visits or held places; the
/// counts (turns, journeys completed), the ERP references, the stage, the opt-out and a
/// hand-off under way are kept.
pub fn erase_state(state: &ConversationState, redactor: &Redactor) -> Value {
    let mut s = state.clone();
    s.profile.clear();
    s.journey = None;
    s.suspended.clear();
    s.visits.clear();
    s.holds.clear();
    s.unmatched = None;
    s.last_question = None;
    s.wake_at = None;
    if s.handoff().is_none() {
        s.phase = Some(PhaseMachine::default());
    }
    let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
    redactor.json(&mut v, false);
    // The customer's WhatsApp id addresses the conversation; it is kept whatever they typed.
    v["customer"] = Value::String(state.customer.clone());
    v
}

/// Erases a stored turn record (JSON): the event, the plan and what the guards read wholly
/// (with the LLM's requests and answers), the state before as [`erase_state`], everything else
/// word by word; marks it `erased_at` (Unix ms).
pub fn erase_record(record: &mut Value, redactor: &Redactor, now_ms: i64) {
    let Value::Object(map) = record else { return };
    for key in ["event", "plan", "guards"] {
        if let Some(v) = map.get_mut(key) {
            redactor.json(v, true);
        }
    }
    if let Some(Value::Array(runs)) = map.get_mut("guards").and_then(|g| g.get_mut("runs")) {
        for run in runs {
            if let Some(detail) = run.get_mut("detail") {
                *detail = Value::Null;
            }
        }
    }
    if let Some(before) = map.get("state_before").cloned() {
        let erased = match serde_json::from_value::<ConversationState>(before) {
            Ok(s) => erase_state(&s, redactor),
            Err(_) => Value::Null,
        };
        map.insert("state_before".into(), erased);
    }
    for (key, v) in map.iter_mut() {
        if !matches!(key.as_str(), "event" | "plan" | "guards" | "state_before") {
            redactor.json(v, false);
        }
    }
    map.insert("erased_at".into(), Value::from(now_ms));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FilledSlot, SlotSource};
    use serde_json::json;

    #[test]
    fn the_customers_words_go_and_the_names_of_things_stay() {
        let mut state = ConversationState::new("971500000001");
        let slot =
            |v: &str| FilledSlot { value: SlotValue::Text { value: v.into() }, source: SlotSource::Parser, turn: 1 };
        state.profile.insert("first_name".into(), slot("Jane"));
        state.profile.insert("car_plate".into(), slot("ABC-1234"));
        let event = json!({"kind": {"type": "text", "body": "I'm Jane, abc-1234 is the car"}, "message_id": "wamid.1"});
        let r = Redactor::new(&state, std::slice::from_ref(&event));
        assert!(!r.is_empty());
        assert_eq!(r.text("You're booked, JANE! Plate ABC-1234."), "You're booked, [erased]! Plate [erased].");

        let mut record = json!({
            "event": event,
            "step_before": "booking/name", "outcome": "ok",
            "replies": [{"type": "text", "body": "Thanks Jane! Which service?"}],
            "trace": [{"what": "fill", "detail": "first_name = \"Jane\"", "edge": ["name", "service"]}],
            "guards": {"runs": [{"guard": "llm", "detail": {"prompt": "Jane"}}], "slots": {"first_name": {"value": {"type": "text", "value": "Jane"}, "evidence": "I'm Jane"}}},
            "erp": [{"body": {"customer_name": "Jane Doe", "latitude": 25.2}}],
        });
        erase_record(&mut record, &r, 42);
        let text = record.to_string();
        assert!(!text.to_lowercase().contains("jane") && !text.contains("1234"), "{text}");
        assert_eq!(record["step_before"], "booking/name");
        assert_eq!(record["trace"][0]["what"], "fill");
        assert_eq!(record["replies"][0]["body"], "Thanks [erased]! Which service?");
        assert_eq!(record["guards"]["runs"][0]["detail"], Value::Null);
        assert_eq!(record["erp"][0]["body"]["latitude"], Value::Null);
        assert_eq!(record["erased_at"], 42);

        let erased: ConversationState = serde_json::from_value(erase_state(&state, &r)).unwrap();
        assert!(erased.profile.is_empty());
        assert_eq!(erased.customer, "971500000001");
    }
}
