//! Parsing WhatsApp Cloud API webhook notifications (`../shared/reference/whatsapp-cloud-api.md`
//! §3–§5) into engine events and status updates.
//!
//! The envelope is checked strictly (a body that is not a WhatsApp Business Account notification
//! is refused with a reason); what is inside is read leniently: every `entry × change × message`,
//! unknown fields ignored, unknown message types turned into [`EventKind::Unsupported`] so the
//! customer gets a polite answer instead of silence.

use serde::Deserialize;
use serde_json::Value;

use crate::engine::{EventKind, InboundEvent};

/// Why a webhook body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not JSON, or not the envelope's shape.
    #[error("channel.malformed_body: {0}")]
    Malformed(String),
    /// JSON of another kind of notification.
    #[error("channel.wrong_object: object is {0:?}, expected \"whatsapp_business_account\"")]
    WrongObject(String),
}

impl WebhookError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Malformed(_) => "channel.malformed_body",
            WebhookError::WrongObject(_) => "channel.wrong_object",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: Value,
}

/// An inbound message with the business number it was sent to.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The business's `phone_number_id` (used in send URLs).
    pub phone_number_id: String,
    /// The event.
    pub event: InboundEvent,
}

/// A delivery receipt for one of our messages.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The business number that sent the message (the entry's `metadata.phone_number_id`).
    pub phone_number_id: String,
    /// Our message's wamid.
    pub message_id: String,
    /// `sent`, `delivered`, `read`, `failed`, `played`.
    pub status: String,
    /// The customer.
    pub recipient: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Error codes and titles, for `failed`.
    pub errors: Vec<String>,
}

/// A message that could not be taken, with why; the server logs each one with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The message's wamid, when it had one.
    pub message_id: Option<String>,
    /// Why it was skipped.
    pub reason: &'static str,
}

/// Everything a notification carried.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notification {
    /// Inbound messages, in the order they appear.
    pub messages: Vec<Inbound>,
    /// Status updates.
    pub statuses: Vec<StatusUpdate>,
    /// Messages skipped: no sender at all (neither `from`, `from_user_id` nor a single contact's
    /// `wa_id` or `user_id`), or no message id.
    pub skipped: Vec<Skipped>,
}

