//! One pass of the dispatcher over rows read from the outbox: claim the due ones in one
//! statement, then work through each queue (a conversation's rows of one kind) in order, queues
//! in parallel, and mark the pass's sent messages together at its end.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::error;

use super::effects::{erp_given_up, forward, send_message, write_erp};
use super::keeper::ClaimKeeper;
use super::team::{post_notice, record};
use crate::pipeline::App;
use crate::pipeline::queue::Payload;
use crate::store::{Claim, Lane, OutboxRow, now_ms};

/// ERP writes under way at once (each a few HTTP requests to the ERP).
static ERP_WRITES_IN_FLIGHT: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(PARALLEL_QUEUES));

/// Queues whose rows are worked on at the same time.
const PARALLEL_QUEUES: usize = 32;

/// A queue: the rows of one conversation and one kind leave in the order they were queued
/// (messages after messages, ERP writes after ERP writes; an ERP write under way does not hold
/// back the messages of its conversation, such as the notice that it is taking long).
pub type QueueKey = (String, String);

/// Runs one pass over `rows` (in queue order); returns how many rows it claimed. `lane`: the
/// pass's lane in the store (the backlog's pass is bulk); `started`: when it began reading the
/// rows (for the debug line that times its steps).
pub async fn dispatch(app: &Arc<App>, rows: Vec<OutboxRow>, lane: Lane, started: std::time::Instant) -> usize {
    let read_ms = started.elapsed().as_millis() as u64;
    let now = now_ms();
    let queues = queues_of(rows, now);
    // Claim them so another pass or process does not do them too; a claim runs out after
    // OUTBOX_CLAIM_MS unless kept, so rows of a crashed process are done by the next one.
    let ids: Vec<i64> = queues.iter().flat_map(|(_, rows)| rows.iter().map(|r| r.id)).collect();
    let claim_ms = app.settings.outbox_claim.as_millis() as i64;
    let claims: HashMap<i64, Claim> =
        match app.store.claim_outbox_rows(&ids, now, claim_ms, &app.instance_id, lane).await {
            Ok(c) => c.into_iter().map(|c| (c.id, c)).collect(),
            Err(e) => {
                error!(code = e.code(), error = %e, "cannot claim outbox rows");
                return 0;
            }
        };
    let (work, give_back) = claimed_prefixes(queues, &claims);
    give_back_claims(app, &give_back).await;
    let claimed_ms = started.elapsed().as_millis() as u64;
    let done = work.iter().map(Vec::len).sum();
    let keeper = Arc::new(ClaimKeeper::start(app.clone(), work.iter().flatten().map(|(_, c)| *c).collect()));
    let mut tasks: tokio::task::JoinSet<Vec<(Claim, String)>> = tokio::task::JoinSet::new();
    let mut sent_in_pass: Vec<(Claim, String)> = Vec::new();
    for rows in work {
        while tasks.len() >= PARALLEL_QUEUES {
            if let Some(Ok(sent)) = tasks.join_next().await {
                sent_in_pass.extend(sent);
            }
        }
        tasks.spawn(work_queue(app.clone(), rows, keeper.clone()));
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok(sent) = joined {
            sent_in_pass.extend(sent);
        }
    }
    // The pass's sent messages are marked together, in one statement (a crash before this sends
    // them again: WhatsApp sends are at least once, and the kept claims keep other passes and
    // processes off them meanwhile).
    match app.store.outbox_sent_many(&sent_in_pass, lane).await {
        Ok(lost) if !lost.is_empty() => {
            tracing::warn!(code = "outbox.claim_lost", rows = ?lost, "sent rows whose claim was taken elsewhere; they may be sent again");
            app.metrics.errors.with_label_values(&["outbox.claim_lost"]).inc();
        }
        Ok(_) => {}
        Err(e) => error!(code = e.code(), error = %e, "could not mark sent outbox rows; they will be sent again"),
    }
    drop(keeper);
    if done > 0 {
        tracing::debug!(
            ?lane,
            rows = done,
            read_ms,
            claimed_ms,
            ms = started.elapsed().as_millis() as u64,
            "outbox pass"
        );
    }
    done
}

/// Groups `rows` into queues, in order, leaving out every queue's rows from the first that is
/// not due (a retry's wait, or another claim).
fn queues_of(rows: Vec<OutboxRow>, now: i64) -> Vec<(QueueKey, Vec<OutboxRow>)> {
    let mut held: HashSet<QueueKey> = HashSet::new();
    let mut queues: Vec<(QueueKey, Vec<OutboxRow>)> = Vec::new();
    for row in rows {
        let key = (row.conversation_id.clone(), row.kind.clone());
        if held.contains(&key) {
            continue;
        }
        if row.next_attempt_at > now {
            held.insert(key);
            continue;
        }
        match queues.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => rows.push(row),
            None => queues.push((key, vec![row])),
        }
    }
    queues
}

/// Each queue's claimed prefix, with its claims (only a prefix keeps the queue's order), and the
/// claims after a gap, to give back.
fn claimed_prefixes(
    queues: Vec<(QueueKey, Vec<OutboxRow>)>,
    claims: &HashMap<i64, Claim>,
) -> (Vec<Vec<(OutboxRow, Claim)>>, Vec<Claim>) {
    let mut work = Vec::new();
    let mut give_back = Vec::new();
    for (_, rows) in queues {
        let mut prefix = Vec::new();
        let mut gap = false;
        for r in rows {
            match claims.get(&r.id) {
                Some(c) if !gap => prefix.push((r, *c)),
                Some(c) => give_back.push(*c),
                None => gap = true,
            }
        }
        if !prefix.is_empty() {
            work.push(prefix);
        }
    }
    (work, give_back)
}

