//! The running service's moving parts, wired together: the shared [`App`], the conversation
//! [`worker`] and the [`outbox`] dispatcher. The HTTP side lives in `server`.

pub mod activity;
pub mod holds_view;
pub mod knowledge;
pub mod outbox;
pub mod queue;
pub mod reload;
pub mod scheduler;
pub mod team;
pub mod tenants;
pub mod tickets;
pub mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Settings;
use crate::engine::EventKind;
use crate::flow::FlowSet;
use crate::llm::LlmClient;
use crate::store::{ConversationRow, InboxRow, Lane, Store};
pub use tenants::{Tenant, Tenants};

/// A conversation the worker should take up: it has new inbox rows; `leased` when this process
/// already holds its lease, with the conversation as stored and the row to process first.
#[derive(Debug)]
pub struct Ready {
    /// `phone_number_id:wa_id`.
    pub conversation_id: String,
    /// How soon its first turn runs when the database is busy.
    pub lane: Lane,
    /// The conversation and its first row, read by the statement that took the lease.
    pub leased: Option<Box<(ConversationRow, InboxRow)>>,
}

/// Everything the service shares between requests and background tasks.
pub struct App {
    /// Settings.
    pub settings: Settings,
    /// The database.
    pub store: Arc<Store>,
    /// The businesses served: each one's flows (replaced whole on reload), guards, ERP and
    /// Graph API clients.
    pub tenants: Tenants,
    /// For the team's hand-off webhook (per-request timeouts are set by the caller).
    pub http: reqwest::Client,
    /// Speech to text for voice notes; `None` unless `SPEECH_BASE_URL` is set.
    pub speech: Option<crate::llm::speech::SpeechClient>,
    /// Wakes the worker when the inbox grows.
    pub inbox_notify: Notify,
    /// Wakes the backlog dispatcher (rows due at once: given back, re-driven).
    pub outbox_notify: Notify,
    /// Wakes the website visitors' browsers waiting in this process for replies (another
    /// process's replies are found by their next read, within a second).
    pub web_replies: Notify,
    /// This process's lease-owner id.
    pub instance_id: String,
    /// Rate limits (governor).
    pub limits: Limits,
    /// Message ids seen recently: a repeated delivery is answered without touching the database
    /// (the inbox's unique key stays the guarantee).
    pub seen: moka::future::Cache<String, ()>,
    /// Metrics.
    pub metrics: crate::metrics::Metrics,
    /// Conversations that just got an inbox row in this process, with the lane their turn starts
    /// in: the worker takes them at once instead of waiting for its next database poll.
    pub ready: std::sync::Mutex<std::collections::VecDeque<Ready>>,
    /// Where turns hand the outbox rows they queued (and claimed) to this process's dispatcher.
    pub outbox_handoff: outbox::handoff::Handoff,
    /// When the next retry this process scheduled is due (wakes the backlog).
    pub outbox_due: outbox::DueTimer,
    /// When this process last had work: its safety polls slow down once it is idle.
    pub activity: activity::Activity,
    /// Hashes of lookup snapshots this process has stored (a turn naming one of them does not
    /// send it again).
    pub lookup_snapshots_stored: moka::future::Cache<String, ()>,
    /// Turns back from the LLM that may finish their work (decide, record, commit) at once: one
    /// per CPU core (see `worker::process`).
    pub bulk_turn_slots: tokio::sync::Semaphore,
    /// The live holds as this process's turns see them (see [`App::live_holds`]).
    pub holds: holds_view::HoldsView,
}

pub use holds_view::HOLDS_FRESH;

/// The lane an inbound event's turn starts in (see [`Lane`]): events that no LLM reads and that
/// someone is watching for (a button or list reply, a location, an agent's action, the ERP's
/// answer) go first under a burst; typed text and media (which the LLM may have to read) and the
/// scheduler's ticks take their turn in arrival order.
pub fn lane_of(kind: &EventKind) -> Lane {
    match kind {
        EventKind::Text { .. } | EventKind::Media { .. } | EventKind::Tick => Lane::Bulk,
        _ => Lane::Interactive,
    }
}

