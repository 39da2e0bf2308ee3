//! Editing flow files while the server runs: a valid edit applies to new conversations within
//! seconds, conversations under way finish on their version, and a broken edit is refused while
//! the server keeps answering with the last good version.

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn wait_for_version(server: &Server, version: u64) {
    let started = Instant::now();
    loop {
        let h = server.health().await;
        if h["flows"].as_array().unwrap().iter().any(|f| f["id"] == "booking" && f["version"] == version) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "booking v{version} was not loaded: {h}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_apply_to_new_conversations_and_broken_edits_are_refused() {
    let root = copy_project();
    let flows = root.join("flows");
    let file = flows.join("booking.flow.yaml");
    let fakes = Fakes::new(None);
    let flows_dir = flows.display().to_string();
    let server = Server::start_with(&sqlite(), &fakes, &[("FLOWS_DIR", flows_dir.as_str())]);

    let mut a = Customer::new(&server, &fakes.graph, "971500000701");
    let r = a.text("book a full wash").await;
    assert!(texts(&r).contains("Happy to book that for you!"));

    // A valid edit: new wording, version 2.
    let v1 = std::fs::read_to_string(&file).unwrap();
    let v2 = v1
        .replacen("version: 1", "version: 2", 1)
        .replace(
            "Happy to book that for you! What's your first and last name?",
            "Lovely! Your first and last name, please?",
        )
        .replace("Is this a one-time visit or a subscription?", "One-time visit, or a subscription?");
    std::fs::write(&file, &v2).unwrap();
    wait_for_version(&server, 2).await;

    let mut b = Customer::new(&server, &fakes.graph, "971500000702");
    let r = b.text("book a full wash").await;
    assert!(
        texts(&r).contains("Lovely! Your first and last name, please?"),
        "a new conversation uses v2: {}",
        texts(&r)
    );
    let r = b.text("Jane Doe").await;
    assert!(texts(&r).contains("One-time visit, or a subscription?"));

    // The conversation that started on v1 finishes on v1.
    let r = a.text("Jane Doe").await;
    assert!(texts(&r).contains("Is this a one-time visit or a subscription?"), "v1 wording kept: {}", texts(&r));
    let store = server.store().await;
    let last =
        store.turns_of(&carewell::tenant::TenantId::default(), &a.conversation_id()).await.unwrap().pop().unwrap();
    let record: serde_json::Value = serde_json::from_str(&last.record).unwrap();
    assert_eq!(record["journey_flow"]["version"], 1, "the turn records the version it ran on");

    // A broken edit is refused; the server keeps answering with v2.
    std::fs::write(&file, v2.replacen("next: plan", "next: nowhere", 1)).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = server.log();
    assert!(
        log.contains("flow edit refused") && log.contains("flow.unknown_step"),
        "the refusal is logged with its reason:\n{log}"
    );
    wait_for_version(&server, 2).await;
    let mut c = Customer::new(&server, &fakes.graph, "971500000703");
    let r = c.text("book a full wash").await;
    assert!(texts(&r).contains("Lovely!"), "still answering with the last good version: {}", texts(&r));

    // Asked for through the admin API, the reload is refused the same way; every reload, by the
    // watcher or a person, is in the audit trail.
    let (status, refused) = server.admin("POST", "/admin/flows/reload", serde_json::Value::Null).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("flow.invalid")), "{refused}");
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.contains("booking.flow.yaml:") && why.contains("flow.unknown_step"), "where and why: {why}");
    let (_, audit) = server.admin("GET", "/admin/audit?action=flows.reload", serde_json::Value::Null).await;
    let entries: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    for expected in [("break-glass", "refused"), ("flow files", "refused"), ("flow files", "ok")] {
        assert!(entries.contains(&(expected.0.to_string(), expected.1.to_string())), "{expected:?} in {entries:?}");
    }
    std::fs::write(&file, &v2).unwrap();
    let (status, served) = server.admin("POST", "/admin/flows/reload", serde_json::Value::Null).await;
    assert_eq!(status, 200, "{served}");
    assert!(served["flows"].as_array().unwrap().iter().any(|f| f == "booking v2"), "{served}");

    // Every turn records the flow versions loaded when it ran.
    let turns = store.turns_of(&carewell::tenant::TenantId::default(), &b.conversation_id()).await.unwrap();
    let record: serde_json::Value = serde_json::from_str(&turns[0].record).unwrap();
    assert_eq!(record["flow_versions"]["booking"], 2);
}

