//! The ERP client: Frappe/ERPNext REST by default (`../shared/reference/frappe-rest-api.md`).
//!
//! Reads the service catalog (cached with moka) and executes the validated writes the engine
//! requested, one document after another. Frappe has no idempotency keys (reference §7), so every
//! document is made safe to repeat: looked up first (by `find_by` fields or by our key in a unique
//! custom field), created only if missing, and looked up again after a conflict (409, or 417
//! `UniqueValidationError`) or before a retry, because a timed-out POST may have committed.
//!
//! With no `ERP_BASE_URL`, the client answers from a sandbox: the catalog from the fixture named in
//! `flows/erp.yaml`, and writes accepted locally with a reference derived from the idempotency key.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::flow::erp_actions::{
    CatalogDecl, LookupDecl, LookupSource, RenderedAction, fill_references, render, validate,
};
use crate::flow::graph::ChoiceOption;

/// ERP failures, each with a stable code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErpError {
    /// No answer in time.
    #[error(
        "erp.timeout: the ERP did not answer within {0} ms; the write will be retried (it is looked up first, so it cannot be made twice)"
    )]
    Timeout(u64),
    /// Could not connect.
    #[error("erp.transport: {0}; check ERP_BASE_URL and that the ERP is up")]
    Transport(String),
    /// The ERP answered with an error.
    #[error("erp.status: HTTP {status} {exc_type}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Frappe's `exc_type`, when present.
        exc_type: String,
        /// Frappe's decoded `_server_messages`, or the body's start.
        message: String,
    },
    /// A body failed its schema after the late placeholders were filled; nothing was sent.
    #[error("erp.invalid_body: {0}; fix the body template or its schema in flows/erp.yaml")]
    InvalidBody(String),
    /// The answer was not what Frappe sends.
    #[error("erp.bad_response: {0}")]
    BadResponse(String),
    /// A file the customer sent could not be fetched from WhatsApp for attaching.
    #[error("erp.attachment: {message}")]
    Attachment {
        /// What went wrong, with the channel's code.
        message: String,
        /// Whether fetching it again may work.
        retryable: bool,
    },
    /// The catalog fixture could not be read.
    #[error("erp.fixture: {0}; check the `fixture` path in flows/erp.yaml")]
    Fixture(String),
}

