//! The review of replies to support tickets: each pending draft with the ticket, what the
//! customer wrote and the knowledge it was drafted from, a text box to edit it, and buttons to
//! approve (send it on WhatsApp and post it on the ticket) or reject it with a reason (the
//! knowledge it used is flagged). Reading needs `read`; reviewing needs `act`. Reviews go
//! through the same functions as the admin API, so they are checked and audited alike.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::layout::{esc, page};
use super::{html, see_other, viewer};
use crate::pipeline::App;
use crate::server::auth::{Permission, Principal};
use crate::server::replies::{approve_draft, reject_draft};
use crate::store::{DraftRow, DraftStatus, Reviewed};

/// The path of the page.
pub const PATH: &str = "/console/replies";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(index))
        .route("/console/replies/{id}/approve", web::post().to(approve))
        .route("/console/replies/{id}/reject", web::post().to(reject));
}

#[derive(Deserialize)]
struct IndexQuery {
    #[serde(default)]
    done: Option<String>,
}

#[derive(Deserialize)]
struct ApproveForm {
    text: String,
}

#[derive(Deserialize)]
struct RejectForm {
    reason: String,
}

/// The passages a draft names, as "title (score)".
fn passages(d: &DraftRow) -> String {
    let list: Vec<serde_json::Value> = serde_json::from_str(&d.passages).unwrap_or_default();
    if list.is_empty() {
        return "nothing in the knowledge base matched".into();
    }
    list.iter()
        .map(|p| format!("{} ({})", p["title"].as_str().unwrap_or("?"), p["score"]))
        .collect::<Vec<_>>()
        .join("; ")
}

fn pending(d: &DraftRow, can_act: bool) -> String {
    let review = if can_act {
        format!(
            r#"<form class="stack wide" method="post" action="/console/replies/{id}/approve">
<label for="text-{id}">Reply to send (edit it as needed)<textarea id="text-{id}" name="text" required rows="7">{text}</textarea></label>
<button type="submit">Approve and send</button></form>
<form class="stack wide" method="post" action="/console/replies/{id}/reject">
<label for="reason-{id}">Why is this draft wrong?<input id="reason-{id}" name="reason" required></label>
<button type="submit">Reject</button></form>"#,
            id = d.id,
            text = esc(&d.draft)
        )
    } else {
        format!("<pre>{}</pre>", esc(&d.draft))
    };
    format!(
        r#"<section aria-labelledby="draft-{id}"><h2 id="draft-{id}">{ticket}: {subject}</h2>
<p>From +{customer}. <q>{details}</q></p>
<p class="muted">Drafted from: {passages} ({by})</p>{review}</section>"#,
        id = d.id,
        ticket = esc(&d.ticket),
        subject = esc(&d.subject),
        customer = esc(&d.customer),
        details = esc(&d.details),
        passages = esc(&passages(d)),
        by = match d.worded_by.as_str() {
            "llm" => "worded by the LLM, checked against its sources",
            "knowledge" => "the best passage as written",
            _ => "no answer found",
        },
    )
}

async fn index(app: web::Data<App>, req: HttpRequest, q: web::Query<IndexQuery>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let mut body = String::new();
    if let Some(done) = q.done.as_deref().filter(|d| !d.is_empty()) {
        body.push_str(&format!(r#"<p role="status">{}</p>"#, esc(done)));
    }
    if p.tenant.flows().tickets.is_none() {
        body.push_str(
            "<p>No support tickets are read: add a <code>tickets</code> section to <code>flows/erp.yaml</code>.</p>",
        );
    }
    match app.store.drafts(&p.tenant.id, Some(DraftStatus::Pending), crate::server::replies::MAX_LISTED).await {
        Ok(rows) if rows.is_empty() => body.push_str("<p>No draft is waiting for review.</p>"),
        Ok(rows) => {
            body.push_str(&format!(
                "<p>{} drafts wait for review; nothing is sent until one is approved.</p>",
                rows.len()
            ));
            let can_act = p.allows(Permission::Act);
            for d in &rows {
                body.push_str(&pending(d, can_act));
            }
        }
        Err(e) => body.push_str(&format!(r#"<p role="alert" class="alert">{}</p>"#, esc(&e.to_string()))),
    }
    if let Ok(all) = app.store.drafts(&p.tenant.id, None, 50).await {
        let rows: String = all
            .iter()
            .filter(|d| d.status != DraftStatus::Pending.as_str())
            .map(|d| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&d.ticket),
                    esc(&d.subject),
                    esc(&d.status),
                    esc(d.reviewed_by.as_deref().unwrap_or("")),
                    esc(d.reason.as_deref().or(d.final_text.as_deref()).unwrap_or(""))
                )
            })
            .collect();
        if !rows.is_empty() {
            body.push_str(&format!(
                r#"<table><caption>Reviewed lately</caption><thead><tr><th scope="col">Ticket</th><th scope="col">Subject</th><th scope="col">Status</th><th scope="col">By</th><th scope="col">Sent, or why not</th></tr></thead><tbody>{rows}</tbody></table>"#
            ));
        }
    }
    html(StatusCode::OK, page("Replies to tickets", Some(&p), PATH, &body))
}

fn after(p: &Principal, outcome: Result<Reviewed, crate::pipeline::tickets::TicketError>, done: &str) -> HttpResponse {
    let message = match outcome {
        Ok(Reviewed::Done(d)) => {
            return see_other(&format!("{PATH}?done={}", super::layout::url_part(&format!("{done} {}.", d.ticket))));
        }
        Ok(Reviewed::NotFound) => "No draft with that id.".to_string(),
        Ok(Reviewed::Already(d)) => format!(
            "Draft for {} was {} by {} already; nothing was changed or sent.",
            d.ticket,
            d.status,
            d.reviewed_by.as_deref().unwrap_or("someone")
        ),
        Err(e) => format!("{e} ({})", e.code()),
    };
    let body = format!(r#"<p role="alert" class="alert">{}</p><p><a href="{PATH}">Back</a></p>"#, esc(&message));
    html(StatusCode::CONFLICT, page("Not done", Some(p), PATH, &body))
}

async fn approve(
    app: web::Data<App>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<ApproveForm>,
) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Act).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let outcome = approve_draft(&app, &p, *id, Some(&form.text)).await;
    after(&p, outcome, "Sent the reply to")
}

async fn reject(
    app: web::Data<App>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<RejectForm>,
) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Act).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let outcome = reject_draft(&app, &p, *id, &form.reason).await;
    after(&p, outcome, "Rejected the draft for")
}
