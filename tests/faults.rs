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
