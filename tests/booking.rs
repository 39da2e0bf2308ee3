//! End to end: the booking journey through the real server process, against fake Graph API, ERP
//! and LLM servers on loopback, with webhooks in WhatsApp's real format.

mod common;

use common::*;
use serde_json::{Value, json};

fn assert_asks(replies: &[Value], needle: &str) {
    let all = texts(replies);
    assert!(all.contains(needle), "expected a reply containing {needle:?}, got:\n{all}");
}

async fn turn_records(server: &Server, conversation_id: &str) -> Vec<Value> {
    let store = server.store().await;
    store
        .turns_of(&carewell::tenant::TenantId::default(), conversation_id)
        .await
        .unwrap()
        .iter()
        .map(|t| serde_json::from_str(&t.record).unwrap())
        .collect()
}

fn llm_outcomes(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| r["guards"]["runs"].as_array().cloned().unwrap_or_default())
        .filter(|run| run["guard"] == "llm")
        .map(|run| run["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The typed journey shared by several tests; returns the confirmation text.
async fn typed_journey(c: &mut Customer<'_>) -> String {
    let r = c.text("Hi, I'd like to book a full wash please").await;
    assert_asks(&r, "first and last name");
    let r = c.text("Jane").await;
    assert_asks(&r, "And your last name?");
    let r = c.text("Doe").await;
    assert_asks(&r, "one-time visit or a subscription");
    let r = c.text("just once").await;
    assert_asks(&r, "Which car");
    let r = c.text("It's a white Toyota Corolla, plate ABC-1234").await;
    assert_asks(&r, "Where should we come");
    let r = c.text("Villa 12, Al Wasl Road, Jumeirah").await;
    assert_asks(&r, "When would suit you");
    let r = c.text(&format!("{} at 10am", open_day())).await;
    assert_asks(&r, "Here is your booking");
    let summary = texts(&r);
    for part in ["Jane", "Doe", "Full Wash", "One-time", "Toyota", "Corolla", "ABC-1234", "Al Wasl Road", "10:00"] {
        assert!(summary.contains(part), "summary lacks {part}: {summary}");
    }
    let r = c.text("yes").await;
    assert_asks(&r, "You're booked, Jane!");
    texts(&r)
}

fn check_order(erp: &FakeErp) -> Value {
    let orders = erp.docs("Sales Order");
    assert_eq!(orders.len(), 1, "exactly one booking reaches the ERP: {orders:?}");
    let order = orders[0].clone();
    assert_eq!(order["items"][0]["item_code"], "SVC-FULL-WASH");
    assert_eq!(order["items"][0]["rate"], 75.0);
    assert_eq!(order["customer"], "Jane Doe");
    assert!(order["wa_idempotency_key"].as_str().unwrap().contains(":create_booking"));
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_by_buttons_with_a_location_and_no_llm() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000101");
    let r = c.text("Hello").await;
    assert_asks(&r, "Welcome to Sparkle");
    let r = c.press("Book a service").await;
    assert_asks(&r, "first and last name");
    let r = c.text("I'm Jane Doe").await;
    assert_asks(&r, "Which service");
    assert_eq!(r[0]["interactive"]["type"], "list", "five services do not fit in three buttons");
    let r = c.press("Full Wash").await;
    assert_eq!(r[0]["interactive"]["type"], "button");
    let r = c.press("Subscription").await;
    assert_asks(&r, "How often");
    let r = c.press("Monthly").await;
    assert_asks(&r, "Which car");
    let r = c.text("Toyota Corolla ABC-1234").await;
    assert_asks(&r, "Where should we come");
    let r = c.location(25.2048, 55.2708, "Villa 12, Al Wasl Road").await;
    assert_asks(&r, "When would suit you");
    let r = c.press("").await; // the first offered visit time
    assert_asks(&r, "Here is your booking");
    assert_asks(&r, "Subscription");
    let r = c.press("Confirm").await;
    let all = texts(&r);
    assert!(all.contains("One moment"), "{all}");
    let order = fakes.erp.docs("Sales Order").pop().expect("a Sales Order was posted");
    let reference = order["name"].as_str().unwrap();
    assert!(all.contains(&format!("Reference: {reference}")), "the confirmation carries the ERP's reference: {all}");
    assert_eq!(order["plan"], "subscription");
    assert_eq!(order["frequency"], "monthly");
    assert_eq!(order["latitude"], 25.2048);
    assert_eq!(fakes.erp.docs("Customer").len(), 1);
    assert_eq!(fakes.erp.docs("Customer")[0]["mobile_no"], "+971500000101");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_by_text_alone_on_sqlite() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000102");
    let confirmation = typed_journey(&mut c).await;
    let order = check_order(&fakes.erp);
    assert!(confirmation.contains(order["name"].as_str().unwrap()));
    assert_eq!(order["frequency"], Value::Null, "a one-time visit has no frequency");
    let records = turn_records(&server, &c.conversation_id()).await;
    assert!(llm_outcomes(&records).is_empty(), "no LLM is configured, so none is called");
    assert!(records.iter().all(|r| r["outcome"] == "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_by_text_alone_on_postgres() {
    let db = postgres().await;
    let fakes = Fakes::new(None);
    let server = Server::start(&db, &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000103");
    typed_journey(&mut c).await;
    check_order(&fakes.erp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_journey_with_a_good_llm_fills_slots_only_from_grounded_answers() {
    let day = open_day();
    let script = vec![
        (
            "hey, can you book my car in? it's for jane doe btw",
            json!({"slots": [{"slot": "first_name", "value": "jane", "quote": "jane"}, {"slot": "last_name", "value": "doe", "quote": "doe"}]}),
        ),
        ("hmm the one-tme kind", json!({"slots": [{"slot": "plan", "value": "one_time", "quote": "one-tme"}]})),
        // A lie: Honda is not in the message, so it must not fill the slot.
        (
            "it's the blue one parked outside",
            json!({"slots": [{"slot": "car_make", "value": "Honda", "quote": "Honda"}]}),
        ),
    ];
    let llm = FakeLlm::start(LlmMode::Good, script);
    let fakes = Fakes::new(Some(llm.clone()));
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000104");
    let r = c.text("hey, can you book my car in? it's for jane doe btw").await;
    assert_asks(&r, "Which service");
    let r = c.press("Full Wash").await;
    assert_asks(&r, "one-time visit or a subscription");
    let calls_before_press = llm.calls();
    let r = c.text("hmm the one-tme kind").await;
    assert_asks(&r, "Which car");
    assert_eq!(llm.calls(), calls_before_press + 1, "the parser could not settle it, so the LLM was asked once");
    let r = c.text("it's the blue one parked outside").await;
    assert_asks(&r, "Which car");
    let r = c.text("Toyota Corolla ABC-1234").await;
    assert_asks(&r, "Where should we come");
    let calls = llm.calls();
    let r = c.location(25.2, 55.3, "Villa 7, Jumeirah Beach Road").await;
    assert_asks(&r, "When would suit you");
    let r = c.text(&format!("{day} 10am")).await;
    assert_asks(&r, "Here is your booking");
    assert_eq!(llm.calls(), calls, "a location and a text the parser settles need no LLM call");
    let r = c.press("Confirm").await;
    assert_asks(&r, "You're booked, Jane!");
    check_order(&fakes.erp);

    let records = turn_records(&server, &c.conversation_id()).await;
    let outcomes = llm_outcomes(&records);
    assert!(outcomes.contains(&"ok".to_string()), "{outcomes:?}");
    assert!(outcomes.contains(&"guard.ungrounded".to_string()), "the invented car make is refused: {outcomes:?}");
    let filled_by_llm: Vec<String> = records
        .iter()
        .flat_map(|r| r["guards"]["slots"].as_object().cloned().unwrap_or_default())
        .filter(|(_, v)| v["source"] == "llm")
        .map(|(k, _)| k)
        .collect();
    assert!(
        filled_by_llm.contains(&"first_name".to_string()) && filled_by_llm.contains(&"plan".to_string()),
        "{filled_by_llm:?}"
    );
    assert!(!filled_by_llm.contains(&"car_make".to_string()));
    let llm_run = records
        .iter()
        .flat_map(|r| r["guards"]["runs"].as_array().cloned().unwrap_or_default())
        .find(|r| r["guard"] == "llm")
        .unwrap();
    assert_eq!(llm_run["detail"]["model"], "fake-model");
    assert!(llm_run["detail"]["attempts"][0]["raw"].as_str().unwrap().contains("slots"));
    // The schema sent to the LLM allows only this flow's slot names.
    let request = llm.log.lock().unwrap().requests[0].clone();
    let allowed =
        &request["response_format"]["json_schema"]["schema"]["$defs"]["SlotAnswer"]["properties"]["slot"]["enum"];
    assert!(allowed.as_array().unwrap().iter().any(|s| s == "first_name"));
    server.assert_replays().await;
}

async fn journey_survives_a_failing_llm(mode: LlmMode, code: &str, wa_id: &str) {
    let llm = FakeLlm::start(mode, vec![]);
    let fakes = Fakes::new(Some(llm.clone()));
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, wa_id);
    let r = c.text("book a full wash").await;
    assert_asks(&r, "first and last name");
    // The parser cannot read this; the LLM fails; the customer is asked again with an example.
    let r = c.text("people around here call me by my nickname mostly").await;
    assert_asks(&r, "For example: Jane Doe");
    typed_rest(&mut c).await;
    check_order(&fakes.erp);
    let records = turn_records(&server, &c.conversation_id()).await;
    let outcomes = llm_outcomes(&records);
    assert!(outcomes.iter().any(|o| o == code), "expected {code} in {outcomes:?}");
    assert!(llm.calls() >= 1);
}

async fn typed_rest(c: &mut Customer<'_>) {
    let r = c.text("Jane Doe").await;
    assert_asks(&r, "one-time visit or a subscription");
    finish_from_plan(c, "one-time", "confirm").await;
}

/// From the plan question to the confirmation, typing every answer.
async fn finish_from_plan(c: &mut Customer<'_>, plan: &str, confirm: &str) {
    let r = c.text(plan).await;
    assert_asks(&r, "Which car");
    let r = c.text("Toyota Corolla ABC-1234").await;
    assert_asks(&r, "Where should we come");
    let r = c.text("Villa 12, Al Wasl Road, Jumeirah").await;
    assert_asks(&r, "When would suit you");
    let r = c.text(&format!("{} 10am", open_day())).await;
    assert_asks(&r, "Here is your booking");
    let r = c.text(confirm).await;
    assert_asks(&r, "You're booked, Jane!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_completes_when_the_llm_times_out() {
    journey_survives_a_failing_llm(LlmMode::Slow, "llm.timeout", "971500000105").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_completes_when_the_llm_answers_invalid_json() {
    journey_survives_a_failing_llm(LlmMode::Invalid, "llm.invalid_output", "971500000106").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_customer_is_not_asked_name_car_or_address_again() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000107");
    typed_journey(&mut c).await;
    let r = c.text("Hi").await;
    assert_asks(&r, "Welcome back, Jane!");
    let r = c.text("I want to book another one").await;
    assert_asks(&r, "Which service");
    let r = c.press("Exterior Wash").await;
    assert_asks(&r, "one-time visit or a subscription");
    let r = c.press("One-time").await;
    assert_asks(&r, "When would suit you");
    let r = c.press("").await;
    let summary = texts(&r);
    for known in ["Jane", "Doe", "Toyota", "Corolla", "ABC-1234", "Al Wasl Road"] {
        assert!(summary.contains(known), "the summary shows what is known: {summary}");
    }
    let r = c.press("Change").await;
    assert_asks(&r, "What would you like to change?");
    let r = c.press("Car").await;
    assert_asks(&r, "Which car");
    let r = c.text("Honda Civic DXB 4521").await;
    assert_asks(&r, "Here is your booking");
    assert_asks(&r, "DXB 4521");
    let r = c.press("Confirm").await;
    assert_asks(&r, "You're booked");
    assert_eq!(fakes.erp.docs("Customer").len(), 1, "the customer is found again, not created twice");
    assert_eq!(fakes.erp.docs("Sales Order").len(), 2);
    let all = texts(&fakes.graph.sent_to(&c.wa_id));
    assert_eq!(all.matches("first and last name").count(), 1, "the name was asked once in two bookings");
    assert_eq!(all.matches("Where should we come").count(), 1, "the address was asked once in two bookings");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erp_failures_are_retried_without_a_second_booking() {
    let fakes = Fakes::new(None);
    {
        let mut l = fakes.erp.log.lock().unwrap();
        l.fail_posts = 1; // the Customer POST fails once with a 500
        l.slow_commits = 2; // then the Customer and the Sales Order commit but answer too late
    }
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000108");
    typed_journey(&mut c).await;
    check_order(&fakes.erp);
    assert_eq!(fakes.erp.docs("Customer").len(), 1);
    let posts = fakes.erp.log.lock().unwrap().posts.len();
    assert!(posts >= 3, "the failed and timed-out writes were retried ({posts} POSTs)");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_api_5xx_is_retried_and_nothing_is_lost() {
    let fakes = Fakes::new(None);
    fakes.graph.log.lock().unwrap().fail_next = 2;
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000109");
    let r = c.text("Hello").await;
    assert_asks(&r, "Welcome to Sparkle");
    assert_eq!(fakes.graph.log.lock().unwrap().attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_duplicates_and_malformed_bodies_change_nothing() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000110");
    let (body, _) = c.body("text", json!({"body": "Hello"}), None);

    let (status, answer) = server.post_webhook(&body, Some("not-the-secret")).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], "channel.signature_mismatch");
    let (status, answer) = server.post_webhook(&body, None).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], "channel.signature_missing");
    server.settle().await;
    assert_eq!(server.health().await["inbox"]["total"], 0, "a refused webhook stores nothing");

    let (status, answer) =
        server.post_webhook("{\"object\": \"whatsapp_business_account\", \"entry\": [", Some(SECRET)).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "channel.malformed_body");
    let (status, answer) = server.post_webhook("{\"object\": \"page\", \"entry\": []}", Some(SECRET)).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "channel.wrong_object");

    let (status, _) = server.post_webhook(&body, Some(SECRET)).await;
    assert_eq!(status, 200);
    server.settle().await;
    let first = c.replies();
    assert_eq!(first.len(), 1);
    let (status, _) = server.post_webhook(&body, Some(SECRET)).await;
    assert_eq!(status, 200, "a duplicate is acknowledged, so WhatsApp stops retrying");
    server.settle().await;
    assert!(c.replies().is_empty(), "a duplicate delivery gets no second reply");
    let h = server.health().await;
    assert_eq!(h["inbox"]["total"], 1);
    assert_eq!(h["turns"], 1);

    // Unsupported types get a polite answer, not silence or a crash.
    let r = c.deliver_raw("sticker", json!({"id": "55", "mime_type": "image/webp", "animated": false})).await;
    assert_asks(&r, "can't use that kind of message");
    assert_eq!(server.health().await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_handshake() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let ok = reqwest::get(format!(
        "{}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=test-verify",
        server.url
    ))
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = reqwest::get(format!(
        "{}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
        server.url
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 403);
}

async fn restart_mid_journey(db: Db, wa_id: &str) {
    let fakes = Fakes::new(None);
    let server = Server::start(&db, &fakes);
    let mut c = Customer::new(&server, &fakes.graph, wa_id);
    let r = c.text("I'd like to book a full wash").await;
    assert_asks(&r, "first and last name");
    let r = c.text("Jane Doe").await;
    assert_asks(&r, "one-time visit or a subscription");
    drop(c);
    server.kill();

    let server = Server::start(&db, &fakes);
    let mut c = Customer::new(&server, &fakes.graph, wa_id);
    c.replies(); // skip what was sent before the restart
    finish_from_plan(&mut c, "one time", "yes").await;
    check_order(&fakes.erp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_journey_loses_nothing_on_sqlite() {
    restart_mid_journey(sqlite(), "971500000111").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_journey_loses_nothing_on_postgres() {
    let db = postgres().await;
    restart_mid_journey(db, "971500000112").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_from_an_earlier_question_is_recognised_as_stale() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000113");
    c.text("book a wash").await;
    let r = c.text("Jane Doe").await;
    let service_list = r.iter().find(|m| m["type"] == "interactive").cloned().unwrap();
    let r = c.press_in(&service_list, "Full Wash").await;
    assert_asks(&r, "one-time visit or a subscription");
    let r = c.press_in(&service_list, "Exterior Wash").await;
    assert_asks(&r, "earlier question");
    assert_asks(&r, "one-time visit or a subscription");
    let r = c.press("One-time").await;
    assert_asks(&r, "Which car");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_without_a_time_is_kept_for_the_next_message() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000114");
    for m in ["book a full wash", "Jane Doe", "one time", "Toyota Corolla ABC-1234", "Villa 12, Al Wasl Road, Jumeirah"]
    {
        c.text(m).await;
    }
    let day = open_day();
    let r = c.text(&day).await;
    assert_asks(&r, "What time on");
    let r = c.text("3pm").await;
    assert_asks(&r, "Here is your booking");
    let short = &day[..3];
    assert_asks(&r, &format!("Date and time: {short}"));
    assert_asks(&r, "15:00");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_fills_several_slots_and_only_the_missing_are_asked() {
    let fakes = Fakes::new(None);
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500000120");
    let day = open_day();
    let r =
        c.text(&format!("I want a full wash for my white Toyota Corolla ABC-123 {day} at 9 at 12 Oak Street")).await;
    assert_asks(&r, "first and last name");
    let r = c.text("Jane Doe").await;
    assert_asks(&r, "one-time visit or a subscription");
    let r = c.press("One-time").await;
    // Service, car, address and time came with the first message: straight to the summary.
    assert_asks(&r, "Here is your booking");
    let summary = texts(&r);
    for part in ["Full Wash", "Toyota", "Corolla", "ABC-123", "12 Oak Street", "09:00"] {
        assert!(summary.contains(part), "summary lacks {part}: {summary}");
    }
    let all = texts(&fakes.graph.sent_to(&c.wa_id));
    for never in ["Which service", "Which car", "Where should we come", "When would suit you"] {
        assert!(!all.contains(never), "{never:?} was asked though the first message said it:\n{all}");
    }
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_erp_schema_refuses_is_asked_again_with_the_reason_and_never_posted() {
    // The business's ERP takes customer names of at most 20 characters.
    let root = copy_project();
    let erp_file = root.join("flows/erp.yaml");
    let text = std::fs::read_to_string(&erp_file).unwrap();
    let text = text.replacen(
        "customer_name: { type: string, minLength: 3 }",
        "customer_name: { type: string, minLength: 3, maxLength: 20 }",
        1,
    );
    assert!(text.contains("maxLength: 20"), "the schema line to tighten is still in erp.yaml");
    std::fs::write(&erp_file, text).unwrap();
    let flows_dir = root.join("flows").display().to_string();
    let fakes = Fakes::new(None);
    let server = Server::start_with(&sqlite(), &fakes, &[("FLOWS_DIR", flows_dir.as_str())]);
    let mut c = Customer::new(&server, &fakes.graph, "971500000121");
    c.text("book a full wash").await;
    c.text("Bartholomew Fitzgerald-Smythington").await;
    c.text("just once").await;
    c.text("Toyota Corolla ABC-1234").await;
    c.text("Villa 12, Al Wasl Road, Jumeirah").await;
    let r = c.text(&format!("{} at 10am", open_day())).await;
    assert_asks(&r, "Here is your booking");
    let r = c.text("yes").await;
    assert_asks(&r, "Our booking system can't take that first name and last name");
    assert_asks(&r, "first and last name");
    assert!(fakes.erp.docs("Customer").is_empty() && fakes.erp.docs("Sales Order").is_empty(), "nothing posted");
    let r = c.text("Bart Smith").await;
    assert_asks(&r, "Here is your booking");
    let r = c.text("yes").await;
    assert_asks(&r, "You're booked, Bart!");
    assert_eq!(fakes.erp.docs("Sales Order").len(), 1);
    assert_eq!(fakes.erp.docs("Customer")[0]["customer_name"], "Bart Smith");
    server.assert_replays().await;
}
