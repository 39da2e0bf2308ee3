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

/// Everything a notification carried.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notification {
    /// Inbound messages, in the order they appear.
    pub messages: Vec<Inbound>,
    /// Status updates.
    pub statuses: Vec<StatusUpdate>,
    /// Messages skipped because they had no sender id (usernames without a phone number).
    pub skipped: usize,
}

fn s(v: &Value, path: &str) -> Option<String> {
    v.pointer(path).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Parses a webhook body (the raw bytes whose signature was checked).
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
            if change.field != "messages" {
                continue;
            }
            let v = &change.value;
            let phone_number_id = s(v, "/metadata/phone_number_id").unwrap_or_default();
            let contacts = v.get("contacts").and_then(Value::as_array).cloned().unwrap_or_default();
            let name_of = |wa_id: &str| {
                contacts
                    .iter()
                    .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(wa_id))
                    .or(contacts.first())
                    .and_then(|c| s(c, "/profile/name"))
            };
            for m in v.get("messages").and_then(Value::as_array).into_iter().flatten() {
                let Some(from) = s(m, "/from").or_else(|| s(m, "/from_user_id")) else {
                    out.skipped += 1;
                    continue;
                };
                let Some(id) = s(m, "/id") else {
                    out.skipped += 1;
                    continue;
                };
                let event = InboundEvent {
                    message_id: id,
                    profile_name: name_of(&from),
                    customer: from,
                    timestamp: s(m, "/timestamp").and_then(|t| t.parse().ok()).unwrap_or(0),
                    context_id: s(m, "/context/id"),
                    kind: message_kind(m),
                    throttled: false,
                };
                out.messages.push(Inbound { phone_number_id: phone_number_id.clone(), event });
            }
            for st in v.get("statuses").and_then(Value::as_array).into_iter().flatten() {
                let (Some(message_id), Some(status)) = (s(st, "/id"), s(st, "/status")) else { continue };
                let errors = st
                    .get("errors")
                    .and_then(Value::as_array)
                    .map(|errs| {
                        errs.iter()
                            .map(|e| {
                                format!("{} {}", s(e, "/code").unwrap_or_default(), s(e, "/title").unwrap_or_default())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.statuses.push(StatusUpdate {
                    message_id,
                    status,
                    recipient: s(st, "/recipient_id").unwrap_or_default(),
                    timestamp: s(st, "/timestamp").and_then(|t| t.parse().ok()).unwrap_or(0),
                    errors,
                });
            }
        }
    }
    Ok(out)
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
           {"from":"919812345678","id":"wamid.10","timestamp":"1750091370","type":"unsupported","unsupported":{"type":"poll_creation"}},
           {"id":"wamid.11","timestamp":"1750091370","type":"text","text":{"body":"no sender"}}
          ],
          "statuses":[{"id":"wamid.OUT","status":"read","timestamp":"1750091090","recipient_id":"919812345678"}]}}]}]}"#.as_bytes();
        let n = parse(body).unwrap();
        assert_eq!(n.messages.len(), 10);
        assert_eq!(n.skipped, 1);
        assert_eq!(n.statuses[0].status, "read");
        let kinds: Vec<&str> = n.messages.iter().map(|m| m.event.kind.name()).collect();
        assert_eq!(
            kinds,
            ["text", "choice", "choice", "choice", "media", "media", "location", "contacts", "reaction", "unsupported"]
        );
        assert_eq!(n.messages[1].event.context_id.as_deref(), Some("wamid.OUT"));
        assert_eq!(n.messages[0].event.profile_name.as_deref(), Some("Asha Rao"));
        assert_eq!(n.messages[0].phone_number_id, "109876543210987");
        assert_eq!(n.messages[0].event.timestamp, 1750091045);
    }

    #[test]
    fn refuses_what_is_not_a_notification() {
        assert_eq!(parse(b"{").unwrap_err().code(), "channel.malformed_body");
        assert_eq!(parse(br#"{"object":"page","entry":[]}"#).unwrap_err().code(), "channel.wrong_object");
    }
}
