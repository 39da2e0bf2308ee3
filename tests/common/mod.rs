//! The end-to-end harness: the real `carewell serve` process against the loopback fakes of
//! `carewell::fakes`, driven by signed webhooks in WhatsApp's real format.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use carewell::channel::whatsapp::envelope::{envelope, to_ascii_json};
use carewell::channel::whatsapp::signature::sign;
pub use carewell::fakes::*;

pub mod browser;
pub mod engine_run;
use serde_json::{Value, json};

pub const SECRET: &str = "test-app-secret";
pub const ADMIN_TOKEN: &str = "test-admin-token";

// ---------------------------------------------------------------- databases

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(String),
    Postgres(String),
}

impl Db {
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite://{p}"),
            Db::Postgres(u) => u.clone(),
        }
    }
}

/// A fresh SQLite file.
pub fn sqlite() -> Db {
    let dir = std::env::temp_dir().join("carewell-tests");
    std::fs::create_dir_all(&dir).unwrap();
    Db::Sqlite(dir.join(format!("{}.db", uuid::Uuid::new_v4().simple())).display().to_string())
}

/// The PostgreSQL server the tests use when `TEST_POSTGRES_URL` is not set.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a test database is kept (seconds) for a look after a failed run; older ones are
/// dropped by the next test process that makes one. Each test makes its own (about 9 MB), so
/// without this every full run left some 40 of them on the server.
const KEEP_TEST_DATABASES_SECS: i64 = 3600;

/// Whether this process has already dropped the old test databases.
static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Drops the test databases made more than [`KEEP_TEST_DATABASES_SECS`] ago (their names carry
/// the Unix second they were made), and those named before names carried it. One still in use
/// (a test process of an older checkout, running now) is left: `DROP DATABASE` refuses it.
async fn sweep_old_test_databases(conn: &mut diesel_async::AsyncPgConnection) {
    use diesel::QueryableByName;
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let Ok(names) = diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'carewell\\_test\\_%'")
        .load::<Name>(conn)
        .await
    else {
        return;
    };
    let now = jiff::Timestamp::now().as_second();
    for Name { datname } in names {
        let made = datname.trim_start_matches("carewell_test_").split('_').next().and_then(|t| t.parse::<i64>().ok());
        if made.is_none_or(|t| now - t > KEEP_TEST_DATABASES_SECS) {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {datname}")).await;
        }
    }
}

/// A fresh PostgreSQL database on the server named by `TEST_POSTGRES_URL` (by default the local
/// one, as the Makefile and CI set it), named `carewell_test_<Unix second>_<uuid>`. A test that
/// needs PostgreSQL fails when it is missing: it never passes by skipping.
pub async fn postgres() -> Db {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_POSTGRES_URL.to_string());
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let name = format!("carewell_test_{}_{}", jiff::Timestamp::now().as_second(), uuid::Uuid::new_v4().simple());
    let mut conn = AsyncPgConnection::establish(&admin).await.unwrap_or_else(|e| {
        panic!("this test needs PostgreSQL at {admin} (TEST_POSTGRES_URL): {e}; start it (see README, Tests) or point TEST_POSTGRES_URL at one")
    });
    if !SWEPT.swap(true, std::sync::atomic::Ordering::Relaxed) {
        sweep_old_test_databases(&mut conn).await;
    }
    conn.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
    Db::Postgres(format!("{base}/{name}"))
}

// ---------------------------------------------------------------- the server under test

pub struct Fakes {
    pub graph: FakeGraph,
    pub erp: FakeErp,
    pub llm: Option<FakeLlm>,
}

impl Fakes {
    pub fn new(llm: Option<FakeLlm>) -> Fakes {
        Fakes { graph: FakeGraph::start(), erp: FakeErp::start(), llm }
    }
}

pub struct Server {
    pub url: String,
    child: Child,
    pub db: Db,
    pub log_path: std::path::PathBuf,
    /// The flows directory the server loaded.
    pub flows_dir: std::path::PathBuf,
    /// One client for the harness's own calls (health, webhooks, admin): its connections are
    /// kept, and making a client (its TLS setup) is not paid on every call.
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `carewell serve` on a free port against the fakes.
    pub fn start(db: &Db, fakes: &Fakes) -> Server {
        Server::start_with(db, fakes, &[])
    }