/// The rate limiters, keyed by sender or IP address. Every webhook comes from Meta's addresses, so
/// the per-IP limit is generous and the per-sender one protects against a flooding customer.
pub struct Limits {
    /// Per customer (`<tenant>:<wa_id>`), per minute.
    pub sender: governor::DefaultKeyedRateLimiter<String>,
    /// Per IP address on the webhook, counting only refused requests (a bad signature, a
    /// malformed body): WhatsApp's signed deliveries come from a few addresses at up to the
    /// number's throughput and are never throttled by address.
    pub ip: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    /// Per IP address on the admin API.
    pub admin: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    /// Outbound sends per business number (`phone_number_id`), this process's share of its
    /// throughput: `OUTBOUND_PER_SECOND / INSTANCES`.
    pub outbound: governor::DefaultKeyedRateLimiter<String>,
    /// Website chat requests per address, per minute.
    pub web_ip: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    /// Website chat messages per session, per minute.
    pub web_session: governor::DefaultKeyedRateLimiter<String>,
    /// Per API key (by id), each at its own `per_minute`.
    pub keys:
        std::sync::Mutex<std::collections::HashMap<i64, (u32, std::sync::Arc<governor::DefaultDirectRateLimiter>)>>,
}

/// Sends per second per business number for one of `instances` processes: its share of the
/// number's throughput `per_second`, rounded down so that together they stay within it (at
/// least one).
pub fn outbound_share(per_second: u32, instances: u32) -> u32 {
    (per_second / instances.max(1)).max(1)
}

impl Limits {
    fn new(s: &Settings) -> Limits {
        use governor::{Quota, RateLimiter};
        use std::num::NonZeroU32;
        let nz = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        Limits {
            sender: RateLimiter::keyed(
                Quota::per_minute(nz(s.rate_sender_per_minute)).allow_burst(nz(s.rate_sender_per_minute.min(20))),
            ),
            ip: RateLimiter::keyed(Quota::per_second(nz(s.rate_ip_per_second))),
            admin: RateLimiter::keyed(Quota::per_second(nz(s.rate_admin_per_second))),
            outbound: RateLimiter::keyed(Quota::per_second(nz(outbound_share(s.outbound_per_second, s.instances)))),
            web_ip: RateLimiter::keyed(
                Quota::per_minute(nz(s.rate_web_ip_per_minute)).allow_burst(nz(s.rate_web_ip_per_minute.min(60))),
            ),
            web_session: RateLimiter::keyed(
                Quota::per_minute(nz(s.rate_web_session_per_minute)).allow_burst(nz(s.rate_web_session_per_minute)),
            ),
            keys: Default::default(),
        }
    }

    /// Whether API key `id` may make one more request at `per_minute` (its limiter is made on
    /// first use, and again when its rate changes).
    pub fn key_allows(&self, id: i64, per_minute: i32) -> bool {
        use governor::{Quota, RateLimiter};
        let rate = u32::try_from(per_minute).unwrap_or(1).max(1);
        let limiter = {
            let Ok(mut keys) = self.keys.lock() else { return false };
            let entry = keys.entry(id).or_insert_with(|| {
                (0, std::sync::Arc::new(RateLimiter::direct(Quota::per_minute(std::num::NonZeroU32::MIN))))
            });
            if entry.0 != rate {
                let quota = Quota::per_minute(std::num::NonZeroU32::new(rate).unwrap_or(std::num::NonZeroU32::MIN));
                *entry = (rate, std::sync::Arc::new(RateLimiter::direct(quota)));
            }
            entry.1.clone()
        };
        limiter.check().is_ok()
    }