impl ErpError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ErpError::Timeout(_) => "erp.timeout",
            ErpError::Transport(_) => "erp.transport",
            ErpError::Status { .. } => "erp.status",
            ErpError::InvalidBody(_) => "erp.invalid_body",
            ErpError::BadResponse(_) => "erp.bad_response",
            ErpError::Fixture(_) => "erp.fixture",
            ErpError::Attachment { .. } => "erp.attachment",
        }
    }

    /// Whether trying again later may succeed: timeouts, transport errors, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            ErpError::Timeout(_) | ErpError::Transport(_) => true,
            ErpError::Status { status, .. } => *status == 429 || *status >= 500,
            ErpError::Attachment { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// Connection settings for a Frappe site.
#[derive(Debug, Clone)]
pub struct ErpSettings {
    /// Site URL, such as `https://erp.example.com`.
    pub base_url: String,
    /// API key of the integration user.
    pub api_key: String,
    /// API secret.
    pub api_secret: String,
    /// Time allowed per request.
    pub timeout: Duration,
}

/// The ERP client (or its sandbox).
pub struct ErpClient {
    http: reqwest::Client,
    settings: Option<ErpSettings>,
    catalog_cache: moka::future::Cache<String, Arc<Vec<ChoiceOption>>>,
    /// Answers of lookups with `cache_seconds`, with the time they were read.
    lookup_cache: moka::future::Cache<String, (std::time::Instant, Arc<Vec<ChoiceOption>>)>,
}

impl ErpClient {
    /// A client for `settings`, or the sandbox when `None`. `catalog_ttl` is how long the catalog is
    /// cached. Errors: the HTTP client could not be built.
    pub fn new(settings: Option<ErpSettings>, catalog_ttl: Duration) -> Result<Self, ErpError> {
        let timeout = settings.as_ref().map(|s| s.timeout).unwrap_or(Duration::from_secs(10));
        let http =
            reqwest::Client::builder().timeout(timeout).build().map_err(|e| ErpError::Transport(e.to_string()))?;
        Ok(ErpClient {
            http,
            settings,
            catalog_cache: moka::future::Cache::builder().max_capacity(16).time_to_live(catalog_ttl).build(),
            lookup_cache: moka::future::Cache::builder()
                .max_capacity(1024)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        })
    }

    /// Whether writes go to the local sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.settings.is_none()
    }

    /// The catalog as choice options, and where it came from (`erp`, `fixture`, `cache`).
    pub async fn catalog(
        &self,
        decl: &CatalogDecl,
        root: &Path,
    ) -> Result<(Vec<ChoiceOption>, &'static str), ErpError> {
        let key = decl.doctype.clone();
        if let Some(hit) = self.catalog_cache.get(&key).await {
            return Ok((hit.as_ref().clone(), "cache"));
        }
        let (rows, source) = match &self.settings {
            None => {
                let path = root.join(&decl.fixture);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ErpError::Fixture(format!("{}: {e}", path.display())))?;
                let v: Value =
                    serde_json::from_str(&text).map_err(|e| ErpError::Fixture(format!("{}: {e}", path.display())))?;
                let rows = v.get("data").cloned().unwrap_or(v);
                (rows, "fixture")
            }
            Some(s) => {
                let mut fields = vec![decl.id_field.clone(), decl.title_field.clone()];
                fields.extend(decl.price_field.clone());
                fields.extend(decl.description_field.clone());
                let mut url = resource_url(s, &decl.doctype, None)?;
                url.query_pairs_mut()
                    .append_pair("fields", &json!(fields).to_string())
                    .append_pair("filters", &Value::Array(decl.filters.clone()).to_string())
                    .append_pair("limit_page_length", "0");
                let v = self.send(s, self.http.get(url)).await?;
                (v.get("data").cloned().unwrap_or(Value::Null), "erp")
            }
        };
        let Value::Array(rows) = rows else {
            return Err(ErpError::BadResponse("the catalog is not a list".into()));
        };
        let items: Vec<ChoiceOption> = rows
            .iter()
            .filter_map(|r| {
                let id = r.get(&decl.id_field)?.as_str()?.to_string();
                let title = r.get(&decl.title_field).and_then(Value::as_str).unwrap_or(&id).to_string();
                let price = decl.price_field.as_ref().and_then(|f| r.get(f)).and_then(Value::as_f64);
                let description = decl
                    .description_field
                    .as_ref()
                    .and_then(|f| r.get(f))
                    .and_then(Value::as_str)
                    .map(|d| crate::text::truncate(d, 72));
                Some(ChoiceOption {
                    id,
                    title: crate::text::truncate(&title, crate::flow::MAX_ROW_TITLE),
                    description,
                    synonyms: vec![],
                    price,
                })
            })
            .collect();
        self.catalog_cache.insert(key, Arc::new(items.clone())).await;
        Ok((items, source))
    }

    /// Reads a lookup's rows as choice options: the customer's upcoming bookings, invoices due,
    /// offers. `context` fills the filters' placeholders (`customer_phone`, `wa_id`, `today`).
    /// A declaration with `cache_seconds` is answered from the last read with the same filters
    /// for that long; otherwise never cached (the answer changes as the customer books and pays).
    /// In the sandbox, the rows come from each source's fixture, filtered alike.
    ///
    /// Errors: the ERP's ([`ErpError`]), a missing or unreadable fixture ([`ErpError::Fixture`]),
    /// or a filter placeholder with no value ([`ErpError::InvalidBody`]).
    pub async fn lookup(
        &self,
        decl: &LookupDecl,
        context: &Map<String, Value>,
        root: &Path,
    ) -> Result<Vec<ChoiceOption>, ErpError> {
        Ok(self.lookup_shared(decl, context, root).await?.as_ref().clone())
    }

    /// [`ErpClient::lookup`], shared: a cached answer is handed out as it is kept (the same `Arc`
    /// until the cache reads the ERP again), not copied, so a caller can also tell an answer it
    /// has seen (`Arc::ptr_eq`). Errors: as [`ErpClient::lookup`].
    pub async fn lookup_shared(
        &self,
        decl: &LookupDecl,
        context: &Map<String, Value>,
        root: &Path,
    ) -> Result<Arc<Vec<ChoiceOption>>, ErpError> {
        let key = match decl.cache_seconds {
            0 => None,
            _ => Some(format!(
                "{}|{}",
                json!(decl.sources.iter().map(|s| &s.doctype).collect::<Vec<_>>()),
                json!(
                    decl.sources
                        .iter()
                        .map(|s| render(&Value::Array(s.filters.clone()), context, &[]).unwrap_or(Value::Null))
                        .collect::<Vec<_>>()
                )
            )),
        };
        if let Some(k) = &key {
            if let Some((at, hit)) = self.lookup_cache.get(k).await {
                if at.elapsed() < Duration::from_secs(decl.cache_seconds) {
                    return Ok(hit);
                }
            }
        }
        let options = Arc::new(self.lookup_uncached(decl, context, root).await?);
        if let Some(k) = key {
            self.lookup_cache.insert(k, (std::time::Instant::now(), options.clone())).await;
        }
        Ok(options)
    }

    async fn lookup_uncached(
        &self,
        decl: &LookupDecl,
        context: &Map<String, Value>,
        root: &Path,
    ) -> Result<Vec<ChoiceOption>, ErpError> {
        let mut options = Vec::new();
        for source in &decl.sources {
            let rows = self.rows(source, context, root).await?;
            options.extend(rows.iter().filter_map(|r| row_option(source, r)));
        }
        Ok(options)
    }

    /// The rows of one list read, as the ERP (or, in the sandbox, the source's fixture, filtered
    /// and ordered alike) answers them: JSON objects with the source's fields. `context` fills the
    /// filters' placeholders. Never cached.
    ///
    /// Errors: as [`ErpClient::lookup`].
    pub async fn rows(
        &self,
        source: &LookupSource,
        context: &Map<String, Value>,
        root: &Path,
    ) -> Result<Vec<Value>, ErpError> {
        let filters = render(&Value::Array(source.filters.clone()), context, &[]).map_err(ErpError::InvalidBody)?;
        let rows = match &self.settings {
            None => {
                let Some(fixture) = &source.fixture else { return Ok(vec![]) };
                let path = root.join(fixture);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ErpError::Fixture(format!("{}: {e}", path.display())))?;
                let v: Value =
                    serde_json::from_str(&text).map_err(|e| ErpError::Fixture(format!("{}: {e}", path.display())))?;
                let today = context.get("today").and_then(Value::as_str).unwrap_or_default();
                let mut rows: Vec<Value> = v
                    .get("data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| relative_dates(r, today))
                    .filter(|r| row_matches(r, &filters))
                    .collect();
                if let Some((field, desc)) = source.order_by.as_deref().and_then(parse_order) {
                    rows.sort_by(|a, b| compare(&a[field], &b[field]));
                    if desc {
                        rows.reverse();
                    }
                }
                rows.truncate(source.limit);
                rows
            }
            Some(s) => {
                let mut fields = source.fields.clone();
                if !fields.contains(&source.id_field) {
                    fields.push(source.id_field.clone());
                }
                let mut url = resource_url(s, &source.doctype, None)?;
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("fields", &json!(fields).to_string())
                        .append_pair("filters", &filters.to_string())
                        .append_pair("limit_page_length", &source.limit.to_string());
                    if let Some(o) = &source.order_by {
                        q.append_pair("order_by", o);
                    }
                }
                let v = self.send(s, self.http.get(url)).await?;
                v.get("data").and_then(Value::as_array).cloned().unwrap_or_default()
            }
        };
        Ok(rows)
    }

    /// Executes a rendered action and returns the reference (the `name` of its reference
    /// document). Safe to call again after any failure: see the module docs.
    pub async fn execute(&self, action: &RenderedAction) -> Result<String, ErpError> {
        self.execute_with_files(action, &[]).await
    }

    /// [`ErpClient::execute`], then uploads `files[i]` (bytes) as `action.attachments[i]`,
    /// attached to its document. An upload is looked up first by its file name (derived from the
    /// idempotency key), so a repeated action does not attach the file twice.
    pub async fn execute_with_files(&self, action: &RenderedAction, files: &[Vec<u8>]) -> Result<String, ErpError> {
        let Some(s) = &self.settings else {
            // An update's reference is the document it updated.
            if let Some(name) =
                action.documents.iter().find(|d| d.alias == action.reference).and_then(|d| d.update.clone())
            {
                return Ok(name);
            }
            let digest = hex::encode(Sha256::digest(action.idempotency_key.as_bytes()));
            return Ok(format!("SANDBOX-{}", digest[..8].to_uppercase()));
        };
        let mut names: Map<String, Value> = Map::new();
        for doc in &action.documents {
            if doc.find_only {
                // Looked up, never written: a later `${alias.name?}` is null when none matches.
                let f = doc.find_by.clone().unwrap_or_default();
                let f = fill_references(&Value::Object(f), &names).map_err(ErpError::InvalidBody)?;
                let filters: Vec<Value> =
                    f.as_object().map(|m| m.iter().map(|(k, v)| json!([k, "=", v])).collect()).unwrap_or_default();
                let found = self.find(s, &doc.doctype, &filters).await?;
                names.insert(doc.alias.clone(), json!({ "name": found }));
                continue;
            }
            // The body was rendered once, by the engine; only references to the documents
            // written before this one are filled in now.
            let body = fill_references(&doc.body, &names).map_err(ErpError::InvalidBody)?;
            let errors = validate(&doc.schema, &body);
            if !errors.is_empty() {
                let text =
                    errors.iter().map(|(at, m)| format!("{} {at}: {m}", doc.alias)).collect::<Vec<_>>().join("; ");
                return Err(ErpError::InvalidBody(text));
            }
            let filters: Vec<Value> = match (&doc.find_by, &doc.idempotency_field) {
                (Some(f), _) => {
                    let f = fill_references(&Value::Object(f.clone()), &names).map_err(ErpError::InvalidBody)?;
                    f.as_object().map(|m| m.iter().map(|(k, v)| json!([k, "=", v])).collect()).unwrap_or_default()
                }
                (None, Some(field)) => vec![json!([field, "=", action.idempotency_key])],
                (None, None) => vec![],
            };
            if let Some(target) = &doc.update {
                // An update: PUT sets the same fields to the same values when repeated.
                let name = target.clone();
                let url = resource_url(s, &doc.doctype, Some(&name))?;
                self.send(s, self.http.put(url).json(&body)).await?;
                names.insert(doc.alias.clone(), json!({ "name": name }));
                continue;
            }
            let name = match self.find(s, &doc.doctype, &filters).await? {
                Some(existing) => existing,
                None => match self.create(s, &doc.doctype, &body).await {
                    Ok(name) => name,
                    Err(ErpError::Status { status, exc_type, message })
                        if status == 409 || (status == 417 && exc_type.contains("UniqueValidation")) =>
                    {
                        // Someone (an earlier attempt of ours) created it meanwhile: read it back.
                        self.find(s, &doc.doctype, &filters).await?.ok_or(ErpError::Status {
                            status,
                            exc_type,
                            message,
                        })?
                    }
                    Err(e) => return Err(e),
                },
            };
            names.insert(doc.alias.clone(), json!({ "name": name }));
        }
        for (attachment, bytes) in action.attachments.iter().zip(files) {
            let target = fill_references(&attachment.name, &names).map_err(ErpError::InvalidBody)?;
            let target = target.as_str().map(String::from).unwrap_or_else(|| target.to_string());
            let filters = vec![
                json!(["attached_to_doctype", "=", attachment.doctype]),
                json!(["attached_to_name", "=", target]),
                json!(["file_name", "=", attachment.file_name]),
            ];
            if self.find(s, "File", &filters).await?.is_some() {
                continue;
            }
            let mut url = reqwest::Url::parse(&s.base_url)
                .map_err(|e| ErpError::Transport(format!("ERP_BASE_URL {:?}: {e}", s.base_url)))?;
            url.set_path(&format!("{}/api/method/upload_file", url.path().trim_end_matches('/')));
            let part = reqwest::multipart::Part::bytes(bytes.clone())
                .file_name(attachment.file_name.clone())
                .mime_str(&attachment.mime_type)
                .map_err(|e| ErpError::InvalidBody(format!("attachment MIME type: {e}")))?;
            let form = reqwest::multipart::Form::new()
                .part("file", part)
                .text("doctype", attachment.doctype.clone())
                .text("docname", target)
                .text("file_name", attachment.file_name.clone())
                .text("is_private", "1");
            self.send(s, self.http.post(url).multipart(form)).await?;
        }
        names
            .get(&action.reference)
            .and_then(|v| v.get("name"))
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| ErpError::BadResponse(format!("no document {:?} was written", action.reference)))
    }

    async fn find(&self, s: &ErpSettings, doctype: &str, filters: &[Value]) -> Result<Option<String>, ErpError> {
        if filters.is_empty() {
            return Ok(None);
        }
        let mut url = resource_url(s, doctype, None)?;
        url.query_pairs_mut()
            .append_pair("fields", "[\"name\"]")
            .append_pair("filters", &Value::Array(filters.to_vec()).to_string())
            .append_pair("limit_page_length", "1");
        let v = self.send(s, self.http.get(url)).await?;
        Ok(v.pointer("/data/0/name").and_then(Value::as_str).map(String::from))
    }

    async fn create(&self, s: &ErpSettings, doctype: &str, body: &Value) -> Result<String, ErpError> {
        let url = resource_url(s, doctype, None)?;
        let v = self.send(s, self.http.post(url).json(body)).await?;
        v.pointer("/data/name")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| ErpError::BadResponse("POST answered without data.name".into()))
    }

    async fn send(&self, s: &ErpSettings, req: reqwest::RequestBuilder) -> Result<Value, ErpError> {
        let resp = req
            .header("Authorization", format!("token {}:{}", s.api_key, s.api_secret))
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ErpError::Timeout(s.timeout.as_millis() as u64)
                } else {
                    ErpError::Transport(e.to_string())
                }
            })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| {
            if e.is_timeout() {
                ErpError::Timeout(s.timeout.as_millis() as u64)
            } else {
                ErpError::Transport(e.to_string())
            }
        })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        // Success is decided by the HTTP status, not by a stray exc_type (reference §4).
        if status.is_success() {
            return Ok(value);
        }
        Err(ErpError::Status {
            status: status.as_u16(),
            exc_type: value.get("exc_type").and_then(Value::as_str).unwrap_or_default().to_string(),
            message: server_messages(&value).unwrap_or_else(|| text.chars().take(200).collect()),
        })
    }
}

