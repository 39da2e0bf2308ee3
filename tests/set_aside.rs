//! What the worker cannot read or finish is set aside, never retried forever: an inbound event
//! that does not parse, a stored state that does not parse, and a turn that panics on every
//! attempt. Each goes to the quarantine (admin API, `explain`), the conversation is handed to a
//! person, and later messages are processed.

mod common;

use common::*;
use serde_json::{Value, json};

/// The conversation's turn numbers, in order.
async fn turn_seqs(server: &Server, conversation_id: &str) -> Vec<i64> {
    server
        .store()
        .await
        .turns_of(&carewell::tenant::TenantId::default(), conversation_id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.seq)
        .collect()
}

/// Waits until the inbox is drained (a row stored behind the server's back is found by its
/// poll).
async fn drained(server: &Server) {
    for _ in 0..100 {
        if server.health().await["inbox"]["pending"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.settle().await;
}

async fn set_aside_of(server: &Server, conversation_id: &str) -> Vec<Value> {
    let (status, body) =
        server.admin("GET", &format!("/admin/quarantine?conversation={conversation_id}"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["set_aside"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_event_that_does_not_parse_is_set_aside_and_a_person_takes_over() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500007101");
    c.text("I'd like to book a full wash").await;
    // A row no build of this service can read (a bug, a bad migration, a hand edit).
    let cid = c.conversation_id();
    server
        .sql(&format!(
            "INSERT INTO inbox (dedup_key, conversation_id, phone_number_id, event, received_at) \
             VALUES ('wamid.BROKEN', '{cid}', '{PHONE_NUMBER_ID}', '{{\"not\": \"an event\"', 0)"
        ))
        .await;
    drained(&server).await;
    assert_says(&c.replies(), "something went wrong reading your last message");
    let aside = set_aside_of(&server, &cid).await;
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(aside[0]["kind"], "inbox_event");
    assert!(aside[0]["error"].as_str().unwrap().starts_with("store.corrupt_event"), "{}", aside[0]);
    let (_, shown) = server.admin("GET", &format!("/admin/conversations/{cid}"), json!({})).await;
    let timeline = &shown["conversations"][0];
    assert!(timeline["state"]["handoff"]["reason"].as_str().unwrap().contains("set aside"), "{timeline}");
    assert_eq!(timeline["set_aside"][0]["id"], aside[0]["id"]);
    // Later messages are processed (the person has the conversation: the bot records, stays quiet).
    let before = turn_seqs(&server, &cid).await.len();
    c.text("hello? are you there?").await;
    assert_eq!(turn_seqs(&server, &cid).await.len(), before + 1, "the next message has its turn");
    // Given back, the bot carries on where the booking was.
    server.admin("POST", &format!("/admin/conversations/{cid}/release"), json!({"agent": "Omar"})).await;
    server.settle().await;
    assert_says(&c.replies(), "first and last name");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_state_that_does_not_parse_is_set_aside_and_the_turns_carry_on() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500007102");
    c.text("I'd like to book a full wash").await;
    c.text("Jane Doe").await;
    let cid = c.conversation_id();
    server.sql(&format!("UPDATE conversations SET state = '{{\"journey\": 42' WHERE id = '{cid}'")).await;
    let r = c.text("hi").await;
    assert_says(&r, "Welcome");
    assert_says(&r, "something went wrong reading your last message");
    let seqs = turn_seqs(&server, &cid).await;
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "turn numbers carry on, none repeated");
    let aside = set_aside_of(&server, &cid).await;
    assert_eq!((aside.len(), aside[0]["kind"].as_str()), (1, Some("state")));
    assert_eq!(aside[0]["body"], "{\"journey\": 42", "the old state is kept as it was");
    // The next messages are processed.
    let before = seqs.len();
    c.text("hello?").await;
    assert_eq!(turn_seqs(&server, &cid).await.len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_panics_every_time_is_set_aside_and_nothing_else_waits_for_it() {
    let fakes = Fakes::new(None);
    let server = Server::start_with(&sqlite(), &fakes, &[(PANIC_IN_GUARDS_ENV, "KABOOM")]);
    let mut c = Customer::new(&server, &fakes.graph, "971500007103");
    c.text("I'd like to book a full wash").await;
    let cid = c.conversation_id();
    // Every attempt at this message panics inside the guards.
    let r = c.text("Jane KABOOM Doe").await;
    assert_says(&r, "something went wrong reading your last message");
    let aside = set_aside_of(&server, &cid).await;
    assert_eq!((aside.len(), aside[0]["kind"].as_str()), (1, Some("turn")));
    assert!(aside[0]["error"].as_str().unwrap().contains("worker.panicked"), "{}", aside[0]);
    assert!(server.log().contains("worker.panicked"), "each panic is logged with its code");
    // The process goes on: this conversation's later messages, and other customers.
    let before = turn_seqs(&server, &cid).await.len();
    c.text("hello?").await;
    assert_eq!(turn_seqs(&server, &cid).await.len(), before + 1, "the conversation is not stuck");
    let mut other = Customer::new(&server, &fakes.graph, "971500007104");
    assert_says(&other.text("I'd like to book a full wash").await, "first and last name");
}
