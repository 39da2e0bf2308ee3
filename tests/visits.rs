//! After a visit is booked, on the pure engine with a clock the test moves: the reminder the day
//! before (text with buttons inside WhatsApp's 24-hour window, the approved template outside
//! it), its answers (confirm, reschedule and cancel with the booking already chosen), the rating
//! after the visit (stored; a low one offers a person), and none of it for a customer who opted
//! out or while a person has the conversation.

mod common;

use carewell::engine::{Decision, EventKind, Reply};
use common::engine_run::*;

/// The sample customer of `fixtures/erp/`, whose upcoming bookings the lookups find.
const SAMPLE: &str = "971500000001";
/// A booking of the sample customer in `fixtures/erp/sales_orders.json`.
const BOOKED: &str = "SAL-ORD-2026-00047";
/// Saturday 5 December 2026, 11:00 in Dubai: the visit booked below.
const SATURDAY_11AM: i64 = WEDNESDAY_10AM + 3 * 86_400 + 3_600;
const HOUR: i64 = 3_600;

/// Books a full wash for Saturday 11:00; the ERP answers with `reference`.
async fn booked(customer: &str, reference: &str) -> Run {
    let mut r = Run::new(customer);
    r.say("I'd like to book a full wash, I'm Jane Doe, just once").await;
    r.say("Toyota Corolla ABC-1234").await;
    r.say("Villa 12, Al Wasl Road, Jumeirah").await;
    let d = r.say("Saturday 11am").await;
    assert_eq!(r.step(), "booking/summary", "{}", said(&d));
    let d = r.press("Confirm").await;
    let d = r.erp_answers(&d, Some(reference), None).await;
    assert!(said(&d).contains("You're booked"), "{}", said(&d));
    r
}

async fn tick_at(r: &mut Run, at: i64) -> Decision {
    r.clock = at;
    r.event(EventKind::Tick).await
}

fn press_id(d: &Decision, title: &str) -> (String, String) {
    d.replies
        .iter()
        .flat_map(|r| match r {
            Reply::Choices { options, .. } | Reply::Template { options, .. } => options.clone(),
            Reply::Text { .. } => vec![],
        })
        .find(|o| o.title == title)
        .map(|o| (o.id, o.title))
        .unwrap_or_else(|| panic!("no {title:?} in {:?}", d.replies))
}

#[tokio::test]
async fn the_reminder_goes_the_day_before_as_a_template_outside_the_window_and_confirm_is_recorded() {
    let mut r = booked("971500007001", "SAL-ORD-9001").await;
    let visit = &r.state.visits[0];
    assert_eq!((visit.reference.as_str(), visit.at.as_str()), ("SAL-ORD-9001", "2026-12-05T11:00:00"));
    assert!(!visit.reminded);
    assert_eq!(r.state.wake_at, Some(SATURDAY_11AM - 24 * HOUR), "woken the day before for the reminder");

    // The day before, two days after the customer last wrote: only a template may go.
    let reminder = tick_at(&mut r, SATURDAY_11AM - 24 * HOUR).await;
    let Some(Reply::Template { name, language, parameters, options, body }) = reminder.replies.first() else {
        panic!("a template: {:?}", reminder.replies)
    };
    assert_eq!((name.as_str(), language.as_str()), ("visit_reminder", "en"));
    assert_eq!(parameters, &["Jane", "Sat 5 Dec, 11:00", "Full Wash"]);
    assert!(body.contains("Toyota Corolla on Sat 5 Dec, 11:00 at Villa 12"), "{body}");
    let titles: Vec<&str> = options.iter().map(|o| o.title.as_str()).collect();
    assert_eq!(titles, ["Confirm", "Reschedule", "Cancel"]);
    assert!(r.state.visits[0].reminded);
    assert_eq!(r.state.wake_at, Some(SATURDAY_11AM + 3 * HOUR), "next: the rating after the visit");

    // A second wake-up sends nothing more.
    let d = tick_at(&mut r, SATURDAY_11AM - 23 * HOUR).await;
    assert!(d.replies.is_empty(), "{}", said(&d));

    // The template's quick reply comes back as a press of its payload.
    let (id, title) = press_id(&reminder, "Confirm");
    let d = r.event(EventKind::Choice { id, title }).await;
    assert!(said(&d).contains("Thank you, Jane! See you on Sat 5 Dec, 11:00"), "{}", said(&d));
    assert!(r.state.visits[0].confirmed);
}

