//! End to end: several tasks at once. Two bookings for two cars and a complaint started in the
//! middle of one; a journey left for the menu is offered again; a button of a journey put aside
//! takes the customer back to it. Real server, fake Graph API and ERP on loopback, no LLM.

mod common;

use common::*;

/// How many messages sent to the customer contain `needle`.
fn times_asked(graph: &FakeGraph, customer: &str, needle: &str) -> usize {
    graph.sent_to(customer).iter().filter(|m| text_of(m).contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bookings_and_a_complaint_in_between_all_complete() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let wa = "971500000301";
    let mut c = Customer::new(&server, &fakes.graph, wa);

    // Booking A (the Toyota), left at the time question.
    let r = c.text("Hi, I'd like to book a full wash please").await;
    assert_says(&r, "first and last name");
    let r = c.text("Jane Doe").await;
    assert_says(&r, "one-time visit or a subscription");
    let r = c.text("just once").await;
    assert_says(&r, "Which car");
    let r = c.text("Toyota Corolla ABC-1234").await;
    assert_says(&r, "Where should we come");
    let r = c.text("Villa 12, Al Wasl Road, Jumeirah").await;
    assert_says(&r, "When would suit you");

    // Booking B (the Honda), started in the middle of A; the car comes from this message, the
    // name and the address from the profile.
    let r = c.text("Can I also book another car? A Honda Civic XYZ-789").await;
    assert_says(&r, "Which service");
    let r = c.press("Interior Detailing").await;
    assert_says(&r, "one-time visit or a subscription");
    let r = c.press("One-time").await;
    assert_says(&r, "When would suit you");
    let r = c.text(&format!("{} at 11am", open_day())).await;
    assert_says(&r, "Here is your booking");
    let summary_b = texts(&r);
    assert!(summary_b.contains("Honda") && summary_b.contains("XYZ-789"), "{summary_b}");
    assert!(summary_b.contains("Interior Detailing"), "{summary_b}");

    // A complaint at B's summary: filed, then B's summary comes back.
    let r = c.text("Actually first I want to complain, your technician scratched my bumper last week").await;
    assert_says(&r, "I'll file this complaint");
    assert!(texts(&r).contains("Damage"), "the category was read from the message: {}", texts(&r));
    let r = c.text("yes").await;
    assert_says(&r, "Your complaint is filed");
    assert_says(&r, "Now, back to your request: Book a car-care service (Interior Detailing");
    assert_says(&r, "Here is your booking");

    // B confirmed; then A carries on at its time question.
    let r = c.press("Confirm").await;
    assert_says(&r, "You're booked, Jane!");
    assert_says(&r, "Now, back to your request: Book a car-care service (Full Wash");
    assert_says(&r, "When would suit you");
    let r = c.text(&format!("{} at 9am", open_day())).await;
    assert_says(&r, "Here is your booking");
    let summary_a = texts(&r);
    assert!(summary_a.contains("Toyota") && summary_a.contains("Full Wash"), "{summary_a}");
    let r = c.text("yes").await;
    assert_says(&r, "You're booked, Jane!");

    // Each ERP post carries the right booking.
    let orders = fakes.erp.docs("Sales Order");
    assert_eq!(orders.len(), 2, "two bookings, each posted once: {orders:?}");
    let by_vehicle = |v: &str| orders.iter().find(|o| o["vehicle"].as_str().is_some_and(|x| x.contains(v))).cloned();
    let honda = by_vehicle("Honda Civic XYZ-789").expect("the Honda's booking");
    let toyota = by_vehicle("Toyota Corolla ABC-1234").expect("the Toyota's booking");
    assert_eq!(honda["items"][0]["item_code"], "SVC-INT-DETAIL");
    assert_eq!(toyota["items"][0]["item_code"], "SVC-FULL-WASH");
    assert!(honda["visit_time"].as_str().unwrap().ends_with("11:00:00"), "{honda}");
    assert!(toyota["visit_time"].as_str().unwrap().ends_with("09:00:00"), "{toyota}");
    assert_ne!(honda["wa_idempotency_key"], toyota["wa_idempotency_key"]);
    let issues = fakes.erp.docs("Issue");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0]["description"].as_str().unwrap().contains("scratched my bumper"));
    assert!(issues[0]["subject"].as_str().unwrap().contains("Damage"));

    // Nothing already given was asked again.
    for question in ["first and last name", "Which car", "Where should we come", "Which service", "What is it about"] {
        assert!(times_asked(&fakes.graph, wa, question) <= 1, "{question:?} was asked more than once");
    }
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_left_for_the_menu_is_offered_again_and_kept() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000302");

    let r = c.text("I want to book a wash").await;
    assert_says(&r, "first and last name");
    let r = c.text("Sam Lee").await;
    assert_says(&r, "Which service");
    let service_question = r.last().cloned().unwrap();

    // The menu: the booking is kept and offered.
    let r = c.text("menu").await;
    assert_says(&r, "unfinished request");
    let r = c.press("Continue: Book a service").await;
    assert_says(&r, "Now, back to your request");
    assert_says(&r, "Which service");

    // The open-requests list shows it too.
    let r = c.text("my requests").await;
    assert_says(&r, "Here is what we have open");
    assert!(find_option(r.last().unwrap(), "Book a service").is_some(), "{}", texts(&r));

    // A complaint by the menu, then a button of the booking's older message: back to the booking.
    let r = c.text("menu").await;
    assert_says(&r, "unfinished request");
    let r = c.press("Make a complaint").await;
    assert_says(&r, "What is it about");
    let r = c.press_in(&service_question, "Exterior Wash").await;
    assert_says(&r, "one-time visit or a subscription");
    let r = c.text("my requests").await;
    let list = r.last().unwrap();
    assert!(find_option(list, "Make a complaint").is_some(), "the complaint was kept: {list}");

    // Cancelling the booking brings the complaint back.
    let r = c.text("cancel").await;
    assert_says(&r, "Now, back to your request: Make a complaint");
    assert_says(&r, "What is it about");
    assert!(fakes.erp.docs("Sales Order").is_empty());
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_five_requests_put_aside_the_oldest_is_closed_and_the_customer_told() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000303");
    let r = c.text("I want to book a full wash").await;
    assert_says(&r, "first and last name");
    for _ in 0..5 {
        let r = c.text("and book another car please").await;
        assert_says(&r, "first and last name");
        assert!(!texts(&r).contains("closed the oldest"), "{}", texts(&r));
    }
    let r = c.text("and book another car please").await;
    assert_says(&r, "I've closed the oldest one: Book a car-care service (Full Wash)");
    let r = c.text("my requests").await;
    let list = r.last().unwrap();
    let rows = carewell::channel::whatsapp::render::offered_options(list);
    assert_eq!(rows.len(), 6, "the one in front and five put aside: {list}");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_menu_carries_on_an_open_journey_instead_of_starting_a_duplicate() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000304");
    c.text("I want to book a full wash").await;
    let r = c.text("Sam Lee").await;
    assert_says(&r, "one-time visit or a subscription");
    // The menu's "Book a service" while booking: the same booking carries on.
    c.text("menu").await;
    let r = c.press("Book a service").await;
    assert_says(&r, "Now, back to your request: Book a car-care service (Full Wash)");
    assert_says(&r, "one-time visit or a subscription");
    let r = c.text("my requests").await;
    let rows = carewell::channel::whatsapp::render::offered_options(r.last().unwrap());
    assert_eq!(rows.len(), 1, "one booking, not two: {rows:?}");
    server.assert_replays().await;
}
