//! Transcript search: `GET /admin/transcripts?text=&number=&flow=&from=YYYY-MM-DD&to=YYYY-MM-DD`
//! (permission `read`) answers the matching turns, newest first, at most [`LIMIT`]; the same
//! query on `/admin/transcripts.csv` downloads them. Days are in the business's time zone; with
//! no days given, every day. The console's conversations page shows the same hits, with links
//! to each conversation's inspector view and `explain` timeline.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::{self, Permission};
use super::problem;
use crate::pipeline::{App, Tenant};
use crate::record::TurnRecord;
use crate::store::TurnSearch;

/// The most turns one search answers.
pub const LIMIT: i64 = 200;

/// Registers the routes (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/transcripts", web::get().to(json)).route("/transcripts.csv", web::get().to(csv));
}

/// The search's query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchQuery {
    /// Words the customer wrote or the bot replied, any case.
    #[serde(default)]
    pub text: Option<String>,
    /// Digits of the customer's number.
    #[serde(default)]
    pub number: Option<String>,
    /// A flow id.
    #[serde(default)]
    pub flow: Option<String>,
    /// First day, `YYYY-MM-DD`.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day (included).
    #[serde(default)]
    pub to: Option<String>,
}

/// One matching turn.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The conversation (`<phone_number_id>:<customer>`).
    pub conversation_id: String,
    /// The customer's number.
    pub customer: String,
    /// When the turn was committed, RFC 3339 in the business's time zone.
    pub at: String,
    /// The turn's flow, if it ran in one.
    pub flow: Option<String>,
    /// The step after the turn.
    pub step: String,
    /// What came in, in words (`text "…"`, `pressed "…"`…).
    pub said: String,
    /// The replies' texts.
    pub replied: Vec<String>,
    /// `ok` or the failure's code.
    pub outcome: String,
}

fn bad(why: &str) -> HttpResponse {
    problem(StatusCode::BAD_REQUEST, "server.bad_search", why)
}

fn blank(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// The start of `day` (`YYYY-MM-DD`) in `zone`, Unix ms.
fn day_start(day: &str, zone: &jiff::tz::TimeZone, days_after: i64) -> Result<i64, HttpResponse> {
    let date: jiff::civil::Date = day.parse().map_err(|_| bad("give days as YYYY-MM-DD"))?;
    let date = date.checked_add(jiff::Span::new().days(days_after)).map_err(|_| bad("that day is out of range"))?;
    let at = date.to_zoned(zone.clone()).map_err(|_| bad("that day is out of range"))?;
    Ok(at.timestamp().as_millisecond())
}

/// Runs the search `q`. Errors: 400 (`server.bad_search`, `server.no_flow`) for a query that
/// cannot be read, 503 when the database cannot be.
pub async fn search(app: &App, tenant: &Tenant, q: &SearchQuery) -> Result<Vec<Hit>, HttpResponse> {
    let flows = tenant.flows();
    let zone = flows.business.time_zone.clone();
    let flow = blank(&q.flow);
    if let Some(f) = &flow {
        if flows.flow(f).is_none() {
            return Err(problem(StatusCode::BAD_REQUEST, "server.no_flow", &format!("no flow {f:?}")));
        }
    }
    let number = blank(&q.number).map(|n| n.chars().filter(char::is_ascii_digit).collect::<String>());
    if number.as_deref() == Some("") {
        return Err(bad("a number is digits"));
    }
    let text = blank(&q.text);
    if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(bad("search for at most 200 characters"));
    }
    let since = blank(&q.from).map(|d| day_start(&d, &zone, 0)).transpose()?;
    let until = blank(&q.to).map(|d| day_start(&d, &zone, 1)).transpose()?;
    let search = TurnSearch { text: text.clone(), number, flow, since, until };
    let rows = app
        .store
        .search_turns(&tenant.id, &search, LIMIT)
        .await
        .map_err(|e| problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()))?;
    let wanted = text.map(|t| t.to_lowercase());
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let record = TurnRecord::parse(&row.record).ok()?;
            let said = crate::explain::describe(&record.event);
            let replied: Vec<String> = record.replies.iter().map(|r| r.body().to_string()).collect();
            // The record matched; the words must too (not only a field's name).
            let words_match =
                |w: &str| said.to_lowercase().contains(w) || replied.iter().any(|r| r.to_lowercase().contains(w));
            if wanted.as_deref().is_some_and(|w| !words_match(w)) {
                return None;
            }
            let at = jiff::Timestamp::from_millisecond(row.created_at)
                .map(|t| t.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M:%S %:z").to_string())
                .unwrap_or_default();
            Some(Hit {
                customer: record.event.customer.clone(),
                conversation_id: row.conversation_id,
                at,
                flow: row.flow,
                step: row.step_after,
                said,
                replied,
                outcome: row.outcome,
            })
        })
        .collect())
}

async fn json(app: web::Data<App>, req: HttpRequest, q: web::Query<SearchQuery>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match search(&app, &p.tenant, &q).await {
        Ok(hits) => HttpResponse::Ok().json(serde_json::json!({"hits": hits, "limit": LIMIT})),
        Err(resp) => resp,
    }
}

async fn csv(app: web::Data<App>, req: HttpRequest, q: web::Query<SearchQuery>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    csv_answer(&app, &p.tenant, &q).await
}

/// The CSV download of a search (also served to the console's session): one row per turn,
/// `at,customer,flow,step,said,replied,outcome`, replies joined by a blank line.
pub async fn csv_answer(app: &App, tenant: &Tenant, q: &SearchQuery) -> HttpResponse {
    let hits = match search(app, tenant, q).await {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let rows = hits.iter().map(|h| {
        let flow = h.flow.clone().unwrap_or_default();
        vec![
            h.at.clone(),
            h.customer.clone(),
            flow,
            h.step.clone(),
            h.said.clone(),
            h.replied.join("\n\n"),
            h.outcome.clone(),
        ]
    });
    super::csv_download(
        "carewell-transcripts.csv",
        &["at", "customer", "flow", "step", "said", "replied", "outcome"],
        rows,
    )
}
