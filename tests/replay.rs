//! `carewell replay`: stored turns decided again give the same decision, and a turn whose stored
//! decision differs from what the engine decides is reported, by the library and by the command.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_turn_that_decides_differently_is_reported() {
    let fakes = Fakes::new(None);
    let db = sqlite();
    let server = Server::start(&db, &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500005001");
    c.text("book a full wash").await;
    c.text("Jane Doe").await;
    c.press("One-time").await;
    let replayed = server.assert_replays().await;
    assert!(replayed >= 3, "{replayed} turns replayed");

    // Tamper with what turn 2 said: the replay must notice.
    let store = server.store().await;
    let turns = store.turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap();
    let mut record = carewell::record::TurnRecord::parse(&turns[1].record).unwrap();
    record.replies = vec![carewell::engine::Reply::Text { body: "something else".into() }];
    let sql =
        format!("UPDATE turns SET record = '{}' WHERE id = {}", record.to_json().replace('\'', "''"), turns[1].id);
    let path = match &db {
        Db::Sqlite(p) => p.clone(),
        Db::Postgres(_) => unreachable!(),
    };
    let out = std::process::Command::new("sqlite3").arg(&path).arg(&sql).output();
    if out.as_ref().map(|o| !o.status.success()).unwrap_or(true) {
        // No sqlite3 on the machine: write through diesel instead.
        use diesel::prelude::*;
        let mut conn = diesel::sqlite::SqliteConnection::establish(&path).unwrap();
        diesel::sql_query(&sql).execute(&mut conn).unwrap();
    }
    let flows = carewell::flow::FlowSet::load(&server.flows_dir).unwrap();
    let results =
        carewell::replay::replay(&store, &carewell::tenant::TenantId::default(), &flows, &c.conversation_id())
            .await
            .unwrap();
    let differing: Vec<i64> = results.iter().filter(|r| !r.differences.is_empty()).map(|r| r.seq).collect();
    assert_eq!(differing, vec![turns[1].seq], "{}", carewell::replay::render(&results));

    // The command says so too, and fails.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carewell"))
        .args(["replay", &c.conversation_id()])
        .env("DATABASE_URL", db.url())
        .env("FLOWS_DIR", &server.flows_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "exit 1 on a difference: {text}");
    assert!(text.contains("DIFF") && text.contains("replies differs") && text.contains("something else"), "{text}");
}
