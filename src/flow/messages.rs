//! Every sentence the bot can send that is not written in a flow file: `flows/messages.yaml`,
//! each key with a shipped default, so a business owner changes the words, or the language,
//! without touching Rust. `carewell flows check` refuses a message that uses a `{placeholder}` its
//! key does not provide (the allowed ones are listed in each field's documentation and in
//! [`PLACEHOLDERS`]).
//!
//! Text a journey says (questions, summaries, closing messages) lives in its flow file; the
//! business's name and facts in `business.yaml`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The sentences, by key. A key missing from `messages.yaml` keeps its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Messages {
    // ------------------------------------------------------------ menu and first contact
    /// Greeting of a new customer, above the menu. `{business}`.
    pub welcome: String,
    /// Greeting of a known customer. `{first_name}`, `{business}`.
    pub welcome_back: String,
    /// Added to the greeting when a request waits aside.
    pub unfinished_request: String,
    /// A menu row that carries on a request put aside (at most 24 characters shown). `{request}`.
    pub continue_row: String,
    /// The label of the menu's list button (at most 20 characters).
    pub menu_button: String,
    /// The label of a list of options (at most 20 characters).
    pub choose_button: String,
    /// What the bot can do, in a sentence, when the same unmatched message comes twice; sent with
    /// the menu and a person button. `{business}`.
    pub capabilities: String,
    /// For a message type no journey can use (a sticker, a poll, a contact card).
    pub unsupported: String,
    /// For a voice note when no speech-to-text endpoint is configured.
    pub voice_note: String,
    /// For a button that belongs to an earlier question.
    pub stale_button: String,
    /// A journey cancelled by the customer.
    pub cancelled: String,
    /// A location shared outside any journey.
    pub location_thanks: String,
    /// A location shared when no address is asked.
    pub location_not_needed: String,
    /// When a turn fails on the service's side (the customer is never left without an answer).
    pub something_went_wrong: String,
    /// A customer opts out of offers and reminders.
    pub opted_out: String,
    /// A customer who opted out opts back in.
    pub opted_in: String,

    // ------------------------------------------------------------ questions and answers
    /// The rest of a question half answered, to a customer whose name is known. `{first_name}`,
    /// `{missing}` (the labels still missing, "car model and plate").
    pub ask_rest_named: String,
    /// The rest of a question half answered. `{missing}`.
    pub ask_rest: String,
    /// After an answer not understood: an example. `{example}`.
    pub example: String,
    /// The stuck ladder's first rung: the same need in other words. `{missing}`.
    pub rephrase: String,
    /// An answer not understood.
    pub not_understood: String,
    /// Typed text where only buttons can answer.
    pub use_the_buttons: String,
    /// A pressed option that is no longer offered.
    pub option_gone: String,
    /// A correction at the summary was taken.
    pub updated: String,
    /// The customer said no to "is … your …?".
    pub no_problem: String,
    /// Asks whether an unsure reading is right. `{value}`, `{label}`.
    pub confirm_value: String,
    /// The yes button (at most 20 characters).
    pub yes_button: String,
    /// The no button (at most 20 characters).
    pub no_button: String,
    /// The words fit several options. `{options}` ("Exterior Wash or Full Wash").
    pub did_you_mean: String,
    /// The word joining the last two of a list ("A, B or C").
    pub or: String,
    /// The word joining two labels ("car model and plate").
    pub and: String,
    /// The parsers and the LLM read a slot differently. `{labels}`.
    pub read_two_ways: String,
    /// A name could not be read.
    pub name_unreadable: String,
    /// A typed choice matched no option.
    pub choice_unreadable: String,
    /// The car could not be read whole.
    pub car_unreadable: String,
    /// A day and time could not be read.
    pub date_unreadable: String,
    /// A day came without a time. `{day}`.
    pub what_time_on: String,
    /// A time in the past.
    pub time_passed: String,
    /// Too little notice. `{minutes}`.
    pub lead_time: String,
    /// A closed day. `{weekday}` (from `weekdays`).
    pub closed_day: String,
    /// A date without visits (a holiday). `{date}`.
    pub closed_date: String,
    /// Outside visiting hours. `{opens}`, `{closes}`.
    pub outside_hours: String,
    /// A time whose window has no place left; the nearest free times follow. `{time}`.
    pub slot_full: String,
    /// The last place of a time went to another customer a moment ago. `{time}`.
    pub slot_just_taken: String,
    /// A day named without a time has no place left; the next free times follow. `{day}`.
    pub day_full: String,
    /// A time the clock skips (a daylight-saving gap).
    pub no_such_time: String,
    /// Weekday names, Monday first, for `closed_day`.
    pub weekdays: Vec<String>,
    /// The amount paid could not be read.
    pub amount_question: String,
    /// The amount paid is more than what is due. `{amount}`, `{due}`, `{what}`.
    pub amount_mismatch: String,

    // ------------------------------------------------------------ the summary
    /// The confirm button (at most 20 characters).
    pub confirm_button: String,
    /// The change button (at most 20 characters).
    pub change_button: String,
    /// The cancel button (at most 20 characters).
    pub cancel_button: String,
    /// Which part of a summary to change.
    pub what_to_change: String,

    // ------------------------------------------------------------ several requests
    /// Back to a request put aside. `{request}`.
    pub back_to_request: String,
    /// A request put aside whose flow changed so much it cannot carry on.
    pub request_gone: String,
    /// More requests open than allowed: the oldest is closed. `{request}`.
    pub too_many_requests: String,
    /// The open-requests list is empty.
    pub no_open_requests: String,
    /// Above the open-requests list.
    pub open_requests: String,
    /// The open-requests list's button (at most 20 characters).
    pub open_requests_button: String,
    /// A row of the list: the request in front. `{request}`.
    pub request_now: String,
    /// A row of the list: a request waiting. `{request}`.
    pub request_waiting: String,
    /// A conversation whose step no longer exists (the flow was edited): moved to the nearest
    /// question.
    pub step_gone: String,
    /// A conversation whose journey no longer exists at all: back to the menu.
    pub journey_gone: String,

    // ------------------------------------------------------------ the ERP
    /// A customer writes while the ERP write is under way. `{request}`.
    pub erp_waiting: String,
    /// The ERP write failed once and is being retried.
    pub erp_slow: String,
    /// The ERP's schema refused a value the customer gave. `{labels}`, `{why}`.
    pub erp_refused_value: String,
    /// A lookup could not reach the ERP.
    pub lookup_failed: String,
    /// A write that had been given up on went through later (an operator sent it again) after
    /// its journey ended. `{reference}`.
    pub erp_late_success: String,

    // ------------------------------------------------------------ replies to tickets
    /// The draft reply to a support ticket or complaint, for a person to approve or edit in the
    /// console. `{subject}`, `{ticket}` (its ERP name), `{answer}` (from the knowledge base, or
    /// `ticket_reply_unknown`), `{business}`.
    pub ticket_reply_draft: String,
    /// The draft's `{answer}` when the knowledge base has nothing on the ticket.
    pub ticket_reply_unknown: String,

    // ------------------------------------------------------------ the website chat
    /// On WhatsApp, to a visitor who sent their website chat's code.
    pub joined_from_web: String,
    /// In the website chat, once it has moved to WhatsApp.
    pub continued_on_whatsapp: String,
    /// On WhatsApp, before the question the website chat had reached is asked again.
    pub carried_on: String,

    // ------------------------------------------------------------ people
    /// The "talk to a person" button (at most 20 characters).
    pub person_button: String,
    /// A person has been asked to take over.
    pub handed_off: String,
    /// The same outside business hours (`business.yaml`): when the team is back. `{weekday}`
    /// (in English, as `closed_weekdays`), `{time}` (`HH:MM`), `{date}` (`YYYY-MM-DD`).
    pub handed_off_after_hours: String,
    /// A message (or the conversation's stored state) could not be read and was set aside for a
    /// person to look at.
    pub message_set_aside: String,
    /// A person took the conversation over. `{agent}`.
    pub agent_joined: String,
    /// The person gave the conversation back.
    pub agent_left: String,
    /// Sent to the staff numbers (`HANDOFF_STAFF_NUMBERS`) when a conversation is handed to a
    /// person. `{customer}` (the number, with +), `{reason}`, `{queue}`.
    pub handoff_staff_alert: String,
    /// An upset customer is acknowledged and offered a person.
    pub upset: String,
    /// Shorter, above the recovery summary.
    pub upset_short: String,
    /// The recovery summary: what is known. `{known}` (one line per slot).
    pub recovery_known: String,
    /// The recovery summary when nothing is known yet.
    pub recovery_nothing: String,
    /// The recovery summary: what is missing. `{missing}`.
    pub recovery_missing: String,
    /// The recovery summary's question.
    pub recovery_question: String,
    /// The continue button (at most 20 characters).
    pub continue_button: String,
    /// The start-over button (at most 20 characters).
    pub start_over_button: String,
    /// One current offer after a journey ended. `{offer}` ("20% off Wax & Polish — …").
    pub offer: String,
}

