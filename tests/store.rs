//! The store's contract, on SQLite and on PostgreSQL (`TEST_POSTGRES_URL`, by default the local server): inbox
//! deduplication and arrival order, the conversation lease, a turn's all-or-nothing commit with
//! the next pending row and the lease given back only when nothing is pending, and the outbox's
//! order, idempotency keys, claims and sent marks. The two backends run different statements for
//! these (PostgreSQL's are fixed prepared statements), so each is held to the same behaviour.

mod common;

use carewell::stats::Count;
use carewell::store::{
    DatabaseUrl, Lane, LookupSnapshot, NewInbox, NewOutbox, NewTurn, OutboxKind, OutboxStatus, Store, StoreError,
    TurnCommit, now_ms,
};
use common::{Db, postgres, sqlite};

async fn stores() -> Vec<(String, Store)> {
    let dbs = vec![sqlite(), postgres().await];
    let mut out = Vec::new();
    for db in dbs {
        let url = match &db {
            Db::Sqlite(p) => DatabaseUrl::Sqlite(p.clone()),
            Db::Postgres(u) => DatabaseUrl::Postgres(u.clone()),
        };
        let store = Store::connect(&url, 4).await.expect("connect");
        out.push((store.backend.to_string(), store));
    }
    out
}

const CONVERSATION: &str = "100:971500000001";

fn inbox(key: &str) -> NewInbox {
    NewInbox {
        tenant: carewell::tenant::DEFAULT_TENANT.into(),
        dedup_key: key.into(),
        conversation_id: CONVERSATION.into(),
        phone_number_id: "100".into(),
        event: format!("{{\"key\":\"{key}\"}}"),
        received_at: now_ms(),
    }
}

fn outbox(key: &str) -> NewOutbox {
    NewOutbox::pending(CONVERSATION, OutboxKind::WhatsApp, key.into(), format!("{{\"text\":\"{key}\"}}"), now_ms())
}

fn commit(owner: &str, version: i64, inbox_id: i64, seq: i64, outbox: Vec<NewOutbox>) -> TurnCommit {
    TurnCommit {
        tenant: carewell::tenant::TenantId::default(),
        conversation_id: CONVERSATION.into(),
        owner: owner.into(),
        expected_version: version,
        state: format!("{{\"turns\":{seq}}}"),
        inbox_id,
        turn: NewTurn {
            tenant: carewell::tenant::DEFAULT_TENANT.into(),
            conversation_id: CONVERSATION.into(),
            seq,
            inbox_id,
            flow: Some("booking".into()),
            step_before: "booking/a".into(),
            step_after: "booking/b".into(),
            outcome: "ok".into(),
            record: "{}".into(),
            created_at: now_ms(),
        },
        outbox,
        last_inbound_at: Some(now_ms()),
        wake_at: None,
        previous_inbound_at: None,
        lane: Lane::Interactive,
        lookup_snapshot: None,
        holds: vec![],
        counts: vec![],
    }
}

#[tokio::test]
async fn inbox_keeps_arrival_order_and_stores_each_key_once() {
    for (backend, store) in stores().await {
        let first = store.insert_inbox(&[inbox("wamid.A")]).await.unwrap();
        assert_eq!(first, vec![true], "{backend}");
        // A repeated key (stored before, and twice in one batch) changes nothing.
        let fresh = store
            .insert_inbox(&[inbox("wamid.B"), inbox("wamid.A"), inbox("wamid.C"), inbox("wamid.B")])
            .await
            .unwrap();
        assert_eq!(fresh, vec![true, false, true, true], "{backend}: the flags are per key, not per row");
        let (rows, pending, ..) = store.counts().await.unwrap();
        assert_eq!((rows, pending), (3, 3), "{backend}");
        let next = store.next_inbox(CONVERSATION).await.unwrap().expect("a pending row");
        assert_eq!(next.dedup_key, "wamid.A", "{backend}: the oldest first");
    }
}

