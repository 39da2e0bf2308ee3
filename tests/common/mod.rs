//! The end-to-end harness: the real `carewell serve` process against fake WhatsApp Graph API,
//! fake Frappe ERP and fake LLM servers on loopback, driven by signed webhooks in WhatsApp's real
//! format.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use carewell::channel::whatsapp::signature::sign;
use carewell::cli::chat::{envelope, to_ascii_json};
use serde_json::{Value, json};

pub const SECRET: &str = "test-app-secret";
pub const GRAPH_TOKEN: &str = "test-graph-token";
pub const PHONE_NUMBER_ID: &str = "109876543210987";
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Starts an actix server for `routes` on a free loopback port; returns its base URL.
fn spawn_fake<F>(routes: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind a loopback port");
    let addr = server.addrs()[0];
    let running = server.run();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let _ = rt.block_on(running);
    });
    format!("http://{addr}")
}

// ---------------------------------------------------------------- fake Graph API

/// What the fake Graph API received.
#[derive(Default)]
pub struct GraphLog {
    pub sent: Vec<Value>,
    /// Fail this many sends with HTTP 500 / code 131000 before accepting.
    pub fail_next: usize,
    pub attempts: usize,
}

#[derive(Clone)]
pub struct FakeGraph {
    pub url: String,
    pub log: Arc<Mutex<GraphLog>>,
}

impl FakeGraph {
    pub fn start() -> FakeGraph {
        let log: Arc<Mutex<GraphLog>> = Arc::default();
        let l = log.clone();
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new(l.clone())).route("/{version}/{pnid}/messages", web::post().to(graph_send));
        });
        FakeGraph { url: format!("{url}/v23.0"), log }
    }

    /// Messages sent to `customer`, in order.
    pub fn sent_to(&self, customer: &str) -> Vec<Value> {
        let to = format!("+{customer}");
        self.log.lock().unwrap().sent.iter().filter(|m| m["to"] == to.as_str()).cloned().collect()
    }
}

async fn graph_send(
    log: web::Data<Arc<Mutex<GraphLog>>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    let auth = req.headers().get("Authorization").and_then(|h| h.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {GRAPH_TOKEN}") {
        return HttpResponse::Unauthorized()
            .json(json!({"error": {"message": "Invalid OAuth access token", "code": 190}}));
    }
    if path.1 != PHONE_NUMBER_ID {
        return HttpResponse::BadRequest().json(json!({"error": {"message": "unknown phone number id", "code": 100}}));
    }
    let b = body.into_inner();
    if let Some(problem) = check_limits(&b) {
        return HttpResponse::BadRequest().json(json!({"error": {"message": problem, "code": 131009}}));
    }
    let mut l = log.lock().unwrap();
    l.attempts += 1;
    if l.fail_next > 0 {
        l.fail_next -= 1;
        return HttpResponse::InternalServerError()
            .json(json!({"error": {"message": "Something went wrong", "code": 131000}}));
    }
    let n = l.sent.len();
    let wamid = format!("wamid.OUT{n}");
    let mut stored = b.clone();
    stored["_wamid"] = json!(wamid);
    l.sent.push(stored);
    HttpResponse::Ok().json(json!({"messaging_product": "whatsapp", "contacts": [{"input": b["to"], "wa_id": b["to"]}], "messages": [{"id": wamid}]}))
}

/// WhatsApp's limits (reference §7), enforced like the real API would.
fn check_limits(b: &Value) -> Option<String> {
    if b["messaging_product"] != "whatsapp" {
        return Some("messaging_product must be whatsapp".into());
    }
    let chars = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
    match b["type"].as_str() {
        Some("text") => (chars(&b["text"]["body"]) > 4096).then(|| "text too long".into()),
        Some("interactive") => {
            let i = &b["interactive"];
            match i["type"].as_str() {
                Some("button") => {
                    let buttons = i["action"]["buttons"].as_array()?;
                    if buttons.is_empty() || buttons.len() > 3 {
                        return Some(format!("{} buttons", buttons.len()));
                    }
                    if buttons.iter().any(|b| chars(&b["reply"]["title"]) > 20 || chars(&b["reply"]["id"]) > 256) {
                        return Some("button title over 20".into());
                    }
                    (chars(&i["body"]["text"]) > 1024).then(|| "button body too long".into())
                }
                Some("list") => {
                    let rows: Vec<&Value> = i["action"]["sections"]
                        .as_array()?
                        .iter()
                        .flat_map(|s| s["rows"].as_array().into_iter().flatten())
                        .collect();
                    if rows.is_empty() || rows.len() > 10 {
                        return Some(format!("{} rows", rows.len()));
                    }
                    if rows
                        .iter()
                        .any(|r| chars(&r["title"]) > 24 || chars(&r["id"]) > 200 || chars(&r["description"]) > 72)
                    {
                        return Some("row over limits".into());
                    }
                    (chars(&i["action"]["button"]) > 20).then(|| "list button over 20".into())
                }
                other => Some(format!("interactive type {other:?}")),
            }
        }
        other => Some(format!("type {other:?}")),
    }
}

