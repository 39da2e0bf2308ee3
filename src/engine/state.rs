//! The conversation state: what the engine remembers about one customer between turns.
//!
//! Stored as JSON in the `conversations` table; every field has a default so a state written by an
//! older build still loads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::phase::{Handoff, PhaseMachine};
use crate::flow::graph::{Emotion, Stage};

/// A typed slot value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SlotValue {
    /// Text: names, plates, car make and model, free text.
    Text {
        /// The value.
        value: String,
    },
    /// One option of a choice.
    Choice {
        /// Option id.
        id: String,
        /// Option title as shown.
        title: String,
        /// Price, for catalog options; the amount, for an invoice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        price: Option<f64>,
        /// The option's second line (a booking's vehicle and status), for `{slot.description}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// A date and time in the business's time zone.
    DateTime {
        /// Civil date-time, `YYYY-MM-DDTHH:MM:SS`.
        civil: String,
        /// The IANA zone it is in.
        zone: String,
    },
    /// An image or document the customer sent.
    Media {
        /// The channel's media id (WhatsApp keeps it downloadable for 7 days).
        media_id: String,
        /// Its MIME type.
        mime_type: String,
        /// The caption, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// A document's file name, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// An amount of money in the business's currency.
    Amount {
        /// The amount.
        value: f64,
    },
    /// A whole number of things (cars in a fleet).
    Number {
        /// The number.
        value: u64,
    },
    /// An address, typed or from a WhatsApp location message.
    Address {
        /// The address text (the place's name and address for a location).
        text: String,
        /// Latitude in degrees, for a location.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        latitude: Option<f64>,
        /// Longitude in degrees, for a location.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        longitude: Option<f64>,
    },
}

impl SlotValue {
    /// The value of a chosen option.
    pub fn from_option(o: &crate::flow::graph::ChoiceOption) -> SlotValue {
        SlotValue::Choice {
            id: o.id.clone(),
            title: o.title.clone(),
            price: o.price,
            description: o.description.clone(),
        }
    }

    /// The id used by branch conditions: the option id of a choice, the text otherwise.
    pub fn id(&self) -> String {
        match self {
            SlotValue::Text { value } => value.clone(),
            SlotValue::Choice { id, .. } => id.clone(),
            SlotValue::DateTime { civil, .. } => civil.clone(),
            SlotValue::Address { text, .. } => text.clone(),
            SlotValue::Media { media_id, .. } => media_id.clone(),
            SlotValue::Amount { value } => format!("{value:.2}"),
            SlotValue::Number { value } => value.to_string(),
        }
    }

    /// The number a branch compares (`at_least`, `below`): a number's or an amount's value.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            SlotValue::Number { value } => Some(*value as f64),
            SlotValue::Amount { value } => Some(*value),
            _ => None,
        }
    }

    /// How the value is shown to the customer ("Tue 25 Nov, 10:00").
    pub fn display(&self) -> String {
        match self {
            SlotValue::Text { value } => value.clone(),
            SlotValue::Choice { title, .. } => title.clone(),
            SlotValue::DateTime { civil, .. } => match civil.parse::<jiff::civil::DateTime>() {
                Ok(dt) => dt.strftime("%a %-d %b, %H:%M").to_string(),
                Err(_) => civil.clone(),
            },
            SlotValue::Address { text, latitude, longitude } => match (text.is_empty(), latitude, longitude) {
                (true, Some(la), Some(lo)) => format!("📍 {la:.5}, {lo:.5}"),
                _ => text.clone(),
            },
            SlotValue::Media { mime_type, filename, .. } => match filename {
                Some(f) => format!("📎 {f}"),
                None => format!("📎 {}", if mime_type.starts_with("image/") { "photo" } else { "file" }),
            },
            SlotValue::Amount { value } => format!("{value:.2}"),
            SlotValue::Number { value } => value.to_string(),
        }
    }

    /// The value as ERP templates see it: a string, or an object whose `value` is used when the
    /// placeholder names the slot alone (`${visit_time}`) and whose fields can be named
    /// (`${visit_time.date}`, `${service.price}`).
    pub fn to_template_value(&self) -> Value {
        match self {
            SlotValue::Text { value } => Value::String(value.clone()),
            SlotValue::Choice { id, title, price, description } => {
                json!({"value": id, "id": id, "title": title, "price": price, "description": description})
            }
            SlotValue::DateTime { civil, zone } => {
                let (date, time) = civil.split_once('T').unwrap_or((civil.as_str(), "00:00:00"));
                json!({"value": format!("{date} {time}"), "date": date, "time": time, "zone": zone})
            }
            SlotValue::Address { text, latitude, longitude } => {
                json!({"value": if text.is_empty() { self.display() } else { text.clone() }, "latitude": latitude, "longitude": longitude})
            }
            SlotValue::Media { media_id, mime_type, caption, filename } => {
                json!({"value": media_id, "media_id": media_id, "mime_type": mime_type, "caption": caption, "filename": filename})
            }
            SlotValue::Amount { value } => json!(value),
            SlotValue::Number { value } => json!(value),
        }
    }
}

