//! Prometheus metrics, served at `GET /metrics` in the text exposition format: turns, per-stage
//! latency histograms (inbox wait, guards, LLM, transition, store commit, outbox send, reply
//! latency from webhook to Graph API), errors by code, outbox depth and age, stuck detections,
//! hand-offs, LLM calls and tokens.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, from 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    /// Turns by outcome (`ok` or an error code).
    pub turns: IntCounterVec,
    /// Seconds spent per stage: `inbox_wait`, `guards`, `llm`, `decide`, `commit`, `engine`
    /// (a turn without the LLM), `outbox_send`, `reply` (webhook received → sent to WhatsApp).
    pub stage: HistogramVec,
    /// Errors by stable code.
    pub errors: IntCounterVec,
    /// Webhook requests by result.
    pub webhooks: IntCounterVec,
    /// Stuck-state detections.
    pub stuck: IntCounter,
    /// Hand-offs to a person.
    pub handoffs: IntCounter,
    /// LLM guard calls by outcome.
    pub llm_calls: IntCounterVec,
    /// LLM tokens reported by the endpoint.
    pub llm_tokens: IntCounter,
    /// Outbox rows finished, by kind and status.
    pub outbox_done: IntCounterVec,
    /// Pending outbox rows (set at scrape time).
    pub outbox_depth: IntGauge,
    /// Age of the oldest pending outbox row in seconds (set at scrape time).
    pub outbox_oldest_age: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("carewell".into()), None).unwrap_or_default();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let stage = HistogramVec::new(
            HistogramOpts::new("stage_seconds", "Time spent per stage of a turn").buckets(BUCKETS.to_vec()),
            &["stage"],
        )
        .unwrap_or_else(|e| panic!("metric stage_seconds: {e}"));
        let _ = registry.register(Box::new(stage.clone()));
        Metrics {
            turns: counter_vec("turns_total", "Turns processed, by outcome", &["outcome"]),
            errors: counter_vec("errors_total", "Errors, by stable code", &["code"]),
            webhooks: counter_vec("webhooks_total", "Webhook requests, by result", &["result"]),
            stuck: counter("stuck_detections_total", "Stuck-state detections"),
            handoffs: counter("handoffs_total", "Conversations handed to a person"),
            llm_calls: counter_vec("llm_calls_total", "LLM guard calls, by outcome", &["outcome"]),
            llm_tokens: counter("llm_tokens_total", "LLM tokens used"),
            outbox_done: counter_vec(
                "outbox_done_total",
                "Outbox rows finished, by kind and status",
                &["kind", "status"],
            ),
            outbox_depth: gauge("outbox_depth", "Pending outbox rows"),
            outbox_oldest_age: gauge("outbox_oldest_age_seconds", "Age of the oldest pending outbox row"),
            stage,
            registry,
        }
    }

    /// Observes a duration in seconds for `stage`.
    pub fn observe(&self, stage: &str, seconds: f64) {
        self.stage.with_label_values(&[stage]).observe(seconds);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
