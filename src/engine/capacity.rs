//! Places against the crews' capacity: which visit windows are free (as the guards found them),
//! refusing a time that is full, and the holds a turn takes, keeps, books and lets go.
//!
//! A customer who has chosen a time holds a place in its window while they confirm; the hold is
//! written in the same commit as the turn ([`HoldChange`], applied by the store), so of two
//! customers racing for the last place exactly one gets it. The other's turn is decided again
//! with the window in [`Availability::just_taken`]: the time is refused and fresh times offered.
//! A hold is let go when its journey ends without a booking (cancelled, the ERP refused), when
//! the customer changes the time, and when the customer goes quiet (it lapses after
//! `capacity.hold_minutes`, each message starting the minutes again). Once the ERP has the
//! booking the hold stays, named by the document, until the visit: the ERP's own list of
//! bookings may lag, and a moved booking's earlier hold is replaced.

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};

use super::phase::State as Phase;
use super::state::SlotValue;
use super::turn::{Next, Turn};
use crate::flow::Business;
use crate::flow::format::SlotType;
use crate::flow::graph::{Flow, OptionSource};
use crate::flow::messages::Messages;

mod holds;
pub use holds::{HeldFor, HeldPlace, Holds};

/// Places taken in the visit windows, as the guards found them for this turn (recorded with the
/// turn, so a replay decides alike). Windows are named by their start, `YYYY-MM-DDTHH:MM:SS` in
/// the business's time zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    /// Places in each window (`capacity.crews`).
    pub crews: u32,
    /// Windows with places taken by others: window → what takes them.
    #[serde(default)]
    pub load: BTreeMap<String, Load>,
    /// Windows whose last place another customer took while this turn committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub just_taken: Vec<String>,
}

/// What takes places in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Visits the ERP has that no hold here stands for (booked by phone, on the website).
    pub booked: u32,
    /// Holds of other conversations (still confirming, or booked through this service).
    pub held: u32,
}

/// The ERP's bookings, each with the window its visit falls in: worked out once per answer of
/// the ERP (which the lookup cache keeps for `cache_seconds`) and shared by the turns that count
/// places until the next answer, as parsing a thousand visit times per turn cost more than the
/// rest of the turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Booked {
    /// (document name, window), in the ERP's order.
    visits: Vec<(String, String)>,
}

impl Booked {
    /// The bookings of `rows` (`(document name, visit time)`, the time as the ERP writes it:
    /// `YYYY-MM-DD HH:MM:SS`); a booking at a time no window covers is left out.
    pub fn of<'r>(business: &Business, rows: impl IntoIterator<Item = (&'r str, &'r str)>) -> Booked {
        let visits = rows
            .into_iter()
            .filter_map(|(name, at)| {
                let window = parse_civil(at).and_then(|dt| business.window_of(dt))?;
                Some((name.to_string(), window.to_string()))
            })
            .collect();
        Booked { visits }
    }

    /// How many bookings fall in a window.
    pub fn len(&self) -> usize {
        self.visits.len()
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.visits.is_empty()
    }
}

impl Availability {
    /// Counts the places taken per window from the ERP's bookings and the holds that count for
    /// the conversation choosing. A booking a hold stands for (same document name) counts once,
    /// as the hold. Linear in the windows and the bookings, not in the holds.
    pub fn count(business: &Business, booked: &Booked, held: HeldFor<'_>) -> Availability {
        let crews = business.capacity.as_ref().map(|c| c.crews).unwrap_or(u32::MAX);
        let mut load: BTreeMap<String, Load> = BTreeMap::new();
        let Some(holds) = held.holds else {
            for (_, window) in &booked.visits {
                load.entry(window.clone()).or_default().booked += 1;
            }
            return Availability { crews, load, just_taken: vec![] };
        };
        for (window, n) in &holds.per_window {
            load.insert(window.clone(), Load { booked: 0, held: *n });
        }
        for window in holds.pending.get(held.conversation_id).into_iter().flatten() {
            if let Some(l) = load.get_mut(window) {
                l.held = l.held.saturating_sub(1);
            }
        }
        load.retain(|_, l| l.held > 0);
        for (name, window) in &booked.visits {
            if holds.stands_for(name) {
                continue;
            }
            match load.get_mut(window) {
                Some(l) => l.booked += 1,
                None => {
                    load.insert(window.clone(), Load { booked: 1, held: 0 });
                }
            }
        }
        Availability { crews, load, just_taken: vec![] }
    }