/// A booking at its car step; the step is renamed and the version bumped while the server is
/// down. After the restart the booking carries on with the content it started with (read back
/// from the database by hash): "cancel" stops it, "book" starts one on the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_keeps_its_flow_version_across_an_edit_and_a_restart() {
    let root = copy_project();
    let flows = root.join("flows");
    let file = flows.join("booking.flow.yaml");
    let fakes = Fakes::new(None);
    let db = sqlite();
    let flows_dir = flows.display().to_string();
    let env = [("FLOWS_DIR", flows_dir.as_str())];
    let customer = "971500000710";
    {
        let server = Server::start_with(&db, &fakes, &env);
        let mut c = Customer::new(&server, &fakes.graph, customer);
        c.text("book a full wash").await;
        c.text("Jane Doe").await;
        let r = c.text("just once").await;
        assert!(texts(&r).contains("Which car"), "at the car step: {}", texts(&r));
        server.kill();
    }
    // The car step is renamed and the wording changed: version 2.
    let v1 = std::fs::read_to_string(&file).unwrap();
    let v2 = v1
        .replacen("version: 1", "version: 2", 1)
        .replace("  car:\n", "  vehicle:\n")
        .replace("next: car", "next: vehicle")
        .replace("goto: car", "goto: vehicle")
        .replace("change: [name, service, plan, car,", "change: [name, service, plan, vehicle,")
        .replace(
            "Which car is it? Please send the make, model and plate.",
            "What do you drive? Make, model and plate, please.",
        );
    assert_ne!(v1, v2);
    std::fs::write(&file, &v2).unwrap();

    let server = Server::start_with(&db, &fakes, &env);
    let mut c = Customer::new(&server, &fakes.graph, customer);
    // The journey runs on v1 still: a car answer is taken at v1's car step.
    let r = c.text("Toyota Corolla ABC-1234").await;
    assert!(texts(&r).contains("Where should we come"), "v1 carries on after the restart: {}", texts(&r));
    let r = c.text("cancel").await;
    assert!(texts(&r).contains("stopped here"), "cancel answered: {}", texts(&r));
    let r = c.text("book an exterior wash").await;
    let all = texts(&r);
    assert!(!all.contains("went wrong"), "no apology: {all}");
    // The new booking is on v2 (the name and car are known from the profile, so it asks the plan).
    assert!(all.contains("one-time visit or a subscription"), "a new booking on v2: {all}");
    let store = server.store().await;
    let last =
        store.turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap().pop().unwrap();
    let record: serde_json::Value = serde_json::from_str(&last.record).unwrap();
    assert_eq!(record["journey_flow"]["version"], 2);
    assert!(!server.log().contains("engine.unknown_step"), "{}", server.log());
}