    /// Forgets keys that have been idle (keyed limiters keep keys until told).
    pub fn forget_idle(&self) {
        self.outbound.retain_recent();
        self.sender.retain_recent();
        self.ip.retain_recent();
        self.admin.retain_recent();
        self.web_ip.retain_recent();
        self.web_session.retain_recent();
    }
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Flows.
    #[error(transparent)]
    Flows(#[from] crate::flow::FlowError),
    /// Database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// LLM client.
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    /// ERP client.
    #[error(transparent)]
    Erp(#[from] crate::erp::ErpError),
    /// Graph client.
    #[error(transparent)]
    Graph(#[from] crate::channel::whatsapp::client::SendError),
    /// Tenants.
    #[error(transparent)]
    Tenant(#[from] crate::tenant::TenantError),
}

impl App {
    /// Loads the flows, connects to the database (running migrations) and builds the clients.
    pub async fn build(settings: Settings) -> Result<Arc<App>, StartError> {
        let store = Arc::new(Store::connect(&settings.database, settings.worker_concurrency.min(16) + 2).await?);
        let llm = match &settings.llm {
            Some(s) => Some(Arc::new(LlmClient::new(s.clone())?)),
            None => None,
        };
        let tenants = Tenants::build(&settings, &store, llm)?;
        let speech = match &settings.speech {
            Some(s) => Some(crate::llm::speech::SpeechClient::new(s.clone())?),
            None => None,
        };
        let app = Arc::new(App {
            tenants,
            store,
            http: reqwest::Client::new(),
            speech,
            inbox_notify: Notify::new(),
            outbox_notify: Notify::new(),
            web_replies: Notify::new(),
            instance_id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            limits: Limits::new(&settings),
            metrics: crate::metrics::Metrics::new(),
            ready: Default::default(),
            outbox_handoff: Default::default(),
            outbox_due: Default::default(),
            activity: activity::Activity::new(settings.lease.max(settings.outbox_claim) + activity::IDLE_POLL),
            lookup_snapshots_stored: moka::future::Cache::new(10_000),
            holds: Default::default(),
            bulk_turn_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            ),
            seen: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(600))
                .build(),
            settings,
        });
        for tenant in app.tenants.all() {
            // Conversations started on these flows carry on with them after an edit or a restart.
            app.store_flow_versions(tenant).await?;
            if let Err(e) = app.import_knowledge_file(tenant).await {
                tracing::error!(code = e.code(), tenant = %tenant.id, error = %e, "the knowledge file could not be imported; enquiries are answered from the knowledge base as it is");
            }
        }
        Ok(app)
    }

    /// `tenant`'s live holds, counted from a read of every business's holds at most
    /// [`HOLDS_FRESH`] old that the process's turns share, with this process's commits since
    /// applied; `None` when it has none. Errors: the database cannot be read.
    pub async fn live_holds(
        &self,
        tenant: &crate::tenant::TenantId,
    ) -> Result<Option<Arc<crate::engine::capacity::Holds>>, crate::store::StoreError> {
        self.holds.get(&self.store, tenant.as_str()).await
    }

    /// Stores every flow of the current set by content hash, so conversations on it carry on
    /// with it after an edit, a restart or on another instance.
    ///
    /// Errors: [`crate::store::StoreError`] when the database cannot be written.
    pub async fn store_flow_versions(&self, tenant: &Tenant) -> Result<(), crate::store::StoreError> {
        let flows = tenant.flows();
        let rows: Vec<(String, String, i32, String)> = flows
            .flows
            .values()
            .map(|f| {
                (f.hash.clone(), f.id.clone(), f.version as i32, serde_json::to_string(f.as_ref()).unwrap_or_default())
            })
            .collect();
        self.store.store_flow_versions(&tenant.id, &rows).await
    }

    /// The flows for a turn of `state`: the current set, with any flow a journey of `state` still
    /// runs on read back from the database first (a version this process never loaded).
    pub async fn flows_for(&self, tenant: &Tenant, state: &crate::engine::ConversationState) -> Arc<FlowSet> {
        let flows = tenant.flows();
        let missing = flows.missing_hashes(state);
        if missing.is_empty() {
            return flows;
        }
        let mut found = Vec::new();
        for hash in missing {
            match self.store.flow_version(&tenant.id, &hash).await {
                Ok(Some(body)) => match serde_json::from_str::<crate::flow::graph::Flow>(&body) {
                    Ok(flow) => found.push(flow),
                    Err(e) => {
                        tracing::error!(code = "flow.stored_unreadable", hash, error = %e, "a stored flow version does not parse")
                    }
                },
                Ok(None) => tracing::warn!(
                    code = "flow.version_unknown",
                    hash,
                    "a journey runs on a flow version this database does not hold; it will be moved to the current version"
                ),
                Err(e) => tracing::error!(code = e.code(), error = %e, "cannot read a stored flow version"),
            }
        }
        if found.is_empty() {
            return flows;
        }
        let mut grown = (*flows).clone();
        for flow in found {
            tracing::info!(flow = %flow.id, version = flow.version, hash = %flow.hash, "an older flow version read back for a conversation on it");
            grown.adopt(flow);
        }
        tenant.replace_flows(grown);
        tenant.flows()
    }

    /// The tenant a conversation belongs to, from its id; the single business's for one whose
    /// number or site no tenant serves any more (its rows are then set aside under it).
    pub fn tenant_id_of(&self, conversation_id: &str) -> crate::tenant::TenantId {
        self.tenants.of_conversation(conversation_id).map(|t| t.id.clone()).unwrap_or_default()
    }

    /// Whether outbound messages stay in the local sandbox (no Graph API configured).
    pub fn is_sandbox(&self) -> bool {
        self.settings.graph.is_none()
    }

    /// Tells the worker that `conversation_id` has new inbox rows; its next turn starts in `lane`.
    pub fn wake(&self, conversation_id: &str, lane: Lane) {
        self.ready_push(Ready { conversation_id: conversation_id.to_string(), lane, leased: None });
    }

    /// Hands the worker a conversation whose lease this process took as its row was stored
    /// (`Store::insert_inbox_and_lease`), with the row to process first.
    pub fn wake_leased(&self, conversation: ConversationRow, row: InboxRow, lane: Lane) {
        let conversation_id = conversation.id.clone();
        self.ready_push(Ready { conversation_id, lane, leased: Some(Box::new((conversation, row))) });
    }

    fn ready_push(&self, ready: Ready) {
        self.activity.touch();
        if let Ok(mut q) = self.ready.lock() {
            q.push_back(ready);
        }
        self.inbox_notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_process_paces_a_number_at_its_share_of_the_numbers_throughput() {
        assert_eq!(outbound_share(80, 1), 80, "one process: the whole default throughput");
        assert_eq!(outbound_share(80, 3), 26, "three processes: 26 each, 78 together (never over 80)");
        assert_eq!(outbound_share(1000, 4), 250);
        assert_eq!(outbound_share(2, 3), 1, "at least one a second");
        assert_eq!(outbound_share(80, 0), 80, "an instance count of 0 is read as 1");
    }

    #[test]
    fn events_no_llm_reads_start_in_the_interactive_lane() {
        let choice = EventKind::Choice { id: "b1".into(), title: "Book a service".into() };
        let location = EventKind::Location { latitude: 25.2, longitude: 55.3, name: None, address: None };
        let agent = EventKind::AgentMessage { agent: "sam".into(), text: "Hello".into() };
        for kind in [choice, location, agent] {
            assert_eq!(lane_of(&kind), Lane::Interactive, "{kind:?}");
        }
        let text = EventKind::Text { body: "people call me by my nickname".into() };
        let media = EventKind::Media {
            media_type: "image".into(),
            media_id: "m1".into(),
            mime_type: None,
            caption: Some("my receipt".into()),
        };
        for kind in [text, media, EventKind::Tick] {
            assert_eq!(lane_of(&kind), Lane::Bulk, "{kind:?}");
        }
    }
}
