//! The live holds as this process's turns see them: one read of the store shared for
//! [`HOLDS_FRESH`], kept up to date with the process's own commits in between.
//!
//! A read of every live hold costs as much as the holds there are (booked ones stay until the
//! visit, so a busy business has thousands), and a third of a booking journey's turns change a
//! hold: reading again after each such commit, so that the process's next turns see the place
//! just taken, made the turns' cost grow with the holds. Now a commit applies its changes to
//! the shared holds ([`crate::engine::capacity::Holds::apply`]), as the store applied them, and
//! the store is read again only when the read is [`HOLDS_FRESH`] old (for other processes'
//! changes and lapsed holds). Concurrent turns that find the read old wait for one read, not
//! one each.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::capacity::{HeldPlace, HoldChange, Holds};
use crate::store::{LiveHold, Store, StoreError};

/// How long the turns of one process share one read of the live holds. A read only guides the
/// times offered and accepted: the commit takes the place under the window's lock and refuses
/// it when full (the turn is then decided again with the window marked as taken), so a read
/// this old takes nothing a fresh one would not. Without it every turn of a booking journey
/// (whose flow reads the times) costs one more query and transaction.
pub const HOLDS_FRESH: Duration = Duration::from_millis(250);

/// At most this many commits are kept to be applied again to a read in flight; beyond it (a
/// read that takes seconds under a flood of bookings) the oldest are dropped, and the read may
/// miss them until the next one: the commit's check still decides.
const KEPT_COMMITS: usize = 4_096;

/// Every business's holds, by tenant id.
type ByTenant = HashMap<String, Arc<Holds>>;

/// A commit's hold changes, kept while a read that may not have seen them is in flight.
struct Committed {
    tenant: String,
    conversation_id: String,
    changes: Vec<HoldChange>,
}

#[derive(Default)]
struct Shared {
    /// The last read (when it started) with the process's commits since applied.
    read: Option<(Instant, Arc<ByTenant>)>,
    /// Whether a read of the store is in flight.
    reading: bool,
    /// The process's commits since the read in flight started, oldest first.
    since: VecDeque<Committed>,
}

/// The process's view of the live holds (see the module's documentation).
pub struct HoldsView {
    shared: Mutex<Shared>,
    /// Taken by the turn that reads the store; the others wait for its read.
    reading: tokio::sync::Mutex<()>,
    /// How long a read is shared ([`HOLDS_FRESH`]).
    fresh_for: Duration,
}

impl Default for HoldsView {
    fn default() -> Self {
        HoldsView::fresh_for(HOLDS_FRESH)
    }
}

impl HoldsView {
    /// A view that shares each read for `fresh_for` (the service uses [`HOLDS_FRESH`]).
    pub fn fresh_for(fresh_for: Duration) -> HoldsView {
        HoldsView { shared: Mutex::default(), reading: tokio::sync::Mutex::new(()), fresh_for }
    }

    /// `tenant`'s live holds, from a read at most [`HOLDS_FRESH`] old with this process's
    /// commits since; `None` when the business has none. Errors: the store cannot be read (its
    /// kind kept: a transient one makes the turn wait, not fail).
    pub async fn get(&self, store: &Store, tenant: &str) -> Result<Option<Arc<Holds>>, StoreError> {
        if let Some(all) = self.fresh() {
            return Ok(all.get(tenant).cloned());
        }
        let _reading = self.reading.lock().await;
        if let Some(all) = self.fresh() {
            return Ok(all.get(tenant).cloned());
        }
        let started = Instant::now();
        {
            let mut shared = self.lock();
            shared.reading = true;
            shared.since.clear();
        }
        let read = store.live_holds(crate::store::now_ms()).await;
        let mut shared = self.lock();
        shared.reading = false;
        let since = std::mem::take(&mut shared.since);
        let mut all = by_tenant(&read?);
        // Commits that landed while the store was read may be missing from it: apply them again.
        for c in &since {
            Arc::make_mut(all.entry(c.tenant.clone()).or_default()).apply(&c.conversation_id, &c.changes);
        }
        let all = Arc::new(all);
        shared.read = Some((started, all.clone()));
        Ok(all.get(tenant).cloned())
    }

