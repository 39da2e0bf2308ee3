//! The businesses this process serves, each with its own flows, ERP and WhatsApp clients,
//! knowledge base and quotas (see [`crate::tenant`]); the LLM client and the database are the
//! installation's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::channel::whatsapp::client::{GraphClient, GraphSettings};
use crate::config::Settings;
use crate::erp::{ErpClient, ErpSettings};
use crate::flow::FlowSet;
use crate::guard::Guards;
use crate::llm::LlmClient;
use crate::store::Store;
use crate::tenant::declaration::TenantDecl;
use crate::tenant::quota::{Meter, Quotas};
use crate::tenant::registry::{Directory, Origin, origin};
use crate::tenant::{TenantError, TenantId};

use super::StartError;

/// One business, running.
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its name.
    pub name: String,
    /// Its flows folder (watched for edits).
    pub flows_dir: PathBuf,
    flows: RwLock<Arc<FlowSet>>,
    /// Its guards (its ERP's catalog, the installation's LLM, its knowledge base).
    pub guards: Guards,
    /// Its ERP client (or sandbox).
    pub erp: Arc<ErpClient>,
    /// Its Graph API client; `None` in the sandbox.
    pub graph: Option<GraphClient>,
    /// Its break-glass admin token (`ADMIN_TOKEN` for a single business).
    pub admin_token: Option<String>,
    /// Its quotas.
    pub quotas: Quotas,
    /// The WhatsApp numbers it declares (none for a single business: every number is its).
    pub phone_number_ids: Vec<String>,
    /// This process's view of its usage today.
    pub meter: Meter,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

impl Tenant {
    /// Its current flows.
    pub fn flows(&self) -> Arc<FlowSet> {
        match self.flows.read() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a new, checked flow set.
    pub fn replace_flows(&self, flows: FlowSet) {
        match self.flows.write() {
            Ok(mut f) => *f = Arc::new(flows),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(flows),
        }
    }

    /// Its guards for a turn at `now_ms`: without the LLM while the tenant is over a quota (the
    /// deterministic path carries on; see [`crate::tenant::quota`]), with the quota passed. The
    /// day's usage is read from the shared counts at most every
    /// [`crate::tenant::quota::USAGE_FRESH`]; a failed read keeps the LLM on (a quota is a
    /// budget, not a safety wall).
    pub async fn guards_for_today(
        &self,
        app: &super::App,
        now_ms: i64,
    ) -> (std::borrow::Cow<'_, Guards>, Option<crate::tenant::quota::OverQuota>) {
        use crate::tenant::quota;
        if !self.quotas.any() || self.guards.llm.is_none() {
            return (std::borrow::Cow::Borrowed(&self.guards), None);
        }
        let day = quota::day_of(&self.flows().business.time_zone, now_ms);
        let usage = match self.meter.known(&day, now_ms) {
            Some(u) => u,
            None => match app.store.daily_counts(&self.id, &day, &day).await {
                Ok(rows) => {
                    let u = quota::usage_in(&rows);
                    self.meter.store_read(&day, now_ms, u);
                    u
                }
                Err(e) => {
                    tracing::warn!(code = e.code(), tenant = %self.id, error = %e, "the day's usage could not be read; the LLM stays on");
                    return (std::borrow::Cow::Borrowed(&self.guards), None);
                }
            },
        };
        match self.quotas.over(usage) {
            None => (std::borrow::Cow::Borrowed(&self.guards), None),
            Some(over) => {
                tracing::info!(code = over.code(), tenant = %self.id, "over a quota: this turn runs without the LLM");
                (std::borrow::Cow::Owned(Guards { llm: None, ..self.guards.clone() }), Some(over))
            }
        }
    }

    /// The WhatsApp number it sends from when a customer has not written yet: its first declared
    /// `phone_number_id`.
    pub fn number(&self) -> Option<String> {
        self.phone_number_ids.first().cloned()
    }

    /// Whether its outbound messages stay in the local sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.graph.is_none()
    }
}

/// Every tenant of the process and who owns which number.
pub struct Tenants {
    by_id: HashMap<TenantId, Arc<Tenant>>,
    /// In id order.
    list: Vec<Arc<Tenant>>,
    directory: Directory,
}

