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

// ---------------------------------------------------------------- fake team webhook

/// A team's hand-off webhook receiver: keeps every POST (its signature header and body) and can
/// answer HTTP 503 to the next few, as a receiver that is down would.
#[derive(Clone)]
pub struct FakeHook {
    /// Base URL; hand-offs are posted to `{url}/handoffs`.
    pub url: String,
    log: Arc<Mutex<HookLog>>,
}

#[derive(Default)]
struct HookLog {
    /// (signature header, body) of each POST that was accepted.
    accepted: Vec<(String, String)>,
    /// POSTs answered 503 so far.
    refused: usize,
    /// How many more to answer 503.
    fail_next: usize,
}

impl FakeHook {
    /// Starts it on a free loopback port.
    pub fn start() -> FakeHook {
        let log: Arc<Mutex<HookLog>> = Arc::default();
        let shared = log.clone();
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new(shared.clone())).route("/handoffs", web::post().to(hook_receive));
        });
        FakeHook { url, log }
    }

    /// The POSTs it accepted: (signature header, body).
    pub fn accepted(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).accepted.clone()
    }

    /// How many POSTs it answered 503.
    pub fn refused(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).refused
    }

    /// Answers 503 to the next `n` POSTs.
    pub fn fail_next(&self, n: usize) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).fail_next = n;
    }
}

async fn hook_receive(log: web::Data<Arc<Mutex<HookLog>>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let signature = req.headers().get("X-Carewell-Signature").and_then(|h| h.to_str().ok()).unwrap_or_default();
    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
    if l.fail_next > 0 {
        l.fail_next -= 1;
        l.refused += 1;
        return HttpResponse::ServiceUnavailable().finish();
    }
    l.accepted.push((signature.to_string(), String::from_utf8_lossy(&body).into_owned()));
    HttpResponse::Ok().finish()
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
        other => Some(format!("type {other:?}")),
    }
}

// ---------------------------------------------------------------- fake Frappe ERP

/// What the fake ERP holds and received, and the failures it is told to inject.
#[derive(Default)]
pub struct ErpLog {
    /// Documents by doctype, in creation order.
    pub docs: HashMap<String, Vec<Value>>,
    /// Every POST body, by doctype.
    pub posts: Vec<(String, Value)>,
    /// Every PUT: doctype, name, body.
    pub puts: Vec<(String, String, Value)>,
    /// Fail this many writes (POST or PUT) with HTTP 500.
    pub fail_posts: usize,
    /// Commit this many POSTs but answer them too late (the client times out).
    pub slow_commits: usize,
    /// Naming-series counter.
    pub counter: usize,
    /// Every request, in order: method and doctype (`File` for an upload).
    pub requests: Vec<(String, String)>,
    /// How long every request takes before it is answered (a slow site).
    pub latency: Duration,
    /// Fields declared unique (doctype, field): a POST repeating a value is refused with
    /// `UniqueValidationError`, as Frappe does for a unique custom field (reference §7). Without
    /// one, a repeated POST creates a second document, as Frappe does.
    pub unique: Vec<(String, String)>,
}

/// The fake Frappe site: `GET`/`POST /api/resource/{doctype}`, with the catalog of
/// `fixtures/catalog.json` as `Item` documents.
#[derive(Clone)]
pub struct FakeErp {
    /// Base URL.
    pub url: String,
    /// Its documents and log.
    pub log: Arc<Mutex<ErpLog>>,
}

