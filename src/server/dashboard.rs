//! The dashboard's figures: `GET /admin/dashboard?from=YYYY-MM-DD&to=YYYY-MM-DD&flow=<id>`
//! (permission `read`; by default the last 30 days, in the business's time zone). They are read
//! from `daily_counts`, which every turn's commit keeps up to date ([`crate::stats`]), never from
//! a scan of the turns.
//!
//! The answer: `totals` (turns, conversations, new and returning customers, failed turns, upset customers, LLM calls and
//! failures, hand-offs, ratings by star), `days` (turns and conversations per day) and, per flow,
//! journeys `started`, `ended`, ERP-`confirmed`, `handed_off`, `stuck`, `abandoned` (started and
//! neither ended nor handed off), the `conversion` from started to confirmed, and the `funnel`:
//! how many journeys reached each step, in the flow's order, and how many fewer than the step
//! before (`dropped`).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{self, Permission};
use super::problem;
use crate::pipeline::App;

/// Registers the route (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dashboard", web::get().to(dashboard));
}

#[derive(Deserialize)]
struct Range {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    flow: Option<String>,
}

async fn dashboard(app: web::Data<App>, req: HttpRequest, q: web::Query<Range>) -> HttpResponse {
    if let Err(resp) = auth::caller(&app, &req, Permission::Read).await {
        return resp;
    }
    let flows = app.flows();
    let today = jiff::Timestamp::now().to_zoned(flows.business.time_zone.clone()).date();
    let day = |given: &Option<String>, default: jiff::civil::Date| match given {
        Some(d) => d.parse::<jiff::civil::Date>().map_err(|_| d.clone()),
        None => Ok(default),
    };
    let month_ago = today.checked_sub(jiff::Span::new().days(29)).unwrap_or(today);
    let (from, to) = match (day(&q.from, month_ago), day(&q.to, today)) {
        (Ok(f), Ok(t)) if f <= t => (f.to_string(), t.to_string()),
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "server.bad_range",
                "give `from` and `to` as YYYY-MM-DD, `from` not after `to`",
            );
        }
    };
    if let Some(f) = &q.flow {
        if flows.flow(f).is_none() {
            return problem(StatusCode::BAD_REQUEST, "server.no_flow", &format!("no flow {f:?}"));
        }
    }
    let rows = match app.store.daily_counts(&from, &to).await {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    HttpResponse::Ok().json(figures(&flows, &rows, &from, &to, q.flow.as_deref()))
}

/// The dashboard's document from the summed `rows` (day, flow, metric, n) of `from`..`to`,
/// for one flow or all.
pub fn figures(
    flows: &crate::flow::FlowSet,
    rows: &[(String, String, String, i64)],
    from: &str,
    to: &str,
    only: Option<&str>,
) -> Value {
    let mut by_flow: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut days: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (day, flow, metric, n) in rows {
        *by_flow.entry(flow.as_str()).or_default().entry(metric.as_str()).or_default() += n;
        if flow.is_empty() {
            let d = days.entry(day.as_str()).or_default();
            match metric.as_str() {
                "turns" => d.0 += n,
                "conversations" => d.1 += n,
                _ => {}
            }
        }
    }
    let get = |flow: &str, metric: &str| by_flow.get(flow).and_then(|m| m.get(metric)).copied().unwrap_or(0);
    let ratings: BTreeMap<String, i64> = (1..=5).map(|n| (n.to_string(), get("", &format!("rating:{n}")))).collect();
    let handed_off: i64 = by_flow.values().filter_map(|m| m.get("handed_off")).sum();
    let mut per_flow = Vec::new();
    for flow in flows.flows.values().filter(|f| only.is_none_or(|o| o == f.id)) {
        let id = flow.id.as_str();
        let started = get(id, "started");
        let (ended, handed) = (get(id, "ended"), get(id, "handed_off"));
        let confirmed = get(id, "confirmed");
        let mut funnel = Vec::new();
        let mut previous: Option<i64> = None;
        for (i, step) in flow.steps.values().enumerate() {
            let reached = if i == 0 { started } else { get(id, &format!("step:{}", step.id)) };
            funnel.push(json!({
                "step": step.id, "title": step.title, "reached": reached,
                "dropped": previous.map(|p| (p - reached).max(0)),
            }));
            previous = Some(reached);
        }
        per_flow.push(json!({
            "flow": id, "title": flow.title, "started": started, "ended": ended, "confirmed": confirmed,
            "handed_off": handed, "stuck": get(id, "stuck"), "abandoned": (started - ended - handed).max(0),
            "conversion": if started > 0 { confirmed as f64 / started as f64 } else { 0.0 },
            "funnel": funnel,
        }));
    }
    json!({
        "from": from, "to": to, "time_zone": flows.business.time_zone_name,
        "totals": {
            "turns": get("", "turns"), "conversations": get("", "conversations"),
            "new_customers": get("", "new_customers"), "returning_customers": get("", "returning_customers"),
            "failed_turns": get("", "failed_turns"), "upset": get("", "upset"),
            "llm_calls": get("", "llm_calls"), "llm_failures": get("", "llm_failures"),
            "handed_off": handed_off, "ratings": ratings,
        },
        "days": days.iter().map(|(d, (t, c))| json!({"day": d, "turns": t, "conversations": c})).collect::<Vec<_>>(),
        "flows": per_flow,
    })
}
