//! The console's pages in a real browser (headless Chromium; see `common::browser`), on SQLite
//! and on PostgreSQL: an owner logs in with the keyboard-reachable form, reads the dashboard
//! (its figures agree with the JSON API's), filters it by flow, searches transcripts, opens a
//! conversation's `explain` timeline and the audit trail, answers a flagged question, edits and
//! approves a complaint's draft reply, and logs out. Every page is checked
//! for what a keyboard and a screen reader need (one `h1`, headings in order, labelled fields,
//! named links and charts, captioned tables, text contrast of at least 4.5:1) and leaves a
//! screenshot at `target/console-<page>.png`.

mod common;

use common::browser::Browser;
use common::*;
use serde_json::{Value, json};

async fn check_page(b: &Browser, name: &str) {
    let problems = b.accessibility_problems().await;
    assert!(problems.is_empty(), "{name}: {problems:?}\n{}", b.text().await);
    b.screenshot(&format!("console-{name}")).await;
}

/// The figures in the row of the journeys table headed `title`.
async fn journey_row(b: &Browser, title: &str) -> Vec<String> {
    let script = "const row = [...document.querySelectorAll('#journeys + table tbody tr')].find(r => r.querySelector('th').textContent === arguments[0]); return row ? [...row.querySelectorAll('td')].map(td => td.textContent) : null;";
    let cells = b.run(script, json!([title])).await;
    serde_json::from_value(cells.clone()).unwrap_or_else(|_| panic!("no row {title:?} in the journeys table: {cells}"))
}