impl FakeErp {
    /// Starts it on a free loopback port.
    pub fn start() -> FakeErp {
        let log: Arc<Mutex<ErpLog>> = Arc::default();
        {
            let catalog: Value = serde_json::from_str(include_str!("../fixtures/catalog.json")).unwrap();
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
                .route("/api/resource/{doctype}", web::post().to(erp_create))
                .route("/api/resource/{doctype}/{name}", web::put().to(erp_update))
                .route("/api/method/upload_file", web::post().to(erp_upload_file));
        });
        FakeErp { url, log }
    }

    /// Declares `field` of `doctype` unique, as a site with that custom field set to Unique.
    pub fn declare_unique(&self, doctype: &str, field: &str) {
        self.log.lock().unwrap().unique.push((doctype.to_string(), field.to_string()));
    }

    /// Makes every request take `latency` before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.log.lock().unwrap().latency = latency;
    }

    /// Every request received: method and doctype.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Adds a document as if it had been made in the ERP (a customer's earlier booking).
    pub fn insert(&self, doctype: &str, doc: Value) {
        self.log.lock().unwrap().docs.entry(doctype.to_string()).or_default().push(doc);
    }

    /// Loads the sample customer's documents of `fixtures/erp/` (orders, invoices,
    /// subscriptions, offers) for the customer `wa_id`: the sample number is replaced by theirs
    /// and `@today+N` dates are resolved against today in `zone`.
    pub fn seed_sample_customer(&self, wa_id: &str, zone: &str) {
        let today =
            jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC)).date();
        for (doctype, text) in SAMPLE_FIXTURES {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            for row in v["data"].as_array().into_iter().flatten() {
                let text = row.to_string().replace(SAMPLE_NUMBER, &format!("+{wa_id}"));
                let mut doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut doc {
                    for v in m.values_mut() {
                        if let Some(s) = v.as_str().filter(|s| s.starts_with("@today")) {
                            let rest = &s["@today".len()..];
                            let (n, tail) = rest
                                .split_once(' ')
                                .map(|(a, b)| (a, format!(" {b}")))
                                .unwrap_or((rest, String::new()));
                            let days: i64 = n.trim_start_matches('+').parse().unwrap_or(0);
                            *v = json!(format!(
                                "{}{tail}",
                                today.checked_add(jiff::Span::new().days(days)).unwrap_or(today)
                            ));
                        }
                    }
                }
                self.insert(doctype, doc);
            }
        }
    }

    /// The documents of a doctype, in creation order.
    pub fn docs(&self, doctype: &str) -> Vec<Value> {
        self.log.lock().unwrap().docs.get(doctype).cloned().unwrap_or_default()
    }
}

