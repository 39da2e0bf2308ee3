//! The intent-and-emotion guard: what a typed message asks for and how the customer seems to
//! feel, as an [`Understanding`].
//!
//! The deterministic reading comes first and always: the intent from the flows' keywords
//! ([`FlowSet::route`]) and the emotion from cue words. The LLM is asked only for a message that
//! no keyword routes, outside any journey, and only when `prompts/understand.md` exists; its
//! answer must validate against the schema of [`Understanding`] with `intent` narrowed to the
//! loaded flows (plus `other`), or it is dropped with its code and the deterministic reading stands.

use std::time::Instant;

use serde_json::{Value, json};

use crate::engine::{GuardRun, Understanding};
use crate::flow::FlowSet;
use crate::flow::graph::Emotion;
use crate::llm::{Attempt, LlmClient};
use crate::text::Folded;

const ANGRY: &[&str] = &[
    "angry",
    "furious",
    "ridiculous",
    "terrible",
    "worst",
    "useless",
    "unacceptable",
    "wtf",
    "scam",
    "disgusting",
    "stupid bot",
    "fed up",
    "sick of",
    "outrageous",
    "pathetic",
];
const FRUSTRATED: &[&str] = &[
    "frustrated",
    "frustrating",
    "annoyed",
    "annoying",
    "disappointed",
    "not happy",
    "unhappy",
    "still waiting",
    "again and again",
    "nobody came",
    "no one came",
    "never came",
    "didn't come",
    "not good enough",
    "upset",
];
const CONFUSED: &[&str] =
    &["don't understand", "dont understand", "confused", "what do you mean", "not sure what", "huh", "i'm lost"];
const HAPPY: &[&str] =
    &["thanks", "thank you", "great", "awesome", "perfect", "love it", "excellent", "amazing", "👍", "😊"];

/// The emotion cues of `text`: angry beats frustrated beats confused beats happy.
pub fn read_emotion(text: &str) -> Emotion {
    let folded = Folded::new(text);
    let has = |words: &[&str]| words.iter().any(|w| folded.has(w) || (!w.is_ascii() && text.contains(w)));
    if has(ANGRY) || text.contains("!!!") {
        Emotion::Angry
    } else if has(FRUSTRATED) {
        Emotion::Frustrated
    } else if has(CONFUSED) || text.contains("??") {
        Emotion::Confused
    } else if has(HAPPY) {
        Emotion::Happy
    } else {
        Emotion::Neutral
    }
}

/// The deterministic reading: the routed flow (confidence 0.8) or `other` (0.2), and the cues.
pub fn deterministic(flows: &FlowSet, text: &str) -> Understanding {
    match flows.route(text) {
        Some(f) => Understanding { intent: f.id.clone(), emotion: read_emotion(text), confidence: 0.8 },
        None => Understanding { intent: "other".into(), emotion: read_emotion(text), confidence: 0.2 },
    }
}

/// The JSON Schema of [`Understanding`] with `intent` restricted to `intents`.
pub fn understanding_schema(intents: &[String]) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Understanding)).unwrap_or_default();
    if let Some(intent) = schema.pointer_mut("/properties/intent") {
        intent["enum"] = json!(intents);
    }
    if let Some(confidence) = schema.pointer_mut("/properties/confidence") {
        confidence["minimum"] = json!(0.0);
        confidence["maximum"] = json!(1.0);
    }
    schema
}

/// Asks the LLM; returns the run record and its reading when it validated.
pub async fn ask_llm(llm: &LlmClient, flows: &FlowSet, prompt: &str, text: &str) -> (GuardRun, Option<Understanding>) {
    let started = Instant::now();
    let mut intents: Vec<String> = flows.flows.keys().cloned().collect();
    intents.push("other".into());
    let lines: Vec<String> = flows.flows.values().map(|f| format!("- {}: {}", f.id, f.title)).collect();
    let system = prompt.replace("{{business}}", &flows.business.name).replace("{{intents}}", &lines.join("\n"));
    let schema = understanding_schema(&intents);
    let mut attempts: Vec<Attempt> = Vec::new();
    let answer = llm.structured(&system, text, "understanding", &schema, &mut attempts).await;
    let (outcome, reading) = match answer {
        Ok(s) => match serde_json::from_value::<Understanding>(s.value) {
            Ok(u) => ("ok".to_string(), Some(u)),
            Err(e) => (format!("llm.invalid_output: {e}"), None),
        },
        Err(e) => (e.code().to_string(), None),
    };
    let run = GuardRun {
        guard: "llm:understand".into(),
        outcome: outcome.split(':').next().unwrap_or_default().to_string(),
        filled: vec![],
        latency_ms: started.elapsed().as_millis() as u64,
        detail: json!({"model": llm.model(), "attempts": attempts, "reading": reading, "error": outcome}),
    };
    (run, reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_emotion_cues_strongest_first() {
        assert_eq!(read_emotion("This is ridiculous, nobody came"), Emotion::Angry);
        assert_eq!(read_emotion("Nobody came again"), Emotion::Frustrated);
        assert_eq!(read_emotion("I don't understand the options"), Emotion::Confused);
        assert_eq!(read_emotion("thanks a lot"), Emotion::Happy);
        assert_eq!(read_emotion("book a wash"), Emotion::Neutral);
        assert_eq!(read_emotion("WHERE ARE YOU!!!"), Emotion::Angry);
    }

    #[test]
    fn the_schema_refuses_an_undeclared_intent_and_a_wild_confidence() {
        let schema = understanding_schema(&["booking".into(), "other".into()]);
        let ok = json!({"intent": "booking", "emotion": "angry", "confidence": 0.9});
        assert!(crate::flow::erp_actions::validate(&schema, &ok).is_empty());
        for bad in [
            json!({"intent": "refund", "emotion": "angry", "confidence": 0.9}),
            json!({"intent": "booking", "emotion": "furious", "confidence": 0.9}),
            json!({"intent": "booking", "emotion": "angry", "confidence": 7}),
            json!({"intent": "booking", "emotion": "angry", "confidence": 0.5, "reply": "hi"}),
        ] {
            assert!(!crate::flow::erp_actions::validate(&schema, &bad).is_empty(), "{bad}");
        }
    }
}
