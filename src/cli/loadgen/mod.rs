//! `carewell loadgen`: a load generator. It starts fake Graph API, ERP and (optionally) LLM
//! servers on loopback, starts one or more `carewell serve` processes against them, and has many
//! customers complete whole booking journeys through signed, real-format webhooks, each waiting
//! for the bot's reply before answering (as people do). It reports sustained inbound messages per
//! second, reply latency percentiles (webhook posted → message received by the fake Graph API; all
//! replies, and button and list replies alone),
//! LLM calls and tokens per journey, CPU time of the servers, of PostgreSQL's sessions (when it
//! runs on this machine) and of the load generator itself with its fakes (they all share the
//! machine), peak RSS, database bytes per conversation and errors, and checks that every journey completed and every booking reached the ERP once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod args;
mod cpu_limit;
mod servers;
use args::server_threads;
pub use args::{LoadArgs, Mode};
use servers::{ServerSpec, kill_in_turn, proc_usage, start_server};

use crate::channel::whatsapp::envelope::{envelope, to_ascii_json};
use crate::channel::whatsapp::signature::sign;
use crate::fakes::{FakeErp, FakeGraph, FakeLlm, LlmMode, PHONE_NUMBER_ID};

const SECRET: &str = "loadgen-app-secret";

struct Shared {
    graph: FakeGraph,
    servers: Vec<String>,
    http: reqwest::Client,
    /// (seconds since `epoch` when the message was posted, reply latency in ms, whether it was a
    /// button or list reply).
    latencies: Mutex<Vec<(f64, f64, bool)>>,
    epoch: Instant,
    errors: AtomicUsize,
    /// Errors by cause (a webhook's HTTP status or transport error, or a missing reply).
    error_causes: Mutex<std::collections::BTreeMap<String, usize>>,
    messages: AtomicUsize,
    completed: AtomicUsize,
    timeout: Duration,
    counter: AtomicUsize,
    /// Whether a webhook answered with an error status is delivered again (servers are being
    /// killed), as WhatsApp delivers again a webhook that did not get a 200. One whose
    /// connection failed is always delivered again: a keep-alive connection the server closed
    /// just as the request went out (a race of every HTTP/1.1 client, widest when the server is
    /// starved of CPU) says nothing about the service, and WhatsApp would deliver it again.
    redeliver: bool,
    /// Deliveries made again.
    redeliveries: AtomicUsize,
}

impl Shared {
    /// Posts one message and waits for the reply; returns the new replies.
    async fn send(
        &self,
        customer: &str,
        kind: &str,
        object: Value,
        context: Option<&str>,
        server: usize,
        record: bool,
    ) -> Vec<Value> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut m = json!({"from": customer, "id": format!("wamid.LOAD{n}-{}", uuid::Uuid::new_v4().simple()),
            "timestamp": jiff::Timestamp::now().as_second().to_string(), "type": kind});
        m[kind] = object;
        if let Some(c) = context {
            m["context"] = json!({"from": "15550000000", "id": c});
        }
        let body = to_ascii_json(&envelope(PHONE_NUMBER_ID, customer, "Load", m));
        let seen = self.graph.count_to(customer);
        let started = Instant::now();
        let mut attempt = 0;
        let posted = loop {
            let url = &self.servers[(server + attempt) % self.servers.len()];
            let posted = self
                .http
                .post(format!("{url}/webhooks/whatsapp"))
                .header("Content-Type", "application/json")
                .header("X-Hub-Signature-256", sign(SECRET.as_bytes(), body.as_bytes()))
                .body(body.clone())
                .send()
                .await;
            let again = match &posted {
                Ok(r) => !r.status().is_success() && self.redeliver,
                Err(_) => true,
            };
            if !again || started.elapsed() > self.timeout {
                break posted;
            }
            attempt += 1;
            self.redeliveries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.messages.fetch_add(1, Ordering::Relaxed);
        let failed = match &posted {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("webhook answered HTTP {}", r.status().as_u16())),
            Err(e) if e.is_connect() => Some("webhook: cannot connect".to_string()),
            Err(e) if e.is_timeout() => Some("webhook: timed out".to_string()),
            Err(e) => {
                Some(format!("webhook: {}", std::error::Error::source(e).map_or(e.to_string(), |s| s.to_string())))
            }
        };
        if let Some(cause) = failed {
            self.error(cause);
            return vec![];
        }
        let replies = self.graph.wait_beyond(customer, seen, self.timeout).await;
        if replies.is_empty() {
            self.error(format!("no reply within {} s", self.timeout.as_secs()));
        } else if record {
            if let Ok(mut l) = self.latencies.lock() {
                l.push((
                    started.duration_since(self.epoch).as_secs_f64(),
                    started.elapsed().as_secs_f64() * 1000.0,
                    kind == "interactive",
                ));
            }
        }
        replies
    }

    fn error(&self, cause: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut causes) = self.error_causes.lock() {
            *causes.entry(cause).or_default() += 1;
        }
    }
}

