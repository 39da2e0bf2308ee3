//! Loopback fakes of the outside world — the WhatsApp Graph API, a Frappe ERP and an
//! OpenAI-compatible LLM — realistic enough to exercise the real server: they check
//! authentication and WhatsApp's message limits (`../shared/reference/whatsapp-cloud-api.md` §7,
//! §11), name documents and refuse values of fields declared unique as Frappe does (`frappe-rest-api.md` §7, §9),
//! and can be told to fail, time out or lie. Used by the end-to-end tests and the load generator;
//! never by the service itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

mod erp;
mod hook;
mod llm;
mod speech;

pub use erp::*;
pub use hook::*;
pub use llm::*;
pub use speech::*;

/// The bearer token the fake Graph API accepts.
pub const GRAPH_TOKEN: &str = "test-graph-token";
/// The business number the fake Graph API serves.
pub const PHONE_NUMBER_ID: &str = "109876543210987";
/// A second business number of the same business (a customer may write to either).
pub const SECOND_PHONE_NUMBER_ID: &str = "109876543210988";
/// The API key and secret the fake ERP accepts (`Authorization: token key:secret`).
pub const ERP_KEY: (&str, &str) = ("test-key", "test-secret");
/// The bearer token the fake LLM accepts.
pub const LLM_KEY: &str = "test-llm-key";

/// Starts an actix server for `routes` on a free loopback port; returns its base URL.
fn spawn_fake<F>(routes: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
        .workers(2)
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

// ---------------------------------------------------------------- injected faults

/// The environment variable that makes the server panic inside its guards when a typed message
/// contains its value (read only in builds with the `fakes` feature: tests, never production).
pub const PANIC_IN_GUARDS_ENV: &str = "CAREWELL_FAULT_PANIC_IN_GUARDS";

/// Panics when `text` contains the value of [`PANIC_IN_GUARDS_ENV`]: a deliberate bug, for the
/// tests that show a panic in a turn neither blocks its conversation nor the process.
pub fn injected_guard_panic(text: Option<&str>) {
    let Ok(trigger) = std::env::var(PANIC_IN_GUARDS_ENV) else { return };
    if !trigger.is_empty() && text.is_some_and(|t| t.contains(&trigger)) {
        panic!("injected fault: a panic inside the guards");
    }
}

// ---------------------------------------------------------------- fake Graph API

/// What the fake Graph API received.
#[derive(Default)]
pub struct GraphLog {
    /// Accepted messages in arrival order; each carries `_wamid` (the id answered) and
    /// `_received_ms` (Unix ms).
    pub sent: Vec<Value>,
    /// Indexes into `sent` by recipient (`+<digits>`).
    pub by_to: HashMap<String, Vec<usize>>,
    /// Fail this many sends with HTTP 500 / code 131000 before accepting.
    pub fail_next: usize,
    /// Every send attempt, accepted or not.
    pub attempts: usize,
    /// Files customers "sent": media id → (MIME type, bytes).
    pub media: HashMap<String, (String, Vec<u8>)>,
    /// Media downloads served (bytes fetched).
    pub media_downloads: usize,
}

/// The fake Graph API: `POST /{version}/{phone_number_id}/messages`.
#[derive(Clone)]
pub struct FakeGraph {
    /// Base URL with the version segment (`http://127.0.0.1:PORT/v23.0`).
    pub url: String,
    /// What it received.
    pub log: Arc<Mutex<GraphLog>>,
    /// Woken on every accepted message.
    pub arrived: Arc<tokio::sync::Notify>,
}

impl FakeGraph {
    /// Starts it on a free loopback port.
    pub fn start() -> FakeGraph {
        let log: Arc<Mutex<GraphLog>> = Arc::default();
        let arrived: Arc<tokio::sync::Notify> = Arc::default();
        let (l, a) = (log.clone(), arrived.clone());
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new((l.clone(), a.clone())))
                .route("/{version}/{pnid}/messages", web::post().to(graph_send))
                // Before the metadata route, which would match this path too.
                .route("/media-bytes/{media_id}", web::get().to(graph_media_bytes))
                .route("/{version}/{media_id}", web::get().to(graph_media_meta));
        });
        FakeGraph { url: format!("{url}/v23.0"), log, arrived }
    }

    /// Makes a file available for download as if a customer had sent it.
    pub fn add_media(&self, media_id: &str, mime_type: &str, bytes: Vec<u8>) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).media.insert(media_id.into(), (mime_type.into(), bytes));
    }

    /// Messages sent to `customer` (a number's digits, or a business-scoped user id), in order.
    pub fn sent_to(&self, customer: &str) -> Vec<Value> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.by_to
            .get(&format!("+{customer}"))
            .or_else(|| log.by_to.get(customer))
            .map(|ix| ix.iter().map(|i| log.sent[*i].clone()).collect())
            .unwrap_or_default()
    }

    /// How many messages `customer` received.
    pub fn count_to(&self, customer: &str) -> usize {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.by_to.get(&format!("+{customer}")).or_else(|| log.by_to.get(customer)).map_or(0, Vec::len)
    }

    /// Every message sent, in order.
    pub fn all_sent(&self) -> Vec<Value> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).sent.clone()
    }

    /// Waits until `customer` has received more than `seen` messages; returns the new ones, or
    /// none after `timeout`.
    pub async fn wait_beyond(&self, customer: &str, seen: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if self.count_to(customer) > seen {
                return self.sent_to(customer)[seen..].to_vec();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return vec![];
            }
        }
    }
}

