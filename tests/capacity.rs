//! Visit slots against the crews' capacity: the store's holds (taken in the turn's commit, so of
//! many customers racing for the last places exactly as many get one as there are places, on
//! SQLite and PostgreSQL, from two processes), and the journeys that use them: a full window is
//! not offered, a typed full time gets the nearest free ones, a day that is full gets the next
//! free times, the ERP's own bookings count, and a hold goes when the booking fails or is
//! cancelled.

mod common;

use std::collections::HashSet;

use carewell::engine::capacity::HoldChange;
use carewell::store::{DatabaseUrl, Lane, NewInbox, NewTurn, Store, StoreError, TurnCommit, now_ms};
use common::*;
use serde_json::json;

const WINDOW: &str = "2030-01-07T09:00:00";

async fn two_stores(db: &Db) -> (Store, Store) {
    let url = match db {
        Db::Sqlite(p) => DatabaseUrl::Sqlite(p.clone()),
        Db::Postgres(u) => DatabaseUrl::Postgres(u.clone()),
    };
    (Store::connect(&url, 4).await.expect("connect"), Store::connect(&url, 4).await.expect("connect"))
}

/// A turn of conversation `id` (version `version`) that makes `holds`, ready to commit under
/// `owner`'s lease (taken here).
async fn turn(store: &Store, id: &str, owner: &str, version: i64, holds: Vec<HoldChange>) -> TurnCommit {
    let key = format!("wamid.{id}.{version}");
    let row = NewInbox {
        tenant: carewell::tenant::DEFAULT_TENANT.into(),
        dedup_key: key.clone(),
        conversation_id: id.into(),
        phone_number_id: "100".into(),
        event: "{}".into(),
        received_at: now_ms(),
    };
    store.insert_inbox(&[row]).await.unwrap();
    assert!(
        store
            .acquire_lease(&carewell::tenant::TenantId::default(), id, "c", "100", "{}", owner, now_ms() + 30_000)
            .await
            .unwrap()
    );
    let inbox_id = store.next_inbox(id).await.unwrap().unwrap().id;
    TurnCommit {
        tenant: carewell::tenant::TenantId::default(),
        conversation_id: id.into(),
        owner: owner.into(),
        expected_version: version,
        state: "{}".into(),
        inbox_id,
        turn: NewTurn {
            tenant: carewell::tenant::DEFAULT_TENANT.into(),
            conversation_id: id.into(),
            seq: version + 1,
            inbox_id,
            flow: Some("booking".into()),
            step_before: "booking/time".into(),
            step_after: "booking/summary".into(),
            outcome: "ok".into(),
            record: "{}".into(),
            created_at: now_ms(),
        },
        outbox: vec![],
        last_inbound_at: None,
        wake_at: None,
        previous_inbound_at: None,
        lane: Lane::Interactive,
        lookup_snapshot: None,
        holds,
        counts: vec![],
    }
}

