//! `carewell simulate`: conversation tests as data. A test file (YAML, under
//! `tests/conversations/`) is a scripted customer — texts, button presses, list picks, locations,
//! images — and what must come back after each turn: what the bot says, the buttons it offers, the
//! step reached, the slots filled, the ERP writes made, a hand-off. The LLM can be absent, failing,
//! or pinned to recorded answers, so runs are deterministic and need no network.
//!
//! Each file runs through the same pipeline as the server — signed webhooks into the real HTTP
//! server, inbox, worker, outbox — in this process, against the loopback fakes, on a fresh SQLite
//! database. A failure prints what was expected and what happened. `--coverage` prints, per flow,
//! the steps and transitions the tests took and lists the ones none took, with the guard outcomes
//! and recovery rungs seen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::channel::whatsapp::envelope::{envelope, to_ascii_json};
use crate::channel::whatsapp::signature::sign;
use crate::fakes::{FakeErp, FakeGraph, FakeLlm, LlmMode, PHONE_NUMBER_ID};

mod coverage;
mod generate;
mod review;

use coverage::coverage;
pub use generate::generate;

const SECRET: &str = "simulate-app-secret";

/// Options of `simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Conversation-test files (YAML).
    #[arg(required_unless_present = "generate")]
    pub files: Vec<PathBuf>,
    /// Generate, from the flow's graph, the shortest conversation taking each transition, and
    /// run those too.
    #[arg(long)]
    pub generate: Option<String>,
    /// Print step and transition coverage per flow.
    #[arg(long)]
    pub coverage: bool,
    /// The flows directory.
    #[arg(long, default_value = "flows", env = "FLOWS_DIR")]
    pub flows: PathBuf,
}

/// How the LLM behaves in a test.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LlmSetting {
    /// No LLM configured.
    #[default]
    Absent,
    /// Configured but unreachable: every call fails.
    Failing,
    /// Answers from `pinned`; anything else gets `{"slots": []}`.
    Pinned,
}

/// A conversation test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationTest {
    /// What it checks.
    pub name: String,
    /// The customer's WhatsApp id.
    #[serde(default = "default_customer")]
    pub customer: String,
    /// The LLM.
    #[serde(default)]
    pub llm: LlmSetting,
    /// Recorded LLM answers by the customer's exact text.
    #[serde(default)]
    pub pinned: IndexMap<String, Value>,
    /// ERP failures to inject: this many writes (POST or PUT) answer 500.
    #[serde(default)]
    pub erp_failures: usize,
    /// Give the customer the sample customer's ERP documents of `fixtures/erp/` (upcoming and
    /// past bookings, a subscription, an unpaid invoice).
    #[serde(default)]
    pub erp_sample: bool,
    /// The turns.
    pub turns: Vec<Turn>,
}

fn default_customer() -> String {
    "971509990001".into()
}

/// One customer action and what must follow it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Typed text.
    #[serde(default)]
    pub send: Option<String>,
    /// Press the button or list row whose title starts with this (empty: the first one).
    #[serde(default)]
    pub press: Option<String>,
    /// Share a location.
    #[serde(default)]
    pub location: Option<Location>,
    /// Send an image with this caption.
    #[serde(default)]
    pub image: Option<String>,
    /// A person reviews the draft reply to the customer's ticket (see [`review::Review`]).
    #[serde(default)]
    pub review: Option<review::Review>,
    /// What must follow.
    #[serde(default)]
    pub expect: Expect,
}