    /// Whether `window` has a place left for this conversation.
    pub fn is_free(&self, window: &str) -> bool {
        !self.just_taken.iter().any(|w| w == window)
            && self.load.get(window).is_none_or(|l| l.booked.saturating_add(l.held) < self.crews)
    }

    /// How many holds `window` may have in all (the crews less the ERP's own bookings): what the
    /// store checks as it takes a hold.
    pub fn places_for_holds(&self, window: &str) -> u32 {
        self.crews.saturating_sub(self.load.get(window).map(|l| l.booked).unwrap_or(0))
    }
}

/// What a turn does to its conversation's holds; the store applies them in the turn's commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "hold", rename_all = "snake_case")]
pub enum HoldChange {
    /// Hold a place in `window` for the journey until `until_ms` (Unix ms), moving its earlier
    /// hold; refused when `places` live holds are already there (another conversation's).
    Hold {
        /// The journey (its id).
        journey: String,
        /// The window.
        window: String,
        /// Holds the window may have in all.
        places: u32,
        /// When the hold lapses, Unix ms.
        until_ms: i64,
    },
    /// The ERP has the booking: the hold stays, as document `erp_name`, until `until_ms` (the
    /// visit), and replaces any other hold of that document (a booking moved). Never refused:
    /// the booking exists.
    Booked {
        /// The journey.
        journey: String,
        /// The window.
        window: String,
        /// The ERP document.
        erp_name: String,
        /// Until when it counts, Unix ms.
        until_ms: i64,
    },
    /// Let the journey's place go (unless it was booked).
    Release {
        /// The journey.
        journey: String,
    },
}

/// Reads a civil date-time as the ERP or the engine writes it (`2026-12-03 10:00:00`,
/// `2026-12-03T10:00:00`).
pub fn parse_civil(text: &str) -> Option<DateTime> {
    text.trim().replacen(' ', "T", 1).parse().ok()
}

/// The slot of `flow` whose times count against the crews: a date-time slot listing
/// `visit_slots`, when the business declares a capacity.
pub fn capacity_slot<'f>(business: &Business, flow: &'f Flow) -> Option<&'f str> {
    business.capacity.as_ref()?;
    flow.slots
        .values()
        .find(|s| s.kind == SlotType::DateTime && matches!(&s.options, OptionSource::Lookup(l) if l == "visit_slots"))
        .map(|s| s.name.as_str())
}

/// The window a slot value falls in, for a date-time.
fn window_of_value(business: &Business, value: &SlotValue) -> Option<String> {
    match value {
        SlotValue::DateTime { civil, .. } => {
            parse_civil(civil).and_then(|dt| business.window_of(dt)).map(|w| w.to_string())
        }
        _ => None,
    }
}

/// Why `value` may not fill `slot`: its window is full (or was just taken). `None` when it may,
/// and whenever the guards did not count places (no capacity declared, or not read this turn).
pub fn refusal(t: &Turn<'_>, flow: &Flow, slot: &str, value: &SlotValue) -> Option<String> {
    let business = &t.flows.business;
    if capacity_slot(business, flow) != Some(slot) {
        return None;
    }
    let availability = t.guards.availability.as_ref()?;
    let window = window_of_value(business, value)?;
    if availability.is_free(&window) {
        return None;
    }
    let shown = parse_civil(&window).map(|w| w.strftime("%a %-d %b %H:%M").to_string()).unwrap_or(window.clone());
    let text = if availability.just_taken.contains(&window) { &t.msg().slot_just_taken } else { &t.msg().slot_full };
    Some(Messages::fill(text, &[("time", &shown)]))
}

/// The offered times nearest to `value` (at most three, in order of time), for a refused time.
pub fn nearest(t: &Turn<'_>, flow: &Flow, slot: &str, value: &SlotValue) -> Vec<String> {
    let Some(wanted) = (match value {
        SlotValue::DateTime { civil, .. } => parse_civil(civil),
        _ => None,
    }) else {
        return vec![];
    };
    let mut offered: Vec<DateTime> = t.options(flow, slot).iter().filter_map(|o| parse_civil(&o.id)).collect();
    offered.sort_by_key(|o| (o.duration_since(wanted).as_secs()).abs());
    let mut near: Vec<DateTime> = offered.into_iter().take(3).collect();
    near.sort();
    near.iter().map(|d| d.to_string()).collect()
}

/// Whether every window of `day` is full (or the day has none): a customer who names only that
/// day is offered the next free times instead of being asked the time.
pub fn day_full(t: &Turn<'_>, flow: &Flow, day: Date) -> bool {
    let business = &t.flows.business;
    let (Some(_), Some(availability)) = (capacity_slot(business, flow), t.guards.availability.as_ref()) else {
        return false;
    };
    business.times_on(day).iter().all(|w| !availability.is_free(&w.to_string()))
}

