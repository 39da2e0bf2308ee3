//! The knowledge base end to end, on SQLite and PostgreSQL: the knowledge file imported at start,
//! an owner adding an entry and uploading a price list through the admin API, customers asking
//! on WhatsApp before and after, clear refusals of bad uploads, history and audit; a second
//! instance answering from a change on its next turn; and an LLM that words answers, whose
//! invented price is caught and whose faithful answer is sent.

mod common;

use common::*;
use serde_json::{Value, json};

async fn upload(server: &Server, query: &str, content_type: &str, body: &'static [u8]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/admin/knowledge/documents?{query}", server.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const PRICE_LIST: &[u8] = b"# Extras\n\n## Ceramic coating\nA ceramic coating costs AED 900 and protects the paint for two years.\n\n## Headlight restoration\nCloudy headlights made clear again for AED 120 a pair.\n";

async fn an_owner_teaches_the_bot(db: Db) {
    let fakes = Fakes::new(None);
    let server = Server::start(&db, &fakes);

    // The knowledge file was imported at start, one revision per fact.
    let (status, base) = server.admin("GET", "/admin/knowledge", Value::Null).await;
    assert_eq!(status, 200, "{base}");
    let items = base["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["id"] == "hours" && i["source"] == "fixtures/knowledge.yaml"), "{base}");
    assert!(base["revision"].as_i64().unwrap() >= items.len() as i64);

    let mut c = Customer::new(&server, &fakes.graph, "971500007001");
    let r = c.text("Do you have gift vouchers?").await;
    assert_says(&r, "I don't have an answer to that");

    // An entry, then the same title in another case is refused.
    let entry = json!({"title": "Gift vouchers", "question": "Do you have gift vouchers?",
                       "answer": "Yes: gift vouchers for any wash, sent by e-mail.", "keywords": ["gift", "present"]});
    let (status, created) = server.admin("POST", "/admin/knowledge", entry.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["item"]["id"], "gift_vouchers");
    let (status, dup) =
        server.admin("POST", "/admin/knowledge", json!({"title": "GIFT vouchers", "answer": "x"})).await;
    assert_eq!((status, dup["error"]["code"].as_str()), (409, Some("knowledge.duplicate_title")), "{dup}");

    let r = c.text("Do you have gift vouchers?").await;
    assert_says(&r, "gift vouchers for any wash");

    // A Markdown price list: one passage per heading.
    let (status, doc) =
        upload(&server, "name=extras.md&title=Extras%20price%20list", "text/markdown", PRICE_LIST).await;
    assert_eq!(status, 201, "{doc}");
    assert_eq!(doc["passages"], 2, "one passage per heading with text: {doc}");
    let r = c.text("How long does a ceramic coating last?").await;
    assert_says(&r, "protects the paint for two years");
    assert!(!texts(&r).contains("Headlight"), "only the passage that answers: {}", texts(&r));

    // Bad uploads are refused with what to do.
    let (status, e) = upload(&server, "name=prices.docx", "application/octet-stream", b"PK\x03\x04").await;
    assert_eq!((status, e["error"]["code"].as_str()), (415, Some("knowledge.unsupported_type")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Markdown"), "{e}");
    let (status, e) = upload(&server, "name=empty.txt", "text/plain", b"  \n").await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("knowledge.no_text")), "{e}");
    let (status, e) = upload(&server, "name=again.md&title=extras%20PRICE%20list", "text/markdown", PRICE_LIST).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("knowledge.duplicate_title")), "{e}");

    // A fix: the next question gets the new answer; the item keeps its history.
    let fixed = json!({"title": "Gift vouchers", "question": "Do you have gift vouchers?",
                       "answer": "Yes: gift vouchers for any wash or subscription, sent by e-mail or WhatsApp.", "keywords": ["gift"]});
    let (status, _) = server.admin("PUT", "/admin/knowledge/gift_vouchers", fixed).await;
    assert_eq!(status, 200);
    let r = c.text("do you have gift vouchers").await;
    assert_says(&r, "any wash or subscription");
    let (_, shown) = server.admin("GET", "/admin/knowledge/gift_vouchers", Value::Null).await;
    let actions: Vec<&str> =
        shown["history"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["update", "create"], "{shown}");

    // How a question ranks, and the audit trail.
    let (_, ranked) = server.admin("GET", "/admin/knowledge/search?q=gift%20vouchers", Value::Null).await;
    assert_eq!(ranked["passages"][0]["id"], "gift_vouchers", "{ranked}");
    assert_eq!(ranked["passages"][0]["answered"], true);
    let (_, audit) = server.admin("GET", "/admin/audit?action=knowledge.", Value::Null).await;
    let logged: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["knowledge.create", "knowledge.upload", "knowledge.update"] {
        assert!(logged.contains(&a), "{a} in {logged:?}");
    }

    // The turn record names the passages and their scores.
    let store = server.store().await;
    let turns = store.turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id()).await.unwrap();
    let last = carewell::record::TurnRecord::parse(&turns.last().unwrap().record).unwrap();
    let lookup = last.guards.runs.iter().find(|r| r.guard == "lookup:knowledge").expect("the knowledge lookup ran");
    assert_eq!(lookup.detail["matched"][0]["id"], "gift_vouchers", "{}", lookup.detail);
    assert!(lookup.detail["matched"][0]["score"].as_f64().unwrap() > carewell::knowledge::MIN_SCORE as f64);

    // Deleted, it is no longer known.
    let resp = reqwest::Client::new()
        .delete(format!("{}/admin/knowledge/gift_vouchers", server.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let r = c.text("Do you have gift vouchers?").await;
    assert_says(&r, "I don't have an answer to that");
    server.assert_replays().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_teaches_the_bot_on_sqlite() {
    an_owner_teaches_the_bot(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_teaches_the_bot_on_postgres() {
    an_owner_teaches_the_bot(postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_answers_from_a_change_on_its_next_turn() {
    let db = postgres().await;
    let fakes = Fakes::new(None);
    let a = Server::start(&db, &fakes);
    let b = Server::start(&db, &fakes);
    let mut c = Customer::new(&b, &fakes.graph, "971500007002");
    let r = c.text("Do you sell air fresheners?").await;
    assert_says(&r, "I don't have an answer to that");
    let (status, _) = a
        .admin("POST", "/admin/knowledge", json!({"title": "Air fresheners", "answer": "We sell air fresheners in three scents.", "keywords": ["freshener"]}))
        .await;
    assert_eq!(status, 201);
    let r = c.text("Do you sell air fresheners?").await;
    assert_says(&r, "three scents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_words_answers_and_its_invented_price_is_caught() {
    let invented = json!({"answer": "Yes, we come to Sharjah, and a visit there costs only AED 50.", "passages": ["areas"], "sure": true});
    let faithful = json!({"answer": "We're open Saturday to Thursday, 8:00 to 18:00; on Fridays we're closed.", "passages": ["hours"], "sure": true});
    let unsure = json!({"answer": "We bring our own water.", "passages": ["water"], "sure": false});
    let llm = FakeLlm::start(
        LlmMode::Good,
        vec![
            ("knowledge_answer:Do you come to Sharjah?", invented),
            ("knowledge_answer:When are you open?", faithful),
            ("knowledge_answer:Do I need to give you water?", unsure),
        ],
    );
    let fakes = Fakes::new(Some(llm));
    let server = Server::start(&sqlite(), &fakes);
    let mut c = Customer::new(&server, &fakes.graph, "971500007003");

    let r = c.text("Do you come to Sharjah?").await;
    assert_says(&r, "We come to you anywhere in Dubai and Sharjah");
    assert!(!texts(&r).contains("AED 50"), "the invented price is never sent: {}", texts(&r));

    let r = c.text("When are you open?").await;
    assert_says(&r, "on Fridays we're closed");

    let r = c.text("Do I need to give you water?").await;
    assert_says(&r, "We bring our own water and power");

    let store = server.store().await;
    let runs: Vec<(String, Value)> = store
        .turns_of(&carewell::tenant::TenantId::default(), &c.conversation_id())
        .await
        .unwrap()
        .iter()
        .flat_map(|t| carewell::record::TurnRecord::parse(&t.record).unwrap().guards.runs)
        .filter(|r| r.guard == "llm" && r.detail["output"] == "knowledge_answer")
        .map(|r| (r.outcome, r.detail))
        .collect();
    let outcomes: Vec<&str> = runs.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes, ["knowledge.unsupported", "ok", "knowledge.unsure"], "{runs:?}");
    assert_eq!(runs[0].1["why"], json!([{"kind": "number", "text": "50"}]), "{}", runs[0].1);
    server.assert_replays().await;
}

/// Ask → flagged → corrected → asked again: questions nothing answered, an answer called wrong,
/// an answer thumbed down and an answer followed by a hand-off are flagged; similar questions
/// come as one group; a person answers the group with a new entry and links another question to
/// an existing one, and the same questions are then answered.
async fn the_correction_loop(db: Db) {
    let fakes = Fakes::new(None);
    let server = Server::start(&db, &fakes);
    let mut a = Customer::new(&server, &fakes.graph, "971500007011");
    let mut b = Customer::new(&server, &fakes.graph, "971500007012");
    let mut c = Customer::new(&server, &fakes.graph, "971500007013");
    let mut d = Customer::new(&server, &fakes.graph, "971500007014");

    assert_says(&a.text("Do you do ceramic coating?").await, "I don't have an answer to that");
    assert_says(&b.text("Do you have ceramic coating available?").await, "I don't have an answer to that");
    // A question no keyword routes is still answered from the knowledge base, or flagged.
    let mut f = Customer::new(&server, &fakes.graph, "971500007016");
    assert_says(&f.text("Is a basement ok for you?").await, "We bring our own water and power");
    f.text("Is ceramic coating available?").await;
    assert_says(&c.text("How long does it take?").await, "about 45 minutes");
    c.text("No, that's wrong").await;
    assert_says(&d.text("When are you open?").await, "closed on Fridays");
    let answer_id = d.received().last().and_then(|m| m["id"].as_str().map(String::from));
    d.deliver_raw("reaction", json!({"message_id": answer_id.unwrap_or_else(|| "wamid.OUT".into()), "emoji": "👎🏽"}))
        .await;
    assert_says(&a.text("Do you cover my area?").await, "anywhere in Dubai and Sharjah");
    a.text("talk to a person").await;
    server.settle().await;

    let (status, review) = server.admin("GET", "/admin/knowledge/flags", Value::Null).await;
    assert_eq!(status, 200, "{review}");
    assert_eq!(review["open"], 6, "{review}");
    // The dashboard counts the questions: seven read, four answered.
    let (_, dashboard) = server.admin("GET", "/admin/dashboard", Value::Null).await;
    let t = &dashboard["totals"];
    assert_eq!(
        (t["questions"].as_i64(), t["answered"].as_i64(), t["not_known"].as_i64()),
        (Some(7), Some(4), Some(3)),
        "{t}"
    );
    let groups = review["groups"].as_array().unwrap();
    let ceramic = &groups[0];
    assert_eq!(ceramic["flags"].as_array().unwrap().len(), 3, "the three ceramic questions are one group: {review}");
    assert_eq!(ceramic["reasons"], json!(["unknown"]));
    let reason_of = |question: &str| {
        groups.iter().find(|g| g["question"] == question).map(|g| g["reasons"][0].clone()).unwrap_or(Value::Null)
    };
    assert_eq!(reason_of("How long does it take?"), "wrong", "{review}");
    assert_eq!(reason_of("When are you open?"), "thumbs_down", "{review}");
    assert_eq!(reason_of("Do you cover my area?"), "handoff", "{review}");

    // A new entry answers the ceramic group; the area question is linked to the areas entry.
    let fix = json!({"flags": ceramic["flags"], "entry": {"title": "Ceramic coating", "answer": "Yes: ceramic coating is AED 900 and lasts two years."}});
    let (status, done) = server.admin("POST", "/admin/knowledge/flags/resolve", fix).await;
    assert_eq!((status, done["resolved"].as_i64()), (200, Some(3)), "{done}");
    assert_eq!(done["item"]["question"], "Do you do ceramic coating?");
    assert_eq!(
        done["item"]["also_asked"],
        json!(["Do you have ceramic coating available?", "Is ceramic coating available?"])
    );
    let area = groups.iter().find(|g| g["question"] == "Do you cover my area?").unwrap();
    let (status, linked) =
        server.admin("POST", "/admin/knowledge/flags/resolve", json!({"flags": area["flags"], "link": "areas"})).await;
    assert_eq!(status, 200, "{linked}");
    let (status, both) = server
        .admin(
            "POST",
            "/admin/knowledge/flags/resolve",
            json!({"flags": area["flags"], "link": "areas", "entry": {"title": "x", "answer": "y"}}),
        )
        .await;
    assert_eq!((status, both["error"]["code"].as_str()), (400, Some("knowledge.invalid")));

    let mut e = Customer::new(&server, &fakes.graph, "971500007015");
    assert_says(&e.text("Do you have ceramic coating available?").await, "AED 900 and lasts two years");
    let (_, review) = server.admin("GET", "/admin/knowledge/flags", Value::Null).await;
    assert_eq!(review["open"], 2, "two resolved groups, the wrong and thumbed-down answers remain: {review}");
    server.assert_replays().await;

    // A customer's export holds their flagged questions; erasing them erases those too.
    let (status, doc) = server.admin("GET", "/admin/customers/971500007013/export", Value::Null).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["conversations"][0]["flagged_questions"][0]["question"], "How long does it take?", "{doc}");
    let (status, erased) = server.admin("POST", "/admin/customers/971500007013/erase", json!({})).await;
    assert_eq!(status, 200, "{erased}");
    let (_, review) = server.admin("GET", "/admin/knowledge/flags", Value::Null).await;
    assert!(!review.to_string().contains("How long does it take?"), "{review}");
    assert!(review.to_string().contains(carewell::erasure::ERASED), "{review}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correction_loop_on_sqlite() {
    the_correction_loop(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correction_loop_on_postgres() {
    the_correction_loop(postgres().await).await;
}