    /// Starts `carewell serve` with extra environment variables.
    pub fn start_with(db: &Db, fakes: &Fakes, extra: &[(&str, &str)]) -> Server {
        let log_path =
            std::env::temp_dir().join("carewell-tests").join(format!("server-{}.log", uuid::Uuid::new_v4().simple()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carewell"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("DATABASE_URL", db.url())
            .env("FLOWS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/flows"))
            .env("WHATSAPP_APP_SECRET", SECRET)
            .env("WHATSAPP_VERIFY_TOKEN", "test-verify")
            .env("WHATSAPP_API_BASE_URL", &fakes.graph.url)
            .env("WHATSAPP_ACCESS_TOKEN", GRAPH_TOKEN)
            .env("ERP_BASE_URL", &fakes.erp.url)
            .env("ERP_API_KEY", "test-key")
            .env("ERP_API_SECRET", "test-secret")
            .env("ERP_TIMEOUT_MS", "1000")
            .env("OUTBOX_BASE_DELAY_MS", "50")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(llm) = &fakes.llm {
            cmd.env("LLM_BASE_URL", &llm.url)
                .env("LLM_API_KEY", "test-llm-key")
                .env("LLM_MODEL", "fake-model")
                .env("LLM_TIMEOUT_MS", "500");
        }
        cmd.env("ADMIN_TOKEN", ADMIN_TOKEN).env("LEASE_MS", "2000").env("OUTBOX_CLAIM_MS", "2000");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let flows_dir = extra
            .iter()
            .find(|(k, _)| *k == "FLOWS_DIR")
            .map(|(_, v)| std::path::PathBuf::from(v))
            .unwrap_or_else(|| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/flows")));
        let mut child = cmd.spawn().expect("start carewell serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("listening on ") => break line["listening on ".len()..].to_string(),
                Some(Ok(_)) => continue,
                _ => {
                    panic!("the server did not start; log: {}", std::fs::read_to_string(&log_path).unwrap_or_default())
                }
            }
        };
        Server { url, child, db: db.clone(), log_path, flows_dir, http: reqwest::Client::new() }
    }

    /// SIGKILLs the server (no clean shutdown).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Posts a body with a signature made with `secret`; returns the HTTP status and body.
    pub async fn post_webhook(&self, body: &str, secret: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/webhooks/whatsapp", self.url))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(s) = secret {
            req = req.header("X-Hub-Signature-256", sign(s.as_bytes(), body.as_bytes()));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn health(&self) -> Value {
        self.http.get(format!("{}/health", self.url)).send().await.unwrap().json().await.unwrap()
    }

    /// Waits until the inbox and the outbox are empty (twice in a row).
    pub async fn settle(&self) {
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 2 {
            let h = self.health().await;
            if h["inbox"]["pending"] == 0 && h["outbox"]["pending"] == 0 {
                quiet += 1;
            } else {
                quiet = 0;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the server did not settle: {h}\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }

    /// Calls the admin API.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            "PUT" => self.http.put(url).json(&body),
            _ => self.http.post(url).json(&body),
        };
        let resp = req.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Decides every turn stored in the server's database again and fails on any difference
    /// from what was decided then (`carewell replay`); returns how many turns were replayed.
    pub async fn assert_replays(&self) -> usize {
        self.settle().await;
        let store = self.store().await;
        let flows = carewell::flow::FlowSet::load(&self.flows_dir).unwrap();
        let results =
            carewell::replay::replay_all(&store, &carewell::tenant::TenantId::default(), &flows).await.unwrap();
        let differ: Vec<_> = results.iter().filter(|r| !r.differences.is_empty()).cloned().collect();
        assert!(
            differ.is_empty(),
            "stored turns decide differently when replayed:\n{}",
            carewell::replay::render(&differ)
        );
        let replayed = results.iter().filter(|r| r.skipped.is_none()).count();
        assert!(replayed > 0, "nothing was replayed:\n{}", carewell::replay::render(&results));
        replayed
    }

    /// Runs one SQL statement on the server's database behind its back (to damage a row the way a
    /// bug or a bad migration could).
    pub async fn sql(&self, statement: &str) {
        use diesel_async::{AsyncConnection, SimpleAsyncConnection};
        match &self.db {
            Db::Sqlite(path) => {
                use diesel::Connection;
                use diesel::connection::SimpleConnection;
                let mut conn = diesel::SqliteConnection::establish(path).unwrap();
                conn.batch_execute(statement).unwrap();
            }
            Db::Postgres(url) => {
                let mut conn = diesel_async::AsyncPgConnection::establish(url).await.unwrap();
                conn.batch_execute(statement).await.unwrap();
            }
        }
    }

    /// Opens the database the server uses.
    pub async fn store(&self) -> carewell::store::Store {
        let url = carewell::store::DatabaseUrl::parse(Some(&self.db.url())).unwrap();
        carewell::store::Store::connect(&url, 2).await.unwrap()
    }
}

// ---------------------------------------------------------------- a customer

pub struct Customer<'a> {
    pub server: &'a Server,
    pub graph: &'a FakeGraph,
    pub wa_id: String,
    /// The business number written to.
    pub phone_number_id: String,
    pub name: String,
    counter: usize,
    seen: usize,
}

impl<'a> Customer<'a> {
    pub fn new(server: &'a Server, graph: &'a FakeGraph, wa_id: &str) -> Self {
        Customer::on_number(server, graph, wa_id, PHONE_NUMBER_ID)
    }

    /// A customer writing to the business number `phone_number_id`; `replies` are the messages
    /// sent from that number.
    pub fn on_number(server: &'a Server, graph: &'a FakeGraph, wa_id: &str, phone_number_id: &str) -> Self {
        Customer {
            server,
            graph,
            wa_id: wa_id.into(),
            phone_number_id: phone_number_id.into(),
            name: "Jane".into(),
            counter: 0,
            seen: 0,
        }
    }

    pub fn conversation_id(&self) -> String {
        format!("{}:{}", self.phone_number_id, self.wa_id)
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("wamid.IN-{}-{}-{}", self.wa_id, self.counter, uuid::Uuid::new_v4().simple())
    }

    /// The signed webhook body for one message of `kind` with its `type` object.
    pub fn body(&mut self, kind: &str, object: Value, context: Option<&str>) -> (String, String) {
        let id = self.next_id();
        let mut m = json!({"from": self.wa_id, "id": id, "timestamp": jiff::Timestamp::now().as_second().to_string(), "type": kind});
        m[kind] = object;
        if let Some(c) = context {
            m["context"] = json!({"from": "15550000000", "id": c});
        }
        (to_ascii_json(&envelope(&self.phone_number_id, &self.wa_id, &self.name, m)), id)
    }

    async fn deliver(&mut self, kind: &str, object: Value, context: Option<&str>) -> Vec<Value> {
        let (body, _) = self.body(kind, object, context);
        let (status, answer) = self.server.post_webhook(&body, Some(SECRET)).await;
        assert_eq!(status, 200, "webhook refused: {answer}");
        self.server.settle().await;
        self.replies()
    }

    /// Messages received from this customer's business number since the last call.
    pub fn replies(&mut self) -> Vec<Value> {
        let all = self.received();
        let new = all[self.seen..].to_vec();
        self.seen = all.len();
        new
    }

    pub async fn deliver_raw(&mut self, kind: &str, object: Value) -> Vec<Value> {
        self.deliver(kind, object, None).await
    }

    pub async fn text(&mut self, body: &str) -> Vec<Value> {
        self.deliver("text", json!({"body": body}), None).await
    }

    pub async fn location(&mut self, lat: f64, lon: f64, name: &str) -> Vec<Value> {
        self.deliver("location", json!({"latitude": lat, "longitude": lon, "name": name, "address": name}), None).await
    }

    /// Every message received from this customer's business number.
    pub fn received(&self) -> Vec<Value> {
        let all = self.graph.sent_to(&self.wa_id);
        all.into_iter().filter(|m| m["_from"] == self.phone_number_id.as_str()).collect()
    }

    /// Presses the option titled `title` of the newest interactive message received.
    pub async fn press(&mut self, title: &str) -> Vec<Value> {
        let all = self.received();
        let last =
            all.iter().rev().find(|m| m["type"] == "interactive").cloned().expect("no interactive message to press");
        self.press_in(&last, title).await
    }

    /// Presses the option titled `title` (or starting with it) of `message`.
    pub async fn press_in(&mut self, message: &Value, title: &str) -> Vec<Value> {
        let (id, full, kind) =
            find_option(message, title).unwrap_or_else(|| panic!("no option {title:?} in {message}"));
        let wamid = message["_wamid"].as_str().map(String::from);
        let key = if kind == "button" { "button_reply" } else { "list_reply" };
        self.deliver("interactive", json!({"type": key, key: {"id": id, "title": full}}), wamid.as_deref()).await
    }
}

/// Finds an option by title prefix: (id, title, "button" | "list").
pub fn find_option(message: &Value, title: &str) -> Option<(String, String, &'static str)> {
    carewell::channel::whatsapp::render::offered_options(message)
        .into_iter()
        .find(|o| o.title.starts_with(title))
        .map(|o| (o.id, o.title, if o.reply_kind == "button_reply" { "button" } else { "list" }))
}

/// A typed booking from first message to "yes" at the summary (no waiting needed between them).
pub fn booking_script() -> Vec<String> {
    vec![
        "I'd like to book a full wash".into(),
        "Jane Doe".into(),
        "one time".into(),
        "Toyota Corolla ABC-1234".into(),
        "Villa 12, Al Wasl Road, Jumeirah".into(),
        format!("{} 10am", open_day()),
        "yes".into(),
    ]
}

/// A weekday name 2–6 days ahead on which the business is open (not Friday), so "<day> 10am" is
/// always a valid visit time whatever day the tests run.
pub fn open_day() -> String {
    let tz = jiff::tz::TimeZone::get("Asia/Dubai").unwrap();
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    (2..=6)
        .map(|d| today.checked_add(jiff::Span::new().days(d)).unwrap())
        .find(|d| d.weekday() != jiff::civil::Weekday::Friday)
        .map(|d| d.strftime("%A").to_string())
        .unwrap()
}

/// The `FLOWS_DIR` of a project copy whose crews never run out, for tests of delivery under load
/// that book many customers at the same time (capacity has tests of its own).
pub fn roomy_flows() -> String {
    static ROOMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOMY
        .get_or_init(|| {
            let root = copy_project();
            let path = root.join("flows/business.yaml");
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("crews: 3"), "the sample business declares 3 crews");
            std::fs::write(&path, text.replace("crews: 3", "crews: 1000000")).unwrap();
            root.join("flows").to_str().unwrap().to_string()
        })
        .clone()
}

/// A copy of flows/, prompts/ and fixtures/ (with their subfolders) in a fresh directory; returns
/// its root.
pub fn copy_project() -> std::path::PathBuf {
    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let p = entry.unwrap().path();
            let target = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy_dir(&p, &target);
            } else {
                std::fs::copy(&p, target).unwrap();
            }
        }
    }
    let root = std::env::temp_dir().join("carewell-tests").join(format!("project-{}", uuid::Uuid::new_v4().simple()));
    for sub in ["flows", "prompts", "fixtures"] {
        copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(sub), &root.join(sub));
    }
    root
}

