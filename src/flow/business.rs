//! `flows/business.yaml`: the facts about the business that every journey shares — its name, time
//! zone, its opening hours (per weekday, holidays, special days), the visit times it offers and
//! how many crews can go out at once.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use jiff::civil::{Date, DateTime, Time, Weekday};
use schemars::JsonSchema;
use serde::Deserialize;

use super::FlowProblem;
use super::format::Located;

/// The business file as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessFile {
    /// The business's name, used in greetings.
    pub name: String,
    /// IANA time zone in which customers speak of dates and times ("Asia/Dubai").
    pub time_zone: Located<String>,
    /// ISO 4217 currency code of catalog prices ("AED").
    pub currency: String,
    /// The visit times offered in lists.
    pub visit_slots: VisitSlotsDecl,
    /// Messages that override `messages.yaml` (kept for business files written before it
    /// existed): key → text.
    #[serde(default)]
    pub messages: IndexMap<String, String>,
    /// Websites whose visitors chat through the widget (see [`super::web`]); none by default.
    #[serde(default)]
    pub web: Option<Located<super::web::WebDecl>>,
}

/// How offered visit times are made: on each open day from today, at each of `times` that falls
/// within that day's hours.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitSlotsDecl {
    /// Start times of visits, `HH:MM` in the business's time zone. With `capacity`, each is the
    /// start of a window that lasts until the next one (the last until closing): a typed time
    /// ("10am") counts against the window it falls in (09:00).
    pub times: Vec<Located<String>>,
    /// How many open days with a free time to offer (the list shows at most 10 rows: WhatsApp's
    /// limit for a list). Days that are closed or full are skipped, not counted.
    #[serde(default = "default_days_ahead")]
    pub days_ahead: u32,
    /// Weekdays without visits, in English ("friday").
    #[serde(default)]
    pub closed_weekdays: Vec<String>,
    /// Opening hour, `HH:MM`: a typed time before it is refused.
    pub opens: Located<String>,
    /// Closing hour, `HH:MM`: a typed time at or after it is refused.
    pub closes: Located<String>,
    /// Weekdays whose hours differ from `opens`/`closes`: weekday in English → hours.
    #[serde(default)]
    pub hours: IndexMap<String, HoursDecl>,
    /// Dates without visits (`YYYY-MM-DD`: public holidays, the team's day out).
    #[serde(default)]
    pub holidays: Vec<Located<String>>,
    /// Dates with hours of their own (`YYYY-MM-DD` → hours), open even on a closed weekday.
    #[serde(default)]
    pub special_hours: IndexMap<String, HoursDecl>,
    /// Minimum minutes between now and a visit.
    #[serde(default = "default_lead")]
    pub lead_time_minutes: u32,
    /// How many visits can start in one window; without it, every time is always offered.
    #[serde(default)]
    pub capacity: Option<CapacityDecl>,
}

/// One day's opening hours.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursDecl {
    /// Opening, `HH:MM`.
    pub opens: Located<String>,
    /// Closing, `HH:MM`.
    pub closes: Located<String>,
}

/// The crews: how many customers can be visited in one window, and how long a customer in the
/// middle of confirming keeps a place.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityDecl {
    /// Crews working at once: the places in each window.
    pub crews: u32,
    /// Minutes a chosen time stays held for a customer who goes quiet before the booking is
    /// written (each of their messages starts the minutes again).
    #[serde(default = "default_hold_minutes")]
    pub hold_minutes: u32,
    /// An `erp.yaml` lookup listing the visits the ERP already has: each row's id is the
    /// document's name and its title the visit's date and time (`YYYY-MM-DD HH:MM:SS`). Without
    /// it only the holds taken here count.
    #[serde(default)]
    pub booked: Option<Located<String>>,
}

fn default_days_ahead() -> u32 {
    3
}
fn default_lead() -> u32 {
    60
}
fn default_hold_minutes() -> u32 {
    15
}

/// Opening hours of one day: from `opens` (included) to `closes` (excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// Opening time.
    pub opens: Time,
    /// Closing time.
    pub closes: Time,
}

/// The crews, compiled from [`CapacityDecl`].
#[derive(Debug, Clone)]
pub struct Capacity {
    /// Places in each window.
    pub crews: u32,
    /// How long a place stays held for a quiet customer.
    pub hold: jiff::SignedDuration,
    /// The `erp.yaml` lookup of visits already booked, if any.
    pub booked: Option<String>,
}

