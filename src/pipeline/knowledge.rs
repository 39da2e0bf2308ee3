//! Importing `fixtures/knowledge.yaml` into the knowledge base, at start and after each reload of
//! the flows (see [`crate::knowledge::import`] for what is created, updated or kept); and the
//! outbox rows that record a turn's flagged questions.

use tracing::{info, warn};

use super::App;
use crate::knowledge::KnowledgeError;
use crate::knowledge::import::{self, KNOWLEDGE_FILE};

/// What one import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    /// Entries created from the file.
    pub created: usize,
    /// Entries rewritten from the file.
    pub updated: usize,
    /// Facts not imported: entries edited in the console since, left as they are, and facts
    /// whose title an item written in the console has.
    pub kept: Vec<String>,
}

impl App {
    /// Brings the file's facts into the knowledge base (nothing when they are all there).
    ///
    /// Errors: the base cannot be read or written; the facts before the failure are imported.
    pub async fn import_knowledge_file(&self, tenant: &super::Tenant) -> Result<Imported, KnowledgeError> {
        let flows = tenant.flows();
        let (_, stored) = self.store.knowledge_items(&tenant.id).await?;
        let plan = import::plan(&flows.knowledge, &stored);
        let mut done = Imported { kept: plan.kept.clone(), ..Default::default() };
        for item in plan.create {
            let id = item.id.clone();
            match self.store.save_knowledge_item(&tenant.id, item, KNOWLEDGE_FILE, true).await {
                Ok(_) => done.created += 1,
                // Another instance starting at the same moment imported it first.
                Err(KnowledgeError::DuplicateTitle(title))
                    if stored.iter().all(|i| !i.title.eq_ignore_ascii_case(&title)) =>
                {
                    info!(%title, "a fact of the knowledge file was imported by another instance");
                }
                // An item written in the console has its title: the console's stands.
                Err(KnowledgeError::DuplicateTitle(title)) => {
                    warn!(fact = %id, %title, "a fact of the knowledge file has the title of an item written in the console; it is not imported");
                    done.kept.push(id);
                }
                Err(e) => return Err(e),
            }
        }
        for item in plan.update {
            self.store.save_knowledge_item(&tenant.id, item, KNOWLEDGE_FILE, false).await?;
            done.updated += 1;
        }
        if done.created + done.updated > 0 {
            info!(
                created = done.created,
                updated = done.updated,
                "the knowledge file was imported into the knowledge base"
            );
        }
        if !done.kept.is_empty() {
            warn!(kept = ?done.kept, "entries of the knowledge file were edited in the console since; the console's wording is kept");
        }
        Ok(done)
    }
}

/// The outbox rows recording `flags` (a turn's [`crate::engine::Decision::flags`]) for
/// `conversation_id`; `dedup_key`: the turn's inbox row's key, so a repeated turn queues nothing
/// new.
pub fn flag_rows(
    tenant: &crate::tenant::TenantId,
    conversation_id: &str,
    dedup_key: &str,
    flags: &[crate::engine::answers::QuestionFlag],
    now: i64,
) -> Vec<crate::store::NewOutbox> {
    flags
        .iter()
        .map(|f| {
            let key = format!("{dedup_key}:flag:{}", f.reason.as_str());
            let flag = crate::store::NewFlag {
                tenant: tenant.to_string(),
                idempotency_key: key.clone(),
                conversation_id: conversation_id.to_string(),
                question: f.question.clone(),
                reason: f.reason.as_str().to_string(),
                passages: serde_json::to_string(&f.passages).unwrap_or_else(|_| "[]".into()),
                evidence: f.evidence.clone(),
                created_at: now,
            };
            super::queue::Payload::Flag(flag).row(conversation_id, key, now)
        })
        .collect()
}
