//! Free-text questions never swallow a message about something else. At "Where should we come?"
//! and at a complaint's "what happened?", a message that asks for another journey puts this one
//! aside and starts that one (reading the message for it); an address that is not clearly one is
//! asked about before it is taken; a description that merely mentions a service stays a
//! description. And the menu's own stuck ladder: the same unmatched message three times reaches
//! a person. Whole turns (plan → guards → decide), no LLM, fixed clock.

use std::path::Path;
use std::sync::Arc;

use carewell::engine::{self, ConversationState, Decision, EventKind, InboundEvent, Reply};
use carewell::erp::ErpClient;
use carewell::flow::FlowSet;
use carewell::guard::Guards;

/// Wednesday 2 December 2026, 10:00 in Dubai.
const WEDNESDAY_10AM: i64 = 1_796_191_200;

fn flows() -> FlowSet {
    FlowSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).unwrap()
}

async fn turn(flows: &FlowSet, state: &ConversationState, kind: EventKind) -> Decision {
    let n = state.turns as i64 + 1;
    let event = InboundEvent::internal(format!("wamid.{n}"), state.customer.clone(), WEDNESDAY_10AM + n, kind);
    let plan = engine::plan(flows, state, &event, None);
    let guards = Guards::new(Arc::new(ErpClient::new(None, std::time::Duration::from_secs(60)).unwrap()), None);
    let g = guards.run(flows, &plan, jiff::Timestamp::from_second(event.timestamp).unwrap(), Default::default()).await;
    engine::decide(flows, state, &event, &g).unwrap()
}

async fn say(flows: &FlowSet, state: &ConversationState, body: &str) -> Decision {
    turn(flows, state, EventKind::Text { body: body.into() }).await
}

async fn press(flows: &FlowSet, d: &Decision, title: &str) -> Decision {
    let option = d
        .replies
        .iter()
        .flat_map(|r| match r {
            Reply::Choices { options, .. } => options.clone(),
            _ => vec![],
        })
        .find(|o| o.title == title)
        .unwrap_or_else(|| panic!("no option {title:?} in {}", said(d)));
    turn(flows, &d.state, EventKind::Choice { id: option.id, title: option.title }).await
}

/// Whether the turn started a journey of `flow` (it may have ended in the same turn: "nothing is
/// due" ends a payment at once).
fn starts(d: &Decision, flow: &str) -> bool {
    d.trace.iter().any(|e| e.what == "start" && e.detail.starts_with(&format!("journey {flow} ")))
}

fn said(d: &Decision) -> String {
    d.replies.iter().map(|r| r.body().to_string()).collect::<Vec<_>>().join("\n---\n")
}

fn step(d: &Decision) -> String {
    d.state.journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)).unwrap_or_else(|| "-".into())
}

fn slot(d: &Decision, name: &str) -> Option<String> {
    d.state.journey.as_ref().and_then(|j| j.slots.get(name)).map(|s| s.value.display())
}

/// A booking at its address question.
async fn at_address(flows: &FlowSet, customer: &str) -> Decision {
    let state = ConversationState::new(customer);
    let d = say(flows, &state, "I'd like to book a full wash, I'm Jane Doe, just once").await;
    let d = say(flows, &d.state, "Toyota Corolla ABC-1234").await;
    assert_eq!(step(&d), "booking/address", "{}", said(&d));
    d
}

/// A complaint at its "what happened?" question.
async fn at_details(flows: &FlowSet, customer: &str) -> Decision {
    let state = ConversationState::new(customer);
    let d = say(flows, &state, "I want to make a complaint").await;
    let d = say(flows, &d.state, "service quality").await;
    assert_eq!(step(&d), "complaint/details", "{}", said(&d));
    d
}

#[tokio::test]
async fn at_the_address_question_another_request_is_a_digression_not_an_address() {
    let flows = flows();
    let cases: &[(&str, &str)] = &[
        (
            "Actually wait, I have a complaint: last week's exterior wash left streaks all over the windows.",
            "complaint",
        ),
        ("Oh, and I also need a full detailing for my second car, a black Honda Civic, plate TB66BBB", "booking"),
        ("Can I pay my invoice first?", "payment"),
        ("I want to reschedule my other booking", "reschedule"),
        ("how much does it cost?", "enquiry"),
        ("do you have any offers?", "offers"),
        ("what's the status of my booking?", "status"),
        ("your staff scratched my car last time", "complaint"),
        ("the washing guy scratched my door last time!", "complaint"),
        ("wait, is there a discount for two cars?", "offers"),
        ("I'd rather move my appointment from last week first", "reschedule"),
    ];
    for (n, (message, flow)) in cases.iter().enumerate() {
        let d = at_address(&flows, &format!("97150000400{n}")).await;
        let next = say(&flows, &d.state, message).await;
        assert!(starts(&next, flow), "{message:?} starts {flow}: {}", said(&next));
        let booking = next
            .state
            .suspended
            .iter()
            .chain(next.state.journey.iter())
            .find(|j| j.flow == "booking" && j.step == "address");
        assert!(
            booking.is_some_and(|b| !b.slots.contains_key("address")),
            "{message:?}: the booking waits (aside, or back after a journey that ended at once), its address empty"
        );
        assert!(!said(&next).contains("Here is your booking"), "{message:?} was taken for an address");
    }
    // The complaint is read from the message: it does not ask what happened again, and the
    // booking comes back after it.
    let d = at_address(&flows, "971500004100").await;
    let complaint = say(&flows, &d.state, cases[0].0).await;
    assert!(
        complaint.state.journey.as_ref().unwrap().slots.contains_key("details"),
        "the complaint keeps the customer's words: {}",
        said(&complaint)
    );
    // The second car's details are read for the second booking.
    let d = at_address(&flows, "971500004101").await;
    let second = say(&flows, &d.state, cases[1].0).await;
    assert_eq!(slot(&second, "car_model").as_deref(), Some("Civic"));
    assert_eq!(slot(&second, "car_plate").as_deref(), Some("TB66BBB"));
}

