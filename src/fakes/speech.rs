//! A fake OpenAI-style speech-to-text endpoint.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- fake speech to text

/// The fake OpenAI-style speech-to-text endpoint: `POST /v1/audio/transcriptions`
/// (multipart `file` and `model`). It "hears" an audio file as the UTF-8 text its bytes hold, so
/// a test registers a voice note whose bytes are what the customer says.
#[derive(Clone)]
pub struct FakeSpeech {
    /// Base URL (`…/v1`).
    pub url: String,
    /// Transcriptions served.
    pub calls: Arc<Mutex<usize>>,
}

impl FakeSpeech {
    /// Starts it on a free loopback port.
    pub fn start() -> FakeSpeech {
        let calls: Arc<Mutex<usize>> = Arc::default();
        let c = calls.clone();
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new(c.clone())).route("/v1/audio/transcriptions", web::post().to(speech_answer));
        });
        FakeSpeech { url: format!("{url}/v1"), calls }
    }
}

async fn speech_answer(calls: web::Data<Arc<Mutex<usize>>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if req.headers().get("Authorization").and_then(|h| h.to_str().ok()) != Some(format!("Bearer {LLM_KEY}").as_str()) {
        return HttpResponse::Unauthorized().json(json!({"error": {"message": "bad key"}}));
    }
    let text = String::from_utf8_lossy(&body);
    if !text.contains("name=\"model\"") {
        return HttpResponse::BadRequest().json(json!({"error": {"message": "model is required"}}));
    }
    // The file part's content: after its headers' blank line, up to the next boundary.
    let heard = text
        .split("name=\"file\"")
        .nth(1)
        .and_then(|rest| rest.split_once("\r\n\r\n"))
        .and_then(|(_, content)| content.split("\r\n--").next())
        .map(str::to_string);
    match heard {
        Some(heard) => {
            *calls.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            HttpResponse::Ok().json(json!({"text": heard}))
        }
        None => HttpResponse::BadRequest().json(json!({"error": {"message": "file is required"}})),
    }
}
