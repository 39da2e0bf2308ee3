//! End to end: the journeys beyond booking — rescheduling and service updates — by buttons, by
//! text and mixed, with the LLM absent and failing, against the fake ERP seeded with the sample
//! customer's documents (`fixtures/erp/`).

mod common;

use carewell::fakes::{FakeLlm, LlmMode};
use common::*;
use serde_json::Value;

fn days_ahead(n: i64) -> String {
    let tz = jiff::tz::TimeZone::get("Asia/Dubai").unwrap();
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    today.checked_add(jiff::Span::new().days(n)).unwrap().to_string()
}

/// The first option offered by the newest interactive message.
fn first_option(replies: &[Value]) -> String {
    let m = replies.iter().rev().find(|m| m["type"] == "interactive").expect("an interactive reply");
    carewell::channel::whatsapp::render::offered_options(m).first().expect("an option").title.clone()
}

fn puts(fakes: &Fakes) -> Vec<(String, String, Value)> {
    fakes.erp.log.lock().unwrap().puts.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_by_buttons_moves_the_chosen_booking() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let wa = "971500000401";
    fakes.erp.seed_sample_customer(wa, "Asia/Dubai");
    let mut c = Customer::new(&server, &fakes.graph, wa);

    let r = c.text("hi").await;
    let r = c.press_in(r.last().unwrap(), "Reschedule").await;
    assert_says(&r, "Which booking would you like to move?");
    let list = r.last().unwrap();
    assert!(find_option(list, &days_ahead(6)).is_some(), "both upcoming bookings are offered: {list}");
    assert!(find_option(list, &days_ahead(-12)).is_none(), "a past booking is not offered: {list}");
    let r = c.press(&format!("{} Wax", days_ahead(3))).await;
    assert_says(&r, "When would suit you instead?");
    assert_says(&r, "SAL-ORD-2026-00047");
    let slot = first_option(&r);
    let r = c.press(&slot).await;
    assert_says(&r, "I'll move your booking");
    let r = c.press("Confirm").await;
    assert_says(&r, "Done ✅ Booking SAL-ORD-2026-00047 is now on");

    let p = puts(&fakes);
    assert_eq!(p.len(), 1, "one update: {p:?}");
    assert_eq!(p[0].1, "SAL-ORD-2026-00047");
    let order = fakes.erp.docs("Sales Order").into_iter().find(|o| o["name"] == "SAL-ORD-2026-00047").unwrap();
    assert_eq!(order["delivery_date"], p[0].2["delivery_date"]);
    assert_ne!(order["delivery_date"].as_str().unwrap(), days_ahead(3), "the date moved");
    assert!(fakes.erp.docs("Sales Order").len() == 3, "nothing was created");
    server.assert_replays().await;
}

