//! The website chat widget's session API against the real server: CORS only for the site's
//! origins, a session token bound to its session, a visitor's messages and button choices
//! answered by the same journeys (every option kept, no WhatsApp limits), a repeated client id
//! taken once, messages capped in size and rate, idle and ended sessions refused; on SQLite and
//! PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

const SITE: &str = "sparkle-website";
const ORIGIN: &str = "http://localhost:8080";

struct Visitor<'a> {
    server: &'a Server,
    http: reqwest::Client,
    origin: String,
    session: String,
    token: String,
    seen: i64,
    sent: usize,
}

impl<'a> Visitor<'a> {
    async fn start(server: &'a Server, origin: &str) -> (u16, Value, Option<Visitor<'a>>) {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{}/widget/sessions", server.url))
            .header("Origin", origin)
            .json(&json!({"site": SITE}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let visitor = (status == 201).then(|| Visitor {
            server,
            http: http.clone(),
            origin: origin.to_string(),
            session: body["session"].as_str().unwrap().to_string(),
            token: body["token"].as_str().unwrap().to_string(),
            seen: 0,
            sent: 0,
        });
        (status, body, visitor)
    }

    async fn post(&mut self, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/widget/sessions/{}/messages", self.server.url, self.session))
            .header("Origin", &self.origin)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn replies(&mut self, wait: u64) -> (u16, Vec<Value>) {
        let resp = self
            .http
            .get(format!(
                "{}/widget/sessions/{}/replies?after={}&wait={wait}",
                self.server.url, self.session, self.seen
            ))
            .header("Origin", &self.origin)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let replies = body["replies"].as_array().cloned().unwrap_or_default();
        if let Some(last) = replies.last() {
            self.seen = last["id"].as_i64().unwrap();
        }
        (status, replies)
    }

    /// Says `text` and returns the replies to it.
    async fn say(&mut self, text: &str) -> Vec<Value> {
        self.sent += 1;
        let (status, _) = self.post(json!({"client_id": format!("m{}", self.sent), "text": text})).await;
        assert_eq!(status, 202);
        self.answer().await
    }

    /// Presses the option titled `title` in the latest replies.
    async fn press(&mut self, offered: &[Value], title: &str) -> Vec<Value> {
        let option = offered
            .iter()
            .flat_map(|r| r["options"].as_array().cloned().unwrap_or_default())
            .find(|o| o["title"] == title)
            .unwrap_or_else(|| panic!("no option {title:?} in {offered:?}"));
        self.sent += 1;
        let (status, _) = self
            .post(json!({"client_id": format!("m{}", self.sent), "choice": {"id": option["id"], "title": title}}))
            .await;
        assert_eq!(status, 202);
        self.answer().await
    }

    async fn answer(&mut self) -> Vec<Value> {
        let (status, replies) = self.replies(10).await;
        assert_eq!(status, 200);
        assert!(!replies.is_empty(), "a reply within 10 s");
        // Replies of one turn are committed together; a moment more catches the rest.
        let (_, more) = self.replies(0).await;
        replies.into_iter().chain(more).collect()
    }
}

fn said(replies: &[Value]) -> String {
    replies.iter().map(|r| r["text"].as_str().unwrap_or_default()).collect::<Vec<_>>().join("\n---\n")
}

async fn a_visitor_chats_through_the_session_api(db: Db) {
    let fakes = Fakes::new(None);
    let server = Server::start_with(&db, &fakes, &[("RATE_WEB_SESSION_PER_MINUTE", "12")]);
    let http = reqwest::Client::new();

    // The site's look, for its own origin only; CORS lets only that origin in.
    let resp = http.get(format!("{}/widget/sites/{SITE}", server.url)).header("Origin", ORIGIN).send().await.unwrap();
    assert_eq!(resp.headers().get("access-control-allow-origin").map(|h| h.to_str().unwrap()), Some(ORIGIN));
    let site: Value = resp.json().await.unwrap();
    assert!(site["greeting"].as_str().unwrap().starts_with("Hi! I can book a wash"), "{site}");
    let resp = http
        .request(reqwest::Method::OPTIONS, format!("{}/widget/sessions", server.url))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none(), "{:?}", resp.headers());
    let (status, e, _) = Visitor::start(&server, "https://evil.example").await;
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("web.origin_refused")), "{e}");
    let (status, e, _) = Visitor::start(&server, "").await;
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("web.origin_refused")), "{e}");
    // Without an Origin (a page of the service itself: browsers leave it out of same-origin
    // GETs), the site's look is given; the session token is what the session API then needs.
    let resp = http.get(format!("{}/widget/sites/{SITE}", server.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // The demo page carries the widget only where a site allows the page's origin.
    let resp = http.get(format!("{}/widget-demo", server.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404, "the test server's origin is not the sample site's");
    let resp = http.get(format!("{}/widget.js", server.url)).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/javascript; charset=utf-8");
    assert!(resp.text().await.unwrap().contains("textContent"));

    // A session, and the journeys by text and by button; every menu option is kept.
    let (status, created, visitor) = Visitor::start(&server, ORIGIN).await;
    assert_eq!(status, 201, "{created}");
    let mut v = visitor.unwrap();
    let menu = v.say("hi").await;
    assert!(said(&menu).contains("Welcome to Sparkle Doorstep Car Care"), "{menu:?}");
    let options = menu.iter().flat_map(|r| r["options"].as_array().cloned().unwrap_or_default()).count();
    assert!(options > 3, "a web visitor sees every option: {menu:?}");
    let topics = v.press(&menu, "Ask a question").await;
    let areas = v.press(&topics, "Areas we serve").await;
    assert!(said(&areas).contains("anywhere in Dubai and Sharjah"), "{areas:?}");

    // The conversation is the session's, on the site's own "number".
    let store = server.store().await;
    let conversation = format!("web.{SITE}:{}", v.session);
    assert!(store.conversation(&carewell::tenant::TenantId::default(), &conversation).await.unwrap().is_some());

    // The same client id is one message.
    let (status, again) = v.post(json!({"client_id": format!("m{}", v.sent), "text": "Areas we serve"})).await;
    assert_eq!((status, again["queued"].as_bool()), (202, Some(false)), "{again}");

    // "Continue on WhatsApp": a journey under way moves to the number that sends the code, and
    // goes on there with its question asked again; the code is taken once.
    let booking = v.say("book a full wash").await;
    assert!(said(&booking).contains("first and last name"), "{booking:?}");
    v.say("Jane Doe").await;
    let resp = http
        .post(format!("{}/widget/sessions/{}/whatsapp", server.url, v.session))
        .header("Origin", ORIGIN)
        .bearer_auth(&v.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let join: Value = resp.json().await.unwrap();
    let code = join["code"].as_str().unwrap().to_string();
    assert!(join["link"].as_str().unwrap().starts_with("https://wa.me/97140000000?text=Continue+my+chat"), "{join}");
    let mut wa = Customer::new(&server, &fakes.graph, "971500007301");
    let r = wa.text(&format!("Continue my chat: {}", code.to_lowercase())).await;
    assert_says(&r, "Welcome over from our website");
    // The chat's question follows, once the move has come through.
    let started = std::time::Instant::now();
    while !texts(&fakes.graph.sent_to("971500007301")).contains("Is this a one-time visit or a subscription?") {
        assert!(started.elapsed().as_secs() < 10, "{}", texts(&fakes.graph.sent_to("971500007301")));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(texts(&fakes.graph.sent_to("971500007301")).contains("Let's carry on where we left off."));
    let (_, moved) = v.replies(10).await;
    assert!(said(&moved).contains("Your chat continues on WhatsApp"), "{moved:?}");
    let mut other = Customer::new(&server, &fakes.graph, "971500007302");
    let r = other.text(&format!("Continue my chat: {code}")).await;
    assert!(!texts(&r).contains("Welcome over from our website"), "a code is taken once: {}", texts(&r));

    // Wrong tokens, too long, too many.
    let token = std::mem::replace(&mut v.token, "00".repeat(32));
    let (status, e) = v.post(json!({"client_id": "x1", "text": "hello"})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (401, Some("web.bad_token")), "{e}");
    let (_, _, other) = Visitor::start(&server, ORIGIN).await;
    v.token = other.unwrap().token;
    let (status, _) = v.post(json!({"client_id": "x2", "text": "hello"})).await;
    assert_eq!(status, 401, "another session's token");
    v.token = token;
    let (status, e) = v.post(json!({"client_id": "x3", "text": "a".repeat(2_001)})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (413, Some("web.too_long")), "{e}");
    let (status, e) = v.post(json!({"client_id": "bad id!", "text": "hello"})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("web.bad_message")), "{e}");
    let mut limited = false;
    for i in 0..15 {
        let (status, e) = v.post(json!({"client_id": format!("burst{i}"), "text": "hello"})).await;
        if status == 429 {
            assert_eq!(e["error"]["code"], "web.rate_limited");
            limited = true;
            break;
        }
    }
    assert!(limited, "the session's message rate is limited");

    // Ended, and idle for 30 minutes: the token is refused.
    let resp = http
        .delete(format!("{}/widget/sessions/{}", server.url, v.session))
        .header("Origin", ORIGIN)
        .bearer_auth(&v.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (status, e) = v.post(json!({"client_id": "after", "text": "hello"})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("web.session_closed")), "{e}");
    let (_, _, idle) = Visitor::start(&server, ORIGIN).await;
    let mut idle = idle.unwrap();
    server
        .sql(&format!("UPDATE web_sessions SET last_seen_at = last_seen_at - 1900000 WHERE id = '{}'", idle.session))
        .await;
    let (status, _) = idle.replies(0).await;
    assert_eq!(status, 410, "idle for more than 30 minutes");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_through_the_session_api_on_sqlite() {
    a_visitor_chats_through_the_session_api(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_through_the_session_api_on_postgres() {
    a_visitor_chats_through_the_session_api(postgres().await).await;
}