#[tokio::test]
async fn inside_the_window_the_reminder_has_buttons_and_reschedule_starts_with_the_booking_chosen() {
    let mut r = booked(SAMPLE, BOOKED).await;
    // The customer wrote the evening before: the window is open.
    r.clock = SATURDAY_11AM - 40 * HOUR;
    r.say("thanks!").await;
    let d = tick_at(&mut r, SATURDAY_11AM - 24 * HOUR).await;
    let Some(Reply::Choices { body, options, .. }) = d.replies.first() else { panic!("buttons: {:?}", d.replies) };
    assert!(body.starts_with("Hi Jane! A reminder"), "{body}");
    assert_eq!(options.len(), 3);
    let (id, title) = press_id(&d, "Reschedule");
    let d = r.event(EventKind::Choice { id, title }).await;
    // The booking the reminder was about is chosen already: the next question is the new time.
    assert_eq!(r.step(), "reschedule/when", "{}", said(&d));
    assert!(said(&d).contains(BOOKED), "{}", said(&d));
    let d = r.say("Sunday 2pm").await;
    assert_eq!(r.step(), "reschedule/summary", "{}", said(&d));
    let d = r.press("Confirm").await;
    r.erp_answers(&d, Some(BOOKED), None).await;
    // The reminder and the rating follow the visit to its new time.
    let visit = &r.state.visits[0];
    assert_eq!(visit.at, "2026-12-06T14:00:00");
    assert!(!visit.reminded, "a new reminder is due the day before the new time");
    assert_eq!(r.state.wake_at, Some(SATURDAY_11AM + 27 * HOUR - 24 * HOUR));
}

#[tokio::test]
async fn cancel_from_the_reminder_cancels_that_booking_and_nothing_follows_it() {
    let mut r = booked(SAMPLE, BOOKED).await;
    let d = tick_at(&mut r, SATURDAY_11AM - 24 * HOUR).await;
    let (id, title) = press_id(&d, "Cancel");
    let d = r.event(EventKind::Choice { id, title }).await;
    assert_eq!(r.step(), "cancel/summary", "{}", said(&d));
    assert!(said(&d).contains("Shall I cancel your booking") && said(&d).contains(BOOKED), "{}", said(&d));
    let d = r.press("Confirm").await;
    assert_eq!(d.erp[0].action.action, "cancel_booking");
    let d = r.erp_answers(&d, Some(BOOKED), None).await;
    assert!(said(&d).contains("is cancelled"), "{}", said(&d));
    assert!(r.state.visits.is_empty());
    assert_eq!(r.state.wake_at, None);
}

#[tokio::test]
async fn the_rating_is_stored_and_a_low_one_offers_a_person() {
    let mut r = booked("971500007002", "SAL-ORD-9002").await;
    tick_at(&mut r, SATURDAY_11AM - 24 * HOUR).await;
    let d = tick_at(&mut r, SATURDAY_11AM + 3 * HOUR).await;
    // Outside the window the rating goes as its template, with no buttons: the number is typed.
    let Some(Reply::Template { name, options, .. }) = d.replies.first() else { panic!("{:?}", d.replies) };
    assert_eq!(name, "visit_rating");
    assert!(options.is_empty());
    assert_eq!(r.state.wake_at, None, "nothing more is due");
    let d = r.say("2").await;
    assert!(said(&d).contains("sorry it wasn't better"), "{}", said(&d));
    assert_eq!(r.state.visits[0].rating, Some(2));
    assert!(has(&d, "rating"));
    let d = r.press("Talk to a person").await;
    assert!(r.state.handoff().is_some(), "{}", said(&d));

    // A good rating, pressed from the list inside the window, is thanked.
    let mut r = booked("971500007003", "SAL-ORD-9003").await;
    r.clock = SATURDAY_11AM + 2 * HOUR;
    r.say("the team is here, thanks").await;
    let d = tick_at(&mut r, SATURDAY_11AM + 3 * HOUR).await;
    let (id, title) = press_id(&d, "⭐⭐⭐⭐⭐ 5");
    let d = r.event(EventKind::Choice { id, title }).await;
    assert!(said(&d).contains("Thank you for rating us 5 out of 5"), "{}", said(&d));
    assert_eq!(r.state.visits[0].rating, Some(5));
    // Once rated, a later "4" is not a rating.
    let d = r.say("4").await;
    assert!(!has(&d, "rating"), "{}", said(&d));
}