/// A hold that lapsed while the customer was away and went to someone else (its window is in
/// `just_taken`): the time is cleared and asked again, with the reason, before anything else is
/// done with the message.
pub fn lapsed(t: &mut Turn<'_>) -> Option<Next> {
    let availability = t.guards.availability.as_ref()?;
    if !t.event.kind.from_customer() || matches!(t.state.phase().state(), Phase::AwaitingErp { .. }) {
        return None;
    }
    let j = t.state.journey.as_ref()?;
    let window = t.state.holds.get(&j.id)?.clone();
    if !availability.just_taken.contains(&window) {
        return None;
    }
    let flow = t.flow().ok()?;
    let slot = capacity_slot(&t.flows.business, &flow)?.to_string();
    let step = flow.step_collecting(&slot)?.id.clone();
    let value = j.slots.get(&slot)?.value.clone();
    let why = refusal(t, &flow, &slot, &value)?;
    if let Some(j) = t.state.journey.as_mut() {
        j.slots.remove(&slot);
    }
    t.note("hold_lapsed", format!("the place held at {window} lapsed and was taken; asking the time again"), None);
    Some(Next::Go { step, why: "the held time was taken".into(), source: None, reprompt: Some(why) })
}

/// The holds this turn takes, keeps and lets go, from the state it leaves (its journey in front
/// holds the window of its chosen time, every turn starting the minutes again) and the holds
/// the conversation had; bookings the turn recorded ([`Turn::holds`]) come first. Updates
/// `state.holds`.
pub fn hold_changes(t: &mut Turn<'_>) -> Vec<HoldChange> {
    let business = &t.flows.business;
    let Some(capacity) = business.capacity.as_ref() else { return std::mem::take(&mut t.holds) };
    let mut changes = std::mem::take(&mut t.holds);
    let booked: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            HoldChange::Booked { journey, .. } => Some(journey.clone()),
            _ => None,
        })
        .collect();
    for j in &booked {
        t.state.holds.remove(j);
    }
    let front = t.state.journey.as_ref().and_then(|j| {
        let flow = t.flows.flow_of(j)?;
        let slot = capacity_slot(business, flow)?;
        let window = window_of_value(business, &j.slots.get(slot)?.value)?;
        (!booked.contains(&j.id)).then(|| (j.id.clone(), window))
    });
    // Only a hold that was already waiting on the ERP before this turn is kept whatever the
    // count: one confirmed now is checked like any other.
    let awaiting = matches!(t.before.phase().state(), Phase::AwaitingErp { .. });
    if let Some((journey, window)) = front {
        let places = t.guards.availability.as_ref().map(|a| a.places_for_holds(&window)).unwrap_or(capacity.crews);
        let until_ms = (t.now + capacity.hold.as_secs()) * 1000;
        // While the ERP write is out, the hold keeps its window whatever the lookups say now.
        let places = if awaiting && t.state.holds.get(&journey) == Some(&window) { u32::MAX } else { places };
        t.state.holds.insert(journey.clone(), window.clone());
        changes.push(HoldChange::Hold { journey, window, places, until_ms });
    }
    let front_id = t.state.journey.as_ref().map(|j| j.id.clone());
    let front_holds = changes.iter().any(|c| matches!(c, HoldChange::Hold { .. }));
    let aside: Vec<String> = t.state.suspended.iter().map(|j| j.id.clone()).collect();
    let gone: Vec<String> = t
        .state
        .holds
        .keys()
        .filter(|id| !aside.contains(id) && (front_id.as_ref() != Some(*id) || !front_holds))
        .cloned()
        .collect();
    for journey in gone {
        t.state.holds.remove(&journey);
        changes.push(HoldChange::Release { journey });
    }
    changes
}

