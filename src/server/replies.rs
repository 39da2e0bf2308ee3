//! Replies to support tickets, reviewed before sending (reads need `read`; approving and
//! rejecting need `act`, as a reply reaches the customer). Every review is in the audit trail.
//!
//! - `GET /admin/replies?status=pending|approved|rejected|all`: drafts, newest first
//!   (`pending` by default).
//! - `GET /admin/replies/{id}`: one draft.
//! - `POST /admin/replies/{id}/approve`: [`Approve`]; sends the draft (or `text`, the reviewer's
//!   edit) to the customer and posts it on the ticket. 200 with the draft.
//! - `POST /admin/replies/{id}/reject`: [`Reject`]; nothing is sent, and the knowledge the draft
//!   used is flagged for review with the reason. 200 with the draft.
//! - `POST /admin/replies/poll`: reads the ERP's tickets now instead of at the next poll; 200
//!   with what it did ([`crate::pipeline::tickets::Polled`]).
//!
//! Errors: 400 `server.bad_status`, `tickets.empty_reply`, `tickets.no_reason`; 404
//! `tickets.not_found`; 409 `tickets.reviewed` (someone reviewed it first: the body says how);
//! 409 `tickets.not_configured` (no `tickets` in `flows/erp.yaml`); 502 for the ERP's errors;
//! 503 for the database's.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, Permission, Principal};
use super::problem;
use crate::pipeline::App;
use crate::pipeline::tickets::{self, TicketError};
use crate::store::{DraftRow, DraftStatus, Reviewed};

/// The most drafts listed.
pub const MAX_LISTED: i64 = 500;

/// Registers the routes (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/replies", web::get().to(list))
        .route("/replies/poll", web::post().to(poll))
        .route("/replies/{id}", web::get().to(show))
        .route("/replies/{id}/approve", web::post().to(approve))
        .route("/replies/{id}/reject", web::post().to(reject));
}

/// An approval.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The reply as it is to be sent, when the reviewer edited the draft.
    #[serde(default)]
    pub text: Option<String>,
}

/// A rejection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// What is wrong with the draft (shown beside the flagged knowledge).
    pub reason: String,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
}

/// The HTTP answer for a ticket error.
pub fn error_response(e: &TicketError) -> HttpResponse {
    let status = match e {
        TicketError::Erp(_) => StatusCode::BAD_GATEWAY,
        TicketError::Store(_) | TicketError::Knowledge(_) => StatusCode::SERVICE_UNAVAILABLE,
        TicketError::NotConfigured => StatusCode::CONFLICT,
        TicketError::EmptyReply | TicketError::NoReason => StatusCode::BAD_REQUEST,
    };
    problem(status, e.code(), &e.to_string())
}

/// The HTTP answer for a review: the draft, 404 or 409 as [`Reviewed`] says.
pub fn review_response(r: &Reviewed) -> HttpResponse {
    match r {
        Reviewed::Done(d) => HttpResponse::Ok().json(d),
        Reviewed::NotFound => problem(StatusCode::NOT_FOUND, "tickets.not_found", "no draft with that id"),
        Reviewed::Already(d) => HttpResponse::Conflict().json(json!({
            "error": {
                "code": "tickets.reviewed",
                "message": format!(
                    "draft {} was {} by {} already; nothing was changed or sent",
                    d.id,
                    d.status,
                    d.reviewed_by.as_deref().unwrap_or("someone")
                ),
            },
            "draft": d,
        })),
    }
}

async fn list(app: web::Data<App>, req: HttpRequest, q: web::Query<ListQuery>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let status = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s => match DraftStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "server.bad_status",
                    "status must be pending, approved, rejected or all",
                );
            }
        },
    };
    match app.store.drafts(&p.tenant.id, status, MAX_LISTED).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"drafts": rows})),
        Err(e) => error_response(&e.into()),
    }
}

async fn show(app: web::Data<App>, req: HttpRequest, id: web::Path<i64>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match app.store.draft(&p.tenant.id, *id).await {
        Ok(Some(d)) => HttpResponse::Ok().json(d),
        Ok(None) => review_response(&Reviewed::NotFound),
        Err(e) => error_response(&e.into()),
    }
}

async fn approve(app: web::Data<App>, req: HttpRequest, id: web::Path<i64>, body: web::Bytes) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Act).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    // No body, `null` and `{}` all approve the draft as it is.
    let input: Approve = if body.iter().all(u8::is_ascii_whitespace) {
        Approve::default()
    } else {
        match serde_json::from_slice::<Option<Approve>>(&body) {
            Ok(a) => a.unwrap_or_default(),
            Err(e) => {
                return problem(StatusCode::BAD_REQUEST, "server.bad_body", &format!("expected {{\"text\"?}}: {e}"));
            }
        }
    };
    match approve_draft(&app, &p, *id, input.text.as_deref()).await {
        Ok(r) => review_response(&r),
        Err(e) => error_response(&e),
    }
}

/// Approves draft `id` (as `text`, when edited) for `p`, and records it in the audit trail.
pub async fn approve_draft(app: &App, p: &Principal, id: i64, text: Option<&str>) -> Result<Reviewed, TicketError> {
    let reviewed = tickets::approve(app, &p.tenant, id, text, &p.name()).await?;
    if let Reviewed::Done(d) = &reviewed {
        let edited = d.final_text.as_deref() != Some(d.draft.as_str());
        audit(app, p, "reply.approve", d, json!({"ticket": d.ticket, "edited": edited})).await;
    }
    Ok(reviewed)
}

async fn reject(app: web::Data<App>, req: HttpRequest, id: web::Path<i64>, body: web::Json<Reject>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Act).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match reject_draft(&app, &p, *id, &body.reason).await {
        Ok(r) => review_response(&r),
        Err(e) => error_response(&e),
    }
}

/// Rejects draft `id` with `reason` for `p`, and records it in the audit trail.
pub async fn reject_draft(app: &App, p: &Principal, id: i64, reason: &str) -> Result<Reviewed, TicketError> {
    let reviewed = tickets::reject(app, &p.tenant, id, reason, &p.name()).await?;
    if let Reviewed::Done(d) = &reviewed {
        audit(app, p, "reply.reject", d, json!({"ticket": d.ticket, "reason": reason})).await;
    }
    Ok(reviewed)
}

async fn poll(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Act).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match tickets::poll(&app, &p.tenant).await {
        Ok(polled) => HttpResponse::Ok().json(polled),
        Err(e) => error_response(&e),
    }
}

async fn audit(app: &App, p: &Principal, action: &str, d: &DraftRow, detail: serde_json::Value) {
    auth::record(app, p, action, &format!("draft:{}", d.id), "ok", detail).await;
}
