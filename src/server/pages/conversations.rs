//! The conversations page: transcript search by words, number, flow and days
//! ([`crate::server::transcripts`]), each hit linked to its conversation's `explain` timeline
//! and, in the sandbox, to the inspector; and the `explain` page itself.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::layout::{esc, page, url_part};
use super::{html, viewer};
use crate::pipeline::App;
use crate::server::auth::{Permission, Principal};
use crate::server::transcripts::{Hit, LIMIT, SearchQuery, csv_answer, search};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/conversations", web::get().to(show))
        .route("/console/conversations.csv", web::get().to(csv))
        .route("/console/explain/{conversation}", web::get().to(explain));
}

async fn csv(app: web::Data<App>, req: HttpRequest, q: web::Query<SearchQuery>) -> HttpResponse {
    match viewer(&app, &req, Permission::Read).await {
        Ok(p) => csv_answer(&app, &p.tenant, &q).await,
        Err(resp) => resp,
    }
}

fn value(s: &Option<String>) -> String {
    esc(s.as_deref().unwrap_or(""))
}

fn form(tenant: &crate::pipeline::Tenant, q: &SearchQuery) -> String {
    let flows = tenant.flows();
    let options: String = flows
        .flows
        .values()
        .map(|f| {
            let sel = if q.flow.as_deref() == Some(f.id.as_str()) { " selected" } else { "" };
            format!(r#"<option value="{}"{sel}>{}</option>"#, esc(&f.id), esc(&f.title))
        })
        .collect();
    format!(
        r#"<form class="filters" method="get" action="/console/conversations" role="search" aria-label="Search transcripts">
<label for="text">Words<input id="text" name="text" type="search" value="{text}"></label>
<label for="number">Customer number<input id="number" name="number" inputmode="numeric" value="{number}"></label>
<label for="flow">Flow<select id="flow" name="flow"><option value="">Any flow</option>{options}</select></label>
<label for="from">From<input id="from" name="from" type="date" value="{from}"></label>
<label for="to">To<input id="to" name="to" type="date" value="{to}"></label>
<button type="submit">Search</button>
</form>"#,
        text = value(&q.text),
        number = value(&q.number),
        from = value(&q.from),
        to = value(&q.to),
    )
}

fn query_string(q: &SearchQuery) -> String {
    [("text", &q.text), ("number", &q.number), ("flow", &q.flow), ("from", &q.from), ("to", &q.to)]
        .iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| format!("{k}={}", url_part(v))))
        .collect::<Vec<_>>()
        .join("&amp;")
}

fn row(h: &Hit, inspector: bool) -> String {
    let replied: String = h.replied.iter().map(|r| format!("<p>{}</p>", esc(r))).collect();
    let mut links = format!(
        r#"<a href="/console/explain/{}">Explain<span class="skip"> the conversation of +{}</span></a>"#,
        url_part(&h.conversation_id),
        esc(&h.customer)
    );
    if inspector {
        links.push_str(&format!(r#" · <a href="/inspector?customer={}">Inspector</a>"#, url_part(&h.customer)));
    }
    format!(
        r#"<tr><td>{at}</td><td>+{customer}</td><td>{flow}</td><td>{step}</td><td>{said}</td><td>{replied}</td><td>{links}</td></tr>"#,
        at = esc(&h.at),
        customer = esc(&h.customer),
        flow = esc(h.flow.as_deref().unwrap_or("—")),
        step = esc(&h.step),
        said = esc(&h.said),
    )
}

async fn show(app: web::Data<App>, req: HttpRequest, q: web::Query<SearchQuery>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let mut body = form(&p.tenant, &q);
    let searched =
        [&q.text, &q.number, &q.flow, &q.from, &q.to].iter().any(|v| v.as_deref().is_some_and(|v| !v.is_empty()));
    match search(&app, &p.tenant, &q).await {
        Ok(hits) => {
            let inspector = app.is_sandbox() && p.allows(Permission::Act);
            let rows: String = hits.iter().map(|h| row(h, inspector)).collect();
            let what = if searched { "matching turns" } else { "latest turns" };
            body.push_str(&format!(
                r#"<h2 id="results">{n} {what}{more}</h2>
<p><a href="/console/conversations.csv?{qs}">Download these as CSV</a></p>
<table><caption>Turns, newest first</caption>
<thead><tr><th scope="col">When</th><th scope="col">Customer</th><th scope="col">Flow</th><th scope="col">Step after</th><th scope="col">Customer said</th><th scope="col">Replied</th><th scope="col">Open</th></tr></thead>
<tbody>{rows}</tbody></table>"#,
                n = hits.len(),
                more = if hits.len() as i64 >= LIMIT { " (the first ones only: narrow the search)" } else { "" },
                qs = query_string(&q),
            ));
        }
        Err(resp) => {
            let why = if resp.status() == StatusCode::BAD_REQUEST {
                "That search could not be read: give days as dates, a number as digits, at most 200 characters of words."
            } else {
                "The database could not be searched just now; try again in a moment."
            };
            body.push_str(&format!(r#"<p role="alert" class="alert">{why}</p>"#));
        }
    }
    html(StatusCode::OK, page("Conversations", Some(&p), "/console/conversations", &body))
}

async fn explain(app: web::Data<App>, req: HttpRequest, key: web::Path<String>) -> HttpResponse {
    let p: Principal = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let body = match crate::explain::build(&app.store, &p.tenant.id, &key).await {
        Ok(timelines) if timelines.is_empty() => {
            return html(
                StatusCode::NOT_FOUND,
                page("Conversation", Some(&p), "", r#"<p role="alert" class="alert">No conversation has that id or number.</p>"#),
            );
        }
        Ok(timelines) => timelines
            .iter()
            .map(|t| {
                let inspector = if app.is_sandbox() && p.allows(Permission::Act) {
                    format!(r#" · <a href="/inspector?customer={}">Open in the inspector</a>"#, url_part(&t.customer))
                } else {
                    String::new()
                };
                format!(
                    r#"<h2>+{c}</h2><p><a href="/console/conversations?number={cu}">All turns of +{c}</a>{inspector}</p><pre>{text}</pre>"#,
                    c = esc(&t.customer),
                    cu = url_part(&t.customer),
                    text = esc(&crate::explain::render(t)),
                )
            })
            .collect::<String>(),
        Err(e) => format!(r#"<p role="alert" class="alert">The conversation could not be read: {}</p>"#, esc(&e.to_string())),
    };
    html(StatusCode::OK, page("Conversation", Some(&p), "", &body))
}