/// How a slot got its value, for turn records and summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotSource {
    /// A button or list row the bot offered.
    Button,
    /// A deterministic extractor on typed text.
    Parser,
    /// The LLM guard, grounded in the customer's words.
    Llm,
    /// A WhatsApp location message.
    Location,
    /// The customer's profile from an earlier journey.
    Profile,
    /// The only option an ERP lookup listed (`pick_single`).
    Erp,
    /// An image or document the customer sent.
    Upload,
    /// The channel itself: the WhatsApp number the customer writes from (a phone slot).
    Channel,
}

/// The slot whose number `customer_phone` is, when the customer gave one (a website visitor).
pub const PHONE_SLOT: &str = "phone";

/// The customer's own phone number when their id is one (a WhatsApp number: 8 to 15 digits,
/// E.164), as `+` and its digits.
pub fn phone_of(customer: &str) -> Option<String> {
    ((8..=15).contains(&customer.len()) && customer.chars().all(|c| c.is_ascii_digit())).then(|| format!("+{customer}"))
}

/// A filled slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilledSlot {
    /// The value.
    pub value: SlotValue,
    /// Where it came from.
    pub source: SlotSource,
    /// The turn that filled it.
    pub turn: u64,
}

/// The answer of an ERP write, kept on the journey for `{erp.reference}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErpStatus {
    /// The action.
    pub action: String,
    /// The ERP's reference, on success.
    pub reference: Option<String>,
    /// Why it failed, on failure.
    pub error: Option<String>,
}

/// One journey under way: a flow instance with its own id and slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    /// Journey id (UUID v7 text); part of ERP idempotency keys.
    pub id: String,
    /// Flow id.
    pub flow: String,
    /// The flow version it started on.
    pub version: u32,
    /// The SHA-256 of the compiled flow it started on: it carries on with that content after an
    /// edit, a restart or on another instance (absent in journeys started before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_hash: Option<String>,
    /// The current step.
    pub step: String,
    /// Filled slots.
    pub slots: BTreeMap<String, FilledSlot>,
    /// Turns at the current step without a newly filled slot (the stuck-state detector's count;
    /// the same text again counts twice).
    #[serde(default)]
    pub no_progress: u32,
    /// The customer's last text at this step, folded, to notice repetition.
    #[serde(default)]
    pub last_text: Option<String>,
    /// When the current step was entered (Unix seconds of the event that entered it).
    #[serde(default)]
    pub step_since: i64,
    /// When the journey started (Unix seconds of the event that started it; 0 in journeys
    /// started before it was kept): the dashboard's time to book is measured from it.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub started_at: i64,
    /// Whether this journey's one reminder was sent (a fact of its history: it is reminded at
    /// most once, whatever step it is at).
    #[serde(default)]
    pub reminded: bool,
    /// The last ERP answer.
    #[serde(default)]
    pub erp: Option<ErpStatus>,
    /// How many times a value was asked again because the ERP's schema refused it.
    #[serde(default)]
    pub erp_reasks: u32,
    /// How many times, at the current step, the customer chose to continue after the stuck
    /// ladder's summary: the next time they are stuck there, a person takes over instead.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recovered: u32,
    /// What names this journey's ERP writes (their idempotency keys are `<write_key>:<action>`):
    /// the turn's minted key ([`super::GuardResults::minted_key`]) the first time the journey
    /// asks for a write, kept for its later attempts (a retry after a failure finds the document
    /// an earlier attempt made instead of making a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_key: Option<String>,
    /// A day the customer named without a time before the journey asked for one (`YYYY-MM-DD`;
    /// "tmrw morning" in their first message): the date-time question then asks only for the
    /// time on that day, and offers that day's times. Used once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_hint: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// A value that waits for the customer to confirm it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingValue {
    /// The slot it would fill.
    pub slot: String,
    /// The value.
    pub value: SlotValue,
    /// The customer's words it was read from.
    pub evidence: String,
}