/// One row as a choice option: its id field, and its title and description templates filled.
fn row_option(source: &LookupSource, row: &Value) -> Option<ChoiceOption> {
    let id = match row.as_object()?.get(&source.id_field)? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut fields = row.as_object()?.clone();
    for (field, labels) in &source.labels {
        if let Some(label) = fields.get(field).and_then(Value::as_str).and_then(|v| labels.get(v)) {
            fields.insert(field.clone(), Value::String(label.clone()));
        }
    }
    let fields = &fields;
    let fill = |template: &str| -> String {
        render(&Value::String(template.to_string()), fields, &[])
            .ok()
            .and_then(|v| v.as_str().map(String::from).or_else(|| Some(v.to_string())))
            .unwrap_or_default()
    };
    let title = fill(&source.title);
    let description = source.description.as_deref().map(fill).filter(|d| !d.is_empty());
    let price = source.amount_field.as_ref().and_then(|f| fields.get(f)).and_then(Value::as_f64);
    Some(ChoiceOption {
        title: crate::text::truncate(if title.is_empty() { &id } else { &title }, crate::flow::MAX_ROW_TITLE),
        id,
        description: description.map(|d| crate::text::truncate(&d, 72)),
        synonyms: source.synonyms.iter().map(|t| fill(t)).filter(|w| w.chars().count() >= 3).collect(),
        price,
    })
}

