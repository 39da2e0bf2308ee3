//! What the engine consumes and produces, free of any channel's wire format: inbound events,
//! guard results, replies and ERP requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::SlotValue;
use crate::flow::erp_actions::RenderedAction;
use crate::flow::graph::{ChoiceOption, SourceRef};

/// One inbound event, normalised from the channel (or produced by the outbox for ERP answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    /// The channel's message id (WhatsApp `wamid`), or `erp:<outbox id>` for ERP answers.
    pub message_id: String,
    /// The customer's WhatsApp id.
    pub customer: String,
    /// The customer's profile name, when the channel sent one.
    #[serde(default)]
    pub profile_name: Option<String>,
    /// When the customer sent it, Unix seconds.
    pub timestamp: i64,
    /// The id of our message this one replies to (WhatsApp `context.id`), or reacts to
    /// (`reaction.message_id`).
    #[serde(default)]
    pub context_id: Option<String>,
    /// What it is.
    pub kind: EventKind,
    /// Set by the webhook when the sender exceeded its rate limit: the message is kept and
    /// recorded, but not answered.
    #[serde(default)]
    pub throttled: bool,
    /// Set by the webhook when the same delivery (one POST) holds a later message from the same
    /// customer that will be answered: this turn keeps its effects but leaves its question to
    /// the later message's turn, so two messages sent together get one answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub followed: bool,
}

impl InboundEvent {
    /// An event the service makes itself (an ERP answer, a wake-up, an agent's action, a
    /// conversation moved from another number): no profile name, no reply context, never
    /// throttled. `timestamp` is Unix seconds.
    pub fn internal(
        message_id: impl Into<String>,
        customer: impl Into<String>,
        timestamp: i64,
        kind: EventKind,
    ) -> Self {
        InboundEvent {
            message_id: message_id.into(),
            customer: customer.into(),
            profile_name: None,
            timestamp,
            context_id: None,
            kind,
            throttled: false,
            followed: false,
        }
    }
}