/// The text of a sent message (text body or interactive body).
pub fn text_of(m: &Value) -> String {
    m["text"]["body"].as_str().or(m["interactive"]["body"]["text"].as_str()).unwrap_or_default().to_string()
}

/// All texts of `messages`, joined.
pub fn texts(messages: &[Value]) -> String {
    messages.iter().map(text_of).collect::<Vec<_>>().join("\n---\n")
}

/// Fails unless one of `replies` contains `needle`, showing what was said.
pub fn assert_says(replies: &[Value], needle: &str) {
    let all = texts(replies);
    assert!(all.contains(needle), "expected a reply containing {needle:?}, got:\n{all}");
}

// ---------------------------------------------------------------- a network between us and a database

/// A TCP proxy on loopback in front of a server (PostgreSQL), that can cut every connection and
/// refuse new ones for a while: what the service sees of a database restart or a network blip.
pub struct BlipProxy {
    /// The port to connect to instead of the server's.
    pub port: u16,
    down_until: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl BlipProxy {
    /// Starts forwarding a free loopback port to `target` (`host:port`).
    pub async fn start(target: &str) -> BlipProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down_until: std::sync::Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
        let connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (down, conns, target) = (down_until.clone(), connections.clone(), target.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if down.lock().unwrap().is_some_and(|until| Instant::now() < until) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        BlipProxy { port, down_until, connections }
    }

    /// Cuts every open connection and refuses new ones for `duration`.
    pub fn cut(&self, duration: Duration) {
        *self.down_until.lock().unwrap() = Some(Instant::now() + duration);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// `url` (`scheme://user@host:port/db`) through this proxy.
    pub fn url_through(&self, url: &str) -> String {
        let (head, rest) = url.split_once('@').expect("a URL with user@host");
        let (_, path) = rest.split_once('/').expect("a URL with a database");
        format!("{head}@127.0.0.1:{}/{path}", self.port)
    }

    /// The `host:port` of `url`.
    pub fn target_of(url: &str) -> String {
        let (_, rest) = url.split_once('@').expect("a URL with user@host");
        rest.split_once('/').map(|(host, _)| host.to_string()).expect("a URL with a database")
    }
}

/// Runs `carewell users add` against `db` with `password` on standard input: whether it
/// succeeded, and what it printed.
pub fn users_add(db: &Db, name: &str, role: &str, password: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carewell"))
        .args(["users", "add", "--name", name, "--role", role])
        .env("DATABASE_URL", db.url())
        .env("FLOWS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/flows"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Sends one signed message, retrying while the server is down (as WhatsApp does).
pub async fn deliver_until_accepted(url: &std::sync::Arc<std::sync::Mutex<String>>, body: &str) -> usize {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let target = url.lock().unwrap().clone();
        let sent = reqwest::Client::new()
            .post(format!("{target}/webhooks/whatsapp"))
            .timeout(Duration::from_secs(2))
            .header(
                "X-Hub-Signature-256",
                carewell::channel::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes()),
            )
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        if matches!(sent, Ok(r) if r.status().as_u16() == 200) {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
