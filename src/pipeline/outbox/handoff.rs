//! The rows a turn of this process queued, done at once: the commit claimed them for this
//! process as it queued them (`NewOutbox::claimed_by`), so they need no read and no claim
//! statement. Each queue (a conversation's rows of one kind) is worked on by one task at a
//! time, in queue order; queues of interactive turns (button and list replies, locations,
//! agents' actions, the ERP's answers) start before those of typed text when both wait. Sent
//! messages are marked in batches by one task: while a batch is being written the next gathers,
//! so a burst costs a few statements rather than one per message.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing::{error, warn};

use super::dispatch::{QueueKey, work_queue};
use super::keeper::ClaimKeeper;
use crate::pipeline::App;
use crate::store::{Claim, Lane, OutboxRow};

/// Queues worked on at the same time.
const PARALLEL_QUEUES: usize = 64;

/// The most sent rows marked in one statement.
const MARK_BATCH: usize = 256;

/// Claimed rows handed over by the turns that queued them.
type Batch = (Lane, Vec<(OutboxRow, Claim)>);

/// Where turns hand their claimed rows over (see the module docs).
pub struct Handoff {
    tx: mpsc::UnboundedSender<Batch>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Batch>>>,
}

impl Default for Handoff {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Handoff { tx, rx: Mutex::new(Some(rx)) }
    }
}

impl Handoff {
    /// Hands over a turn's claimed rows (in queue order); `lane`: the turn's.
    pub fn send(&self, lane: Lane, rows: Vec<(OutboxRow, Claim)>) {
        if !rows.is_empty() && self.tx.send((lane, rows)).is_err() {
            // The dispatcher has stopped (the process is ending): the claims run out and the
            // backlog of the next process does the rows.
            warn!(
                code = "outbox.handoff_closed",
                "the outbox hand-off has stopped; rows wait for their claim to run out"
            );
        }
    }
}

/// What waits, and what is under way.
#[derive(Default)]
struct Queues {
    rows: HashMap<QueueKey, VecDeque<(OutboxRow, Claim)>>,
    /// Whether a queue's rows came from an interactive turn (they start first).
    interactive: HashSet<QueueKey>,
    ready: [VecDeque<QueueKey>; 2],
    /// Queues ready or under way.
    scheduled: HashSet<QueueKey>,
    /// Queues under way, with the rows each task was given (released if it panics).
    busy: HashMap<tokio::task::Id, (QueueKey, Vec<i64>)>,
}

impl Queues {
    fn add(&mut self, lane: Lane, rows: Vec<(OutboxRow, Claim)>) {
        for (row, claim) in rows {
            let key = (row.conversation_id.clone(), row.kind.clone());
            if lane == Lane::Interactive {
                self.interactive.insert(key.clone());
            }
            self.rows.entry(key.clone()).or_default().push_back((row, claim));
            self.schedule(key);
        }
    }

    fn schedule(&mut self, key: QueueKey) {
        if self.scheduled.insert(key.clone()) {
            let lane = usize::from(!self.interactive.contains(&key));
            self.ready[lane].push_back(key);
        }
    }

    fn next_ready(&mut self) -> Option<(QueueKey, Vec<(OutboxRow, Claim)>)> {
        let key = self.ready[0].pop_front().or_else(|| self.ready[1].pop_front())?;
        self.interactive.remove(&key);
        let rows = self.rows.remove(&key).map(Vec::from).unwrap_or_default();
        Some((key, rows))
    }

    /// The task `id` ended; returns the rows it was given.
    fn finished(&mut self, id: tokio::task::Id) -> Vec<i64> {
        let Some((key, rows)) = self.busy.remove(&id) else { return vec![] };
        self.scheduled.remove(&key);
        if self.rows.contains_key(&key) {
            self.schedule(key);
        }
        rows
    }
}