#[tokio::test]
async fn a_commit_keeps_the_lease_while_rows_are_pending_and_gives_it_back_after() {
    for (backend, store) in stores().await {
        store.insert_inbox(&[inbox("wamid.1"), inbox("wamid.2")]).await.unwrap();
        assert!(
            store.lease_load_next(CONVERSATION, "p1", now_ms() + 30_000, Lane::Interactive).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(
            store
                .acquire_lease(
                    &carewell::tenant::TenantId::default(),
                    CONVERSATION,
                    "971500000001",
                    "100",
                    "{}",
                    "p1",
                    now_ms() + 30_000
                )
                .await
                .unwrap()
        );
        let (conv, next) = store
            .lease_load_next(CONVERSATION, "p1", now_ms() + 30_000, Lane::Interactive)
            .await
            .unwrap()
            .expect("leased by p1");
        let first = next.expect("wamid.1 pending");
        assert_eq!((conv.version, first.dedup_key.as_str()), (0, "wamid.1"), "{backend}");
        // Another live owner cannot take it.
        assert!(
            store.lease_load_next(CONVERSATION, "p2", now_ms() + 30_000, Lane::Interactive).await.unwrap().is_none(),
            "{backend}"
        );

        let done =
            store.commit_and_next(commit("p1", 0, first.id, 1, vec![outbox("out.1"), outbox("out.2")])).await.unwrap();
        assert_eq!(done.outbox_ids.len(), 2, "{backend}: the queued rows' ids");
        let (next, released) = (done.next, done.released);
        let second = next.expect("wamid.2 is next");
        assert_eq!((second.dedup_key.as_str(), released), ("wamid.2", false), "{backend}");
        assert!(
            store.lease_load_next(CONVERSATION, "p2", now_ms() + 30_000, Lane::Interactive).await.unwrap().is_none(),
            "{backend}: the lease is kept while a row is pending"
        );

        // A stale version writes nothing.
        let stale = store.commit_and_next(commit("p1", 0, second.id, 2, vec![outbox("out.3")])).await;
        assert!(matches!(stale, Err(StoreError::LeaseLost(_))), "{backend}: {stale:?}");
        assert_eq!(
            store.turns_of(&carewell::tenant::TenantId::default(), CONVERSATION).await.unwrap().len(),
            1,
            "{backend}"
        );
        assert_eq!(store.next_inbox(CONVERSATION).await.unwrap().map(|r| r.id), Some(second.id), "{backend}");

        // An effect whose key is already queued fails the whole commit: nothing is written, and
        // the effect is not dropped.
        let repeated =
            store.commit_and_next(commit("p1", 1, second.id, 2, vec![outbox("out.2"), outbox("out.3")])).await;
        assert!(matches!(repeated, Err(StoreError::Query(_))), "{backend}: {repeated:?}");
        assert_eq!(
            store.turns_of(&carewell::tenant::TenantId::default(), CONVERSATION).await.unwrap().len(),
            1,
            "{backend}: nothing written"
        );
        assert_eq!(store.next_inbox(CONVERSATION).await.unwrap().map(|r| r.id), Some(second.id), "{backend}");
        let done = store.commit_and_next(commit("p1", 1, second.id, 2, vec![outbox("out.3")])).await.unwrap();
        let (next, released) = (done.next, done.released);
        assert!(next.is_none() && released, "{backend}: nothing pending, lease given back");
        let conv = store.conversation(&carewell::tenant::TenantId::default(), CONVERSATION).await.unwrap().unwrap();
        assert_eq!((conv.version, conv.lease_owner.as_deref(), conv.state.as_str()), (2, None, "{\"turns\":2}"));
        assert!(conv.last_inbound_at.is_some(), "{backend}");
        let turns = store.turns_of(&carewell::tenant::TenantId::default(), CONVERSATION).await.unwrap();
        assert_eq!(turns.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![1, 2], "{backend}");
        let (_, pending, ..) = store.counts().await.unwrap();
        assert_eq!(pending, 0, "{backend}");
        let queued: Vec<String> = store
            .outbox_of(&carewell::tenant::TenantId::default(), CONVERSATION, None, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.idempotency_key)
            .collect();
        assert_eq!(queued, vec!["out.1", "out.2", "out.3"], "{backend}: queue order, each key once");
        // Now another process may take it.
        assert!(
            store.lease_load_next(CONVERSATION, "p2", now_ms() + 30_000, Lane::Interactive).await.unwrap().is_some(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn storing_a_message_takes_the_lease_only_when_its_turn_can_start_at_once() {
    for (backend, store) in stores().await {
        let until = now_ms() + 30_000;
        // A conversation not created yet: stored, no lease (the worker creates it).
        let (fresh, leased) =
            store.insert_inbox_and_lease(&[inbox("wamid.1")], CONVERSATION, "p1", until).await.unwrap();
        assert_eq!((fresh, leased.is_none()), (vec![true], true), "{backend}");
        assert!(
            store
                .acquire_lease(
                    &carewell::tenant::TenantId::default(),
                    CONVERSATION,
                    "971500000001",
                    "100",
                    "{}",
                    "p1",
                    until
                )
                .await
                .unwrap()
        );
        let (_, first) = store.lease_load_next(CONVERSATION, "p1", until, Lane::Interactive).await.unwrap().unwrap();
        let first = first.unwrap();
        // Held by a live owner (p1, finishing wamid.1): stored, not leased.
        let (fresh, leased) =
            store.insert_inbox_and_lease(&[inbox("wamid.2")], CONVERSATION, "p2", until).await.unwrap();
        assert_eq!((fresh, leased.is_none()), (vec![true], true), "{backend}: p1 holds it");
        let done = store.commit_and_next(commit("p1", 0, first.id, 1, vec![])).await.unwrap();
        let second = done.next.expect("wamid.2 next");
        let done = store.commit_and_next(commit("p1", 1, second.id, 2, vec![])).await.unwrap();
        assert!(done.released, "{backend}");
        // Free, nothing pending: leased with the new row, ready for its turn.
        let (fresh, leased) = store
            .insert_inbox_and_lease(&[inbox("wamid.3"), inbox("wamid.4")], CONVERSATION, "p2", until)
            .await
            .unwrap();
        assert_eq!(fresh, vec![true, true], "{backend}");
        let (conv, row) = leased.expect("leased by p2");
        assert_eq!(
            (conv.version, conv.lease_owner.as_deref(), row.dedup_key.as_str()),
            (2, Some("p2"), "wamid.3"),
            "{backend}"
        );
        // The turn commits under that lease and goes on with the next stored row.
        let done = store.commit_and_next(commit("p2", 2, row.id, 3, vec![])).await.unwrap();
        assert_eq!(done.next.map(|r| r.dedup_key), Some("wamid.4".to_string()), "{backend}");
        // A duplicate delivery takes nothing.
        let (fresh, leased) =
            store.insert_inbox_and_lease(&[inbox("wamid.3")], CONVERSATION, "p3", until).await.unwrap();
        assert_eq!((fresh, leased.is_none()), (vec![false], true), "{backend}");
        // An earlier row still pending (wamid.4, p2's lease given up): the new row waits its turn.
        store.release_lease(CONVERSATION, "p2").await.unwrap();
        let (fresh, leased) =
            store.insert_inbox_and_lease(&[inbox("wamid.5")], CONVERSATION, "p3", until).await.unwrap();
        assert_eq!((fresh, leased.is_none()), (vec![true], true), "{backend}: wamid.4 comes first");
        assert_eq!(
            store
                .conversation(&carewell::tenant::TenantId::default(), CONVERSATION)
                .await
                .unwrap()
                .unwrap()
                .lease_owner,
            None,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_safety_poll_finds_only_rows_nobody_is_working_on() {
    for (backend, store) in stores().await {
        let mut old = inbox("wamid.1");
        old.received_at = now_ms() - 5_000;
        store.insert_inbox(&[old]).await.unwrap();
        let now = now_ms();
        assert_eq!(
            store.orphaned_conversations(now - 1000, now, 10).await.unwrap(),
            vec![CONVERSATION],
            "{backend}: no conversation, no lease"
        );
        assert!(
            store
                .acquire_lease(
                    &carewell::tenant::TenantId::default(),
                    CONVERSATION,
                    "971500000001",
                    "100",
                    "{}",
                    "p1",
                    now + 30_000
                )
                .await
                .unwrap()
        );
        assert!(store.orphaned_conversations(now - 1000, now, 10).await.unwrap().is_empty(), "{backend}: p1 is on it");
        assert_eq!(
            store.orphaned_conversations(now - 1000, now + 60_000, 10).await.unwrap(),
            vec![CONVERSATION],
            "{backend}: p1's lease ended (p1 died)"
        );
        store.release_lease(CONVERSATION, "p1").await.unwrap();
        assert!(store.orphaned_conversations(now - 10_000, now, 10).await.unwrap().is_empty(), "{backend}: too recent");
    }
}

/// A turn's lookup results are stored once per content, with the commit that names them; a
/// commit that fails stores none, and naming a stored one again changes nothing.
#[tokio::test]
async fn lookup_snapshots_are_stored_once_with_the_turn_that_names_them() {
    for (backend, store) in stores().await {
        let snapshot = LookupSnapshot::of(r#"{"catalog":[{"id":"SVC-FULL-WASH"}]}"#.into());
        assert_eq!(snapshot.hash.len(), 64, "{backend}: SHA-256 in hex");
        store.insert_inbox(&[inbox("wamid.1"), inbox("wamid.2")]).await.unwrap();
        store
            .acquire_lease(
                &carewell::tenant::TenantId::default(),
                CONVERSATION,
                "971500000001",
                "100",
                "{}",
                "p1",
                now_ms() + 30_000,
            )
            .await
            .unwrap();
        let first = store.next_inbox(CONVERSATION).await.unwrap().unwrap().id;
        // A stale commit writes nothing, its snapshot included.
        let mut stale = commit("p1", 5, first, 1, vec![]);
        stale.lookup_snapshot = Some(snapshot.clone());
        assert!(matches!(store.commit_and_next(stale).await, Err(StoreError::LeaseLost(_))), "{backend}");
        assert_eq!(
            store.lookup_snapshot(&carewell::tenant::TenantId::default(), &snapshot.hash).await.unwrap(),
            None,
            "{backend}"
        );

        let mut one = commit("p1", 0, first, 1, vec![]);
        one.lookup_snapshot = Some(snapshot.clone());
        let next = store.commit_and_next(one).await.unwrap().next;
        let mut two = commit("p1", 1, next.expect("the second row").id, 2, vec![]);
        two.lookup_snapshot = Some(snapshot.clone());
        store.commit_and_next(two).await.unwrap();
        assert_eq!(
            store.lookup_snapshot(&carewell::tenant::TenantId::default(), &snapshot.hash).await.unwrap(),
            Some(snapshot.body.clone()),
            "{backend}"
        );
        assert_eq!(
            store.conversation(&carewell::tenant::TenantId::default(), CONVERSATION).await.unwrap().unwrap().version,
            2,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn outbox_rows_are_claimed_once_and_marked_sent_with_their_results() {
    for (backend, store) in stores().await {
        store.insert_inbox(&[inbox("wamid.1")]).await.unwrap();
        store
            .acquire_lease(
                &carewell::tenant::TenantId::default(),
                CONVERSATION,
                "971500000001",
                "100",
                "{}",
                "p1",
                now_ms() + 30_000,
            )
            .await
            .unwrap();
        let row = store.next_inbox(CONVERSATION).await.unwrap().unwrap();
        store.commit_and_next(commit("p1", 0, row.id, 1, vec![outbox("a"), outbox("b"), outbox("c")])).await.unwrap();
        let now = now_ms() + 1;
        let ids: Vec<i64> = store.due_outbox(now, 10).await.unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 3, "{backend}");
        let claims = store.claim_outbox_rows(&ids, now, 60_000, "p1", Lane::Interactive).await.unwrap();
        assert_eq!(
            claims.iter().map(|c| (c.id, c.attempt)).collect::<Vec<_>>(),
            ids.iter().map(|id| (*id, 1)).collect::<Vec<_>>(),
            "{backend}"
        );
        assert!(
            store.claim_outbox_rows(&ids, now, 60_000, "p2", Lane::Interactive).await.unwrap().is_empty(),
            "{backend}: claimed once"
        );
        assert!(store.due_outbox(now, 10).await.unwrap().is_empty(), "{backend}: claimed rows are not due");
        let lost = store
            .outbox_sent_many(&[(claims[0], "wamid.out.a".into()), (claims[2], "wamid.out.c".into())], Lane::Bulk)
            .await
            .unwrap();
        assert!(lost.is_empty(), "{backend}");
        let rows = store.outbox_of(&carewell::tenant::TenantId::default(), CONVERSATION, None, 0).await.unwrap();
        let seen: Vec<(&str, Option<&str>, Option<&str>)> =
            rows.iter().map(|r| (r.status.as_str(), r.result.as_deref(), r.claim_owner.as_deref())).collect();
        assert_eq!(
            seen,
            vec![
                ("sent", Some("wamid.out.a"), Some("p1")),
                ("pending", None, Some("p1")),
                ("sent", Some("wamid.out.c"), Some("p1"))
            ],
            "{backend}"
        );
        // Given back unattempted: due again at once, the attempt not counted.
        store.unclaim_outbox_rows(&[claims[1]], now).await.unwrap();
        let again = store.claim_outbox_rows(&ids, now, 60_000, "p1", Lane::Interactive).await.unwrap();
        assert_eq!(again.iter().map(|c| (c.id, c.attempt)).collect::<Vec<_>>(), vec![(ids[1], 1)], "{backend}");
        assert!(again[0].token > claims[1].token, "{backend}: a new claim takes a new token");
        // The interactive pass reads one conversation's pending rows only, sent ones left out.
        let of = |ids: Vec<String>| {
            let store = &store;
            async move { store.pending_outbox_of(&ids, 10).await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>() }
        };
        assert_eq!(of(vec![CONVERSATION.into()]).await, vec![ids[1]], "{backend}");
        assert!(of(vec!["100:971500000999".into()]).await.is_empty(), "{backend}");
        assert!(of(vec![]).await.is_empty(), "{backend}");
    }
}

#[tokio::test]
async fn a_claim_that_expired_and_was_taken_again_can_change_nothing() {
    for (backend, store) in stores().await {
        store.insert_inbox(&[inbox("wamid.1")]).await.unwrap();
        store
            .acquire_lease(
                &carewell::tenant::TenantId::default(),
                CONVERSATION,
                "971500000001",
                "100",
                "{}",
                "p1",
                now_ms() + 30_000,
            )
            .await
            .unwrap();
        let row = store.next_inbox(CONVERSATION).await.unwrap().unwrap();
        store.commit_and_next(commit("p1", 0, row.id, 1, vec![outbox("a")])).await.unwrap();
        let now = now_ms() + 1;
        let id = store.due_outbox(now, 10).await.unwrap()[0].id;
        // p1 claims for 10 ms; later, its claim expired, p2 takes the row.
        let old = store.claim_outbox_rows(&[id], now, 10, "p1", Lane::Bulk).await.unwrap()[0];
        let later = now + 1_000;
        let new = store.claim_outbox_rows(&[id], later, 60_000, "p2", Lane::Bulk).await.unwrap()[0];
        assert_eq!((new.attempt, new.token), (2, old.token + 1), "{backend}");
        // Nothing p1 does with its old claim lands.
        assert_eq!(store.extend_outbox_claims(&[old], later + 60_000).await.unwrap(), vec![id], "{backend}");
        assert!(!store.outbox_retry(old, later, "erp.timeout: late").await.unwrap(), "{backend}");
        assert!(!store.outbox_dead(old, "erp.status: late").await.unwrap(), "{backend}");
        let event = NewInbox { dedup_key: "erp:old".into(), ..inbox("erp:old") };
        assert!(!store.outbox_done_with_event(old, "SAL-1", OutboxStatus::Sent, event).await.unwrap(), "{backend}");
        assert_eq!(
            store.outbox_sent_many(&[(old, "wamid.x".into())], Lane::Bulk).await.unwrap(),
            vec![id],
            "{backend}"
        );
        store.unclaim_outbox_rows(&[old], later).await.unwrap();
        let r = store.outbox_row(id).await.unwrap().unwrap();
        assert_eq!((r.status.as_str(), r.claim_owner.as_deref(), r.attempts), ("pending", Some("p2"), 2), "{backend}");
        assert!(r.next_attempt_at > later + 30_000, "{backend}: p2's claim stands");
        assert!(store.next_inbox(CONVERSATION).await.unwrap().is_none(), "{backend}: no event for the old claim");
        // p2's claim works.
        let event = inbox("erp:new");
        assert!(store.outbox_done_with_event(new, "SAL-1", OutboxStatus::Sent, event).await.unwrap(), "{backend}");
        assert_eq!(store.outbox_row(id).await.unwrap().unwrap().status, "sent", "{backend}");
    }
}

#[tokio::test]
async fn due_rows_skip_retries_and_what_waits_behind_them_but_not_other_queues() {
    for (backend, store) in stores().await {
        store.insert_inbox(&[inbox("wamid.1")]).await.unwrap();
        store
            .acquire_lease(
                &carewell::tenant::TenantId::default(),
                CONVERSATION,
                "971500000001",
                "100",
                "{}",
                "p1",
                now_ms() + 30_000,
            )
            .await
            .unwrap();
        let row = store.next_inbox(CONVERSATION).await.unwrap().unwrap();
        let mut write = outbox("write");
        write.kind = "erp".into();
        let rows = vec![write, outbox("m1"), outbox("m2")];
        store.commit_and_next(commit("p1", 0, row.id, 1, rows)).await.unwrap();
        let now = now_ms() + 1;
        let due = store.due_outbox(now, 10).await.unwrap();
        assert_eq!(due.len(), 3, "{backend}");
        // The ERP write fails and waits for its retry, and the first message too.
        let claims = store.claim_outbox_rows(&[due[0].id, due[1].id], now, 60_000, "p1", Lane::Bulk).await.unwrap();
        for c in &claims {
            assert!(store.outbox_retry(*c, now + 60_000, "erp.timeout: slow").await.unwrap(), "{backend}");
        }
        let keys: Vec<String> =
            store.due_outbox(now, 10).await.unwrap().into_iter().map(|r| r.idempotency_key).collect();
        assert!(keys.is_empty(), "{backend}: m2 waits behind m1 (its queue), and nothing else is due: {keys:?}");
        // m1's retry comes (taken, then given back due now): both messages go while the ERP
        // write still waits.
        let m1 = store.claim_outbox_rows(&[due[1].id], now + 61_000, 10, "p1", Lane::Bulk).await.unwrap();
        assert_eq!(m1.len(), 1, "{backend}");
        store.unclaim_outbox_rows(&m1, now).await.unwrap();
        let keys: Vec<String> =
            store.due_outbox(now, 10).await.unwrap().into_iter().map(|r| r.idempotency_key).collect();
        assert_eq!(keys, vec!["m1", "m2"], "{backend}: the ERP write's retry holds back only ERP writes");
    }
}

/// Many conversations commit at once (on SQLite they share one group-commit transaction, from
/// both lanes): a call that fails — a stale version, or a database error halfway through its
/// writes — fails alone and leaves nothing behind, and the others are kept.
#[tokio::test]
async fn concurrent_commits_fail_alone() {
    for (backend, store) in stores().await {
        let rows = leased_conversations(&store, 6).await;
        // Conversation 5 already has turn 1, so committing turn 1 again fails at the turn insert,
        // after its state update.
        let mut second = inbox("wamid.5b");
        second.conversation_id = conv(5);
        store.commit_and_next(for_conversation(commit("p1", 0, rows[5], 1, vec![]), &conv(5))).await.unwrap();
        store.insert_inbox(&[second]).await.unwrap();
        store.lease_load_next(&conv(5), "p1", now_ms() + 30_000, Lane::Interactive).await.unwrap().unwrap();
        let dup_row = store.next_inbox(&conv(5)).await.unwrap().unwrap().id;

        let mut commits: Vec<TurnCommit> = (0..6)
            .map(|n| {
                let c = match n {
                    3 => commit("p1", 7, rows[3], 1, vec![outbox("x")]), // stale version
                    5 => commit("p1", 1, dup_row, 1, vec![outbox("y")]), // turn 1 again
                    _ => commit("p1", 0, rows[n], 1, vec![outbox("x")]),
                };
                // Both lanes share the batch: a failure in either stays its own.
                let mut c = for_conversation(c, &conv(n));
                c.counts = two_counts();
                c.lane = if n % 2 == 0 { Lane::Interactive } else { Lane::Bulk };
                c
            })
            .collect();
        let mut take = || commits.remove(0);
        let (c0, c1, c2, c3, c4, c5) = (take(), take(), take(), take(), take(), take());
        let all = tokio::join!(
            store.commit_and_next(c0),
            store.commit_and_next(c1),
            store.commit_and_next(c2),
            store.commit_and_next(c3),
            store.commit_and_next(c4),
            store.commit_and_next(c5)
        );
        let results = [all.0, all.1, all.2, all.3, all.4, all.5];
        for (n, r) in results.iter().enumerate() {
            match n {
                3 => assert!(matches!(r, Err(StoreError::LeaseLost(_))), "{backend}: {r:?}"),
                5 => assert!(matches!(r, Err(StoreError::Query(_))), "{backend}: {r:?}"),
                _ => assert!(r.is_ok(), "{backend}: conversation {n}: {r:?}"),
            }
        }
        for n in [0, 1, 2, 4] {
            let c = store.conversation(&carewell::tenant::TenantId::default(), &conv(n)).await.unwrap().unwrap();
            assert_eq!(c.version, 1, "{backend}: conversation {n} committed");
            assert_eq!(
                store.outbox_of(&carewell::tenant::TenantId::default(), &conv(n), None, 0).await.unwrap().len(),
                1,
                "{backend}"
            );
        }
        let stale = store.conversation(&carewell::tenant::TenantId::default(), &conv(3)).await.unwrap().unwrap();
        assert_eq!(stale.version, 0, "{backend}");
        let failed = store.conversation(&carewell::tenant::TenantId::default(), &conv(5)).await.unwrap().unwrap();
        assert_eq!(failed.version, 1, "{backend}: the failed call's state update was undone");
        assert!(
            store.outbox_of(&carewell::tenant::TenantId::default(), &conv(5), None, 0).await.unwrap().is_empty(),
            "{backend}"
        );
        assert_eq!(store.next_inbox(&conv(5)).await.unwrap().map(|r| r.id), Some(dup_row), "{backend}: still pending");
        // The dashboard counts the committed turns once each, and none of the failed ones (on
        // PostgreSQL a group commit adds them all in one statement at its end).
        let counts = store.daily_counts(&carewell::tenant::TenantId::default(), COUNT_DAY, COUNT_DAY).await.unwrap();
        let expected = ["step:b", "turns"].map(|m| (COUNT_DAY.to_string(), "booking".to_string(), m.to_string(), 4));
        assert_eq!(counts, expected.to_vec(), "{backend}");
    }
}

fn conv(n: usize) -> String {
    format!("100:97150000010{n}")
}

fn for_conversation(mut c: TurnCommit, id: &str) -> TurnCommit {
    c.conversation_id = id.into();
    c.turn.conversation_id = id.into();
    for o in &mut c.outbox {
        o.conversation_id = id.into();
        o.idempotency_key = format!("{id}:{}", o.idempotency_key);
    }
    c
}

/// `n` conversations ([`conv`]), each with one pending inbox row and leased by `p1`; their rows' ids.
async fn leased_conversations(store: &Store, n: usize) -> Vec<i64> {
    let mut rows = Vec::new();
    for n in 0..n {
        let id = conv(n);
        let mut row = inbox(&format!("wamid.{n}"));
        row.conversation_id = id.clone();
        store.insert_inbox(&[row]).await.unwrap();
        store
            .acquire_lease(&carewell::tenant::TenantId::default(), &id, "c", "100", "{}", "p1", now_ms() + 30_000)
            .await
            .unwrap();
        rows.push(store.next_inbox(&id).await.unwrap().unwrap().id);
    }
    rows
}

/// Two counts for a turn of `booking` on [`COUNT_DAY`].
fn two_counts() -> Vec<Count> {
    ["turns", "step:b"]
        .map(|metric| Count { day: COUNT_DAY.into(), flow: "booking".into(), metric: metric.into(), n: 1 })
        .to_vec()
}

/// Conversations' turns committed together (on PostgreSQL, calls made at once share one
/// transaction, whose counts are added in one statement at its end): each committed turn adds
/// its counts once and its outbox row, and a turn whose lease was lost adds nothing, while the
/// others in its transaction are kept.
#[tokio::test]
async fn turns_committed_together_count_once_each() {
    for (backend, store) in stores().await {
        let rows = leased_conversations(&store, 5).await;
        let commits: Vec<_> = (0..5)
            .map(|n| {
                let version = if n == 2 { 7 } else { 0 }; // conversation 2: stale, its lease lost
                let mut c = for_conversation(commit("p1", version, rows[n], 1, vec![outbox("z")]), &conv(n));
                c.counts = two_counts();
                store.commit_and_next(c)
            })
            .collect();
        let results = futures_util::future::join_all(commits).await;
        for (n, r) in results.iter().enumerate() {
            match n {
                2 => assert!(matches!(r, Err(StoreError::LeaseLost(_))), "{backend}: {r:?}"),
                _ => assert!(r.as_ref().is_ok_and(|c| c.released && c.outbox_ids.len() == 1), "{backend}: {n}: {r:?}"),
            }
        }
        let tenant = carewell::tenant::TenantId::default();
        for n in 0..5 {
            let c = store.conversation(&tenant, &conv(n)).await.unwrap().unwrap();
            assert_eq!(c.version, i64::from(n != 2), "{backend}: conversation {n}");
            assert_eq!(
                store.outbox_of(&tenant, &conv(n), None, 0).await.unwrap().len(),
                usize::from(n != 2),
                "{backend}"
            );
        }
        let counts = store.daily_counts(&tenant, COUNT_DAY, COUNT_DAY).await.unwrap();
        let expected = ["step:b", "turns"].map(|m| (COUNT_DAY.to_string(), "booking".to_string(), m.to_string(), 4));
        assert_eq!(counts, expected.to_vec(), "{backend}");
    }
}

/// A day no other test counts on.
const COUNT_DAY: &str = "2001-02-03";

/// The WAL file's salt-1 (bytes 16..20 of its header), which changes each time SQLite starts the
/// WAL over (<https://www.sqlite.org/fileformat2.html#walformat>).
fn wal_salt(db: &str) -> Option<[u8; 4]> {
    let bytes = std::fs::read(format!("{db}-wal")).ok()?;
    bytes.get(16..20)?.try_into().ok()
}

#[tokio::test]
async fn sqlite_starts_the_wal_over_while_writes_keep_coming() {
    let Db::Sqlite(path) = sqlite() else { unreachable!() };
    let store = Store::connect(&DatabaseUrl::Sqlite(path.clone()), 4).await.expect("connect");
    // Commits do not checkpoint by themselves (it stalled the writer): the store's checkpointer
    // copies the WAL beside the writer, which then starts it over. Without it the WAL would only
    // grow and this would fail.
    let padding = "x".repeat(8_000);
    let started = std::time::Instant::now();
    let (mut salts, mut last, mut i) = (0, None, 0);
    while salts < 2 {
        let mut row = inbox(&format!("wamid.wal.{i}"));
        row.event = format!("{{\"pad\":\"{padding}\"}}");
        store.insert_inbox(&[row]).await.unwrap();
        i += 1;
        let salt = wal_salt(&path);
        if salt.is_some() && last.is_some() && salt != last {
            salts += 1;
        }
        last = salt.or(last);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the WAL was started over {salts} time(s) in 20 s of writes ({i} commits)"
        );
    }
    let (rows, ..) = store.counts().await.unwrap();
    assert_eq!(rows, i, "every row kept");
}
