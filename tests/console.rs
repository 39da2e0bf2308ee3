//! The console's accounts through the real server, on SQLite and on PostgreSQL: the first owner
//! made offline, logins (the same answer for a wrong name and a wrong password, rate limited,
//! recorded with the address), session cookies, roles (an agent acts as themselves, a viewer
//! only reads), API keys (shown once, scoped, rate limited, refused once revoked), a customer's
//! data export and erasure, and the audit trail of it all.

mod common;

use common::*;
use serde_json::{Value, json};

/// A caller of the admin API: a cookie jar of one session, or a bearer key.
struct Caller {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
    key: Option<String>,
}

impl Caller {
    fn anonymous(server: &Server) -> Caller {
        Caller { base: server.url.clone(), http: reqwest::Client::new(), cookie: None, key: None }
    }

    fn with_key(server: &Server, key: &str) -> Caller {
        Caller { key: Some(key.to_string()), ..Caller::anonymous(server) }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value, Option<String>) {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            "PATCH" => self.http.patch(url).json(&body),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let set_cookie = resp.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
        (status, resp.json().await.unwrap_or(Value::Null), set_cookie)
    }

    /// Logs in; returns the status and the error code, keeping the session cookie on success.
    async fn login(&mut self, name: &str, password: &str) -> (u16, String) {
        let (status, body, cookie) =
            self.call("POST", "/admin/login", json!({"name": name, "password": password})).await;
        if status == 200 {
            let cookie = cookie.expect("a session cookie");
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
                assert!(cookie.contains(attribute), "{attribute} in {cookie}");
            }
            self.cookie = Some(cookie.split(';').next().unwrap().to_string());
        }
        (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
    }
}

