//! The two queues in front of a group commit (see [`super::Lane`]): each batch takes the
//! interactive lane's calls first, in arrival order, and keeps a quarter of its places for the
//! bulk lane while that has calls waiting, so a burst of slow-path turns (thousands of LLM
//! answers arriving together) delays a button press by at most one batch, and the burst itself
//! is never starved. Used by SQLite's writer (`sqlite_batch`) and PostgreSQL's (`pg_batch`).

use std::collections::VecDeque;

use super::Lane;

/// The most calls in one transaction (a bound on how long one batch holds the database).
pub(super) const MAX_BATCH: usize = 64;
/// Places in each batch kept for the bulk lane while it has calls waiting.
pub(super) const BULK_SHARE: usize = MAX_BATCH / 4;

/// The calls waiting, by lane, each in arrival order.
pub(super) struct Lanes<J> {
    interactive: VecDeque<J>,
    bulk: VecDeque<J>,
}

impl<J> Default for Lanes<J> {
    fn default() -> Self {
        Lanes { interactive: VecDeque::new(), bulk: VecDeque::new() }
    }
}

impl<J> Lanes<J> {
    /// Queues `job` at the end of `lane`.
    pub(super) fn push(&mut self, lane: Lane, job: J) {
        match lane {
            Lane::Interactive => self.interactive.push_back(job),
            Lane::Bulk => self.bulk.push_back(job),
        }
    }

    /// Whether no call waits.
    pub(super) fn is_empty(&self) -> bool {
        self.interactive.is_empty() && self.bulk.is_empty()
    }

    /// Up to [`MAX_BATCH`] calls: interactive ones first, leaving [`BULK_SHARE`] places to bulk
    /// calls when there are some; places either lane leaves unused go to the other. Returns the
    /// batch and how many of its calls (the last ones) came from the bulk lane.
    pub(super) fn next_batch(&mut self) -> (Vec<J>, usize) {
        let bulk_places = self.bulk.len().min(BULK_SHARE);
        let take_interactive = self.interactive.len().min(MAX_BATCH - bulk_places);
        let take_bulk = self.bulk.len().min(MAX_BATCH - take_interactive);
        let mut batch: Vec<J> = self.interactive.drain(..take_interactive).collect();
        batch.extend(self.bulk.drain(..take_bulk));
        (batch, take_bulk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(interactive: usize, bulk: usize) -> Lanes<()> {
        let mut l = Lanes::default();
        (0..interactive).for_each(|_| l.push(Lane::Interactive, ()));
        (0..bulk).for_each(|_| l.push(Lane::Bulk, ()));
        l
    }

    /// (interactive, bulk) taken by the next batch.
    fn taken(interactive: usize, bulk: usize) -> (usize, usize) {
        let mut l = lanes(interactive, bulk);
        let (batch, from_bulk) = l.next_batch();
        let (i, b) = (interactive - l.interactive.len(), bulk - l.bulk.len());
        assert_eq!(batch.len(), i + b);
        assert_eq!(from_bulk, b);
        (i, b)
    }

    #[test]
    fn interactive_calls_go_first_and_bulk_keeps_its_share() {
        assert_eq!(taken(100, 100), (MAX_BATCH - BULK_SHARE, BULK_SHARE));
        assert_eq!(taken(100, 3), (MAX_BATCH - 3, 3));
        assert_eq!(taken(100, 0), (MAX_BATCH, 0));
        assert_eq!(taken(5, 100), (5, MAX_BATCH - 5));
        assert_eq!(taken(0, 100), (0, MAX_BATCH));
        assert_eq!(taken(2, 3), (2, 3));
    }

    #[test]
    fn a_long_bulk_queue_drains_while_interactive_calls_keep_coming() {
        let mut l = lanes(0, 200);
        let mut batches = 0;
        while !l.bulk.is_empty() {
            (0..MAX_BATCH).for_each(|_| l.push(Lane::Interactive, ()));
            l.next_batch();
            batches += 1;
        }
        assert_eq!(batches, 200usize.div_ceil(BULK_SHARE));
    }
}
