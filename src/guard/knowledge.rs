//! The `knowledge` lookup: the passages of the knowledge base and the catalog closest to the
//! customer's question (see [`crate::knowledge`]), as the options of the flow's topic slot. With
//! no question, the topics (entries and services) are listed; a question nothing answers gives
//! no option, and the flow answers honestly ("I don't know"). A question no keyword routes (see
//! [`looks_like_question`]) is tried against the knowledge base too: answered, its flow is
//! picked; not, it is flagged for review while the customer gets the menu.
//!
//! A flow whose LLM guard has the output `knowledge_answer` has its answer worded by the LLM from
//! the best passages: the LLM must answer [`KnowledgeAnswer`], cite the passages it used, and say
//! nothing its sources do not ([`crate::knowledge::check`]). A refused, unsure or missing answer
//! (the LLM down, slow, or wrong) leaves the passages as they are.

use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::GuardRun;
use crate::flow::Business;
use crate::flow::graph::{ChoiceOption, LlmGuard};
use crate::knowledge::{Found, PassageKind, Shelf, check};
use crate::llm::{Attempt, LlmClient};

/// The LLM guard output that words knowledge answers.
pub const KNOWLEDGE_ANSWER: &str = "knowledge_answer";
/// How many of the best passages the LLM is given.
pub const PASSAGES_FOR_LLM: usize = 4;
/// The longest worded answer accepted, in characters (a WhatsApp text may hold 4,096; an answer
/// longer than this is not a rewording of a few passages).
pub const MAX_ANSWER_CHARS: usize = 1_000;

/// What the LLM must answer when it words a knowledge answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeAnswer {
    /// The answer to send, taken only from the passages.
    pub answer: String,
    /// The ids of the passages the answer was taken from.
    pub passages: Vec<String>,
    /// Whether the passages fully answer the question.
    pub sure: bool,
}

/// The schema of [`KnowledgeAnswer`], with the passage ids restricted to `ids`.
pub fn knowledge_answer_schema(ids: &[String]) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(KnowledgeAnswer)).unwrap_or_default();
    if let Some(items) = schema.pointer_mut("/properties/passages/items") {
        items["enum"] = json!(ids);
    }
    schema
}

/// Words that open a question.
const QUESTION_OPENERS: &[&str] = &[
    "what", "when", "where", "which", "who", "why", "how", "do", "does", "did", "is", "are", "can", "could", "will",
    "would", "should", "may",
];

/// Whether `text` reads as a question of at least three words: it ends with a question mark or
/// opens with a question word ("is ceramic coating available", "how long is a wash").
pub fn looks_like_question(text: &str) -> bool {
    let words: Vec<String> = crate::text::fold(text).split_whitespace().map(String::from).collect();
    words.len() >= 3 && (text.trim_end().ends_with('?') || QUESTION_OPENERS.contains(&words[0].as_str()))
}

/// The options for `question` (every topic without one) and the lookup's record: the question,
/// the shelf's revision, and each passage matched with its score.
pub fn closest(shelf: &Shelf, question: Option<&str>) -> (Vec<ChoiceOption>, Value) {
    let Some(q) = question else {
        let options: Vec<ChoiceOption> = shelf.topics().into_iter().map(option).collect();
        return (options, json!({"revision": shelf.revision, "topics": shelf.topics().len()}));
    };
    let found = shelf.find(q);
    let matched: Vec<Value> = found.iter().map(|f| json!({"id": f.passage.id, "score": rounded(f.score)})).collect();
    let best_below = if found.is_empty() { shelf.ranked(q).first().map(|f| rounded(f.score)) } else { None };
    let detail =
        json!({"question": q, "revision": shelf.revision, "matched": matched, "best_below_threshold": best_below});
    (found.iter().map(|f| option(f.passage)).collect(), detail)
}

