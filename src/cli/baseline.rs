//! `carewell baseline-bot` (hidden, built with `--features fakes`): a bot that does nothing but
//! what `loadgen`'s customers need to go on, for measuring the machine's ceiling for the load
//! generator beside the service in the same run (`loadgen --baseline`).
//!
//! It checks each webhook's signature, acknowledges it at once, and answers from a spawned task
//! (as a real bot does): every message gets one list offering every option the load generator's
//! journeys press; the press of "Confirm" gets a Sales Order posted to the ERP (keyed by the
//! customer, so the load generator's once-per-booking check holds) and then "You're booked".
//! No state, no database, no flow: whatever the service spends beyond this is its own cost.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::channel::whatsapp::signature::verify;

/// Where the bot sends, and its secrets; read from the same variables as `serve`.
#[derive(Clone)]
struct Baseline {
    secret: String,
    graph_url: String,
    graph_token: String,
    erp_url: String,
    erp_auth: String,
    http: reqwest::Client,
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// Serves until killed; prints `listening on URL` once bound. Errors: a variable missing, the
/// port taken.
pub async fn run() -> Result<(), String> {
    let bot = Baseline {
        secret: env("WHATSAPP_APP_SECRET")?,
        graph_url: env("WHATSAPP_API_BASE_URL")?,
        graph_token: env("WHATSAPP_ACCESS_TOKEN")?,
        erp_url: env("ERP_BASE_URL")?,
        erp_auth: format!("token {}:{}", env("ERP_API_KEY")?, env("ERP_API_SECRET")?),
        http: reqwest::Client::builder().pool_max_idle_per_host(512).build().map_err(|e| e.to_string())?,
    };
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let data = web::Data::new(bot);
    let server =
        HttpServer::new(move || App::new().app_data(data.clone()).route("/webhooks/whatsapp", web::post().to(webhook)))
            .workers(2)
            .bind(("127.0.0.1", port))
            .map_err(|e| format!("cannot listen: {e}"))?;
    let addr = server.addrs().first().copied().ok_or("no address")?;
    println!("listening on http://{addr}");
    server.run().await.map_err(|e| e.to_string())
}

async fn webhook(bot: web::Data<Baseline>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = req.headers().get("X-Hub-Signature-256").and_then(|h| h.to_str().ok());
    if verify(bot.secret.as_bytes(), &body, header).is_err() {
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else { return HttpResponse::BadRequest().finish() };
    let value = &payload["entry"][0]["changes"][0]["value"];
    let pnid = value["metadata"]["phone_number_id"].as_str().unwrap_or_default().to_string();
    for m in value["messages"].as_array().into_iter().flatten() {
        let from = m["from"].as_str().unwrap_or_default().to_string();
        let pressed = m["interactive"]["button_reply"]["id"]
            .as_str()
            .or(m["interactive"]["list_reply"]["id"].as_str())
            .unwrap_or_default()
            .to_string();
        let bot = bot.clone();
        let pnid = pnid.clone();
        tokio::spawn(async move { answer(&bot, &pnid, &from, &pressed).await });
    }
    HttpResponse::Ok().finish()
}

/// The answer to one message (errors are dropped: the load generator counts a missing reply).
async fn answer(bot: &Baseline, pnid: &str, to: &str, pressed: &str) {
    let message = if pressed == "confirm" {
        let post = |doctype: &str, doc: Value| {
            bot.http
                .post(format!("{}/api/resource/{doctype}", bot.erp_url))
                .header("Authorization", &bot.erp_auth)
                .json(&doc)
                .send()
        };
        // A Customer, then the order linked to it (the ERP refuses an order for an unknown one).
        let customer: Option<Value> = match post("Customer", json!({"customer_name": to})).await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        let name = customer.as_ref().and_then(|c| c["data"]["name"].as_str()).unwrap_or(to).to_string();
        let _ = post("Sales Order", json!({"customer": name, "wa_idempotency_key": format!("baseline:{to}")})).await;
        json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "You're booked."}})
    } else {
        // The journeys' buttons, and visit times (each customer presses one of these).
        let rows: Vec<Value> = [
            ("book", "Book a service"),
            ("wash", "Full Wash"),
            ("once", "One-time"),
            ("confirm", "Confirm"),
            ("set:visit_time=2030-01-08T09:00:00", "Tue 8 Jan 09:00"),
            ("set:visit_time=2030-01-08T11:00:00", "Tue 8 Jan 11:00"),
            ("set:visit_time=2030-01-08T14:00:00", "Tue 8 Jan 14:00"),
            ("set:visit_time=2030-01-08T16:00:00", "Tue 8 Jan 16:00"),
        ]
        .iter()
        .map(|(id, title)| json!({"id": id, "title": title}))
        .collect();
        json!({"messaging_product": "whatsapp", "to": to, "type": "interactive", "interactive": {
            "type": "list", "body": {"text": "Choose"},
            "action": {"button": "Options", "sections": [{"title": "Options", "rows": rows}]}}})
    };
    let _ = bot
        .http
        .post(format!("{}/{pnid}/messages", bot.graph_url))
        .bearer_auth(&bot.graph_token)
        .json(&message)
        .send()
        .await;
}