impl Journey {
    /// The short tag that ties a button to this journey instance: the turn it started on (the
    /// last part of its id). Two bookings at the same step have different tags, so a button of
    /// one never fills the other.
    pub fn tag(&self) -> &str {
        self.id.rsplit('-').next().unwrap_or(&self.id)
    }
}

/// Everything remembered about one conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationState {
    /// The customer's WhatsApp id.
    pub customer: String,
    /// Customer-profile slots (name, car, address), shared across journeys.
    #[serde(default)]
    pub profile: BTreeMap<String, FilledSlot>,
    /// The journey under way.
    #[serde(default)]
    pub journey: Option<Journey>,
    /// Journeys put aside for another (a complaint in the middle of a booking, a second car),
    /// oldest first. The newest is resumed when the current one ends; all are offered in the
    /// menu and in the open-requests list, so none is silently lost.
    #[serde(default)]
    pub suspended: Vec<Journey>,
    /// The conversation's phase (a statig machine whose states carry their data). Absent only
    /// in states stored before phases were kept: [`ConversationState::phase_mut`] derives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PhaseMachine>,
    /// Turns taken.
    #[serde(default)]
    pub turns: u64,
    /// Journeys finished.
    #[serde(default)]
    pub journeys_completed: u32,
    /// References of ERP documents made for this customer, newest last.
    #[serde(default)]
    pub references: Vec<String>,
    /// A hand-off stored before phases were kept (read once into the phase, never written).
    #[serde(default, rename = "handoff", skip_serializing)]
    pub legacy_handoff: Option<Handoff>,
    /// Unix seconds of the customer's last message (the 24-hour window starts there).
    #[serde(default)]
    pub last_customer_at: i64,
    /// Unix seconds at which the scheduler should wake this conversation (a reminder is due).
    #[serde(default)]
    pub wake_at: Option<i64>,
    /// The last question sent and how many times in a row it was sent.
    #[serde(default)]
    pub last_question: Option<(String, u32)>,
    /// The last answer from the knowledge base, for a few turns ([`super::answers`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_answer: Option<super::answers::LastAnswer>,
    /// The emotion of the customer's latest typed message.
    #[serde(default)]
    pub mood: Emotion,
    /// Set once the customer has been frustrated or angry in this conversation: no offer is shown
    /// to them from then on.
    #[serde(default)]
    pub upset: bool,
    /// Where the customer is: greeting, exploring, deciding, booking, paying, after-sale,
    /// complaint.
    #[serde(default)]
    pub stage: Stage,
    /// Whether an offer was shown in this conversation (never twice).
    #[serde(default)]
    pub offer_shown: bool,
    /// The turn at which the customer's upset was last acknowledged (and a person offered).
    #[serde(default)]
    pub acknowledged_at: Option<u64>,
    /// Outside any journey, the customer's last message that matched nothing (folded) and how
    /// many times in a row it came: the stuck ladder at the menu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<(String, u32)>,
    /// Set when the customer opted out of offers and reminders ("stop promotions",
    /// "unsubscribe", WhatsApp's marketing preference): none is sent until they opt back in
    /// ("start").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opted_out: bool,
    /// Set when the customer moved to a new number: the WhatsApp id this conversation went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// Places this conversation holds while confirming ([`super::capacity`]): journey id → the
    /// window (`YYYY-MM-DDTHH:MM:SS`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: BTreeMap<String, String>,
    /// Visits this customer booked through a journey whose flow declares `visit: books`, kept
    /// for their reminder and rating ([`super::visits`]); at most [`super::visits::KEPT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visits: Vec<Visit>,
}

