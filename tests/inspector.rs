//! The inspector page in a real browser: headless Chromium, driven through chromedriver's
//! WebDriver protocol, books a car wash by typing and clicking as an operator would, and the run
//! leaves a screenshot at `target/inspector.png`. Needs Chromium and chromedriver (see
//! `common::browser`): without them it fails.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;
use serde_json::json;

async fn type_and_send(d: &Browser, text: &str) {
    d.type_into("#text", text).await;
    d.click("#send").await;
}

/// Clicks the last rendered option button whose title starts with `title`.
async fn press(d: &Browser, title: &str) {
    let script = "const t = arguments[0]; const bs = [...document.querySelectorAll('.options button')].filter(b => b.firstChild.textContent.startsWith(t)); if (!bs.length) return false; bs[bs.length - 1].click(); return true;";
    let started = Instant::now();
    loop {
        if d.run(script, json!([title])).await == json!(true) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no option {title:?} on the page:\n{}", d.text().await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_books_through_the_inspector_in_a_real_browser() {
    let d = Browser::start().await;
    let fakes = Fakes::new(None);
    // The inspector talks to the sandbox: no Graph API and no ERP configured.
    let server = Server::start_with(&sqlite(), &fakes, &[("WHATSAPP_API_BASE_URL", ""), ("ERP_BASE_URL", "")]);

    d.open(&format!("{}/inspector?token={ADMIN_TOKEN}", server.url)).await;
    d.wait_for("turns:").await;
    type_and_send(&d, "Hi").await;
    d.wait_for("Welcome to Sparkle").await;
    press(&d, "Book a service").await;
    d.wait_for("first and last name").await;
    type_and_send(&d, "Jane Doe").await;
    d.wait_for("Which service").await;
    press(&d, "Full Wash").await;
    d.wait_for("one-time visit or a subscription").await;
    press(&d, "One-time").await;
    d.wait_for("Which car").await;
    type_and_send(&d, "Toyota Corolla ABC-1234").await;
    d.wait_for("Where should we come").await;
    d.click("#location").await;
    d.wait_for("When would suit you").await;
    press(&d, "").await;
    d.wait_for("Here is your booking").await;
    // The side panel shows the step and the slots.
    let page = d.text().await;
    assert!(page.contains("booking/summary") && page.contains("Full Wash") && page.contains("ABC-1234"), "{page}");
    press(&d, "Confirm").await;
    d.wait_for("You're booked, Jane!").await;
    d.click("#export").await;
    d.wait_for("Exported from the inspector").await;

    let problems = d.accessibility_problems().await;
    assert!(problems.is_empty(), "the inspector for a keyboard and a screen reader: {problems:?}");
    d.screenshot("inspector").await;
}
