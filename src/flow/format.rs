//! The flow-file format: what a business owner writes under `flows/`.
//!
//! These types mirror the YAML one to one and derive [`JsonSchema`], so the shipped
//! `flows/flow.schema.json` (written by `carewell flows schema`) lets an editor complete and check a
//! flow file. They are *not* what the engine runs: [`super::compile_flow`] turns them into the typed graph
//! of [`super::graph`], checking every reference on the way.
//!
//! Values that an error may need to point at are wrapped in [`Located`], which records the line and
//! column of the YAML node they came from.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

/// A value with the 1-based line and column of the YAML node it was read from.
///
/// Deserializes through `serde_saphyr::Spanned`; its JSON Schema is that of `T`, so the location is
/// invisible to the person writing the file. Equality and hashing look at the value only.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The value as written.
    pub value: T,
    /// 1-based line of the node (0 when unknown).
    pub line: u64,
    /// 1-based column of the node (0 when unknown).
    pub column: u64,
}

impl<T> Located<T> {
    /// Wraps a value with an unknown location (line and column 0), for values built in code.
    pub fn unplaced(value: T) -> Self {
        Located { value, line: 0, column: 0 }
    }
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Located<T> {}
impl<T: Hash> Hash for Located<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Located { value: spanned.value, line: spanned.referenced.line(), column: spanned.referenced.column() })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One journey, as written in `flows/<name>.flow.yaml`.
///
/// Steps are listed in the order a customer meets them; the first step is where the journey
/// starts. Exactly one of `collect`, `confirm`, `erp` or `end` makes a step's kind.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// Stable identifier, used in button ids and stored conversations (`[a-z0-9_]+`).
    pub id: Located<String>,
    /// Bump when a change would confuse a conversation already under way; conversations keep
    /// the version they started with.
    pub version: u32,
    /// What the journey is, in the customer's words ("Book a service").
    pub title: String,
    /// The conversation stage while this journey is under way: `booking`, `paying`,
    /// `complaint`, `exploring` (the default)…
    #[serde(default)]
    pub stage: Option<super::graph::Stage>,
    /// How a customer starts this journey.
    #[serde(default)]
    pub start: StartDecl,
    /// The data this journey collects, by slot name.
    pub slots: IndexMap<String, Located<SlotDecl>>,
    /// The optional LLM guard used when the deterministic extractors cannot settle a typed message.
    #[serde(default)]
    pub llm: Option<Located<LlmGuardDecl>>,
    /// The steps, in the order a customer normally meets them.
    pub steps: IndexMap<String, Located<StepDecl>>,
    /// The stuck-state ladder: after how many turns without progress in one step each recovery
    /// happens.
    #[serde(default)]
    pub recovery: RecoveryDecl,
    /// One reminder to a customer who went quiet in the middle of this journey.
    #[serde(default)]
    pub reminder: Option<ReminderDecl>,
    /// The team queue a hand-off during this journey waits in (`complaints`, `sales`…): it is
    /// in the hand-off record, the staff alert and the team's webhook. Default `support`.
    #[serde(default)]
    pub handoff_queue: Option<Located<String>>,
    /// What this journey does to a customer's visit once the ERP accepted its write (books,
    /// moves or cancels one), and for a booking journey the reminder before the visit and the
    /// rating after it.
    #[serde(default)]
    pub visit: Option<Located<VisitDecl>>,
}

/// A journey's part in a visit's life. Exactly one of `books`, `moves` (with `to`) or `cancels`.
/// The visit is named by the ERP's reference (a booking's) or by the choice slot whose option id
/// is that reference (the booking being moved or cancelled).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitDecl {
    /// The `date_time` slot that is the visit booked by this journey (`visit_time`).
    #[serde(default)]
    pub books: Option<Located<String>>,
    /// The choice slot naming the visit this journey moves (`booking`)…
    #[serde(default)]
    pub moves: Option<Located<String>>,
    /// …and the `date_time` slot it moves to (`new_time`).
    #[serde(default)]
    pub to: Option<Located<String>>,
    /// The choice slot naming the visit this journey cancels (`booking`).
    #[serde(default)]
    pub cancels: Option<Located<String>>,
    /// With `books`: a reminder before the visit with answers (Confirm / Reschedule / Cancel).
    #[serde(default)]
    pub reminder: Option<VisitReminderDecl>,
    /// With `books`: after the visit, one message asking for a rating from 1 to 5.
    #[serde(default)]
    pub rating: Option<RatingDecl>,
}