/// Replaces `@today+N` / `@today-N` / `@today` strings of a fixture row by dates from `today`.
fn relative_dates(row: Value, today: &str) -> Value {
    let Ok(base) = today.parse::<jiff::civil::Date>() else { return row };
    match row {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, relative_dates(v, today))).collect()),
        Value::String(s) if s.starts_with("@today") => {
            let rest = &s["@today".len()..];
            let (days, tail) = match rest.find(|c: char| !(c.is_ascii_digit() || c == '+' || c == '-')) {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let n: i64 = if days.is_empty() { 0 } else { days.trim_start_matches('+').parse().unwrap_or(0) };
            match base.checked_add(jiff::Span::new().days(n)) {
                Ok(d) => Value::String(format!("{d}{tail}")),
                Err(_) => Value::String(s),
            }
        }
        other => other,
    }
}

/// `"field asc"` → (field, descending?).
fn parse_order(order: &str) -> Option<(&str, bool)> {
    let mut it = order.split_whitespace();
    let field = it.next()?;
    Some((field, it.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"))))
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.as_str().unwrap_or_default().cmp(b.as_str().unwrap_or_default()),
    }
}

/// Whether a row passes Frappe list filters `[[field, op, value], …]` (the sandbox's reading of
/// them: `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`; dates compare as ISO text).
pub fn row_matches(row: &Value, filters: &Value) -> bool {
    filters.as_array().into_iter().flatten().all(|f| {
        let (field, op, want) = (f[0].as_str().unwrap_or_default(), f[1].as_str().unwrap_or("="), &f[2]);
        let have = &row[field];
        let ord = compare(have, want);
        let same = have == want || compare(have, want).is_eq() && (have.is_string() == want.is_string());
        match op {
            "=" => same,
            "!=" => !same,
            "<" => ord.is_lt(),
            "<=" => ord.is_le(),
            ">" => ord.is_gt(),
            ">=" => ord.is_ge(),
            "in" => want.as_array().is_some_and(|a| a.contains(have)),
            "not in" => want.as_array().is_some_and(|a| !a.contains(have)),
            _ => false,
        }
    })
}

fn resource_url(s: &ErpSettings, doctype: &str, name: Option<&str>) -> Result<reqwest::Url, ErpError> {
    let mut url = reqwest::Url::parse(&s.base_url)
        .map_err(|e| ErpError::Transport(format!("ERP_BASE_URL {:?}: {e}", s.base_url)))?;
    {
        let mut segs =
            url.path_segments_mut().map_err(|_| ErpError::Transport("ERP_BASE_URL cannot be a base".into()))?;
        segs.pop_if_empty().push("api").push("resource").push(doctype);
        if let Some(n) = name {
            segs.push(n);
        }
    }
    Ok(url)
}

/// Decodes Frappe's `_server_messages`: a JSON string of a list of JSON strings, each an object
/// with `message` (reference §4). HTML tags are stripped.
pub fn server_messages(body: &Value) -> Option<String> {
    let outer: Vec<String> = serde_json::from_str(body.get("_server_messages")?.as_str()?).ok()?;
    let messages: Vec<String> = outer
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter_map(|m| m.get("message").and_then(Value::as_str).map(strip_tags))
        .collect();
    (!messages.is_empty()).then(|| messages.join(" | "))
}

/// `s` without its HTML tags (Frappe's messages and text fields carry some).
pub fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_double_encoded_server_messages() {
        let body = json!({"exc_type": "MandatoryError", "_server_messages": "[\"{\\\"message\\\": \\\"Error: Value missing for <strong>Issue</strong>: Subject\\\"}\"]"});
        assert_eq!(server_messages(&body).unwrap(), "Error: Value missing for Issue: Subject");
    }

    #[test]
    fn doctype_with_space_is_one_encoded_segment() {
        let s = ErpSettings {
            base_url: "http://127.0.0.1:9/".into(),
            api_key: "k".into(),
            api_secret: "s".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(resource_url(&s, "Sales Order", None).unwrap().path(), "/api/resource/Sales%20Order");
    }
}
