//! The compiled, typed flow graph the engine runs. Built only by [`super::compile_flow`], so every
//! name in it is known to exist: a target step, a slot, an ERP action, a prompt.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::format::SlotType;

/// Where something was declared: `file:line:col`, for turn records and `explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The flow file, relative to the flows directory's parent (`flows/booking.flow.yaml`).
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One option of a choice slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceOption {
    /// Stable id stored in the slot.
    pub id: String,
    /// What the customer sees.
    pub title: String,
    /// Optional second line.
    pub description: Option<String>,
    /// Other words the customer may type for it.
    pub synonyms: Vec<String>,
    /// Price in the business's currency, when the option comes from the catalog.
    pub price: Option<f64>,
}

/// Where a slot's options come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OptionSource {
    /// A fixed list.
    Static(Vec<ChoiceOption>),
    /// A named lookup, resolved before each turn: `catalog` or `visit_slots`.
    Lookup(String),
    /// No options (free input).
    None,
}

/// The lookup an `end` step with `offer: true` shows its offer from (declared in `erp.yaml`).
pub const OFFERS_LOOKUP: &str = "current_offers";

/// The lookups the engine knows.
pub const KNOWN_LOOKUPS: &[&str] = &["catalog", "visit_slots", "knowledge"];

/// A typed slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slot {
    /// Slot name.
    pub name: String,
    /// Its type.
    pub kind: SlotType,
    /// The label shown in summaries.
    pub label: String,
    /// Customer-profile data, shared across journeys.
    pub profile: bool,
    /// Its options.
    pub options: OptionSource,
    /// Filled with the journey's opening message when it is a sentence.
    pub opening: bool,
    /// For an amount: the choice slot whose option amount it may not exceed.
    pub at_most: Option<String>,
    /// For a number: the smallest and largest numbers taken. Left out of the JSON for other
    /// slots, so flows without numbers keep their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(u64, u64)>,
    /// For a number: the words that say what is counted, normalised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<String>,
}

/// How the customer seems to feel, read from each typed message by the intent-and-emotion
/// guard (deterministic cues, or the LLM when it is configured and the cues settle nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Emotion {
    /// Nothing in particular.
    #[default]
    Neutral,
    /// Pleased, thankful.
    Happy,
    /// Lost: "I don't understand", "what do you mean?".
    Confused,
    /// Annoyed: "still waiting", "again", "not happy".
    Frustrated,
    /// Angry: "ridiculous", "unacceptable", "!!!".
    Angry,
}

impl Emotion {
    /// Whether the customer is upset (frustrated or angry): no offer is shown to them, and a
    /// person is offered.
    pub fn is_upset(self) -> bool {
        matches!(self, Emotion::Frustrated | Emotion::Angry)
    }
}

/// Where the customer is in their dealings with the business, tracked in the state so flows can
/// steer towards what the customer came for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// First contact, or a greeting.
    #[default]
    Greeting,
    /// Looking around: the menu, questions, offers.
    Exploring,
    /// At a summary, about to confirm.
    Deciding,
    /// Booking or moving a visit.
    Booking,
    /// Paying.
    Paying,
    /// After a journey completed with the ERP (booked, paid, filed).
    AfterSale,
    /// Complaining.
    Complaint,
}

/// A condition of a branch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Condition {
    /// The slot's stored id equals the value.
    Equals {
        /// The slot tested.
        slot: String,
        /// The id compared with.
        value: String,
    },
    /// The slot's stored id differs from the value (or the slot is empty).
    NotEquals {
        /// The slot tested.
        slot: String,
        /// The id compared with.
        value: String,
    },
    /// The slot's number (a `number` or an `amount`) is at least the value.
    AtLeast {
        /// The slot tested.
        slot: String,
        /// The bound.
        value: f64,
    },
    /// The slot's number is below the value (an empty slot is not).
    Below {
        /// The slot tested.
        slot: String,
        /// The bound.
        value: f64,
    },
    /// The emotion of the customer's latest message is one of these.
    Emotion(Vec<Emotion>),
    /// The conversation's stage is one of these.
    Stage(Vec<Stage>),
}