/// A passage as a choice option: its title, and what is said as the description.
fn option(p: &crate::knowledge::Passage) -> ChoiceOption {
    ChoiceOption {
        id: p.id.clone(),
        title: crate::text::truncate(&p.title, crate::flow::MAX_ROW_TITLE),
        description: Some(p.text.clone()),
        synonyms: vec![p.title.clone()],
        price: p.price,
    }
}

fn rounded(score: f32) -> f64 {
    (f64::from(score) * 1000.0).round() / 1000.0
}

/// Asks the LLM to word the answer to `question` from `found`'s best passages. Returns the run to
/// record and, when the answer passed every check, the one option to offer (the first cited
/// passage's title, the worded answer as its description).
pub async fn worded(
    llm: &LlmClient,
    guard: &LlmGuard,
    business: &Business,
    shelf: &Shelf,
    question: &str,
) -> (GuardRun, Option<ChoiceOption>) {
    let started = Instant::now();
    let found: Vec<Found<'_>> = shelf.find(question).into_iter().take(PASSAGES_FOR_LLM).collect();
    let ids: Vec<String> = found.iter().map(|f| f.passage.id.clone()).collect();
    let listing: Vec<String> =
        found.iter().map(|f| format!("[{}] {}\n{}", f.passage.id, f.passage.title, f.passage.text)).collect();
    let system = guard.template.replace("{{business}}", &business.name).replace("{{passages}}", &listing.join("\n\n"));
    let mut attempts: Vec<Attempt> = Vec::new();
    let answer =
        llm.structured(&system, question, KNOWLEDGE_ANSWER, &knowledge_answer_schema(&ids), &mut attempts).await;
    let mut detail = json!({"model": llm.model(), "prompt": guard.prompt, "output": guard.output, "offered": ids});
    let (outcome, option) = match answer {
        Err(e) => {
            detail["why"] = json!(e.to_string());
            (e.code().to_string(), None)
        }
        Ok(structured) => match serde_json::from_value::<KnowledgeAnswer>(structured.value) {
            Err(e) => {
                detail["why"] = json!(e.to_string());
                ("llm.invalid_output".to_string(), None)
            }
            Ok(a) => {
                detail["answer"] = json!(a.answer);
                detail["cited"] = json!(a.passages);
                detail["sure"] = json!(a.sure);
                match accept(&a, shelf, &found) {
                    Ok(option) => ("ok".to_string(), Some(option)),
                    Err((code, why)) => {
                        detail["why"] = why;
                        (code.to_string(), None)
                    }
                }
            }
        },
    };
    detail["attempts"] = json!(attempts);
    let run = GuardRun {
        guard: "llm".into(),
        outcome,
        filled: vec![],
        latency_ms: started.elapsed().as_millis() as u64,
        detail,
    };
    (run, option)
}

