//! The pure engine, by step kind and by phase, without a server: each kind of transition, the
//! stuck ladder (also for stale buttons and for writing while the ERP works), Continue offered
//! once, a journey put aside and resumed, the refusal to ask again what the profile holds, and
//! events a phase refuses. Whole turns (plan → guards → decide) on the sample flows, no LLM, on a
//! fixed clock.

use std::path::Path;
use std::sync::Arc;

mod common;

use carewell::engine::{self, ConversationState, EventKind, InboundEvent};
use carewell::erp::ErpClient;
use carewell::flow::FlowSet;
use carewell::guard::Guards;
use common::engine_run::*;

/// A booking at its summary.
async fn at_summary(r: &mut Run) {
    r.say("I'd like to book a full wash, I'm Jane Doe, just once").await;
    r.say("Toyota Corolla ABC-1234").await;
    r.say("Villa 12, Al Wasl Road, Jumeirah").await;
    let d = r.say("tomorrow 10am").await;
    assert_eq!(r.step(), "booking/summary", "{}", said(&d));
    assert_eq!(r.phase(), "at_summary");
}

#[tokio::test]
async fn collect_steps_fill_and_move_on_and_branches_choose() {
    let mut r = Run::new("971500006001");
    let d = r.say("book a full wash").await;
    assert_eq!(r.step(), "booking/name");
    assert_eq!(r.phase(), "collecting");
    assert!(said(&d).contains("first and last name"));
    let d = r.say("Jane Doe").await;
    assert_eq!(
        edges(&d),
        vec![("name".into(), "service".into()), ("service".into(), "plan".into())],
        "service known: skipped"
    );
    let d = r.press("Subscription").await;
    assert_eq!(edges(&d), vec![("plan".into(), "frequency".into())], "the branch for a subscription");
    let mut once = Run::new("971500006002");
    once.say("book a full wash, I'm Jane Doe").await;
    let d = once.press("One-time").await;
    assert_eq!(edges(&d), vec![("plan".into(), "car".into())], "the default next");
}

#[tokio::test]
async fn a_summary_confirms_into_an_erp_write_and_its_answer_ends_the_journey() {
    let mut r = Run::new("971500006003");
    at_summary(&mut r).await;
    let d = r.press("Confirm").await;
    assert_eq!(r.step(), "booking/submit");
    assert_eq!(r.phase(), "awaiting_erp");
    assert_eq!(d.erp.len(), 1);
    let request = &d.erp[0];
    assert!(request.action.idempotency_key.ends_with(":create_booking"));
    let outcome = EventKind::ErpOutcome {
        journey_id: request.journey_id.clone(),
        action: "create_booking".into(),
        reference: Some("SAL-ORD-1".into()),
        error: None,
    };
    let d = r.event(outcome.clone()).await;
    assert!(said(&d).contains("You're booked, Jane!") && said(&d).contains("SAL-ORD-1"), "{}", said(&d));
    assert_eq!(r.step(), "-");
    assert_eq!(r.phase(), "idle");
    assert_eq!(r.state.journeys_completed, 1);
    // The same answer again changes nothing.
    let d = r.event(outcome).await;
    assert!(d.replies.is_empty() && has(&d, "ignored"), "{:?}", d.trace);
}

#[tokio::test]
async fn a_failed_write_ends_on_the_failure_step_and_cancel_ends_on_its_own() {
    let mut r = Run::new("971500006004");
    at_summary(&mut r).await;
    let d = r.press("Confirm").await;
    let journey_id = d.erp[0].journey_id.clone();
    let d = r
        .event(EventKind::ErpOutcome {
            journey_id,
            action: "create_booking".into(),
            reference: None,
            error: Some("erp.status: 500".into()),
        })
        .await;
    assert!(said(&d).contains("couldn't complete the booking"), "{}", said(&d));
    let mut c = Run::new("971500006005");
    at_summary(&mut c).await;
    let d = c.press("Cancel").await;
    assert_eq!(edges(&d), vec![("summary".into(), "cancelled".into())]);
    assert!(said(&d).contains("haven't booked anything"));
}

#[tokio::test]
async fn change_at_the_summary_asks_that_part_again_and_comes_back() {
    let mut r = Run::new("971500006006");
    at_summary(&mut r).await;
    let d = r.press("Change").await;
    assert_eq!(r.phase(), "choosing_change", "{}", said(&d));
    let d = r.press("Car").await;
    assert_eq!(edges(&d), vec![("(change)".into(), "car".into())]);
    assert_eq!(r.step(), "booking/car");
    assert!(!r.state.journey.as_ref().unwrap().slots.contains_key("car_plate"), "the car is cleared");
    let d = r.say("Honda Civic DXB 4521").await;
    assert_eq!(r.step(), "booking/summary");
    assert!(said(&d).contains("DXB 4521"));
}

