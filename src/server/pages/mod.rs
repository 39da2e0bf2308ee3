//! The operators' console: HTML pages served by the service under `/console`, for people who
//! log in (see [`super::console`] for accounts and roles). No script and no CDN: forms, links,
//! tables and charts drawn on the server as SVG, so that every page works with a keyboard and a
//! screen reader.
//!
//! - `GET /console/login`, `POST /console/login` (form `name`, `password`): the session cookie,
//!   then the dashboard; `POST /console/logout`.
//! - `GET /console` (permission `read`): the dashboard ([`dashboard`]); `GET /console/dashboard.csv`.
//! - `GET /console/conversations` (`read`): transcript search ([`conversations`]),
//!   `GET /console/conversations.csv`, `GET /console/explain/{conversation}`.
//! - `GET /console/audit` (`audit`): the audit trail ([`audit`]).
//! - `GET /console/knowledge` (`read`; changes `knowledge`): the knowledge base, its review of
//!   flagged questions and each item's history ([`knowledge`]).
//!
//! A page asked for without a session redirects to the login page; without the permission it
//! answers 403 with a page that says which one is missing.

mod audit;
mod conversations;
mod dashboard;
mod knowledge;
pub mod layout;
mod replies;
pub mod svg;

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::{self, Permission, Principal};
use crate::pipeline::App;
use layout::{esc, page};

/// Registers the console's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/login", web::get().to(login_page))
        .route("/console/login", web::post().to(login))
        .route("/console/logout", web::post().to(logout))
        .configure(dashboard::routes)
        .configure(conversations::routes)
        .configure(audit::routes)
        .configure(knowledge::routes)
        .configure(replies::routes);
}

/// An HTML answer.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ))
        .body(body)
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, to.to_string())).finish()
}

/// The logged-in caller of a page, if they may do `permission`; otherwise the answer to send
/// instead: the login page for nobody, a 403 page for someone without the permission.
pub async fn viewer(app: &App, req: &HttpRequest, permission: Permission) -> Result<Principal, HttpResponse> {
    let p = match auth::authenticate(app, req).await {
        Ok(p) => p,
        Err(resp) if resp.status() == StatusCode::UNAUTHORIZED => return Err(see_other("/console/login")),
        Err(resp) => return Err(resp),
    };
    if p.allows(permission) {
        return Ok(p);
    }
    let body = format!(
        r#"<p role="alert" class="alert">Your account may not see this page: it needs the permission <strong>{}</strong>. Ask an owner or admin.</p>"#,
        permission.as_str()
    );
    Err(html(StatusCode::FORBIDDEN, page("Not allowed", Some(&p), "", &body)))
}

fn login_form(message: Option<&str>, name: &str) -> String {
    let alert = message.map_or_else(String::new, |m| format!(r#"<p role="alert" class="alert">{}</p>"#, esc(m)));
    format!(
        r#"{alert}<form class="stack" method="post" action="/console/login">
<label for="name">Name<input id="name" name="name" autocomplete="username" required value="{}"></label>
<label for="password">Password<input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>
<p class="muted">No account yet? The server's operator creates the first with <code>carewell users add --role owner</code>.</p>"#,
        esc(name)
    )
}

async fn login_page() -> HttpResponse {
    html(StatusCode::OK, page("Log in", None, "", &login_form(None, "")))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn login(app: web::Data<App>, req: HttpRequest, form: web::Form<LoginForm>) -> HttpResponse {
    match super::console::sign_in(&app, &req, &form.name, &form.password).await {
        Ok((_, cookie)) => {
            let mut resp = see_other("/console");
            match resp.add_cookie(&cookie) {
                Ok(()) => resp,
                Err(_) => html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    page(
                        "Log in",
                        None,
                        "",
                        &login_form(Some("The session could not be opened; try again."), &form.name),
                    ),
                ),
            }
        }
        Err(resp) => {
            let status = resp.status();
            let message = match status {
                StatusCode::TOO_MANY_REQUESTS => "Too many failed logins. Wait 15 minutes and try again.",
                StatusCode::UNAUTHORIZED => "Wrong name or password.",
                _ => "The console cannot reach its database just now; try again in a moment.",
            };
            html(status, page("Log in", None, "", &login_form(Some(message), &form.name)))
        }
    }
}

async fn logout(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = match viewer(&app, &req, Permission::Read).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match super::console::sign_out(&app, &req, &p).await {
        Ok(gone) => {
            let mut resp = see_other("/console/login");
            let _ = resp.add_cookie(&gone);
            resp
        }
        Err(resp) => resp,
    }
}