/// The reminder before a visit. Inside WhatsApp's 24-hour window it is `text` with one reply
/// button per answer; outside it, the approved `template` with the answers as its quick-reply
/// buttons (`../shared/reference/whatsapp-cloud-api.md` §7–8). Customers who opted out get none.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitReminderDecl {
    /// Hours before the visit it is sent (default 24: the day before). A visit booked later
    /// than that gets none: the confirmation was just sent.
    #[serde(default = "default_hours_before")]
    pub hours_before: u32,
    /// The reminder; `{slot}` placeholders name the booking's slots.
    pub text: Located<String>,
    /// The approved template sent instead outside the 24-hour window.
    pub template: TemplateDecl,
    /// The answers, one reply button each (WhatsApp allows at most 3, reference §7).
    pub answers: Vec<Located<AnswerDecl>>,
}

fn default_hours_before() -> u32 {
    24
}

/// One answer to a reminder: a reply (`say`), or a journey started (`start`) with the visit's
/// reference put in its choice slot `fill`, so the customer is not asked which booking.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerDecl {
    /// The button's title (at most 20 characters).
    pub title: Located<String>,
    /// The reply, with the booking's `{slot}` placeholders; the visit is marked confirmed.
    #[serde(default)]
    pub say: Option<String>,
    /// The journey this answer starts (`reschedule`, `cancel`).
    #[serde(default)]
    pub start: Option<Located<String>>,
    /// That journey's choice slot that receives the visit's reference (`booking`).
    #[serde(default)]
    pub fill: Option<Located<String>>,
}

/// A template message: its approved name, language and body parameters.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDecl {
    /// The template's name as approved in WhatsApp Manager (`visit_reminder`).
    pub name: String,
    /// Its language code as registered (`en`, `en_US`, `ar`).
    pub language: String,
    /// The body's `{{1}}`, `{{2}}`… in order, each a text with `{slot}` placeholders.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// The rating after a visit: sent `hours_after` the visit's time (as `text` with a list of 1–5
/// inside the 24-hour window, as the `template` outside it; the customer may also type the
/// number). A rating below `low_below` is answered with `sorry` and a "Talk to a person" button.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingDecl {
    /// Hours after the visit's start time (default 3).
    #[serde(default = "default_hours_after")]
    pub hours_after: u32,
    /// The question; `{slot}` placeholders name the booking's slots.
    pub text: Located<String>,
    /// The approved template sent instead outside the 24-hour window.
    pub template: TemplateDecl,
    /// The reply to a rating of `low_below` or more; `{rating}` is the number.
    pub thanks: String,
    /// Ratings below this are low (default 3).
    #[serde(default = "default_low_below")]
    pub low_below: u8,
    /// The reply to a low rating, sent with a "Talk to a person" button.
    pub sorry: String,
}

fn default_hours_after() -> u32 {
    3
}

fn default_low_below() -> u8 {
    3
}

/// The escalation ladder of the stuck-state detector. A turn "without progress" is one in which the
/// current step got no new slot (an answer not understood, off-topic text, the same text again,
/// which counts twice). After `rephrase_after` such turns the question is asked another way, with
/// an example and its options; after `summary_after` the customer sees what is known and can
/// continue, start over or talk to a person; after `handoff_after` a person takes over.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryDecl {
    /// Turns without progress before the question is rephrased (default 2).
    pub rephrase_after: u32,
    /// Turns without progress before the summary with Continue / Start over / Talk to a person
    /// (default 3).
    pub summary_after: u32,
    /// Turns without progress before the conversation is handed to a person (default 4).
    pub handoff_after: u32,
}

impl Default for RecoveryDecl {
    fn default() -> Self {
        RecoveryDecl { rephrase_after: 2, summary_after: 3, handoff_after: 4 }
    }
}

/// A reminder sent once when a customer goes quiet mid-journey, only inside WhatsApp's 24-hour
/// customer-service window (`../shared/reference/whatsapp-cloud-api.md` §8).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderDecl {
    /// Minutes of silence before the reminder (at most 1439: it must leave inside the window).
    pub after_minutes: u32,
    /// The reminder; `{question}` is replaced by the pending question.
    pub text: String,
}