// ---------------------------------------------------------------- fake Frappe ERP

#[derive(Default)]
pub struct ErpLog {
    /// Documents by doctype, in creation order.
    pub docs: HashMap<String, Vec<Value>>,
    /// Every POST body, by doctype.
    pub posts: Vec<(String, Value)>,
    /// Fail this many POSTs with HTTP 500.
    pub fail_posts: usize,
    /// Commit this many POSTs but answer them too late (the client times out).
    pub slow_commits: usize,
    pub counter: usize,
}

#[derive(Clone)]
pub struct FakeErp {
    pub url: String,
    pub log: Arc<Mutex<ErpLog>>,
}

impl FakeErp {
    pub fn start() -> FakeErp {
        let log: Arc<Mutex<ErpLog>> = Arc::default();
        {
            let catalog: Value = serde_json::from_str(include_str!("../../fixtures/catalog.json")).unwrap();
            let items: Vec<Value> = catalog["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    let mut i = i.clone();
                    i["item_group"] = json!("Car Care Services");
                    i["disabled"] = json!(0);
                    i["name"] = i["item_code"].clone();
                    i
                })
                .collect();
            log.lock().unwrap().docs.insert("Item".into(), items);
        }
        let l = log.clone();
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new(l.clone()))
                .route("/api/resource/{doctype}", web::get().to(erp_list))
                .route("/api/resource/{doctype}", web::post().to(erp_create));
        });
        FakeErp { url, log }
    }

    pub fn docs(&self, doctype: &str) -> Vec<Value> {
        self.log.lock().unwrap().docs.get(doctype).cloned().unwrap_or_default()
    }
}

fn erp_auth_ok(req: &HttpRequest) -> bool {
    req.headers().get("Authorization").and_then(|h| h.to_str().ok()) == Some("token test-key:test-secret")
}

fn matches(doc: &Value, filters: &Value) -> bool {
    filters.as_array().into_iter().flatten().all(|f| {
        let (field, op, value) = (f[0].as_str().unwrap_or_default(), f[1].as_str().unwrap_or("="), &f[2]);
        let have = &doc[field];
        match op {
            "=" => {
                have == value
                    || (have.as_str().is_some() && have.as_str() == value.as_str())
                    || (have.as_f64().is_some() && have.as_f64() == value.as_f64())
            }
            _ => false,
        }
    })
}

async fn erp_list(
    log: web::Data<Arc<Mutex<ErpLog>>>,
    req: HttpRequest,
    doctype: web::Path<String>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if !erp_auth_ok(&req) {
        return HttpResponse::Unauthorized().json(json!({"exc_type": "AuthenticationError"}));
    }
    let filters: Value = q.get("filters").and_then(|f| serde_json::from_str(f).ok()).unwrap_or(json!([]));
    let fields: Vec<String> =
        q.get("fields").and_then(|f| serde_json::from_str(f).ok()).unwrap_or_else(|| vec!["name".into()]);
    let limit: usize = q.get("limit_page_length").and_then(|l| l.parse().ok()).unwrap_or(20);
    let l = log.lock().unwrap();
    let docs = l.docs.get(doctype.as_str()).cloned().unwrap_or_default();
    let mut out: Vec<Value> = docs
        .iter()
        .filter(|d| matches(d, &filters))
        .map(|d| Value::Object(fields.iter().filter_map(|f| d.get(f).map(|v| (f.clone(), v.clone()))).collect()))
        .collect();
    if limit > 0 {
        out.truncate(limit);
    }
    HttpResponse::Ok().json(json!({"data": out}))
}