/// A guarded transition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Branch {
    /// The guard.
    pub when: Condition,
    /// Target step.
    pub goto: String,
    /// Where it was written.
    pub source: SourceRef,
}

/// What a step does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StepKind {
    /// Ask for `slots` until all are filled, then follow `branches` or `next`.
    Collect {
        /// The question.
        ask: String,
        /// An example answer, shown when an answer was not understood.
        example: Option<String>,
        /// The slots it fills.
        slots: Vec<String>,
        /// Guarded transitions, tried in order.
        branches: Vec<Branch>,
        /// The default next step.
        next: String,
        /// Where to go when the one choice slot has no options.
        if_none: Option<String>,
        /// Take the only option without asking.
        pick_single: bool,
    },
    /// Show a summary with Confirm / Change / Cancel.
    Confirm {
        /// The summary text.
        text: String,
        /// Where Confirm goes.
        on_confirm: String,
        /// Where Cancel goes.
        on_cancel: String,
        /// The steps Change offers.
        change: Vec<String>,
    },
    /// Write to the ERP and wait for its answer.
    Erp {
        /// The action in `flows/erp.yaml`.
        action: String,
        /// What to say meanwhile.
        say: Option<String>,
        /// Where to go when the ERP accepted it.
        on_success: String,
        /// Where to go when it failed for good.
        on_failure: String,
    },
    /// Say `text` and end the journey.
    End {
        /// The closing message.
        text: String,
        /// Follow it with one current offer (lookup `current_offers`), unless the customer is
        /// upset or saw an offer already in this conversation.
        offer: bool,
        /// Send it with a "Talk to a person" button.
        offer_person: bool,
        /// Then hand the conversation to a person in the flow's queue. Left out of the JSON
        /// when false, so flows without it keep their hash.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        handoff: bool,
    },
}

/// One step of a compiled flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Step id.
    pub id: String,
    /// Title in the change menu.
    pub title: String,
    /// What it does.
    pub kind: StepKind,
    /// Where it was written.
    pub source: SourceRef,
}

impl Step {
    /// Every step this one can go to directly.
    pub fn targets(&self) -> Vec<&str> {
        match &self.kind {
            StepKind::Collect { branches, next, if_none, .. } => {
                let mut t: Vec<&str> = branches.iter().map(|b| b.goto.as_str()).collect();
                t.push(next);
                t.extend(if_none.as_deref());
                t
            }
            StepKind::Confirm { on_confirm, on_cancel, change, .. } => {
                let mut t = vec![on_confirm.as_str(), on_cancel.as_str()];
                t.extend(change.iter().map(String::as_str));
                t
            }
            StepKind::Erp { on_success, on_failure, .. } => vec![on_success, on_failure],
            StepKind::End { .. } => vec![],
        }
    }
}

/// The flow's LLM guard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlmGuard {
    /// Prompt template name under `prompts/`.
    pub prompt: String,
    /// The template's text.
    pub template: String,
    /// The output type's name.
    pub output: String,
}

/// A compiled journey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    /// Flow id.
    pub id: String,
    /// Flow version.
    pub version: u32,
    /// SHA-256 of the compiled flow (this struct as JSON, with an empty hash), in hex: what a
    /// journey keeps to carry on with the same content.
    #[serde(default)]
    pub hash: String,
    /// Title.
    pub title: String,
    /// The conversation stage while this journey is under way (default `exploring`).
    pub stage: Stage,
    /// The file it came from.
    pub file: String,
    /// Main-menu title, if the flow is offered in the menu.
    pub menu_title: Option<String>,
    /// Its place in the main menu (lower first).
    pub menu_position: u32,
    /// Start keywords, normalised.
    pub keywords: Vec<String>,
    /// Tie-break between journeys whose keywords a message holds.
    pub priority: i32,
    /// Slots in declaration order.
    pub slots: IndexMap<String, Slot>,
    /// Steps in declaration order; the first is the start.
    pub steps: IndexMap<String, Step>,
    /// The LLM guard, if any.
    pub llm: Option<LlmGuard>,
    /// The stuck-state ladder.
    pub recovery: Recovery,
    /// The reminder, if any.
    pub reminder: Option<Reminder>,
    /// The team queue of hand-offs during this journey (`None`: the default queue). Left out
    /// of the JSON when unset, so flows without one keep their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_queue: Option<String>,
    /// What this journey does to a visit, with the booking's reminder and rating. Left out of
    /// the JSON when unset, so flows without one keep their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<VisitRule>,
}

