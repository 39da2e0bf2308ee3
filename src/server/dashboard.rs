//! The dashboard's figures as JSON and CSV:
//! `GET /admin/dashboard?from=YYYY-MM-DD&to=YYYY-MM-DD&flow=<id>` and `GET /admin/dashboard.csv`
//! with the same query (permission `read`; by default the last 30 days, in the business's time
//! zone). They are read from `daily_counts`, which every turn's commit keeps up to date
//! ([`crate::stats`]), never from a scan of the turns; what they mean is in
//! [`crate::stats::figures`]. The console's dashboard page shows the same values.
//!
//! The CSV holds the counts themselves, one row per day, flow and metric
//! (`day,flow,metric,count`; flow empty for the conversation as a whole), so that a reporting
//! tool can pivot them as it likes; with `flow`, only that flow's rows.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::{self, Permission};
use super::problem;
use crate::pipeline::{App, Tenant};
use crate::stats::figures::{self, CountRow, Dashboard};

/// Registers the routes (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dashboard", web::get().to(json)).route("/dashboard.csv", web::get().to(csv));
}

/// The query of the dashboard's routes and page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD` (29 days before `to` by default).
    #[serde(default)]
    pub from: Option<String>,
    /// Last day (today in the business's time zone by default).
    #[serde(default)]
    pub to: Option<String>,
    /// One flow's id, or all flows (absent or empty).
    #[serde(default)]
    pub flow: Option<String>,
}

/// A checked range: days in order, a known flow.
#[derive(Debug, Clone)]
pub struct Range {
    /// `YYYY-MM-DD`.
    pub from: String,
    /// `YYYY-MM-DD`, not before `from`.
    pub to: String,
    /// A flow of the flow set.
    pub flow: Option<String>,
}

/// Checks `q` against the flow set. Errors (400, `server.bad_range` or `server.no_flow`) say
/// what to give instead.
pub fn range(tenant: &Tenant, q: &RangeQuery) -> Result<Range, HttpResponse> {
    let flows = tenant.flows();
    let today = jiff::Timestamp::now().to_zoned(flows.business.time_zone.clone()).date();
    let day = |given: &Option<String>| given.as_deref().filter(|d| !d.is_empty()).map(str::parse::<jiff::civil::Date>);
    let to = match day(&q.to) {
        None => Ok(today),
        Some(d) => d,
    };
    let from = match (day(&q.from), &to) {
        (None, Ok(t)) => Ok(t.checked_sub(jiff::Span::new().days(29)).unwrap_or(*t)),
        (None, Err(_)) => Ok(today),
        (Some(d), _) => d,
    };
    let (from, to) = match (from, to) {
        (Ok(f), Ok(t)) if f <= t => (f.to_string(), t.to_string()),
        _ => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "server.bad_range",
                "give `from` and `to` as YYYY-MM-DD, `from` not after `to`",
            ));
        }
    };
    let flow = q.flow.clone().filter(|f| !f.is_empty());
    if let Some(f) = &flow {
        if flows.flow(f).is_none() {
            return Err(problem(StatusCode::BAD_REQUEST, "server.no_flow", &format!("no flow {f:?}")));
        }
    }
    Ok(Range { from, to, flow })
}

/// The range's summed counts and the dashboard made from them (with the dead letters waiting
/// now). Errors: 503 when the database cannot be read.
pub async fn load(app: &App, tenant: &Tenant, r: &Range) -> Result<(Dashboard, Vec<CountRow>), HttpResponse> {
    let unavailable = |e: crate::store::StoreError| problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string());
    let rows = app.store.daily_counts(&tenant.id, &r.from, &r.to).await.map_err(unavailable)?;
    let mut d = figures::dashboard(
        &tenant.flows(),
        &rows,
        &r.from,
        &r.to,
        r.flow.as_deref(),
        app.settings.llm_price_per_million_tokens,
    );
    d.totals.dead_letters = app.store.dead_letter_count().await.map_err(unavailable)?;
    Ok((d, rows))
}

async fn json(app: web::Data<App>, req: HttpRequest, q: web::Query<RangeQuery>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match range(&p.tenant, &q) {
        Ok(r) => match load(&app, &p.tenant, &r).await {
            Ok((d, _)) => HttpResponse::Ok().json(d),
            Err(resp) => resp,
        },
        Err(resp) => resp,
    }
}

async fn csv(app: web::Data<App>, req: HttpRequest, q: web::Query<RangeQuery>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    csv_answer(&app, &p.tenant, &q).await
}

/// The CSV download of the range's counts (also served to the console's session).
pub async fn csv_answer(app: &App, tenant: &Tenant, q: &RangeQuery) -> HttpResponse {
    let r = match range(tenant, q) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let rows = match load(app, tenant, &r).await {
        Ok((_, rows)) => rows,
        Err(resp) => return resp,
    };
    let kept = rows
        .iter()
        .filter(|(_, flow, _, _)| r.flow.as_ref().is_none_or(|f| f == flow))
        .map(|(day, flow, metric, n)| vec![day.clone(), flow.clone(), metric.clone(), n.to_string()]);
    let filename = format!("carewell-counts-{}-{}.csv", r.from, r.to);
    super::csv_download(&filename, &["day", "flow", "metric", "count"], kept)
}
