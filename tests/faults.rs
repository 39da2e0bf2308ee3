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

/// Sends every customer's typed booking, customers in parallel and each one's messages in order,
/// without waiting for answers. A delivery that is not answered 200 is delivered again, as
/// WhatsApp does (a busy machine can keep 210 simultaneous requests waiting past actix's
/// request timeout); the inbox keeps one row per message id.
async fn book_all(server: &Server, graph: &FakeGraph, customers: &[String]) {
    let mut bodies: Vec<Vec<String>> = Vec::new();
    for wa in customers {
        let mut c = Customer::new(server, graph, wa);
        bodies.push(booking_script().iter().map(|m| c.body("text", serde_json::json!({"body": m}), None).0).collect());
    }
    let url = server.url.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for script in bodies {
        let url = url.clone();
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            for body in script {
                let signature = carewell::channel::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
                for attempt in 1.. {
                    let sent = client
                        .post(format!("{url}/webhooks/whatsapp"))
                        .header("X-Hub-Signature-256", &signature)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let failure = match sent {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) => format!("the webhook answered {}: {}", r.status(), r.text().await.unwrap_or_default()),
                        Err(e) => format!("the webhook was not reached: {e}"),
                    };
                    assert!(attempt < 5, "{failure} (attempt {attempt})");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_erp_retries_does_not_hold_back_a_new_customers_answer() {
    let fakes = Fakes::new(None);
    // Every ERP write fails (HTTP 500) and waits half a minute or more for its retry.
    fakes.erp.log.lock().unwrap().fail_posts = usize::MAX;
    // WhatsApp's pacing of the number is lifted: at 80 sends a second the 210 bookings' replies
    // would themselves be a queue, and this test is about the ERP's.
    let server = Server::start_with(
        &sqlite(),
        &fakes,
        &[("OUTBOX_BASE_DELAY_MS", "30000"), ("OUTBOUND_PER_SECOND", "100000"), ("FLOWS_DIR", &roomy_flows())],
    );
    let customers: Vec<String> = (0..210).map(|i| format!("971500008{i:03}")).collect();
    book_all(&server, &fakes.graph, &customers).await;
    // Wait until every booking's write has failed once and waits for its retry.
    let started = std::time::Instant::now();
    loop {
        let failed = fakes.erp.log.lock().unwrap().posts.len();
        let health = server.health().await;
        if failed >= customers.len() && health["inbox"]["pending"] == 0 {
            break;
        }
        assert!(started.elapsed().as_secs() < 120, "the bookings did not reach the ERP: {failed} writes, {health}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let waiting = server.health().await["outbox"]["pending"].as_i64().unwrap();
    assert!(waiting >= customers.len() as i64, "{waiting} rows wait for a retry");

    let mut newcomer = Customer::new(&server, &fakes.graph, "971500009999");
    let (body, _) = newcomer.body("text", serde_json::json!({"body": "hi"}), None);
    let sent_at = std::time::Instant::now();
    let (status, _) = server.post_webhook(&body, Some(SECRET)).await;
    assert_eq!(status, 200);
    while fakes.graph.count_to("971500009999") == 0 {
        assert!(
            sent_at.elapsed() < std::time::Duration::from_secs(2),
            "no answer within 2 s behind {waiting} rows waiting for their retry"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    eprintln!("answered in {} ms behind {waiting} rows waiting for a retry", sent_at.elapsed().as_millis());
    assert_says(&newcomer.replies(), "Welcome");
    // The customers whose writes wait were told it takes longer, not held behind their write.
    for wa in customers.iter().take(5) {
        assert_says(&fakes.graph.sent_to(wa), "slow to answer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_write_slower_than_its_claim_is_made_once_by_one_of_two_processes() {
    let fakes = Fakes::new(None);
    // Every ERP request takes 9 s (within the 10 s timeout): a booking's four requests take
    // 36 s, longer than the 30 s claim on its outbox row.
    fakes.erp.set_latency(std::time::Duration::from_secs(9));
    let db = postgres().await;
    // The crews' count of the ERP's bookings (a list read on booking turns) is left out: this
    // test compares the write's requests one by one.
    let root = copy_project();
    let business = root.join("flows/business.yaml");
    let text = std::fs::read_to_string(&business).unwrap();
    std::fs::write(&business, text.replace("    booked: booked_visits\n", "")).unwrap();
    let flows = root.join("flows").to_str().unwrap().to_string();
    let settings = [("OUTBOX_CLAIM_MS", "30000"), ("ERP_TIMEOUT_MS", "10000"), ("FLOWS_DIR", &flows)];
    let a = Server::start_with(&db, &fakes, &settings);
    let b = Server::start_with(&db, &fakes, &settings);
    let wa = "971500007010";
    let mut c = Customer::new(&a, &fakes.graph, wa);
    let mut script = booking_script();
    let yes = script.pop().unwrap();
    for m in script {
        c.text(&m).await;
    }
    let (body, _) = c.body("text", serde_json::json!({"body": yes}), None);
    assert_eq!(a.post_webhook(&body, Some(SECRET)).await.0, 200);
    // The write goes on while both processes' dispatchers keep passing over the outbox.
    let started = std::time::Instant::now();
    while !texts(&fakes.graph.sent_to(wa)).contains("You're booked") {
        assert!(started.elapsed().as_secs() < 90, "no confirmation after 90 s: {:?}", fakes.erp.requests());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    a.settle().await;
    b.settle().await;
    let writes: Vec<(String, String)> = fakes
        .erp
        .requests()
        .into_iter()
        .filter(|(_, doctype)| ["Customer", "Sales Order"].contains(&doctype.as_str()))
        .collect();
    let expected = [("GET", "Customer"), ("POST", "Customer"), ("GET", "Sales Order"), ("POST", "Sales Order")];
    assert_eq!(
        writes,
        expected.iter().map(|(m, d)| (m.to_string(), d.to_string())).collect::<Vec<_>>(),
        "exactly one sequence of requests for the row"
    );
    assert_eq!(fakes.erp.docs("Customer").len(), 1);
    assert_eq!(fakes.erp.docs("Sales Order").len(), 1);
    assert_eq!(texts(&fakes.graph.sent_to(wa)).matches("You're booked").count(), 1, "confirmed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_erp_write_sent_again_by_an_operator_is_told_to_its_conversation() {
    let fakes = Fakes::new(None);
    fakes.erp.log.lock().unwrap().fail_posts = 1;
    let server = Server::start_with(&sqlite(), &fakes, &[("OUTBOX_MAX_ATTEMPTS", "1")]);
    let wa = "971500007020";
    let mut c = Customer::new(&server, &fakes.graph, wa);
    book(&mut c).await;
    server.settle().await;
    assert_says(&c.received(), "couldn't complete the booking");
    let (status, dead) = server.admin("GET", "/admin/outbox/dead", serde_json::json!({})).await;
    assert_eq!(status, 200);
    let id = dead["dead"][0]["id"].as_i64().expect("the write is dead-lettered");
    c.replies();
    let (status, _) = server.admin("POST", &format!("/admin/outbox/{id}/redrive"), serde_json::json!({})).await;
    assert_eq!(status, 200);
    server.settle().await;
    let orders = fakes.erp.docs("Sales Order");
    assert_eq!(orders.len(), 1, "written when sent again");
    let name = orders[0]["name"].as_str().unwrap();
    assert_says(&c.replies(), &format!("went through after all. Reference: {name}"));
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_blip_in_the_middle_of_a_turn_gives_the_real_answer_late_and_no_apology() {
    // The LLM takes 1.5 s, so the turn is under way when the database goes away.
    let llm = FakeLlm::start_with_latency(LlmMode::Good, vec![], std::time::Duration::from_millis(1500));
    let fakes = Fakes::new(Some(llm.clone()));
    let Db::Postgres(url) = postgres().await else { unreachable!() };
    let proxy = BlipProxy::start(&BlipProxy::target_of(&url)).await;
    let db = Db::Postgres(proxy.url_through(&url));
    let server = Server::start_with(&db, &fakes, &[("LLM_TIMEOUT_MS", "5000"), ("LLM_BUDGET_MS", "5000")]);
    let mut c = Customer::new(&server, &fakes.graph, "971500007030");
    let (body, _) = c.body("text", serde_json::json!({"body": "I'd like to book a full wash"}), None);
    assert_eq!(server.post_webhook(&body, Some(SECRET)).await.0, 200);
    // Once the turn is under way (its LLM call has reached the fake, which counts it on arrival
    // and answers 1.5 s later), PostgreSQL goes for longer than the call takes: every connection
    // cut, new ones refused; so the turn's commit meets the blip however busy the machine is.
    // (The fake used to count a call when it answered: the cut then raced the commit.)
    let asked = std::time::Instant::now();
    while llm.log.lock().unwrap().calls == 0 {
        assert!(asked.elapsed().as_secs() < 20, "the turn never called the LLM:\n{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    proxy.cut(std::time::Duration::from_millis(5000));
    let started = std::time::Instant::now();
    while fakes.graph.count_to(&c.wa_id) == 0 {
        assert!(started.elapsed().as_secs() < 30, "no answer after the blip:\n{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.settle().await;
    let replies = c.replies();
    assert_says(&replies, "first and last name");
    let all = texts(&replies);
    assert!(!all.contains("something went wrong"), "no apology:\n{all}");
    assert!(
        server.log().contains("the database is unavailable"),
        "the blip was seen and waited out:\n{}",
        server.log()
    );
    let store = server.store().await;
    let turns = store.turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap();
    assert_eq!(turns.len(), 1, "one turn, committed once");
    assert_eq!(turns[0].outcome, "ok");
    let calls = llm.log.lock().unwrap().calls;
    assert!(calls >= 2, "the turn was under way when the database went, and was decided again: {calls} LLM calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_configured_secret_reaches_the_log_of_a_full_run() {
    let llm = FakeLlm::start(LlmMode::Good, vec![]);
    let fakes = Fakes::new(Some(llm));
    // A password in the database URL (the local server trusts loopback and never asks for it).
    let Db::Postgres(url) = postgres().await else { unreachable!() };
    let password = "Pg-pa55word-never-logged";
    let db = Db::Postgres(url.replacen("postgres@", &format!("postgres:{password}@"), 1));
    let server = Server::start_with(&db, &fakes, &[("RUST_LOG", "debug")]);
    let mut c = Customer::new(&server, &fakes.graph, "971500007040");
    book(&mut c).await;
    server.settle().await;
    // The inspector opened with its token in the address, the admin API, a forged webhook.
    // (It answers 409 here: it talks to the sandbox, and this run has a Graph API.)
    let page = reqwest::get(format!("{}/inspector?token={ADMIN_TOKEN}", server.url)).await.unwrap();
    assert_eq!(page.status().as_u16(), 409);
    server.admin("GET", "/admin/conversations", serde_json::json!({})).await;
    let (body, _) = c.body("text", serde_json::json!({"body": "hi"}), None);
    assert_eq!(server.post_webhook(&body, Some("a-forged-secret")).await.0, 401);
    let log = server.log();
    assert!(log.contains("GET /inspector 409"), "the request logger ran:\n{log}");
    assert!(log.contains("postgres:****@"), "the URL is logged without its password:\n{log}");
    for secret in [SECRET, ADMIN_TOKEN, GRAPH_TOKEN, ERP_KEY.1, "test-llm-key", password] {
        assert!(!log.contains(secret), "{secret:?} appears in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_attempts_all_ended_unrecorded_reaches_the_dead_letter_and_the_customer_is_told() {
    let fakes = Fakes::new(None);
    // The ERP write fails and waits a long time for its retry.
    fakes.erp.log.lock().unwrap().fail_posts = usize::MAX;
    let server = Server::start_with(&sqlite(), &fakes, &[("OUTBOX_BASE_DELAY_MS", "600000")]);
    let mut c = Customer::new(&server, &fakes.graph, "971500007050");
    let mut script = booking_script();
    let yes = script.pop().unwrap();
    for m in script {
        c.text(&m).await;
    }
    let (body, _) = c.body("text", serde_json::json!({"body": yes}), None);
    assert_eq!(server.post_webhook(&body, Some(SECRET)).await.0, 200);
    let started = std::time::Instant::now();
    while fakes.erp.log.lock().unwrap().posts.is_empty() {
        assert!(started.elapsed().as_secs() < 10, "the write was not attempted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // As if seven more attempts had been claimed and then lost their outcome (crashes, a store
    // that could not record them): the row is due with every attempt used.
    server.sql("UPDATE outbox SET attempts = 8, next_attempt_at = 0 WHERE kind = 'erp' AND status = 'pending'").await;
    server.settle().await;
    let (_, dead) = server.admin("GET", "/admin/outbox/dead", serde_json::json!({})).await;
    let row = &dead["dead"][0];
    assert_eq!(row["kind"], "erp", "{dead}");
    assert!(row["result"].as_str().unwrap().starts_with("outbox.attempts_exhausted"), "{row}");
    assert_says(&c.received(), "couldn't complete the booking");
    assert!(server.log().contains("outbox.attempts_exhausted"));
}