#[tokio::test]
async fn the_stuck_ladder_rephrases_summarises_and_hands_off_and_continue_is_offered_once() {
    let mut r = Run::new("971500006007");
    r.say("book a full wash").await;
    let d = r.say("what's the weather").await;
    assert!(said(&d).contains("For example"), "rung 0: the reason and an example: {}", said(&d));
    let d = r.say("no idea").await;
    assert!(said(&d).contains("Let me put it another way"), "rung 1: {}", said(&d));
    let d = r.say("still nothing").await;
    assert!(options(&d).iter().any(|(_, t)| t == "Continue"), "rung 2: the summary: {}", said(&d));
    let d = r.press("Continue").await;
    assert!(said(&d).contains("first and last name"));
    r.say("hmm").await;
    let d = r.say("hmm").await;
    assert_eq!(r.phase(), "handed_off", "stuck again after Continue: a person: {}", said(&d));
    let d = r.say("hello?").await;
    assert!(d.replies.is_empty(), "silent while a person has it");
    // The person gives it back: the question is asked again.
    let d = r.event(EventKind::AgentRelease { agent: "Sam".into() }).await;
    assert_eq!(r.phase(), "collecting");
    assert!(said(&d).contains("first and last name"), "{}", said(&d));
}

#[tokio::test]
async fn stale_buttons_climb_the_ladder_too() {
    let mut r = Run::new("971500006008");
    r.say("book a full wash, I'm Jane Doe").await;
    let plan_buttons = options(r.last.as_ref().unwrap());
    r.press("One-time").await;
    let stale = plan_buttons.iter().find(|(_, t)| t == "Subscription").unwrap().clone();
    let mut saw_summary = false;
    for _ in 0..4 {
        let d = r.event(EventKind::Choice { id: stale.0.clone(), title: stale.1.clone() }).await;
        assert!(said(&d).contains("earlier question") || r.phase() == "handed_off", "{}", said(&d));
        saw_summary |= options(&d).iter().any(|(_, t)| t == "Start over");
        if r.phase() == "handed_off" {
            break;
        }
    }
    assert!(saw_summary, "the ladder's summary was reached");
    assert_eq!(r.phase(), "handed_off", "pressing stale buttons again and again reaches a person");
}

#[tokio::test]
async fn writing_while_the_erp_works_is_told_to_wait_and_then_offered_a_person() {
    let mut r = Run::new("971500006009");
    at_summary(&mut r).await;
    r.press("Confirm").await;
    let d = r.say("hello?").await;
    assert!(said(&d).contains("still confirming"), "{}", said(&d));
    assert!(d.erp.is_empty(), "nothing is written twice");
    r.say("any news?").await;
    let d = r.say("???").await;
    assert!(options(&d).iter().any(|(_, t)| t == "Talk to a person"), "a person offered: {}", said(&d));
    let d = r.say("hello??").await;
    assert_eq!(r.phase(), "handed_off", "{}", said(&d));
}

#[tokio::test]
async fn a_journey_put_aside_comes_back_when_the_one_in_front_ends() {
    let mut r = Run::new("971500006010");
    r.say("book a full wash").await;
    let d = r.say("actually I want to complain, the wash was dirty, streaks on the windows").await;
    assert_eq!(r.step(), "complaint/summary", "{}", said(&d));
    assert_eq!(r.state.suspended.len(), 1);
    assert_eq!(r.state.suspended[0].step, "name");
    let d = r.press("Confirm").await;
    let journey_id = d.erp[0].journey_id.clone();
    let d = r
        .event(EventKind::ErpOutcome {
            journey_id,
            action: "create_complaint".into(),
            reference: Some("ISS-1".into()),
            error: None,
        })
        .await;
    assert!(said(&d).contains("Now, back to your request"), "{}", said(&d));
    assert_eq!(r.step(), "booking/name");
    assert!(r.state.suspended.is_empty());
}

#[tokio::test]
async fn asking_again_what_the_profile_holds_is_refused() {
    let mut r = Run::new("971500006011");
    r.say("book a full wash").await;
    // The profile learns the name some other way (a conversation moved from an old number, a
    // state written by an older build) while the journey lacks it.
    let mut known = r.state.clone();
    known.profile.insert(
        "first_name".into(),
        carewell::engine::FilledSlot {
            value: carewell::engine::SlotValue::Text { value: "Jane".into() },
            source: carewell::engine::SlotSource::Parser,
            turn: 1,
        },
    );
    r.state = known;
    let err = r.try_event(EventKind::Text { body: "what?".into() }).await.unwrap_err();
    assert_eq!(err.code(), "engine.asked_filled_slot", "{err}");
}