#[tokio::test]
async fn opted_out_customers_get_no_reminder_or_rating_and_a_person_holds_them_back() {
    let mut r = booked("971500007004", "SAL-ORD-9004").await;
    r.say("stop promotions").await;
    assert_eq!(r.state.wake_at, None, "nothing is scheduled for a customer who opted out");
    let d = tick_at(&mut r, SATURDAY_11AM - 24 * HOUR).await;
    assert!(d.replies.is_empty(), "{}", said(&d));
    assert!(r.state.visits[0].reminded, "given up, not pending");

    // While a person has the conversation, what is due waits half an hour at a time.
    let mut r = booked("971500007005", "SAL-ORD-9005").await;
    r.say("I want to talk to a person").await;
    let at = SATURDAY_11AM - 24 * HOUR;
    let d = tick_at(&mut r, at).await;
    assert!(d.replies.is_empty(), "{}", said(&d));
    assert_eq!(r.state.wake_at, Some(at + 1800));
    assert!(!r.state.visits[0].reminded);
}

#[tokio::test]
async fn a_visit_booked_less_than_a_day_ahead_gets_no_reminder_but_is_rated() {
    let mut r = Run::new("971500007006");
    r.say("I'd like to book a full wash, I'm Jane Doe, just once").await;
    r.say("Toyota Corolla ABC-1234").await;
    r.say("Villa 12, Al Wasl Road, Jumeirah").await;
    r.say("tomorrow 9am").await;
    let d = r.press("Confirm").await;
    r.erp_answers(&d, Some("SAL-ORD-9006"), None).await;
    let visit = &r.state.visits[0];
    assert!(visit.reminded, "booked less than 24 hours ahead: the confirmation was the reminder");
    assert_eq!(r.state.wake_at, Some(visit.at_unix + 3 * HOUR));
}

/// Through the real server: a booking schedules its reminder (the conversation's wake-up is the
/// day before the visit), and the template's quick reply, delivered as WhatsApp delivers a
/// template button (`type: button` with the payload we gave it), confirms the visit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_through_the_server_schedules_its_reminder_and_the_templates_button_confirms_it() {
    use common::{Customer, Fakes, SECRET, Server, booking_script, sqlite, texts};
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500007010");
    for line in booking_script() {
        c.text(&line).await;
    }
    let store = server.store().await;
    let conv = store.conversation(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap().unwrap();
    let state: serde_json::Value = serde_json::from_str(&conv.state).unwrap();
    let visit = &state["visits"][0];
    let reference = visit["reference"].as_str().expect("the booking is a visit").to_string();
    assert!(reference.starts_with("SAL-ORD-"), "{visit}");
    let remind_at = visit["at_unix"].as_i64().unwrap() - 24 * HOUR;
    assert_eq!(conv.wake_at, Some(remind_at * 1000), "woken the day before the visit");

    let payload = carewell::engine::visits::answer_id(0, &reference);
    let (body, _) = c.body("button", serde_json::json!({"payload": payload, "text": "Confirm"}), Some("wamid.TPL"));
    let (status, _) = server.post_webhook(&body, Some(SECRET)).await;
    assert_eq!(status, 200);
    server.settle().await;
    let replies = c.replies();
    assert!(texts(&replies).contains("Thank you, Jane! See you on"), "{}", texts(&replies));
    let conv = store.conversation(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap().unwrap();
    assert!(conv.state.contains("\"confirmed\":true"), "{}", conv.state);
    server.assert_replays().await;
}
