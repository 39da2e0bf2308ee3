//! Messages as customers really write them, read by the whole turn (plan → guards → decide) with
//! no LLM, on a fixed clock: Wednesday 2 December 2026, 10:00 in Dubai. Each case is a message the
//! product once misread; the test says what it must read now, and what it must not.

use std::path::Path;
use std::sync::Arc;

use carewell::engine::{self, ConversationState, Decision, EventKind, InboundEvent};
use carewell::erp::ErpClient;
use carewell::flow::FlowSet;
use carewell::guard::Guards;

/// Wednesday 2 December 2026, 10:00 in Dubai (06:00 UTC).
const WEDNESDAY_10AM: i64 = 1_796_191_200;

fn guards() -> Guards {
    Guards::new(Arc::new(ErpClient::new(None, std::time::Duration::from_secs(60)).unwrap()), None)
}

fn flows_at(root: &Path) -> FlowSet {
    FlowSet::load(&root.join("flows")).unwrap()
}

fn project() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

async fn say(flows: &FlowSet, state: &ConversationState, n: i64, body: &str) -> Decision {
    let event = InboundEvent::internal(
        format!("wamid.{n}"),
        state.customer.clone(),
        WEDNESDAY_10AM + n,
        EventKind::Text { body: body.into() },
    );
    let plan = engine::plan(flows, state, &event, None);
    let g =
        guards().run(flows, &plan, jiff::Timestamp::from_second(event.timestamp).unwrap(), Default::default()).await;
    engine::decide(flows, state, &event, &g).unwrap()
}

fn slot(d: &Decision, name: &str) -> Option<String> {
    d.state.journey.as_ref().and_then(|j| j.slots.get(name)).map(|s| s.value.display())
}

fn said(d: &Decision) -> String {
    d.replies.iter().map(|r| r.body().to_string()).collect::<Vec<_>>().join("\n---\n")
}

#[tokio::test]
async fn the_clock_is_wednesday_morning_in_dubai() {
    let t =
        jiff::Timestamp::from_second(WEDNESDAY_10AM).unwrap().to_zoned(jiff::tz::TimeZone::get("Asia/Dubai").unwrap());
    assert_eq!(t.strftime("%A %-d %B %Y %H:%M").to_string(), "Wednesday 2 December 2026 10:00");
}

#[tokio::test]
async fn a_first_message_that_says_everything_is_read_whole() {
    let flows = flows_at(&project());
    let state = ConversationState::new("971500002001");
    let d = say(
        &flows,
        &state,
        1,
        "Hi, this is Priya Raman. I need an interior detailing for my grey Honda Civic KA 01 AB 1234 next Tuesday at 11am at 42 Lake View Road, Springfield",
    )
    .await;
    assert_eq!(slot(&d, "first_name").as_deref(), Some("Priya"));
    assert_eq!(slot(&d, "last_name").as_deref(), Some("Raman"));
    assert_eq!(slot(&d, "service").as_deref(), Some("Interior Detailing"));
    assert_eq!(slot(&d, "car_make").as_deref(), Some("Honda"));
    assert_eq!(slot(&d, "car_model").as_deref(), Some("Civic"));
    assert_eq!(slot(&d, "car_plate").as_deref(), Some("KA 01 AB 1234"), "the whole plate");
    assert_eq!(slot(&d, "visit_time").as_deref(), Some("Tue 8 Dec, 11:00"), "the coming Tuesday");
    assert_eq!(slot(&d, "address").as_deref(), Some("42 Lake View Road, Springfield"), "with the town");
    // Only the plan is left to ask.
    assert!(said(&d).contains("one-time visit or a subscription"), "{}", said(&d));
}

#[tokio::test]
async fn a_name_given_with_the_request_is_never_asked_again() {
    let flows = flows_at(&project());
    for (n, message) in [
        "Hi, I'm Omar Haddad and I want to book a full wash",
        "book full wash. Omar Haddad",
        "My name is Omar Haddad, I'd like to book a full wash for tomorrow 10am",
    ]
    .into_iter()
    .enumerate()
    {
        let state = ConversationState::new(&format!("97150000210{n}"));
        let d = say(&flows, &state, 1, message).await;
        assert_eq!(slot(&d, "first_name").as_deref(), Some("Omar"), "{message}");
        assert_eq!(slot(&d, "last_name").as_deref(), Some("Haddad"), "{message}");
        assert_eq!(slot(&d, "service").as_deref(), Some("Full Wash"), "{message}");
        assert!(!said(&d).contains("first and last name"), "{message}: asked the name again:\n{}", said(&d));
    }
}