async fn the_console_in_a_browser(db: Db) {
    let b = Browser::start().await;
    let fakes = Fakes::new(None);
    let server = Server::start(&db, &fakes);
    let mut booker = Customer::new(&server, &fakes.graph, "971500009201");
    for line in booking_script() {
        booker.text(&line).await;
    }
    let mut quitter = Customer::new(&server, &fakes.graph, "971500009202");
    quitter.text("book a full wash").await;
    quitter.text("Samir Haddad").await;
    let mut asker = Customer::new(&server, &fakes.graph, "971500009203");
    assert_says(&asker.text("Do you do ceramic coating?").await, "I don't have an answer to that");
    server.settle().await;
    let (ok, out) = users_add(&server.db, "olivia", "owner", "a long owner password");
    assert!(ok, "{out}");
    let (_, api) = server.admin("GET", "/admin/dashboard", Value::Null).await;
    let booking = api["flows"].as_array().unwrap().iter().find(|f| f["flow"] == "booking").unwrap().clone();

    // Nobody logged in: the login page. Its first Tab stop is the skip link.
    b.open(&format!("{}/console", server.url)).await;
    assert!(b.url().await.ends_with("/console/login"), "{}", b.url().await);
    b.keys("\u{E004}").await;
    assert_eq!(b.run("return document.activeElement.textContent", json!([])).await, "Skip to content");
    b.type_into("#name", "olivia").await;
    b.type_into("#password", "not the password").await;
    b.click("form.stack button").await;
    b.wait_for("Wrong name or password.").await;
    check_page(&b, "login").await;
    b.type_into("#password", "a long owner password").await;
    b.keys("\u{E007}").await;

    // The dashboard: the same figures as the API.
    b.wait_for("Conversations begun").await;
    assert!(b.url().await.ends_with("/console"), "{}", b.url().await);
    let row = journey_row(&b, "Book a car-care service").await;
    assert_eq!(row[0], booking["started"].to_string(), "{row:?} vs {booking}");
    assert_eq!(row[2], booking["confirmed"].to_string(), "{row:?} vs {booking}");
    assert_eq!((row[0].as_str(), row[2].as_str(), row[6].as_str()), ("2", "1", "50.0%"));
    let page = b.text().await;
    assert!(page.contains("Funnel: Book a car-care service") && page.contains("Dead letters now"), "{page}");
    check_page(&b, "dashboard").await;
    // One flow only.
    b.run("document.getElementById('flow').value = 'complaint'", json!([])).await;
    b.click("form.filters button").await;
    b.wait_for("Funnel: Make a complaint").await;
    assert!(b.url().await.contains("flow=complaint"));
    assert!(!b.text().await.contains("Funnel: Book a car-care service"));

    // Transcript search, then the conversation's timeline.
    b.click("nav a[href='/console/conversations']").await;
    b.wait_for("latest turns").await;
    b.type_into("#text", "samir").await;
    b.click("form.filters button").await;
    b.wait_for("matching turns").await;
    let page = b.text().await;
    assert!(
        page.contains("1 matching turns") && page.contains("Samir Haddad") && page.contains("+971500009202"),
        "{page}"
    );
    assert!(!page.contains("+971500009201"), "the booker never wrote Samir: {page}");
    check_page(&b, "conversations").await;
    b.click("td a[href^='/console/explain/']").await;
    b.wait_for("customer +971500009202").await;
    check_page(&b, "explain").await;

    // The audit trail holds the failed and the good login, from the browser's address.
    b.click("nav a[href='/console/audit']").await;
    b.wait_for("login.ok").await;
    let page = b.text().await;
    assert!(page.contains("login.failed") && page.contains("127.0.0.1"), "{page}");
    check_page(&b, "audit").await;

    // The knowledge base: an entry added by form, then the flagged question answered by a new
    // entry on the review page; the customer's question is then answered.
    b.click("nav a[href='/console/knowledge']").await;
    b.wait_for("The knowledge base at revision").await;
    check_page(&b, "knowledge").await;
    b.type_into("#new-title", "Parking").await;
    b.type_into("#new-answer", "Our van parks on the street or in your building's visitor parking.").await;
    b.type_into("#new-keywords", "parking, park").await;
    b.click("form[action='/console/knowledge/entries'] button").await;
    b.wait_for("Saved parking").await;
    b.click("a[href='/console/knowledge/review']").await;
    b.wait_for("Do you do ceramic coating?").await;
    check_page(&b, "knowledge-review").await;
    b.type_into("#title-0", "Ceramic coating").await;
    b.type_into("#answer-0", "Yes: ceramic coating is AED 900 and lasts two years.").await;
    b.click("form[aria-label='Answer with a new entry'] button").await;
    b.wait_for("Saved ceramic_coating").await;
    assert_says(&asker.text("Do you do ceramic coating?").await, "AED 900 and lasts two years");

    // A complaint's draft reply, edited and approved on the replies page, reaches the customer.
    let mut complainer = Customer::new(&server, &fakes.graph, "971500009204");
    complainer.text("hi").await;
    complainer.press("Make a complaint").await;
    complainer.press("Late or no-show").await;
    complainer.text("Nobody came at 9").await;
    assert_says(&complainer.press("Confirm").await, "Your complaint is filed");
    let (status, polled) = server.admin("POST", "/admin/replies/poll", Value::Null).await;
    assert_eq!((status, polled["drafted"].as_u64()), (200, Some(1)), "{polled}");
    b.click("nav a[href='/console/replies']").await;
    b.wait_for("Nobody came at 9").await;
    check_page(&b, "replies").await;
    let seen = fakes.graph.count_to("971500009204");
    b.run(
        "document.querySelector('textarea[name=text]').value = 'We are sorry nobody came. A crew will call you today.'",
        json!([]),
    )
    .await;
    b.click("form[action$='/approve'] button").await;
    b.wait_for("Sent the reply to").await;
    assert!(b.text().await.contains("No draft is waiting for review."), "{}", b.text().await);
    let got = fakes.graph.wait_beyond("971500009204", seen, std::time::Duration::from_secs(10)).await;
    assert_says(&got, "A crew will call you today.");

    // Logging out ends the session: the console asks to log in again.
    b.click("header form button").await;
    b.wait_for("Log in").await;
    b.open(&format!("{}/console/audit", server.url)).await;
    assert!(b.url().await.ends_with("/console/login"), "{}", b.url().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_browser_on_sqlite() {
    the_console_in_a_browser(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_browser_on_postgres() {
    the_console_in_a_browser(postgres().await).await;
}