fn hold(journey: &str, window: &str, places: u32, until_ms: i64) -> HoldChange {
    HoldChange::Hold { journey: journey.into(), window: window.into(), places, until_ms }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_customers_racing_for_ten_places_from_two_processes_get_exactly_ten() {
    for db in [sqlite(), postgres().await] {
        let (a, b) = two_stores(&db).await;
        let until = now_ms() + 60_000;
        let mut commits = Vec::new();
        for n in 0..50 {
            let id = format!("100:9715000{n:05}");
            let (store, owner) = if n % 2 == 0 { (&a, "p1") } else { (&b, "p2") };
            commits.push((n, turn(store, &id, owner, 0, vec![hold("j", WINDOW, 10, until)]).await));
        }
        let mut racing = tokio::task::JoinSet::new();
        let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
        for (n, commit) in commits {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            racing.spawn(async move { (commit.conversation_id.clone(), store.commit_and_next(commit).await) });
        }
        let (mut won, mut refused) = (Vec::new(), Vec::new());
        while let Some(done) = racing.join_next().await {
            match done.unwrap() {
                (id, Ok(_)) => won.push(id),
                (id, Err(StoreError::HoldRefused(r))) => {
                    assert_eq!(r.0, WINDOW);
                    refused.push(id)
                }
                (id, Err(e)) => panic!("{db:?}: {id}: {e}"),
            }
        }
        assert_eq!((won.len(), refused.len()), (10, 40), "{db:?}");
        let holds = a.window_holds(&carewell::tenant::TenantId::default(), WINDOW, now_ms()).await.unwrap();
        let crews: HashSet<i32> = holds.iter().map(|h| h.1).collect();
        assert_eq!(crews, (0..10).collect::<HashSet<i32>>(), "{db:?}: one place per crew");
        let holders: HashSet<String> = holds.into_iter().map(|h| h.0).collect();
        assert_eq!(holders, won.iter().cloned().collect::<HashSet<_>>(), "{db:?}");
        for id in &refused {
            // Nothing of a refused turn was committed: it is decided again.
            let conv = a.conversation(&carewell::tenant::TenantId::default(), id).await.unwrap().unwrap();
            assert_eq!(conv.version, 0, "{db:?}: {id}");
            assert!(a.next_inbox(id).await.unwrap().is_some(), "{db:?}: {id}'s message is still pending");
        }
    }
}

#[tokio::test]
async fn a_hold_lapses_is_released_and_once_booked_stays_until_moved() {
    for db in [sqlite(), postgres().await] {
        let (store, _) = two_stores(&db).await;
        let now = now_ms();
        // A hold that lapsed (its customer went quiet) does not keep the only place.
        let c = turn(&store, "100:1", "p", 0, vec![hold("j1", WINDOW, 1, now - 1)]).await;
        store.commit_and_next(c).await.unwrap();
        let c = turn(&store, "100:2", "p", 0, vec![hold("j2", WINDOW, 1, now + 60_000)]).await;
        store.commit_and_next(c).await.unwrap();
        assert_eq!(
            store.window_holds(&carewell::tenant::TenantId::default(), WINDOW, now_ms()).await.unwrap().len(),
            1,
            "{db:?}"
        );
        // The place is full: a third customer is refused; released, it is theirs.
        let c = turn(&store, "100:3", "p", 0, vec![hold("j3", WINDOW, 1, now + 60_000)]).await;
        assert!(matches!(store.commit_and_next(c).await, Err(StoreError::HoldRefused(_))), "{db:?}");
        let c = turn(&store, "100:2", "p", 1, vec![HoldChange::Release { journey: "j2".into() }]).await;
        store.commit_and_next(c).await.unwrap();
        let c = turn(&store, "100:3", "p", 0, vec![hold("j3", WINDOW, 1, now + 60_000)]).await;
        store.commit_and_next(c).await.unwrap();
        // Keeping a hold moves its expiry on without counting it twice.
        let c = turn(&store, "100:3", "p", 1, vec![hold("j3", WINDOW, 1, now + 120_000)]).await;
        store.commit_and_next(c).await.unwrap();
        // Booked, it survives a release and counts for the visit.
        let booked = HoldChange::Booked {
            journey: "j3".into(),
            window: WINDOW.into(),
            erp_name: "SO-1".into(),
            until_ms: now + 86_400_000,
        };
        let c = turn(&store, "100:3", "p", 2, vec![booked, HoldChange::Release { journey: "j3".into() }]).await;
        store.commit_and_next(c).await.unwrap();
        let holds = store.window_holds(&carewell::tenant::TenantId::default(), WINDOW, now_ms()).await.unwrap();
        assert_eq!(holds, vec![("100:3".to_string(), 0, Some("SO-1".to_string()))], "{db:?}");
        // Its own conversation sees its booking among the places taken; others see it too.
        assert_eq!(
            store.held_places(&carewell::tenant::TenantId::default(), "100:3", now_ms()).await.unwrap().len(),
            1,
            "{db:?}"
        );
        // The booking moved to another time (a reschedule journey): the old place is free.
        let later = "2030-01-07T11:00:00";
        let moved = HoldChange::Booked {
            journey: "r1".into(),
            window: later.into(),
            erp_name: "SO-1".into(),
            until_ms: now + 86_400_000,
        };
        let c = turn(&store, "100:3", "p", 3, vec![hold("r1", later, 1, now + 60_000), moved]).await;
        store.commit_and_next(c).await.unwrap();
        assert!(
            store.window_holds(&carewell::tenant::TenantId::default(), WINDOW, now_ms()).await.unwrap().is_empty(),
            "{db:?}"
        );
        assert_eq!(
            store.window_holds(&carewell::tenant::TenantId::default(), later, now_ms()).await.unwrap().len(),
            1,
            "{db:?}"
        );
        // The sweep deletes only what no longer counts: nothing now, the booking after its visit.
        assert_eq!(store.sweep_holds(now_ms()).await.unwrap(), 0, "{db:?}");
        assert_eq!(store.sweep_holds(now + 86_400_000).await.unwrap(), 1, "{db:?}");
        assert!(
            store.window_holds(&carewell::tenant::TenantId::default(), later, now_ms()).await.unwrap().is_empty(),
            "{db:?}"
        );
    }
}

/// The sample project with `crews` places per window.
fn project_with_crews(crews: u32) -> std::path::PathBuf {
    let root = copy_project();
    let path = root.join("flows/business.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("crews: 3"), "the sample business declares 3 crews");
    std::fs::write(&path, text.replace("crews: 3", &format!("crews: {crews}"))).unwrap();
    root
}

fn start(db: &Db, fakes: &Fakes, root: &std::path::Path) -> Server {
    let flows = root.join("flows");
    Server::start_with(db, fakes, &[("FLOWS_DIR", flows.to_str().unwrap()), ("OUTBOUND_PER_SECOND", "100000")])
}

/// The offered times of the newest message with options, as `(title, civil time)`.
fn offered(replies: &[serde_json::Value]) -> Vec<(String, String)> {
    replies
        .iter()
        .rev()
        .find(|m| m["type"] == "interactive")
        .map(|m| {
            carewell::channel::whatsapp::render::offered_options(m)
                .into_iter()
                .filter_map(|o| o.id.split_once("set:visit_time=").map(|(_, t)| (o.title.clone(), t.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The first offered time, as `(title, civil time)`.
fn first_time(replies: &[serde_json::Value]) -> (String, String) {
    offered(replies).into_iter().next().expect("times are offered")
}

fn offered_ids(replies: &[serde_json::Value]) -> Vec<String> {
    offered(replies).into_iter().map(|(_, id)| id).collect()
}

/// Takes a customer to the time question by typing; returns what they were sent last.
async fn to_time_step(c: &mut Customer<'_>) -> Vec<serde_json::Value> {
    for m in ["I'd like to book a full wash", "Jane Doe", "one time", "Toyota Corolla ABC-1234"] {
        c.text(m).await;
    }
    c.text("Villa 12, Al Wasl Road, Jumeirah").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_customers_pressing_the_same_time_on_two_servers_ten_get_it() {
    for db in [postgres().await, sqlite()] {
        let fakes = Fakes::new(None);
        let root = project_with_crews(10);
        let (one, two) = (start(&db, &fakes, &root), start(&db, &fakes, &root));
        let mut customers = Vec::new();
        let mut presses = Vec::new();
        for n in 0..50 {
            let server = if n % 2 == 0 { &one } else { &two };
            let mut c = Customer::new(server, &fakes.graph, &format!("9715011{n:05}"));
            let asked = to_time_step(&mut c).await;
            let (title, _) = first_time(&asked);
            let (id, title, kind) =
                find_option(asked.iter().rev().find(|m| m["type"] == "interactive").unwrap(), &title)
                    .expect("the first time is offered");
            let key = if kind == "button" { "button_reply" } else { "list_reply" };
            let (body, _) = c.body("interactive", json!({"type": key, key: {"id": id, "title": title}}), None);
            presses.push((n, body));
            customers.push(c);
        }
        let (first_title, first_civil) =
            first_time(&to_time_step(&mut Customer::new(&one, &fakes.graph, "971509999999")).await);
        // All fifty press the same first time at once, half on each server.
        let mut racing = tokio::task::JoinSet::new();
        for (n, body) in presses {
            let url = if n % 2 == 0 { one.url.clone() } else { two.url.clone() };
            racing.spawn(async move {
                let signature = carewell::channel::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
                let sent = reqwest::Client::new()
                    .post(format!("{url}/webhooks/whatsapp"))
                    .header("X-Hub-Signature-256", signature)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(sent.status().is_success());
            });
        }
        while let Some(done) = racing.join_next().await {
            done.unwrap();
        }
        one.settle().await;
        two.settle().await;
        let (mut summaries, mut taken) = (0, 0);
        for c in &mut customers {
            let last = texts(&c.replies());
            if last.contains("Here is your booking") {
                summaries += 1;
            } else {
                assert!(
                    last.contains("took the last place") || last.contains("fully booked"),
                    "{db:?}: a customer who did not get the time is told why: {last}"
                );
                taken += 1;
            }
        }
        assert_eq!((summaries, taken), (10, 40), "{db:?}: the window {first_title} has 10 places");
        // The ten confirm: ten orders at that time, and the time is no longer offered.
        for c in &mut customers {
            if texts(&c.received()).contains("Here is your booking") {
                c.press("Confirm").await;
            }
        }
        one.settle().await;
        two.settle().await;
        let orders = fakes.erp.docs("Sales Order");
        let at_first =
            orders.iter().filter(|o| o["visit_time"].as_str().unwrap_or_default().replace(' ', "T") == first_civil);
        assert_eq!(at_first.count(), 10, "{db:?}");
        let later = to_time_step(&mut Customer::new(&two, &fakes.graph, "971509999998")).await;
        assert!(!offered_ids(&later).contains(&first_civil), "{db:?}: the full window is not offered");
        one.kill();
        two.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_erps_own_bookings_fill_a_window_and_a_typed_full_time_gets_the_nearest_free_ones() {
    let fakes = Fakes::new(None);
    let root = project_with_crews(2);
    // The ERP's list is read afresh on every turn here (the sample keeps it 30 s).
    let erp = root.join("flows/erp.yaml");
    let text = std::fs::read_to_string(&erp).unwrap();
    std::fs::write(&erp, text.replace("    cache_seconds: 30\n", "")).unwrap();
    let server = start(&sqlite(), &fakes, &root);
    let mut c = Customer::new(&server, &fakes.graph, "971501200001");
    let asked = to_time_step(&mut c).await;
    let (_, first) = first_time(&asked);
    // The ERP has two visits (booked by phone) in the first window: it is full.
    let date = &first[..10];
    let time = &first[11..];
    for n in 0..2 {
        fakes.erp.insert(
            "Sales Order",
            json!({"name": format!("SO-PHONE-{n}"), "delivery_date": date, "visit_time": format!("{date} {time}"), "status": "To Deliver and Bill"}),
        );
    }
    let hour: u32 = first[11..13].parse().unwrap();
    let typed = format!("{date} {:02}:30", hour);
    let r = c.text(&typed).await;
    let said = texts(&r);
    assert!(said.contains("fully booked"), "{said}");
    let offered = offered_ids(&r);
    assert!(
        !offered.is_empty() && !offered.contains(&first),
        "the full window is not offered again: {offered:?} {r:?}"
    );
    assert!(offered.len() <= 3, "only the nearest free times: {offered:?}");
    // One of them is taken with a press and the booking goes through.
    let r = c.press(&first_time(&r).0).await;
    assert!(texts(&r).contains("Here is your booking"), "{}", texts(&r));
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_comes_back_when_the_customer_cancels_or_the_erp_refuses_the_booking() {
    let fakes = Fakes::new(None);
    let root = project_with_crews(1);
    let server = start(&sqlite(), &fakes, &root);
    let store = server.store().await;
    let mut first = Customer::new(&server, &fakes.graph, "971501300001");
    let asked = to_time_step(&mut first).await;
    let (title, civil) = first_time(&asked);
    let r = first.press(&title).await;
    assert!(texts(&r).contains("Here is your booking"));
    assert_eq!(
        store.window_holds(&carewell::tenant::TenantId::default(), &civil, now_ms()).await.unwrap().len(),
        1,
        "held while confirming"
    );
    // Someone else is not offered it meanwhile.
    let mut second = Customer::new(&server, &fakes.graph, "971501300002");
    let asked = to_time_step(&mut second).await;
    assert!(!offered_ids(&asked).contains(&civil));
    // The first customer cancels: the place comes back.
    first.press("Cancel").await;
    assert!(
        store.window_holds(&carewell::tenant::TenantId::default(), &civil, now_ms()).await.unwrap().is_empty(),
        "released on cancel"
    );
    // The ERP refuses the second customer's booking: released too.
    fakes.erp.log.lock().unwrap().fail_posts = usize::MAX;
    let mut third = Customer::new(&server, &fakes.graph, "971501300003");
    let asked = to_time_step(&mut third).await;
    assert!(offered_ids(&asked).contains(&civil), "offered again after the cancel");
    let r = third.press(&title).await;
    assert!(texts(&r).contains("Here is your booking"));
    third.press("Confirm").await;
    let started = std::time::Instant::now();
    while !store.window_holds(&carewell::tenant::TenantId::default(), &civil, now_ms()).await.unwrap().is_empty() {
        assert!(started.elapsed().as_secs() < 60, "the hold was not released after the ERP gave up");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    server.kill();
}