/// How a journey is started: from the main menu, by keywords in a message, or by a button.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDecl {
    /// The title of this journey's button in the main menu (WhatsApp: at most 20 characters for a
    /// reply button, 24 for a list row).
    #[serde(default)]
    pub menu_title: Option<Located<String>>,
    /// Words that start this journey when a customer types them outside any journey
    /// (matched case- and accent-insensitively, as whole words; when no journey's keyword is in the
    /// message as written, also with their regular inflections: "washed" for `wash`).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Breaks ties when a message holds keywords of several journeys (higher wins; default 0):
    /// "my car was damaged during the wash" should open a complaint, not a booking.
    #[serde(default)]
    pub priority: i32,
    /// Where this journey's button stands in the main menu (lower first; default 100, then file
    /// order).
    #[serde(default = "default_menu_position")]
    pub menu_position: u32,
}

fn default_menu_position() -> u32 {
    100
}

/// The type of a slot, which picks its deterministic extractor and how it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotType {
    /// A first name ("Jane").
    GivenName,
    /// A last name ("Doe").
    FamilyName,
    /// One of the slot's options (static or from a lookup).
    Choice,
    /// A date and time in the business's time zone ("tomorrow 10am", "Friday 3pm").
    DateTime,
    /// A street address typed as text, or a WhatsApp location message.
    Address,
    /// A vehicle registration plate ("ABC-1234").
    Plate,
    /// A car manufacturer ("Toyota").
    CarMake,
    /// A car model ("Corolla").
    CarModel,
    /// Free text.
    Text,
    /// An image or document the customer sends (a receipt, a photo of damage).
    Media,
    /// An amount of money ("150", "AED 75.50", "150 dirhams").
    Amount,
    /// A whole number of things ("20", "twenty cars", "a fleet of 35 vans", "a dozen"); `min`,
    /// `max` and `units` shape it.
    Number,
    /// A phone number with its country code ("+971 50 123 4567"), kept as `+` and digits. On
    /// WhatsApp it is the number the customer writes from and is never asked; a website visitor
    /// is asked for it before anything goes to the ERP.
    Phone,
}

/// One slot: a typed piece of data the journey collects.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotDecl {
    /// The slot's type.
    #[serde(rename = "type")]
    pub kind: SlotType,
    /// How the slot is named to the customer in summaries ("Car plate").
    #[serde(default)]
    pub label: Option<String>,
    /// Customer-profile data (name, car, address): shared across journeys, remembered for the
    /// customer, and never asked again once known.
    #[serde(default)]
    pub profile: bool,
    /// The options of a `choice` (or the offered values of a `date_time`).
    #[serde(default)]
    pub options: Option<OptionsDecl>,
    /// A `text` slot filled with the message that starts the journey when it is a real sentence
    /// (six words or more), so a customer who already described the problem is not asked again.
    #[serde(default)]
    pub opening: bool,
    /// For an `amount` slot: a choice slot whose option amount (an invoice's amount due) this
    /// amount may not exceed; a larger amount is asked for again with the reason.
    #[serde(default)]
    pub at_most: Option<Located<String>>,
    /// For a `number` slot: the smallest number taken (default 1).
    #[serde(default)]
    pub min: Option<u64>,
    /// For a `number` slot: the largest number taken (default 100000).
    #[serde(default)]
    pub max: Option<u64>,
    /// For a `number` slot: the words that say what is counted (`[cars, vehicles, vans]`), so a
    /// number is read from a sentence only next to one of them ("we run 20 vans") and never from
    /// "villa 12"; a message that is only a number is read whenever the number is asked.
    #[serde(default)]
    pub units: Vec<String>,
}

/// Where a slot's options come from: a fixed list, or a named lookup.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsDecl {
    /// A lookup by name: `catalog` (the ERP's service catalog) or `visit_slots` (times the
    /// business offers, from `flows/business.yaml`).
    #[serde(default)]
    pub lookup: Option<Located<String>>,
    /// A fixed list of options.
    #[serde(default)]
    pub items: Vec<Located<OptionItemDecl>>,
}

/// One fixed option of a choice.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionItemDecl {
    /// Stable id stored in the slot (`[a-z0-9_-]+`).
    pub id: String,
    /// What the customer sees (buttons: at most 20 characters; list rows: at most 24).
    pub title: String,
    /// Optional second line in a list (at most 72 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Other words a customer may type for this option.
    #[serde(default)]
    pub synonyms: Vec<String>,
}

/// The flow's LLM guard: which prompt it uses and which Rust type its answer must match.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmGuardDecl {
    /// A template under `prompts/` (without `.md`).
    pub prompt: Located<String>,
    /// The output type: `slot_extraction` (reads slots from typed text) or `knowledge_answer`
    /// (words the `knowledge` lookup's answer from its passages, checked against them).
    pub output: Located<String>,
}

