//! The live holds of one business as a process keeps them between reads of the store: counted
//! per window once per read, shared by every turn until the next, and brought up to date by the
//! process's own commits ([`Holds::apply`]) instead of read again after each.

use std::collections::HashMap;

use super::HoldChange;

/// A place held by a conversation, as the store lists them: its journey, its window and, once
/// booked, the ERP document it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldPlace<'a> {
    /// The conversation holding it.
    pub conversation_id: &'a str,
    /// The journey it was taken for (a conversation holds at most one place per journey).
    pub journey_id: &'a str,
    /// The window, `YYYY-MM-DDTHH:MM:SS`.
    pub window: &'a str,
    /// The ERP document's name, once the booking is written.
    pub erp_name: Option<&'a str>,
}

/// One hold as [`Holds`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    window: String,
    erp_name: Option<String>,
}

/// A hold's key: (conversation, journey), as in the store's `slot_holds`.
type PlaceKey = (String, String);

/// One business's live holds, counted once per read of the store and shared by every turn until
/// the next read (a business with many crews has thousands of holds; a turn then only looks up
/// the windows and its own holds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds {
    /// Every hold, by (conversation, journey).
    places: HashMap<PlaceKey, Place>,
    /// Holds per window.
    pub(super) per_window: HashMap<String, u32>,
    /// The ERP documents holds stand for, each with its hold.
    documents: HashMap<String, PlaceKey>,
    /// Each conversation's holds not booked yet, by window: they do not count against it when it
    /// chooses a time (a booked one does: the booking exists).
    pub(super) pending: HashMap<String, Vec<String>>,
}

impl Holds {
    /// Counts `places` (a place listed twice for one journey counts once, the last listed).
    pub fn of<'a>(places: impl IntoIterator<Item = HeldPlace<'a>>) -> Holds {
        let mut holds = Holds::default();
        for p in places {
            let key = (p.conversation_id.to_string(), p.journey_id.to_string());
            holds.remove(&key);
            holds.insert(key, p.window.to_string(), p.erp_name.map(str::to_string));
        }
        holds
    }

    /// How many holds there are in all.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Whether a hold stands for the ERP document `name` (its booking then counts once, as the
    /// hold).
    pub fn stands_for(&self, name: &str) -> bool {
        self.documents.contains_key(name)
    }

    /// Applies `changes`, committed by `conversation_id`, as the store applied them (see
    /// `store::holds`): a hold moves to its new window, a booking names its hold (and replaces
    /// any other hold of the same document), a release lets an unbooked hold go. A read that
    /// already saw some of a run of changes may have the whole run applied again, in the order
    /// they were committed: it ends as the holds after the last. Expiry is not followed here:
    /// the next read leaves lapsed holds out.
    pub fn apply(&mut self, conversation_id: &str, changes: &[HoldChange]) {
        for change in changes {
            match change {
                HoldChange::Hold { journey, window, .. } => {
                    let key = (conversation_id.to_string(), journey.clone());
                    if self.places.get(&key).is_some_and(|p| &p.window == window) {
                        continue;
                    }
                    self.remove(&key);
                    self.insert(key, window.clone(), None);
                }
                HoldChange::Booked { journey, window, erp_name, .. } => {
                    let key = (conversation_id.to_string(), journey.clone());
                    if let Some(other) = self.documents.get(erp_name).filter(|k| **k != key).cloned() {
                        self.remove(&other);
                    }
                    // The store names the journey's hold where it is; the window is used only
                    // when the hold had lapsed and is taken again.
                    let window = match self.remove(&key) {
                        Some(place) => place.window,
                        None => window.clone(),
                    };
                    self.insert(key, window, Some(erp_name.clone()));
                }
                HoldChange::Release { journey } => {
                    let key = (conversation_id.to_string(), journey.clone());
                    if self.places.get(&key).is_some_and(|p| p.erp_name.is_none()) {
                        self.remove(&key);
                    }
                }
            }
        }
    }

    fn insert(&mut self, key: PlaceKey, window: String, erp_name: Option<String>) {
        *self.per_window.entry(window.clone()).or_default() += 1;
        match &erp_name {
            Some(name) => {
                self.documents.insert(name.clone(), key.clone());
            }
            None => self.pending.entry(key.0.clone()).or_default().push(window.clone()),
        }
        self.places.insert(key, Place { window, erp_name });
    }

    fn remove(&mut self, key: &PlaceKey) -> Option<Place> {
        let place = self.places.remove(key)?;
        if let Some(n) = self.per_window.get_mut(&place.window) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_window.remove(&place.window);
            }
        }
        match &place.erp_name {
            Some(name) => {
                self.documents.remove(name);
            }
            None => {
                if let Some(windows) = self.pending.get_mut(&key.0) {
                    if let Some(i) = windows.iter().position(|w| *w == place.window) {
                        windows.swap_remove(i);
                    }
                    if windows.is_empty() {
                        self.pending.remove(&key.0);
                    }
                }
            }
        }
        Some(place)
    }
}