/// Logs a request and waits the site's latency before it is handled.
async fn erp_request(log: &Mutex<ErpLog>, method: &str, doctype: &str) {
    let latency = {
        let mut l = log.lock().unwrap();
        l.requests.push((method.to_string(), doctype.to_string()));
        l.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

fn erp_auth_ok(req: &HttpRequest) -> bool {
    req.headers().get("Authorization").and_then(|h| h.to_str().ok())
        == Some(format!("token {}:{}", ERP_KEY.0, ERP_KEY.1).as_str())
}

/// The sample customer's number in `fixtures/erp/`.
const SAMPLE_NUMBER: &str = "+971500000001";

/// The sample ERP documents, by doctype.
const SAMPLE_FIXTURES: &[(&str, &str)] = &[
    ("Sales Order", include_str!("../fixtures/erp/sales_orders.json")),
    ("Subscription", include_str!("../fixtures/erp/subscriptions.json")),
    ("Sales Invoice", include_str!("../fixtures/erp/sales_invoices.json")),
    ("Pricing Rule", include_str!("../fixtures/erp/offers.json")),
];

fn matches(doc: &Value, filters: &Value) -> bool {
    filters.as_array().into_iter().flatten().all(|f| {
        let (field, op, value) = (f[0].as_str().unwrap_or_default(), f[1].as_str().unwrap_or("="), &f[2]);
        let have = &doc[field];
        let equal = have == value
            || (have.as_str().is_some() && have.as_str() == value.as_str())
            || (have.as_f64().is_some() && have.as_f64() == value.as_f64());
        let order = match (have.as_f64(), value.as_f64(), have.as_str(), value.as_str()) {
            (Some(a), Some(b), _, _) => a.partial_cmp(&b),
            (_, _, Some(a), Some(b)) => Some(a.cmp(b)),
            _ => None,
        };
        match op {
            "=" => equal,
            "!=" => !equal,
            ">" => order.is_some_and(|o| o.is_gt()),
            ">=" => order.is_some_and(|o| o.is_ge()),
            "<" => order.is_some_and(|o| o.is_lt()),
            "<=" => order.is_some_and(|o| o.is_le()),
            "in" => value.as_array().is_some_and(|a| a.contains(have)),
            "not in" => value.as_array().is_some_and(|a| !a.contains(have)),
            _ => false,
        }
    })
}

/// `POST /api/method/upload_file` (multipart, reference §5): stores a `File` document with the
/// form fields and the file's size and SHA-256, and answers `{"message": {File doc}}`.
async fn erp_upload_file(log: web::Data<Arc<Mutex<ErpLog>>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !erp_auth_ok(&req) {
        return HttpResponse::Unauthorized().json(json!({"exc_type": "AuthenticationError"}));
    }
    erp_request(&log, "POST", "File").await;
    let content_type = req.headers().get("Content-Type").and_then(|h| h.to_str().ok()).unwrap_or_default();
    let Some(boundary) = content_type.split("boundary=").nth(1).map(|b| b.trim_matches('"').to_string()) else {
        return HttpResponse::BadRequest().json(json!({"exc_type": "ValidationError"}));
    };
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    let delimiter = format!("--{boundary}");
    let raw = body.to_vec();
    let mut parts: Vec<&[u8]> = Vec::new();
    let d = delimiter.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i + d.len() <= raw.len() {
        if &raw[i..i + d.len()] == d {
            if i > start {
                parts.push(&raw[start..i]);
            }
            i += d.len();
            start = i;
        } else {
            i += 1;
        }
    }
    for part in parts {
        let Some(split) = part.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let mut content = part[split + 4..].to_vec();
        if content.ends_with(b"\r\n") {
            content.truncate(content.len() - 2);
        }
        let name = head.split("name=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string();
        match head.split("filename=\"").nth(1).and_then(|r| r.split('"').next()) {
            Some(filename) => file = Some((filename.to_string(), content)),
            None => {
                fields.insert(name, String::from_utf8_lossy(&content).to_string());
            }
        }
    }
    let Some((filename, bytes)) = file else {
        return HttpResponse::build(actix_web::http::StatusCode::EXPECTATION_FAILED)
            .json(json!({"exc_type": "ValidationError", "_server_messages": "[\"{\\\"message\\\": \\\"No file attached\\\"}\"]"}));
    };
    let mut l = log.lock().unwrap();
    l.counter += 1;
    let file_name = fields.get("file_name").cloned().unwrap_or(filename);
    let doc = json!({
        "name": format!("FILE-{:05}", l.counter),
        "doctype": "File",
        "file_name": file_name,
        "file_url": format!("/private/files/{file_name}"),
        "is_private": fields.get("is_private").and_then(|p| p.parse::<i64>().ok()).unwrap_or(1),
        "attached_to_doctype": fields.get("doctype"),
        "attached_to_name": fields.get("docname"),
        "file_size": bytes.len(),
        "content_hash": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
    });
    l.docs.entry("File".into()).or_default().push(doc.clone());
    HttpResponse::Ok().json(json!({"message": doc}))
}

async fn erp_update(
    log: web::Data<Arc<Mutex<ErpLog>>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> HttpResponse {
    if !erp_auth_ok(&req) {
        return HttpResponse::Unauthorized().json(json!({"exc_type": "AuthenticationError"}));
    }
    let (doctype, name) = path.into_inner();
    erp_request(&log, "PUT", &doctype).await;
    let mut l = log.lock().unwrap();
    l.puts.push((doctype.clone(), name.clone(), body.0.clone()));
    if l.fail_posts > 0 {
        l.fail_posts -= 1;
        return HttpResponse::InternalServerError().json(json!({"exc_type": "OperationalError"}));
    }
    let Some(doc) = l.docs.get_mut(&doctype).and_then(|d| d.iter_mut().find(|d| d["name"] == name.as_str())) else {
        return HttpResponse::NotFound().json(
            json!({"exc_type": "DoesNotExistError", "_server_messages": "[\"{\\\"message\\\": \\\"Not found\\\"}\"]"}),
        );
    };
    if let (Value::Object(d), Value::Object(b)) = (doc, body.into_inner()) {
        for (k, v) in b {
            d.insert(k, v);
        }
        return HttpResponse::Ok().json(json!({"data": Value::Object(d.clone())}));
    }
    HttpResponse::BadRequest().finish()
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
    erp_request(&log, "GET", &doctype).await;
    let filters: Value = q.get("filters").and_then(|f| serde_json::from_str(f).ok()).unwrap_or(json!([]));
    let fields: Vec<String> =
        q.get("fields").and_then(|f| serde_json::from_str(f).ok()).unwrap_or_else(|| vec!["name".into()]);
    let limit: usize = q.get("limit_page_length").and_then(|l| l.parse().ok()).unwrap_or(20);
    // Read in place (a long load run stores thousands of documents; copying them all for each
    // request made the fake, not the service, the bottleneck).
    let l = log.lock().unwrap();
    let out: Vec<Value> = l
        .docs
        .get(doctype.as_str())
        .into_iter()
        .flatten()
        .filter(|d| matches(d, &filters))
        .take(if limit > 0 { limit } else { usize::MAX })
        .map(|d| Value::Object(fields.iter().filter_map(|f| d.get(f).map(|v| (f.clone(), v.clone()))).collect()))
        .collect();
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
    erp_request(&log, "POST", &doctype).await;
    let mut doc = body.into_inner();
    let slow = {
        let mut l = log.lock().unwrap();
        l.posts.push((doctype.clone(), doc.clone()));
        if l.fail_posts > 0 {
            l.fail_posts -= 1;
            return HttpResponse::InternalServerError().json(json!({"exc_type": "OperationalError", "_server_messages": "[\"{\\\"message\\\": \\\"Database is busy\\\"}\"]"}));
        }
        // A field declared unique: a repeated value is refused as Frappe does (reference §7).
        // Any other repeated POST makes a second document, as Frappe does.
        let unique: Vec<String> = l.unique.iter().filter(|(d, _)| *d == doctype).map(|(_, f)| f.clone()).collect();
        for field in unique {
            let Some(value) = doc.get(&field).filter(|v| !v.is_null()).cloned() else { continue };
            if l.docs.get(&doctype).into_iter().flatten().any(|d| d[&field] == value) {
                return HttpResponse::build(actix_web::http::StatusCode::EXPECTATION_FAILED)
                    .json(json!({"exc_type": "UniqueValidationError", "_server_messages": "[\"{\\\"message\\\": \\\"Duplicate entry\\\"}\"]"}));
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
            // Named after the customer; a second one of the same name gets a suffix, as Frappe's
            // naming does.
            "Customer" => {
                let base = doc["customer_name"].as_str().unwrap_or("Customer").to_string();
                let taken =
                    l.docs.get("Customer").into_iter().flatten().filter(|d| {
                        d["name"].as_str().is_some_and(|n| n == base || n.starts_with(&format!("{base}-")))
                    });
                match taken.count() {
                    0 => base,
                    n => format!("{base}-{n}"),
                }
            }
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

/// How the fake LLM answers.
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
    /// Lies within the schema: a value for every slot it may name, option ids for choices, with
    /// quotes and values taken at random from the customer's own words (seeded by the message,
    /// so a run repeats).
    Liar,
}

/// What the fake LLM received.
#[derive(Default)]
pub struct LlmLog {
    /// Requests answered.
    pub calls: usize,
    /// Their bodies.
    pub requests: Vec<Value>,
}

/// The fake OpenAI-compatible endpoint: `POST /v1/chat/completions`.
#[derive(Clone)]
pub struct FakeLlm {
    /// Base URL (`…/v1`).
    pub url: String,
    /// What it received.
    pub log: Arc<Mutex<LlmLog>>,
}

impl FakeLlm {
    /// `script` maps a customer's message to the extraction the fake answers.
    pub fn start(mode: LlmMode, script: Vec<(&'static str, Value)>) -> FakeLlm {
        FakeLlm::start_with_latency(mode, script, Duration::ZERO)
    }

    /// Like [`FakeLlm::start`], answering after `latency`.
    pub fn start_with_latency(mode: LlmMode, script: Vec<(&'static str, Value)>, latency: Duration) -> FakeLlm {
        FakeLlm::start_scripted(mode, script.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), latency)
    }

    /// Starts it with a script of owned strings (from a conversation-test file).
    pub fn start_scripted(mode: LlmMode, script: Vec<(String, Value)>, latency: Duration) -> FakeLlm {
        let log: Arc<Mutex<LlmLog>> = Arc::default();
        let l = log.clone();
        let script: Arc<Vec<(String, Value)>> = Arc::new(script.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new((l.clone(), script.clone(), mode, latency)))
                .route("/v1/chat/completions", web::post().to(llm_answer));
        });
        FakeLlm { url: format!("{url}/v1"), log }
    }

    /// Requests answered so far.
    pub fn calls(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).calls
    }
}

type LlmState = (Arc<Mutex<LlmLog>>, Arc<Vec<(String, Value)>>, LlmMode, Duration);

async fn llm_answer(state: web::Data<LlmState>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    let (log, script, mode, latency) = state.get_ref();
    if !latency.is_zero() {
        tokio::time::sleep(*latency).await;
    }
    if req.headers().get("Authorization").and_then(|h| h.to_str().ok()) != Some(format!("Bearer {LLM_KEY}").as_str()) {
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
        LlmMode::Liar => lie(&body, &user),
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

/// A small deterministic random source (xorshift) for the lying LLM.
struct Dice(u64);

impl Dice {
    fn seeded(text: &str) -> Dice {
        Dice(text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
    /// One to `max` consecutive words of `words`, without their punctuation.
    fn span(&mut self, words: &[&str], max: usize) -> String {
        if words.is_empty() {
            return String::new();
        }
        let start = self.below(words.len());
        let len = 1 + self.below(max.min(words.len() - start));
        words[start..start + len].join(" ").trim_matches(|c: char| ",.!?".contains(c)).to_string()
    }
}

/// A schema-valid lie (see [`LlmMode::Liar`]).
fn lie(body: &Value, user: &str) -> String {
    let mut dice = Dice::seeded(user);
    let schema = &body["response_format"]["json_schema"]["schema"];
    let words: Vec<&str> = user.split_whitespace().collect();
    if let Some(intents) = schema.pointer("/properties/intent/enum").and_then(Value::as_array) {
        let intent = intents[dice.below(intents.len())].clone();
        let emotions = ["neutral", "happy", "confused", "frustrated", "angry"];
        return json!({"intent": intent, "emotion": emotions[dice.below(5)], "confidence": 0.95}).to_string();
    }
    let slots: Vec<String> = schema
        .pointer("/$defs/SlotAnswer/properties/slot/enum")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    // "- plan (choice): Plan; value must be one of the ids: one_time = One-time; subscription = …"
    let ids_of = |slot: &str| -> Vec<String> {
        system
            .lines()
            .find(|l| l.starts_with(&format!("- {slot} ")))
            .and_then(|l| l.split_once("one of the ids: "))
            .map(|(_, ids)| ids.split("; ").filter_map(|p| p.split(" = ").next()).map(String::from).collect())
            .unwrap_or_default()
    };
    // An answer for every slot it may name: whatever is not refused gets through.
    let mut answers = Vec::new();
    for slot in slots {
        let ids = ids_of(&slot);
        let quote = dice.span(&words, 3);
        let value = if !ids.is_empty() {
            ids[dice.below(ids.len())].clone()
        } else if dice.below(2) == 0 {
            quote.clone()
        } else {
            dice.span(&words, 2)
        };
        answers.push(json!({"slot": slot, "value": value, "quote": quote}));
    }
    json!({"slots": answers}).to_string()
}

// ---------------------------------------------------------------- fake speech to text

/// The fake OpenAI-style speech-to-text endpoint: `POST /v1/audio/transcriptions`
/// (multipart `file` and `model`). It "hears" an audio file as the UTF-8 text its bytes hold, so
/// a test registers a voice note whose bytes are what the customer says.
#[derive(Clone)]
pub struct FakeSpeech {
    /// Base URL (`…/v1`).
    pub url: String,
    /// Transcriptions served.
    pub calls: Arc<Mutex<usize>>,
}

impl FakeSpeech {
    /// Starts it on a free loopback port.
    pub fn start() -> FakeSpeech {
        let calls: Arc<Mutex<usize>> = Arc::default();
        let c = calls.clone();
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new(c.clone())).route("/v1/audio/transcriptions", web::post().to(speech_answer));
        });
        FakeSpeech { url: format!("{url}/v1"), calls }
    }
}

async fn speech_answer(calls: web::Data<Arc<Mutex<usize>>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if req.headers().get("Authorization").and_then(|h| h.to_str().ok()) != Some(format!("Bearer {LLM_KEY}").as_str()) {
        return HttpResponse::Unauthorized().json(json!({"error": {"message": "bad key"}}));
    }
    let text = String::from_utf8_lossy(&body);
    if !text.contains("name=\"model\"") {
        return HttpResponse::BadRequest().json(json!({"error": {"message": "model is required"}}));
    }
    // The file part's content: after its headers' blank line, up to the next boundary.
    let heard = text
        .split("name=\"file\"")
        .nth(1)
        .and_then(|rest| rest.split_once("\r\n\r\n"))
        .and_then(|(_, content)| content.split("\r\n--").next())
        .map(str::to_string);
    match heard {
        Some(heard) => {
            *calls.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            HttpResponse::Ok().json(json!({"text": heard}))
        }
        None => HttpResponse::BadRequest().json(json!({"error": {"message": "file is required"}})),
    }
}