#[tokio::test]
async fn an_event_the_phase_does_not_accept_is_refused_and_recorded() {
    let mut r = Run::new("971500006012");
    r.say("hi").await;
    let d = r.event(EventKind::AgentRelease { agent: "Sam".into() }).await;
    assert!(
        d.trace.iter().any(|e| e.what == "refused" && e.detail.contains("released refused while idle")),
        "{:?}",
        d.trace
    );
}

/// Copies the sample flows and prompts into a fresh folder, with `messages` as `flows/messages.yaml`,
/// and loads them.
/// What the bot says to `body` as a first message at `at` (Unix seconds).
async fn first_answer_at(body: &str, at: i64) -> String {
    let flows = FlowSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).unwrap();
    let state = ConversationState::new("971500000042");
    let event = InboundEvent::internal(
        "wamid.1".to_string(),
        state.customer.clone(),
        at,
        EventKind::Text { body: body.into() },
    );
    let plan = engine::plan(&flows, &state, &event, None);
    let guards = Guards::new(Arc::new(ErpClient::new(None, std::time::Duration::from_secs(60)).unwrap()), None);
    let g = guards.run(&flows, &plan, jiff::Timestamp::from_second(at).unwrap(), Default::default()).await;
    said(&engine::decide(&flows, &state, &event, &g).unwrap())
}

#[tokio::test]
async fn a_customer_handed_off_outside_business_hours_is_told_when_the_team_is_back() {
    let hour = 3600;
    let open = first_answer_at("I want to talk to a person", WEDNESDAY_10AM).await;
    assert!(open.contains("reply here shortly"), "{open}");
    // 21:00 on Wednesday (closes 19:00): back on Thursday at opening.
    let evening = first_answer_at("I want to talk to a person", WEDNESDAY_10AM + 11 * hour).await;
    assert!(evening.contains("closed right now") && evening.contains("Thursday at 08:00"), "{evening}");
    // 06:00 on Thursday: back the same morning.
    let early = first_answer_at("I want to talk to a person", WEDNESDAY_10AM + 20 * hour).await;
    assert!(early.contains("Thursday at 08:00"), "{early}");
    // 21:00 on Thursday: Friday is closed (business.yaml), so Saturday, at Saturday's own hour.
    let thursday_night = first_answer_at("I want to talk to a person", WEDNESDAY_10AM + 35 * hour).await;
    assert!(thursday_night.contains("Saturday at 09:00"), "{thursday_night}");
}

fn flows_with_messages(tag: &str, messages: &str) -> Result<FlowSet, carewell::flow::FlowError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = std::env::temp_dir().join(format!("carewell-engine-{tag}-{}", std::process::id()));
    for folder in ["flows", "prompts"] {
        std::fs::create_dir_all(copy.join(folder)).unwrap();
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), copy.join(folder).join(entry.file_name())).unwrap();
            }
        }
    }
    std::fs::write(copy.join("flows/messages.yaml"), messages).unwrap();
    let flows = FlowSet::load(&copy.join("flows"));
    std::fs::remove_dir_all(&copy).ok();
    flows
}

#[tokio::test]
async fn a_translated_messages_file_changes_every_fixed_sentence_without_touching_code() {
    let french = "welcome: \"Bonjour ! Bienvenue chez {business}. Comment pouvons-nous vous aider ?\"\n\
                  stale_button: \"Ce bouton appartient à une question précédente : je le laisse de côté.\"\n\
                  menu_button: \"Menu principal\"\n\
                  cancelled: \"Pas de souci, j'arrête ici.\"\n";
    let flows = flows_with_messages("fr", french).unwrap();
    let mut r = Run { flows, state: ConversationState::new("971500006020"), last: None, clock: WEDNESDAY_10AM + 60 };
    let d = r.say("bonjour").await;
    assert!(said(&d).starts_with("Bonjour ! Bienvenue chez"), "{}", said(&d));
    assert!(!said(&d).contains("Welcome"), "{}", said(&d));
    let d = r.event(EventKind::Choice { id: "m|a_flow_since_removed".into(), title: "Old".into() }).await;
    assert!(said(&d).contains("Ce bouton appartient à une question précédente"), "{}", said(&d));
    // A key left out keeps its built-in default.
    let english = Run::new("971500006021").flows;
    assert_eq!(r.flows.business.messages.not_understood, english.business.messages.not_understood);
}

#[test]
fn a_messages_file_with_a_placeholder_the_key_does_not_take_is_refused() {
    let Err(error) = flows_with_messages("bad", "cancelled: \"Bye {first_name}\"\n") else {
        panic!("a broken messages file is refused");
    };
    let error = error.to_string();
    assert!(error.contains("cancelled") && error.contains("first_name"), "{error}");
    assert!(!error.contains("flow.unknown_prompt"), "only the messages file is broken: {error}");
}
