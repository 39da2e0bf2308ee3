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
    let last = store.turns_of(&a.conversation_id()).await.unwrap().pop().unwrap();
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

    // Every turn records the flow versions loaded when it ran.
    let turns = store.turns_of(&b.conversation_id()).await.unwrap();
    let record: serde_json::Value = serde_json::from_str(&turns[0].record).unwrap();
    assert_eq!(record["flow_versions"]["booking"], 2);
}