/// The kinds of inbound event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Typed text.
    Text {
        /// The text.
        body: String,
    },
    /// A reply button, list row or template quick-reply pressed.
    Choice {
        /// The id we gave the button or row.
        id: String,
        /// Its title.
        title: String,
    },
    /// A shared location.
    Location {
        /// Degrees.
        latitude: f64,
        /// Degrees.
        longitude: f64,
        /// Place name, if the customer picked a place.
        #[serde(default)]
        name: Option<String>,
        /// Place address, if the customer picked a place.
        #[serde(default)]
        address: Option<String>,
    },
    /// An image, document, audio, video or sticker.
    Media {
        /// `image`, `document`, `audio`, `video` or `sticker`.
        media_type: String,
        /// The channel's media id.
        media_id: String,
        /// MIME type.
        #[serde(default)]
        mime_type: Option<String>,
        /// Caption.
        #[serde(default)]
        caption: Option<String>,
    },
    /// Shared contact cards.
    Contacts {
        /// How many.
        count: usize,
    },
    /// A reaction to one of our messages (empty emoji: removed).
    Reaction {
        /// The emoji.
        emoji: String,
    },
    /// A type no journey can use (a poll, an order, an unknown type).
    Unsupported {
        /// The channel's type name.
        kind: String,
    },
    /// A person's message to the customer, through the admin API.
    AgentMessage {
        /// Who wrote it.
        agent: String,
        /// The text.
        text: String,
    },
    /// A person takes the conversation over.
    AgentTakeover {
        /// Who.
        agent: String,
    },
    /// A person gives the conversation back to the bot.
    AgentRelease {
        /// Who.
        agent: String,
    },
    /// The scheduler woke the conversation (a reminder may be due).
    Tick,
    /// WhatsApp says the customer moved to a new phone number (`system` message of type
    /// `user_changed_number` / `customer_changed_number`, reference §4): the conversation, its
    /// profile and open journeys go to the new number.
    NumberChanged {
        /// The new WhatsApp id.
        new_customer: String,
    },
    /// Another `system` notice about the customer (their identity, i.e. security code, changed:
    /// `customer_identity_changed`): recorded, nothing to answer.
    SystemNotice {
        /// WhatsApp's `system.type`.
        kind: String,
    },
    /// The customer deleted one of their messages (`revoke`): recorded, nothing to answer.
    Deleted {
        /// The wamid of the deleted message.
        original_id: String,
    },
    /// The customer edited one of their messages (`edit`): read again when it answers the
    /// question still open, recorded otherwise.
    Edited {
        /// The wamid of the message edited.
        original_id: String,
        /// The message as it reads now.
        message: Box<EventKind>,
    },
    /// The customer's marketing preference changed on WhatsApp's side (`user_preferences`
    /// webhook field): `stop` opts out of offers and reminders, `resume` opts back in.
    MarketingPreference {
        /// Whether offers and reminders may be sent.
        opted_in: bool,
        /// WhatsApp's own words for it.
        #[serde(default)]
        detail: String,
    },
    /// A conversation moved here from the customer's old number (the other side of
    /// [`EventKind::NumberChanged`]).
    Transfer {
        /// The old WhatsApp id.
        from_customer: String,
        /// What the old conversation held.
        carried: Box<super::state::Carried>,
        /// Carried over from a website chat ("Continue on WhatsApp"): the journey goes on at
        /// once, its question asked here.
        #[serde(default)]
        joined: bool,
    },
    /// The customer sent, from WhatsApp, the code of a website chat ("Continue on WhatsApp"):
    /// that chat is being carried over to this conversation.
    JoinedFromWeb {
        /// The website chat's session.
        session: String,
    },
    /// This website chat continues on WhatsApp (the visitor sent its code from there): what it
    /// holds goes to that conversation.
    ContinuedOnWhatsApp {
        /// The customer's WhatsApp id.
        customer: String,
        /// The business number they wrote to.
        phone_number_id: String,
    },
    /// An ERP write failed once and is being retried.
    ErpDelayed {
        /// The journey.
        journey_id: String,
        /// The action.
        action: String,
    },
    /// The ERP's answer to a write this conversation requested.
    ErpOutcome {
        /// The journey that requested it.
        journey_id: String,
        /// The action.
        action: String,
        /// The reference on success.
        #[serde(default)]
        reference: Option<String>,
        /// The reason on failure (after retries).
        #[serde(default)]
        error: Option<String>,
    },
    /// A person approved (and perhaps edited) a reply to the customer's support ticket in the
    /// console: it is sent to the customer and posted on the ticket (see `engine::replies`).
    TicketReply {
        /// The draft's id (`reply_drafts`).
        draft: i64,
        /// The ticket's ERP name.
        ticket: String,
        /// Its subject.
        subject: String,
        /// The reply as approved.
        text: String,
        /// Who approved it.
        reviewer: String,
    },
    /// Something of this conversation could not be read and was set aside for a person (the
    /// worker's quarantine): a stored inbound event, the stored state, or a turn that failed on
    /// every attempt. The conversation is handed to a person.
    SetAside {
        /// What was set aside: `inbox_event`, `state` or `turn`.
        what: String,
        /// The quarantine entry's id (admin API, `explain`).
        quarantine_id: i64,
        /// Why, with the failing subsystem's code.
        error: String,
    },
}

