//! A fake of the team's hand-off webhook receiver.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- fake team webhook

/// A team's hand-off webhook receiver: keeps every POST (its signature header and body) and can
/// answer HTTP 503 to the next few, as a receiver that is down would.
#[derive(Clone)]
pub struct FakeHook {
    /// Base URL; hand-offs are posted to `{url}/handoffs`.
    pub url: String,
    log: Arc<Mutex<HookLog>>,
}

#[derive(Default)]
struct HookLog {
    /// (signature header, body) of each POST that was accepted.
    accepted: Vec<(String, String)>,
    /// POSTs answered 503 so far.
    refused: usize,
    /// How many more to answer 503.
    fail_next: usize,
}

impl FakeHook {
    /// Starts it on a free loopback port.
    pub fn start() -> FakeHook {
        let log: Arc<Mutex<HookLog>> = Arc::default();
        let shared = log.clone();
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new(shared.clone())).route("/handoffs", web::post().to(hook_receive));
        });
        FakeHook { url, log }
    }

    /// The POSTs it accepted: (signature header, body).
    pub fn accepted(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).accepted.clone()
    }

    /// How many POSTs it answered 503.
    pub fn refused(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).refused
    }

    /// Answers 503 to the next `n` POSTs.
    pub fn fail_next(&self, n: usize) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).fail_next = n;
    }
}

async fn hook_receive(log: web::Data<Arc<Mutex<HookLog>>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let signature = req.headers().get("X-Carewell-Signature").and_then(|h| h.to_str().ok()).unwrap_or_default();
    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
    if l.fail_next > 0 {
        l.fail_next -= 1;
        l.refused += 1;
        return HttpResponse::ServiceUnavailable().finish();
    }
    l.accepted.push((signature.to_string(), String::from_utf8_lossy(&body).into_owned()));
    HttpResponse::Ok().finish()
}