#[tokio::test]
async fn the_car_as_people_type_it() {
    let flows = flows_at(&project());
    let mut state = ConversationState::new("971500002201");
    let d = say(&flows, &state, 1, "I'd like to book a full wash, I'm Jane Doe, just once").await;
    assert!(said(&d).contains("Which car"), "{}", said(&d));
    state = d.state;
    for (message, make, model, plate) in [
        ("It's a blue Mazda 3, plate DXB 4521", "Mazda", "3", "DXB 4521"),
        ("Mazda 3 DXB 4521", "Mazda", "3", "DXB 4521"),
        ("CX-5, plate DXB 4521", "Mazda", "CX-5", "DXB 4521"),
        ("grey Honda Civic, plate KA 01 AB 1234", "Honda", "Civic", "KA 01 AB 1234"),
        ("toyota land cruiser KA01AB1234", "Toyota", "Land Cruiser", "KA01AB1234"),
    ] {
        let d = say(&flows, &state, 2, message).await;
        assert_eq!(slot(&d, "car_make").as_deref(), Some(make), "{message}");
        assert_eq!(slot(&d, "car_model").as_deref(), Some(model), "{message}");
        assert_eq!(slot(&d, "car_plate").as_deref(), Some(plate), "{message}");
        assert!(said(&d).contains("Where should we come"), "{message}: {}", said(&d));
    }
    // "it's a Mazda3" gives make and model and asks only the plate; the plate alone, as India
    // writes it, is then taken.
    let d = say(&flows, &state, 3, "it's a Mazda3").await;
    assert_eq!((slot(&d, "car_make").as_deref(), slot(&d, "car_model").as_deref()), (Some("Mazda"), Some("3")));
    assert!(said(&d).contains("plate"), "{}", said(&d));
    let d = say(&flows, &d.state, 4, "KA01AB1234").await;
    assert_eq!(slot(&d, "car_plate").as_deref(), Some("KA01AB1234"));
}

#[tokio::test]
async fn a_service_named_from_the_catalog_is_a_booking() {
    let root = std::env::temp_dir().join(format!("carewell-understanding-{}", uuid::Uuid::new_v4().simple()));
    for sub in ["flows", "prompts", "fixtures"] {
        copy_dir(&project().join(sub), &root.join(sub));
    }
    let catalog = std::fs::read_to_string(root.join("fixtures/catalog.json")).unwrap();
    std::fs::write(root.join("fixtures/catalog.json"), catalog.replace("Interior Detailing", "Interior Cleaning"))
        .unwrap();
    let flows = flows_at(&root);
    let state = ConversationState::new("971500002301");
    let d =
        say(&flows, &state, 1, "Hi, this is Priya Raman. I need an Interior Cleaning for my grey Honda Civic").await;
    assert_eq!(d.state.journey.as_ref().map(|j| j.flow.as_str()), Some("booking"), "{}", said(&d));
    assert_eq!(slot(&d, "service").as_deref(), Some("Interior Cleaning"));
    assert_eq!(slot(&d, "first_name").as_deref(), Some("Priya"));
}

#[tokio::test]
async fn a_word_of_one_service_picks_it_a_word_of_several_asks_which() {
    let flows = flows_at(&project());
    let state = ConversationState::new("971500002401");
    let d = say(&flows, &state, 1, "I want to book, I'm Jane Doe").await;
    assert!(said(&d).contains("Which service"), "{}", said(&d));
    let picked = say(&flows, &d.state, 2, "Interior").await;
    assert_eq!(slot(&picked, "service").as_deref(), Some("Interior Detailing"));
    let typo = say(&flows, &d.state, 2, "interor").await;
    assert_eq!(slot(&typo, "service").as_deref(), Some("Interior Detailing"));
    let several = say(&flows, &d.state, 2, "wash").await;
    assert_eq!(slot(&several, "service"), None);
    let asked = said(&several);
    assert!(asked.contains("Did you mean Exterior Wash or Full Wash?"), "{asked}");
    let offered: Vec<String> = several
        .replies
        .iter()
        .flat_map(|r| match r {
            engine::Reply::Choices { options, .. } => options.iter().map(|o| o.title.clone()).collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(offered, ["Exterior Wash", "Full Wash"], "only the two washes are offered again");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, target).unwrap();
        }
    }
}
