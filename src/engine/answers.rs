//! Answers from the knowledge base under review: which questions a person should look at. A
//! question is flagged when nothing answered it (the flow said "I don't know"), when the LLM was
//! not sure its worded answer was right, or, within [`FOLLOW_UP_TURNS`] turns of an answer, when
//! the customer says it was wrong ("that's wrong"), reacts 👎, or asks for a person. Flags are
//! part of the turn's decision: queued through the outbox in the turn's commit, once.

use serde::{Deserialize, Serialize};

use super::EventKind;
use super::turn::Turn;
use super::words::has_any;

/// How many turns after an answer a complaint about it, a 👎 or a hand-off still refers to it.
pub const FOLLOW_UP_TURNS: u64 = 3;

/// What customers write when an answer was wrong.
pub const WRONG_WORDS: &[&str] = &[
    "that s wrong",
    "thats wrong",
    "that is wrong",
    "wrong answer",
    "not right",
    "not correct",
    "incorrect",
    "not true",
    "that s not what i asked",
    "not what i asked",
    "doesn t answer",
    "does not answer",
    "you didn t answer",
    "useless answer",
];

/// Why a question is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagReason {
    /// Nothing in the knowledge base answered it.
    Unknown,
    /// The LLM was not sure the passages answered it.
    Unsure,
    /// The customer reacted 👎 to the answer.
    ThumbsDown,
    /// The customer said the answer was wrong.
    Wrong,
    /// The customer asked for a person after the answer.
    Handoff,
    /// A person rejected a reply drafted from it for a support ticket (the reason is the
    /// evidence).
    RejectedReply,
}

impl FlagReason {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagReason::Unknown => "unknown",
            FlagReason::Unsure => "unsure",
            FlagReason::ThumbsDown => "thumbs_down",
            FlagReason::Wrong => "wrong",
            FlagReason::Handoff => "handoff",
            FlagReason::RejectedReply => "rejected_reply",
        }
    }
}

/// A question to review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionFlag {
    /// The customer's question, as written.
    pub question: String,
    /// Why.
    pub reason: FlagReason,
    /// The passages it was answered from (none for `unknown`).
    pub passages: Vec<String>,
    /// What showed it: the customer's words, or the reacted message's id.
    #[serde(default)]
    pub evidence: Option<String>,
}

/// What the knowledge lookup read this turn (from the guards).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KnowledgeReading {
    /// The question.
    pub question: String,
    /// The passages offered as the answer, best first (empty: nothing answered it).
    pub passages: Vec<String>,
    /// The LLM worded an answer and was not sure of it.
    #[serde(default)]
    pub unsure: bool,
}

/// The last answer given from the knowledge base, kept a few turns for follow-ups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastAnswer {
    /// The question.
    pub question: String,
    /// The passages it was answered from.
    pub passages: Vec<String>,
    /// The turn it was given at.
    pub turn: u64,
}

/// Whether `emoji` is a thumbs-down (any skin tone).
pub fn is_thumbs_down(emoji: &str) -> bool {
    emoji.starts_with('\u{1F44E}')
}

/// The flags of this turn, and the last answer kept in the state.
pub fn review(t: &mut Turn<'_>) -> Vec<QuestionFlag> {
    let mut flags = Vec::new();
    if let Some(k) = &t.guards.knowledge {
        if k.passages.is_empty() {
            flags.push(QuestionFlag {
                question: k.question.clone(),
                reason: FlagReason::Unknown,
                passages: vec![],
                evidence: None,
            });
            t.state.last_answer = None;
        } else {
            if k.unsure {
                flags.push(QuestionFlag {
                    question: k.question.clone(),
                    reason: FlagReason::Unsure,
                    passages: k.passages.clone(),
                    evidence: None,
                });
            }
            t.state.last_answer =
                Some(LastAnswer { question: k.question.clone(), passages: k.passages.clone(), turn: t.state.turns });
        }
        return flags;
    }
    let Some(last) = t.state.last_answer.clone() else { return flags };
    if t.state.turns.saturating_sub(last.turn) > FOLLOW_UP_TURNS {
        t.state.last_answer = None;
        return flags;
    }
    let handed_off = t.state.handoff().is_some() && t.before.handoff().is_none();
    let follow_up = match &t.event.kind {
        EventKind::Reaction { emoji } if is_thumbs_down(emoji) => {
            Some((FlagReason::ThumbsDown, t.event.context_id.clone().or_else(|| Some(emoji.clone()))))
        }
        EventKind::Text { body } if has_any(body, WRONG_WORDS) => Some((FlagReason::Wrong, Some(body.clone()))),
        _ if handed_off => Some((FlagReason::Handoff, t.state.handoff().map(|h| h.reason))),
        _ => None,
    };
    if let Some((reason, evidence)) = follow_up {
        flags.push(QuestionFlag { question: last.question, reason, passages: last.passages, evidence });
        t.state.last_answer = None;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbs_down_in_any_skin_tone_and_wrong_words() {
        assert!(is_thumbs_down("👎") && is_thumbs_down("👎🏽") && !is_thumbs_down("👍"));
        assert!(has_any("No, that's wrong!", WRONG_WORDS));
        assert!(has_any("this is not correct", WRONG_WORDS));
        assert!(!has_any("right, thanks", WRONG_WORDS));
    }
}
