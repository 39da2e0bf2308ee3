//! Two businesses on one installation (TENANTS_DIR), against the real server with a fake ERP
//! each: the same customer number writing to both stays two customers; each business's
//! credentials (sealed in its tenant.yaml) reach only its own ERP; an admin of one gets 404 on
//! every resource of the other; a hot reload of one leaves the other untouched; a number no
//! tenant claims is not answered; on SQLite and PostgreSQL.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carewell::fakes::FakeErp;
use carewell::tenant::TenantId;
use carewell::tenant::secret::SecretsKey;
use common::*;
use serde_json::{Value, json};

const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
/// The fake Graph API's two numbers, one per business.
const SPARKLE_NUMBER: &str = carewell::fakes::PHONE_NUMBER_ID;
const SHINE_NUMBER: &str = carewell::fakes::SECOND_PHONE_NUMBER_ID;
const SPARKLE_TOKEN: &str = "sparkle-break-glass";
const SHINE_TOKEN: &str = "shine-break-glass";
const CUSTOMER: &str = "971500000777";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// A tenant folder: the sample flows, prompts and knowledge, renamed to `name` with site key
/// `site`, and a tenant.yaml whose secrets are sealed for `id`.
fn tenant(dir: &Path, id: &str, name: &str, site: &str, number: &str, erp: &FakeErp, admin_token: &str) {
    tenant_with(dir, id, name, site, number, erp, admin_token, "");
}

/// [`tenant`] with `more` appended to its tenant.yaml (quotas).
#[allow(clippy::too_many_arguments)]
fn tenant_with(
    dir: &Path,
    id: &str,
    name: &str,
    site: &str,
    number: &str,
    erp: &FakeErp,
    admin_token: &str,
    more: &str,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let folder = dir.join(id);
    copy_dir(&root.join("flows"), &folder.join("flows"));
    copy_dir(&root.join("prompts"), &folder.join("prompts"));
    std::fs::create_dir_all(folder.join("fixtures")).unwrap();
    std::fs::copy(root.join("fixtures/knowledge.yaml"), folder.join("fixtures/knowledge.yaml")).unwrap();
    let business = std::fs::read_to_string(folder.join("flows/business.yaml")).unwrap();
    // Room for every test booking at one time (the sample has 3 crews).
    let business = business
        .replace("name: Sparkle Doorstep Car Care", &format!("name: {name}"))
        .replace("key: sparkle-website", &format!("key: {site}"))
        .replace("crews: 3", "crews: 1000000");
    std::fs::write(folder.join("flows/business.yaml"), business).unwrap();
    let key = SecretsKey::from_hex(KEY).unwrap();
    let tid = TenantId::parse(id).unwrap();
    let yaml = format!(
        "name: {name}\nwhatsapp:\n  phone_number_ids: [\"{number}\"]\nerp:\n  base_url: {}\n  api_key: {}\n  api_secret: {}\nadmin_token: {}\n",
        erp.url,
        key.seal(&tid, if id == "sparkle" { carewell::fakes::ERP_KEY.0 } else { "shine-key" }),
        key.seal(&tid, if id == "sparkle" { carewell::fakes::ERP_KEY.1 } else { "shine-secret" }),
        key.seal(&tid, admin_token),
    ) + more;
    std::fs::write(folder.join("tenant.yaml"), yaml).unwrap();
}

