//! Hand-offs that reach a person: the customer who asks for one is recorded as waiting, the
//! staff numbers get a WhatsApp alert and the team's webhook a signed POST (retried when it is
//! down), the admin API lists the wait, and an agent takes it over and resolves it with a note,
//! which gives the conversation back to the bot. On SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

const STAFF: &str = "971500009900";
const HOOK_SECRET: &str = "team-hook-secret";

async fn handoffs(server: &Server, status: &str) -> Vec<Value> {
    let (code, body) = server.admin("GET", &format!("/admin/handoffs?status={status}"), json!({})).await;
    assert_eq!(code, 200, "{body}");
    body["handoffs"].as_array().cloned().unwrap_or_default()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn a_hand_off_reaches_the_team_and_is_resolved_with_a_note(db: Db) {
    let fakes = Fakes::new(None);
    let hook = carewell::fakes::FakeHook::start();
    // The team's receiver is down for the first POST: the outbox retries it.
    hook.fail_next(1);
    let url = format!("{}/handoffs", hook.url);
    let server = Server::start_with(
        &db,
        &fakes,
        &[
            ("HANDOFF_STAFF_NUMBERS", "+971 50 000 9900"),
            ("HANDOFF_WEBHOOK_URL", url.as_str()),
            ("HANDOFF_WEBHOOK_SECRET", HOOK_SECRET),
        ],
    );
    let mut c = Customer::new(&server, &fakes.graph, "971500007300");
    assert_says(&c.text("I want to talk to a person").await, "member of our team");

    // The staff number is told who waits and why.
    wait_for("the staff alert", || !fakes.graph.sent_to(STAFF).is_empty()).await;
    let alert = text_of(&fakes.graph.sent_to(STAFF)[0]);
    assert!(alert.contains("+971500007300") && alert.contains("support queue"), "{alert}");

    // The webhook gets one signed POST, after one refusal.
    wait_for("the webhook POST", || !hook.accepted().is_empty()).await;
    let (signature, body) = hook.accepted()[0].clone();
    carewell::channel::whatsapp::signature::verify(HOOK_SECRET.as_bytes(), body.as_bytes(), Some(&signature))
        .expect("signed with HANDOFF_WEBHOOK_SECRET");
    let notice: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (notice["event"].as_str(), notice["customer"].as_str()),
        (Some("handoff.waiting"), Some("971500007300"))
    );
    assert_eq!(hook.refused(), 1, "the first POST was refused and retried");

    // The admin API lists it as waiting, with its wait.
    let waiting = handoffs(&server, "waiting").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let h = &waiting[0];
    assert_eq!(h["conversation_id"], c.conversation_id());
    assert!(h["reason"].as_str().is_some_and(|r| !r.is_empty()), "{h}");
    assert!(h["waiting_seconds"].as_i64().is_some_and(|s| s >= 0), "{h}");
    let id = h["id"].as_i64().unwrap();

    // Writing again while waiting: the bot stays silent and nobody is told twice.
    assert!(c.text("hello? anyone?").await.is_empty());
    server.settle().await;
    assert_eq!(fakes.graph.sent_to(STAFF).len(), 1, "one alert per hand-off");
    assert_eq!(hook.accepted().len(), 1, "one POST per hand-off");

    // An agent takes it over: recorded with their name.
    let (code, _) =
        server.admin("POST", &format!("/admin/conversations/{}/takeover", c.wa_id), json!({"agent": "Amal"})).await;
    assert_eq!(code, 202);
    server.settle().await;
    assert!(handoffs(&server, "waiting").await.is_empty());
    let taken = handoffs(&server, "taken").await;
    assert_eq!(taken[0]["taken_by"], "Amal");
    assert_says(&c.replies(), "Amal");

    // Resolved with a note: closed, and the conversation is the bot's again.
    let (code, body) = server.admin("POST", &format!("/admin/handoffs/{id}/resolve"), json!({"agent": "Amal"})).await;
    assert_eq!(code, 400, "a resolution needs a note: {body}");
    let (code, body) = server
        .admin("POST", &format!("/admin/handoffs/{id}/resolve"), json!({"agent": "Amal", "note": "booked by phone"}))
        .await;
    assert_eq!(code, 202, "{body}");
    server.settle().await;
    let resolved = handoffs(&server, "resolved").await;
    assert_eq!(
        (resolved[0]["closed_by"].as_str(), resolved[0]["note"].as_str()),
        (Some("Amal"), Some("booked by phone"))
    );
    assert_says(&c.replies(), "back with our booking assistant");
    let (code, _) =
        server.admin("POST", &format!("/admin/handoffs/{id}/resolve"), json!({"agent": "Amal", "note": "again"})).await;
    assert_eq!(code, 409, "a closed hand-off cannot be resolved again");
    let (code, _) = server.admin("GET", "/admin/handoffs?status=lost", json!({})).await;
    assert_eq!(code, 400);
    // A hand-off during a complaint waits in the queue its flow file names.
    let mut d = Customer::new(&server, &fakes.graph, "971500007301");
    d.text("I want to make a complaint").await;
    assert_says(&d.text("I want to talk to a person").await, "member of our team");
    wait_for("the complaint's staff alert", || fakes.graph.sent_to(STAFF).len() == 2).await;
    assert!(text_of(&fakes.graph.sent_to(STAFF)[1]).contains("complaints queue"));
    let waiting = handoffs(&server, "waiting").await;
    assert_eq!(waiting.iter().map(|h| h["queue"].as_str().unwrap_or("")).collect::<Vec<_>>(), vec!["complaints"]);
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_reaches_the_team_and_is_resolved_with_a_note_on_sqlite() {
    a_hand_off_reaches_the_team_and_is_resolved_with_a_note(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_reaches_the_team_and_is_resolved_with_a_note_on_postgres() {
    a_hand_off_reaches_the_team_and_is_resolved_with_a_note(postgres().await).await;
}