/// A shared location.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Place name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Expectations after a turn; every one given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Some reply of this turn contains this text.
    #[serde(default)]
    pub says: Vec<String>,
    /// No reply of this turn contains this text.
    #[serde(default)]
    pub never_says: Vec<String>,
    /// Some reply matches this regular expression.
    #[serde(default)]
    pub matches: Option<String>,
    /// The titles of the options offered by the last interactive reply, in order.
    #[serde(default)]
    pub buttons: Option<Vec<String>>,
    /// `flow/step` after the turn, or `-` for none.
    #[serde(default)]
    pub step: Option<String>,
    /// Slot values after the turn (a choice's id, otherwise the value as shown).
    #[serde(default)]
    pub slots: BTreeMap<String, String>,
    /// ERP documents written during this turn, by doctype, with fields they must have.
    #[serde(default)]
    pub erp: BTreeMap<String, BTreeMap<String, Value>>,
    /// Whether the conversation is handed to a person after the turn.
    #[serde(default)]
    pub handoff: Option<bool>,
    /// The queue of the conversation's latest hand-off record (`sales`, `support`…).
    #[serde(default)]
    pub handoff_queue: Option<String>,
    /// No reply at all (the bot stays silent).
    #[serde(default)]
    pub silent: bool,
    /// A question of this conversation is flagged for review with this reason (`unknown`,
    /// `rejected_reply`…).
    #[serde(default)]
    pub flagged: Option<String>,
}

struct Harness {
    url: String,
    store: Arc<crate::store::Store>,
    http: reqwest::Client,
    counter: usize,
}

impl Harness {
    async fn settle(&self) {
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 3 && started.elapsed() < Duration::from_secs(20) {
            match self.store.counts().await {
                Ok((_, 0, _, 0, _)) => quiet += 1,
                _ => quiet = 0,
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    async fn deliver(
        &mut self,
        customer: &str,
        kind: &str,
        object: Value,
        context: Option<String>,
    ) -> Result<(), String> {
        self.counter += 1;
        let mut m = json!({"from": customer, "id": format!("wamid.SIM{}-{}", self.counter, uuid::Uuid::new_v4().simple()),
            "timestamp": jiff::Timestamp::now().as_second().to_string(), "type": kind});
        m[kind] = object;
        if let Some(c) = context {
            m["context"] = json!({"from": "15550000000", "id": c});
        }
        let body = to_ascii_json(&envelope(PHONE_NUMBER_ID, customer, "Test", m));
        let resp = self
            .http
            .post(format!("{}/webhooks/whatsapp", self.url))
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", sign(SECRET.as_bytes(), body.as_bytes()))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("the webhook answered {}", resp.status()));
        }
        self.settle().await;
        Ok(())
    }
}

fn text_of(m: &Value) -> String {
    m["text"]["body"].as_str().or(m["interactive"]["body"]["text"].as_str()).unwrap_or_default().to_string()
}

fn options_of(m: &Value) -> Vec<(String, String, &'static str)> {
    crate::channel::whatsapp::render::offered_options(m).into_iter().map(|o| (o.id, o.title, o.reply_kind)).collect()
}

/// What one file's run produced.
struct Outcome {
    failures: Vec<String>,
    records: Vec<crate::record::TurnRecord>,
}

async fn run_file(path: &Path, flows_dir: &Path) -> Result<Outcome, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let options = serde_saphyr::options! { strict_booleans: true };
    let test: ConversationTest = serde_saphyr::from_str_with_options(&text, options)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().lines().next().unwrap_or("")))?;
    run_test(&test, flows_dir).await
}

