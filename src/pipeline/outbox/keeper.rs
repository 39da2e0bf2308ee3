//! Keeps outbox claims alive while their work runs: an ERP write can take several requests of up
//! to `ERP_TIMEOUT_MS` each, and a pass of sends can wait for send slots, both longer than a
//! claim (`OUTBOX_CLAIM_MS`). A [`ClaimKeeper`] extends its claims every third of a claim; a
//! claim it cannot extend (another process took the row after it expired, or it is no longer
//! pending) is reported lost, and whoever works on that row stops.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{error, warn};

use crate::pipeline::App;
use crate::store::{Claim, now_ms};

/// What the keeping task and its owner share.
#[derive(Default)]
struct Kept {
    /// Claims still extended.
    claims: Mutex<Vec<Claim>>,
    /// Rows whose claim could not be extended.
    lost: Mutex<HashSet<i64>>,
    /// Woken when a claim is lost.
    lost_notify: Notify,
}

/// Extends a set of claims until dropped (see the module docs).
pub struct ClaimKeeper {
    kept: Arc<Kept>,
    task: tokio::task::JoinHandle<()>,
}

impl ClaimKeeper {
    /// Starts extending `claims` every third of the app's claim duration.
    pub fn start(app: Arc<App>, claims: Vec<Claim>) -> ClaimKeeper {
        let kept = Arc::new(Kept { claims: Mutex::new(claims), ..Default::default() });
        let shared = kept.clone();
        let claim_ms = app.settings.outbox_claim.as_millis() as i64;
        let task = tokio::spawn(async move {
            let every = Duration::from_millis((claim_ms / 3).max(100) as u64);
            loop {
                tokio::time::sleep(every).await;
                let claims: Vec<Claim> = shared.claims.lock().map(|c| c.clone()).unwrap_or_default();
                if claims.is_empty() {
                    continue;
                }
                let extended = app.store.extend_outbox_claims(&claims, now_ms() + claim_ms).await;
                // A claim released while the statement ran is finished, not lost (its row may
                // have been marked sent meanwhile).
                let extended = extended.map(|lost| {
                    let kept = shared
                        .claims
                        .lock()
                        .map(|c| c.iter().map(|k| k.id).collect::<HashSet<_>>())
                        .unwrap_or_default();
                    lost.into_iter().filter(|id| kept.contains(id)).collect::<Vec<_>>()
                });
                match extended {
                    Ok(lost) if !lost.is_empty() => {
                        warn!(code = "outbox.claim_lost", rows = ?lost, "outbox claims expired and were taken elsewhere; their work stops here");
                        app.metrics.errors.with_label_values(&["outbox.claim_lost"]).inc();
                        if let Ok(mut c) = shared.claims.lock() {
                            c.retain(|claim| !lost.contains(&claim.id));
                        }
                        if let Ok(mut l) = shared.lost.lock() {
                            l.extend(lost);
                        }
                        shared.lost_notify.notify_waiters();
                    }
                    Ok(_) => {}
                    // The claims run out unless a later try succeeds; the fencing token keeps a
                    // second holder's writes apart meanwhile.
                    Err(e) => error!(code = e.code(), error = %e, "cannot extend outbox claims"),
                }
            }
        });
        ClaimKeeper { kept, task }
    }

    /// Starts extending `claims` too.
    pub fn add(&self, claims: impl IntoIterator<Item = Claim>) {
        if let Ok(mut c) = self.kept.claims.lock() {
            c.extend(claims);
        }
    }

    /// Stops extending the claim of row `id` (its work is finished: retried, dead or done).
    pub fn release(&self, id: i64) {
        if let Ok(mut c) = self.kept.claims.lock() {
            c.retain(|claim| claim.id != id);
        }
    }

    /// Whether the claim of row `id` was lost.
    pub fn is_lost(&self, id: i64) -> bool {
        self.kept.lost.lock().is_ok_and(|l| l.contains(&id))
    }

    /// Resolves once the claim of row `id` is lost (never, while it is kept).
    pub async fn lost(&self, id: i64) {
        loop {
            let notified = self.kept.lost_notify.notified();
            if self.is_lost(id) {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ClaimKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
