//! Safe edits in production: watches `flows/` and `prompts/` and reloads when a file changes.
//! The whole set must check; otherwise the error is logged (every problem, with `file:line:col`)
//! and the server keeps answering with the last good version. Conversations under way keep the
//! content of their flow they started with (stored by hash: see `FlowSet::flow_of`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use super::{App, Tenant};
use crate::flow::FlowSet;

/// How often the directories are looked at.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The names, sizes and modification times of the files under `dir`, for change detection.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path().display().to_string(), meta.len(), meta.modified().ok()))
        })
        .collect();
    out.sort();
    out
}

/// Loads `tenant`'s flow files again and, when the whole set checks, serves it from its next
/// turn: the flows and versions now served (`"booking v3"`…). Other tenants are not touched.
/// Errors: the set does not check (every problem with `file:line:col`), or it declares a
/// website another tenant declares (`flow.web`); the last good version is still served.
pub async fn reload_now(app: &App, tenant: &Tenant) -> Result<Vec<String>, crate::flow::FlowError> {
    let mut fresh = FlowSet::load(&tenant.flows_dir)?;
    let current = tenant.flows();
    if let Some(taken) =
        fresh.business.sites.iter().find(|s| app.tenants.of_site(&s.key).is_some_and(|owner| owner.id != tenant.id))
    {
        return Err(crate::flow::FlowError::Invalid(vec![crate::flow::FlowProblem {
            file: "business.yaml".into(),
            line: 0,
            column: 0,
            code: "flow.web",
            message: format!("site key {:?} is another tenant's; choose another key", taken.key),
        }]));
    }
    fresh.inherit(&current);
    let versions: Vec<String> = fresh.flows.values().map(|f| format!("{} v{}", f.id, f.version)).collect();
    tenant.replace_flows(fresh);
    if let Err(e) = app.store_flow_versions(tenant).await {
        error!(code = e.code(), error = %e, "the new flow versions could not be stored; conversations on them will be moved if this process stops");
    }
    if let Err(e) = app.import_knowledge_file(tenant).await {
        error!(code = e.code(), error = %e, "the knowledge file could not be imported; enquiries are answered from the knowledge base as it is");
    }
    info!(tenant = %tenant.id, flows = %versions.join(", "), "flows reloaded; conversations under way keep their version");
    Ok(versions)
}

/// The audit entry of a reload by `actor` (`flow files` for the watcher) from `address`.
pub fn audit_entry(
    tenant: &crate::tenant::TenantId,
    actor: &str,
    actor_kind: &str,
    address: Option<String>,
    outcome: &Result<Vec<String>, crate::flow::FlowError>,
) -> crate::store::NewAudit {
    let (result, detail) = match outcome {
        Ok(versions) => ("ok", serde_json::json!({"flows": versions})),
        Err(e) => ("refused", serde_json::json!({"code": e.code(), "error": e.to_string()})),
    };
    crate::store::NewAudit {
        tenant: tenant.to_string(),
        at: crate::store::now_ms(),
        actor: actor.into(),
        actor_kind: actor_kind.into(),
        action: "flows.reload".into(),
        target: "flows".into(),
        outcome: result.into(),
        address,
        detail: detail.to_string(),
    }
}

/// Runs until the process stops; each reload it makes (or refuses) is in the audit trail, by
/// `flow files`.
pub async fn run(app: Arc<App>) {
    let watched = |tenant: &Tenant| {
        let root = tenant.flows_dir.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into());
        // The knowledge file is imported on each reload (see `App::import_knowledge_file`).
        let knowledge = std::fs::metadata(root.join(crate::knowledge::import::KNOWLEDGE_FILE))
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        (fingerprint(&tenant.flows_dir), fingerprint(&root.join("prompts")), knowledge)
    };
    let mut last: Vec<_> = app.tenants.all().iter().map(|t| watched(t)).collect();
    loop {
        tokio::time::sleep(INTERVAL).await;
        for (tenant, last) in app.tenants.all().iter().zip(last.iter_mut()) {
            let now = watched(tenant);
            if now == *last {
                continue;
            }
            *last = now;
            let outcome = reload_now(&app, tenant).await;
            if let Err(e) = &outcome {
                error!(code = e.code(), tenant = %tenant.id, error = %e, "flow edit refused; still serving the last good version");
            }
            if let Err(e) = app.store.audit(audit_entry(&tenant.id, "flow files", "system", None, &outcome)).await {
                error!(code = e.code(), error = %e, "the audit trail could not record a flow reload");
            }
        }
    }
}
