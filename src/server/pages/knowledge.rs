//! The knowledge base's pages: every item with a form to add an entry or a document (its text
//! pasted; files, PDF included, go through `POST /admin/knowledge/documents`), a question tried
//! against the ranking, one item's edit form and history, and the review of flagged questions
//! (each group answered by linking an item or writing a new entry). Reading needs `read`;
//! changing needs `knowledge`. Changes go through the same functions as the admin API, so they
//! are checked and audited alike.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::layout::{esc, page, url_part};
use super::{html, see_other, viewer};
use crate::knowledge::{ItemKind, KnowledgeError};
use crate::pipeline::App;
use crate::server::auth::{Permission, Principal};
use crate::server::knowledge::{EntryInput, Resolve, add_document, add_entry, entry_from, resolve_group};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/knowledge", web::get().to(index))
        .route("/console/knowledge/entries", web::post().to(create))
        .route("/console/knowledge/documents", web::post().to(document))
        .route("/console/knowledge/review", web::get().to(review))
        .route("/console/knowledge/review", web::post().to(resolve))
        .route("/console/knowledge/item/{id}", web::get().to(item))
        .route("/console/knowledge/item/{id}", web::post().to(update))
        .route("/console/knowledge/item/{id}/delete", web::post().to(delete));
}

#[derive(Deserialize)]
struct IndexQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

/// The fields of an entry's form; keywords comma-separated.
#[derive(Deserialize)]
struct EntryForm {
    title: String,
    #[serde(default)]
    question: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    keywords: String,
    #[serde(default)]
    category: String,
}

impl EntryForm {
    fn input(self) -> EntryInput {
        let opt = |s: String| Some(s).filter(|s| !s.trim().is_empty());
        EntryInput {
            id: None,
            title: self.title,
            question: opt(self.question),
            answer: opt(self.answer),
            keywords: self.keywords.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect(),
            also_asked: vec![],
            category: opt(self.category),
        }
    }
}

fn entry_fields(prefix: &str, title: &str, question: &str, answer: &str, keywords: &str, category: &str) -> String {
    format!(
        r#"<label for="{prefix}title">Title<input id="{prefix}title" name="title" required maxlength="100" value="{}"></label>
<label for="{prefix}question">Question, in a customer's words<input id="{prefix}question" name="question" value="{}"></label>
<label for="{prefix}answer">Answer, as the bot says it<textarea id="{prefix}answer" name="answer" required rows="4">{}</textarea></label>
<label for="{prefix}keywords">Keywords, separated by commas<input id="{prefix}keywords" name="keywords" value="{}"></label>
<label for="{prefix}category">Category<input id="{prefix}category" name="category" value="{}"></label>"#,
        esc(title),
        esc(question),
        esc(answer),
        esc(keywords),
        esc(category)
    )
}

fn not_saved(p: &Principal, back: &str, e: &KnowledgeError) -> HttpResponse {
    let status = crate::server::knowledge::error_response(e).status();
    let body = format!(
        r#"<p role="alert" class="alert">Not saved: {} <small>({})</small></p><p><a href="{}">Back</a></p>"#,
        esc(&e.to_string()),
        e.code(),
        esc(back)
    );
    html(status, page("Not saved", Some(p), "/console/knowledge", &body))
}

