//! Micro-benchmarks of the hot path: webhook parsing and signature check, the transition
//! function, the deterministic extractors, flow loading, and state (de)serialisation.
//! Run with `cargo bench`; numbers are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;

use carewell::channel::whatsapp::{signature, webhook};
use carewell::engine::{self, ConversationState, EventKind, GuardResults, InboundEvent};
use carewell::flow::FlowSet;
use criterion::{Criterion, criterion_group, criterion_main};

fn flows() -> FlowSet {
    FlowSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).expect("shipped flows load")
}

fn event(kind: EventKind) -> InboundEvent {
    InboundEvent {
        message_id: "wamid.1".into(),
        customer: "971500000001".into(),
        profile_name: None,
        timestamp: 1_795_410_000,
        context_id: None,
        kind,
        throttled: false,
        followed: false,
    }
}

const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"109876543210987"},"contacts":[{"profile":{"name":"Jane"},"wa_id":"971500000001"}],"messages":[{"from":"971500000001","id":"wamid.HBgMOTcxNTAwMDAwMDAxFQIAEhgUM0FBQjEyMzQ1Njc4OTBBQkNERUYA","timestamp":"1795410000","type":"text","text":{"body":"I want a full wash for my white Corolla ABC-123 tomorrow at 9"}}]}}]}]}"#;

fn benches(c: &mut Criterion) {
    let secret = b"app-secret";
    let sig = signature::sign(secret, BODY.as_bytes());
    c.bench_function("webhook: verify signature + parse", |b| {
        b.iter(|| {
            signature::verify(secret, black_box(BODY.as_bytes()), Some(&sig)).unwrap();
            black_box(webhook::parse(BODY.as_bytes()).unwrap())
        })
    });

    let set = flows();
    c.bench_function("flows: load and check flows/", |b| b.iter(|| black_box(flows())));

    let flow = set.flow("booking").unwrap().clone();
    let now = jiff::Timestamp::from_second(1_795_410_000).unwrap().to_zoned(set.business.time_zone.clone());
    let catalog: Vec<_> = serde_json::from_str::<serde_json::Value>(include_str!("../fixtures/catalog.json")).unwrap()
        ["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| carewell::flow::graph::ChoiceOption {
            id: r["item_code"].as_str().unwrap().into(),
            title: r["item_name"].as_str().unwrap().into(),
            description: None,
            synonyms: vec![],
            price: r["standard_rate"].as_f64(),
        })
        .collect();
    let others: Vec<String> = flow.slots.keys().cloned().collect();
    let options = |slot: &str| if slot == "service" { catalog.clone() } else { vec![] };
    c.bench_function("extract: multi-slot message, every slot", |b| {
        b.iter(|| {
            black_box(carewell::guard::extract::extract(
                black_box("I want a full wash for my white Toyota Corolla ABC-123 tomorrow at 9 at 12 Oak Street"),
                &flow,
                &[],
                &others,
                &options,
                &set.business,
                &now,
                None,
            ))
        })
    });

    // The transition function: a typed turn that starts a journey, and a button press.
    let state = ConversationState::new("971500000001");
    let start = event(EventKind::Text { body: "book a full wash".into() });
    let mut guards = GuardResults { flow: Some("booking".into()), ..Default::default() };
    guards.lookups.insert("catalog".into(), catalog.clone());
    c.bench_function("engine: decide (typed turn starting a journey)", |b| {
        b.iter(|| black_box(engine::decide(&set, black_box(&state), &start, &guards).unwrap()))
    });
    let started = engine::decide(&set, &state, &start, &guards).unwrap().state;
    let named = engine::decide(&set, &started, &event(EventKind::Text { body: "Jane Doe".into() }), &{
        let mut g = guards.clone();
        g.slots.insert(
            "first_name".into(),
            engine::Extracted {
                value: engine::SlotValue::Text { value: "Jane".into() },
                source: engine::SlotSource::Parser,
                evidence: "Jane".into(),
            },
        );
        g.slots.insert(
            "last_name".into(),
            engine::Extracted {
                value: engine::SlotValue::Text { value: "Doe".into() },
                source: engine::SlotSource::Parser,
                evidence: "Doe".into(),
            },
        );
        g
    })
    .unwrap()
    .state;
    let press = event(EventKind::Choice {
        id: "b|booking|1|service|set:service=SVC-FULL-WASH".into(),
        title: "Full Wash".into(),
    });
    c.bench_function("engine: decide (button press)", |b| {
        b.iter(|| black_box(engine::decide(&set, black_box(&named), &press, &guards).unwrap()))
    });

    let json = serde_json::to_string(&named).unwrap();
    c.bench_function("state: serialise", |b| b.iter(|| black_box(serde_json::to_string(black_box(&named)).unwrap())));
    c.bench_function("state: deserialise", |b| {
        b.iter(|| black_box(serde_json::from_str::<ConversationState>(black_box(&json)).unwrap()))
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
