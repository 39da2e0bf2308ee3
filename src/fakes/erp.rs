//! A fake Frappe ERP: REST resources, Frappe's behaviour on repeated POSTs, injected failures and latency.

#[allow(unused_imports)]
use super::*;

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
    /// The API key and secret the site accepts (by default [`ERP_KEY`]).
    pub key: Option<(String, String)>,
    /// Requests refused for a wrong key.
    pub refused: usize,
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
        FakeErp::start_with_key(ERP_KEY.0, ERP_KEY.1)
    }

    /// Starts one that accepts only the API key `key` and secret `secret` (a business's own).
    pub fn start_with_key(key: &str, secret: &str) -> FakeErp {
        let log: Arc<Mutex<ErpLog>> = Arc::default();
        log.lock().unwrap().key = Some((key.to_string(), secret.to_string()));
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

    /// How many requests were refused for a wrong API key or secret.
    pub fn refused(&self) -> usize {
        self.log.lock().unwrap().refused
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

/// Now as Frappe writes `creation` and `modified` (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC here).
fn frappe_now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S%.6f").to_string()
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

fn erp_auth_ok(req: &HttpRequest, log: &Mutex<ErpLog>) -> bool {
    let mut l = log.lock().unwrap();
    let (key, secret) = l.key.clone().unwrap_or_else(|| (ERP_KEY.0.into(), ERP_KEY.1.into()));
    let ok = req.headers().get("Authorization").and_then(|h| h.to_str().ok())
        == Some(format!("token {key}:{secret}").as_str());
    if !ok {
        l.refused += 1;
    }
    ok
}

/// The sample customer's number in `fixtures/erp/`.
const SAMPLE_NUMBER: &str = "+971500000001";

/// The sample ERP documents, by doctype.
const SAMPLE_FIXTURES: &[(&str, &str)] = &[
    ("Customer", include_str!("../../fixtures/erp/customers.json")),
    ("Sales Order", include_str!("../../fixtures/erp/sales_orders.json")),
    ("Subscription", include_str!("../../fixtures/erp/subscriptions.json")),
    ("Sales Invoice", include_str!("../../fixtures/erp/sales_invoices.json")),
    ("Pricing Rule", include_str!("../../fixtures/erp/offers.json")),
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
    if !erp_auth_ok(&req, &log) {
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
    if !erp_auth_ok(&req, &log) {
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
        d.insert("modified".into(), json!(frappe_now()));
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
    if !erp_auth_ok(&req, &log) {
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
    if !erp_auth_ok(&req, &log) {
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
            "Lead" => format!("CRM-LEAD-2026-{:05}", l.counter),
            other => format!("{}-{:05}", other.to_uppercase().replace(' ', "-"), l.counter),
        };
        doc["name"] = json!(name);
        doc["doctype"] = json!(doctype);
        doc["docstatus"] = json!(0);
        // Frappe stamps every document, and an Issue starts Open (its doctype's default).
        let now = frappe_now();
        doc["creation"] = json!(now);
        doc["modified"] = json!(now);
        if doctype == "Issue" && doc.get("status").is_none_or(Value::is_null) {
            doc["status"] = json!("Open");
        }
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