/// The holds as one conversation sees them when it chooses a time: every other conversation's
/// and its own booked ones. The default sees none (a business without a capacity, a test).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeldFor<'a> {
    /// The business's live holds.
    pub holds: Option<&'a Holds>,
    /// The conversation choosing.
    pub conversation_id: &'a str,
}

impl HeldFor<'_> {
    /// How many holds count.
    pub fn len(&self) -> usize {
        let Some(h) = self.holds else { return 0 };
        h.len() - h.pending.get(self.conversation_id).map_or(0, Vec::len)
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NINE: &str = "2030-01-08T09:00:00";
    const ELEVEN: &str = "2030-01-08T11:00:00";

    fn hold(journey: &str, window: &str) -> HoldChange {
        HoldChange::Hold { journey: journey.into(), window: window.into(), places: 3, until_ms: 0 }
    }

    fn booked(journey: &str, window: &str, erp_name: &str) -> HoldChange {
        HoldChange::Booked { journey: journey.into(), window: window.into(), erp_name: erp_name.into(), until_ms: 0 }
    }

    fn release(journey: &str) -> HoldChange {
        HoldChange::Release { journey: journey.into() }
    }

    fn place<'a>(
        conversation_id: &'a str,
        journey_id: &'a str,
        window: &'a str,
        erp: Option<&'a str>,
    ) -> HeldPlace<'a> {
        HeldPlace { conversation_id, journey_id, window, erp_name: erp }
    }

    #[test]
    fn a_commit_applied_gives_what_a_fresh_read_would() {
        let mut holds = Holds::of([place("c1", "j1", NINE, None), place("c2", "j2", NINE, Some("SO-2"))]);
        // c1 moves its hold to 11:00, c3 takes one at 9:00, c1 books.
        holds.apply("c1", &[hold("j1", ELEVEN)]);
        holds.apply("c3", &[hold("j3", NINE)]);
        holds.apply("c1", &[booked("j1", ELEVEN, "SO-1")]);
        let read = Holds::of([
            place("c2", "j2", NINE, Some("SO-2")),
            place("c3", "j3", NINE, None),
            place("c1", "j1", ELEVEN, Some("SO-1")),
        ]);
        assert_eq!(holds, read);
        assert_eq!(holds.per_window[NINE], 2);
        assert!(holds.stands_for("SO-1") && holds.stands_for("SO-2"));
        assert_eq!(
            HeldFor { holds: Some(&holds), conversation_id: "c3" }.len(),
            2,
            "its own pending hold is not counted"
        );
    }

    #[test]
    fn a_release_lets_only_an_unbooked_hold_go_and_a_moved_booking_replaces_its_old_hold() {
        let mut holds = Holds::of([place("c1", "j1", NINE, None), place("c2", "j2", NINE, Some("SO-2"))]);
        holds.apply("c1", &[release("j1")]);
        holds.apply("c2", &[release("j2")]);
        assert_eq!(holds, Holds::of([place("c2", "j2", NINE, Some("SO-2"))]), "a booked hold stays");
        // SO-2 is moved by another journey (a reschedule): its earlier hold goes.
        holds.apply("c2", &[hold("j9", ELEVEN), booked("j9", ELEVEN, "SO-2")]);
        assert_eq!(holds, Holds::of([place("c2", "j9", ELEVEN, Some("SO-2"))]));
        assert!(!holds.per_window.contains_key(NINE), "an empty window is not kept");
    }

    #[test]
    fn applying_a_change_again_changes_nothing() {
        let changes = [hold("j1", ELEVEN), booked("j1", ELEVEN, "SO-1"), hold("j2", NINE), release("j2")];
        let mut once = Holds::of([place("c1", "j1", NINE, None)]);
        once.apply("c1", &changes);
        let mut twice = once.clone();
        twice.apply("c1", &changes[..1]);
        twice.apply("c1", &changes);
        assert_eq!(once, twice);
        // A booking whose hold lapsed is taken again in the window the booking names.
        let mut lapsed = Holds::default();
        lapsed.apply("c4", &[booked("j4", NINE, "SO-4")]);
        assert_eq!(lapsed, Holds::of([place("c4", "j4", NINE, Some("SO-4"))]));
    }
}
