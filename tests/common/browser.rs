//! Headless Chromium for the page tests, driven through chromedriver's WebDriver protocol.
//! Chromium and chromedriver come from Debian's packages (`.ci/run` installs them); a test that
//! needs them fails when they are missing, it never passes by skipping.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What a page lacks for a keyboard or screen-reader user, as a list of problems.
pub const ACCESSIBILITY: &str = r#"
const problems = [];
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
if (!document.querySelector('main')) problems.push('no main landmark');
if (!document.documentElement.lang) problems.push('no page language');
if (!document.title.trim()) problems.push('no title');
for (const n of document.querySelectorAll('nav')) if (!n.getAttribute('aria-label')) problems.push('unlabelled nav');
for (const el of document.querySelectorAll('input, select, textarea'))
  if (el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')) problems.push('unlabelled field ' + (el.id || el.name));
for (const el of document.querySelectorAll('a, button'))
  if (!el.textContent.trim() && !el.getAttribute('aria-label')) problems.push('nameless ' + el.outerHTML.slice(0, 60));
for (const s of document.querySelectorAll('svg')) {
  const ids = (s.getAttribute('aria-labelledby') || '').split(' ').filter(Boolean);
  if (s.getAttribute('role') !== 'img' || !ids.length || ids.some(i => !(document.getElementById(i) || {}).textContent))
    problems.push('chart without a name ' + s.id);
}
for (const t of document.querySelectorAll('table')) if (!t.querySelector('caption')) problems.push('table without caption');
let level = 0;
for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
  const l = +h.tagName[1];
  if (l > level + 1) problems.push('heading skips to ' + h.tagName + ' ' + h.textContent);
  level = l;
}
const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
  .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
while (walker.nextNode()) {
  const el = walker.currentNode.parentElement;
  if (!walker.currentNode.textContent.trim() || seen.has(el) || el.closest('svg, .skip')) continue;
  seen.add(el);
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ':1 for ' + el.tagName + ' ' + el.textContent.trim().slice(0, 30));
}
return problems;
"#;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; ends (and stops chromedriver) when dropped.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
}

fn which(bin: &str) -> Option<String> {
    ["/usr/bin/", "/usr/local/bin/", "/usr/lib/chromium/"]
        .iter()
        .map(|d| format!("{d}{bin}"))
        .find(|p| std::path::Path::new(p).exists())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of 1280×900 CSS pixels. Panics, saying
    /// what to install, when either is missing.
    pub async fn start() -> Browser {
        let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
            panic!(
                "this test needs headless Chromium: install Debian's `chromium` and `chromium-driver` packages (.ci/run does)"
            );
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its own process group, so that the Chromium it starts goes with it (see `Drop`).
        let driver = Command::new(&chromedriver)
            .process_group(0)
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
        let session: Value =
            http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {session}"))
            .to_string();
        Browser { http, base, session, driver }
    }

    /// One WebDriver command; answers its `value`.
    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    /// The page's address now.
    pub async fn url(&self) -> String {
        self.call("GET", "/url", Value::Null).await.as_str().unwrap_or_default().to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and answers what it returns.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": args})).await
    }

    /// The element matching the CSS `selector`, if any.
    pub async fn find(&self, selector: &str) -> Option<String> {
        let v = self.call("POST", "/element", json!({"using": "css selector", "value": selector})).await;
        v[ELEMENT].as_str().map(String::from)
    }

    /// Types `text` into the element matching `selector`.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let el = self.find(selector).await.unwrap_or_else(|| panic!("no {selector} on the page"));
        self.call("POST", &format!("/element/{el}/clear"), json!({})).await;
        self.call("POST", &format!("/element/{el}/value"), json!({"text": text})).await;
    }

    /// Clicks the element matching `selector`.
    pub async fn click(&self, selector: &str) {
        let el = self.find(selector).await.unwrap_or_else(|| panic!("no {selector} on the page"));
        self.call("POST", &format!("/element/{el}/click"), json!({})).await;
    }

    /// Presses keys (WebDriver key codes: `\u{E004}` is Tab, `\u{E007}` Enter) on the focused element.
    pub async fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| [json!({"type": "keyDown", "value": k}), json!({"type": "keyUp", "value": k})])
            .collect();
        self.call("POST", "/actions", json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}))
            .await;
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.run("return document.body.innerText", json!([])).await.as_str().unwrap_or_default().to_string()
    }

    /// Waits (up to 20 s) until the page shows `needle`.
    pub async fn wait_for(&self, needle: &str) {
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

    /// What the page lacks for a keyboard or screen-reader user ([`ACCESSIBILITY`]); empty
    /// when nothing.
    pub async fn accessibility_problems(&self) -> Vec<String> {
        let found = self.run(ACCESSIBILITY, json!([])).await;
        serde_json::from_value(found.clone()).unwrap_or_else(|_| panic!("the accessibility check did not run: {found}"))
    }

    /// Writes a screenshot of the window to `target/<name>.png`; answers its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine;
        // The whole page, not only the window: the window grows to the page's height for it.
        let height = self.run("return document.documentElement.scrollHeight", json!([])).await.as_u64().unwrap_or(900);
        self.call("POST", "/window/rect", json!({"width": 1280, "height": height.clamp(900, 6000) + 140})).await;
        let shot = self.call("GET", "/screenshot", Value::Null).await;
        self.call("POST", "/window/rect", json!({"width": 1280, "height": 900})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/{name}.png"));
        std::fs::write(&path, &png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Even when the test failed half-way: chromedriver's whole process group (Chromium and
        // its helpers) goes.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
