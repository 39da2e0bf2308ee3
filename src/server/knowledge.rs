//! The knowledge base's admin API (permission `knowledge`; reads `read`). Every change is in the
//! audit trail and bumps the base's revision, which every instance picks up on its next enquiry.
//!
//! - `GET /admin/knowledge`: every item and the revision.
//! - `POST /admin/knowledge`: a new entry, [`EntryInput`] as JSON; 201 with the item.
//! - `GET /admin/knowledge/{id}`: one item and its history (each change, who, when).
//! - `PUT /admin/knowledge/{id}`: rewrites an entry ([`EntryInput`]); a document's title,
//!   keywords and category.
//! - `DELETE /admin/knowledge/{id}`.
//! - `POST /admin/knowledge/documents?name=prices.md&title=Price%20list[&id=…]`: the document's
//!   bytes as the body (plain text, Markdown or PDF, at most 5 MiB), its type from `name` or
//!   `Content-Type`; with `id`, replaces that document's text.
//! - `GET /admin/knowledge/search?q=…`: how a question ranks: every passage sharing a word, with
//!   its score and whether it would be answered (see [`crate::knowledge::MIN_SCORE`]).
//! - `GET /admin/knowledge/flags`: the open flagged questions, grouped by similarity, largest
//!   group first ([`crate::knowledge::review`]).
//! - `POST /admin/knowledge/flags/resolve`: [`Resolve`]: a group's flags answered by linking an
//!   existing item (their wordings join its questions) or by a new entry; the same questions
//!   are answered from it on their next asking.
//!
//! Errors: 400 `knowledge.invalid`, 404 `knowledge.not_found`, 409 `knowledge.duplicate_title`,
//! 413 `knowledge.too_large`, 415 `knowledge.unsupported_type`, 422 `knowledge.no_text`, 503
//! `knowledge.store`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, Permission};
use super::problem;
use crate::knowledge::upload::{MAX_UPLOAD_BYTES, read_document};
use crate::knowledge::{Item, ItemKind, KnowledgeError};
use crate::pipeline::App;

/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// The longest answer, in characters: WhatsApp's limit for a text message's body (Cloud API
/// reference, "Text messages": 4,096 characters).
pub const MAX_ANSWER_CHARS: usize = 4_096;

/// Registers the routes (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/knowledge", web::get().to(list))
        .route("/knowledge", web::post().to(create))
        .route("/knowledge/search", web::get().to(search))
        .route("/knowledge/flags", web::get().to(flags))
        .route("/knowledge/flags/resolve", web::post().to(resolve))
        .service(
            web::resource("/knowledge/documents")
                // Twice the limit, so that a file somewhat over it gets the typed answer below
                // rather than the framework's.
                .app_data(web::PayloadConfig::new(2 * MAX_UPLOAD_BYTES))
                .route(web::post().to(upload)),
        )
        .route("/knowledge/{id}", web::get().to(show))
        .route("/knowledge/{id}", web::put().to(update))
        .route("/knowledge/{id}", web::delete().to(remove));
}

/// An entry as written in the console or sent to the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Stable id (`[a-z0-9_-]`, at most 64); made from the title when not given.
    #[serde(default)]
    pub id: Option<String>,
    /// Title (at most [`MAX_TITLE_CHARS`]).
    pub title: String,
    /// The question, in a customer's words.
    #[serde(default)]
    pub question: Option<String>,
    /// The answer (at most [`MAX_ANSWER_CHARS`]); not given for a document.
    #[serde(default)]
    pub answer: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Other wordings of the question.
    #[serde(default)]
    pub also_asked: Vec<String>,
    /// Category.
    #[serde(default)]
    pub category: Option<String>,
}

