//! The dashboard's figures, worked out from the summed counts of a date range (rows of
//! `daily_counts`, see the parent module): typed, so that the JSON answer, the HTML page and the
//! CSV export are made from the same values.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::flow::FlowSet;

/// One summed count: (day `YYYY-MM-DD`, flow or `""`, metric, n).
pub type CountRow = (String, String, String, i64);

/// Everything the dashboard shows for a date range.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// First day, `YYYY-MM-DD`, in the business's time zone.
    pub from: String,
    /// Last day (included).
    pub to: String,
    /// The business's time zone (IANA name).
    pub time_zone: String,
    /// The flow the per-flow figures and days are limited to, if any.
    pub flow: Option<String>,
    /// Figures of the whole range.
    pub totals: Totals,
    /// One entry per day of the range (at most 400), in order, zeros included.
    pub days: Vec<Day>,
    /// One entry per flow (or the one asked for), in the flow set's order.
    pub flows: Vec<FlowFigures>,
}

/// The range's totals over all flows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Turns committed.
    pub turns: i64,
    /// Conversations begun (a customer's first message ever to this number).
    pub conversations: i64,
    /// Customers whose first message ever fell in the range.
    pub new_customers: i64,
    /// Known customers' first messages of a day.
    pub returning_customers: i64,
    /// Turns that failed before or while deciding.
    pub failed_turns: i64,
    /// Upset customers acknowledged.
    pub upset: i64,
    /// Times the stuck ladder was climbed, in every flow.
    pub stuck: i64,
    /// Journeys started, in every flow.
    pub started: i64,
    /// Upset acknowledgements per conversation begun or returning (0 when there were none).
    pub upset_rate: f64,
    /// Stuck-ladder climbs per journey started (0 when none started).
    pub stuck_rate: f64,
    /// Hand-offs to a person.
    pub handed_off: i64,
    /// LLM guard runs.
    pub llm_calls: i64,
    /// LLM guard runs that failed (timeout, refusal, schema, ungrounded…).
    pub llm_failures: i64,
    /// Tokens the LLM reported using.
    pub llm_tokens: i64,
    /// `llm_tokens` at `LLM_PRICE_PER_MILLION_TOKENS`, when that price is set.
    pub llm_cost: Option<f64>,
    /// Ratings by star, `"1"` to `"5"`.
    pub ratings: BTreeMap<String, i64>,
    /// The mean rating, when there is one.
    pub rating_mean: Option<f64>,
    /// Questions read against the knowledge base.
    pub questions: i64,
    /// Of those, answered from it.
    pub answered: i64,
    /// Of those, not known (the customer was offered a person, the question flagged).
    pub not_known: i64,
    /// Answers the LLM worded that passed the checks.
    pub worded: i64,
    /// `answered` per question (0 when there were none).
    pub answer_rate: f64,
    /// Outbox rows in the dead letter now (not limited to the range: they wait for an
    /// operator to re-drive them); filled in by the caller, which reads the outbox.
    pub dead_letters: i64,
}

/// One day's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Turns (all flows).
    pub turns: i64,
    /// Conversations begun (all flows).
    pub conversations: i64,
    /// Journeys started (of the flow asked for, or all).
    pub started: i64,
    /// Journeys confirmed by the ERP (of the flow asked for, or all).
    pub confirmed: i64,
}

/// One flow's figures.
#[derive(Debug, Clone, Serialize)]
pub struct FlowFigures {
    /// Flow id.
    pub flow: String,
    /// Its title.
    pub title: String,
    /// Journeys started.
    pub started: i64,
    /// Journeys that reached an `end` step.
    pub ended: i64,
    /// Journeys whose ERP write was accepted.
    pub confirmed: i64,
    /// Journeys handed to a person.
    pub handed_off: i64,
    /// Stuck-ladder climbs.
    pub stuck: i64,
    /// Started and neither ended nor handed off (left, timed out, or still under way).
    pub abandoned: i64,
    /// `confirmed / started` (0 when none started).
    pub conversion: f64,
    /// The median whole seconds from a journey's start to the ERP's acceptance, over the
    /// journeys confirmed in the range (the lower median of an even count).
    pub median_seconds_to_book: Option<i64>,
    /// Each step in the flow's order: how many journeys reached it.
    pub funnel: Vec<FunnelStep>,
}

/// One step of a flow's funnel.
#[derive(Debug, Clone, Serialize)]
pub struct FunnelStep {
    /// Step id.
    pub step: String,
    /// Its title.
    pub title: String,
    /// Journeys that reached it (the first step: journeys started).
    pub reached: i64,
    /// How many fewer than the step before (none for the first).
    pub dropped: Option<i64>,
}