impl Tenants {
    /// Reads the tenants (`TENANTS_DIR`, or the single business of `FLOWS_DIR`), loads and checks
    /// their flows and builds their clients. Errors: a tenant file or flow set is wrong, a number
    /// or site is claimed twice, or a client cannot be built.
    pub fn build(settings: &Settings, store: &Arc<Store>, llm: Option<Arc<LlmClient>>) -> Result<Tenants, StartError> {
        let (decls, single) = match &settings.tenants_dir {
            Some(dir) => (crate::tenant::declaration::read_all(dir, settings.tenant_secrets_key.as_ref())?, false),
            None => {
                let mut d = TenantDecl::single(&settings.flows_dir);
                d.admin_token = settings.admin_token.clone();
                (vec![d], true)
            }
        };
        let directory = Directory::new(&decls, single)?;
        let mut list = Vec::with_capacity(decls.len());
        for d in decls {
            let flows = FlowSet::load(&d.flows_dir)?;
            let cache = std::time::Duration::from_secs(flows.catalog.cache_seconds);
            let erp_settings = if single {
                settings.erp.clone()
            } else {
                d.erp.as_ref().map(|e| ErpSettings {
                    base_url: e.base_url.clone(),
                    api_key: e.api_key.clone(),
                    api_secret: e.api_secret.clone(),
                    timeout: settings.erp.as_ref().map_or(std::time::Duration::from_secs(10), |s| s.timeout),
                })
            };
            let erp = Arc::new(ErpClient::new(erp_settings, cache)?);
            let graph = match (&settings.graph, &d.access_token) {
                (Some(g), Some(token)) => {
                    Some(GraphClient::new(GraphSettings { access_token: token.clone(), ..g.clone() })?)
                }
                (Some(g), None) => Some(GraphClient::new(g.clone())?),
                (None, _) => None,
            };
            let source: Arc<dyn crate::knowledge::Source> =
                Arc::new(crate::store::KnowledgeSource(store.clone(), d.id.clone()));
            let knowledge = Arc::new(crate::knowledge::Library::new(Some(source)));
            list.push(Arc::new(Tenant {
                guards: Guards { erp: erp.clone(), llm: llm.clone(), knowledge, booked: Default::default() },
                flows: RwLock::new(Arc::new(flows)),
                erp,
                graph,
                id: d.id,
                name: d.name,
                flows_dir: d.flows_dir,
                admin_token: d.admin_token,
                quotas: d.quotas,
                phone_number_ids: d.phone_number_ids,
                meter: Meter::default(),
            }));
        }
        let tenants = Tenants { by_id: list.iter().map(|t| (t.id.clone(), t.clone())).collect(), list, directory };
        tenants.check_sites()?;
        Ok(tenants)
    }

    /// Errors: two tenants declare one website key.
    pub fn check_sites(&self) -> Result<(), TenantError> {
        let mut seen: HashMap<String, TenantId> = HashMap::new();
        for t in &self.list {
            for site in &t.flows().business.sites {
                if let Some(first) = seen.insert(site.key.clone(), t.id.clone()) {
                    if first != t.id {
                        return Err(TenantError::ClaimedTwice {
                            what: "site key",
                            value: site.key.clone(),
                            first: first.to_string(),
                            second: t.id.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the installation serves one business (no `TENANTS_DIR`).
    pub fn is_single(&self) -> bool {
        self.directory.is_single()
    }

    /// Every tenant, in id order.
    pub fn all(&self) -> &[Arc<Tenant>] {
        &self.list
    }

    /// The tenant `id`, if this process serves it.
    pub fn get(&self, id: &TenantId) -> Option<Arc<Tenant>> {
        self.by_id.get(id).cloned()
    }

    /// The tenant whose webhooks arrive on `phone_number_id`.
    pub fn of_number(&self, phone_number_id: &str) -> Option<Arc<Tenant>> {
        self.directory.of_number(phone_number_id).and_then(|id| self.get(&id))
    }

    /// The tenant that declares website `site`.
    pub fn of_site(&self, site: &str) -> Option<Arc<Tenant>> {
        self.list.iter().find(|t| t.flows().business.sites.iter().any(|s| s.key == site)).cloned()
    }

    /// The tenant a conversation belongs to, from its id.
    pub fn of_conversation(&self, conversation_id: &str) -> Option<Arc<Tenant>> {
        if self.is_single() {
            return self.list.first().cloned();
        }
        match origin(conversation_id)? {
            Origin::WhatsApp(number) => self.of_number(number),
            Origin::Web(site) => self.of_site(site),
        }
    }
}
