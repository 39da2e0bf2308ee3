//! The scheduler: wakes conversations whose `wake_at` has come (a reminder is due) by queueing a
//! `Tick` event in their inbox. The engine then decides whether a reminder is still wanted (one
//! per journey, only inside WhatsApp's 24-hour window). Safe with several processes: each wake-up
//! is claimed once in the database.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use super::App;
use crate::engine::{EventKind, InboundEvent};
use crate::store::now_ms;

/// How often the scheduler looks for due wake-ups while this process has work (slower when
/// idle: see [`super::activity`]; a reminder is then up to that much late).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How often holds that lapsed or whose visit is past are deleted (`slot_holds`).
pub const SWEEP_HOLDS_EVERY: Duration = Duration::from_secs(600);

/// Runs until the process stops.
pub async fn run(app: Arc<App>) {
    let mut last_sweep = std::time::Instant::now();
    loop {
        if let Err(e) = tick(&app).await {
            error!(code = e.code(), error = %e, "scheduler pass failed");
        }
        if last_sweep.elapsed() >= SWEEP_HOLDS_EVERY {
            last_sweep = std::time::Instant::now();
            match app.store.sweep_holds(now_ms()).await {
                Ok(0) => {}
                Ok(n) => info!(holds = n, "lapsed and past holds deleted"),
                Err(e) => error!(code = e.code(), error = %e, "sweeping the holds failed"),
            }
        }
        app.limits.forget_idle();
        tokio::time::sleep(app.activity.poll_every(INTERVAL)).await;
    }
}

async fn tick(app: &App) -> Result<(), crate::store::StoreError> {
    let now = now_ms();
    for (id, customer, phone_number_id, wake_at) in app.store.due_wakeups(now, 100).await? {
        let event = InboundEvent::internal(format!("tick:{id}:{wake_at}"), customer, now / 1000, EventKind::Tick);
        let row = super::queue::inbox_row(&app.tenant_id_of(&id), &phone_number_id, &event, now);
        if app.store.queue_wakeup(&id, wake_at, row).await? {
            info!(conversation_id = %id, "conversation woken (reminder due)");
            app.wake(&id, crate::store::Lane::Bulk);
        }
    }
    Ok(())
}