async fn reschedule_by_text(llm: Option<FakeLlm>) {
    let fakes = Fakes::new(llm);
    let server = Server::start(&sqlite(), &fakes);
    let wa = "971500000402";
    fakes.erp.seed_sample_customer(wa, "Asia/Dubai");
    let mut c = Customer::new(&server, &fakes.graph, wa);
    let day = open_day();

    // The new time comes with the request; only the booking is asked.
    let r = c.text(&format!("Can I reschedule to {day} at 2pm?")).await;
    assert_says(&r, "Which booking would you like to move?");
    let r = c.text("the Interior Detailing one").await;
    assert_says(&r, "I'll move your booking");
    assert_says(&r, "14:00");
    let r = c.text("yes").await;
    assert_says(&r, "is now on");
    let p = puts(&fakes);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].1, "SAL-ORD-2026-00052");
    assert!(p[0].2["visit_time"].as_str().unwrap().ends_with("14:00:00"), "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_by_text_without_an_llm() {
    reschedule_by_text(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_by_text_with_a_failing_llm() {
    reschedule_by_text(Some(FakeLlm::start(LlmMode::Invalid, vec![]))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reschedule_with_one_booking_takes_it_and_with_none_says_so() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let one = "971500000403";
    fakes.erp.insert(
        "Sales Order",
        serde_json::json!({"name": "SAL-ORD-2026-00900", "whatsapp_number": format!("+{one}"), "status": "To Deliver and Bill",
            "delivery_date": days_ahead(2), "visit_time": format!("{} 11:00:00", days_ahead(2)), "vehicle": "Kia Rio K-1", "service_name": "Exterior Wash"}),
    );
    let mut c = Customer::new(&server, &fakes.graph, one);
    let r = c.text("I need to reschedule").await;
    assert_says(&r, "Your booking: ");
    assert_says(&r, "Exterior Wash");
    assert!(!texts(&r).contains("Which booking"), "one booking is not asked about");
    // Mixed: a typed day, then a button for the time.
    let r = c.text(&format!("{} at 4pm", open_day())).await;
    assert_says(&r, "I'll move your booking");
    let r = c.press("Confirm").await;
    assert_says(&r, "SAL-ORD-2026-00900 is now on");

    let mut nobody = Customer::new(&server, &fakes.graph, "971500000404");
    let r = nobody.text("please reschedule my appointment").await;
    assert_says(&r, "I can't find an upcoming booking for this number");
    assert_eq!(puts(&fakes).len(), 1);
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_updates_show_bookings_and_subscriptions() {
    let fakes = Fakes::new(Some(FakeLlm::start(LlmMode::Slow, vec![])));
    let server = Server::start(&sqlite(), &fakes);
    let wa = "971500000405";
    fakes.erp.seed_sample_customer(wa, "Asia/Dubai");
    let mut c = Customer::new(&server, &fakes.graph, wa);
    let r = c.text("what's the status of my bookings?").await;
    assert_says(&r, "Which one would you like to know about?");
    let list = r.last().unwrap();
    assert!(find_option(list, "Monthly Wash plan").is_some(), "{list}");
    assert!(find_option(list, &format!("{} Full Wash", days_ahead(-12))).is_some(), "{list}");
    let r = c.press("Monthly Wash plan").await;
    assert_says(&r, "Here's the latest on Monthly Wash plan");
    assert_says(&r, &format!("Active · renews {}", days_ahead(17)));

    // By text: the booking named by its service.
    let r = c.text("my bookings").await;
    let r2 = c.text("the wax & polish one").await;
    assert!(!r.is_empty());
    assert_says(&r2, "Scheduled · ");
    assert!(!texts(&r2).contains("To Deliver and Bill"), "the ERP's own status words are relabelled");
    assert_says(&r2, "SAL-ORD-2026-00047");
    server.assert_replays().await;
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Sends an image message (WhatsApp's real format) for a file the fake Graph API holds.
async fn send_receipt(c: &mut Customer<'_>, media_id: &str, caption: Option<&str>) -> Vec<Value> {
    let mut image = serde_json::json!({"id": media_id, "mime_type": "image/jpeg", "sha256": "bm90LWNoZWNrZWQ="});
    if let Some(caption) = caption {
        image["caption"] = caption.into();
    }
    c.deliver_raw("image", image).await
}

async fn pay_with_a_receipt(llm: Option<FakeLlm>, caption: Option<&str>) {
    let fakes = Fakes::new(llm);
    let server = Server::start(&sqlite(), &fakes);
    let wa = "971500000406";
    fakes.erp.seed_sample_customer(wa, "Asia/Dubai");
    let receipt: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    fakes.graph.add_media("1482937560012345", "image/jpeg", receipt.clone());
    let mut c = Customer::new(&server, &fakes.graph, wa);

    let r = c.text("Hi, I'd like to pay my invoice").await;
    assert_says(&r, "Invoice ACC-SINV-2026-00019: AED 75.00 is due");
    assert_says(&r, "IBAN");
    let r = send_receipt(&mut c, "1482937560012345", caption).await;
    if caption.is_none() {
        assert_says(&r, "How much did you pay");
        // More than is due: asked again, with the reason.
        let r = c.text("I paid AED 100").await;
        assert_says(&r, "100.00 doesn't match: 75.00 is due on ACC-SINV-2026-00019");
        let r = c.text("75").await;
        assert_says(&r, "I'll send this to our accounts team");
    } else {
        assert_says(&r, "I'll send this to our accounts team");
    }
    let r = c.text("yes").await;
    assert_says(&r, "Your receipt for ACC-SINV-2026-00019 is with our accounts team");

    let notes = fakes.erp.docs("Comment");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["reference_name"], "ACC-SINV-2026-00019");
    assert!(notes[0]["content"].as_str().unwrap().contains("75"), "{notes:?}");
    let files = fakes.erp.docs("File");
    assert_eq!(files.len(), 1, "the receipt reached the ERP once: {files:?}");
    assert_eq!(files[0]["attached_to_doctype"], "Sales Invoice");
    assert_eq!(files[0]["attached_to_name"], "ACC-SINV-2026-00019");
    assert_eq!(files[0]["file_size"], receipt.len());
    assert_eq!(files[0]["content_hash"], sha256_hex(&receipt), "the very bytes the customer sent");
    assert_eq!(fakes.graph.log.lock().unwrap().media_downloads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_is_fetched_from_whatsapp_and_attached_to_the_invoice() {
    pay_with_a_receipt(None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_with_the_amount_in_its_caption_with_a_failing_llm() {
    pay_with_a_receipt(Some(FakeLlm::start(LlmMode::Adversarial, vec![])), Some("Paid AED 75 by transfer")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_due_is_said_and_a_photo_elsewhere_is_not_taken_for_a_receipt() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000407");
    let r = c.text("I want to pay my bill").await;
    assert_says(&r, "nothing is due on this number");
    let r = c.text("book a full wash").await;
    assert_says(&r, "first and last name");
    let r = send_receipt(&mut c, "999", None).await;
    assert_says(&r, "first and last name");
    assert!(fakes.erp.docs("File").is_empty());
}

/// The typed booking every offer test uses; returns every reply of it.
async fn book_by_text(c: &mut Customer<'_>, opening: &str) -> Vec<Value> {
    let mut all = c.text(opening).await;
    for line in ["Sam Lee", "just once", "Toyota Corolla ABC-1234", "Villa 12, Al Wasl Road, Jumeirah"] {
        all.extend(c.text(line).await);
    }
    all.extend(c.text(&format!("{} at 10am", open_day())).await);
    all.extend(c.text("yes").await);
    assert_says(&all, "You're booked, Sam!");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_angry_customer_is_offered_a_person_and_never_an_offer() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);

    // A calm customer is shown the current offer once, after the booking, and not twice.
    let calm = "971500000408";
    fakes.erp.seed_sample_customer(calm, "Asia/Dubai");
    let mut c = Customer::new(&server, &fakes.graph, calm);
    let first = book_by_text(&mut c, "I'd like to book a full wash").await;
    assert_says(&first, "🎁 One more thing: 20% off Wax & Polish");
    let second = book_by_text(&mut c, "book an exterior wash please").await;
    assert!(!texts(&second).contains('🎁'), "never twice: {}", texts(&second));

    // An angry one: acknowledged first, offered a person, and no offer anywhere.
    let angry = "971500000409";
    fakes.erp.seed_sample_customer(angry, "Asia/Dubai");
    let mut a = Customer::new(&server, &fakes.graph, angry);
    let r = a.text("This is ridiculous, I've waited all week!!! Just book me a full wash").await;
    assert!(text_of(&r[0]).contains("I can hear this has been frustrating"), "acknowledged first: {}", texts(&r));
    assert!(find_option(&r[0], "Talk to a person").is_some(), "a person is offered: {}", r[0]);
    book_by_text(&mut a, "ok").await;
    let everything = fakes.graph.sent_to(angry);
    assert!(
        everything.iter().all(|m| !text_of(m).contains('🎁') && !text_of(m).to_lowercase().contains("offer")),
        "no offer to an upset customer: {}",
        texts(&everything)
    );
    // The person button hands the conversation over.
    let ack = everything.iter().find(|m| find_option(m, "Talk to a person").is_some()).cloned().unwrap();
    let r = a.press_in(&ack, "Talk to a person").await;
    assert_says(&r, "I've asked a member of our team");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_keywords_is_understood_by_the_llm_and_without_it_gets_the_menu() {
    let said = "my car looks awful after your guys left yesterday";
    let reading = serde_json::json!({"intent": "complaint", "emotion": "frustrated", "confidence": 0.9});
    let fakes = Fakes::new(Some(FakeLlm::start(LlmMode::Good, vec![(said, reading)])));
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000410");
    let r = c.text(said).await;
    assert_says(&r, "I can hear this has been frustrating");
    assert_says(&r, "What is it about?");
    let records =
        server.store().await.turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap();
    let record: Value = serde_json::from_str(&records[0].record).unwrap();
    let runs = record["guards"]["runs"].as_array().unwrap();
    assert!(runs.iter().any(|r| r["guard"] == "llm:understand" && r["outcome"] == "ok"), "{runs:?}");
    assert_eq!(record["guards"]["understanding"]["intent"], "complaint");

    // An LLM naming an intent that does not exist is refused by the schema: the menu follows.
    let bogus = "please sort out the thing with the stuff";
    let fakes = Fakes::new(Some(FakeLlm::start(
        LlmMode::Good,
        vec![(bogus, serde_json::json!({"intent": "refund_everything", "emotion": "neutral", "confidence": 1.0}))],
    )));
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000411");
    let r = c.text(bogus).await;
    assert_says(&r, "Welcome to Sparkle Doorstep Car Care");
    let records =
        server.store().await.turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap();
    let record: Value = serde_json::from_str(&records[0].record).unwrap();
    let runs = record["guards"]["runs"].as_array().unwrap();
    assert!(runs.iter().any(|r| r["guard"] == "llm:understand" && r["outcome"] != "ok"), "refused: {runs:?}");
    // And with no LLM at all, the same.
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000412");
    let r = c.text(bogus).await;
    assert_says(&r, "Welcome to Sparkle Doorstep Car Care");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaint_enquiry_and_offers_by_buttons_with_a_failing_llm() {
    let fakes = Fakes::new(Some(FakeLlm::start(LlmMode::Invalid, vec![])));
    let server = Server::start(&sqlite(), &fakes);
    let wa = "971500000413";
    fakes.erp.seed_sample_customer(wa, "Asia/Dubai");
    let mut c = Customer::new(&server, &fakes.graph, wa);

    c.text("hi").await;
    let r = c.press("Make a complaint").await;
    assert_says(&r, "What is it about?");
    let r = c.press("Staff").await;
    assert_says(&r, "in your own words");
    let r = c.text("The cleaner was impolite to my driver").await;
    assert_says(&r, "Shall I send it to our team?");
    let r = c.press("Confirm").await;
    assert_says(&r, "Your complaint is filed. Reference: ISSUE-");
    let issues = fakes.erp.docs("Issue");
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["priority"], "Medium");
    assert!(issues[0]["subject"].as_str().unwrap().contains("Staff"));

    c.text("hi").await;
    let r = c.press("Ask a question").await;
    assert_says(&r, "Pick a topic");
    let r = c.press("Areas we serve").await;
    assert_says(&r, "anywhere in Dubai and Sharjah");

    c.text("hi").await;
    let r = c.press("Offers").await;
    assert_says(&r, "🎁 20% off Wax & Polish");
    assert!(!texts(&r).contains("Free interior vacuum"), "an expired offer is not shown");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_that_cannot_be_read_is_not_taken_for_nothing_due() {
    let fakes = Fakes::new(None);
    // An ERP that refuses connections: every lookup fails.
    let server = Server::start_with(&sqlite(), &fakes, &[("ERP_BASE_URL", "http://127.0.0.1:9")]);
    let mut c = Customer::new(&server, &fakes.graph, "971500000414");
    let r = c.text("I want to pay my invoice").await;
    assert_says(&r, "I can't reach our system to look that up right now");
    assert!(!texts(&r).contains("nothing is due"), "{}", texts(&r));
    server.assert_replays().await;
}