/// A flow edited under a live conversation without any stored version to fall back on (a state
/// from before versions were stored): the step that no longer exists is replaced by the nearest
/// question, and the customer is told, never stuck.
#[tokio::test]
async fn a_journey_whose_step_is_gone_is_moved_to_the_nearest_question() {
    use carewell::engine::{self, ConversationState, EventKind, InboundEvent};
    let root = copy_project();
    let file = root.join("flows/booking.flow.yaml");
    let v1 = std::fs::read_to_string(&file).unwrap();
    let flows = carewell::flow::FlowSet::load(&root.join("flows")).unwrap();
    let guards = carewell::guard::Guards::new(
        std::sync::Arc::new(carewell::erp::ErpClient::new(None, std::time::Duration::from_secs(60)).unwrap()),
        None,
    );
    let mut state = ConversationState::new("971500000711");
    for (n, body) in ["book a full wash", "Jane Doe", "just once"].iter().enumerate() {
        let e = InboundEvent::internal(
            format!("w{n}"),
            "971500000711",
            1_796_191_200 + n as i64,
            EventKind::Text { body: body.to_string() },
        );
        let p = engine::plan(&flows, &state, &e, None);
        let g = guards.run(&flows, &p, jiff::Timestamp::from_second(e.timestamp).unwrap(), Default::default()).await;
        state = engine::decide(&flows, &state, &e, &g).unwrap().state;
    }
    assert_eq!(state.journey.as_ref().unwrap().step, "car");
    // As if stored before versions were kept, and the file edited without a version bump.
    state.journey.as_mut().unwrap().flow_hash = None;
    std::fs::write(
        &file,
        v1.replace("  car:\n", "  vehicle:\n")
            .replace("next: car", "next: vehicle")
            .replace("plan, car,", "plan, vehicle,"),
    )
    .unwrap();
    let edited = carewell::flow::FlowSet::load(&root.join("flows")).unwrap();
    for body in ["cancel", "Toyota Corolla ABC-1234"] {
        let e = InboundEvent::internal("w9", "971500000711", 1_796_191_300, EventKind::Text { body: body.to_string() });
        let p = engine::plan(&edited, &state, &e, None);
        let g = guards.run(&edited, &p, jiff::Timestamp::from_second(e.timestamp).unwrap(), Default::default()).await;
        let d = engine::decide(&edited, &state, &e, &g).expect("never an engine error");
        let said: Vec<&str> = d.replies.iter().map(|r| r.body()).collect();
        assert!(said.iter().any(|s| s.contains("changed how this works")), "{body}: told politely: {said:?}");
        match body {
            "cancel" => assert!(d.state.journey.is_none(), "cancel still works"),
            _ => {
                assert_eq!(d.state.journey.as_ref().unwrap().step, "address", "the car answer is taken at the new step")
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_the_knowledge_file_is_imported_and_answers_the_next_question() {
    let root = copy_project();
    let flows_dir = root.join("flows").display().to_string();
    let fakes = Fakes::new(None);
    let server = Server::start_with(&sqlite(), &fakes, &[("FLOWS_DIR", flows_dir.as_str())]);
    // An owner replaced a fact of the file by an entry of their own with the same title: the
    // file's next import leaves theirs and still imports the rest.
    let (status, _) = server.admin("DELETE", "/admin/knowledge/payment_methods", serde_json::Value::Null).await;
    assert_eq!(status, 204);
    let own = serde_json::json!({"title": "Ways to pay", "answer": "Card or cash, nothing else.", "keywords": ["pay", "card"]});
    assert_eq!(server.admin("POST", "/admin/knowledge", own).await.0, 201);
    let file = root.join("fixtures/knowledge.yaml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(
        "  - id: pets\n    title: Pets in the car\n    keywords: [pet, pets, dog, hair]\n    answer: \"We vacuum pet hair at no extra cost.\"\n",
    );
    std::fs::write(&file, text).unwrap();
    let started = Instant::now();
    loop {
        let (_, base) = server.admin("GET", "/admin/knowledge", serde_json::Value::Null).await;
        if base["items"].as_array().unwrap().iter().any(|i| i["id"] == "pets") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the knowledge file was not imported: {base}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut c = Customer::new(&server, &fakes.graph, "971500000731");
    assert_says(&c.text("Do you clean dog hair?").await, "pet hair at no extra cost");
    let (_, base) = server.admin("GET", "/admin/knowledge", serde_json::Value::Null).await;
    let titled: Vec<&serde_json::Value> =
        base["items"].as_array().unwrap().iter().filter(|i| i["title"] == "Ways to pay").collect();
    assert_eq!(titled.len(), 1, "{base}");
    assert_eq!(titled[0]["answer"], "Card or cash, nothing else.");
}
