//! The audit trail page: who changed what, when and from where, filtered by person and action
//! (newest first, the latest 200).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::layout::{esc, page};
use super::{html, viewer};
use crate::pipeline::App;
use crate::server::auth::Permission;
use crate::store::AuditFilter;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/audit", web::get().to(show));
}

#[derive(Deserialize)]
struct Query {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

async fn show(app: web::Data<App>, req: HttpRequest, q: web::Query<Query>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Audit).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let given = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let filter = AuditFilter { actor: given(&q.actor), action: given(&q.action), ..AuditFilter::default() };
    let zone = p.tenant.flows().business.time_zone.clone();
    let mut body = format!(
        r#"<form class="filters" method="get" action="/console/audit" aria-label="Filter the audit trail">
<label for="actor">Who<input id="actor" name="actor" value="{}"></label>
<label for="action">Action (or a prefix ending in a dot, e.g. <code>conversation.</code>)<input id="action" name="action" value="{}"></label>
<button type="submit">Filter</button>
</form>"#,
        esc(filter.actor.as_deref().unwrap_or("")),
        esc(filter.action.as_deref().unwrap_or("")),
    );
    match app.store.audit_entries(&p.tenant.id, &filter, 200).await {
        Ok(rows) => {
            let rows: String = rows
                .iter()
                .map(|r| {
                    let at = jiff::Timestamp::from_millisecond(r.at)
                        .map(|t| t.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&at),
                        esc(&r.actor),
                        esc(&r.action),
                        esc(&r.target),
                        esc(&r.outcome),
                        esc(r.address.as_deref().unwrap_or("—")),
                        esc(&r.detail),
                    )
                })
                .collect();
            body.push_str(&format!(
                r#"<table><caption>Changes, newest first (at most 200)</caption>
<thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">On</th><th scope="col">Outcome</th><th scope="col">From</th><th scope="col">Detail</th></tr></thead>
<tbody>{rows}</tbody></table>"#
            ));
        }
        Err(e) => body.push_str(&format!(
            r#"<p role="alert" class="alert">The audit trail could not be read: {}</p>"#,
            esc(&e.to_string())
        )),
    }
    html(StatusCode::OK, page("Audit trail", Some(&p), "/console/audit", &body))
}