/// The placeholders each key may use; any other is refused by `flows check`.
pub const PLACEHOLDERS: &[(&str, &[&str])] = &[
    ("welcome", &["business"]),
    ("welcome_back", &["first_name", "business"]),
    ("continue_row", &["request"]),
    ("capabilities", &["business"]),
    ("ask_rest_named", &["first_name", "missing"]),
    ("ask_rest", &["missing"]),
    ("example", &["example"]),
    ("rephrase", &["missing"]),
    ("confirm_value", &["value", "label"]),
    ("did_you_mean", &["options"]),
    ("read_two_ways", &["labels"]),
    ("what_time_on", &["day"]),
    ("lead_time", &["minutes"]),
    ("closed_day", &["weekday"]),
    ("closed_date", &["date"]),
    ("outside_hours", &["opens", "closes"]),
    ("slot_full", &["time"]),
    ("slot_just_taken", &["time"]),
    ("day_full", &["day"]),
    ("amount_mismatch", &["amount", "due", "what"]),
    ("back_to_request", &["request"]),
    ("too_many_requests", &["request"]),
    ("request_now", &["request"]),
    ("request_waiting", &["request"]),
    ("erp_waiting", &["request"]),
    ("erp_refused_value", &["labels", "why"]),
    ("erp_late_success", &["reference"]),
    ("ticket_reply_draft", &["subject", "ticket", "answer", "business"]),
    ("agent_joined", &["agent"]),
    ("handed_off_after_hours", &["weekday", "time", "date"]),
    ("handoff_staff_alert", &["customer", "reason", "queue"]),
    ("recovery_known", &["known"]),
    ("recovery_missing", &["missing"]),
    ("offer", &["offer"]),
];