async fn erp_create(
    log: web::Data<Arc<Mutex<ErpLog>>>,
    req: HttpRequest,
    doctype: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    if !erp_auth_ok(&req) {
        return HttpResponse::Unauthorized().json(json!({"exc_type": "AuthenticationError"}));
    }
    let doctype = doctype.into_inner();
    let mut doc = body.into_inner();
    let slow = {
        let mut l = log.lock().unwrap();
        l.posts.push((doctype.clone(), doc.clone()));
        if l.fail_posts > 0 {
            l.fail_posts -= 1;
            return HttpResponse::InternalServerError().json(json!({"exc_type": "OperationalError", "_server_messages": "[\"{\\\"message\\\": \\\"Database is busy\\\"}\"]"}));
        }
        // A unique custom field: a repeated key is refused as Frappe does (reference §7).
        if let Some(key) = doc.get("wa_idempotency_key").cloned() {
            if l.docs.get(&doctype).into_iter().flatten().any(|d| d["wa_idempotency_key"] == key) {
                return HttpResponse::build(actix_web::http::StatusCode::EXPECTATION_FAILED)
                    .json(json!({"exc_type": "UniqueValidationError", "_server_messages": "[\"{\\\"message\\\": \\\"Duplicate key\\\"}\"]"}));
            }
        }
        if doctype == "Sales Order"
            && doc
                .get("customer")
                .and_then(Value::as_str)
                .is_none_or(|c| !l.docs.get("Customer").into_iter().flatten().any(|d| d["name"] == c))
        {
            return HttpResponse::build(actix_web::http::StatusCode::EXPECTATION_FAILED)
                .json(json!({"exc_type": "LinkValidationError", "_server_messages": "[\"{\\\"message\\\": \\\"Could not find Customer\\\"}\"]"}));
        }
        l.counter += 1;
        let name = match doctype.as_str() {
            "Customer" => doc["customer_name"].as_str().unwrap_or("Customer").to_string(),
            "Sales Order" => format!("SAL-ORD-2026-{:05}", l.counter),
            other => format!("{}-{:05}", other.to_uppercase().replace(' ', "-"), l.counter),
        };
        doc["name"] = json!(name);
        doc["doctype"] = json!(doctype);
        doc["docstatus"] = json!(0);
        l.docs.entry(doctype.clone()).or_default().push(doc.clone());
        let slow = l.slow_commits > 0;
        if slow {
            l.slow_commits -= 1;
        }
        slow
    };
    if slow {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    HttpResponse::Ok().json(json!({"data": doc}))
}

// ---------------------------------------------------------------- fake LLM

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LlmMode {
    /// Answers from the script; `{"slots": []}` for anything else.
    Good,
    /// Never answers in time.
    Slow,
    /// Answers JSON that names a slot the schema does not allow.
    Adversarial,
    /// Answers text that is not JSON.
    Invalid,
}

#[derive(Default)]
pub struct LlmLog {
    pub calls: usize,
    pub requests: Vec<Value>,
}

#[derive(Clone)]
pub struct FakeLlm {
    pub url: String,
    pub log: Arc<Mutex<LlmLog>>,
}

impl FakeLlm {
    /// `script` maps a customer's message to the extraction the fake answers.
    pub fn start(mode: LlmMode, script: Vec<(&'static str, Value)>) -> FakeLlm {
        let log: Arc<Mutex<LlmLog>> = Arc::default();
        let l = log.clone();
        let script: Arc<Vec<(String, Value)>> = Arc::new(script.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new((l.clone(), script.clone(), mode)))
                .route("/v1/chat/completions", web::post().to(llm_answer));
        });
        FakeLlm { url: format!("{url}/v1"), log }
    }

    pub fn calls(&self) -> usize {
        self.log.lock().unwrap().calls
    }
}

type LlmState = (Arc<Mutex<LlmLog>>, Arc<Vec<(String, Value)>>, LlmMode);

async fn llm_answer(state: web::Data<LlmState>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    let (log, script, mode) = state.get_ref();
    if req.headers().get("Authorization").and_then(|h| h.to_str().ok()) != Some("Bearer test-llm-key") {
        return HttpResponse::Unauthorized().json(json!({"error": {"message": "bad key"}}));
    }
    let body = body.into_inner();
    {
        let mut l = log.lock().unwrap();
        l.calls += 1;
        l.requests.push(body.clone());
    }
    let user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|x| x["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let content = match mode {
        LlmMode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "{\"slots\": []}".to_string()
        }
        LlmMode::Invalid => "Sure! The customer's name is probably Jane.".to_string(),
        LlmMode::Adversarial => {
            "{\"slots\": [{\"slot\": \"admin_override\", \"value\": \"confirm\", \"quote\": \"confirm\"}]}".to_string()
        }
        LlmMode::Good => script
            .iter()
            .find(|(k, _)| *k == user)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| "{\"slots\": []}".into()),
    };
    HttpResponse::Ok().json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    }))
}

// ---------------------------------------------------------------- databases

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(String),
    Postgres(String),
}

impl Db {
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite://{p}"),
            Db::Postgres(u) => u.clone(),
        }
    }
}