/// What a journey does to a visit once the ERP accepted its write (see
/// [`super::format::VisitDecl`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VisitEffect {
    /// The ERP's reference is a new visit at the time in this `date_time` slot.
    Books {
        /// The slot.
        time: String,
    },
    /// The visit named by the choice slot `visit` moves to the time in slot `to`.
    Moves {
        /// The choice slot naming the visit.
        visit: String,
        /// The `date_time` slot.
        to: String,
    },
    /// The visit named by the choice slot `visit` is cancelled.
    Cancels {
        /// The choice slot naming the visit.
        visit: String,
    },
}

/// A journey's visit rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitRule {
    /// What it does to the visit.
    pub effect: VisitEffect,
    /// The reminder before a booked visit.
    pub reminder: Option<VisitReminder>,
    /// The rating after it.
    pub rating: Option<Rating>,
}

/// A template message as declared (texts still hold `{slot}` placeholders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Approved name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Body parameters, in order.
    pub parameters: Vec<String>,
}

/// One answer to a visit reminder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitAnswer {
    /// Button title.
    pub title: String,
    /// A reply (the visit is then confirmed).
    pub say: Option<String>,
    /// A journey to start, and its choice slot that receives the visit's reference.
    pub start: Option<(String, String)>,
}

/// The reminder before a visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitReminder {
    /// Seconds before the visit.
    pub before_seconds: i64,
    /// The text inside the 24-hour window.
    pub text: String,
    /// The template outside it.
    pub template: Template,
    /// The answers (at most 3).
    pub answers: Vec<VisitAnswer>,
}

/// The rating after a visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// Seconds after the visit's start.
    pub after_seconds: i64,
    /// The question inside the 24-hour window.
    pub text: String,
    /// The template outside it.
    pub template: Template,
    /// The reply to a good rating.
    pub thanks: String,
    /// Ratings below this are low.
    pub low_below: u8,
    /// The reply to a low one (with a "Talk to a person" button).
    pub sorry: String,
}

/// The stuck-state ladder (see [`super::format::RecoveryDecl`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Recovery {
    /// Rephrase after this many turns without progress.
    pub rephrase_after: u32,
    /// Summary with recovery buttons after this many.
    pub summary_after: u32,
    /// Hand-off after this many.
    pub handoff_after: u32,
}

/// A reminder for a customer gone quiet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reminder {
    /// Seconds of silence before it is sent.
    pub after_seconds: i64,
    /// Its text.
    pub text: String,
}

impl Flow {
    /// The start step's id.
    pub fn start_step(&self) -> &str {
        self.steps.keys().next().map(String::as_str).unwrap_or("")
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.get(id)
    }

    /// The collect step that fills `slot`, if any.
    pub fn step_collecting(&self, slot: &str) -> Option<&Step> {
        self.steps
            .values()
            .find(|s| matches!(&s.kind, StepKind::Collect { slots, .. } if slots.iter().any(|x| x == slot)))
    }

    /// Whether a turn at `step` may end at an `end` step with `offer: true` (one of its direct
    /// targets: the journey stops at every ERP step, so an offer after an ERP write is within
    /// reach only from the ERP step, in the turn of the ERP's answer). The offers lookup is read
    /// only for such turns.
    pub fn offer_within_reach(&self, step: &str) -> bool {
        self.step(step).is_some_and(|s| {
            s.targets().iter().any(|t| matches!(self.step(t).map(|x| &x.kind), Some(StepKind::End { offer: true, .. })))
        })
    }

    /// The lookups its slots need (the offers lookup of `offer: true` ends is planned apart, see
    /// [`Flow::offer_within_reach`]).
    pub fn lookups(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .slots
            .values()
            .filter_map(|s| match &s.options {
                OptionSource::Lookup(l) => Some(l.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