/// Keys shown as button titles (WhatsApp: at most 20 characters, reference §7).
pub const BUTTON_KEYS: &[&str] = &[
    "menu_button",
    "choose_button",
    "yes_button",
    "no_button",
    "confirm_button",
    "change_button",
    "cancel_button",
    "open_requests_button",
    "person_button",
    "continue_button",
    "start_over_button",
];

impl Messages {
    /// `template` with each `{key}` of `values` replaced.
    pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
        let mut out = template.to_string();
        for (k, v) in values {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    /// "A, B or C" in these words.
    pub fn or_list(&self, items: &[String]) -> String {
        join_last(items, &self.or)
    }

    /// "A, B and C" in these words.
    pub fn and_list(&self, items: &[String]) -> String {
        join_last(items, &self.and)
    }

    /// The weekday's name (Monday = 0).
    pub fn weekday(&self, w: jiff::civil::Weekday) -> String {
        let i = w.to_monday_zero_offset() as usize;
        self.weekdays.get(i).cloned().unwrap_or_else(|| format!("{w:?}"))
    }
}

fn join_last(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

impl Default for Messages {
    fn default() -> Self {
        let s = |t: &str| t.to_string();
        Messages {
            welcome: s("Hello! Welcome to {business}. How can we help you today?"),
            welcome_back: s("Welcome back, {first_name}! How can {business} help you today?"),
            unfinished_request: s(
                "You also have an unfinished request — pick it below to carry on where you left off.",
            ),
            continue_row: s("Continue: {request}"),
            menu_button: s("Menu"),
            choose_button: s("Choose"),
            capabilities: s(
                "I'm {business}'s assistant: I can book a visit, move or check your bookings, take a payment or a complaint, and answer questions about our services. Pick one below, or talk to a person.",
            ),
            unsupported: s("Sorry, I can't read that kind of message. Please send text, or use the buttons."),
            voice_note: s(
                "Sorry, I can't listen to voice notes yet. Please type your message and I'll help right away.",
            ),
            stale_button: s("That button belongs to an earlier question, so I've left it alone."),
            cancelled: s("No problem, I've stopped here. Send a message whenever you need us."),
            location_thanks: s("Thanks for the location! What can we do for you?"),
            location_not_needed: s("Thanks for the location! I don't need an address right now."),
            something_went_wrong: s(
                "Sorry, something went wrong on our side. A person has been told; please try again in a moment.",
            ),
            opted_out: s(
                "Done: you won't get offers or reminders from us any more. Send START if you change your mind.",
            ),
            opted_in: s("Welcome back! You'll get our offers and visit reminders again."),
            ask_rest_named: s("Thanks, {first_name}! And your {missing}?"),
            ask_rest: s("Thanks! And your {missing}?"),
            example: s("For example: {example}"),
            rephrase: s("Let me put it another way: I just need your {missing}."),
            not_understood: s("Sorry, I didn't catch that."),
            use_the_buttons: s("Please choose one of the buttons below."),
            option_gone: s("That option is no longer available; please pick again."),
            updated: s("Updated."),
            no_problem: s("No problem."),
            confirm_value: s("Just to be sure: is “{value}” your {label}?"),
            yes_button: s("Yes"),
            no_button: s("No"),
            did_you_mean: s("Did you mean {options}?"),
            or: s("or"),
            and: s("and"),
            read_two_ways: s("I want to get this right: could you give your {labels} again?"),
            name_unreadable: s("Sorry, I couldn't read a name from that."),
            choice_unreadable: s("Sorry, that isn't one of the options."),
            car_unreadable: s("Sorry, I couldn't read all the car details from that."),
            date_unreadable: s("Sorry, I couldn't read a day and time from that."),
            what_time_on: s("What time on {day}?"),
            time_passed: s("That time has already passed."),
            lead_time: s("We need at least {minutes} minutes' notice."),
            closed_day: s("Sorry, we don't visit on {weekday}s."),
            closed_date: s("Sorry, we don't visit on {date}."),
            outside_hours: s("We visit between {opens} and {closes}."),
            slot_full: s("Sorry, {time} is fully booked. The nearest free times are below."),
            slot_just_taken: s(
                "Sorry, another customer took the last place at {time} a moment ago. The free times now are below.",
            ),
            day_full: s("Sorry, {day} is fully booked. The next free times are below."),
            no_such_time: s("Sorry, that time does not exist here."),
            weekdays: ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
                .iter()
                .map(|d| d.to_string())
                .collect(),
            amount_question: s("How much did you pay? Please type the amount, for example 150."),
            amount_mismatch: s(
                "{amount} doesn't match: {due} is due on {what}. Please type the amount you paid, as on the receipt.",
            ),
            confirm_button: s("Confirm"),
            change_button: s("Change"),
            cancel_button: s("Cancel"),
            what_to_change: s("What would you like to change?"),
            back_to_request: s("Now, back to your request: {request}."),
            request_gone: s(
                "Sorry, I can't carry on with one of your earlier requests: it has changed since. Please start it again.",
            ),
            too_many_requests: s(
                "You have several requests open, so I've closed the oldest one: {request}. You can start it again any time.",
            ),
            no_open_requests: s("You have no open requests right now."),
            open_requests: s("Here is what we have open for you. Which one shall we carry on with?"),
            open_requests_button: s("Open requests"),
            request_now: s("Now: {request}"),
            request_waiting: s("Waiting: {request}"),
            step_gone: s(
                "We've changed how this works since your last message, so I've picked up at the nearest question.",
            ),
            journey_gone: s(
                "We've changed how this works since your last message, so let's start again from the menu.",
            ),
            erp_waiting: s(
                "I'm still confirming this with our system ({request}). I'll message you as soon as it's done.",
            ),
            erp_slow: s(
                "Our booking system is slow to answer right now. I'll send your confirmation as soon as it's through.",
            ),
            erp_refused_value: s("Our booking system can't take that {labels} ({why}). Could you give it again?"),
            lookup_failed: s(
                "Sorry, I can't reach our system to look that up right now. Please try again in a few minutes, or write \"talk to a person\".",
            ),
            erp_late_success: s("Good news: your earlier request went through after all. Reference: {reference}."),
            ticket_reply_draft: s(
                "Hello, thank you for your message about \"{subject}\" (reference {ticket}).\n\n{answer}\n\n{business}",
            ),
            joined_from_web: s("Welcome over from our website! I'm bringing your chat across."),
            continued_on_whatsapp: s("Your chat continues on WhatsApp. You can close this window."),
            carried_on: s("Let's carry on where we left off."),
            ticket_reply_unknown: s(
                "A member of our team is looking into it and will get back to you within one working day.",
            ),
            person_button: s("Talk to a person"),
            handed_off: s(
                "I've asked a member of our team to help you. They'll reply here shortly — everything you've told me is saved.",
            ),
            handed_off_after_hours: s(
                "I've asked a member of our team to help you. We're closed right now, so they'll reply here when we open, {weekday} at {time}. Everything you've told me is saved.",
            ),
            message_set_aside: s(
                "Sorry, something went wrong reading your last message. I've passed it to a member of our team, who will reply here shortly.",
            ),
            agent_joined: s("You're now chatting with {agent} from our team."),
            handoff_staff_alert: s(
                "A customer is waiting for a person: {customer} ({queue} queue). Why: {reason}. Take it over in the console.",
            ),
            agent_left: s("Thanks for your patience! You're back with our booking assistant."),
            upset: s(
                "I'm sorry — I can hear this has been frustrating. I'll help you put it right here, or a member of our team can take over right away.",
            ),
            upset_short: s("I'm sorry this has been frustrating."),
            recovery_known: s("Here's what I have so far:\n{known}"),
            recovery_nothing: s("We haven't got far yet."),
            recovery_missing: s("I still need your {missing}."),
            recovery_question: s("What would you like to do?"),
            continue_button: s("Continue"),
            start_over_button: s("Start over"),
            offer: s("🎁 One more thing: {offer}. Send \"offers\" to see them all."),
        }
    }
}

/// The problems of a set of messages: unknown placeholders, button titles over WhatsApp's 20
/// characters, a weekday list that is not seven names. Each as `(key, message)`.
pub fn check(messages: &Messages) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(messages) else { return problems };
    for (key, value) in &map {
        let Some(text) = value.as_str() else { continue };
        let allowed: &[&str] = PLACEHOLDERS.iter().find(|(k, _)| k == key).map(|(_, a)| *a).unwrap_or(&[]);
        for p in super::text_placeholders(text) {
            if !allowed.contains(&p.as_str()) {
                let offer = if allowed.is_empty() {
                    "this message takes no placeholder".to_string()
                } else {
                    format!("it may use {}", allowed.iter().map(|a| format!("{{{a}}}")).collect::<Vec<_>>().join(", "))
                };
                problems.push((key.clone(), format!("unknown placeholder {{{p}}} in {key}: {offer}")));
            }
        }
        if BUTTON_KEYS.contains(&key.as_str()) && text.chars().count() > super::MAX_BUTTON_TITLE {
            problems.push((
                key.clone(),
                format!("{key} is a button title: at most {} characters (WhatsApp's limit)", super::MAX_BUTTON_TITLE),
            ));
        }
    }
    if messages.weekdays.len() != 7 {
        problems.push(("weekdays".into(), "weekdays must list seven names, Monday first".into()));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_check() {
        assert_eq!(check(&Messages::default()), vec![]);
    }

    #[test]
    fn an_unknown_placeholder_and_a_long_button_are_refused() {
        let m = Messages {
            welcome: "Hi {name}".into(),
            person_button: "Talk to a member of our team".into(),
            ..Default::default()
        };
        let problems = check(&m);
        assert!(problems.iter().any(|(k, p)| k == "welcome" && p.contains("{name}")), "{problems:?}");
        assert!(problems.iter().any(|(k, _)| k == "person_button"), "{problems:?}");
    }
}