/// The option starting with `title` in the latest interactive reply that offers one; with an
/// empty `title`, one of the visit times it offers: the one `customer` prefers, so that
/// customers spread over the offered times as real ones do (all taking the first would pile
/// every hold into one window, which the lifted capacity never fills) and a run is repeatable.
fn option_of(replies: &[Value], title: &str, customer: &str) -> Option<(String, String, &'static str, Option<String>)> {
    replies.iter().rev().filter(|m| m["type"] == "interactive").find_map(|m| {
        let wamid = m["_wamid"].as_str().map(String::from);
        let offered = crate::channel::whatsapp::render::offered_options(m);
        let o = if title.is_empty() {
            let mut times: Vec<_> = offered
                .into_iter()
                .filter(|o| o.id.rsplit('=').next().and_then(crate::engine::capacity::parse_civil).is_some())
                .collect();
            if times.is_empty() {
                return None;
            }
            let preferred = customer.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
            times.swap_remove(preferred % times.len())
        } else {
            offered.into_iter().find(|o| o.title.starts_with(title))?
        };
        Some((o.id, o.title, o.reply_kind, wamid))
    })
}

/// The option starting with `title` in `replies` or, when they do not offer it (a reply sent
/// twice by a process killed before it recorded the send arrived first), in the replies that
/// follow within the reply timeout, as a person would scroll on to the newest message.
async fn wait_for_option(
    s: &Shared,
    customer: &str,
    mut replies: Vec<Value>,
    title: &str,
) -> Option<(String, String, &'static str, Option<String>)> {
    let deadline = Instant::now() + s.timeout;
    loop {
        if let Some(found) = option_of(&replies, title, customer) {
            return Some(found);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        let seen = s.graph.count_to(customer);
        let more = s.graph.wait_beyond(customer, seen, left).await;
        if more.is_empty() {
            return None;
        }
        replies.extend(more);
    }
}

fn open_day() -> String {
    let tz = jiff::tz::TimeZone::get("Asia/Dubai").unwrap_or(jiff::tz::TimeZone::UTC);
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    (2..=6)
        .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
        .find(|d| d.weekday() != jiff::civil::Weekday::Friday)
        .map(|d| d.strftime("%A").to_string())
        .unwrap_or_else(|| "tomorrow".into())
}

/// One customer's whole journey; true when it ended with the confirmation.
async fn journey(s: &Shared, customer: &str, buttons: bool, server_offset: usize) -> bool {
    let mut k = server_offset;
    let mut next = || {
        k += 1;
        k
    };
    macro_rules! text {
        ($t:expr) => {
            s.send(customer, "text", json!({"body": $t}), None, next(), true).await
        };
    }
    macro_rules! press {
        ($replies:expr, $title:expr) => {{
            match wait_for_option(s, customer, $replies, $title).await {
                Some((id, title, key, wamid)) => {
                    s.send(customer, "interactive", json!({"type": key, key: {"id": id, "title": title}}), wamid.as_deref(), next(), true).await
                }
                None => {
                    s.error(format!("no option \"{}\" in the reply", $title));
                    return false;
                }
            }
        }};
    }
    let last = if buttons {
        let r = text!("Hi");
        let r = press!(r, "Book a service");
        let _ = r;
        let r = text!("Jane Doe");
        let r = press!(r, "Full Wash");
        let _ = press!(r, "One-time");
        let _ = text!("Toyota Corolla ABC-1234");
        let r = s
            .send(
                customer,
                "location",
                json!({"latitude": 25.2, "longitude": 55.27, "name": "Villa 12", "address": "Al Wasl Road"}),
                None,
                next(),
                true,
            )
            .await;
        let r = press!(r, "");
        press!(r, "Confirm")
    } else {
        let _ = text!("I'd like to book a full wash");
        let _ = text!("Jane Doe");
        let _ = text!("one time");
        let _ = text!("Toyota Corolla ABC-1234");
        let _ = text!("Villa 12, Al Wasl Road, Jumeirah");
        let _ = text!(format!("{} 10am", open_day()));
        text!("yes")
    };
    // The confirmation follows the ERP's answer.
    let mut all = last;
    let deadline = Instant::now() + s.timeout;
    while !all.iter().any(|m| m["text"]["body"].as_str().is_some_and(|b| b.contains("You're booked"))) {
        if Instant::now() > deadline {
            s.error("no confirmation".into());
            return false;
        }
        let seen = s.graph.count_to(customer);
        all = s.graph.wait_beyond(customer, seen, Duration::from_millis(500)).await;
        if all.is_empty() {
            all = s.graph.sent_to(customer);
        }
    }
    true
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Reply latencies grouped by when their message was posted, in about 20 windows from the start
/// of the measured journeys: `"<from>s n=<replies> p50=<ms> max=<ms> button_max=<ms>"` per
/// window (the last for button and list replies alone), so a stall
/// shows when it happened (for instance while a burst of LLM turns commits).
fn latency_timeline(timed: &[(f64, f64, bool)], start_s: f64, elapsed_s: f64) -> Vec<String> {
    let width = (elapsed_s / 20.0).max(0.25);
    let windows = (elapsed_s / width).ceil().max(1.0) as usize;
    let mut by_window: Vec<Vec<(f64, bool)>> = vec![Vec::new(); windows];
    for (at, ms, button) in timed {
        let i = (((at - start_s) / width).floor().max(0.0) as usize).min(windows - 1);
        by_window[i].push((*ms, *button));
    }
    by_window
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| {
            let mut all: Vec<f64> = v.iter().map(|(ms, _)| *ms).collect();
            all.sort_by(|a, b| a.total_cmp(b));
            let button_max = v.iter().filter(|(_, b)| *b).map(|(ms, _)| *ms).fold(0.0, f64::max);
            format!(
                "{:.2}s n={} p50={:.0} max={:.0} button_max={:.0}",
                i as f64 * width,
                all.len(),
                percentile(&all, 50.0),
                all.last().copied().unwrap_or(0.0),
                button_max
            )
        })
        .collect()
}

/// The p99 of a stage from a server's /metrics (upper bound of the bucket holding it).
async fn stage_p99(http: &reqwest::Client, url: &str, stage: &str) -> Option<f64> {
    let text = http.get(format!("{url}/metrics")).send().await.ok()?.text().await.ok()?;
    let prefix = format!("carewell_stage_seconds_bucket{{stage=\"{stage}\",le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets.iter().find(|(_, c)| *c >= total * 0.99).map(|(le, _)| *le * 1000.0)
}

/// Copies `flows/` (as `FLOWS_DIR` names it, `flows` by default) into `workdir/flows` with the
/// crews' capacity lifted: thousands of customers booking the first offered time measure the
/// service, not how fast the sample business's three crews are booked up (the holds are still
/// taken and written, as in production); `prompts/` and `fixtures/` are linked beside it.
/// Errors: a folder cannot be read, written or linked.
fn lift_capacity(workdir: &std::path::Path) -> Result<(), String> {
    let from = std::path::PathBuf::from(std::env::var("FLOWS_DIR").unwrap_or_else(|_| "flows".into()));
    let to = workdir.join("flows");
    std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
    let crews = regex::Regex::new(r"(?m)^(\s*crews:\s*)\d+").map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(&from).map_err(|e| format!("{}: {e}", from.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = crews.replace_all(&text, "${1}1000000").into_owned();
        let target = to.join(path.file_name().unwrap_or_default());
        std::fs::write(&target, text).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    // The prompts and fixtures sit beside flows/: linked, not copied.
    let root = std::fs::canonicalize(&from).map_err(|e| format!("{}: {e}", from.display()))?;
    let root = root.parent().unwrap_or(std::path::Path::new("."));
    for sibling in ["prompts", "fixtures"] {
        std::os::unix::fs::symlink(root.join(sibling), workdir.join(sibling)).map_err(|e| format!("{sibling}: {e}"))?;
    }
    Ok(())
}

/// Runs the load and prints the report. Errors: a fake or a server could not start.
pub async fn run(args: LoadArgs) -> Result<(), String> {
    if args.servers > 1 && args.postgres.is_none() {
        return Err("several servers need a shared PostgreSQL database: add --postgres postgres://…".into());
    }
    let workdir = std::env::temp_dir().join(format!("carewell-load-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&workdir).map_err(|e| e.to_string())?;
    lift_capacity(&workdir)?;
    let graph = FakeGraph::start();
    let erp = FakeErp::start();
    let llm =
        args.llm_latency_ms.map(|ms| FakeLlm::start_with_latency(LlmMode::Good, vec![], Duration::from_millis(ms)));
    let db_url = match &args.postgres {
        Some(admin) => {
            use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
            let name = format!("carewell_load_{}", uuid::Uuid::new_v4().simple());
            let mut conn =
                AsyncPgConnection::establish(admin).await.map_err(|e| format!("cannot reach PostgreSQL: {e}"))?;
            conn.batch_execute(&format!("CREATE DATABASE {name}")).await.map_err(|e| e.to_string())?;
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_else(|| admin.clone());
            format!("{base}/{name}")
        }
        None => format!("sqlite://{}", workdir.join("load.db").display()),
    };
    eprintln!("starting {} server(s) on {} …", args.servers, crate::store::without_credentials(&db_url));
    let spec = ServerSpec {
        db_url: db_url.clone(),
        graph_url: graph.url.clone(),
        erp_url: erp.url.clone(),
        llm_url: llm.as_ref().map(|l| l.url.clone()),
        workdir: workdir.clone(),
        log_filter: args.server_log.clone(),
        baseline: args.baseline,
        lease_ms: args.kill_every_ms.map(|_| 2000),
        runtime_threads: server_threads(&args),
        cpu_limit: args.server_cpu_limit,
    };
    let mut servers = Vec::new();
    for _ in 0..args.servers.max(1) {
        servers.push(start_server(&spec, 0)?);
    }
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let servers = Arc::new(Mutex::new(servers));
    let shared = Arc::new(Shared {
        redeliver: args.kill_every_ms.is_some(),
        redeliveries: AtomicUsize::new(0),
        graph: graph.clone(),
        servers: urls,
        http: reqwest::Client::builder().pool_max_idle_per_host(512).build().map_err(|e| e.to_string())?,
        latencies: Mutex::new(Vec::new()),
        epoch: Instant::now(),
        errors: AtomicUsize::new(0),
        error_causes: Mutex::default(),
        messages: AtomicUsize::new(0),
        completed: AtomicUsize::new(0),
        timeout: Duration::from_secs(args.reply_timeout),
        counter: AtomicUsize::new(0),
    });

    // Conversations waiting on the (slow) LLM while the journeys run: each first starts a
    // booking (no LLM needed); once all have, all send a message only the LLM can read, and the
    // measured journeys start while those calls are under way.
    let ready = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(tokio::sync::Notify::new());
    let mut waiter_tasks = Vec::new();
    if args.llm_waiters > 0 {
        eprintln!("{} conversation(s) will wait on the LLM meanwhile; starting them …", args.llm_waiters);
    }
    for w in 0..args.llm_waiters {
        let (s, ready, go) = (shared.clone(), ready.clone(), go.clone());
        waiter_tasks.push(tokio::spawn(async move {
            let customer = format!("97156{w:07}");
            let notified = go.notified();
            s.send(&customer, "text", json!({"body": "book a full wash"}), None, w, false).await;
            ready.fetch_add(1, Ordering::Relaxed);
            notified.await;
            let text = json!({"body": "people around here call me by my nickname mostly"});
            s.send(&customer, "text", text, None, w, false).await;
        }));
    }
    if args.llm_waiters > 0 {
        while ready.load(Ordering::Relaxed) < args.llm_waiters {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        go.notify_waiters();
        // Let the burst be stored and the LLM calls get under way.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // PostgreSQL's counters before the measured journeys (its statistics reach the view within
    // about a second).
    let store =
        crate::store::Store::connect(&crate::store::DatabaseUrl::parse(Some(&db_url)).map_err(|e| e.to_string())?, 2)
            .await
            .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let counters_before = store.activity_counters().await.unwrap_or_default();
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..args.conversations {
        let s = shared.clone();
        let permits = permits.clone();
        let mode = args.mode;
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            let customer = format!("97155{i:07}");
            let done = match mode {
                Mode::Greet => !s.send(&customer, "text", json!({"body": "Hi"}), None, i, true).await.is_empty(),
                Mode::Buttons => journey(&s, &customer, true, i).await,
                Mode::Typed => journey(&s, &customer, false, i).await,
                Mode::Mixed => journey(&s, &customer, i % 2 == 0, i).await,
            };
            if done {
                s.completed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = args.kill_every_ms.map(|every| {
        tokio::spawn(kill_in_turn(servers.clone(), spec.clone(), Duration::from_millis(every), kills.clone()))
    });
    let progress = {
        let s = shared.clone();
        let total = args.conversations;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let secs = started.elapsed().as_secs_f64();
                let msgs = s.messages.load(Ordering::Relaxed);
                eprint!(
                    "\r  {:>6.1}s  journeys {}/{}  messages {}  {:.0} msg/s  errors {}   ",
                    secs,
                    s.completed.load(Ordering::Relaxed),
                    total,
                    msgs,
                    msgs as f64 / secs.max(0.001),
                    s.errors.load(Ordering::Relaxed)
                );
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    progress.abort();
    if let Some(k) = killer {
        k.abort();
    }
    eprintln!();
    for t in waiter_tasks {
        let _ = t.await;
    }

    // Let the last ERP writes land, then check.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let orders = erp.docs("Sales Order");
    let keys: HashSet<String> =
        orders.iter().filter_map(|o| o["wa_idempotency_key"].as_str().map(String::from)).collect();
    let timed = shared.latencies.lock().map(|l| l.clone()).unwrap_or_default();
    let timeline = latency_timeline(&timed, started.duration_since(shared.epoch).as_secs_f64(), elapsed);
    let mut lat: Vec<f64> = timed.iter().map(|(_, ms, _)| *ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let mut pressed: Vec<f64> = timed.iter().filter(|(_, _, button)| *button).map(|(_, ms, _)| *ms).collect();
    pressed.sort_by(|a, b| a.total_cmp(b));
    let messages = shared.messages.load(Ordering::Relaxed);
    let journey_messages = messages - args.llm_waiters * 2;
    let completed = shared.completed.load(Ordering::Relaxed);
    let (cpu, rss): (f64, u64) = servers
        .lock()
        .map(|s| s.iter().map(|s| proc_usage(s.child.id())).fold((0.0, 0), |(c, r), (c2, r2)| (c + c2, r.max(r2))))
        .unwrap_or_default();
    let first_url = shared.servers[0].clone();
    let engine_p99 = stage_p99(&shared.http, &first_url, "engine").await;
    // The parts of a turn (see `/metrics`): its wait in the inbox, the guards (with any LLM
    // call), the transition function alone, and the commit (with its wait for the database).
    let mut stages = serde_json::Map::new();
    for stage in ["inbox_wait", "guards", "decide", "commit"] {
        stages.insert(stage.to_string(), json!(stage_p99(&shared.http, &first_url, stage).await));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let counters_after = store.activity_counters().await.unwrap_or_default();
    // Per inbound message of the measured journeys (the load generator's own few reads included).
    let per_message: serde_json::Map<String, Value> = counters_after
        .iter()
        .filter_map(|(name, after)| {
            let delta = after - counters_before.get(name).copied().unwrap_or(0);
            (delta > 0).then(|| {
                (name.clone(), json!(((delta as f64 / journey_messages.max(1) as f64) * 100.0).round() / 100.0))
            })
        })
        .collect();
    let db_bytes = store.database_bytes().await.unwrap_or(0);
    // PostgreSQL's share, when it runs on this machine: its sessions' CPU time (the servers'
    // connections are still open).
    let database_cpu: f64 = match store.database_session_pids().await {
        Ok(pids) if !pids.is_empty() => pids.iter().map(|p| proc_usage(*p as u32).0).sum(),
        _ => 0.0,
    };
    let own_cpu = proc_usage(std::process::id()).0;
    let llm_calls = llm.as_ref().map_or(0, |l| l.calls());
    let report = json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "bot": if args.baseline { "do-nothing baseline" } else { "carewell" },
        "database": if args.baseline { "none" } else if args.postgres.is_some() { "postgres" } else { "sqlite" },
        "servers": args.servers,
        "server_runtime_threads": server_threads(&args),
        "server_cpu_limit_cores": args.server_cpu_limit,
        "conversations": args.conversations,
        "concurrency": args.concurrency,
        "completed": completed,
        "inbound_messages": journey_messages,
        "seconds": (elapsed * 100.0).round() / 100.0,
        "messages_per_second": (journey_messages as f64 / elapsed).round(),
        "reply_latency_ms": {
            "p50": percentile(&lat, 50.0), "p90": percentile(&lat, 90.0), "p99": percentile(&lat, 99.0), "max": lat.last().copied().unwrap_or(0.0)
        },
        "button_replies": pressed.len(),
        "button_reply_latency_ms": {
            "p50": percentile(&pressed, 50.0), "p90": percentile(&pressed, 90.0), "p99": percentile(&pressed, 99.0), "max": pressed.last().copied().unwrap_or(0.0)
        },
        "reply_latency_timeline": timeline,
        "engine_p99_ms_at_most": engine_p99,
        "stage_p99_ms_at_most": stages,
        "llm_waiters": args.llm_waiters,
        "llm_calls": llm_calls,
        "llm_calls_per_journey": if completed > 0 { llm_calls as f64 / (completed + args.llm_waiters) as f64 } else { 0.0 },
        "server_cpu_seconds": (cpu * 100.0).round() / 100.0,
        "database_cpu_seconds": (database_cpu * 100.0).round() / 100.0,
        "database_per_message": per_message,
        "loadgen_cpu_seconds": (own_cpu * 100.0).round() / 100.0,
        "server_peak_rss_mib": rss / 1024,
        "database_bytes_per_conversation": db_bytes / (args.conversations + args.llm_waiters).max(1) as i64,
        "outbound_per_inbound_message": ((graph.all_sent().len() as f64 / journey_messages.max(1) as f64) * 100.0).round() / 100.0,
        "servers_killed": kills.load(Ordering::Relaxed),
        "webhook_redeliveries": shared.redeliveries.load(Ordering::Relaxed),
        "errors": shared.errors.load(Ordering::Relaxed),
        "error_causes": shared.error_causes.lock().map(|c| json!(*c)).unwrap_or_default(),
        "erp_orders": orders.len(),
        "erp_duplicate_orders": orders.len() - keys.len(),
    });
    println!("\nload report");
    for (k, v) in report.as_object().into_iter().flatten() {
        println!("  {k:<34} {v}");
    }
    if args.json {
        println!("{report}");
    }
    if args.server_log.is_some() {
        println!("server logs kept in {}", workdir.display());
    } else {
        let _ = std::fs::remove_dir_all(&workdir);
    }
    // The run's database goes with it (its numbers are in the report).
    drop(servers);
    drop(store);
    if let (Some(admin), Some(name)) = (&args.postgres, db_url.rsplit('/').next()) {
        use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
        if let Ok(mut conn) = AsyncPgConnection::establish(admin).await {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
    let bookings = if args.mode == Mode::Greet { 0 } else { args.conversations };
    if completed != args.conversations || orders.len() != bookings || keys.len() != orders.len() {
        return Err(format!(
            "{completed} of {} journeys completed, {} ERP orders ({} distinct)",
            args.conversations,
            orders.len(),
            keys.len()
        ));
    }
    Ok(())
}
