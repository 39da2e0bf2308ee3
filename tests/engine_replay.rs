//! The transition function is pure: replaying stored events with their stored guard results
//! reproduces the same states and effects, without the guards (or a clock) being consulted again.

use std::path::Path;

use carewell::engine::{self, ConversationState, EventKind, GuardResults, InboundEvent};
use carewell::erp::ErpClient;
use carewell::flow::FlowSet;
use carewell::guard::Guards;

fn event(n: i64, kind: EventKind) -> InboundEvent {
    InboundEvent {
        message_id: format!("wamid.{n}"),
        customer: "971500000900".into(),
        profile_name: Some("Jane".into()),
        // Monday 2026-11-23 09:00 in Dubai: "tomorrow 10am" is Tuesday, an open day.
        timestamp: 1_795_410_000 + n,
        context_id: None,
        kind,
        throttled: false,
        followed: false,
    }
}

fn text(n: i64, body: &str) -> InboundEvent {
    event(n, EventKind::Text { body: body.into() })
}

#[tokio::test]
async fn replaying_a_journey_gives_the_same_states_and_effects() {
    let flows = FlowSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).unwrap();
    let guards =
        Guards::new(std::sync::Arc::new(ErpClient::new(None, std::time::Duration::from_secs(60)).unwrap()), None);
    let script = [
        text(1, "I want to book a full wash, my name is Jane Doe"),
        text(2, "subscription"),
        text(3, "every two weeks"),
        text(4, "Nissan Patrol DXB 777"),
        event(
            5,
            EventKind::Location {
                latitude: 25.1,
                longitude: 55.2,
                name: Some("Villa 3".into()),
                address: Some("Al Barsha".into()),
            },
        ),
        text(6, "tomorrow 10am"),
        text(7, "yes"),
    ];
    let mut state = ConversationState::new("971500000900");
    let mut recorded: Vec<(InboundEvent, GuardResults)> = Vec::new();
    let mut outputs = Vec::new();
    for e in &script {
        let plan = engine::plan(&flows, &state, e, None);
        let g = guards.run(&flows, &plan, jiff::Timestamp::from_second(e.timestamp).unwrap(), Default::default()).await;
        let d = engine::decide(&flows, &state, e, &g).unwrap();
        recorded.push((e.clone(), g));
        outputs.push(serde_json::to_value((&d.replies, &d.erp, &d.trace)).unwrap());
        state = d.state;
    }
    let first = serde_json::to_value(&state).unwrap();
    assert_eq!(first["journey"]["step"], "submit", "the journey waits for the ERP: {first}");
    assert_eq!(first["journey"]["slots"]["frequency"]["value"]["id"], "fortnightly");
    assert_eq!(first["journey"]["slots"]["first_name"]["value"]["value"], "Jane");
    assert_eq!(first["journey"]["slots"]["visit_time"]["value"]["civil"], "2026-11-24T10:00:00");

    // Replay from the stored events and guard results only.
    let mut replayed = ConversationState::new("971500000900");
    for (i, (e, g)) in recorded.iter().enumerate() {
        let d = engine::decide(&flows, &replayed, e, g).unwrap();
        assert_eq!(
            serde_json::to_value((&d.replies, &d.erp, &d.trace)).unwrap(),
            outputs[i],
            "turn {i} differs on replay"
        );
        replayed = d.state;
    }
    assert_eq!(serde_json::to_value(&replayed).unwrap(), first);

    // The ERP answer completes the journey with the reference in the message.
    let journey_id = first["journey"]["id"].as_str().unwrap().to_string();
    let answer = event(
        8,
        EventKind::ErpOutcome {
            journey_id: journey_id.clone(),
            action: "create_booking".into(),
            reference: Some("SO-1".into()),
            error: None,
        },
    );
    let d = engine::decide(&flows, &replayed, &answer, &GuardResults::default()).unwrap();
    assert!(d.replies.iter().any(|r| r.body().contains("Reference: SO-1")));
    assert!(d.state.journey.is_none());
    // A duplicate of the answer is refused by the session life cycle and changes nothing.
    let again = engine::decide(&flows, &d.state, &answer, &GuardResults::default()).unwrap();
    assert!(again.replies.is_empty());
    assert_eq!(again.trace[0].what, "ignored");
}
