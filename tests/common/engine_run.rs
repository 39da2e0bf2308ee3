//! The pure engine driven turn by turn on the sample flows, without a server or an LLM, on a
//! clock the test moves (`clock`, Unix seconds; each event moves it on a minute).

use std::path::Path;
use std::sync::Arc;

use carewell::engine::{self, ConversationState, Decision, EngineError, EventKind, InboundEvent, Reply};
use carewell::erp::ErpClient;
use carewell::flow::FlowSet;
use carewell::guard::Guards;

/// Wednesday 2 December 2026, 10:00 in Dubai.
pub const WEDNESDAY_10AM: i64 = 1_796_191_200;

pub struct Run {
    pub flows: FlowSet,
    pub state: ConversationState,
    pub last: Option<Decision>,
    /// Unix seconds of the next event; each event moves it on a minute.
    pub clock: i64,
}

impl Run {
    pub fn new(customer: &str) -> Run {
        let flows = FlowSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).unwrap();
        Run { flows, state: ConversationState::new(customer), last: None, clock: WEDNESDAY_10AM + 60 }
    }

    pub async fn try_event(&mut self, kind: EventKind) -> Result<Decision, EngineError> {
        let n = self.state.turns as i64 + 1;
        let event = InboundEvent::internal(format!("wamid.{n}"), self.state.customer.clone(), self.clock, kind);
        self.clock += 60;
        let plan = engine::plan(&self.flows, &self.state, &event, None);
        let guards = Guards::new(Arc::new(ErpClient::new(None, std::time::Duration::from_secs(60)).unwrap()), None);
        let g = guards
            .run(&self.flows, &plan, jiff::Timestamp::from_second(event.timestamp).unwrap(), Default::default())
            .await;
        let d = engine::decide(&self.flows, &self.state, &event, &g)?;
        self.state = d.state.clone();
        self.last = Some(d.clone());
        Ok(d)
    }

    pub async fn event(&mut self, kind: EventKind) -> Decision {
        self.try_event(kind).await.unwrap()
    }

    /// The ERP's answer to the write `d` queued: `reference` on success, else `error`.
    pub async fn erp_answers(&mut self, d: &Decision, reference: Option<&str>, error: Option<&str>) -> Decision {
        let request = d.erp.first().expect("the turn queued an ERP write");
        self.event(EventKind::ErpOutcome {
            journey_id: request.journey_id.clone(),
            action: request.action.action.clone(),
            reference: reference.map(String::from),
            error: error.map(String::from),
        })
        .await
    }

    pub async fn say(&mut self, body: &str) -> Decision {
        self.event(EventKind::Text { body: body.into() }).await
    }

    pub async fn press(&mut self, title: &str) -> Decision {
        let d = self.last.clone().expect("a reply to press");
        let option =
            options(&d).into_iter().find(|(_, t)| t == title).unwrap_or_else(|| panic!("no {title:?} in {}", said(&d)));
        self.event(EventKind::Choice { id: option.0, title: option.1 }).await
    }

    pub fn step(&self) -> String {
        self.state.journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)).unwrap_or_else(|| "-".into())
    }

    pub fn phase(&self) -> &'static str {
        self.state.phase().name()
    }
}

pub fn said(d: &Decision) -> String {
    d.replies.iter().map(|r| r.body().to_string()).collect::<Vec<_>>().join("\n---\n")
}

pub fn options(d: &Decision) -> Vec<(String, String)> {
    d.replies
        .iter()
        .flat_map(|r| match r {
            Reply::Choices { options, .. } => options.iter().map(|o| (o.id.clone(), o.title.clone())).collect(),
            _ => vec![],
        })
        .collect()
}

pub fn edges(d: &Decision) -> Vec<(String, String)> {
    d.trace.iter().filter_map(|e| e.edge.clone()).collect()
}

pub fn has(d: &Decision, what: &str) -> bool {
    d.trace.iter().any(|e| e.what == what)
}