async fn run_test(test: &ConversationTest, flows_dir: &Path) -> Result<Outcome, String> {
    let graph = FakeGraph::start();
    // The photo every `image:` turn sends, downloadable like a real customer's.
    graph.add_media("9001", "image/jpeg", b"\xFF\xD8\xFF\xE0 a sample receipt".to_vec());
    let erp = FakeErp::start();
    erp.log.lock().map_err(|_| "fake ERP poisoned")?.fail_posts = test.erp_failures;
    if test.erp_sample {
        let flows = crate::flow::FlowSet::load(flows_dir).map_err(|e| e.to_string())?;
        erp.seed_sample_customer(&test.customer, &flows.business.time_zone_name);
    }
    let llm = match test.llm {
        LlmSetting::Pinned => {
            let script = test.pinned.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            Some(FakeLlm::start_scripted(LlmMode::Good, script, Duration::ZERO))
        }
        _ => None,
    };
    let db = std::env::temp_dir().join(format!("carewell-simulate-{}.db", uuid::Uuid::new_v4().simple()));
    let settings = crate::config::Settings {
        host: "127.0.0.1".into(),
        port: 0,
        database: crate::store::DatabaseUrl::Sqlite(db.display().to_string()),
        flows_dir: flows_dir.to_path_buf(),
        tenants_dir: None,
        tenant_secrets_key: None,
        verify_token: "simulate".into(),
        app_secret: SECRET.into(),
        graph: Some(crate::channel::whatsapp::client::GraphSettings {
            base_url: graph.url.clone(),
            access_token: crate::fakes::GRAPH_TOKEN.into(),
            timeout: Duration::from_secs(5),
        }),
        phone_number_id: None,
        speech: None,
        llm: match (test.llm, &llm) {
            (LlmSetting::Absent, _) => None,
            (_, l) => Some(crate::llm::LlmSettings {
                base_url: l.as_ref().map(|l| l.url.clone()).unwrap_or_else(|| "http://127.0.0.1:9/v1".into()),
                api_key: Some(crate::fakes::LLM_KEY.into()),
                model: "pinned".into(),
                timeout: Duration::from_millis(500),
                json_schema_mode: true,
                budget: Duration::from_secs(2),
                breaker_failures: 1000,
                breaker_cooldown: Duration::from_secs(1),
                max_concurrency: 16,
            }),
        },
        erp: Some(crate::erp::ErpSettings {
            base_url: erp.url.clone(),
            api_key: crate::fakes::ERP_KEY.0.into(),
            api_secret: crate::fakes::ERP_KEY.1.into(),
            timeout: Duration::from_secs(2),
        }),
        worker_concurrency: 64,
        outbox_max_attempts: 3,
        outbox_base_delay: Duration::from_millis(20),
        log_json: false,
        admin_token: None,
        session_idle: std::time::Duration::from_secs(1800),
        rate_sender_per_minute: 10_000,
        rate_ip_per_second: 10_000,
        rate_admin_per_second: 100,
        trusted_proxy_header: None,
        outbound_per_second: 10_000,
        instances: 1,
        team_webhook: None,
        staff_numbers: vec![],
        outbox_claim: Duration::from_secs(5),
        lease: Duration::from_secs(5),
        http_workers: 1,
        llm_price_per_million_tokens: None,
        widget_secret: "simulate-widget-secret".into(),
        rate_web_ip_per_minute: 10_000,
        rate_web_session_per_minute: 10_000,
    };
    let app = crate::pipeline::App::build(settings).await.map_err(|e| e.to_string())?;
    let (addrs, server) = crate::startup::start(app.clone()).map_err(|e| e.to_string())?;
    let handle = server.handle();
    tokio::spawn(server);
    let mut h = Harness {
        url: format!("http://{}", addrs.first().ok_or("no address")?),
        store: app.store.clone(),
        http: reqwest::Client::new(),
        counter: 0,
    };
    let customer = test.customer.clone();
    let conversation_id = format!("{PHONE_NUMBER_ID}:{customer}");
    let mut failures = Vec::new();
    for (n, turn) in test.turns.iter().enumerate() {
        let seen = graph.count_to(&customer);
        let docs_before: BTreeMap<String, usize> = ["Customer", "Sales Order", "Issue", "Comment"]
            .iter()
            .map(|d| (d.to_string(), erp.docs(d).len()))
            .collect();
        let what = if let Some(t) = &turn.send {
            h.deliver(&customer, "text", json!({"body": t}), None).await?;
            format!("send {t:?}")
        } else if let Some(title) = &turn.press {
            let last = graph.sent_to(&customer).into_iter().rev().find(|m| m["type"] == "interactive");
            let Some(last) = last else {
                failures.push(format!("turn {} (press {title:?}): the bot offered no buttons to press", n + 1));
                break;
            };
            let Some((id, full, key)) = options_of(&last).into_iter().find(|(_, t, _)| t.starts_with(title.as_str()))
            else {
                let offered: Vec<String> = options_of(&last).into_iter().map(|(_, t, _)| t).collect();
                failures.push(format!(
                    "turn {} (press {title:?}): no such option; offered: {}",
                    n + 1,
                    offered.join(" | ")
                ));
                break;
            };
            h.deliver(
                &customer,
                "interactive",
                json!({"type": key, key: {"id": id, "title": full}}),
                last["_wamid"].as_str().map(String::from),
            )
            .await?;
            format!("press {full:?}")
        } else if let Some(loc) = &turn.location {
            h.deliver(
                &customer,
                "location",
                json!({"latitude": loc.latitude, "longitude": loc.longitude, "name": loc.name, "address": loc.name}),
                None,
            )
            .await?;
            "share a location".to_string()
        } else if let Some(caption) = &turn.image {
            h.deliver(
                &customer,
                "image",
                json!({"id": "9001", "mime_type": "image/jpeg", "sha256": "x", "caption": caption}),
                None,
            )
            .await?;
            "send an image".to_string()
        } else if let Some(r) = &turn.review {
            match review::review(&app, &customer, r).await {
                Ok(what) => {
                    h.settle().await;
                    what
                }
                Err(e) => {
                    failures.push(format!("turn {} (review): {e}", n + 1));
                    break;
                }
            }
        } else {
            failures.push(format!("turn {}: give one of send, press, location, image, review", n + 1));
            break;
        };
        let replies: Vec<Value> = graph.sent_to(&customer).into_iter().skip(seen).collect();
        let said: Vec<String> = replies.iter().map(text_of).collect();
        let mut problems = Vec::new();
        let e = &turn.expect;
        for s in &e.says {
            if !said.iter().any(|r| r.contains(s.as_str())) {
                problems.push(format!("expected the bot to say {s:?}"));
            }
        }
        for s in &e.never_says {
            if said.iter().any(|r| r.contains(s.as_str())) {
                problems.push(format!("expected the bot never to say {s:?}"));
            }
        }
        if let Some(p) = &e.matches {
            match regex::Regex::new(p) {
                Ok(re) if said.iter().any(|r| re.is_match(r)) => {}
                Ok(_) => problems.push(format!("expected a reply matching /{p}/")),
                Err(err) => problems.push(format!("bad pattern /{p}/: {err}")),
            }
        }
        if e.silent && !replies.is_empty() {
            problems.push("expected no reply".into());
        }
        if let Some(buttons) = &e.buttons {
            let offered: Vec<String> = replies
                .iter()
                .rev()
                .find(|m| m["type"] == "interactive")
                .map(options_of)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, t, _)| t)
                .collect();
            if &offered != buttons {
                problems.push(format!("expected the options {buttons:?}, offered {offered:?}"));
            }
        }
        let conv = h
            .store
            .conversation(&crate::tenant::TenantId::default(), &conversation_id)
            .await
            .map_err(|e| e.to_string())?;
        let state: Value = conv.as_ref().and_then(|c| serde_json::from_str(&c.state).ok()).unwrap_or(Value::Null);
        let journey = &state["journey"];
        let step = journey["flow"]
            .as_str()
            .map(|f| format!("{f}/{}", journey["step"].as_str().unwrap_or_default()))
            .unwrap_or_else(|| "-".into());
        if let Some(want) = &e.step {
            if *want != step {
                problems.push(format!("expected step {want}, at {step}"));
            }
        }
        for (slot, want) in &e.slots {
            let v = &journey["slots"][slot]["value"];
            let have = v["id"]
                .as_str()
                .or(v["value"].as_str())
                .or(v["civil"].as_str())
                .or(v["text"].as_str())
                .map(String::from)
                .or(v["value"].as_number().map(|n| n.to_string()))
                .unwrap_or_else(|| "(empty)".into());
            if have != *want {
                problems.push(format!("expected slot {slot} = {want:?}, it is {have:?}"));
            }
        }
        for (doctype, fields) in &e.erp {
            let docs = erp.docs(doctype);
            let new: Vec<&Value> = docs.iter().skip(docs_before.get(doctype).copied().unwrap_or(0)).collect();
            match new.last() {
                None => problems.push(format!("expected an ERP {doctype} to be written")),
                Some(doc) => {
                    for (k, v) in fields {
                        if doc.pointer(&format!("/{}", k.replace('.', "/"))) != Some(v) {
                            problems.push(format!(
                                "expected ERP {doctype}.{k} = {v}, it is {}",
                                doc.pointer(&format!("/{}", k.replace('.', "/"))).unwrap_or(&Value::Null)
                            ));
                        }
                    }
                }
            }
        }
        if let Some(want) = e.handoff {
            let typed =
                conv.as_ref().and_then(|c| serde_json::from_str::<crate::engine::ConversationState>(&c.state).ok());
            if typed.and_then(|s| s.handoff()).is_some() != want {
                problems.push(format!("expected handoff = {want}"));
            }
        }
        if let Some(want) = &e.handoff_queue {
            let records =
                h.store.handoffs(&crate::tenant::TenantId::default(), None, 1000).await.map_err(|e| e.to_string())?;
            let latest = records.iter().filter(|r| r.conversation_id == conversation_id).max_by_key(|r| r.id);
            match latest {
                Some(r) if r.queue == *want => {}
                Some(r) => problems.push(format!("expected a hand-off in the {want} queue, it is in {}", r.queue)),
                None => problems.push(format!("expected a hand-off in the {want} queue, there is no hand-off record")),
            }
        }
        if let Some(reason) = &e.flagged {
            let flags = h
                .store
                .flags_of(&crate::tenant::TenantId::default(), &conversation_id)
                .await
                .map_err(|e| e.to_string())?;
            if !flags.iter().any(|f| f.reason == *reason) {
                problems.push(format!("expected a question flagged {reason:?}"));
            }
        }
        if !problems.is_empty() {
            let mut report = format!("turn {} ({what}):\n", n + 1);
            for p in problems {
                report.push_str(&format!("    - {p}\n"));
            }
            report.push_str(&format!("    step now: {step}\n    the bot said:\n"));
            if said.is_empty() {
                report.push_str("      (nothing)\n");
            }
            for r in &said {
                for line in r.lines() {
                    report.push_str(&format!("      | {line}\n"));
                }
            }
            failures.push(report);
            break;
        }
    }
    let records = h
        .store
        .turns_of(&crate::tenant::TenantId::default(), &conversation_id)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|t| crate::record::TurnRecord::parse(&t.record).ok())
        .collect();
    handle.stop(false).await;
    // The database and SQLite's write-ahead log and shared-memory files beside it.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(Outcome { failures, records })
}