/// A fresh SQLite file.
pub fn sqlite() -> Db {
    let dir = std::env::temp_dir().join("carewell-tests");
    std::fs::create_dir_all(&dir).unwrap();
    Db::Sqlite(dir.join(format!("{}.db", uuid::Uuid::new_v4().simple())).display().to_string())
}

/// A fresh PostgreSQL database on the server named by `TEST_POSTGRES_URL` (the Makefile sets it to
/// the local server), or `None` when it is unset.
pub async fn postgres() -> Option<Db> {
    let admin = std::env::var("TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let name = format!("carewell_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = AsyncPgConnection::establish(&admin).await.expect("TEST_POSTGRES_URL must reach PostgreSQL");
    conn.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
    Some(Db::Postgres(format!("{base}/{name}")))
}

// ---------------------------------------------------------------- the server under test

pub struct Fakes {
    pub graph: FakeGraph,
    pub erp: FakeErp,
    pub llm: Option<FakeLlm>,
}

impl Fakes {
    pub fn new(llm: Option<FakeLlm>) -> Fakes {
        Fakes { graph: FakeGraph::start(), erp: FakeErp::start(), llm }
    }
}

pub struct Server {
    pub url: String,
    child: Child,
    pub db: Db,
    pub log_path: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `carewell serve` on a free port against the fakes.
    pub fn start(db: &Db, fakes: &Fakes) -> Server {
        Server::start_with(db, fakes, &[])
    }

    /// Starts `carewell serve` with extra environment variables.
    pub fn start_with(db: &Db, fakes: &Fakes, extra: &[(&str, &str)]) -> Server {
        let log_path =
            std::env::temp_dir().join("carewell-tests").join(format!("server-{}.log", uuid::Uuid::new_v4().simple()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carewell"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("DATABASE_URL", db.url())
            .env("FLOWS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/flows"))
            .env("WHATSAPP_APP_SECRET", SECRET)
            .env("WHATSAPP_VERIFY_TOKEN", "test-verify")
            .env("WHATSAPP_API_BASE_URL", &fakes.graph.url)
            .env("WHATSAPP_ACCESS_TOKEN", GRAPH_TOKEN)
            .env("ERP_BASE_URL", &fakes.erp.url)
            .env("ERP_API_KEY", "test-key")
            .env("ERP_API_SECRET", "test-secret")
            .env("ERP_TIMEOUT_MS", "1000")
            .env("OUTBOX_BASE_DELAY_MS", "50")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(llm) = &fakes.llm {
            cmd.env("LLM_BASE_URL", &llm.url)
                .env("LLM_API_KEY", "test-llm-key")
                .env("LLM_MODEL", "fake-model")
                .env("LLM_TIMEOUT_MS", "500");
        }
        cmd.env("ADMIN_TOKEN", ADMIN_TOKEN).env("LEASE_MS", "2000").env("OUTBOX_CLAIM_MS", "2000");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start carewell serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("listening on ") => break line["listening on ".len()..].to_string(),
                Some(Ok(_)) => continue,
                _ => {
                    panic!("the server did not start; log: {}", std::fs::read_to_string(&log_path).unwrap_or_default())
                }
            }
        };
        Server { url, child, db: db.clone(), log_path }
    }

    /// SIGKILLs the server (no clean shutdown).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Posts a body with a signature made with `secret`; returns the HTTP status and body.
    pub async fn post_webhook(&self, body: &str, secret: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/webhooks/whatsapp", self.url))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(s) = secret {
            req = req.header("X-Hub-Signature-256", sign(s.as_bytes(), body.as_bytes()));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn health(&self) -> Value {
        reqwest::get(format!("{}/health", self.url)).await.unwrap().json().await.unwrap()
    }

    /// Waits until the inbox and the outbox are empty (twice in a row).
    pub async fn settle(&self) {
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 2 {
            let h = self.health().await;
            if h["inbox"]["pending"] == 0 && h["outbox"]["pending"] == 0 {
                quiet += 1;
            } else {
                quiet = 0;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not settle: {h}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// Calls the admin API.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.url);
        let req = if method == "GET" { client.get(url) } else { client.post(url).json(&body) };
        let resp = req.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Opens the database the server uses.
    pub async fn store(&self) -> carewell::store::Store {
        let url = carewell::store::DatabaseUrl::parse(Some(&self.db.url())).unwrap();
        carewell::store::Store::connect(&url, 2).await.unwrap()
    }
}

// ---------------------------------------------------------------- a customer

pub struct Customer<'a> {
    pub server: &'a Server,
    pub graph: &'a FakeGraph,
    pub wa_id: String,
    pub name: String,
    counter: usize,
    seen: usize,
}

impl<'a> Customer<'a> {
    pub fn new(server: &'a Server, graph: &'a FakeGraph, wa_id: &str) -> Self {
        Customer { server, graph, wa_id: wa_id.into(), name: "Jane".into(), counter: 0, seen: 0 }
    }

    pub fn conversation_id(&self) -> String {
        format!("{PHONE_NUMBER_ID}:{}", self.wa_id)
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("wamid.IN-{}-{}-{}", self.wa_id, self.counter, uuid::Uuid::new_v4().simple())
    }

    /// The signed webhook body for one message of `kind` with its `type` object.
    pub fn body(&mut self, kind: &str, object: Value, context: Option<&str>) -> (String, String) {
        let id = self.next_id();
        let mut m = json!({"from": self.wa_id, "id": id, "timestamp": jiff::Timestamp::now().as_second().to_string(), "type": kind});
        m[kind] = object;
        if let Some(c) = context {
            m["context"] = json!({"from": "15550000000", "id": c});
        }
        (to_ascii_json(&envelope(PHONE_NUMBER_ID, &self.wa_id, &self.name, m)), id)
    }

    async fn deliver(&mut self, kind: &str, object: Value, context: Option<&str>) -> Vec<Value> {
        let (body, _) = self.body(kind, object, context);
        let (status, answer) = self.server.post_webhook(&body, Some(SECRET)).await;
        assert_eq!(status, 200, "webhook refused: {answer}");
        self.server.settle().await;
        self.replies()
    }

    /// Messages received since the last call.
    pub fn replies(&mut self) -> Vec<Value> {
        let all = self.graph.sent_to(&self.wa_id);
        let new = all[self.seen..].to_vec();
        self.seen = all.len();
        new
    }

    pub async fn deliver_raw(&mut self, kind: &str, object: Value) -> Vec<Value> {
        self.deliver(kind, object, None).await
    }

    pub async fn text(&mut self, body: &str) -> Vec<Value> {
        self.deliver("text", json!({"body": body}), None).await
    }

    pub async fn location(&mut self, lat: f64, lon: f64, name: &str) -> Vec<Value> {
        self.deliver("location", json!({"latitude": lat, "longitude": lon, "name": name, "address": name}), None).await
    }

    /// Presses the option titled `title` of the newest interactive message received.
    pub async fn press(&mut self, title: &str) -> Vec<Value> {
        let all = self.graph.sent_to(&self.wa_id);
        let last =
            all.iter().rev().find(|m| m["type"] == "interactive").cloned().expect("no interactive message to press");
        self.press_in(&last, title).await
    }

    /// Presses the option titled `title` (or starting with it) of `message`.
    pub async fn press_in(&mut self, message: &Value, title: &str) -> Vec<Value> {
        let (id, full, kind) =
            find_option(message, title).unwrap_or_else(|| panic!("no option {title:?} in {message}"));
        let wamid = message["_wamid"].as_str().map(String::from);
        let key = if kind == "button" { "button_reply" } else { "list_reply" };
        self.deliver("interactive", json!({"type": key, key: {"id": id, "title": full}}), wamid.as_deref()).await
    }
}

/// Finds an option by title prefix: (id, title, "button" | "list").
pub fn find_option(message: &Value, title: &str) -> Option<(String, String, &'static str)> {
    let i = &message["interactive"];
    if i["type"] == "button" {
        i["action"]["buttons"]
            .as_array()?
            .iter()
            .find(|b| b["reply"]["title"].as_str().is_some_and(|t| t.starts_with(title)))
            .map(|b| {
                (
                    b["reply"]["id"].as_str().unwrap().to_string(),
                    b["reply"]["title"].as_str().unwrap().to_string(),
                    "button",
                )
            })
    } else {
        i["action"]["sections"]
            .as_array()?
            .iter()
            .flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default())
            .find(|r| r["title"].as_str().is_some_and(|t| t.starts_with(title)))
            .map(|r| (r["id"].as_str().unwrap().to_string(), r["title"].as_str().unwrap().to_string(), "list"))
    }
}

/// The text of a sent message (text body or interactive body).
pub fn text_of(m: &Value) -> String {
    m["text"]["body"].as_str().or(m["interactive"]["body"]["text"].as_str()).unwrap_or_default().to_string()
}

/// All texts of `messages`, joined.
pub fn texts(messages: &[Value]) -> String {
    messages.iter().map(text_of).collect::<Vec<_>>().join("\n---\n")
}