/// Gives claims back unattempted, logging a failure (the claims then simply run out).
pub async fn give_back_claims(app: &App, claims: &[Claim]) {
    if claims.is_empty() {
        return;
    }
    match app.store.unclaim_outbox_rows(claims, now_ms()).await {
        // Due again at once: the backlog takes them (behind any row they wait for).
        Ok(()) => app.outbox_notify.notify_one(),
        Err(e) => error!(code = e.code(), error = %e, "could not give outbox claims back; they run out instead"),
    }
}

/// Dead-letters a row whose every attempt ended without a recorded outcome.
async fn give_up(app: &App, row: &OutboxRow, claim: Claim) {
    let why = "outbox.attempts_exhausted: every attempt ended without a recorded outcome";
    error!(
        code = "outbox.attempts_exhausted",
        outbox_id = row.id,
        attempts = claim.attempt - 1,
        "outbox row dead-lettered: {why}"
    );
    app.metrics.errors.with_label_values(&["outbox.attempts_exhausted"]).inc();
    match Payload::of(row) {
        Ok(Payload::Erp(write)) => erp_given_up(app, row, claim, &write, why).await,
        _ => {
            let _ = app.store.outbox_dead(claim, why).await;
        }
    }
}

/// Works through one queue's claimed rows in order; returns the messages it sent (marked by the
/// pass). Stops at a row that waits for a retry (later rows wait behind it) or whose claim was
/// lost, giving the rest back; an ERP write goes on in a task of its own, and the rest of its
/// queue is given back to wait for it.
pub async fn work_queue(
    app: Arc<App>,
    rows: Vec<(OutboxRow, Claim)>,
    keeper: Arc<ClaimKeeper>,
) -> Vec<(Claim, String)> {
    let mut rows = rows.into_iter();
    let mut sent: Vec<(Claim, String)> = Vec::new();
    while let Some((row, claim)) = rows.next() {
        if keeper.is_lost(row.id) {
            // Another process does this row now (its claim ran out here); the later rows wait
            // for it there, so their claims are given back.
            let rest: Vec<Claim> = rows.map(|(_, c)| c).collect();
            rest.iter().for_each(|c| keeper.release(c.id));
            give_back_claims(&app, &rest).await;
            break;
        }
        if claim.attempt as u32 > app.settings.outbox_max_attempts {
            // Earlier attempts ended without a recorded outcome (a crash, a store failure) as
            // often as a row may be attempted at all: it goes to the dead letter, and an ERP
            // write's conversation is told it failed.
            keeper.release(row.id);
            give_up(&app, &row, claim).await;
            continue;
        }
        let finished = match Payload::of(&row) {
            Err(why) => {
                keeper.release(row.id);
                let code = why.split(':').next().unwrap_or("outbox.corrupt_payload").to_string();
                let _ = app.store.outbox_dead(claim, &why).await;
                error!(code = %code, outbox_id = row.id, error = %why, "outbox row dead-lettered: it cannot be read");
                true
            }
            Ok(Payload::Send(send)) => {
                let finished = send_message(&app, &row, claim, &send, &mut sent).await;
                if !sent.iter().any(|(c, _)| c.id == row.id) {
                    keeper.release(row.id);
                }
                finished
            }
            Ok(Payload::Web(reply)) => {
                // Stored is delivered: the visitor's browser reads the row itself. It is marked
                // sent with the pass, and the browsers waiting in this process are woken.
                sent.push((claim, format!("web-{}", row.id)));
                super::effects::observe_web(&app, &reply);
                app.web_replies.notify_waiters();
                true
            }
            Ok(Payload::Forward(f)) => {
                let finished = forward(&app, &row, claim, &f).await;
                keeper.release(row.id);
                finished
            }
            Ok(Payload::Handoff(h)) => {
                let finished = record(&app, &row, claim, crate::store::OutboxRecord::Handoff(h)).await;
                keeper.release(row.id);
                finished
            }
            Ok(Payload::Flag(flag)) => {
                let finished = record(&app, &row, claim, crate::store::OutboxRecord::Flag(flag)).await;
                keeper.release(row.id);
                finished
            }
            Ok(Payload::Webhook(notice)) => {
                let finished = post_notice(&app, &row, claim, &notice, &mut sent).await;
                if !sent.iter().any(|(c, _)| c.id == row.id) {
                    keeper.release(row.id);
                }
                finished
            }
            Ok(Payload::Erp(write)) => {
                // An ERP write can take seconds: it finishes on its own, kept alive by a keeper
                // of its own, so the pass (and the replies queued behind it) does not wait.
                let rest: Vec<Claim> = rows.map(|(_, c)| c).collect();
                rest.iter().for_each(|c| keeper.release(c.id));
                give_back_claims(&app, &rest).await;
                let app = app.clone();
                tokio::spawn(async move {
                    let own = ClaimKeeper::start(app.clone(), vec![claim]);
                    let Ok(_slot) = ERP_WRITES_IN_FLIGHT.acquire().await else { return };
                    write_erp(&app, &row, claim, &write, &own).await;
                });
                keeper.release(claim.id);
                break;
            }
        };
        if !finished {
            // This row waits for a retry; the queue's later rows wait behind it.
            let rest: Vec<Claim> = rows.map(|(_, c)| c).collect();
            rest.iter().for_each(|c| keeper.release(c.id));
            give_back_claims(&app, &rest).await;
            break;
        }
    }
    sent
}