/// The HTTP answer for a knowledge error.
pub fn error_response(e: &KnowledgeError) -> HttpResponse {
    let status = match e {
        KnowledgeError::Invalid(_) => StatusCode::BAD_REQUEST,
        KnowledgeError::NotFound(_) => StatusCode::NOT_FOUND,
        KnowledgeError::DuplicateTitle(_) => StatusCode::CONFLICT,
        KnowledgeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        KnowledgeError::Unsupported { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        KnowledgeError::NoText { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        KnowledgeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    problem(status, e.code(), &e.to_string())
}

/// An id made from a title: lowercase letters and digits, other runs as `_`, at most 64.
pub fn id_from_title(title: &str) -> String {
    let mut id = String::new();
    for c in crate::text::fold(title).chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if !id.is_empty() && !id.ends_with('_') {
            id.push('_');
        }
    }
    let id: String = id.trim_end_matches('_').chars().take(64).collect();
    if id.is_empty() { format!("item_{}", uuid::Uuid::now_v7().simple()) } else { id }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks `input` and makes the entry it describes. Errors: [`KnowledgeError::Invalid`].
pub fn entry_from(input: EntryInput, id: Option<&str>) -> Result<Item, KnowledgeError> {
    let invalid = |m: &str| Err(KnowledgeError::Invalid(m.to_string()));
    let title = input.title.trim().to_string();
    let answer = input.answer.as_deref().map(str::trim).unwrap_or_default().to_string();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return invalid(&format!("give a title of 1 to {MAX_TITLE_CHARS} characters"));
    }
    if answer.is_empty() || answer.chars().count() > MAX_ANSWER_CHARS {
        return invalid(&format!("give an answer of 1 to {MAX_ANSWER_CHARS} characters (a WhatsApp message's limit)"));
    }
    let id = id.map(String::from).or(input.id).unwrap_or_else(|| id_from_title(&title));
    if !valid_id(&id) {
        return invalid("an id is 1 to 64 of a-z, 0-9, _ and -");
    }
    let clean = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    Ok(Item {
        id,
        kind: ItemKind::Entry,
        title,
        question: input.question.map(|q| q.trim().to_string()).filter(|q| !q.is_empty()),
        also_asked: clean(input.also_asked),
        answer,
        keywords: clean(input.keywords),
        category: input.category.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
        source: None,
        revision: 0,
    })
}

async fn list(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match app.store.knowledge_items(&p.tenant.id).await {
        Ok((revision, items)) => HttpResponse::Ok().json(json!({"revision": revision, "items": items})),
        Err(e) => error_response(&e.into()),
    }
}

async fn show(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let item = match app.store.knowledge_item(&p.tenant.id, &id).await {
        Ok(Some(item)) => item,
        Ok(None) => return error_response(&KnowledgeError::NotFound(id.into_inner())),
        Err(e) => return error_response(&e.into()),
    };
    match app.store.knowledge_history(&p.tenant.id, &id).await {
        Ok(history) => HttpResponse::Ok().json(json!({"item": item, "history": history})),
        Err(e) => error_response(&e.into()),
    }
}

async fn create(app: web::Data<App>, req: HttpRequest, body: web::Json<EntryInput>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    answer(add_entry(&app, &p, body.into_inner()).await, StatusCode::CREATED)
}

/// Stores a new entry by `p`, in the audit trail. Errors: see [`entry_from`] and
/// [`crate::store::Store::save_knowledge_item`].
pub async fn add_entry(app: &App, p: &auth::Principal, input: EntryInput) -> Result<Item, KnowledgeError> {
    let saved = match entry_from(input, None) {
        Ok(item) => app.store.save_knowledge_item(&p.tenant.id, item, &p.name(), true).await,
        Err(e) => Err(e),
    };
    audited(app, p, "knowledge.create", saved).await
}

async fn update(
    app: web::Data<App>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<EntryInput>,
) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let current = match app.store.knowledge_item(&p.tenant.id, &id).await {
        Ok(Some(item)) => item,
        Ok(None) => return error_response(&KnowledgeError::NotFound(id.into_inner())),
        Err(e) => return error_response(&e.into()),
    };
    let input = body.into_inner();
    let item = match current.kind {
        ItemKind::Entry => entry_from(input, Some(&current.id)),
        // A document's text changes by uploading it again; its title and keywords here.
        ItemKind::Document => {
            let answer = Some(current.answer.clone());
            entry_from(EntryInput { answer, ..input }, Some(&current.id)).map(|i| Item {
                kind: ItemKind::Document,
                question: None,
                source: current.source.clone(),
                ..i
            })
        }
    };
    let saved = match item {
        Ok(item) => app.store.save_knowledge_item(&p.tenant.id, item, &p.name(), false).await,
        Err(e) => Err(e),
    };
    answer(audited(&app, &p, "knowledge.update", saved).await, StatusCode::OK)
}

async fn remove(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match app.store.delete_knowledge_item(&p.tenant.id, &id, &p.name()).await {
        Ok(true) => {
            auth::record(&app, &p, "knowledge.delete", &id, "ok", json!({})).await;
            HttpResponse::NoContent().finish()
        }
        Ok(false) => error_response(&KnowledgeError::NotFound(id.into_inner())),
        Err(e) => error_response(&e.into()),
    }
}

/// The query of an upload.
#[derive(Debug, Deserialize)]
struct UploadQuery {
    /// The file's name (its extension gives the type).
    name: String,
    /// The title; the name without its extension when not given.
    #[serde(default)]
    title: Option<String>,
    /// The document to replace.
    #[serde(default)]
    id: Option<String>,
}

async fn upload(app: web::Data<App>, req: HttpRequest, q: web::Query<UploadQuery>, body: web::Bytes) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let media_type = req.headers().get("Content-Type").and_then(|v| v.to_str().ok());
    let q = q.into_inner();
    let status = if q.id.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    answer(add_document(&app, &p, &q.name, q.title, media_type, &body, q.id).await, status)
}