    /// Applies a commit's hold changes (`conversation_id`'s, of `tenant`), once the store has
    /// committed them, to the shared holds, for this process's next turns.
    pub fn committed(&self, tenant: &str, conversation_id: &str, changes: &[HoldChange]) {
        if changes.is_empty() {
            return;
        }
        let mut shared = self.lock();
        if let Some((read_at, all)) = shared.read.take() {
            let mut all = Arc::unwrap_or_clone(all);
            Arc::make_mut(all.entry(tenant.to_string()).or_default()).apply(conversation_id, changes);
            shared.read = Some((read_at, Arc::new(all)));
        }
        if !shared.reading {
            return;
        }
        if shared.since.len() >= KEPT_COMMITS {
            shared.since.pop_front();
        }
        shared.since.push_back(Committed {
            tenant: tenant.to_string(),
            conversation_id: conversation_id.to_string(),
            changes: changes.to_vec(),
        });
    }

    /// The last read with the commits since, while it is fresh.
    fn fresh(&self) -> Option<Arc<ByTenant>> {
        let shared = self.lock();
        shared.read.as_ref().filter(|(at, _)| at.elapsed() < self.fresh_for).map(|(_, all)| all.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // The lock guards plain data whose every update completes: a panic elsewhere leaves it
        // whole.
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Every business's holds from the store's rows.
fn by_tenant(all: &[LiveHold]) -> ByTenant {
    let mut tenants: HashMap<&str, Vec<&LiveHold>> = HashMap::new();
    for h in all {
        tenants.entry(h.tenant.as_str()).or_default().push(h);
    }
    tenants
        .into_iter()
        .map(|(tenant, holds)| {
            let places = holds.into_iter().map(|h| HeldPlace {
                conversation_id: &h.conversation_id,
                journey_id: &h.journey_id,
                window: &h.window,
                erp_name: h.erp_name.as_deref(),
            });
            (tenant.to_string(), Arc::new(Holds::of(places)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::capacity::HeldFor;

    const NINE: &str = "2030-01-08T09:00:00";

    async fn empty_store() -> Store {
        let path = std::env::temp_dir().join(format!("carewell-holds-view-{}.db", uuid::Uuid::new_v4().simple()));
        let url = crate::store::DatabaseUrl::parse(Some(&format!("sqlite://{}", path.display())))
            .unwrap_or_else(|e| panic!("{e}"));
        Store::connect(&url, 2).await.unwrap_or_else(|e| panic!("{e}"))
    }

    fn hold(journey: &str) -> HoldChange {
        HoldChange::Hold { journey: journey.into(), window: NINE.into(), places: 3, until_ms: i64::MAX }
    }

    #[tokio::test]
    async fn the_next_turns_see_a_commit_without_reading_again_until_the_read_is_old() {
        let store = empty_store().await;
        let view = HoldsView::fresh_for(Duration::from_secs(3600));
        assert!(view.get(&store, "default").await.unwrap_or_else(|e| panic!("{e}")).is_none());
        // The store never gets this hold: only the commit's own report can show it.
        view.committed("default", "c1", &[hold("j1")]);
        let holds = view.get(&store, "default").await.unwrap_or_else(|e| panic!("{e}"));
        let holds = holds.unwrap_or_else(|| panic!("the commit was not applied to the shared read"));
        assert_eq!(HeldFor { holds: Some(&holds), conversation_id: "c2" }.len(), 1, "another customer sees it");
        assert_eq!(
            HeldFor { holds: Some(&holds), conversation_id: "c1" }.len(),
            0,
            "its own pending hold does not count"
        );
        assert!(view.get(&store, "other-business").await.unwrap_or_else(|e| panic!("{e}")).is_none());

        // A read that is never fresh goes back to the store each time, which has no hold.
        let always_old = HoldsView::fresh_for(Duration::ZERO);
        assert!(always_old.get(&store, "default").await.unwrap_or_else(|e| panic!("{e}")).is_none());
        always_old.committed("default", "c1", &[hold("j1")]);
        assert!(always_old.get(&store, "default").await.unwrap_or_else(|e| panic!("{e}")).is_none());
    }
}
