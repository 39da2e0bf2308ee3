//! `flows/business.yaml`: the facts about the business that every journey shares — its name, time
//! zone, the visit times it offers, and the fixed messages of the main menu.

use schemars::JsonSchema;
use serde::Deserialize;

use super::format::Located;

/// The business file as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessFile {
    /// The business's name, used in greetings.
    pub name: String,
    /// IANA time zone in which customers speak of dates and times ("Asia/Dubai").
    pub time_zone: Located<String>,
    /// ISO 4217 currency code of catalog prices ("AED").
    pub currency: String,
    /// The visit times offered in lists.
    pub visit_slots: VisitSlotsDecl,
    /// Fixed messages.
    #[serde(default)]
    pub messages: MessagesDecl,
}

/// How offered visit times are made: on each open day from tomorrow, at each of `times`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitSlotsDecl {
    /// Start times of visits, `HH:MM` in the business's time zone.
    pub times: Vec<Located<String>>,
    /// How many days ahead to offer (the list shows at most 10 rows: WhatsApp's limit for a list).
    #[serde(default = "default_days_ahead")]
    pub days_ahead: u32,
    /// Weekdays without visits, in English ("friday").
    #[serde(default)]
    pub closed_weekdays: Vec<String>,
    /// Opening hour, `HH:MM`: a typed time before it is refused.
    pub opens: Located<String>,
    /// Closing hour, `HH:MM`: a typed time at or after it is refused.
    pub closes: Located<String>,
    /// Minimum minutes between now and a visit.
    #[serde(default = "default_lead")]
    pub lead_time_minutes: u32,
}

fn default_days_ahead() -> u32 {
    3
}
fn default_lead() -> u32 {
    60
}

/// Messages of the main menu and of the fallbacks, with sensible defaults.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesDecl {
    /// Greeting for a new customer; `{business}` is replaced by the business name.
    pub welcome: String,
    /// Greeting for a known customer; `{first_name}` and `{business}` are replaced.
    pub welcome_back: String,
    /// Sent for a message type no journey can use (a sticker, a poll…).
    pub unsupported: String,
    /// Sent when a button belongs to an earlier question.
    pub stale_button: String,
    /// Sent when a journey is cancelled by the customer.
    pub cancelled: String,
    /// Sent for a voice note when no speech-to-text endpoint is configured.
    pub voice_note: String,
    /// Sent when a customer opts out of offers and reminders ("stop promotions").
    pub opted_out: String,
    /// Sent when a customer who opted out opts back in ("start").
    pub opted_in: String,
    /// What the bot can do, in a sentence: sent with the menu and a "Talk to a person" button
    /// when a customer writes the same thing twice that matches nothing; `{business}` is
    /// replaced.
    pub capabilities: String,
}

impl Default for MessagesDecl {
    fn default() -> Self {
        MessagesDecl {
            welcome: "Hello! Welcome to {business}. How can we help you today?".into(),
            welcome_back: "Welcome back, {first_name}! How can {business} help you today?".into(),
            unsupported: "Sorry, I can't read that kind of message. Please send text, or use the buttons.".into(),
            stale_button: "That button belongs to an earlier question, so I've ignored it.".into(),
            cancelled: "No problem, I've stopped here. Send a message whenever you need us.".into(),
            voice_note: "Sorry, I can't listen to voice notes yet. Please type your message and I'll help right away."
                .into(),
            opted_out: "Done: you won't get offers or reminders from us any more. Send START if you change your mind."
                .into(),
            opted_in: "Welcome back! You'll get our offers and visit reminders again.".into(),
            capabilities: "I'm {business}'s assistant: I can book a visit, move or check your bookings, take a payment or a complaint, and answer questions about our services. Pick one below, or talk to a person.".into(),
        }
    }
}
