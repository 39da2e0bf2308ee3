//! The dashboard page: the figures of [`crate::stats::figures`] for a date range and flow, as
//! cards, tables and SVG charts, with the counts as a CSV download.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::layout::{esc, page, url_part};
use super::{html, svg, viewer};
use crate::pipeline::App;
use crate::server::auth::Permission;
use crate::server::dashboard::{Range, RangeQuery, csv_answer, load, range};
use crate::stats::figures::{Dashboard, FlowFigures};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(show)).route("/console/dashboard.csv", web::get().to(csv));
}

async fn csv(app: web::Data<App>, req: HttpRequest, q: web::Query<RangeQuery>) -> HttpResponse {
    match viewer(&app, &req, Permission::Read).await {
        Ok(p) => csv_answer(&app, &p.tenant, &q).await,
        Err(resp) => resp,
    }
}

async fn show(app: web::Data<App>, req: HttpRequest, q: web::Query<RangeQuery>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let (r, problem) = match range(&p.tenant, &q) {
        Ok(r) => (r, None),
        Err(_) => (
            range(&p.tenant, &RangeQuery::default()).unwrap_or(Range {
                from: String::new(),
                to: String::new(),
                flow: None,
            }),
            Some("Those dates or that flow could not be read; showing the last 30 days instead."),
        ),
    };
    let d = match load(&app, &p.tenant, &r).await {
        Ok((d, _)) => d,
        Err(resp) => return resp,
    };
    let flows = p.tenant.flows();
    let options: Vec<(String, String)> = flows.flows.values().map(|f| (f.id.clone(), f.title.clone())).collect();
    let mut body = filters(&r, &options);
    if let Some(m) = problem {
        body.push_str(&format!(r#"<p role="alert" class="alert">{m}</p>"#));
    }
    body.push_str(&figures(&d));
    html(StatusCode::OK, page("Dashboard", Some(&p), "/console", &body))
}

fn filters(r: &Range, flows: &[(String, String)]) -> String {
    let options: String = flows
        .iter()
        .map(|(id, title)| {
            let sel = if r.flow.as_deref() == Some(id) { " selected" } else { "" };
            format!(r#"<option value="{}"{sel}>{}</option>"#, esc(id), esc(title))
        })
        .collect();
    let query = format!(
        "from={}&amp;to={}&amp;flow={}",
        url_part(&r.from),
        url_part(&r.to),
        url_part(r.flow.as_deref().unwrap_or(""))
    );
    format!(
        r#"<form class="filters" method="get" action="/console" aria-label="Date range and flow">
<label for="from">From<input id="from" name="from" type="date" value="{from}"></label>
<label for="to">To<input id="to" name="to" type="date" value="{to}"></label>
<label for="flow">Flow<select id="flow" name="flow"><option value="">All flows</option>{options}</select></label>
<button type="submit">Show</button>
<a href="/console/dashboard.csv?{query}">Download the counts (CSV)</a>
</form>"#,
        from = esc(&r.from),
        to = esc(&r.to),
    )
}

fn card(label: &str, value: &str) -> String {
    format!("<div><dt>{}</dt><dd>{}</dd></div>", esc(label), esc(value))
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// `seconds` as "4 min 10 s", "1 h 5 min", "2 d 3 h".
fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min {} s", s / 60, s % 60),
        s if s < 86_400 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

fn figures(d: &Dashboard) -> String {
    let t = &d.totals;
    let mut out = format!(
        r#"<p class="muted">{} to {}, days in {}.</p>
<h2 id="customers">Customers</h2>
<dl class="cards">{}{}{}{}{}</dl>"#,
        esc(&d.from),
        esc(&d.to),
        esc(&d.time_zone),
        card("Conversations begun", &t.conversations.to_string()),
        card("New customers", &t.new_customers.to_string()),
        card("Returning customers", &t.returning_customers.to_string()),
        card("Messages handled", &t.turns.to_string()),
        card("Failed turns", &t.failed_turns.to_string()),
    );
    let per_day: Vec<(String, i64)> = d.days.iter().map(|x| (x.day.clone(), x.conversations)).collect();
    out.push_str(&svg::columns(
        "per-day",
        "Conversations begun per day",
        "One bar per day of the range that had any message; the table below gives the figures.",
        &per_day,
    ));
    let rows: String = d
        .days
        .iter()
        .map(|x| {
            format!(
                r#"<tr><th scope="row">{}</th><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                esc(&x.day),
                x.conversations,
                x.turns,
                x.started,
                x.confirmed
            )
        })
        .collect();
    out.push_str(&format!(
        r#"<details><summary>Figures per day</summary><table><caption>Per day</caption>
<thead><tr><th scope="col">Day</th><th scope="col" class="n">Conversations</th><th scope="col" class="n">Messages</th><th scope="col" class="n">Journeys started</th><th scope="col" class="n">Confirmed</th></tr></thead>
<tbody>{rows}</tbody></table></details>"#
    ));
    out.push_str(&journeys(&d.flows));
    for f in d.flows.iter().filter(|f| f.started > 0 || d.flow.is_some()) {
        out.push_str(&funnel(f));
    }
    out.push_str(&format!(
        r#"<h2 id="care">Care</h2><dl class="cards">{}{}{}{}{}</dl>
<p class="muted">Stuck: times the stuck-state detector stepped in, per journey started. Upset: upset customers acknowledged, per conversation begun or returning. Dead letters wait in the outbox for an operator (<code>GET /admin/outbox/dead</code>).</p>"#,
        card("Stuck rate", &percent(t.stuck_rate)),
        card("Upset rate", &percent(t.upset_rate)),
        card("Handed to a person", &t.handed_off.to_string()),
        card("Upset customers", &t.upset.to_string()),
        card("Dead letters now", &t.dead_letters.to_string()),
    ));
    out.push_str(&format!(
        r#"<h2 id="questions">Questions</h2><dl class="cards">{}{}{}{}{}</dl>
<p class="muted">Questions read against the knowledge base; those not known are flagged for review on the <a href="/console/knowledge/review">Flagged questions</a> page. Worded: answers the language model rephrased from the knowledge base and that passed its checks.</p>"#,
        card("Questions", &t.questions.to_string()),
        card("Answered", &t.answered.to_string()),
        card("Answer rate", &percent(t.answer_rate)),
        card("Not known", &t.not_known.to_string()),
        card("Worded", &t.worded.to_string()),
    ));
    let cost = t.llm_cost.map_or_else(|| "price not set".to_string(), |c| format!("{c:.2}"));
    out.push_str(&format!(
        r#"<h2 id="llm">Language model</h2><dl class="cards">{}{}{}{}</dl>
<p class="muted">Cost is the tokens at <code>LLM_PRICE_PER_MILLION_TOKENS</code>, in the currency of the provider's bill.</p>"#,
        card("Calls", &t.llm_calls.to_string()),
        card("Failures", &t.llm_failures.to_string()),
        card("Tokens", &t.llm_tokens.to_string()),
        card("Cost", &cost),
    ));
    let ratings: Vec<(String, i64)> = t
        .ratings
        .iter()
        .rev()
        .map(|(stars, n)| (format!("{stars} star{}", if stars == "1" { "" } else { "s" }), *n))
        .collect();
    let mean = t.rating_mean.map_or_else(|| "no ratings yet".to_string(), |m| format!("mean {m:.2} of 5"));
    out.push_str(&format!(
        r#"<h2 id="ratings">Ratings</h2><p>{} ratings, {mean}.</p>"#,
        t.ratings.values().sum::<i64>()
    ));
    out.push_str(&svg::bars(
        "ratings-chart",
        "Ratings after visits",
        "How many visits got each rating, 5 stars first.",
        &ratings,
    ));
    out
}

fn journeys(flows: &[FlowFigures]) -> String {
    let rows: String = flows
        .iter()
        .map(|f| {
            format!(
                r#"<tr><th scope="row">{}</th><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                esc(&f.title),
                f.started,
                f.ended,
                f.confirmed,
                f.handed_off,
                f.abandoned,
                f.stuck,
                percent(f.conversion),
                f.median_seconds_to_book.map_or_else(|| "—".to_string(), duration),
            )
        })
        .collect();
    format!(
        r#"<h2 id="journeys">Journeys per flow</h2>
<table><caption>Journeys started in the range and what became of them</caption>
<thead><tr><th scope="col">Flow</th><th scope="col" class="n">Started</th><th scope="col" class="n">Completed</th><th scope="col" class="n">Confirmed by the ERP</th><th scope="col" class="n">Handed off</th><th scope="col" class="n">Abandoned</th><th scope="col" class="n">Stuck</th><th scope="col" class="n">Started → confirmed</th><th scope="col" class="n">Median time to book</th></tr></thead>
<tbody>{rows}</tbody></table>"#
    )
}

fn funnel(f: &FlowFigures) -> String {
    let items: Vec<(String, i64)> = f.funnel.iter().map(|s| (s.title.clone(), s.reached)).collect();
    let rows: String = f
        .funnel
        .iter()
        .map(|s| {
            format!(
                r#"<tr><th scope="row">{}</th><td class="n">{}</td><td class="n">{}</td></tr>"#,
                esc(&s.title),
                s.reached,
                s.dropped.map_or_else(|| "—".to_string(), |d| d.to_string())
            )
        })
        .collect();
    let id = format!("funnel-{}", url_part(&f.flow));
    format!(
        r#"<h3 id="{id}-h">Funnel: {title}</h3>{chart}
<details><summary>Steps of {title}</summary><table><caption>Journeys that reached each step</caption>
<thead><tr><th scope="col">Step</th><th scope="col" class="n">Reached</th><th scope="col" class="n">Lost since the step before</th></tr></thead>
<tbody>{rows}</tbody></table></details>"#,
        title = esc(&f.title),
        chart = svg::bars(
            &id,
            &format!("Funnel of {}", f.title),
            "Journeys that reached each step, in the flow's order.",
            &items
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(250), "4 min 10 s");
        assert_eq!(duration(3_900), "1 h 5 min");
        assert_eq!(duration(183_600), "2 d 3 h");
    }
}