/// Checks a worded answer: it cites passages it was given, is sure, is not too long, and says
/// nothing its cited passages and the catalog do not. Errors: the code and why.
fn accept(a: &KnowledgeAnswer, shelf: &Shelf, offered: &[Found<'_>]) -> Result<ChoiceOption, (&'static str, Value)> {
    let cited: Vec<&crate::knowledge::Passage> =
        offered.iter().map(|f| f.passage).filter(|p| a.passages.contains(&p.id)).collect();
    if cited.is_empty() {
        return Err(("knowledge.uncited", json!("the answer cites none of the passages it was given")));
    }
    if !a.sure {
        return Err(("knowledge.unsure", json!("the LLM is not sure the passages answer the question")));
    }
    let text = a.answer.trim();
    if text.is_empty() || text.chars().count() > MAX_ANSWER_CHARS {
        return Err(("knowledge.answer_length", json!(format!("{} characters", text.chars().count()))));
    }
    let mut sources: Vec<&str> = Vec::new();
    for p in &cited {
        sources.push(&p.title);
        sources.push(&p.text);
    }
    for p in shelf.passages.iter().filter(|p| p.kind == PassageKind::Catalog) {
        sources.push(&p.title);
        sources.push(&p.text);
    }
    let unsupported = check::unsupported(text, &sources);
    if !unsupported.is_empty() {
        return Err(("knowledge.unsupported", json!(unsupported)));
    }
    let first = cited[0];
    Ok(ChoiceOption {
        id: first.id.clone(),
        title: crate::text::truncate(&first.title, crate::flow::MAX_ROW_TITLE),
        description: Some(text.to_string()),
        synonyms: vec![first.title.clone()],
        price: first.price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::{Item, ItemKind};

    fn shelf() -> Shelf {
        let entry = |id: &str, title: &str, kw: &[&str], answer: &str| Item {
            id: id.into(),
            kind: ItemKind::Entry,
            title: title.into(),
            question: None,
            also_asked: vec![],
            answer: answer.into(),
            keywords: kw.iter().map(|s| s.to_string()).collect(),
            category: None,
            source: None,
            revision: 1,
        };
        let items = vec![
            entry("hours", "Opening hours", &["open", "hours"], "Saturday to Thursday, 8:00 to 18:00."),
            entry("areas", "Areas we serve", &["sharjah", "areas"], "Dubai and Sharjah."),
        ];
        let catalog = vec![ChoiceOption {
            id: "Full Wash".into(),
            title: "Full Wash".into(),
            description: None,
            synonyms: vec![],
            price: Some(75.0),
        }];
        Shelf::build(2, &items, &catalog)
    }

    fn answer(text: &str, cited: &[&str], sure: bool) -> KnowledgeAnswer {
        KnowledgeAnswer { answer: text.into(), passages: cited.iter().map(|s| s.to_string()).collect(), sure }
    }

    #[test]
    fn a_faithful_answer_is_taken_and_an_invented_one_refused() {
        let s = shelf();
        let found = s.find("when are you open");
        let ok = accept(&answer("We're open Saturday to Thursday from 8:00 to 18:00.", &["hours"], true), &s, &found);
        assert_eq!(ok.unwrap().description.as_deref(), Some("We're open Saturday to Thursday from 8:00 to 18:00."));
        let code = |a| accept(&a, &s, &found).unwrap_err().0;
        assert_eq!(code(answer("Open until 22:00.", &["hours"], true)), "knowledge.unsupported");
        assert_eq!(code(answer("Open 8:00 to 18:00.", &[], true)), "knowledge.uncited");
        assert_eq!(code(answer("Open 8:00 to 18:00.", &["areas"], true)), "knowledge.uncited", "not offered");
        assert_eq!(code(answer("Maybe 8:00.", &["hours"], false)), "knowledge.unsure");
        // The catalog's prices are sources for any answer.
        assert!(accept(&answer("Yes, and a Full Wash is AED 75.", &["hours"], true), &s, &found).is_ok());
    }

    #[test]
    fn the_record_names_the_passages_and_their_scores() {
        let (options, detail) = closest(&shelf(), Some("Do you serve Sharjah?"));
        assert_eq!(options.len(), 1);
        assert_eq!(detail["matched"][0]["id"], "areas");
        assert!(detail["matched"][0]["score"].as_f64().unwrap() > 1.0);
        let (none, detail) = closest(&shelf(), Some("can you fix my laptop"));
        assert!(none.is_empty());
        assert_eq!(detail["matched"], json!([]));
        let (topics, _) = closest(&shelf(), None);
        assert_eq!(topics.len(), 3);
    }

    #[test]
    fn questions_are_told_from_other_messages() {
        assert!(looks_like_question("Is ceramic coating available?"));
        assert!(looks_like_question("how long is a wash"));
        assert!(looks_like_question("my car, tomorrow?"));
        assert!(!looks_like_question("hi?"));
        assert!(!looks_like_question("my car is dirty"));
    }

    #[test]
    fn the_schema_names_only_the_offered_passages() {
        let schema = knowledge_answer_schema(&["hours".into()]);
        assert_eq!(schema["properties"]["passages"]["items"]["enum"], json!(["hours"]));
    }
}