impl EventKind {
    /// A short name for records and logs.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Text { .. } => "text",
            EventKind::Choice { .. } => "choice",
            EventKind::Location { .. } => "location",
            EventKind::Media { .. } => "media",
            EventKind::Contacts { .. } => "contacts",
            EventKind::Reaction { .. } => "reaction",
            EventKind::Unsupported { .. } => "unsupported",
            EventKind::ErpOutcome { .. } => "erp_outcome",
            EventKind::AgentMessage { .. } => "agent_message",
            EventKind::AgentTakeover { .. } => "agent_takeover",
            EventKind::AgentRelease { .. } => "agent_release",
            EventKind::Tick => "tick",
            EventKind::ErpDelayed { .. } => "erp_delayed",
            EventKind::SetAside { .. } => "set_aside",
            EventKind::NumberChanged { .. } => "number_changed",
            EventKind::SystemNotice { .. } => "system_notice",
            EventKind::Deleted { .. } => "deleted",
            EventKind::Edited { .. } => "edited",
            EventKind::MarketingPreference { .. } => "marketing_preference",
            EventKind::Transfer { .. } => "transfer",
            EventKind::JoinedFromWeb { .. } => "joined_from_web",
            EventKind::ContinuedOnWhatsApp { .. } => "continued_on_whatsapp",
            EventKind::TicketReply { .. } => "ticket_reply",
        }
    }

    /// Whether the customer sent it (rather than the ERP, an agent or the scheduler).
    pub fn from_customer(&self) -> bool {
        matches!(
            self,
            EventKind::Text { .. }
                | EventKind::Choice { .. }
                | EventKind::Location { .. }
                | EventKind::Media { .. }
                | EventKind::Contacts { .. }
                | EventKind::Reaction { .. }
                | EventKind::Unsupported { .. }
                | EventKind::Edited { .. }
                | EventKind::JoinedFromWeb { .. }
        )
    }

    /// Whether the customer expects an answer to it: a message they wrote, sent, picked or shared
    /// (not a reaction, an edit or a notification).
    pub fn expects_answer(&self) -> bool {
        self.from_customer() && !matches!(self, EventKind::Reaction { .. } | EventKind::Edited { .. })
    }

    /// Whether it is a notification about the customer rather than something they wrote to the
    /// business (a number or identity change, a deletion, a marketing preference, a moved
    /// conversation): such an event is recorded and never answered.
    pub fn is_notification(&self) -> bool {
        matches!(
            self,
            EventKind::NumberChanged { .. }
                | EventKind::SystemNotice { .. }
                | EventKind::Deleted { .. }
                | EventKind::MarketingPreference { .. }
                | EventKind::Transfer { .. }
        )
    }
}

/// What the guard phase found in a typed message: which slots to fill, and which guard ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardResults {
    /// The flow the extraction was for.
    #[serde(default)]
    pub flow: Option<String>,
    /// Slot values found, by slot.
    #[serde(default)]
    pub slots: BTreeMap<String, Extracted>,
    /// Why the focus slots could not be read, when they could not (shown to the customer).
    #[serde(default)]
    pub problem: Option<String>,
    /// Every guard that ran, in order.
    #[serde(default)]
    pub runs: Vec<GuardRun>,
    /// Lookup results by name (`catalog`, `visit_slots`).
    #[serde(default)]
    pub lookups: BTreeMap<String, Vec<ChoiceOption>>,
    /// A day the customer gave without a time (`YYYY-MM-DD`), to remember for the next message.
    #[serde(default)]
    pub date_only: Option<String>,
    /// A day named without a time while something else was asked (`YYYY-MM-DD`), to keep in the
    /// journey until it asks for the date and time ([`super::Journey::day_hint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_mentioned: Option<String>,
    /// Lookups that failed this turn (an ERP error): their empty options mean "unknown", not
    /// "none found".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_lookups: Vec<String>,
    /// The intent and emotion of the typed message, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub understanding: Option<Understanding>,
    /// What the `knowledge` lookup answered a question with, when it read one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<super::answers::KnowledgeReading>,
    /// For an asked choice the customer's words fit several options of ("wash" with two washes
    /// on offer): the ids of those options, so the question is asked again with only them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub candidates: BTreeMap<String, Vec<String>>,
    /// Values that may answer the question but are not sure ("near the mall" for an address):
    /// the engine asks the customer to confirm one before it fills its slot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unsure: BTreeMap<String, Extracted>,
    /// What the speech-to-text guard heard in a voice note, when it ran: the note is then read as
    /// this typed text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// What the parsers read from the text for the flow it may switch to
    /// ([`super::GuardPlan::alternative`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternative: Option<Box<GuardResults>>,
    /// A key minted for this turn by whoever runs it (a UUIDv7 string: unique across business
    /// numbers, databases and instances). A journey that asks the ERP for a write this turn names
    /// its writes with it (`Journey::write_key`), so that no other journey's write, in this
    /// database or in one reset or shared with another, can be taken for it. Absent in records
    /// stored before keys were minted: the journey's id names its writes then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_key: Option<String>,
    /// Places taken in the visit windows, when the business declares a capacity and the turn
    /// read `visit_slots` ([`super::capacity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<super::capacity::Availability>,
}