/// Reads an upload named `name` into a document titled `title` (the name without its extension
/// when not given), new or replacing the document `replace`; by `p`, in the audit trail.
/// Errors: see [`read_document`] and [`crate::store::Store::save_knowledge_item`].
pub async fn add_document(
    app: &App,
    p: &auth::Principal,
    name: &str,
    title: Option<String>,
    media_type: Option<&str>,
    bytes: &[u8],
    replace: Option<String>,
) -> Result<Item, KnowledgeError> {
    let text = match read_document(name, media_type, bytes) {
        Ok(t) => t,
        Err(e) => {
            auth::record(app, p, "knowledge.upload", name, "refused", json!({"code": e.code()})).await;
            return Err(e);
        }
    };
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let title = title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| stem.to_string());
    let item = Item {
        id: replace.clone().unwrap_or_else(|| format!("doc_{}", id_from_title(&title))),
        kind: ItemKind::Document,
        title: title.trim().to_string(),
        question: None,
        also_asked: vec![],
        answer: text,
        keywords: vec![],
        category: None,
        source: Some(name.to_string()),
        revision: 0,
    };
    let saved = match &replace {
        Some(id) => match app.store.knowledge_item(&p.tenant.id, id).await {
            Ok(Some(old)) if old.kind == ItemKind::Document => {
                let item = Item { keywords: old.keywords, category: old.category, also_asked: old.also_asked, ..item };
                app.store.save_knowledge_item(&p.tenant.id, item, &p.name(), false).await
            }
            Ok(_) => Err(KnowledgeError::NotFound(id.clone())),
            Err(e) => Err(e.into()),
        },
        None => app.store.save_knowledge_item(&p.tenant.id, item, &p.name(), true).await,
    };
    audited(app, p, "knowledge.upload", saved).await
}

/// Records a change that was made in the audit trail, and passes it on.
async fn audited(
    app: &App,
    p: &auth::Principal,
    action: &str,
    saved: Result<Item, KnowledgeError>,
) -> Result<Item, KnowledgeError> {
    if let Ok(item) = &saved {
        auth::record(app, p, action, &item.id, "ok", json!({"revision": item.revision, "title": item.title})).await;
    }
    saved
}

/// The HTTP answer for a change: the item and how many passages it has, or the error.
fn answer(saved: Result<Item, KnowledgeError>, status: StatusCode) -> HttpResponse {
    match saved {
        Ok(item) => {
            let passages =
                if item.kind == ItemKind::Document { crate::knowledge::split::split(&item.answer).len() } else { 1 };
            HttpResponse::build(status).json(json!({"item": item, "passages": passages}))
        }
        Err(e) => error_response(&e),
    }
}

/// The query of a search.
#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: String,
}

async fn search(app: web::Data<App>, req: HttpRequest, q: web::Query<SearchQuery>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let flows = p.tenant.flows();
    let catalog = p.tenant.erp.catalog(&flows.catalog, &flows.root).await.map(|c| c.0).unwrap_or_default();
    let shelf = match p.tenant.guards.knowledge.shelf(&flows.knowledge, &catalog).await {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let answered: Vec<String> = shelf.find(&q.q).into_iter().map(|f| f.passage.id.clone()).collect();
    let ranked: Vec<serde_json::Value> = shelf
        .ranked(&q.q)
        .into_iter()
        .take(20)
        .map(|f| {
            json!({"id": f.passage.id, "title": f.passage.title, "score": f.score, "text": f.passage.text,
                   "answered": answered.contains(&f.passage.id)})
        })
        .collect();
    HttpResponse::Ok()
        .json(json!({"revision": shelf.revision, "min_score": crate::knowledge::MIN_SCORE, "passages": ranked}))
}

/// The most open flags read for review.
pub const MAX_OPEN_FLAGS: i64 = 1_000;

async fn flags(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match app.store.open_flags(&p.tenant.id, MAX_OPEN_FLAGS).await {
        Ok(rows) => {
            let flags: Vec<(i64, String, String)> =
                rows.iter().map(|r| (r.id, r.question.clone(), r.reason.clone())).collect();
            HttpResponse::Ok().json(json!({"open": rows.len(), "groups": crate::knowledge::review::group(&flags)}))
        }
        Err(e) => error_response(&e.into()),
    }
}

/// How a group of flagged questions is answered: exactly one of `link` and `entry`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// The flags (a group's `flags`).
    pub flags: Vec<i64>,
    /// An existing item that answers them: their wordings are added to its questions.
    #[serde(default)]
    pub link: Option<String>,
    /// A new entry that answers them (its question defaults to the first flag's).
    #[serde(default)]
    pub entry: Option<EntryInput>,
}

