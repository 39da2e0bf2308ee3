//! Replies to complaints and support tickets, reviewed before sending, end to end on SQLite and
//! PostgreSQL: a complaint filed on WhatsApp and tickets opened elsewhere are read from the ERP
//! with a `modified` cursor, each gets one draft from the knowledge base, and nothing reaches the
//! customer until a person approves it. An approved (edited) reply goes as text inside the
//! 24-hour window and as the template outside it, and is posted on the ticket once even when
//! the ERP fails the first post; a second approval changes nothing; a rejected draft flags the
//! knowledge it used. A customer's export holds the replies to them, and erasure erases them.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn frappe_now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

fn draft_for<'a>(drafts: &'a Value, ticket: &str) -> &'a Value {
    drafts["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ticket"] == ticket)
        .unwrap_or_else(|| panic!("a draft for {ticket} in {drafts}"))
}

async fn comments_on(fakes: &Fakes, ticket: &str, needle: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found: Vec<Value> = fakes
            .erp
            .docs("Comment")
            .into_iter()
            .filter(|c| c["reference_name"] == ticket && c["content"].as_str().unwrap_or_default().contains(needle))
            .collect();
        if !found.is_empty() || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn complaints_get_reviewed_replies(db: Db) {
    let fakes = Fakes::new(None);
    let server = Server::start(&db, &fakes);
    let entry = json!({"title": "Late crews", "question": "What if the crew is late?",
        "answer": "If our crew is more than 30 minutes late, your next wash is free.", "keywords": ["late", "crew"]});
    let (status, created) = server.admin("POST", "/admin/knowledge", entry).await;
    assert_eq!(status, 201, "{created}");

    // A complaint on WhatsApp becomes an Issue in the ERP.
    let wa = "971500007101";
    let mut c = Customer::new(&server, &fakes.graph, wa);
    c.text("hi").await;
    c.press("Make a complaint").await;
    c.press("Late or no-show").await;
    c.text("The crew came very late today").await;
    let r = c.press("Confirm").await;
    assert_says(&r, "Your complaint is filed. Reference: ISSUE-");
    let complaint = fakes.erp.docs("Issue")[0]["name"].as_str().unwrap().to_string();

    // Tickets opened elsewhere: one for a customer who never wrote on WhatsApp, one with a question
    // for rejection, one with no WhatsApp number (left to the ERP's e-mail).
    let opened = |name: &str, subject: &str, description: &str, number: Option<&str>| {
        json!({"name": name, "subject": subject, "description": description, "whatsapp_number": number,
               "status": "Open", "modified": frappe_now()})
    };
    fakes.erp.insert(
        "Issue",
        opened(
            "ISS-MAIL-1",
            "Late again",
            "<p>Your crew is always late, what do you do about it?</p>",
            Some("+971500007102"),
        ),
    );
    fakes
        .erp
        .insert("Issue", opened("ISS-MAIL-2", "Opening hours", "<p>When are you open?</p>", Some("+971500007103")));
    fakes.erp.insert("Issue", opened("ISS-MAIL-3", "Refund", "<p>Please call me</p>", None));
    fakes.erp.insert(
        "Issue",
        json!({"name": "ISS-OLD", "subject": "Closed long ago", "whatsapp_number": "+971500007104", "status": "Closed", "modified": frappe_now()}),
    );
    let sent_before = fakes.graph.count_to(wa);

    let (status, polled) = server.admin("POST", "/admin/replies/poll", Value::Null).await;
    assert_eq!(status, 200, "{polled}");
    assert_eq!((polled["drafted"].as_u64(), polled["no_number"].as_u64()), (Some(3), Some(1)), "{polled}");
    let (_, again) = server.admin("POST", "/admin/replies/poll", Value::Null).await;
    assert_eq!(again["drafted"], 0, "one draft per ticket: {again}");

    let (status, pending) = server.admin("GET", "/admin/replies", Value::Null).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["drafts"].as_array().unwrap().len(), 3, "{pending}");
    let d = draft_for(&pending, &complaint);
    let draft = d["draft"].as_str().unwrap();
    assert!(draft.contains("your next wash is free") && draft.contains(&complaint), "{draft}");
    assert!(d["passages"].as_str().unwrap().contains("late_crews"), "{d}");
    assert_eq!(d["details"], "The crew came very late today");
    assert_eq!(fakes.graph.count_to(wa), sent_before, "nothing is sent before a person approves");

    // Approved with an edit: sent as text (the customer wrote minutes ago) and posted on the
    // ticket once, although the ERP fails the first post.
    fakes.erp.log.lock().unwrap().fail_posts = 1;
    let edited = "Sorry about today. Your next wash is free, and the crew lead will call you.";
    let path = format!("/admin/replies/{}/approve", d["id"]);
    let (status, approved) = server.admin("POST", &path, json!({"text": edited})).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("approved")), "{approved}");
    let got = fakes.graph.wait_beyond(wa, sent_before, Duration::from_secs(10)).await;
    assert_says(&got, edited);
    let posted = comments_on(&fakes, &complaint, "the crew lead will call you").await;
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(posted[0]["content"].as_str().unwrap().contains("ticket-reply-"), "{posted:?}");
    let (status, twice) = server.admin("POST", &path, json!({"text": "something else"})).await;
    assert_eq!((status, twice["error"]["code"].as_str()), (409, Some("tickets.reviewed")), "{twice}");
    server.settle().await;
    assert_eq!(fakes.graph.count_to(wa), sent_before + 1, "sent once");
    assert_eq!(comments_on(&fakes, &complaint, "crew lead").await.len(), 1, "posted once");

    // A customer who never wrote: the template, with the reply on one line.
    let mail = draft_for(&pending, "ISS-MAIL-1");
    let (status, _) = server.admin("POST", &format!("/admin/replies/{}/approve", mail["id"]), Value::Null).await;
    assert_eq!(status, 200);
    let got = fakes.graph.wait_beyond("971500007102", 0, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:?}\n{}", server.log());
    assert_eq!(got[0]["type"], "template", "{got:?}");
    assert_eq!(got[0]["template"]["name"], "ticket_update");
    let params = &got[0]["template"]["components"][0]["parameters"];
    assert_eq!(params[0]["text"], "ISS-MAIL-1");
    let reply = params[1]["text"].as_str().unwrap();
    assert!(reply.contains("next wash is free") && !reply.contains('\n'), "{reply}");
    assert_eq!(comments_on(&fakes, "ISS-MAIL-1", "next wash is free").await.len(), 1);

    // Rejected: nothing sent, the knowledge it used flagged with the reason.
    let hours = draft_for(&pending, "ISS-MAIL-2");
    let path = format!("/admin/replies/{}/reject", hours["id"]);
    let (status, e) = server.admin("POST", &path, json!({"reason": " "})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("tickets.no_reason")), "{e}");
    let (status, rejected) = server.admin("POST", &path, json!({"reason": "We open at 7 now"})).await;
    assert_eq!((status, rejected["status"].as_str()), (200, Some("rejected")), "{rejected}");
    let (_, flags) = server.admin("GET", "/admin/knowledge/flags", Value::Null).await;
    let groups = flags["groups"].to_string();
    assert!(groups.contains("Opening hours") && groups.contains("rejected_reply"), "{flags}");
    server.settle().await;
    assert_eq!(fakes.graph.count_to("971500007103"), 0, "a rejected draft is never sent");

    let (_, audit) = server.admin("GET", "/admin/audit?action=reply.", Value::Null).await;
    let logged: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(logged.iter().filter(|a| **a == "reply.approve").count(), 2, "{logged:?}");
    assert!(logged.contains(&"reply.reject"), "{logged:?}");
    server.assert_replays().await;

    // The customer's export holds the reply to their complaint; erasing them erases their words
    // in it.
    let (status, doc) = server.admin("GET", &format!("/admin/customers/{wa}/export"), Value::Null).await;
    assert_eq!(status, 200, "{doc}");
    let held = &doc["conversations"][0]["ticket_replies"][0];
    assert_eq!(
        (held["ticket"].as_str(), held["final_text"].as_str()),
        (Some(complaint.as_str()), Some(edited)),
        "{doc}"
    );
    let (status, erased) = server.admin("POST", &format!("/admin/customers/{wa}/erase"), json!({})).await;
    assert_eq!(status, 200, "{erased}");
    let (_, left) = server.admin("GET", "/admin/replies?status=all", Value::Null).await;
    let left = draft_for(&left, &complaint);
    assert_eq!(left["details"], carewell::erasure::ERASED, "{left}");
    assert_eq!(left["final_text"], carewell::erasure::ERASED, "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_get_reviewed_replies_on_sqlite() {
    complaints_get_reviewed_replies(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_get_reviewed_replies_on_postgres() {
    complaints_get_reviewed_replies(postgres().await).await;
}