fn s(v: &Value, path: &str) -> Option<String> {
    v.pointer(path).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The customer who sent `m`: `from` (a phone number's digits), else `from_user_id` (the
/// business-scoped user id, BSUID, of a customer who uses a username), else the `wa_id` or
/// `user_id` of the change's only contact. Reference §3: from 2026 `from` may be omitted for
/// customers with usernames, and `contacts[].user_id` carries their BSUID.
fn sender(m: &Value, contacts: &[Value]) -> Option<String> {
    s(m, "/from").or_else(|| s(m, "/from_user_id")).or_else(|| match contacts {
        [only] => s(only, "/wa_id").or_else(|| s(only, "/user_id")),
        _ => None,
    })
}

/// Parses a webhook body (the raw bytes whose signature was checked).
///
/// Reads every `entry × change`: the `messages` field's messages and statuses, and the
/// `user_preferences` field's marketing preferences (as [`EventKind::MarketingPreference`]
/// events). Messages of one customer followed in the same body by another message of theirs
/// that expects an answer are marked [`InboundEvent::followed`].
///
/// Errors: [`WebhookError`] when the body is not JSON or not a WhatsApp Business Account
/// notification. Unknown fields and message types are not errors.
pub fn parse(body: &[u8]) -> Result<Notification, WebhookError> {
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(format!("not a notification: {e}")))?;
    if env.object != "whatsapp_business_account" {
        return Err(WebhookError::WrongObject(env.object));
    }
    let mut out = Notification::default();
    for entry in env.entry {
        for change in entry.changes {
            let v = &change.value;
            let phone_number_id = s(v, "/metadata/phone_number_id").unwrap_or_default();
            match change.field.as_str() {
                "messages" => read_messages(v, &phone_number_id, &mut out),
                "user_preferences" => read_preferences(v, &phone_number_id, &mut out),
                _ => {}
            }
        }
    }
    mark_followed(&mut out.messages);
    Ok(out)
}

fn read_messages(v: &Value, phone_number_id: &str, out: &mut Notification) {
    let contacts = v.get("contacts").and_then(Value::as_array).cloned().unwrap_or_default();
    let name_of = |customer: &str| {
        contacts
            .iter()
            .find(|c| s(c, "/wa_id").as_deref() == Some(customer) || s(c, "/user_id").as_deref() == Some(customer))
            .or(contacts.first())
            .and_then(|c| s(c, "/profile/name"))
    };
    for m in v.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let Some(id) = s(m, "/id") else {
            out.skipped.push(Skipped { message_id: None, reason: "the message has no id" });
            continue;
        };
        let Some(from) = sender(m, &contacts) else {
            out.skipped.push(Skipped {
                message_id: Some(id),
                reason: "no sender: neither from, from_user_id nor a single contact's wa_id or user_id",
            });
            continue;
        };
        let mut event = InboundEvent::internal(
            id,
            from.clone(),
            s(m, "/timestamp").and_then(|t| t.parse().ok()).unwrap_or(0),
            message_kind(m),
        );
        event.profile_name = name_of(&from);
        // A reaction names the message it reacts to in `reaction.message_id`, not in `context`.
        event.context_id = s(m, "/context/id").or_else(|| s(m, "/reaction/message_id"));
        out.messages.push(Inbound { phone_number_id: phone_number_id.to_string(), event });
    }
    for st in v.get("statuses").and_then(Value::as_array).into_iter().flatten() {
        let (Some(message_id), Some(status)) = (s(st, "/id"), s(st, "/status")) else { continue };
        let errors = st
            .get("errors")
            .and_then(Value::as_array)
            .map(|errs| {
                errs.iter()
                    .map(|e| format!("{} {}", s(e, "/code").unwrap_or_default(), s(e, "/title").unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        out.statuses.push(StatusUpdate {
            phone_number_id: phone_number_id.to_string(),
            message_id,
            status,
            recipient: s(st, "/recipient_id").or_else(|| s(st, "/recipient_user_id")).unwrap_or_default(),
            timestamp: s(st, "/timestamp").and_then(|t| t.parse().ok()).unwrap_or(0),
            errors,
        });
    }
}

/// `user_preferences` (a customer stopped or resumed marketing messages on WhatsApp's side):
/// each becomes an event of that customer's conversation, keyed by customer, time and value.
fn read_preferences(v: &Value, phone_number_id: &str, out: &mut Notification) {
    for p in v.get("user_preferences").and_then(Value::as_array).into_iter().flatten() {
        if s(p, "/category").as_deref() != Some("marketing_messages") {
            continue;
        }
        let (Some(customer), Some(value)) = (s(p, "/wa_id").or_else(|| s(p, "/user_id")), s(p, "/value")) else {
            continue;
        };
        let timestamp: i64 = s(p, "/timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
        let kind = EventKind::MarketingPreference {
            opted_in: value != "stop",
            detail: s(p, "/detail").unwrap_or_else(|| value.clone()),
        };
        let event = InboundEvent::internal(format!("pref:{customer}:{timestamp}:{value}"), customer, timestamp, kind);
        out.messages.push(Inbound { phone_number_id: phone_number_id.to_string(), event });
    }
}

/// Marks each message that a later message of the same customer, in the same body, follows and
/// that expects an answer (see [`InboundEvent::followed`]).
fn mark_followed(messages: &mut [Inbound]) {
    for i in 0..messages.len() {
        let later = messages[i + 1..].iter().any(|m| {
            m.phone_number_id == messages[i].phone_number_id
                && m.event.customer == messages[i].event.customer
                && m.event.kind.expects_answer()
        });
        messages[i].event.followed = later && messages[i].event.kind.expects_answer();
    }
}

fn message_kind(m: &Value) -> EventKind {
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("unknown");
    let unsupported = |k: &str| EventKind::Unsupported { kind: k.to_string() };
    match kind {
        "text" => match s(m, "/text/body") {
            Some(body) => EventKind::Text { body },
            None => unsupported("text"),
        },
        "interactive" => {
            let itype = s(m, "/interactive/type").unwrap_or_default();
            let reply = m.pointer(&format!("/interactive/{itype}")).cloned().unwrap_or(Value::Null);
            match (itype.as_str(), s(&reply, "/id")) {
                ("button_reply" | "list_reply", Some(id)) => {
                    EventKind::Choice { id, title: s(&reply, "/title").unwrap_or_default() }
                }
                _ => unsupported(&format!("interactive.{itype}")),
            }
        }
        // A template's quick-reply button: the payload the business attached, and its label.
        "button" => match s(m, "/button/payload").or_else(|| s(m, "/button/text")) {
            Some(id) => EventKind::Choice { title: s(m, "/button/text").unwrap_or_else(|| id.clone()), id },
            None => unsupported("button"),
        },
        "image" | "video" | "audio" | "sticker" | "document" => match s(m, &format!("/{kind}/id")) {
            Some(media_id) => EventKind::Media {
                media_type: kind.to_string(),
                media_id,
                mime_type: s(m, &format!("/{kind}/mime_type")),
                caption: s(m, &format!("/{kind}/caption")),
            },
            None => unsupported(kind),
        },
        "location" => {
            let lat = m.pointer("/location/latitude").and_then(Value::as_f64);
            let lon = m.pointer("/location/longitude").and_then(Value::as_f64);
            match (lat, lon) {
                (Some(latitude), Some(longitude)) => EventKind::Location {
                    latitude,
                    longitude,
                    name: s(m, "/location/name"),
                    address: s(m, "/location/address"),
                },
                _ => unsupported("location"),
            }
        }
        "contacts" => EventKind::Contacts { count: m.get("contacts").and_then(Value::as_array).map_or(0, Vec::len) },
        "reaction" => EventKind::Reaction { emoji: s(m, "/reaction/emoji").unwrap_or_default() },
        "system" => {
            let system_type = s(m, "/system/type").unwrap_or_default();
            let new_number = s(m, "/system/wa_id").or_else(|| s(m, "/system/new_wa_id"));
            match (system_type.as_str(), new_number) {
                ("user_changed_number" | "customer_changed_number", Some(new_customer)) => {
                    EventKind::NumberChanged { new_customer }
                }
                _ => EventKind::SystemNotice { kind: system_type },
            }
        }
        "revoke" => EventKind::Deleted { original_id: s(m, "/revoke/original_message_id").unwrap_or_default() },
        "edit" => match m.pointer("/edit/message") {
            Some(edited) => EventKind::Edited {
                original_id: s(m, "/edit/original_message_id").unwrap_or_default(),
                message: Box::new(message_kind(edited)),
            },
            None => unsupported("edit"),
        },
        other => unsupported(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_reference_type() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
          "messaging_product":"whatsapp","metadata":{"display_phone_number":"15557654321","phone_number_id":"109876543210987"},
          "contacts":[{"profile":{"name":"Asha Rao"},"wa_id":"919812345678"}],
          "messages":[
           {"from":"919812345678","id":"wamid.1","timestamp":"1750091045","type":"text","text":{"body":"hi"}},
           {"context":{"from":"15557654321","id":"wamid.OUT"},"from":"919812345678","id":"wamid.2","timestamp":"1750091130","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"b|x","title":"Yes"}}},
           {"from":"919812345678","id":"wamid.3","timestamp":"1750091160","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"row1","title":"Mon 10:00","description":"d"}}},
           {"from":"919812345678","id":"wamid.4","timestamp":"1750091190","type":"button","button":{"payload":"confirm:SO-1","text":"Confirm"}},
           {"from":"919812345678","id":"wamid.5","timestamp":"1750091220","type":"image","image":{"id":"148","mime_type":"image/jpeg","sha256":"x","caption":"dent"}},
           {"from":"919812345678","id":"wamid.6","timestamp":"1750091250","type":"document","document":{"id":"229","mime_type":"application/pdf","filename":"a.pdf"}},
           {"from":"919812345678","id":"wamid.7","timestamp":"1750091280","type":"location","location":{"latitude":12.97,"longitude":77.59,"name":"Home"}},
           {"from":"919812345678","id":"wamid.8","timestamp":"1750091310","type":"contacts","contacts":[{"name":{"formatted_name":"V"}}]},
           {"from":"919812345678","id":"wamid.9","timestamp":"1750091340","type":"reaction","reaction":{"message_id":"wamid.OUT","emoji":"👍"}},
           {"from":"919812345678","id":"wamid.10","timestamp":"1750091370","type":"unsupported","unsupported":{"type":"poll_creation"}}
          ],
          "statuses":[{"id":"wamid.OUT","status":"read","timestamp":"1750091090","recipient_id":"919812345678"}]}}]}]}"#.as_bytes();
        let n = parse(body).unwrap();
        assert_eq!(n.messages.len(), 10);
        assert!(n.skipped.is_empty());
        assert_eq!(n.statuses[0].status, "read");
        let kinds: Vec<&str> = n.messages.iter().map(|m| m.event.kind.name()).collect();
        assert_eq!(
            kinds,
            ["text", "choice", "choice", "choice", "media", "media", "location", "contacts", "reaction", "unsupported"]
        );
        assert_eq!(n.messages[1].event.context_id.as_deref(), Some("wamid.OUT"));
        assert_eq!(n.messages[8].event.context_id.as_deref(), Some("wamid.OUT"), "a reaction names its message");
        assert_eq!(n.messages[0].event.profile_name.as_deref(), Some("Asha Rao"));
        assert_eq!(n.messages[0].phone_number_id, "109876543210987");
        assert_eq!(n.messages[0].event.timestamp, 1750091045);
        // Every message but the last waits for the later one's answer; the reaction expects none.
        let followed: Vec<bool> = n.messages.iter().map(|m| m.event.followed).collect();
        assert_eq!(followed, [true, true, true, true, true, true, true, true, false, false]);
    }

    fn one(message: &str, contacts: &str) -> Notification {
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{
              "messaging_product":"whatsapp","metadata":{{"phone_number_id":"1"}},"contacts":{contacts},"messages":[{message}]}}}}]}}]}}"#
        );
        parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn notifications_about_the_customer_are_typed_not_unsupported() {
        let n = one(
            r#"{"from":"971500000033","id":"w1","timestamp":"1","type":"system","system":{"body":"changed","wa_id":"971599000033","type":"user_changed_number"}}"#,
            "[]",
        );
        assert_eq!(n.messages[0].event.kind, EventKind::NumberChanged { new_customer: "971599000033".into() });
        let n = one(
            r#"{"from":"9715","id":"w2","timestamp":"1","type":"system","system":{"body":"x","type":"customer_identity_changed"}}"#,
            "[]",
        );
        assert_eq!(n.messages[0].event.kind, EventKind::SystemNotice { kind: "customer_identity_changed".into() });
        let n = one(
            r#"{"from":"9715","id":"w3","timestamp":"1","type":"revoke","revoke":{"original_message_id":"w0"}}"#,
            "[]",
        );
        assert_eq!(n.messages[0].event.kind, EventKind::Deleted { original_id: "w0".into() });
        let n = one(
            r#"{"from":"9715","id":"w4","timestamp":"1","type":"edit","edit":{"original_message_id":"w0","message":{"type":"text","text":{"body":"Jane Doe"}}}}"#,
            "[]",
        );
        assert_eq!(
            n.messages[0].event.kind,
            EventKind::Edited {
                original_id: "w0".into(),
                message: Box::new(EventKind::Text { body: "Jane Doe".into() })
            }
        );
        assert!(n.messages.iter().all(|m| !m.event.kind.expects_answer()));
    }

    #[test]
    fn a_customer_known_only_by_a_business_scoped_id_is_kept_and_one_with_no_id_is_reported() {
        let n = one(
            r#"{"id":"w5","timestamp":"1","type":"text","text":{"body":"hi"}}"#,
            r#"[{"profile":{"name":"N"},"user_id":"US.13491208655302741918"}]"#,
        );
        assert_eq!(n.messages[0].event.customer, "US.13491208655302741918");
        assert_eq!(n.messages[0].event.profile_name.as_deref(), Some("N"));
        let n = one(
            r#"{"id":"w6","timestamp":"1","type":"text","text":{"body":"hi"}}"#,
            r#"[{"user_id":"US.1"},{"user_id":"US.2"}]"#,
        );
        assert!(n.messages.is_empty());
        assert_eq!(n.skipped, vec![Skipped { message_id: Some("w6".into()), reason: n.skipped[0].reason }]);
    }

    #[test]
    fn marketing_preferences_become_events() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"user_preferences","value":{
          "messaging_product":"whatsapp","metadata":{"phone_number_id":"1"},
          "user_preferences":[{"wa_id":"9715","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1731705721}]}}]}]}"#;
        let n = parse(body).unwrap();
        assert_eq!(n.messages[0].event.message_id, "pref:9715:1731705721:stop");
        assert!(matches!(n.messages[0].event.kind, EventKind::MarketingPreference { opted_in: false, .. }));
    }

    #[test]
    fn refuses_what_is_not_a_notification() {
        assert_eq!(parse(b"{").unwrap_err().code(), "channel.malformed_body");
        assert_eq!(parse(br#"{"object":"page","entry":[]}"#).unwrap_err().code(), "channel.wrong_object");
    }
}