/// What a typed message is about and how the customer seems to feel: the typed output of the
/// intent-and-emotion guard. The LLM must answer JSON valid against this type's schema (with
/// `intent` narrowed to the declared intents); the deterministic reading fills it otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Understanding {
    /// A flow id, `enquiry`-like flows included, or `other` when the message asks for none.
    pub intent: String,
    /// How the customer seems to feel.
    pub emotion: crate::flow::graph::Emotion,
    /// 0 to 1: how sure the reading is.
    pub confidence: f64,
}

/// One extracted slot value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extracted {
    /// The value.
    pub value: SlotValue,
    /// `parser` or `llm`.
    pub source: super::state::SlotSource,
    /// The customer's words it was read from.
    pub evidence: String,
}

/// The record of one guard run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardRun {
    /// `parser`, `llm` or `lookup:<name>`.
    pub guard: String,
    /// `ok`, or the stable error code of its failure (`llm.timeout`, `guard.ungrounded`…).
    pub outcome: String,
    /// Slots it filled.
    #[serde(default)]
    pub filled: Vec<String>,
    /// Milliseconds it took.
    pub latency_ms: u64,
    /// Details: the LLM's model, request, raw answers and validation errors; a lookup's source.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// One option of a reply, with the id the channel will echo back when it is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyOption {
    /// The id (at most 200 characters: the list-row id limit).
    pub id: String,
    /// The title.
    pub title: String,
    /// Optional description (list rows only).
    #[serde(default)]
    pub description: Option<String>,
}

/// A message to the customer, before a channel renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Plain text.
    Text {
        /// The text.
        body: String,
    },
    /// A question with options: rendered as reply buttons when they fit, as a list otherwise.
    Choices {
        /// The question.
        body: String,
        /// The options.
        options: Vec<ReplyOption>,
        /// The label of the list's button ("Choose").
        button: String,
    },
    /// An approved template message: the only kind WhatsApp delivers outside the 24-hour
    /// customer-service window (`../shared/reference/whatsapp-cloud-api.md` §8).
    Template {
        /// What the customer reads, as the flow words it (for transcripts and records; WhatsApp
        /// shows the approved template's own text with `parameters` in it).
        body: String,
        /// The template's approved name.
        name: String,
        /// Its language code.
        language: String,
        /// The body parameters `{{1}}`, `{{2}}`…, in order.
        parameters: Vec<String>,
        /// Quick-reply buttons: each option's id is the payload WhatsApp echoes back when it is
        /// pressed; the title is the button's approved label.
        options: Vec<ReplyOption>,
    },
}

impl Reply {
    /// The text of the reply.
    pub fn body(&self) -> &str {
        match self {
            Reply::Text { body } | Reply::Choices { body, .. } | Reply::Template { body, .. } => body,
        }
    }
}

/// One entry of a turn's trace: what the engine decided and which line of which flow made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// `start`, `fill`, `transition`, `ask`, `reprompt`, `stale_button`, `erp_request`, `erp_outcome`,
    /// `end`, `cancel`, `menu`, `ignored`, `unsupported`.
    pub what: String,
    /// Words.
    pub detail: String,
    /// The flow line responsible, when one is.
    #[serde(default)]
    pub source: Option<SourceRef>,
    /// For a transition, the edge of the flow's graph it took: `(from, to)`, with `(change)` as
    /// `from` for a part of the summary asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<(String, String)>,
}

impl TraceEntry {
    /// An entry without an edge.
    pub fn new(what: &str, detail: String, source: Option<SourceRef>) -> Self {
        TraceEntry { what: what.into(), detail, source, edge: None }
    }
}

/// A request to write to the ERP, for the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErpRequest {
    /// The journey.
    pub journey_id: String,
    /// The rendered, validated action.
    pub action: RenderedAction,
}
