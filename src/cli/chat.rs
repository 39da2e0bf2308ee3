//! `carewell chat`: a terminal WhatsApp customer. It posts signed webhooks in WhatsApp's real
//! format to a running server (exactly as WhatsApp does) and shows the replies the sandbox
//! "sent", numbering buttons and list rows so they can be chosen by number or by typing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::channel::whatsapp::envelope::{envelope, to_ascii_json};
use crate::channel::whatsapp::signature::sign;

/// Options of `chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "CAREWELL_URL")]
    pub url: String,
    /// The customer's WhatsApp id (digits).
    #[arg(long, default_value = "971500000001")]
    pub customer: String,
    /// The customer's profile name.
    #[arg(long, default_value = "Sam")]
    pub name: String,
    /// The business number id the messages arrive on.
    #[arg(long, default_value = "100000000000001")]
    pub phone_number_id: String,
    /// The app secret used to sign webhooks (the server's WHATSAPP_APP_SECRET).
    #[arg(long, env = "WHATSAPP_APP_SECRET", default_value = crate::config::DEV_APP_SECRET, hide_env_values = true)]
    pub secret: String,
}

/// An option shown in the terminal: (id, title, description).
type ShownOption = (String, String, Option<String>);

struct Offered {
    wamid: String,
    kind: &'static str,
    options: Vec<(String, String)>,
}

/// Runs the chat until end of input or `/quit`.
pub async fn run(args: ChatArgs) -> Result<(), String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let health = http.get(format!("{}/health", args.url)).send().await;
    if health.is_err() {
        return Err(format!("no server answers at {}: start it with `make run` (or `carewell serve`) first", args.url));
    }
    println!("Chatting with {} as +{} ({}).", args.url, args.customer, args.name);
    println!("Type a message. A number picks a button or list row. /location LAT,LON [place], /image, /quit.\n");
    let mut last_id = latest_id(&http, &args).await;
    let mut offered: Option<Offered> = None;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut counter = 0u64;
    loop {
        print_prompt();
        let Ok(Some(line)) = lines.next_line().await else { break };
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            break;
        }
        counter += 1;
        let id = format!("wamid.chat-{}-{}", std::process::id(), counter);
        let ts = jiff::Timestamp::now().as_second().to_string();
        let message = if let Some(rest) = line.strip_prefix("/location") {
            let mut parts = rest.trim().splitn(2, ' ');
            let coords = parts.next().unwrap_or("25.2048,55.2708");
            let (lat, lon) = coords.split_once(',').unwrap_or(("25.2048", "55.2708"));
            let mut loc = json!({"latitude": lat.trim().parse::<f64>().unwrap_or(25.2048), "longitude": lon.trim().parse::<f64>().unwrap_or(55.2708)});
            if let Some(place) = parts.next() {
                loc["name"] = json!(place);
                loc["address"] = json!(place);
            }
            json!({"from": args.customer, "id": id, "timestamp": ts, "type": "location", "location": loc})
        } else if line == "/image" {
            json!({"from": args.customer, "id": id, "timestamp": ts, "type": "image", "image": {"id": "1000", "mime_type": "image/jpeg", "sha256": "x"}})
        } else if let Some((o, n)) =
            offered.as_ref().zip(line.parse::<usize>().ok()).filter(|(o, n)| *n >= 1 && *n <= o.options.len())
        {
            let (oid, title) = o.options[n - 1].clone();
            let (itype, key) =
                if o.kind == "button" { ("button_reply", "button_reply") } else { ("list_reply", "list_reply") };
            json!({"context": {"from": "15550000000", "id": o.wamid}, "from": args.customer, "id": id, "timestamp": ts,
                   "type": "interactive", "interactive": {"type": itype, key: {"id": oid, "title": title}}})
        } else {
            json!({"from": args.customer, "id": id, "timestamp": ts, "type": "text", "text": {"body": line}})
        };
        let body = to_ascii_json(&envelope(&args.phone_number_id, &args.customer, &args.name, message));
        let resp = http
            .post(format!("{}/webhooks/whatsapp", args.url))
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", sign(args.secret.as_bytes(), body.as_bytes()))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("the server did not take the message: {e}"))?;
        if !resp.status().is_success() {
            let status = resp.status();
            println!("! the server answered {status}: {}", resp.text().await.unwrap_or_default());
            continue;
        }
        // Show replies as they arrive; stop once the bot has been quiet for a moment.
        let started = Instant::now();
        let mut last_seen = None::<Instant>;
        loop {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let fresh = fetch(&http, &args, last_id).await;
            for m in &fresh {
                last_id = last_id.max(m["id"].as_i64().unwrap_or(last_id));
                if let Some(o) = show(m) {
                    offered = Some(o);
                }
                last_seen = Some(Instant::now());
            }
            match last_seen {
                Some(t) if t.elapsed() > Duration::from_millis(900) => break,
                None if started.elapsed() > Duration::from_secs(15) => {
                    println!("(no reply after 15 s — is the server's worker running? see its log)");
                    break;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn print_prompt() {
    use std::io::Write;
    print!("you> ");
    let _ = std::io::stdout().flush();
}

async fn fetch(http: &reqwest::Client, args: &ChatArgs, after: i64) -> Vec<Value> {
    let url = format!("{}/sandbox/messages?customer={}&after={after}", args.url, args.customer);
    match http.get(url).send().await {
        Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["messages"].as_array().cloned()).unwrap_or_default(),
        Err(_) => vec![],
    }
}

async fn latest_id(http: &reqwest::Client, args: &ChatArgs) -> i64 {
    fetch(http, args, 0).await.iter().filter_map(|m| m["id"].as_i64()).max().unwrap_or(0)
}

fn show(m: &Value) -> Option<Offered> {
    let body = &m["body"];
    let wamid = m["wamid"].as_str().unwrap_or_default().to_string();
    match body["type"].as_str() {
        Some("text") => {
            println!("bot> {}", body["text"]["body"].as_str().unwrap_or_default().replace('\n', "\n     "));
            None
        }
        Some("interactive") => {
            let i = &body["interactive"];
            println!("bot> {}", i["body"]["text"].as_str().unwrap_or_default().replace('\n', "\n     "));
            let offered = crate::channel::whatsapp::render::offered_options(body);
            let kind = if i["type"] == "button" { "button" } else { "list" };
            let options: Vec<ShownOption> = offered.into_iter().map(|o| (o.id, o.title, o.description)).collect();
            for (n, (_, title, desc)) in options.iter().enumerate() {
                match desc {
                    Some(d) => println!("     [{}] {title} — {d}", n + 1),
                    None => println!("     [{}] {title}", n + 1),
                }
            }
            Some(Offered { wamid, kind, options: options.into_iter().map(|(i, t, _)| (i, t)).collect() })
        }
        _ => {
            println!("bot> {body}");
            None
        }
    }
}