/// The compiled business facts.
#[derive(Debug, Clone)]
pub struct Business {
    /// Name.
    pub name: String,
    /// IANA zone name.
    pub time_zone_name: String,
    /// The zone.
    pub time_zone: jiff::tz::TimeZone,
    /// Currency code.
    pub currency: String,
    /// Offered visit start times, in order.
    pub visit_times: Vec<Time>,
    /// Open days with a free time offered.
    pub days_ahead: u32,
    /// Hours per weekday (Monday first); `None` on a closed weekday.
    pub weekly: [Option<Hours>; 7],
    /// Dates without visits.
    pub holidays: BTreeSet<Date>,
    /// Dates with hours of their own.
    pub special_hours: BTreeMap<Date, Hours>,
    /// Lead time.
    pub lead_time: jiff::SignedDuration,
    /// The crews, when places are limited.
    pub capacity: Option<Capacity>,
    /// Every sentence the bot sends that is not in a flow file (`messages.yaml`).
    pub messages: super::messages::Messages,
    /// Websites whose visitors chat through the widget, checked.
    pub sites: Vec<super::web::Site>,
}

impl Business {
    /// The hours of `date`: its special hours, else nothing on a holiday, else its weekday's.
    pub fn hours_on(&self, date: Date) -> Option<Hours> {
        if let Some(h) = self.special_hours.get(&date) {
            return Some(*h);
        }
        if self.holidays.contains(&date) {
            return None;
        }
        self.weekly[date.weekday().to_monday_zero_offset() as usize]
    }

    /// The visit times offered on `date` (those within its hours), in order; none when closed.
    pub fn times_on(&self, date: Date) -> Vec<DateTime> {
        let Some(h) = self.hours_on(date) else { return vec![] };
        self.visit_times.iter().filter(|t| **t >= h.opens && **t < h.closes).map(|t| date.to_datetime(*t)).collect()
    }

    /// The window a visit time counts against: the latest offered time of its day at or before
    /// it (the first one, for a time before all of them). `None` on a day without offered times.
    pub fn window_of(&self, at: DateTime) -> Option<DateTime> {
        let times = self.times_on(at.date());
        times.iter().rev().find(|w| **w <= at).or(times.first()).copied()
    }

    /// When the team is next at work, if it is not now: `None` while open (within the day's
    /// hours in the business's time zone), otherwise the next opening (today's, if it is still
    /// to come), holidays and special hours included. `now`: Unix seconds.
    pub fn team_back_at(&self, now: i64) -> Option<jiff::Zoned> {
        let now = jiff::Timestamp::from_second(now).ok()?.to_zoned(self.time_zone.clone());
        let today = now.date();
        if self.hours_on(today).is_some_and(|h| now.time() >= h.opens && now.time() < h.closes) {
            return None;
        }
        (0..31)
            .filter_map(|n| today.checked_add(jiff::Span::new().days(n)).ok())
            .filter_map(|d| self.hours_on(d).map(|h| d.to_datetime(h.opens)))
            .find(|at| *at > now.datetime())
            .and_then(|at| at.to_zoned(self.time_zone.clone()).ok())
    }
}

/// A weekday's English name ("friday", any case).
pub fn weekday_named(name: &str) -> Option<Weekday> {
    use Weekday::*;
    Some(match name.trim().to_lowercase().as_str() {
        "monday" => Monday,
        "tuesday" => Tuesday,
        "wednesday" => Wednesday,
        "thursday" => Thursday,
        "friday" => Friday,
        "saturday" => Saturday,
        "sunday" => Sunday,
        _ => return None,
    })
}

fn parse_hhmm(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    Time::new(h.trim().parse().ok()?, m.trim().parse().ok()?, 0, 0).ok()
}