/// One step (state) of a journey. Exactly one of `collect`, `confirm`, `erp`, `end` is set.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDecl {
    /// How this step is named in the "what would you like to change?" menu (at most 24 characters).
    #[serde(default)]
    pub title: Option<String>,
    /// The question asked to fill this step's slots. `{slot}` placeholders are filled in.
    #[serde(default)]
    pub ask: Option<String>,
    /// A short example answer shown when the customer's answer could not be read.
    #[serde(default)]
    pub example: Option<String>,
    /// The slots this step fills. The step is skipped when all are already filled.
    #[serde(default)]
    pub collect: Vec<Located<String>>,
    /// Conditional transitions, tried in order after the step's slots are filled.
    #[serde(default)]
    pub branches: Vec<BranchDecl>,
    /// The step that follows when no branch applies.
    #[serde(default)]
    pub next: Option<Located<String>>,
    /// Where to go when the step's one choice slot has no options (its lookup found nothing:
    /// no upcoming bookings, nothing due).
    #[serde(default)]
    pub if_none: Option<Located<String>>,
    /// When the step's one choice slot has exactly one option, take it without asking (and say
    /// which it was in the next question's summary).
    #[serde(default)]
    pub pick_single: bool,
    /// A summary with Confirm / Change / Cancel buttons.
    #[serde(default)]
    pub confirm: Option<ConfirmDecl>,
    /// A write to the ERP through the outbox.
    #[serde(default)]
    pub erp: Option<ErpStepDecl>,
    /// The closing message of a journey; the step is final.
    #[serde(default)]
    pub end: Option<Located<String>>,
    /// With `end`: follow the closing message with one current offer (lookup `current_offers`
    /// in `erp.yaml`) — never to an upset customer, never twice in a conversation, never in a
    /// complaint.
    #[serde(default)]
    pub offer: bool,
    /// With `end`: send the closing message with a "Talk to a person" button (an enquiry the
    /// bot cannot answer).
    #[serde(default)]
    pub offer_person: bool,
    /// With `end`: after the closing message, hand the conversation to a person in the flow's
    /// `handoff_queue` (a large fleet to the sales team): the team is told through the outbox
    /// and the customer when a person will answer.
    #[serde(default)]
    pub handoff: bool,
}

/// A guarded transition: `goto` when `when` holds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchDecl {
    /// The condition.
    pub when: ConditionDecl,
    /// The target step.
    pub goto: Located<String>,
}

/// A condition on a slot's value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionDecl {
    /// The slot tested (with `equals` or `not_equals`).
    #[serde(default)]
    pub slot: Option<Located<String>>,
    /// Holds when the emotion of the customer's latest message is one of these (`[angry,
    /// frustrated]`).
    #[serde(default)]
    pub emotion: Option<Located<Vec<super::graph::Emotion>>>,
    /// Holds when the conversation's stage is one of these.
    #[serde(default)]
    pub stage: Option<Located<Vec<super::graph::Stage>>>,
    /// Holds when the slot's stored id equals this.
    #[serde(default)]
    pub equals: Option<String>,
    /// Holds when the slot's stored id differs from this.
    #[serde(default)]
    pub not_equals: Option<String>,
    /// Holds when the slot (a `number` or an `amount`) is at least this (`{slot: cars,
    /// at_least: 10}`).
    #[serde(default)]
    pub at_least: Option<f64>,
    /// Holds when the slot (a `number` or an `amount`) is below this; an empty slot is not.
    #[serde(default)]
    pub below: Option<f64>,
}

/// The summary step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmDecl {
    /// The summary text; `{slot}` placeholders are replaced by the slots' values.
    pub text: Located<String>,
    /// Where Confirm goes.
    pub on_confirm: Located<String>,
    /// Where Cancel goes.
    pub on_cancel: Located<String>,
    /// The collect steps offered by Change (their slots are cleared and asked again).
    #[serde(default)]
    pub change: Vec<Located<String>>,
}

/// A step that posts to the ERP and waits for its answer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErpStepDecl {
    /// The action's name in `flows/erp.yaml`.
    pub action: Located<String>,
    /// What to tell the customer while the ERP works.
    #[serde(default)]
    pub say: Option<String>,
    /// Where to go when the ERP accepted the write; `{erp.reference}` then holds its reference.
    pub on_success: Located<String>,
    /// Where to go when the ERP refused the write or stayed unreachable.
    pub on_failure: Located<String>,
}
