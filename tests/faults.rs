//! Faults the crash and race tests do not reach: ERP idempotency keys shared across business
//! numbers or a reset database, slow ERP writes outliving their claim, a backlog of retries in
//! front of a new customer, database blips, poison rows, panics, customers' words that look like
//! templates, and secrets in logs.

mod common;

use std::collections::HashSet;

use common::*;

/// Sends the whole typed booking, waiting for each answer.
async fn book(c: &mut Customer<'_>) {
    for m in booking_script() {
        c.text(&m).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_booking_through_two_business_numbers_gets_two_bookings() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let wa = "971500007001";
    let mut first = Customer::new(&server, &fakes.graph, wa);
    let mut second = Customer::on_number(&server, &fakes.graph, wa, SECOND_PHONE_NUMBER_ID);
    // Message for message, so both conversations are at the same turn when they confirm.
    for m in booking_script() {
        first.text(&m).await;
        second.text(&m).await;
    }
    server.settle().await;
    let orders = fakes.erp.docs("Sales Order");
    let keys: HashSet<&str> = orders.iter().filter_map(|o| o["wa_idempotency_key"].as_str()).collect();
    assert_eq!(orders.len(), 2, "one booking through each number: {orders:?}");
    assert_eq!(keys.len(), 2, "each with its own idempotency key");
    for c in [&first, &second] {
        assert_says(&c.received(), "You're booked");
    }
    for (c, order) in [&first, &second].iter().zip(&orders) {
        let name = order["name"].as_str().unwrap();
        let told = texts(&c.received());
        assert!(told.contains(name), "each number confirms its own order ({name}):\n{told}");
    }
    let health = server.health().await;
    assert_eq!(health["outbox"]["pending"], 0, "no write left waiting: {health}");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_database_against_an_erp_with_earlier_documents_makes_a_new_booking() {
    let fakes = Fakes::new(None);
    let wa = "971500007002";
    {
        let server = Server::start(&sqlite(), &fakes);
        book(&mut Customer::new(&server, &fakes.graph, wa)).await;
        server.settle().await;
    }
    assert_eq!(fakes.erp.docs("Sales Order").len(), 1);
    // The bot's database starts over (a new file); the ERP keeps what it holds.
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, wa);
    c.replies();
    book(&mut c).await;
    server.settle().await;
    let orders = fakes.erp.docs("Sales Order");
    assert_eq!(orders.len(), 2, "the second booking is a new document, not the first one found again");
    let second = orders[1]["name"].as_str().unwrap();
    assert_says(&c.received(), &format!("Reference: {second}"));
}

/// Text that looks like a template or breaks careless quoting: placeholders of two syntaxes,
/// quotes, a backslash and 4-byte emoji.
const AWKWARD: &str = "the wash left ${x} and {{y}} marks, \"quoted\", back\\slash, 🚗🧽💦";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_words_that_look_like_templates_reach_the_erp_as_written() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);

    // A complaint's free-text description.
    let mut c = Customer::new(&server, &fakes.graph, "971500007003");
    c.text("I want to make a complaint").await;
    c.press("Service quality").await;
    assert_says(&c.text(AWKWARD).await, "I'll file this complaint");
    assert_says(&c.press("Confirm").await, "Your complaint is filed");
    let issues = fakes.erp.docs("Issue");
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["description"], AWKWARD, "sent as written");

    // A booking's address (free text with a house number and a street).
    let address = "Villa 12 \"Palm View\", Al Wasl Road {{gate 2}} ${x}, back\\slash 🏠🌴 Jumeirah".to_string();
    let mut b = Customer::new(&server, &fakes.graph, "971500007004");
    for m in booking_script() {
        let m = if m.starts_with("Villa 12") { address.clone() } else { m };
        let r = b.text(&m).await;
        if texts(&r).contains("Just to be sure") {
            b.press("Yes").await;
        }
    }
    server.settle().await;
    assert_says(&b.received(), "You're booked");
    let orders = fakes.erp.docs("Sales Order");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["service_address"], address.as_str(), "sent as written");
    server.assert_replays().await;
}