struct Two {
    _dir: TempDir,
    dir: PathBuf,
    fakes: Fakes,
    shine_erp: FakeErp,
    server: Server,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(db: &Db) -> Two {
    let dir = std::env::temp_dir().join("carewell-tests").join(format!("tenants-{}", uuid::Uuid::new_v4().simple()));
    let fakes = Fakes::new(None);
    let shine_erp = FakeErp::start_with_key("shine-key", "shine-secret");
    // The sparkle tenant's key is the default fake ERP's.
    tenant(&dir, "sparkle", "Sparkle Car Care", "sparkle-website", SPARKLE_NUMBER, &fakes.erp, SPARKLE_TOKEN);
    tenant(&dir, "shine", "Shine Mobile Wash", "shine-website", SHINE_NUMBER, &shine_erp, SHINE_TOKEN);
    let server = Server::start_with(
        db,
        &fakes,
        &[
            ("TENANTS_DIR", dir.to_str().unwrap()),
            ("TENANT_SECRETS_KEY", KEY),
            ("ADMIN_TOKEN", ""),
            // The test's admin calls come quickly from one address.
            ("RATE_ADMIN_PER_SECOND", "1000"),
        ],
    );
    Two { _dir: TempDir(dir.clone()), dir, fakes, shine_erp, server }
}

async fn admin(server: &Server, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", server.url);
    let req = match method {
        "GET" => http.get(url),
        "PUT" => http.put(url).json(&body),
        "PATCH" => http.patch(url).json(&body),
        "DELETE" => http.delete(url),
        _ => http.post(url).json(&body),
    };
    let resp = req.bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn texts(replies: &[Value]) -> String {
    replies.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")
}

async fn both(db: Db) {
    let t = start(&db);
    let graph = &t.fakes.graph;
    let mut at_sparkle = Customer::on_number(&t.server, graph, CUSTOMER, SPARKLE_NUMBER);
    let mut at_shine = Customer::on_number(&t.server, graph, CUSTOMER, SHINE_NUMBER);

    // The same number writes to both businesses: each answers in its own name.
    let sparkle_hello = at_sparkle.text("hi").await;
    let shine_hello = at_shine.text("hi").await;
    assert!(texts(&sparkle_hello).contains("Sparkle Car Care"), "{}\n{}", texts(&sparkle_hello), t.server.log());
    assert!(texts(&shine_hello).contains("Shine Mobile Wash"), "{}", texts(&shine_hello));
    assert!(!texts(&shine_hello).contains("Sparkle"), "{}", texts(&shine_hello));

    // Each admin sees its own conversation with that number, and not the other's.
    let (status, list) = admin(&t.server, SPARKLE_TOKEN, "GET", "/admin/conversations", json!({})).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["conversations"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, vec![at_sparkle.conversation_id().as_str()], "{list}");
    let (_, list) = admin(&t.server, SHINE_TOKEN, "GET", "/admin/conversations", json!({})).await;
    let ids: Vec<&str> = list["conversations"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, vec![at_shine.conversation_id().as_str()], "{list}");

    // An admin of one business gets 404 on the other's resources, by id or by number.
    let shine_conversation = at_shine.conversation_id();
    for path in [format!("/admin/conversations/{shine_conversation}"), format!("/admin/conversations/{CUSTOMER}")] {
        let (status, body) = admin(&t.server, SPARKLE_TOKEN, "GET", &path, json!({})).await;
        let shows_shine = body.to_string().contains(&shine_conversation);
        assert!(!shows_shine, "{path}: {body}");
        if path.contains(':') {
            assert_eq!(status, 404, "{path}: {body}");
        }
    }
    let (status, body) = admin(
        &t.server,
        SPARKLE_TOKEN,
        "POST",
        &format!("/admin/conversations/{shine_conversation}/takeover"),
        json!({"agent": "sam"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = admin(&t.server, SHINE_TOKEN, "GET", "/admin/knowledge", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let shine_items = body["items"].as_array().map_or(0, Vec::len);
    assert!(shine_items > 0, "each tenant's knowledge file is imported into its own base: {body}");
    let (status, body) = admin(
        &t.server,
        SPARKLE_TOKEN,
        "POST",
        "/admin/knowledge",
        json!({"title": "Sparkle's secret offer", "question": "what is the secret offer?", "answer": "Ten percent off on Tuesdays.", "keywords": ["offer"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["item"]["id"].as_str().unwrap().to_string();
    let (status, _) = admin(&t.server, SHINE_TOKEN, "GET", &format!("/admin/knowledge/{id}"), json!({})).await;
    assert_eq!(status, 404, "another tenant's knowledge item is not found");
    let (_, body) = admin(&t.server, SHINE_TOKEN, "GET", "/admin/knowledge", json!({})).await;
    assert_eq!(body["items"].as_array().map_or(0, Vec::len), shine_items, "{body}");

    // A hand-off, a user and a website chat of one business are not the other's.
    let asked = at_shine.text("I want to talk to a person").await;
    assert!(texts(&asked).contains("member of our team"), "{}", texts(&asked));
    t.server.settle().await;
    let (_, shine_handoffs) = admin(&t.server, SHINE_TOKEN, "GET", "/admin/handoffs?status=all", json!({})).await;
    let handoff = shine_handoffs["handoffs"][0]["id"].as_i64().expect("shine's hand-off is listed for shine");
    let (_, sparkle_handoffs) = admin(&t.server, SPARKLE_TOKEN, "GET", "/admin/handoffs?status=all", json!({})).await;
    assert_eq!(sparkle_handoffs["handoffs"].as_array().map_or(0, Vec::len), 0, "{sparkle_handoffs}");
    let (status, body) =
        admin(&t.server, SPARKLE_TOKEN, "POST", &format!("/admin/handoffs/{handoff}/resolve"), json!({"note": "x"}))
            .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = admin(
        &t.server,
        SHINE_TOKEN,
        "POST",
        "/admin/users",
        json!({"name": "shine-owner", "role": "admin", "password": "a long enough password"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        admin(&t.server, SPARKLE_TOKEN, "PATCH", "/admin/users/shine-owner", json!({"disabled": true})).await;
    assert_eq!(status, 404, "{body}");
    let (_, users) = admin(&t.server, SPARKLE_TOKEN, "GET", "/admin/users", json!({})).await;
    assert!(!users.to_string().contains("shine-owner"), "{users}");
    let http = reqwest::Client::new();
    let session: Value = http
        .post(format!("{}/widget/sessions", t.server.url))
        .header("Origin", "http://localhost:8080")
        .json(&json!({"site": "shine-website"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["session"].as_str().expect("a session on shine's site").to_string();
    let sent = http
        .post(format!("{}/widget/sessions/{id}/messages", t.server.url))
        .header("Origin", "http://localhost:8080")
        .bearer_auth(session["token"].as_str().unwrap())
        .json(&json!({"client_id": "c1", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 202);
    t.server.settle().await;
    let web_conversation = format!("web.shine-website:{id}");
    let (_, list) = admin(&t.server, SHINE_TOKEN, "GET", "/admin/conversations", json!({})).await;
    assert!(list.to_string().contains(&web_conversation), "the site's chat is shine's: {list}");
    let (status, _) =
        admin(&t.server, SPARKLE_TOKEN, "GET", &format!("/admin/conversations/{web_conversation}"), json!({})).await;
    assert_eq!(status, 404);

    // A hot reload of one business leaves the other untouched.
    let business = t.dir.join("sparkle/flows/business.yaml");
    let edited = std::fs::read_to_string(&business).unwrap().replace("name: Sparkle Car Care", "name: Sparkle Renamed");
    std::fs::write(&business, edited).unwrap();
    let (status, body) = admin(&t.server, SPARKLE_TOKEN, "POST", "/admin/flows/reload", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let mut later_sparkle = Customer::on_number(&t.server, graph, "971500000888", SPARKLE_NUMBER);
    let mut later_shine = Customer::on_number(&t.server, graph, "971500000888", SHINE_NUMBER);
    let renamed = later_sparkle.text("hi").await;
    let untouched = later_shine.text("hi").await;
    assert!(texts(&renamed).contains("Sparkle Renamed"), "{}", texts(&renamed));
    assert!(texts(&untouched).contains("Shine Mobile Wash"), "{}", texts(&untouched));

    // A message on a number no tenant claims is acknowledged and not answered.
    let mut stranger = Customer::on_number(&t.server, graph, "971500000999", "3003");
    let nothing = stranger.text("hi").await;
    assert!(nothing.is_empty(), "{}", texts(&nothing));
    assert!(t.server.log().contains("tenant.unknown_number"), "the refusal is logged");

    // Each business's ERP was asked with its own credentials (opened from its sealed
    // tenant.yaml), and never with the other's: each fake ERP accepts only its own key.
    assert!(!t.fakes.erp.requests().is_empty() && !t.shine_erp.requests().is_empty(), "both ERPs were asked");
    assert_eq!((t.fakes.erp.refused(), t.shine_erp.refused()), (0, 0), "no ERP saw another's key");

    // Every turn of the untouched business replays the same on its own flows.
    t.server.settle().await;
    let store = t.server.store().await;
    let shine = TenantId::parse("shine").unwrap();
    let flows = carewell::flow::FlowSet::load(&t.dir.join("shine/flows")).unwrap();
    let replayed = carewell::replay::replay_all(&store, &shine, &flows).await.unwrap();
    assert!(replayed.len() >= 4, "{}", carewell::replay::render(&replayed));
    assert!(replayed.iter().all(|r| r.differences.is_empty()), "{}", carewell::replay::render(&replayed));
    if let Db::Postgres(url) = &t.server.db {
        assert!(!t.server.log().contains("store.row_security_off"), "the service raised the wall for its reads");
        wall_holds(url, &shine_conversation, std::slice::from_ref(&web_conversation)).await;
    }
}

/// PostgreSQL's row-level security, the second wall: acting as a tenant (as the store does for
/// every read on an operator's behalf), a query with no filter at all sees that tenant's rows
/// only, and with no tenant set, none.
async fn wall_holds(url: &str, shine_conversation: &str, web: &[String]) {
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let seen = |tenant: Option<&'static str>, table: &'static str| {
        let sql = format!("SELECT conversation_id AS id FROM {table}");
        async move {
            let mut conn = AsyncPgConnection::establish(url).await.unwrap();
            conn.transaction::<_, diesel::result::Error, _>(async move |c| {
                if let Some(t) = tenant {
                    diesel::sql_query("SELECT set_config('carewell.tenant', $1, true)")
                        .bind::<diesel::sql_types::Text, _>(t)
                        .execute(c)
                        .await?;
                }
                diesel::sql_query("SET LOCAL ROLE carewell_tenant").execute(c).await?;
                let rows: Vec<Row> = diesel::sql_query(sql).load(c).await?;
                let mut ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
                ids.sort();
                ids.dedup();
                Ok(ids)
            })
            .await
            .unwrap()
        }
    };
    for table in ["turns", "outbox", "inbox"] {
        let mut expected = vec![shine_conversation.to_string(), format!("{SHINE_NUMBER}:971500000888")];
        expected.extend(web.iter().cloned());
        expected.sort();
        assert_eq!(seen(Some("shine"), table).await, expected, "{table}");
        assert!(seen(None, table).await.is_empty(), "{table}: no tenant set, nothing seen");
    }
    let all: i64 =
        diesel::sql_query("SELECT count(*) AS n FROM conversations").get_result::<Count>(&mut conn).await.unwrap().n;
    assert_eq!(all, 5, "the owner (the service's worker) sees every tenant");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn two_tenants_stay_apart_on_sqlite() {
    both(sqlite()).await;
}

#[tokio::test]
async fn two_tenants_stay_apart_on_postgres() {
    both(postgres().await).await;
}

/// Customers per tenant in the crash test (the same numbers write to both businesses), and the
/// SIGKILLs while they are mid-journey.
const CRASH_CUSTOMERS: usize = 25;
const CRASH_KILLS: usize = 6;

/// The crash test with two tenants interleaved: the same customers book by text with both
/// businesses at once while the server is killed at pseudo-random moments and restarted. Each
/// business's ERP (which, like Frappe, makes a second document for a repeated POST) ends with
/// exactly one order per customer, every message is processed once, and no customer of one
/// business hears the other's name.
async fn crash_with_two_tenants(db: Db, prefix: &str) {
    let t = start(&db);
    let env = [
        ("TENANTS_DIR", t.dir.to_str().unwrap().to_string()),
        ("TENANT_SECRETS_KEY", KEY.to_string()),
        ("ADMIN_TOKEN", String::new()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let customers: Vec<String> = (0..CRASH_CUSTOMERS).map(|i| format!("{prefix}{i:03}")).collect();
    let messages = booking_script();
    let mut scripts = Vec::new();
    for wa in &customers {
        for number in [SPARKLE_NUMBER, SHINE_NUMBER] {
            let mut c = Customer::on_number(&t.server, &t.fakes.graph, wa, number);
            scripts.push(messages.iter().map(|m| c.body("text", json!({"body": m}), None).0).collect::<Vec<_>>());
        }
    }
    let server = Arc::new(Mutex::new(Some(t.server)));
    let url = Arc::new(Mutex::new(server.lock().unwrap().as_ref().unwrap().url.clone()));
    let mut drivers = Vec::new();
    for bodies in scripts {
        let url = url.clone();
        drivers.push(tokio::spawn(async move {
            for b in bodies {
                deliver_until_accepted(&url, &b).await;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }));
    }
    let seed = jiff::Timestamp::now().as_nanosecond() as u64;
    let mut rng = seed;
    for _ in 0..CRASH_KILLS {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(150 + (rng >> 33) % 600)).await;
        if let Some(s) = server.lock().unwrap().take() {
            s.kill();
        }
        let fresh = Server::start_with(&db, &t.fakes, &env);
        *url.lock().unwrap() = fresh.url.clone();
        *server.lock().unwrap() = Some(fresh);
    }
    for d in drivers {
        d.await.unwrap();
    }
    let last = server.lock().unwrap().take().unwrap();
    for _ in 0..150 {
        let done = t.fakes.erp.docs("Sales Order").len() >= customers.len()
            && t.shine_erp.docs("Sales Order").len() >= customers.len();
        if done && last.health().await["outbox"]["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last.settle().await;

    let store = last.store().await;
    for (erp, number, other_name) in
        [(&t.fakes.erp, SPARKLE_NUMBER, "Shine Mobile Wash"), (&t.shine_erp, SHINE_NUMBER, "Sparkle Car Care")]
    {
        let orders = erp.docs("Sales Order");
        let keys: HashSet<&str> = orders.iter().filter_map(|o| o["wa_idempotency_key"].as_str()).collect();
        assert_eq!(orders.len(), customers.len(), "{number}: one order per customer (seed {seed})");
        assert_eq!(keys.len(), orders.len(), "{number}: no order twice (seed {seed})");
        assert_eq!(erp.refused(), 0, "{number}: no request with another business's key");
        for wa in &customers {
            let tenant = TenantId::parse(if number == SPARKLE_NUMBER { "sparkle" } else { "shine" }).unwrap();
            let turns = store.turns_of(&tenant, &format!("{number}:{wa}")).await.unwrap();
            let inbox: Vec<i64> = turns.iter().map(|t| t.inbox_id).collect();
            assert_eq!(
                inbox.iter().collect::<HashSet<_>>().len(),
                inbox.len(),
                "{number}:{wa}: each row once (seed {seed})"
            );
            let said = turns
                .iter()
                .filter(|t| serde_json::from_str::<Value>(&t.record).unwrap()["event"]["kind"]["type"] == "text")
                .count();
            assert_eq!(said, messages.len(), "{number}:{wa}: every message processed (seed {seed})");
        }
        for wa in &customers {
            let from_this: Vec<Value> =
                t.fakes.graph.sent_to(wa).into_iter().filter(|m| m["_from"] == number).collect();
            let said = texts(&from_this);
            assert!(said.contains("You're booked"), "{number}:{wa} got its confirmation (seed {seed})");
            assert!(!said.contains(other_name), "{number}:{wa} never heard the other business (seed {seed})");
        }
    }
    eprintln!(
        "two-tenant crash test: {} customers × 2 businesses, {CRASH_KILLS} SIGKILLs, seed {seed}",
        customers.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_interleaved_survive_sigkills_on_sqlite() {
    crash_with_two_tenants(sqlite(), "9715000071").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_interleaved_survive_sigkills_on_postgres() {
    crash_with_two_tenants(postgres().await, "9715000072").await;
}

/// A business over its daily quota of customers: the LLM is switched off for its turns (the
/// turn records why) and the journey carries on by buttons; the other business keeps its LLM.
async fn quota(db: Db) {
    let dir = std::env::temp_dir().join("carewell-tests").join(format!("quota-{}", uuid::Uuid::new_v4().simple()));
    let _cleanup = TempDir(dir.clone());
    let script =
        vec![("hmm the one-tme kind", json!({"slots": [{"slot": "plan", "value": "one_time", "quote": "one-tme"}]}))];
    let llm = carewell::fakes::FakeLlm::start(carewell::fakes::LlmMode::Good, script);
    let fakes = Fakes::new(Some(llm.clone()));
    let shine_erp = FakeErp::start_with_key("shine-key", "shine-secret");
    let one_a_day = "quotas:\n  conversations_per_day: 1\n";
    tenant_with(
        &dir,
        "sparkle",
        "Sparkle Car Care",
        "sparkle-website",
        SPARKLE_NUMBER,
        &fakes.erp,
        SPARKLE_TOKEN,
        one_a_day,
    );
    tenant(&dir, "shine", "Shine Mobile Wash", "shine-website", SHINE_NUMBER, &shine_erp, SHINE_TOKEN);
    let server = Server::start_with(
        &db,
        &fakes,
        &[("TENANTS_DIR", dir.to_str().unwrap()), ("TENANT_SECRETS_KEY", KEY), ("ADMIN_TOKEN", "")],
    );
    let journey = async |c: &mut Customer<'_>| -> (String, usize) {
        c.text("book a full wash").await;
        c.text("Jane Doe").await;
        let before = llm.calls();
        let r = c.text("hmm the one-tme kind").await;
        (texts(&r), llm.calls() - before)
    };

    // The first customer of the day is within the quota: the LLM reads the typo.
    let mut first = Customer::on_number(&server, &fakes.graph, "971500000301", SPARKLE_NUMBER);
    let (said, calls) = journey(&mut first).await;
    assert_eq!(calls, 1, "{said}");
    assert!(said.contains("Which car"), "{said}");

    // The second is over it: no LLM call, the plan is asked again with its buttons, and a press
    // carries the journey on.
    let mut second = Customer::on_number(&server, &fakes.graph, "971500000302", SPARKLE_NUMBER);
    let (said, calls) = journey(&mut second).await;
    assert_eq!(calls, 0, "over the quota, the LLM is not called: {said}");
    assert!(said.contains("one-time visit or a subscription"), "{said}");
    let r = second.press("One-time").await;
    assert!(texts(&r).contains("Which car"), "{}", texts(&r));
    let store = server.store().await;
    let records: Vec<Value> = store
        .turns_of(&TenantId::parse("sparkle").unwrap(), &second.conversation_id())
        .await
        .unwrap()
        .iter()
        .map(|t| serde_json::from_str(&t.record).unwrap())
        .collect();
    assert!(
        records.iter().any(|r| r["guards"]["runs"][0]["outcome"] == "tenant.over_conversation_quota"),
        "the turn records why no LLM read it"
    );

    // The other business has no quota: its customers still get the LLM.
    let mut elsewhere = Customer::on_number(&server, &fakes.graph, "971500000302", SHINE_NUMBER);
    let (said, calls) = journey(&mut elsewhere).await;
    assert_eq!(calls, 1, "{said}");
}

#[tokio::test]
async fn over_its_quota_a_business_runs_without_the_llm_on_sqlite() {
    quota(sqlite()).await;
}

#[tokio::test]
async fn over_its_quota_a_business_runs_without_the_llm_on_postgres() {
    quota(postgres().await).await;
}

/// The race test with two tenants interleaved: two service processes on one PostgreSQL, the
/// same customers booking with both businesses, every other message delivered to both
/// processes. Each conversation's turns are the serial ones (no step twice, none lost), and each
/// business's ERP has one order per customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_and_two_tenants_equal_serial_processing() {
    let db = postgres().await;
    let t = start(&db);
    let env = [
        ("TENANTS_DIR", t.dir.to_str().unwrap().to_string()),
        ("TENANT_SECRETS_KEY", KEY.to_string()),
        ("ADMIN_TOKEN", String::new()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let b = Server::start_with(&db, &t.fakes, &env);
    let customers: Vec<String> = (0..6).map(|i| format!("9715000073{i:02}")).collect();
    let messages = booking_script();
    let mut tasks = Vec::new();
    for (i, wa) in customers.iter().enumerate() {
        for number in [SPARKLE_NUMBER, SHINE_NUMBER] {
            let mut c = Customer::on_number(&t.server, &t.fakes.graph, wa, number);
            let bodies: Vec<String> = messages.iter().map(|m| c.body("text", json!({"body": m}), None).0).collect();
            let (ua, ub) = (t.server.url.clone(), b.url.clone());
            tasks.push(tokio::spawn(async move {
                for (k, body) in bodies.iter().enumerate() {
                    let first = if (i + k) % 2 == 0 { &ua } else { &ub };
                    deliver_until_accepted(&Arc::new(Mutex::new(first.clone())), body).await;
                    if k % 2 == 1 {
                        let other = if first == &ua { ub.clone() } else { ua.clone() };
                        deliver_until_accepted(&Arc::new(Mutex::new(other)), body).await;
                    }
                    tokio::time::sleep(Duration::from_millis(60)).await;
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    t.server.settle().await;
    b.settle().await;
    let store = t.server.store().await;
    for (erp, number, id) in [(&t.fakes.erp, SPARKLE_NUMBER, "sparkle"), (&t.shine_erp, SHINE_NUMBER, "shine")] {
        assert_eq!(erp.docs("Sales Order").len(), customers.len(), "{number}: one order per customer");
        let tenant = TenantId::parse(id).unwrap();
        for wa in &customers {
            let turns = store.turns_of(&tenant, &format!("{number}:{wa}")).await.unwrap();
            let steps: Vec<String> = turns
                .iter()
                .filter(|t| carewell::record::TurnRecord::parse(&t.record).unwrap().event.kind.name() != "erp_delayed")
                .map(|t| t.step_after.clone())
                .collect();
            assert_eq!(
                steps,
                [
                    "booking/name",
                    "booking/plan",
                    "booking/car",
                    "booking/address",
                    "booking/time",
                    "booking/summary",
                    "booking/submit",
                    "-"
                ],
                "{number}:{wa}"
            );
            let from_this: Vec<Value> =
                t.fakes.graph.sent_to(wa).into_iter().filter(|m| m["_from"] == number).collect();
            assert_eq!(texts(&from_this).matches("You're booked").count(), 1, "{number}:{wa}: one confirmation");
        }
    }
}
