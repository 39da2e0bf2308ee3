//! What the compiler works out about a flow beyond its references: which slots are filled on
//! every path to a step, and a sample of the values an ERP body is rendered with for its check.

#[allow(unused_imports)]
use super::*;

/// For each step, the slots filled on every path from the start to it (a greatest fixed point
/// over the graph; the summary's Change edges are left out, since they only ever revisit).
pub(super) fn definitely_filled(steps: &IndexMap<String, Step>) -> Vec<(String, BTreeSet<String>)> {
    let all: BTreeSet<String> = steps
        .values()
        .flat_map(|s| match &s.kind {
            StepKind::Collect { slots, .. } => slots.clone(),
            _ => vec![],
        })
        .collect();
    let start = steps.keys().next().cloned().unwrap_or_default();
    let mut filled_in: HashMap<String, BTreeSet<String>> =
        steps.keys().map(|k| (k.clone(), if *k == start { BTreeSet::new() } else { all.clone() })).collect();
    loop {
        let mut changed = false;
        for step in steps.values() {
            let mut out = filled_in.get(&step.id).cloned().unwrap_or_default();
            if let StepKind::Collect { slots, .. } = &step.kind {
                out.extend(slots.iter().cloned());
            }
            let targets: Vec<&str> = match &step.kind {
                StepKind::Confirm { on_confirm, on_cancel, .. } => vec![on_confirm.as_str(), on_cancel.as_str()],
                _ => step.targets(),
            };
            for t in targets {
                if let Some(current) = filled_in.get_mut(t) {
                    let narrowed: BTreeSet<String> = current.intersection(&out).cloned().collect();
                    if narrowed != *current {
                        *current = narrowed;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    steps.keys().map(|k| (k.clone(), filled_in.remove(k).unwrap_or_default())).collect()
}

/// A sample value for every slot, by type, to check ERP bodies against their schemas.
pub(super) fn sample_context(slots: &IndexMap<String, Slot>) -> serde_json::Map<String, serde_json::Value> {
    use crate::engine::SlotValue;
    let mut map = serde_json::Map::new();
    map.insert("wa_id".into(), "971500000000".into());
    map.insert("customer_phone".into(), "+971500000000".into());
    map.insert("today".into(), "2030-01-01".into());
    map.insert("idempotency_key".into(), "sample-journey:sample_action".into());
    for (name, slot) in slots {
        let value = match slot.kind {
            SlotType::GivenName => SlotValue::Text { value: "Jane".into() },
            SlotType::FamilyName => SlotValue::Text { value: "Doe".into() },
            SlotType::CarMake => SlotValue::Text { value: "Toyota".into() },
            SlotType::CarModel => SlotValue::Text { value: "Corolla".into() },
            SlotType::Plate => SlotValue::Text { value: "ABC-1234".into() },
            SlotType::Text => SlotValue::Text { value: "sample text".into() },
            SlotType::Address => SlotValue::Address { text: "1 Sample Street".into(), latitude: None, longitude: None },
            SlotType::DateTime => SlotValue::DateTime { civil: "2030-01-02T10:00:00".into(), zone: "UTC".into() },
            SlotType::Media => SlotValue::Media {
                media_id: "1234567890".into(),
                mime_type: "image/jpeg".into(),
                caption: None,
                filename: None,
            },
            SlotType::Amount => SlotValue::Amount { value: 10.0 },
            SlotType::Number => SlotValue::Number { value: slot.range.map_or(1, |r| r.0) },
            SlotType::Phone => SlotValue::Text { value: "+971500000000".into() },
            SlotType::Choice => match &slot.options {
                OptionSource::Static(items) => items
                    .first()
                    .map(|o| SlotValue::Choice {
                        id: o.id.clone(),
                        title: o.title.clone(),
                        price: Some(10.0),
                        description: o.description.clone(),
                    })
                    .unwrap_or(SlotValue::Text { value: "option".into() }),
                _ => SlotValue::Choice {
                    id: "SAMPLE-ITEM".into(),
                    title: "Sample".into(),
                    price: Some(10.0),
                    description: None,
                },
            },
        };
        map.insert(name.clone(), value.to_template_value());
    }
    map
}