/// The dashboard for `from`..=`to` from the range's summed `rows`, for one flow (`only`) or
/// all; `price` is `LLM_PRICE_PER_MILLION_TOKENS`.
pub fn dashboard(
    flows: &FlowSet,
    rows: &[CountRow],
    from: &str,
    to: &str,
    only: Option<&str>,
    price: Option<f64>,
) -> Dashboard {
    let mut by_flow: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut days: BTreeMap<String, Day> =
        every_day(from, to).map(|d| (d.clone(), Day { day: d, ..Day::default() })).collect();
    for (day, flow, metric, n) in rows {
        *by_flow.entry(flow.as_str()).or_default().entry(metric.as_str()).or_default() += n;
        let d = days.entry(day.clone()).or_insert_with(|| Day { day: day.clone(), ..Day::default() });
        let counted = only.is_none_or(|o| o == flow);
        match metric.as_str() {
            "turns" if flow.is_empty() => d.turns += n,
            "conversations" if flow.is_empty() => d.conversations += n,
            "started" if counted => d.started += n,
            "confirmed" if counted => d.confirmed += n,
            _ => {}
        }
    }
    let get = |flow: &str, metric: &str| by_flow.get(flow).and_then(|m| m.get(metric)).copied().unwrap_or(0);
    let across = |metric: &str| by_flow.values().filter_map(|m| m.get(metric)).sum::<i64>();
    let ratings: BTreeMap<String, i64> = (1..=5).map(|n| (n.to_string(), get("", &format!("rating:{n}")))).collect();
    let rated: i64 = ratings.values().sum();
    let stars: i64 = ratings.iter().map(|(k, v)| k.parse::<i64>().unwrap_or(0) * v).sum();
    let share = |part: i64, whole: i64| if whole > 0 { part as f64 / whole as f64 } else { 0.0 };
    let (started, stuck, upset) = (across("started"), across("stuck"), get("", "upset"));
    let visits = get("", "conversations") + get("", "returning_customers");
    let llm_tokens = get("", "llm_tokens");
    let totals = Totals {
        turns: get("", "turns"),
        conversations: get("", "conversations"),
        new_customers: get("", "new_customers"),
        returning_customers: get("", "returning_customers"),
        failed_turns: get("", "failed_turns"),
        upset,
        stuck,
        started,
        upset_rate: share(upset, visits),
        stuck_rate: share(stuck, started),
        handed_off: across("handed_off"),
        llm_calls: get("", "llm_calls"),
        llm_failures: get("", "llm_failures"),
        llm_tokens,
        llm_cost: price.map(|p| llm_tokens as f64 * p / 1_000_000.0),
        ratings,
        rating_mean: (rated > 0).then(|| stars as f64 / rated as f64),
        questions: get("", "questions"),
        answered: get("", "answered"),
        not_known: get("", "not_known"),
        worded: get("", "worded"),
        answer_rate: share(get("", "answered"), get("", "questions")),
        dead_letters: 0,
    };
    let per_flow = flows
        .flows
        .values()
        .filter(|f| only.is_none_or(|o| o == f.id))
        .map(|flow| {
            let id = flow.id.as_str();
            let started = get(id, "started");
            let (ended, handed_off, confirmed) = (get(id, "ended"), get(id, "handed_off"), get(id, "confirmed"));
            let mut previous: Option<i64> = None;
            let funnel = flow
                .steps
                .values()
                .enumerate()
                .map(|(i, step)| {
                    let reached = if i == 0 { started } else { get(id, &format!("step:{}", step.id)) };
                    let dropped = previous.map(|p| (p - reached).max(0));
                    previous = Some(reached);
                    FunnelStep { step: step.id.clone(), title: step.title.clone(), reached, dropped }
                })
                .collect();
            FlowFigures {
                flow: flow.id.clone(),
                title: flow.title.clone(),
                started,
                ended,
                confirmed,
                handed_off,
                stuck: get(id, "stuck"),
                abandoned: (started - ended - handed_off).max(0),
                conversion: share(confirmed, started),
                median_seconds_to_book: by_flow.get(id).and_then(median_time_to_book),
                funnel,
            }
        })
        .collect();
    Dashboard {
        from: from.to_string(),
        to: to.to_string(),
        time_zone: flows.business.time_zone_name.clone(),
        flow: only.map(String::from),
        totals,
        days: days.into_values().collect(),
        flows: per_flow,
    }
}

/// Every day from `from` to `to` (`YYYY-MM-DD`, both included), at most 400 of them; none when
/// either cannot be read.
fn every_day(from: &str, to: &str) -> impl Iterator<Item = String> {
    let (first, last) = (from.parse::<jiff::civil::Date>().ok(), to.parse::<jiff::civil::Date>().ok());
    let span = first.zip(last);
    span.into_iter()
        .flat_map(|(first, last)| first.series(jiff::Span::new().days(1)).take_while(move |d| *d <= last))
        .take(400)
        .map(|d| d.to_string())
}

/// The lower median of the `time_to_book:<s>` histogram among one flow's metrics.
fn median_time_to_book(metrics: &BTreeMap<&str, i64>) -> Option<i64> {
    let mut bins: Vec<(i64, i64)> = metrics
        .iter()
        .filter_map(|(m, n)| m.strip_prefix("time_to_book:").and_then(|s| s.parse().ok()).map(|s: i64| (s, *n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    bins.sort_unstable();
    let total: i64 = bins.iter().map(|(_, n)| n).sum();
    let middle = (total + 1) / 2;
    let mut seen = 0;
    bins.into_iter().find_map(|(seconds, n)| {
        seen += n;
        (seen >= middle).then_some(seconds)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_time_to_book_is_the_middle_booking_of_the_histogram() {
        let m = |pairs: &[(&'static str, i64)]| pairs.iter().copied().collect::<BTreeMap<&str, i64>>();
        assert_eq!(median_time_to_book(&m(&[])), None);
        assert_eq!(median_time_to_book(&m(&[("time_to_book:90", 1), ("confirmed", 1)])), Some(90));
        // 30, 30, 60, 600, 600: the third.
        let five = m(&[("time_to_book:600", 2), ("time_to_book:30", 2), ("time_to_book:60", 1)]);
        assert_eq!(median_time_to_book(&five), Some(60));
        // 30, 60, 600, 900: the lower middle.
        let four =
            m(&[("time_to_book:30", 1), ("time_to_book:60", 1), ("time_to_book:600", 1), ("time_to_book:900", 1)]);
        assert_eq!(median_time_to_book(&four), Some(60));
    }
}