/// Runs the files; returns whether all passed.
pub async fn run(args: SimulateArgs) -> Result<bool, String> {
    let flows = crate::flow::FlowSet::load(&args.flows).map_err(|e| e.to_string())?;
    let mut all_records = Vec::new();
    let mut failed = 0;
    for file in &args.files {
        let started = Instant::now();
        match run_file(file, &args.flows).await {
            Ok(outcome) => {
                all_records.extend(outcome.records);
                if outcome.failures.is_empty() {
                    println!("ok    {}  ({:.1} s)", file.display(), started.elapsed().as_secs_f64());
                } else {
                    failed += 1;
                    println!("FAIL  {}", file.display());
                    for f in outcome.failures {
                        println!("  {f}");
                    }
                }
            }
            Err(e) => {
                failed += 1;
                println!("FAIL  {}: {e}", file.display());
            }
        }
    }
    let mut total = args.files.len();
    if let Some(flow_id) = &args.generate {
        let flow = flows.flow(flow_id).ok_or_else(|| format!("no flow {flow_id:?}"))?.clone();
        let generated = generate(&flow);
        println!("generated {} conversation(s) from {}, one per transition", generated.len(), flow.file);
        total += generated.len();
        for test in &generated {
            let started = Instant::now();
            match run_test(test, &args.flows).await {
                Ok(outcome) if outcome.failures.is_empty() => {
                    all_records.extend(outcome.records);
                    println!("ok    generated: {}  ({:.1} s)", test.name, started.elapsed().as_secs_f64());
                }
                Ok(outcome) => {
                    all_records.extend(outcome.records);
                    failed += 1;
                    println!("FAIL  generated: {}", test.name);
                    for f in outcome.failures {
                        println!("  {f}");
                    }
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL  generated: {}: {e}", test.name);
                }
            }
        }
    }
    println!("\n{} passed, {failed} failed", total - failed);
    if args.coverage {
        let (table, _) = coverage(&flows, &all_records);
        println!("\ncoverage\n{table}");
    }
    Ok(failed == 0)
}