/// `GET /{version}/{media_id}`: the media's metadata with a download URL on this server
/// (reference §9 "Media download"); an unknown id is a 400 error body, as Graph answers.
async fn graph_media_meta(
    state: web::Data<(Arc<Mutex<GraphLog>>, Arc<tokio::sync::Notify>)>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let auth = req.headers().get("Authorization").and_then(|h| h.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {GRAPH_TOKEN}") {
        return HttpResponse::Unauthorized()
            .json(json!({"error": {"message": "Invalid OAuth access token", "code": 190}}));
    }
    let (_, media_id) = path.into_inner();
    let log = state.0.lock().unwrap_or_else(|p| p.into_inner());
    match log.media.get(&media_id) {
        Some((mime, bytes)) => {
            let host = req.connection_info().host().to_string();
            HttpResponse::Ok().json(json!({
                "messaging_product": "whatsapp",
                "url": format!("http://{host}/media-bytes/{media_id}"),
                "mime_type": mime,
                "file_size": bytes.len().to_string(),
                "id": media_id,
            }))
        }
        None => HttpResponse::BadRequest()
            .json(json!({"error": {"message": "Unsupported get request", "code": 100, "error_subcode": 33}})),
    }
}

/// `GET /media-bytes/{id}`: the file itself; requires the bearer token, as Graph does.
async fn graph_media_bytes(
    state: web::Data<(Arc<Mutex<GraphLog>>, Arc<tokio::sync::Notify>)>,
    req: HttpRequest,
    media_id: web::Path<String>,
) -> HttpResponse {
    let auth = req.headers().get("Authorization").and_then(|h| h.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {GRAPH_TOKEN}") {
        return HttpResponse::Unauthorized().finish();
    }
    let mut log = state.0.lock().unwrap_or_else(|p| p.into_inner());
    let found = log.media.get(media_id.as_str()).cloned();
    match found {
        Some((mime, bytes)) => {
            log.media_downloads += 1;
            HttpResponse::Ok().content_type(mime).body(bytes)
        }
        None => HttpResponse::NotFound().finish(),
    }
}

async fn graph_send(
    state: web::Data<(Arc<Mutex<GraphLog>>, Arc<tokio::sync::Notify>)>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    let auth = req.headers().get("Authorization").and_then(|h| h.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {GRAPH_TOKEN}") {
        return HttpResponse::Unauthorized()
            .json(json!({"error": {"message": "Invalid OAuth access token", "code": 190}}));
    }
    if path.1 != PHONE_NUMBER_ID && path.1 != SECOND_PHONE_NUMBER_ID {
        return HttpResponse::BadRequest().json(json!({"error": {"message": "unknown phone number id", "code": 100}}));
    }
    let b = body.into_inner();
    if let Some(problem) = check_limits(&b) {
        return HttpResponse::BadRequest().json(json!({"error": {"message": problem, "code": 131009}}));
    }
    let (log, arrived) = state.get_ref();
    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
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
    stored["_received_ms"] = json!(jiff::Timestamp::now().as_millisecond());
    stored["_from"] = json!(path.1);
    let to = b["to"].as_str().or(b["recipient"].as_str()).unwrap_or_default().to_string();
    l.sent.push(stored);
    l.by_to.entry(to).or_default().push(n);
    drop(l);
    arrived.notify_waiters();
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
        // A template needs its approved name and language; a text parameter may hold no new line,
        // tab or more than four spaces in a row (the Cloud API refuses it, error 132018).
        Some("template") => {
            let t = &b["template"];
            if chars(&t["name"]) == 0 || chars(&t["language"]["code"]) == 0 {
                return Some("template needs name and language.code".into());
            }
            let texts = t["components"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["parameters"].as_array().into_iter().flatten())
                .filter_map(|p| p["text"].as_str());
            for text in texts {
                if text.contains(['\n', '\t']) || text.contains("     ") {
                    return Some(format!("132018: parameter {text:?} has a new line, a tab or 5 spaces in a row"));
                }
            }
            None
        }
        other => Some(format!("type {other:?}")),
    }
}