async fn resolve(app: web::Data<App>, req: HttpRequest, body: web::Json<Resolve>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match resolve_group(&app, &p, body.into_inner()).await {
        Ok((item, resolved)) => HttpResponse::Ok().json(json!({"item": item, "resolved": resolved})),
        Err(e) => error_response(&e),
    }
}

/// Answers a group of flagged questions as `r` says, by `p` (in the audit trail); returns the item
/// that now answers them and how many flags were resolved. Errors: no flag named, both or
/// neither of `link` and `entry`, an unknown item, or a store failure.
pub async fn resolve_group(app: &App, p: &auth::Principal, r: Resolve) -> Result<(Item, usize), KnowledgeError> {
    let Resolve { flags, link, entry } = r;
    let rows = app.store.flags(&p.tenant.id, &flags).await?;
    if rows.is_empty() {
        return Err(KnowledgeError::Invalid("name at least one flagged question".into()));
    }
    let same = |a: &str, b: &str| crate::text::fold(a) == crate::text::fold(b);
    let mut wordings: Vec<String> = Vec::new();
    for r in &rows {
        let q = r.question.trim().to_string();
        if !q.is_empty() && !wordings.iter().any(|w| same(w, &q)) {
            wordings.push(q);
        }
    }
    let item = match (link, entry) {
        (Some(id), None) => {
            let Some(mut item) = app.store.knowledge_item(&p.tenant.id, &id).await? else {
                return Err(KnowledgeError::NotFound(id));
            };
            for w in wordings {
                if !item.question.iter().chain(item.also_asked.iter()).any(|q| same(q, &w)) {
                    item.also_asked.push(w);
                }
            }
            audited(
                app,
                p,
                "knowledge.update",
                app.store.save_knowledge_item(&p.tenant.id, item, &p.name(), false).await,
            )
            .await?
        }
        (None, Some(mut input)) => {
            if input.question.as_deref().is_none_or(|q| q.trim().is_empty()) {
                input.question = wordings.first().cloned();
            }
            let question = input.question.clone().unwrap_or_default();
            input.also_asked.extend(wordings.into_iter().filter(|w| !same(w, &question)));
            add_entry(app, p, input).await?
        }
        _ => {
            return Err(KnowledgeError::Invalid(
                "give exactly one of `link` (an item's id) and `entry` (a new entry)".into(),
            ));
        }
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let resolved = app.store.resolve_flags(&p.tenant.id, &ids, &p.name(), &item.id).await?;
    auth::record(app, p, "knowledge.resolve", &item.id, "ok", json!({"flags": ids, "revision": item.revision})).await;
    Ok((item, resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_made_from_titles_and_entries_checked() {
        assert_eq!(id_from_title("Opening hours & days!"), "opening_hours_days");
        assert!(id_from_title("!!!").starts_with("item_"));
        let input = |title: &str, answer: Option<&str>| EntryInput {
            id: None,
            title: title.into(),
            question: Some("  ".into()),
            answer: answer.map(String::from),
            keywords: vec![" parking ".into(), "".into()],
            also_asked: vec![],
            category: None,
        };
        let item = entry_from(input("Parking", Some("We park anywhere.")), None).unwrap();
        assert_eq!(
            (item.id.as_str(), item.keywords.as_slice(), item.question),
            ("parking", &["parking".to_string()][..], None)
        );
        assert_eq!(entry_from(input("", Some("x")), None).unwrap_err().code(), "knowledge.invalid");
        assert_eq!(entry_from(input("T", None), None).unwrap_err().code(), "knowledge.invalid");
        let long = "x".repeat(MAX_ANSWER_CHARS + 1);
        assert_eq!(entry_from(input("T", Some(&long)), None).unwrap_err().code(), "knowledge.invalid");
        let bad_id = EntryInput { id: Some("Bad Id".into()), ..input("T", Some("a")) };
        assert_eq!(entry_from(bad_id, None).unwrap_err().code(), "knowledge.invalid");
    }
}