#[tokio::test]
async fn at_the_address_question_what_is_not_clearly_an_address_is_asked_about() {
    let flows = flows();
    // Clear addresses are taken.
    for address in ["Villa 12, Al Wasl Road, Jumeirah", "42 Lake View Road, Springfield", "flat 4B marina heights"] {
        let d = at_address(&flows, "971500004200").await;
        let next = say(&flows, &d.state, address).await;
        assert_eq!(slot(&next, "address").as_deref(), Some(address), "{}", said(&next));
    }
    // Unsure ones are asked about; yes takes it, no asks again.
    let d = at_address(&flows, "971500004201").await;
    let asked = say(&flows, &d.state, "near the mall").await;
    assert!(said(&asked).contains("is “near the mall” your address?"), "{}", said(&asked));
    assert_eq!(slot(&asked, "address"), None);
    let yes = press(&flows, &asked, "Yes").await;
    assert_eq!(slot(&yes, "address").as_deref(), Some("near the mall"));
    assert!(said(&yes).contains("When would suit you"), "{}", said(&yes));
    let typed_yes = say(&flows, &asked.state, "yes").await;
    assert_eq!(slot(&typed_yes, "address").as_deref(), Some("near the mall"));
    let no = say(&flows, &asked.state, "no").await;
    assert_eq!(slot(&no, "address"), None);
    assert!(said(&no).contains("Where should we come"), "{}", said(&no));
    let instead = say(&flows, &asked.state, "Villa 3, Street 7, Al Barsha 2").await;
    assert_eq!(slot(&instead, "address").as_deref(), Some("Villa 3, Street 7, Al Barsha 2"), "a new answer wins");
    // Not an address, not a request: asked again, nothing taken.
    for message in ["I'm not sure, can you call me?", "why do you need that", "hmm"] {
        let d = at_address(&flows, "971500004202").await;
        let next = say(&flows, &d.state, message).await;
        assert_eq!(slot(&next, "address"), None, "{message:?}: {}", said(&next));
        assert_eq!(step(&next), "booking/address", "{message:?}");
    }
    // "forget it" stops the booking.
    let d = at_address(&flows, "971500004203").await;
    let stopped = say(&flows, &d.state, "actually forget it").await;
    assert!(stopped.state.journey.is_none(), "{}", said(&stopped));
}

#[tokio::test]
async fn at_a_complaints_description_requests_digress_and_descriptions_stay() {
    let flows = flows();
    let digressions: &[(&str, &str)] = &[
        ("Actually, can I also book a full wash for tomorrow 10am?", "booking"),
        ("I'd like to pay my invoice too", "payment"),
        ("can you reschedule my booking instead", "reschedule"),
        ("by the way do you have any offers", "offers"),
    ];
    for (n, (message, flow)) in digressions.iter().enumerate() {
        let d = at_details(&flows, &format!("97150000430{n}")).await;
        let next = say(&flows, &d.state, message).await;
        assert!(starts(&next, flow), "{message:?} starts {flow}: {}", said(&next));
        let complaint = next.state.suspended.iter().chain(next.state.journey.iter()).find(|j| j.flow == "complaint");
        assert!(
            complaint.is_some_and(|c| !c.slots.contains_key("details")),
            "{message:?}: the complaint waits, unfilled"
        );
    }
    for description in [
        "The exterior wash left streaks on the windows",
        "they were late and the polish was patchy",
        "the guy booked for 10 came at 12",
        "my invoice was wrong, I was charged twice",
        "your technician scratched the bumper and did not say anything",
    ] {
        let d = at_details(&flows, "971500004310").await;
        let next = say(&flows, &d.state, description).await;
        assert_eq!(slot(&next, "details").as_deref(), Some(description), "{description:?}: {}", said(&next));
        assert!(said(&next).contains("I'll file this"), "{description:?}: {}", said(&next));
    }
    let d = at_details(&flows, "971500004311").await;
    let stopped = say(&flows, &d.state, "never mind").await;
    assert!(stopped.state.journey.is_none(), "{}", said(&stopped));
}

#[tokio::test]
async fn the_same_unmatched_message_climbs_a_ladder_at_the_menu() {
    let flows = flows();
    let state = ConversationState::new("971500004400");
    let first = say(&flows, &state, "blah blah").await;
    assert!(said(&first).contains("How can we help"), "{}", said(&first));
    let second = say(&flows, &first.state, "blah blah").await;
    assert!(said(&second).contains("I can book a visit"), "what the bot can do: {}", said(&second));
    assert!(
        second.replies.iter().any(
            |r| matches!(r, Reply::Choices { options, .. } if options.iter().any(|o| o.title == "Talk to a person"))
        )
    );
    let third = say(&flows, &second.state, "blah blah").await;
    assert!(third.state.handoff().is_some(), "a person takes over: {}", said(&third));
    // A different message in between starts the count again.
    let state = ConversationState::new("971500004401");
    let a = say(&flows, &state, "blah").await;
    let b = say(&flows, &a.state, "something else").await;
    let c = say(&flows, &b.state, "blah").await;
    assert!(c.state.handoff().is_none() && !said(&c).contains("I can book a visit"), "{}", said(&c));
}