/// Runs the hand-off until the process stops.
pub async fn run(app: Arc<App>) {
    let Some(mut rx) = app.outbox_handoff.rx.lock().ok().and_then(|mut r| r.take()) else { return };
    // Every claim the hand-off holds — rows waiting for a send slot, under way, or sent and not
    // yet marked — is kept alive by one keeper (one statement per third of a claim).
    let keeper = Arc::new(ClaimKeeper::start(app.clone(), vec![]));
    let (mark_tx, mark_rx) = mpsc::unbounded_channel();
    tokio::spawn(mark_sent(app.clone(), mark_rx, keeper.clone()));
    let mut queues = Queues::default();
    let mut tasks: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < PARALLEL_QUEUES {
            let Some((key, rows)) = queues.next_ready() else { break };
            let ids = rows.iter().map(|(r, _)| r.id).collect();
            let (app, mark_tx, keeper) = (app.clone(), mark_tx.clone(), keeper.clone());
            let handle = tasks.spawn(async move {
                for sent in work_queue(app, rows, keeper).await {
                    let _ = mark_tx.send(sent);
                }
            });
            queues.busy.insert(handle.id(), (key, ids));
        }
        tokio::select! {
            batch = rx.recv() => match batch {
                Some((lane, rows)) => {
                    keeper.add(rows.iter().map(|(_, c)| *c));
                    queues.add(lane, rows);
                }
                None => return,
            },
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                match done {
                    Ok((id, ())) => {
                        queues.finished(id);
                    }
                    Err(e) => {
                        error!(code = "outbox.panicked", error = %e, "an outbox task failed; its rows are done again when their claims run out");
                        // No longer kept: the claims run out and the backlog does the rows.
                        queues.finished(e.id()).into_iter().for_each(|id| keeper.release(id));
                    }
                }
            }
        }
    }
}

/// Marks sent rows, a batch at a time: whatever was sent while the previous batch was written.
async fn mark_sent(app: Arc<App>, mut rx: mpsc::UnboundedReceiver<(Claim, String)>, keeper: Arc<ClaimKeeper>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MARK_BATCH {
            match rx.try_recv() {
                Ok(sent) => batch.push(sent),
                Err(_) => break,
            }
        }
        // Released before the mark, which is fenced by the claims' tokens: a mark that fails
        // leaves the claims to run out and the rows are sent again (at least once), and the
        // keeper never sees a row it keeps turn `sent` under it.
        batch.iter().for_each(|(c, _)| keeper.release(c.id));
        match app.store.outbox_sent_many(&batch, Lane::Interactive).await {
            Ok(lost) if !lost.is_empty() => {
                warn!(code = "outbox.claim_lost", rows = ?lost, "sent rows whose claim was taken elsewhere; they may be sent again");
                app.metrics.errors.with_label_values(&["outbox.claim_lost"]).inc();
            }
            Ok(_) => {}
            Err(e) => {
                error!(code = e.code(), error = %e, "could not mark sent outbox rows; they are sent again when their claims run out")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, conversation: &str, kind: &str) -> (OutboxRow, Claim) {
        let new = crate::store::NewOutbox::pending(
            conversation,
            crate::store::OutboxKind::parse(kind).unwrap_or(crate::store::OutboxKind::WhatsApp),
            format!("k{id}"),
            "{}".into(),
            0,
        )
        .claimed_by("p1", 1);
        let (row, claim) = new.stored(id);
        (row, claim.unwrap())
    }

    #[test]
    fn a_queue_runs_once_at_a_time_in_order_and_interactive_queues_start_first() {
        let mut q = Queues::default();
        q.add(Lane::Bulk, vec![row(1, "a", "whatsapp"), row(2, "a", "whatsapp")]);
        q.add(Lane::Interactive, vec![row(3, "b", "whatsapp")]);
        q.add(Lane::Bulk, vec![row(4, "a", "erp")]);
        let (key, rows) = q.next_ready().unwrap();
        assert_eq!((key.0.as_str(), rows.len()), ("b", 1), "the interactive turn's queue first");
        let (key, rows) = q.next_ready().unwrap();
        assert_eq!(key, ("a".to_string(), "whatsapp".to_string()));
        assert_eq!(rows.iter().map(|(r, _)| r.id).collect::<Vec<_>>(), vec![1, 2], "in queue order");
        let id = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async { tokio::spawn(async {}).id() });
        q.busy.insert(id, (key.clone(), vec![1, 2]));
        // More rows for the queue under way wait for it.
        q.add(Lane::Bulk, vec![row(5, "a", "whatsapp")]);
        let (other, _) = q.next_ready().unwrap();
        assert_eq!(other, ("a".to_string(), "erp".to_string()), "another kind is another queue");
        assert!(q.next_ready().is_none(), "row 5 waits for rows 1 and 2");
        assert_eq!(q.finished(id), vec![1, 2], "the rows it was given");
        let (key, rows) = q.next_ready().unwrap();
        assert_eq!((key.1.as_str(), rows[0].0.id), ("whatsapp", 5));
    }
}
