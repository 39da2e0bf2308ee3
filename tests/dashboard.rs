//! The dashboard's figures, kept by the commits, agree with what happened, on SQLite and on
//! PostgreSQL: three customers (one books, one stops after giving a name, one asks for a person)
//! are counted by hand here, and the turns and journeys are also counted by a scan of the stored
//! turn records, which the dashboard never does.

mod common;

use common::*;
use serde_json::Value;

async fn figures_agree_with_what_happened(db: Db) {
    let fakes = Fakes::new(None);
    let server = Server::start(&db, &fakes);
    let mut booker = Customer::new(&server, &fakes.graph, "971500009101");
    for line in booking_script() {
        booker.text(&line).await;
    }
    let mut quitter = Customer::new(&server, &fakes.graph, "971500009102");
    quitter.text("book a full wash").await;
    quitter.text("Jane Doe").await;
    let mut asker = Customer::new(&server, &fakes.graph, "971500009103");
    asker.text("hi").await;
    asker.text("I want to talk to a person").await;
    server.settle().await;

    let (status, d) = server.admin("GET", "/admin/dashboard", Value::Null).await;
    assert_eq!(status, 200, "{d}");
    let booking = d["flows"].as_array().unwrap().iter().find(|f| f["flow"] == "booking").unwrap().clone();
    // Counted by hand.
    assert_eq!(d["totals"]["conversations"], 3, "{d}");
    assert_eq!(
        (d["totals"]["new_customers"].as_i64(), d["totals"]["returning_customers"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(d["totals"]["handed_off"], 1, "{d}");
    assert_eq!((booking["started"].as_i64(), booking["ended"].as_i64()), (Some(2), Some(1)), "{booking}");
    assert_eq!((booking["confirmed"].as_i64(), booking["abandoned"].as_i64()), (Some(1), Some(1)), "{booking}");
    assert_eq!(booking["conversion"].as_f64(), Some(0.5));
    let reached = |step: &str| {
        booking["funnel"].as_array().unwrap().iter().find(|s| s["step"] == step).unwrap()["reached"].as_i64().unwrap()
    };
    assert_eq!((reached("name"), reached("summary"), reached("booked")), (2, 1, 1), "{booking}");

    // Counted by a scan of the stored turns; the one booking's time from start to confirmation.
    let store = server.store().await;
    let mut turns = 0;
    let mut starts = 0;
    let (mut booking_started, mut booking_confirmed) = (None, None);
    for c in [&booker, &quitter, &asker] {
        for t in store.turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap() {
            turns += 1;
            let record = carewell::record::TurnRecord::parse(&t.record).unwrap();
            let started =
                record.trace.iter().filter(|e| e.what == "start" && e.detail.starts_with("journey booking ")).count();
            starts += started;
            if c.conversation_id() == booker.conversation_id() {
                if started > 0 {
                    booking_started = Some(record.event.timestamp);
                }
                if record.trace.iter().any(|e| e.what == "erp_outcome" && e.detail.starts_with("ERP accepted")) {
                    booking_confirmed = Some(record.event.timestamp);
                }
            }
        }
    }
    assert_eq!(d["totals"]["turns"].as_i64(), Some(turns), "{d}");
    assert_eq!(booking["started"].as_i64(), Some(starts as i64));
    let (Some(a), Some(b)) = (booking_started, booking_confirmed) else {
        panic!("the booking has a start and a confirmation")
    };
    assert_eq!(booking["median_seconds_to_book"].as_i64(), Some(b - a), "{booking}");
    assert_eq!(d["totals"]["dead_letters"], 0);

    // The CSV holds the same counts: summed, they give the dashboard's figures.
    let csv = reqwest::Client::new()
        .get(format!("{}/admin/dashboard.csv", server.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("day,flow,metric,count"));
    let sum = |flow: &str, metric: &str| -> i64 {
        csv.lines()
            .skip(1)
            .filter_map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                (cells[1] == flow && cells[2] == metric).then(|| cells[3].parse::<i64>().unwrap())
            })
            .sum()
    };
    assert_eq!(sum("", "turns"), turns);
    assert_eq!(sum("", "conversations"), 3);
    assert_eq!((sum("booking", "started"), sum("booking", "confirmed")), (2, 1), "{csv}");
    assert_eq!(sum("booking", "step:summary"), 1);
    let days: i64 = d["days"].as_array().unwrap().iter().map(|x| x["turns"].as_i64().unwrap()).sum();
    assert_eq!(days, turns, "the days add up to the total");

    // Transcript search: by words (any case, LIKE's wildcards taken literally), by number, as CSV.
    let (status, found) = server.admin("GET", "/admin/transcripts?text=JANE", Value::Null).await;
    assert_eq!(status, 200, "{found}");
    let hits = found["hits"].as_array().unwrap();
    let customers: std::collections::BTreeSet<&str> = hits.iter().filter_map(|h| h["customer"].as_str()).collect();
    assert_eq!(customers.into_iter().collect::<Vec<_>>(), ["971500009101", "971500009102"], "{found}");
    for h in hits {
        assert_ne!(h["customer"], "971500009103", "the asker never wrote Jane: {h}");
        let words = format!("{} {}", h["said"], h["replied"]).to_lowercase();
        assert!(words.contains("jane"), "{h}");
    }
    let (_, wildcard) = server.admin("GET", "/admin/transcripts?text=%25", Value::Null).await;
    assert_eq!(wildcard["hits"], serde_json::json!([]), "a % matches a %, not everything");
    let quitters =
        store.turns_of(&carewell::tenant::TenantId::default(), &quitter.conversation_id()).await.unwrap().len();
    let (_, by_number) = server.admin("GET", "/admin/transcripts?number=9102", Value::Null).await;
    assert_eq!(by_number["hits"].as_array().unwrap().len(), quitters, "{by_number}");
    let (status, _) = server.admin("GET", "/admin/transcripts?flow=nosuch", Value::Null).await;
    assert_eq!(status, 400);
    let csv = reqwest::Client::new()
        .get(format!("{}/admin/transcripts.csv?number=9103", server.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let askers = store.turns_of(&carewell::tenant::TenantId::default(), &asker.conversation_id()).await.unwrap().len();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["at", "customer", "flow", "step", "said", "replied", "outcome"]
    );
    assert_eq!(reader.records().count(), askers, "{csv}");

    // One flow, and a range with nothing in it.
    let (_, only) = server.admin("GET", "/admin/dashboard?flow=complaint", Value::Null).await;
    assert_eq!(only["flows"].as_array().unwrap().len(), 1);
    let (_, empty) = server.admin("GET", "/admin/dashboard?from=2020-01-01&to=2020-01-31", Value::Null).await;
    assert_eq!(empty["totals"]["turns"], 0);
    let (status, _) = server.admin("GET", "/admin/dashboard?from=2020-02-01&to=2020-01-01", Value::Null).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_figures_agree_with_what_happened_on_sqlite() {
    figures_agree_with_what_happened(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_figures_agree_with_what_happened_on_postgres() {
    figures_agree_with_what_happened(postgres().await).await;
}
