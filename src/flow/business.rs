//! `flows/business.yaml`: the facts about the business that every journey shares — its name, time
//! zone, the visit times it offers, and the fixed messages of the main menu.

use schemars::JsonSchema;
use serde::Deserialize;

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
    pub messages: indexmap::IndexMap<String, String>,
}

/// How offered visit times are made: on each open day from tomorrow, at each of `times`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitSlotsDecl {
    /// Start times of visits, `HH:MM` in the business's time zone.
    pub times: Vec<Located<String>>,
    /// How many days ahead to offer (the list shows at most 10 rows: WhatsApp's limit for a list).
    #[serde(default = "default_days_ahead")]
    pub days_ahead: u32,
    /// Weekdays without visits, in English ("friday").
    #[serde(default)]
    pub closed_weekdays: Vec<String>,
    /// Opening hour, `HH:MM`: a typed time before it is refused.
    pub opens: Located<String>,
    /// Closing hour, `HH:MM`: a typed time at or after it is refused.
    pub closes: Located<String>,
    /// Minimum minutes between now and a visit.
    #[serde(default = "default_lead")]
    pub lead_time_minutes: u32,
}

fn default_days_ahead() -> u32 {
    3
}
fn default_lead() -> u32 {
    60
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
    /// Offered visit start times.
    pub visit_times: Vec<jiff::civil::Time>,
    /// Days ahead offered.
    pub days_ahead: u32,
    /// Closed weekdays.
    pub closed_weekdays: Vec<jiff::civil::Weekday>,
    /// Opening time.
    pub opens: jiff::civil::Time,
    /// Closing time.
    pub closes: jiff::civil::Time,
    /// Lead time.
    pub lead_time: jiff::SignedDuration,
    /// Every sentence the bot sends that is not in a flow file (`messages.yaml`).
    pub messages: super::messages::Messages,
}

impl Business {
    /// When the team is next at work, if it is not now: `None` while open (an open weekday,
    /// between `opens` and `closes` in the business's time zone), otherwise the next opening
    /// (today's, if it is still to come). `now`: Unix seconds. Holidays are not known yet.
    pub fn team_back_at(&self, now: i64) -> Option<jiff::Zoned> {
        let now = jiff::Timestamp::from_second(now).ok()?.to_zoned(self.time_zone.clone());
        let open_day = |d: jiff::civil::Date| !self.closed_weekdays.contains(&d.weekday());
        let today = now.date();
        if open_day(today) && now.time() >= self.opens && now.time() < self.closes {
            return None;
        }
        (0..14)
            .filter_map(|n| today.checked_add(jiff::Span::new().days(n)).ok())
            .filter(|d| open_day(*d))
            .map(|d| d.to_datetime(self.opens))
            .find(|at| *at > now.datetime())
            .and_then(|at| at.to_zoned(self.time_zone.clone()).ok())
    }
}
