//! When this process last had work, so that its safety polls (the worker's search for rows
//! nobody took, the outbox's backlog, the scheduler's due wake-ups) run often only while there is
//! something they may find, and slowly when the service is idle.
//!
//! The work itself never waits for a poll: a stored message wakes its worker in-process, a
//! committed turn hands its replies to the dispatcher, a retry this process schedules wakes the
//! backlog when due. The polls are there for what another process left (a crash, a race between
//! processes), which shows up within a lease or claim after traffic: so they run at their fast
//! interval for [`Activity::window`] after this process last stored a message or started, and
//! every [`IDLE_POLL`] otherwise (an idle instance then reads the database a few times a
//! minute instead of a few times a second).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::store::now_ms;

/// How often each safety poll runs while the process has had no work for a while.
pub const IDLE_POLL: Duration = Duration::from_secs(10);

/// The last moment this process had work.
#[derive(Debug)]
pub struct Activity {
    /// Unix ms of the last work (the start counts as work: a restart may follow a crash).
    last_ms: AtomicI64,
    /// How long after work the polls stay fast.
    window: Duration,
}

impl Activity {
    /// Starts now; the polls stay fast for `window` after each piece of work (the service uses
    /// the longer of its lease and outbox claim, plus [`IDLE_POLL`]: what a crashed process left
    /// becomes free to take within that time).
    pub fn new(window: Duration) -> Activity {
        Activity { last_ms: AtomicI64::new(now_ms()), window }
    }

    /// Notes work now (a message stored, a conversation woken).
    pub fn touch(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long a poll whose fast interval is `fast` waits before its next run.
    pub fn poll_every(&self, fast: Duration) -> Duration {
        let quiet_ms = now_ms() - self.last_ms.load(Ordering::Relaxed);
        if quiet_ms > i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX) { IDLE_POLL.max(fast) } else { fast }
    }

    /// How long the polls stay fast after work.
    pub fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_fast_after_work_and_slow_once_idle() {
        let a = Activity::new(Duration::from_secs(40));
        assert_eq!(a.poll_every(Duration::from_secs(1)), Duration::from_secs(1), "a start counts as work");
        a.last_ms.store(now_ms() - 41_000, Ordering::Relaxed);
        assert_eq!(a.poll_every(Duration::from_secs(1)), IDLE_POLL, "idle for longer than the window");
        a.touch();
        assert_eq!(a.poll_every(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(a.window(), Duration::from_secs(40));
    }
}