/// A booked visit, with what was sent about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// The ERP's reference of the booking (the Sales Order's name).
    pub reference: String,
    /// The flow that booked it (its `visit` rule words the reminder and rating).
    pub flow: String,
    /// When it starts, `YYYY-MM-DDTHH:MM:SS` in the business's time zone.
    pub at: String,
    /// The same instant, in Unix seconds.
    pub at_unix: i64,
    /// The booking journey's slots, for the reminder's and rating's placeholders.
    pub slots: BTreeMap<String, FilledSlot>,
    /// The reminder is behind us: sent, or not wanted (booked too late for one, opted out,
    /// visit past).
    #[serde(default)]
    pub reminded: bool,
    /// The customer confirmed the visit from the reminder.
    #[serde(default)]
    pub confirmed: bool,
    /// Unix seconds at which the rating was asked, or given up (the customer had opted out).
    #[serde(default)]
    pub rating_asked_at: Option<i64>,
    /// The customer's rating, 1 to 5.
    #[serde(default)]
    pub rating: Option<u8>,
}

/// What a conversation hands to the conversation of the customer's new number: the profile,
/// the journeys under way and put aside, the ERP references and the opt-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    /// Customer-profile slots.
    #[serde(default)]
    pub profile: BTreeMap<String, FilledSlot>,
    /// The journey under way.
    #[serde(default)]
    pub journey: Option<Journey>,
    /// Journeys put aside.
    #[serde(default)]
    pub suspended: Vec<Journey>,
    /// ERP references.
    #[serde(default)]
    pub references: Vec<String>,
    /// The opt-out.
    #[serde(default)]
    pub opted_out: bool,
}

impl ConversationState {
    /// A new customer's state.
    pub fn new(customer: &str) -> Self {
        ConversationState {
            customer: customer.to_string(),
            profile: BTreeMap::new(),
            journey: None,
            suspended: Vec::new(),
            phase: Some(PhaseMachine::default()),
            turns: 0,
            journeys_completed: 0,
            references: Vec::new(),
            legacy_handoff: None,
            last_customer_at: 0,
            wake_at: None,
            last_question: None,
            last_answer: None,
            mood: Emotion::Neutral,
            upset: false,
            stage: Stage::Greeting,
            offer_shown: false,
            acknowledged_at: None,
            unmatched: None,
            opted_out: false,
            moved_to: None,
            holds: BTreeMap::new(),
            visits: Vec::new(),
        }
    }

    /// The phase machine, derived once for a state stored before phases were kept (from its
    /// hand-off, or idle: the next turn's step entry sets the journey's phase).
    pub fn phase_mut(&mut self) -> &mut PhaseMachine {
        if self.phase.is_none() {
            let mut m = PhaseMachine::default();
            if let Some(h) = self.legacy_handoff.take() {
                let _ = m.handle(super::phase::PhaseEvent::HandOff(h));
            }
            self.phase = Some(m);
        }
        self.phase.get_or_insert_with(PhaseMachine::default)
    }

    /// The phase, read-only (idle when not derived yet).
    pub fn phase(&self) -> PhaseMachine {
        self.phase.clone().unwrap_or_default()
    }

    /// The hand-off, while a person has the conversation.
    pub fn handoff(&self) -> Option<Handoff> {
        match &self.phase {
            Some(p) => p.handoff().cloned(),
            None => self.legacy_handoff.clone(),
        }
    }

    /// The template context of the journey: every slot's value, plus `wa_id` and
    /// `customer_phone` (the number the customer gave in a slot named `phone`, for a website
    /// visitor; otherwise the WhatsApp number they write from).
    pub fn template_context(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("wa_id".into(), Value::String(self.customer.clone()));
        let given = self.journey.as_ref().and_then(|j| j.slots.get(PHONE_SLOT)).or(self.profile.get(PHONE_SLOT));
        let phone = match given.map(|s| &s.value) {
            Some(SlotValue::Text { value }) => value.clone(),
            _ => format!("+{}", self.customer),
        };
        map.insert("customer_phone".into(), Value::String(phone));
        if let Some(j) = &self.journey {
            for (name, slot) in &j.slots {
                map.insert(name.clone(), slot.value.to_template_value());
            }
        }
        map
    }
}
