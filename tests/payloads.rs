//! Real WhatsApp traffic: the 77 webhook bodies of `fixtures/whatsapp-payloads/` (from the test
//! suites of pywa and netflie/whatsapp-cloud-api) replayed against the real server, each checked
//! against what a business expects (`manifest.json`: a reply, silence, or either); then the whole
//! folder again after a restart, which must change nothing. Plus the notifications a customer
//! never wrote: a number change that moves a booking under way, a deleted and an edited message,
//! a template's quick replies, an opt-out, and a message with no sender at all.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

fn payload_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/whatsapp-payloads")
}

struct Entry {
    file: String,
    expect: String,
    customers: Vec<String>,
    note: String,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(payload_dir().join("manifest.json")).unwrap();
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    entries
        .into_iter()
        .map(|e| Entry {
            file: e["file"].as_str().unwrap().to_string(),
            expect: e["expect"].as_str().unwrap().to_string(),
            customers: e["customers"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect(),
            note: e["note"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

fn sent_to_any(graph: &FakeGraph, customers: &[String]) -> Vec<Value> {
    customers.iter().flat_map(|c| graph.sent_to(c)).collect()
}

/// The payloads use other business numbers than the fake Graph API serves; replies are sent from
/// the one it serves.
const SEND_FROM: (&str, &str) = ("WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID);

#[tokio::test(flavor = "multi_thread")]
async fn every_real_payload_gets_what_a_business_expects_twice_over_a_restart() {
    let fakes = Fakes::new(None);
    let db = sqlite();
    let entries = manifest();
    assert_eq!(entries.len(), 77, "the manifest lists every payload");
    let mut answers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    {
        let server = Server::start_with(&db, &fakes, &[SEND_FROM]);
        for e in &entries {
            let body = std::fs::read_to_string(payload_dir().join(&e.file)).unwrap();
            let before = sent_to_any(&fakes.graph, &e.customers).len();
            let (status, answer) = server.post_webhook(&body, Some(SECRET)).await;
            assert_eq!(status, 200, "{} refused: {answer}", e.file);
            server.settle().await;
            let new: Vec<Value> = sent_to_any(&fakes.graph, &e.customers)[before..].to_vec();
            match e.expect.as_str() {
                "reply" => assert!(!new.is_empty(), "{} ({}) expects a reply and got none", e.file, e.note),
                "silent" => assert!(new.is_empty(), "{} ({}) expects silence, got:\n{}", e.file, e.note, texts(&new)),
                _ => {}
            }
            // One answer per message the customer wrote: at most one question (a menu, a list,
            // buttons) per customer and payload.
            let questions = new.iter().filter(|m| m["type"] == "interactive").count();
            assert!(questions <= 1, "{} got {questions} menus or questions:\n{}", e.file, texts(&new));
            if std::env::var("SHOW_REPLIES").is_ok() {
                eprintln!("=== {} [{}]\n{}", e.file, e.expect, texts(&new));
            }
            answers.insert(e.file.clone(), new);
        }
        let log = server.log();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
        // The message with no `from` is answered at its business-scoped user id.
        assert!(!answers["76_netflie_bsuid_only_no_from.json"].is_empty(), "a BSUID-only customer is answered");
        let bsuid_reply = &answers["76_netflie_bsuid_only_no_from.json"][0];
        assert_eq!(bsuid_reply["recipient"], "US.1349120865500000076", "sent to the BSUID: {bsuid_reply}");
        // Two messages in one delivery: one answer.
        let two = &answers["60_netflie_multiple_text.json"];
        assert_eq!(two.len(), 1, "two messages sent together get one answer, got:\n{}", texts(two));
        // A template's quick reply is read as typed text, never as a stale button.
        for file in ["25_pywa_callback_button_quick_reply.json", "67_netflie_template_button.json"] {
            let all = texts(&answers[file]);
            assert!(!all.contains("earlier question"), "{file} was taken for a stale button:\n{all}");
        }
        // An image with a caption is read as the caption, not brushed off.
        let caption = texts(&answers["62_netflie_image_caption.json"]);
        assert!(!caption.contains("can't use that kind of message"), "a caption is typed text:\n{caption}");
        // A voice note is told it cannot be listened to (no speech-to-text endpoint here).
        assert_says(&answers["07_pywa_message_voice.json"], "voice notes");
        server.kill();
    }
    // Again, after a restart: every message is a duplicate, so nothing is sent and no turn taken.
    let server = Server::start_with(&db, &fakes, &[SEND_FROM]);
    let turns_before = server.health().await["turns"].clone();
    let sent_before = fakes.graph.all_sent().len();
    for e in &entries {
        let body = std::fs::read_to_string(payload_dir().join(&e.file)).unwrap();
        let (status, answer) = server.post_webhook(&body, Some(SECRET)).await;
        assert_eq!(status, 200, "{} refused the second time: {answer}", e.file);
    }
    server.settle().await;
    assert_eq!(server.health().await["turns"], turns_before, "a second delivery takes no turn");
    assert_eq!(fakes.graph.all_sent().len(), sent_before, "a second delivery sends nothing");
    server.assert_replays().await;
}

fn signed_envelope(value: Value) -> String {
    carewell::channel::whatsapp::envelope::to_ascii_json(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "880011223344556", "changes": [{"field": "messages", "value": value}]}]
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_number_change_moves_a_booking_under_way_to_the_new_number() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let (old, new) = ("971500001001", "971599001001");
    let mut c = Customer::new(&server, &fakes.graph, old);
    c.text("I'd like to book a wash").await;
    c.text("Omar Haddad").await;
    let asked = c.press("Full Wash").await;
    assert_says(&asked, "one-time visit or a subscription");
    // WhatsApp tells the business the customer changed number (reference §4 `system`).
    let body = signed_envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "messages": [{"from": old, "id": "wamid.SYS-1", "timestamp": "1750091045", "type": "system",
            "system": {"body": format!("User A changed from {old} to {new}"), "wa_id": new, "type": "user_changed_number"}}]
    }));
    let (status, _) = server.post_webhook(&body, Some(SECRET)).await;
    assert_eq!(status, 200);
    server.settle().await;
    assert!(c.replies().is_empty(), "a number change is not answered at the old number");
    assert!(fakes.graph.sent_to(new).is_empty(), "nor at the new one");
    // From the new number the booking carries on where it was: the plan question, name known.
    let mut n = Customer::new(&server, &fakes.graph, new);
    let replies = n.text("one time").await;
    assert!(!texts(&replies).contains("first and last name"), "the name moved too:\n{}", texts(&replies));
    assert_says(&replies, "Which car is it");
    // The turn log of both sides says so.
    let (_, old_turns) = server.admin("GET", &format!("/admin/conversations/{PHONE_NUMBER_ID}:{old}"), json!({})).await;
    assert!(old_turns.to_string().contains(new), "the old conversation records where it went: {old_turns}");
    let (_, new_turns) = server.admin("GET", &format!("/admin/conversations/{PHONE_NUMBER_ID}:{new}"), json!({})).await;
    assert!(new_turns.to_string().contains("moved here"), "the new one records where it came from: {new_turns}");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_and_edited_messages_quick_replies_and_opt_outs() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500001002");
    c.text("book a wash").await;
    // A deleted message is recorded, not answered.
    let deleted = c.deliver_raw("revoke", json!({"original_message_id": "wamid.X"})).await;
    assert!(deleted.is_empty(), "a deletion is silent: {}", texts(&deleted));
    // An edit that answers the open question (the name) is read again and answered.
    let edited = c
        .deliver_raw(
            "edit",
            json!({"original_message_id": "wamid.Y", "message": {"type": "text", "text": {"body": "Priya Raman"}}}),
        )
        .await;
    assert_says(&edited, "Which service");
    // An edit that answers nothing is recorded only.
    let edited = c
        .deliver_raw(
            "edit",
            json!({"original_message_id": "wamid.Z", "message": {"type": "text", "text": {"body": "lol"}}}),
        )
        .await;
    assert!(edited.is_empty(), "an edit that answers nothing is silent: {}", texts(&edited));
    // A template's quick reply the bot never sent is read as typed text.
    let (body, _) = c.body("button", json!({"payload": "promo-stop", "text": "Stop promotions"}), Some("wamid.TPL"));
    server.post_webhook(&body, Some(SECRET)).await;
    server.settle().await;
    let replies = c.replies();
    assert_says(&replies, "won't get offers");
    assert!(!texts(&replies).contains("earlier question"), "not a stale button: {}", texts(&replies));
    // "start" opts back in.
    let replies = c.text("cancel").await;
    assert!(!replies.is_empty());
    let replies = c.text("start").await;
    assert_says(&replies, "Welcome back");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_with_no_sender_is_logged_with_its_id() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    // Two contacts and no `from`: nobody to answer; the id must reach the log.
    let body = signed_envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "A"}, "user_id": "US.1"}, {"profile": {"name": "B"}, "user_id": "US.2"}],
        "messages": [{"id": "wamid.NOBODY-1", "timestamp": "1750091045", "type": "text", "text": {"body": "hi"}}]
    }));
    let (status, _) = server.post_webhook(&body, Some(SECRET)).await;
    assert_eq!(status, 200, "acknowledged: WhatsApp must not send it again");
    server.settle().await;
    let log = server.log();
    assert!(
        log.contains("channel.message_skipped") && log.contains("wamid.NOBODY-1"),
        "the skipped message is logged with its id:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_voice_note_is_transcribed_when_speech_to_text_is_configured() {
    let fakes = Fakes::new(None);
    let speech = FakeSpeech::start();
    let server = Server::start_with(
        &sqlite(),
        &fakes,
        &[("SPEECH_BASE_URL", &speech.url), ("SPEECH_API_KEY", LLM_KEY), ("SPEECH_MODEL", "whisper-test")],
    );
    let mut c = Customer::new(&server, &fakes.graph, "971500001003");
    fakes.graph.add_media("voice-1", "audio/ogg; codecs=opus", b"I'd like to book a full wash".to_vec());
    let replies =
        c.deliver_raw("audio", json!({"id": "voice-1", "mime_type": "audio/ogg; codecs=opus", "voice": true})).await;
    assert_eq!(*speech.calls.lock().unwrap(), 1, "the note was sent for transcription");
    // Heard as typed text: the booking starts and the service named is not asked again.
    assert_says(&replies, "first and last name");
    let replies = c.text("Omar Haddad").await;
    assert!(!texts(&replies).contains("Which service"), "the service was heard: {}", texts(&replies));
    // A note that cannot be fetched is answered with the ask to type.
    let replies = c.deliver_raw("audio", json!({"id": "voice-missing", "mime_type": "audio/ogg", "voice": true})).await;
    assert_says(&replies, "voice notes");
    server.assert_replays().await;
}