async fn index(app: web::Data<App>, req: HttpRequest, q: web::Query<IndexQuery>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let mut body = String::new();
    if let Some(id) = q.saved.as_deref().filter(|s| !s.is_empty()) {
        body.push_str(&format!(
            r#"<p role="status">Saved <a href="/console/knowledge/item/{}">{}</a>.</p>"#,
            url_part(id),
            esc(id)
        ));
    }
    let open = app
        .store
        .open_flags(&p.tenant.id, crate::server::knowledge::MAX_OPEN_FLAGS)
        .await
        .map(|f| f.len())
        .unwrap_or(0);
    body.push_str(&format!(r#"<p><a href="/console/knowledge/review">Flagged questions to review: {open}</a></p>"#));
    let question = q.q.clone().unwrap_or_default();
    body.push_str(&format!(
        r#"<form class="filters" method="get" action="/console/knowledge" aria-label="Try a question">
<label for="q">Try a question<input id="q" name="q" value="{}"></label><button type="submit">Rank</button></form>"#,
        esc(&question)
    ));
    if !question.trim().is_empty() {
        let flows = p.tenant.flows();
        let catalog = p.tenant.erp.catalog(&flows.catalog, &flows.root).await.map(|c| c.0).unwrap_or_default();
        match p.tenant.guards.knowledge.shelf(&flows.knowledge, &catalog).await {
            Ok(shelf) => {
                let answered: Vec<String> = shelf.find(&question).iter().map(|f| f.passage.id.clone()).collect();
                let rows: String = shelf
                    .ranked(&question)
                    .iter()
                    .take(10)
                    .map(|f| {
                        format!(
                            r#"<tr><td>{}</td><td class="n">{:.2}</td><td>{}</td><td>{}</td></tr>"#,
                            esc(&f.passage.title),
                            f.score,
                            if answered.contains(&f.passage.id) { "yes" } else { "no" },
                            esc(&f.passage.text)
                        )
                    })
                    .collect();
                body.push_str(&format!(
                    r#"<table><caption>How "{}" ranks (answered at a score of {} or more, near the best)</caption>
<thead><tr><th scope="col">Passage</th><th scope="col" class="n">Score</th><th scope="col">Answered</th><th scope="col">Text</th></tr></thead><tbody>{rows}</tbody></table>"#,
                    esc(&question),
                    crate::knowledge::MIN_SCORE
                ));
            }
            Err(e) => body.push_str(&format!(r#"<p role="alert" class="alert">{}</p>"#, esc(&e.to_string()))),
        }
    }
    match app.store.knowledge_items(&p.tenant.id).await {
        Ok((revision, items)) => {
            let rows: String = items
                .iter()
                .map(|i| {
                    format!(
                        r#"<tr><td><a href="/console/knowledge/item/{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td></tr>"#,
                        url_part(&i.id),
                        esc(&i.title),
                        i.kind.as_str(),
                        esc(i.category.as_deref().unwrap_or("—")),
                        esc(i.source.as_deref().unwrap_or("console")),
                        i.revision
                    )
                })
                .collect();
            body.push_str(&format!(
                r#"<h2>Items</h2><table><caption>The knowledge base at revision {revision}</caption>
<thead><tr><th scope="col">Title</th><th scope="col">Kind</th><th scope="col">Category</th><th scope="col">Source</th><th scope="col" class="n">Revision</th></tr></thead><tbody>{rows}</tbody></table>"#
            ));
        }
        Err(e) => body.push_str(&format!(r#"<p role="alert" class="alert">{}</p>"#, esc(&e.to_string()))),
    }
    if p.allows(Permission::Knowledge) {
        body.push_str(&format!(
            r#"<h2>Add an entry</h2><form class="stack wide" method="post" action="/console/knowledge/entries">{}<button type="submit">Add the entry</button></form>
<h2>Add a document</h2><form class="stack wide" method="post" action="/console/knowledge/documents">
<label for="doc-title">Title<input id="doc-title" name="title" required maxlength="100"></label>
<label for="doc-name">File name (<code>.md</code> or <code>.txt</code>)<input id="doc-name" name="name" required value="document.md"></label>
<label for="doc-text">Text (Markdown headings start passages)<textarea id="doc-text" name="text" required rows="10"></textarea></label>
<button type="submit">Add the document</button></form>
<p class="muted">PDF files are uploaded through <code>POST /admin/knowledge/documents?name=prices.pdf</code>.</p>"#,
            entry_fields("new-", "", "", "", "", "")
        ));
    }
    html(StatusCode::OK, page("Knowledge", Some(&p), "/console/knowledge", &body))
}

async fn create(app: web::Data<App>, req: HttpRequest, form: web::Form<EntryForm>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match add_entry(&app, &p, form.into_inner().input()).await {
        Ok(item) => see_other(&format!("/console/knowledge?saved={}", url_part(&item.id))),
        Err(e) => not_saved(&p, "/console/knowledge", &e),
    }
}

#[derive(Deserialize)]
struct DocumentForm {
    title: String,
    name: String,
    text: String,
}

async fn document(app: web::Data<App>, req: HttpRequest, form: web::Form<DocumentForm>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let f = form.into_inner();
    match add_document(&app, &p, &f.name, Some(f.title), None, f.text.as_bytes(), None).await {
        Ok(item) => see_other(&format!("/console/knowledge?saved={}", url_part(&item.id))),
        Err(e) => not_saved(&p, "/console/knowledge", &e),
    }
}

async fn item(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let item = match app.store.knowledge_item(&p.tenant.id, &id).await {
        Ok(Some(i)) => i,
        Ok(None) => return not_saved(&p, "/console/knowledge", &KnowledgeError::NotFound(id.into_inner())),
        Err(e) => return not_saved(&p, "/console/knowledge", &e.into()),
    };
    let action = format!("/console/knowledge/item/{}", url_part(&item.id));
    let mut body = String::new();
    if item.kind == ItemKind::Document {
        body.push_str(&format!(
            "<p>A document from <code>{}</code>, answered from passage by passage.</p><pre>{}</pre>",
            esc(item.source.as_deref().unwrap_or("the console")),
            esc(&item.answer)
        ));
    } else if p.allows(Permission::Knowledge) {
        body.push_str(&format!(
            r#"<form class="stack wide" method="post" action="{action}">{}<button type="submit">Save</button></form>"#,
            entry_fields(
                "",
                &item.title,
                item.question.as_deref().unwrap_or(""),
                &item.answer,
                &item.keywords.join(", "),
                item.category.as_deref().unwrap_or("")
            )
        ));
    } else {
        body.push_str(&format!("<p>{}</p>", esc(&item.answer)));
    }
    if !item.also_asked.is_empty() {
        let list: String = item.also_asked.iter().map(|q| format!("<li>{}</li>", esc(q))).collect();
        body.push_str(&format!("<h2>Also asked as</h2><ul>{list}</ul>"));
    }
    if p.allows(Permission::Knowledge) {
        body.push_str(&format!(
            r#"<form method="post" action="{action}/delete"><button type="submit">Delete this item</button></form>"#
        ));
    }
    if let Ok(history) = app.store.knowledge_history(&p.tenant.id, &item.id).await {
        let zone = p.tenant.flows().business.time_zone.clone();
        let rows: String = history
            .iter()
            .map(|h| {
                let at = jiff::Timestamp::from_millisecond(h.at)
                    .map(|t| t.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                format!(
                    r#"<tr><td class="n">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                    h.revision,
                    esc(&at),
                    esc(&h.action),
                    esc(&h.actor)
                )
            })
            .collect();
        body.push_str(&format!(
            r#"<h2>History</h2><table><caption>Changes, newest first</caption><thead><tr><th scope="col" class="n">Revision</th><th scope="col">When</th><th scope="col">Change</th><th scope="col">Who</th></tr></thead><tbody>{rows}</tbody></table>"#
        ));
    }
    html(StatusCode::OK, page(&item.title, Some(&p), "/console/knowledge", &body))
}

async fn update(
    app: web::Data<App>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<EntryForm>,
) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let back = format!("/console/knowledge/item/{}", url_part(&id));
    let current = match app.store.knowledge_item(&p.tenant.id, &id).await {
        Ok(Some(i)) if i.kind == ItemKind::Entry => i,
        Ok(_) => return not_saved(&p, &back, &KnowledgeError::NotFound(id.into_inner())),
        Err(e) => return not_saved(&p, &back, &e.into()),
    };
    let saved = match entry_from(form.into_inner().input(), Some(&current.id)) {
        Ok(item) => {
            let item = crate::knowledge::Item { also_asked: current.also_asked, ..item };
            app.store.save_knowledge_item(&p.tenant.id, item, &p.name(), false).await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(item) => {
            crate::server::auth::record(
                &app,
                &p,
                "knowledge.update",
                &item.id,
                "ok",
                serde_json::json!({"revision": item.revision}),
            )
            .await;
            see_other(&format!("/console/knowledge?saved={}", url_part(&item.id)))
        }
        Err(e) => not_saved(&p, &back, &e),
    }
}

async fn delete(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match app.store.delete_knowledge_item(&p.tenant.id, &id, &p.name()).await {
        Ok(_) => {
            crate::server::auth::record(&app, &p, "knowledge.delete", &id, "ok", serde_json::json!({})).await;
            see_other("/console/knowledge")
        }
        Err(e) => not_saved(&p, "/console/knowledge", &e.into()),
    }
}

async fn review(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let (rows, items) = match (
        app.store.open_flags(&p.tenant.id, crate::server::knowledge::MAX_OPEN_FLAGS).await,
        app.store.knowledge_items(&p.tenant.id).await,
    ) {
        (Ok(rows), Ok((_, items))) => (rows, items),
        (Err(e), _) | (_, Err(e)) => return not_saved(&p, "/console/knowledge", &e.into()),
    };
    let flags: Vec<(i64, String, String)> = rows.iter().map(|r| (r.id, r.question.clone(), r.reason.clone())).collect();
    let groups = crate::knowledge::review::group(&flags);
    let options: String =
        items.iter().map(|i| format!(r#"<option value="{}">{}</option>"#, esc(&i.id), esc(&i.title))).collect();
    let mut body = format!(
        "<p>Questions the bot could not answer, answered unsure, or answered and then called wrong, thumbed down or followed by a request for a person: {} open, in {} groups of similar questions.</p>",
        rows.len(),
        groups.len()
    );
    for (n, g) in groups.iter().enumerate() {
        let ids: Vec<String> = g.flags.iter().map(i64::to_string).collect();
        let wordings: String = g.questions.iter().map(|q| format!("<li>{}</li>", esc(q))).collect();
        body.push_str(&format!(
            r#"<h2>{} <small>({} times: {})</small></h2><ul>{wordings}</ul>"#,
            esc(&g.question),
            g.flags.len(),
            esc(&g.reasons.join(", "))
        ));
        if p.allows(Permission::Knowledge) {
            body.push_str(&format!(
                r#"<form class="filters" method="post" action="/console/knowledge/review" aria-label="Answer with an existing item">
<input type="hidden" name="flags" value="{ids}"><label for="link-{n}">Answered by<select id="link-{n}" name="link">{options}</select></label>
<button type="submit">Link</button></form>
<form class="stack wide" method="post" action="/console/knowledge/review" aria-label="Answer with a new entry">
<input type="hidden" name="flags" value="{ids}">
<label for="title-{n}">New entry's title<input id="title-{n}" name="title" required maxlength="100"></label>
<label for="answer-{n}">Its answer<textarea id="answer-{n}" name="answer" required rows="3"></textarea></label>
<button type="submit">Add the entry</button></form>"#,
                ids = ids.join(",")
            ));
        }
    }
    html(StatusCode::OK, page("Flagged questions", Some(&p), "/console/knowledge", &body))
}

#[derive(Deserialize)]
struct ResolveForm {
    flags: String,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    answer: Option<String>,
}

async fn resolve(app: web::Data<App>, req: HttpRequest, form: web::Form<ResolveForm>) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Knowledge).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let f = form.into_inner();
    let flags: Vec<i64> = f.flags.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let entry = f.title.map(|title| EntryInput {
        id: None,
        title,
        question: None,
        answer: f.answer.clone(),
        keywords: vec![],
        also_asked: vec![],
        category: None,
    });
    match resolve_group(&app, &p, Resolve { flags, link: f.link, entry }).await {
        Ok((item, _)) => see_other(&format!("/console/knowledge?saved={}", url_part(&item.id))),
        Err(e) => not_saved(&p, "/console/knowledge/review", &e),
    }
}