async fn accounts_roles_keys_and_the_audit_trail(db: Db) {
    let (ok, out) = users_add(&db, "olivia", "owner", "a long owner password");
    assert!(ok, "{out}");
    let (ok, out) = users_add(&db, "olivia", "owner", "a long owner password");
    assert!(!ok && out.contains("exists"), "{out}");
    let (ok, out) = users_add(&db, "shorty", "agent", "short");
    assert!(!ok && out.contains("at least 12"), "{out}");

    let fakes = Fakes::new(None);
    let server = Server::start_with(&db, &fakes, &[("RATE_ADMIN_PER_SECOND", "1000")]);
    let mut customer = Customer::new(&server, &fakes.graph, "971500008001");
    customer.text("book a full wash").await;

    // A wrong password and an unknown name get the same answer.
    let mut owner = Caller::anonymous(&server);
    assert_eq!(owner.login("olivia", "not the password").await, (401, "server.login_failed".into()));
    assert_eq!(owner.login("nobody", "not the password").await, (401, "server.login_failed".into()));
    assert_eq!(owner.call("GET", "/admin/me", json!({})).await.0, 401);
    assert_eq!(owner.login("olivia", "a long owner password").await.0, 200);
    let (status, me, _) = owner.call("GET", "/admin/me", json!({})).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("owner")), "{me}");

    // The owner makes an agent and a viewer; an agent cannot make users.
    for (name, role) in [("adam", "agent"), ("vera", "viewer")] {
        let (status, body, _) = owner
            .call("POST", "/admin/users", json!({"name": name, "role": role, "password": "another long password"}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut agent = Caller::anonymous(&server);
    assert_eq!(agent.login("adam", "another long password").await.0, 200);
    let (status, _, _) = agent
        .call("POST", "/admin/users", json!({"name": "eve", "role": "owner", "password": "another long password"}))
        .await;
    assert_eq!(status, 403);

    // The inspector lets in a session that may act (this server is not on the sandbox: 409 once in).
    assert_eq!(agent.call("GET", "/inspector", json!({})).await.0, 409);
    assert_eq!(Caller::anonymous(&server).call("GET", "/inspector", json!({})).await.0, 401);

    // The agent takes the conversation over and replies as themselves; the viewer only reads.
    let conversation = customer.conversation_id();
    let (status, body, _) =
        agent.call("POST", &format!("/admin/conversations/{conversation}/takeover"), json!({})).await;
    assert_eq!(status, 202, "{body}");
    let (status, _, _) = agent
        .call("POST", &format!("/admin/conversations/{conversation}/reply"), json!({"text": "Hi, Adam here"}))
        .await;
    assert_eq!(status, 202);
    server.settle().await;
    let said = texts(&customer.replies());
    assert!(said.contains("adam") && said.contains("Hi, Adam here"), "{said}");
    let mut viewer = Caller::anonymous(&server);
    assert_eq!(viewer.login("vera", "another long password").await.0, 200);
    assert_eq!(viewer.call("GET", "/admin/handoffs?status=all", json!({})).await.0, 200);
    let (status, body, _) =
        viewer.call("POST", &format!("/admin/conversations/{conversation}/release"), json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("server.forbidden")), "{body}");

    // Logging out ends the session.
    assert_eq!(viewer.call("POST", "/admin/logout", json!({})).await.0, 200);
    assert_eq!(viewer.call("GET", "/admin/handoffs", json!({})).await.0, 401);

    // An API key: shown once, scoped, rate limited, refused once revoked.
    let (status, created, _) =
        owner.call("POST", "/admin/keys", json!({"name": "reporting", "scopes": ["read"], "per_minute": 3})).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    let (_, listed, _) = owner.call("GET", "/admin/keys", json!({})).await;
    assert!(!listed.to_string().contains(&secret), "the key is never shown again: {listed}");
    let reporting = Caller::with_key(&server, &secret);
    assert_eq!(reporting.call("GET", "/admin/handoffs", json!({})).await.0, 200);
    assert_eq!(reporting.call("POST", &format!("/admin/conversations/{conversation}/release"), json!({})).await.0, 403);
    assert_eq!(reporting.call("GET", "/admin/conversations", json!({})).await.0, 200);
    assert_eq!(reporting.call("GET", "/admin/handoffs", json!({})).await.0, 429, "the fourth in a minute");
    let (status, _, _) = agent.call("POST", "/admin/keys", json!({"name": "mine", "scopes": ["read"]})).await;
    assert_eq!(status, 403, "an agent has no keys permission");
    assert_eq!(owner.call("DELETE", &format!("/admin/keys/{id}"), json!({})).await.0, 200);
    let (status, body, _) = reporting.call("GET", "/admin/handoffs", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("server.admin_unauthorized")));

    // Five failures from one address in 15 minutes close the door, even to the right password.
    let mut guesser = Caller::anonymous(&server);
    for _ in 0..3 {
        assert_eq!(guesser.login("adam", "wrong guess number").await.0, 401);
    }
    assert_eq!(guesser.login("adam", "another long password").await.1, "server.login_rate_limited");

    // Everything held about the customer, for the owner only.
    let (status, doc, _) = owner.call("GET", "/admin/customers/+971500008001/export", json!({})).await;
    assert_eq!(status, 200, "{doc}");
    let held = &doc["conversations"][0];
    assert_eq!(held["id"], conversation.as_str());
    assert!(held["turns"].as_array().unwrap().len() >= 3, "{held}");
    assert!(doc.to_string().contains("book a full wash") && doc.to_string().contains("Hi, Adam here"), "{doc}");
    assert_eq!(agent.call("GET", "/admin/customers/971500008001/export", json!({})).await.0, 403);
    assert_eq!(owner.call("GET", "/admin/customers/971500009999/export", json!({})).await.0, 404);

    // Erasure: the words go, the turns and their decisions stay.
    let store = server.store().await;
    let turns_before = store.turns_of(&carewell::tenant::TenantId::default(), &conversation).await.unwrap().len();
    assert_eq!(agent.call("POST", "/admin/customers/971500008001/erase", json!({})).await.0, 403);
    let (status, erased, _) = owner.call("POST", "/admin/customers/971500008001/erase", json!({})).await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["turns"].as_u64(), Some(turns_before as u64));
    let (_, doc, _) = owner.call("GET", "/admin/customers/971500008001/export", json!({})).await;
    let text = doc["conversations"].to_string();
    for gone in ["book a full wash", "Hi, Adam here"] {
        assert!(!text.contains(gone), "{gone:?} is still held: {text}");
    }
    let turns = store.turns_of(&carewell::tenant::TenantId::default(), &conversation).await.unwrap();
    assert_eq!(turns.len(), turns_before, "the turns remain");
    for t in &turns {
        let record = carewell::record::TurnRecord::parse(&t.record).expect("an erased record still parses");
        assert!(record.erased_at.is_some());
    }
    assert!(turns.iter().any(|t| t.step_after.starts_with("booking/")), "the decisions remain");
    let state = store.conversation(&carewell::tenant::TenantId::default(), &conversation).await.unwrap().unwrap().state;
    let state: carewell::engine::ConversationState = serde_json::from_str(&state).unwrap();
    assert!(state.profile.is_empty() && state.journey.is_none() && state.turns >= 3, "{state:?}");

    // The audit trail: who did what, from where, filtered.
    let (status, trail, _) = owner.call("GET", "/admin/audit?actor=adam", json!({})).await;
    assert_eq!(status, 200, "{trail}");
    let actions: Vec<&str> = trail["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for want in ["conversation.takeover", "conversation.reply", "access.denied", "login.ok"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let (_, failures, _) = owner.call("GET", "/admin/audit?action=login.failed", json!({})).await;
    let failures = failures["entries"].as_array().unwrap();
    assert!(failures.len() >= 5, "{failures:?}");
    assert!(failures.iter().all(|e| e["address"].as_str() == Some("127.0.0.1")), "{failures:?}");
    let (_, keys, _) = owner.call("GET", "/admin/audit?action=key.", json!({})).await;
    let key_actions: Vec<&str> =
        keys["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(key_actions, ["key.revoke", "key.create"], "newest first");
    let (_, made, _) = owner.call("GET", "/admin/audit?action=user.create", json!({})).await;
    let made: Vec<(&str, &str)> = made["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert!(made.contains(&("command line", "olivia")) && made.contains(&("olivia", "adam")), "{made:?}");
    let (_, exports, _) = owner.call("GET", "/admin/audit?action=customer.export&target=971500008001", json!({})).await;
    assert_eq!(exports["entries"][0]["actor"], "olivia", "{exports}");
    let (status, _, _) = agent.call("GET", "/admin/audit", json!({})).await;
    assert_eq!(status, 403, "agents do not read the audit trail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_roles_keys_and_the_audit_trail_on_sqlite() {
    accounts_roles_keys_and_the_audit_trail(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_roles_keys_and_the_audit_trail_on_postgres() {
    accounts_roles_keys_and_the_audit_trail(postgres().await).await;
}