/// Compiles `business.yaml`; every mistake is added to `problems` (with its line where known)
/// and the result is then `None`.
/// `lookups`: the names `erp.yaml` declares, which `capacity.booked` must be one of.
pub fn compile_business(
    file: &str,
    b: BusinessFile,
    lookups: &[&String],
    problems: &mut Vec<FlowProblem>,
) -> Option<Business> {
    let before = problems.len();
    let problem = |line: u64, column: u64, message: String| FlowProblem {
        file: file.into(),
        line,
        column,
        code: "flow.business",
        message,
    };
    let tz = match jiff::tz::TimeZone::get(&b.time_zone.value) {
        Ok(tz) => Some(tz),
        Err(_) => {
            problems.push(problem(
                b.time_zone.line,
                b.time_zone.column,
                format!(
                    "unknown time zone {:?}: use an IANA name such as \"Asia/Dubai\" or \"Europe/London\"",
                    b.time_zone.value
                ),
            ));
            None
        }
    };
    let time = |l: &Located<String>, problems: &mut Vec<FlowProblem>| {
        let t = parse_hhmm(&l.value);
        if t.is_none() {
            problems.push(problem(
                l.line,
                l.column,
                format!("{:?} is not a time: write HH:MM, e.g. \"09:30\"", l.value),
            ));
        }
        t
    };
    let hours = |what: &str, h: &HoursDecl, problems: &mut Vec<FlowProblem>| {
        let (opens, closes) = (time(&h.opens, problems)?, time(&h.closes, problems)?);
        if opens >= closes {
            problems.push(problem(
                h.opens.line,
                h.opens.column,
                format!(
                    "{what}: opens at {} but closes at {}: closing must come after opening",
                    h.opens.value, h.closes.value
                ),
            ));
            return None;
        }
        Some(Hours { opens, closes })
    };
    let v = &b.visit_slots;
    let mut visit_times: Vec<Time> = v.times.iter().filter_map(|t| time(t, problems)).collect();
    visit_times.sort();
    visit_times.dedup();
    let default_hours = hours("visit_slots", &HoursDecl { opens: v.opens.clone(), closes: v.closes.clone() }, problems);
    let mut weekly = [default_hours; 7];
    for day in &v.closed_weekdays {
        match weekday_named(day) {
            Some(w) => weekly[w.to_monday_zero_offset() as usize] = None,
            None => problems.push(problem(
                0,
                0,
                format!("closed_weekdays: {day:?} is not a weekday (write e.g. \"friday\")"),
            )),
        }
    }
    for (day, h) in &v.hours {
        match weekday_named(day) {
            Some(w) => weekly[w.to_monday_zero_offset() as usize] = hours(&format!("hours.{day}"), h, problems),
            None => problems.push(problem(
                h.opens.line,
                h.opens.column,
                format!("hours: {day:?} is not a weekday (write e.g. \"saturday\")"),
            )),
        }
    }
    let date = |what: &str, l: (&str, u64, u64), problems: &mut Vec<FlowProblem>| match l.0.parse::<Date>() {
        Ok(d) => Some(d),
        Err(_) => {
            problems.push(problem(l.1, l.2, format!("{what}: {:?} is not a date: write YYYY-MM-DD", l.0)));
            None
        }
    };
    let holidays: BTreeSet<Date> =
        v.holidays.iter().filter_map(|h| date("holidays", (&h.value, h.line, h.column), problems)).collect();
    let mut special_hours = BTreeMap::new();
    for (day, h) in &v.special_hours {
        let d = date("special_hours", (day, h.opens.line, h.opens.column), problems);
        if let (Some(d), Some(h)) = (d, hours(&format!("special_hours.{day}"), h, problems)) {
            special_hours.insert(d, h);
        }
    }
    if let Some(booked) = v.capacity.as_ref().and_then(|c| c.booked.as_ref()) {
        if !lookups.iter().any(|l| **l == booked.value) {
            let known: Vec<&str> = lookups.iter().map(|l| l.as_str()).collect();
            problems.push(problem(
                booked.line,
                booked.column,
                format!(
                    "capacity.booked names lookup {:?}, which erp.yaml does not declare (it has: {})",
                    booked.value,
                    known.join(", ")
                ),
            ));
        }
    }
    let capacity = match &v.capacity {
        Some(c) if c.crews == 0 => {
            problems.push(problem(
                0,
                0,
                "capacity.crews must be at least 1 (remove capacity for unlimited places)".into(),
            ));
            None
        }
        Some(c) => Some(Capacity {
            crews: c.crews,
            hold: jiff::SignedDuration::from_mins(i64::from(c.hold_minutes.max(1))),
            booked: c.booked.as_ref().map(|b| b.value.clone()),
        }),
        None => None,
    };
    if visit_times.is_empty() {
        problems.push(problem(0, 0, "visit_slots.times is empty: list at least one visit time, e.g. \"09:00\"".into()));
    }
    let sites = match &b.web {
        Some(web) => super::web::check(file, web, &b.name, problems),
        None => vec![],
    };
    if problems.len() != before {
        return None;
    }
    Some(Business {
        name: b.name,
        time_zone_name: b.time_zone.value,
        time_zone: tz?,
        currency: b.currency,
        visit_times,
        days_ahead: v.days_ahead,
        weekly,
        holidays,
        special_hours,
        lead_time: jiff::SignedDuration::from_mins(i64::from(v.lead_time_minutes)),
        capacity,
        messages: super::messages::Messages::default(),
        sites,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn business(extra: &str) -> Result<Business, Vec<FlowProblem>> {
        let text = format!(
            "name: Test\ntime_zone: Asia/Dubai\ncurrency: AED\nvisit_slots:\n  times: [\"09:00\", \"11:00\", \"14:00\", \"16:00\"]\n  closed_weekdays: [friday]\n  opens: \"08:00\"\n  closes: \"19:00\"\n{extra}"
        );
        let file: BusinessFile = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let booked = "booked_visits".to_string();
        let mut problems = vec![];
        compile_business("business.yaml", file, &[&booked], &mut problems).ok_or(problems)
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn hours_come_from_the_day_then_the_holiday_then_the_weekday() {
        let b = business(
            "  hours:\n    saturday: { opens: \"09:00\", closes: \"15:00\" }\n  holidays: [\"2030-01-07\"]\n  special_hours:\n    \"2030-01-11\": { opens: \"10:00\", closes: \"12:00\" }\n",
        )
        .unwrap();
        // 2030-01-07 is a Monday (a holiday), 01-11 a Friday (closed, but with special hours),
        // 01-12 a Saturday, 01-08 a Tuesday.
        assert_eq!(b.hours_on(date("2030-01-07")), None);
        assert_eq!(b.hours_on(date("2030-01-04")), None, "an ordinary Friday is closed");
        let special = b.hours_on(date("2030-01-11")).unwrap();
        assert_eq!((special.opens, special.closes), (Time::constant(10, 0, 0, 0), Time::constant(12, 0, 0, 0)));
        assert_eq!(b.times_on(date("2030-01-11")), vec![date("2030-01-11").to_datetime(Time::constant(11, 0, 0, 0))]);
        let saturday: Vec<String> = b.times_on(date("2030-01-12")).iter().map(|t| t.time().to_string()).collect();
        assert_eq!(saturday, ["09:00:00", "11:00:00", "14:00:00"], "16:00 is after Saturday's closing");
        assert_eq!(b.times_on(date("2030-01-08")).len(), 4);
    }

    #[test]
    fn a_typed_time_counts_against_the_window_it_falls_in() {
        let b = business("").unwrap();
        let day = date("2030-01-08");
        let at = |h, m| day.to_datetime(Time::constant(h, m, 0, 0));
        assert_eq!(b.window_of(at(10, 0)), Some(at(9, 0)));
        assert_eq!(b.window_of(at(11, 0)), Some(at(11, 0)));
        assert_eq!(b.window_of(at(18, 30)), Some(at(16, 0)));
        assert_eq!(b.window_of(at(8, 15)), Some(at(9, 0)), "before the first time: the first window");
        assert_eq!(b.window_of(date("2030-01-04").to_datetime(Time::constant(10, 0, 0, 0))), None, "closed day");
    }

    #[test]
    fn mistakes_in_hours_and_capacity_are_reported_with_what_to_write() {
        let problems = business(
            "  hours:\n    caturday: { opens: \"09:00\", closes: \"15:00\" }\n  holidays: [\"07/01/2030\"]\n  special_hours:\n    \"2030-01-11\": { opens: \"12:00\", closes: \"10:00\" }\n  capacity: { crews: 2, booked: booked_visitz }\n",
        )
        .unwrap_err();
        let text: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        let all = text.join("\n");
        assert!(all.contains("\"caturday\" is not a weekday"), "{all}");
        assert!(all.contains("\"07/01/2030\" is not a date: write YYYY-MM-DD"), "{all}");
        assert!(all.contains("closing must come after opening"), "{all}");
        assert!(all.contains("\"booked_visitz\", which erp.yaml does not declare (it has: booked_visits)"), "{all}");
        assert!(problems.iter().all(|p| p.code == "flow.business"));
        let zero = business("  capacity: { crews: 0 }\n").unwrap_err();
        assert!(zero[0].message.contains("at least 1"), "{:?}", zero);
    }

    #[test]
    fn the_team_is_back_at_the_next_opening_holidays_skipped() {
        let b = business("  holidays: [\"2030-01-08\"]\n").unwrap();
        // Monday 2030-01-07 at 20:00 in Dubai: Tuesday is a holiday, so Wednesday at 08:00.
        let monday_evening = date("2030-01-07").to_datetime(Time::constant(20, 0, 0, 0));
        let now = monday_evening.to_zoned(b.time_zone.clone()).unwrap().timestamp().as_second();
        let back = b.team_back_at(now).unwrap();
        assert_eq!(back.date(), date("2030-01-09"));
        assert_eq!(back.time(), Time::constant(8, 0, 0, 0));
        assert!(b.team_back_at(now - 10 * 3600).is_none(), "10:00 on Monday: open");
    }
}
