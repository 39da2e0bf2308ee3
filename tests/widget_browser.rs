//! The website chat widget in a real browser (headless Chromium): a test page on its own origin
//! loads `/widget.js` from the service, a visitor opens the chat with the keyboard, asks a
//! question by typing and by the offered buttons, sends text that looks like HTML (shown as
//! text, never run), reloads the page to find the conversation still there, and books a wash,
//! giving a mobile number as a website visitor must, which the ERP's booking then carries.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;
use serde_json::{Value, json};

/// The widget's shadow root, for scripts run in the page.
const ROOT: &str = "const root = document.querySelector('[data-carewell-widget]').shadowRoot;";

/// A page on its own origin that loads the widget from `service`.
fn page_server(service: String) -> (String, actix_web::dev::ServerHandle) {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sparkle</title></head>\
         <body><h1>Sparkle Doorstep Car Care</h1><p>Our website.</p>\
         <script src=\"{service}/widget.js\" data-site=\"sparkle-website\" async></script></body></html>"
    );
    let server = actix_web::HttpServer::new(move || {
        let html = html.clone();
        actix_web::App::new().route(
            "/",
            actix_web::web::get().to(move || {
                let html = html.clone();
                async move { actix_web::HttpResponse::Ok().content_type("text/html").body(html) }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

async fn widget_text(b: &Browser) -> String {
    let v = b.run(&format!("{ROOT} return root ? root.querySelector('.log').innerText : ''"), json!([])).await;
    v.as_str().unwrap_or_default().to_string()
}

async fn wait_in_widget(b: &Browser, needle: &str) {
    let started = Instant::now();
    while !widget_text(b).await.contains(needle) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the widget never showed {needle:?}:\n{}",
            widget_text(b).await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn press(b: &Browser, title: &str) {
    let script = format!(
        "{ROOT} const all = [...root.querySelectorAll('.options button')].filter(x => x.textContent === arguments[0]); \
         if (!all.length) return false; all[all.length - 1].click(); return true;"
    );
    assert_eq!(
        b.run(&script, json!([title])).await,
        Value::Bool(true),
        "a button {title:?}:\n{}",
        widget_text(b).await
    );
}

async fn type_message(b: &Browser, text: &str) {
    let script = format!(
        "{ROOT} const input = root.querySelector('textarea'); input.value = arguments[0]; \
         root.querySelector('form').requestSubmit();"
    );
    b.run(&script, json!([text])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_in_the_widget_on_a_web_page() {
    let b = Browser::start().await;
    let fakes = Fakes::new(None);
    // The page's origin must be one of the site's: the page server starts first (loading the
    // widget from the port the service will take), its address is written into a copy of the
    // business file, then the service starts.
    let root = copy_project();
    let business = root.join("flows/business.yaml");
    let service_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let service = format!("http://127.0.0.1:{service_port}");
    let (page, _page) = page_server(service.clone());
    let text = std::fs::read_to_string(&business).unwrap().replace(
        "origins: [\"http://localhost:8080\", \"http://127.0.0.1:8080\"]",
        &format!("origins: [\"{page}\", \"{service}\"]"),
    );
    assert!(text.contains(&page), "the sample site's origins line is where the test expects it");
    std::fs::write(&business, text).unwrap();
    let flows = root.join("flows").display().to_string();
    let port = service_port.to_string();
    let server = Server::start_with(&sqlite(), &fakes, &[("FLOWS_DIR", flows.as_str()), ("PORT", port.as_str())]);
    assert!(server.url.ends_with(&format!(":{service_port}")), "{}", server.url);

    b.open(&page).await;
    let started = Instant::now();
    while b.run("return !!document.querySelector('[data-carewell-widget]')", json!([])).await != Value::Bool(true) {
        assert!(started.elapsed() < Duration::from_secs(20), "the widget never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The launcher opens the panel; the greeting is there before the visitor writes.
    let opened = b
        .run(
            &format!(
                "{ROOT} const l = root.querySelector('.launcher'); l.click(); \
                 return [l.getAttribute('aria-expanded'), root.activeElement && root.activeElement.tagName, \
                 root.querySelector('.log').getAttribute('aria-live'), l.textContent]"
            ),
            json!([]),
        )
        .await;
    assert_eq!(opened, json!(["true", "TEXTAREA", "polite", "Sparkle Car Care"]), "{opened}");
    wait_in_widget(&b, "Hi! I can book a wash").await;

    // Typed, then by buttons.
    type_message(&b, "hi").await;
    wait_in_widget(&b, "Welcome to Sparkle Doorstep Car Care").await;
    press(&b, "Ask a question").await;
    wait_in_widget(&b, "Pick a topic").await;
    press(&b, "Areas we serve").await;
    wait_in_widget(&b, "anywhere in Dubai and Sharjah").await;

    // Text that looks like HTML is shown as text.
    type_message(&b, "<img src=x onerror=\"document.title='owned'\"> <b>bold</b>").await;
    wait_in_widget(&b, "<img src=x onerror=").await;
    let markup = b
        .run(&format!("{ROOT} return [root.querySelectorAll('.log img, .log b').length, document.title]"), json!([]))
        .await;
    assert_eq!(markup, json!([0, "Sparkle"]), "no element made from the visitor's text");
    b.screenshot("widget").await;

    // A reload keeps the conversation.
    b.open(&page).await;
    let started = Instant::now();
    while !widget_text(&b).await.contains("anywhere in Dubai and Sharjah") {
        assert!(started.elapsed() < Duration::from_secs(20), "the kept session's history:\n{}", widget_text(&b).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // A wash booked through the widget: the visitor is asked for a mobile number (a WhatsApp
    // customer never is), and the ERP gets the booking under it.
    let script = booking_script();
    let prompts = [
        "first and last name",
        "one-time visit or a subscription",
        "Which car is it?",
        "Where should we come?",
        "When would suit you?",
        "What's your mobile number",
    ];
    for (line, prompt) in script.iter().zip(prompts) {
        type_message(&b, line).await;
        wait_in_widget(&b, prompt).await;
    }
    type_message(&b, "it's 050 123 4567").await;
    wait_in_widget(&b, "Please include the country code").await;
    type_message(&b, "+971 50 123 4567").await;
    wait_in_widget(&b, "Shall I confirm it?").await;
    press(&b, "Confirm").await;
    wait_in_widget(&b, "You're booked, Jane!").await;
    let orders = fakes.erp.docs("Sales Order");
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["whatsapp_number"], "+971501234567", "{:?}", orders[0]);
    assert_eq!(fakes.erp.docs("Customer")[0]["mobile_no"], "+971501234567");

    // The service's own demo page: same origin, so the browser sends no Origin on its GETs.
    b.open(&format!("{service}/widget-demo")).await;
    let started = Instant::now();
    while b.run("return !!document.querySelector('[data-carewell-widget]')", json!([])).await != Value::Bool(true) {
        assert!(started.elapsed() < Duration::from_secs(20), "the demo page's widget never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.run(&format!("{ROOT} root.querySelector('.launcher').click();"), json!([])).await;
    type_message(&b, "hi").await;
    wait_in_widget(&b, "Welcome to Sparkle Doorstep Car Care").await;
    server.assert_replays().await;
}
