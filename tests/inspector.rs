//! The inspector page in a real browser: headless Chromium, driven through chromedriver's
//! WebDriver protocol, books a car wash by typing and clicking as an operator would, and the run
//! leaves a screenshot at `target/inspector.png`. Chromium and chromedriver come from Debian's
//! packages (`.ci/run` installs them); without them the test says so and is skipped, unless
//! `REQUIRE_BROWSER=1`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Driver {
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn find(&self, using: &str, value: &str) -> Option<String> {
        let v = self.call("POST", "/element", json!({"using": using, "value": value})).await;
        v[ELEMENT].as_str().map(String::from)
    }

    async fn text(&self) -> String {
        self.call("POST", "/execute/sync", json!({"script": "return document.body.innerText", "args": []}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the page shows `needle`.
    async fn wait_for(&self, needle: &str) {
        let started = Instant::now();
        while !self.text().await.contains(needle) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the page never showed {needle:?}:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn type_and_send(&self, text: &str) {
        let input = self.find("css selector", "#text").await.expect("message box");
        self.call("POST", &format!("/element/{input}/value"), json!({"text": text})).await;
        let send = self.find("css selector", "#send").await.expect("send button");
        self.call("POST", &format!("/element/{send}/click"), json!({})).await;
    }

    /// Clicks the last rendered option button whose title starts with `title`.
    async fn press(&self, title: &str) {
        let script = "const t = arguments[0]; const bs = [...document.querySelectorAll('.options button')].filter(b => b.firstChild.textContent.startsWith(t)); if (!bs.length) return false; bs[bs.length - 1].click(); return true;";
        let started = Instant::now();
        loop {
            let clicked = self.call("POST", "/execute/sync", json!({"script": script, "args": [title]})).await;
            if clicked == json!(true) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no option {title:?} on the page:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

fn which(bin: &str) -> Option<String> {
    ["/usr/bin/", "/usr/local/bin/", "/usr/lib/chromium/"]
        .iter()
        .map(|d| format!("{d}{bin}"))
        .find(|p| std::path::Path::new(p).exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_books_through_the_inspector_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        assert!(
            std::env::var("REQUIRE_BROWSER").is_err(),
            "REQUIRE_BROWSER is set but chromium or chromedriver is missing"
        );
        eprintln!("chromium or chromedriver is not installed: the browser test is skipped (.ci/run installs them)");
        return;
    };
    let fakes = Fakes::new(None);
    // The inspector talks to the sandbox: no Graph API and no ERP configured.
    let server = Server::start_with(&sqlite(), &fakes, &[("WHATSAPP_API_BASE_URL", ""), ("ERP_BASE_URL", "")]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut driver_proc = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/status")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(15), "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = std::env::temp_dir().join(format!("carewell-chromium-{}", uuid::Uuid::new_v4().simple()));
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                 "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", format!("--user-data-dir={}", profile.display())]
    }}}});
    let session: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
    let session = session["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_string();
    let d = Driver { http, base, session };

    d.call("POST", "/url", json!({"url": format!("{}/inspector?token={ADMIN_TOKEN}", server.url)})).await;
    d.wait_for("turns:").await;
    d.type_and_send("Hi").await;
    d.wait_for("Welcome to Sparkle").await;
    d.press("Book a service").await;
    d.wait_for("first and last name").await;
    d.type_and_send("Jane Doe").await;
    d.wait_for("Which service").await;
    d.press("Full Wash").await;
    d.wait_for("one-time visit or a subscription").await;
    d.press("One-time").await;
    d.wait_for("Which car").await;
    d.type_and_send("Toyota Corolla ABC-1234").await;
    d.wait_for("Where should we come").await;
    let loc = d.find("css selector", "#location").await.unwrap();
    d.call("POST", &format!("/element/{loc}/click"), json!({})).await;
    d.wait_for("When would suit you").await;
    d.press("").await;
    d.wait_for("Here is your booking").await;
    // The side panel shows the step and the slots.
    let page = d.text().await;
    assert!(page.contains("booking/summary") && page.contains("Full Wash") && page.contains("ABC-1234"), "{page}");
    d.press("Confirm").await;
    d.wait_for("You're booked, Jane!").await;
    let export = d.find("css selector", "#export").await.unwrap();
    d.call("POST", &format!("/element/{export}/click"), json!({})).await;
    d.wait_for("Exported from the inspector").await;

    let shot = d.call("GET", "/screenshot", json!({})).await;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/inspector.png");
    std::fs::write(&path, &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    eprintln!("screenshot: {}", path.display());
    d.call("DELETE", "", json!({})).await;
    let _ = driver_proc.kill();
    let _ = driver_proc.wait();
}
