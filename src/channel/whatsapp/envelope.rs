//! Building webhook bodies as WhatsApp sends them (reference §3): for the sandbox's `chat`, the
//! inspector page and tests, which post through the same pipeline as WhatsApp.

use serde_json::{Value, json};

/// Builds the webhook envelope around one message, as WhatsApp sends it (reference §3).
pub fn envelope(phone_number_id: &str, customer: &str, name: &str, message: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": name}, "wa_id": customer}],
            "messages": [message]
        }}]}]
    })
}

/// Serialises JSON with non-ASCII characters as `\uXXXX` escapes, as WhatsApp does.
pub fn to_ascii_json(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}