/// The ERP accepted the journey's booking: its hold is kept as the document, until the visit.
pub fn booked(t: &mut Turn<'_>, journey: &str, erp_name: &str) {
    let Some(window) = t.state.holds.get(journey).cloned() else { return };
    let until_ms = parse_civil(&window)
        .and_then(|w| w.to_zoned(t.flows.business.time_zone.clone()).ok())
        .map(|z| z.timestamp().as_millisecond() + 86_400_000)
        .unwrap_or((t.now + 86_400) * 1000);
    t.note("hold_booked", format!("the place at {window} is now booking {erp_name}"), None);
    t.holds.push(HoldChange::Booked { journey: journey.to_string(), window, erp_name: erp_name.to_string(), until_ms });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn business() -> Business {
        let flows = crate::flow::FlowSet::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows"))
            .unwrap_or_else(|e| panic!("{e}"));
        flows.business.as_ref().clone()
    }

    #[test]
    fn a_booking_a_hold_stands_for_counts_once_and_full_windows_are_not_offered() {
        let b = business();
        assert_eq!(b.capacity.as_ref().map(|c| c.crews), Some(3), "the sample has three crews");
        // Tuesday 2030-01-08: 10:30 and 09:00 fall in the 09:00 window.
        let booked = Booked::of(
            &b,
            [
                ("SO-1", "2030-01-08 09:00:00"),
                ("SO-2", "2030-01-08 10:30:00"),
                ("SO-3", "2030-01-08 14:00:00"),
                ("SO-4", "not a time"),
            ],
        );
        assert_eq!(booked.len(), 3, "a time that does not parse is left out");
        let holds = Holds::of([
            HeldPlace {
                conversation_id: "c1",
                journey_id: "j1",
                window: "2030-01-08T09:00:00",
                erp_name: Some("SO-1"),
            },
            HeldPlace { conversation_id: "c2", journey_id: "j2", window: "2030-01-08T09:00:00", erp_name: None },
            HeldPlace { conversation_id: "me", journey_id: "j3", window: "2030-01-08T14:00:00", erp_name: None },
        ]);
        let a = Availability::count(&b, &booked, HeldFor { holds: Some(&holds), conversation_id: "me" });
        assert_eq!(a.load["2030-01-08T09:00:00"], Load { booked: 1, held: 2 });
        assert!(!a.is_free("2030-01-08T09:00:00"));
        assert!(a.is_free("2030-01-08T14:00:00"));
        assert_eq!(a.places_for_holds("2030-01-08T09:00:00"), 2, "three crews less one outside booking");
        assert_eq!(a.load["2030-01-08T14:00:00"], Load { booked: 1, held: 0 }, "its own hold does not count");
        let theirs = Availability::count(&b, &booked, HeldFor { holds: Some(&holds), conversation_id: "c2" });
        assert_eq!(theirs.load["2030-01-08T14:00:00"], Load { booked: 1, held: 1 }, "another's does");
        assert_eq!(theirs.load["2030-01-08T09:00:00"], Load { booked: 1, held: 1 }, "its own in 09:00 does not");
        assert_eq!(HeldFor { holds: Some(&holds), conversation_id: "c2" }.len(), 2);
        // Offered from Monday 2030-01-07 07:00: Tuesday's 09:00 is left out.
        let now = jiff::civil::date(2030, 1, 7).at(7, 0, 0, 0).to_zoned(b.time_zone.clone()).unwrap();
        let ids: Vec<String> =
            crate::guard::extract::visit_slots(&now, &b, Some(&a)).into_iter().map(|o| o.id).collect();
        assert!(ids.contains(&"2030-01-08T11:00:00".to_string()), "{ids:?}");
        assert!(!ids.contains(&"2030-01-08T09:00:00".to_string()), "{ids:?}");
    }

    #[test]
    fn a_full_day_is_skipped_and_the_next_open_days_offered() {
        let b = business();
        let now = jiff::civil::date(2030, 1, 7).at(19, 30, 0, 0).to_zoned(b.time_zone.clone()).unwrap();
        // Tuesday 2030-01-08 is full in every window.
        let windows: Vec<String> =
            ["09:00", "11:00", "14:00", "16:00"].iter().map(|t| format!("2030-01-08T{t}:00")).collect();
        // Three other customers in each window, each of them holding once.
        let customers: Vec<(String, &String)> =
            windows.iter().flat_map(|w| (0..3).map(move |i| (format!("other-{w}-{i}"), w))).collect();
        let holds = Holds::of(customers.iter().map(|(c, w)| HeldPlace {
            conversation_id: c,
            journey_id: "booking",
            window: w,
            erp_name: None,
        }));
        let a = Availability::count(&b, &Booked::default(), HeldFor { holds: Some(&holds), conversation_id: "me" });
        let days: std::collections::BTreeSet<String> = crate::guard::extract::visit_slots(&now, &b, Some(&a))
            .into_iter()
            .map(|o| o.id[..10].to_string())
            .collect();
        // Wednesday, Thursday, (Friday closed) Saturday: the full Tuesday does not count.
        assert!(!days.contains("2030-01-08"), "{days:?}");
        assert!(days.contains("2030-01-09") && days.contains("2030-01-10"), "{days:?}");
        assert!(!days.contains("2030-01-11"), "Friday is closed: {days:?}");
    }
}
