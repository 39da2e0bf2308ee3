//! A fake OpenAI-style LLM: scripted, good, lying or slow answers.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- fake LLM

/// How the fake LLM answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LlmMode {
    /// Answers from the script; `{"slots": []}` for anything else.
    Good,
    /// Never answers in time.
    Slow,
    /// Answers JSON that names a slot the schema does not allow.
    Adversarial,
    /// Answers text that is not JSON.
    Invalid,
    /// Lies within the schema: a value for every slot it may name, option ids for choices, with
    /// quotes and values taken at random from the customer's own words (seeded by the message,
    /// so a run repeats).
    Liar,
}

/// What the fake LLM received.
#[derive(Default)]
pub struct LlmLog {
    /// Requests answered.
    pub calls: usize,
    /// Their bodies.
    pub requests: Vec<Value>,
}

/// The fake OpenAI-compatible endpoint: `POST /v1/chat/completions`.
#[derive(Clone)]
pub struct FakeLlm {
    /// Base URL (`…/v1`).
    pub url: String,
    /// What it received.
    pub log: Arc<Mutex<LlmLog>>,
}

impl FakeLlm {
    /// `script` maps a customer's message to the extraction the fake answers.
    pub fn start(mode: LlmMode, script: Vec<(&'static str, Value)>) -> FakeLlm {
        FakeLlm::start_with_latency(mode, script, Duration::ZERO)
    }

    /// Like [`FakeLlm::start`], answering after `latency`.
    pub fn start_with_latency(mode: LlmMode, script: Vec<(&'static str, Value)>, latency: Duration) -> FakeLlm {
        FakeLlm::start_scripted(mode, script.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), latency)
    }

    /// Starts it with a script of owned strings (from a conversation-test file).
    pub fn start_scripted(mode: LlmMode, script: Vec<(String, Value)>, latency: Duration) -> FakeLlm {
        let log: Arc<Mutex<LlmLog>> = Arc::default();
        let l = log.clone();
        let script: Arc<Vec<(String, Value)>> = Arc::new(script.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let url = spawn_fake(move |cfg| {
            cfg.app_data(web::Data::new((l.clone(), script.clone(), mode, latency)))
                .route("/v1/chat/completions", web::post().to(llm_answer));
        });
        FakeLlm { url: format!("{url}/v1"), log }
    }

    /// Requests answered so far.
    pub fn calls(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).calls
    }
}

type LlmState = (Arc<Mutex<LlmLog>>, Arc<Vec<(String, Value)>>, LlmMode, Duration);

async fn llm_answer(state: web::Data<LlmState>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    let (log, script, mode, latency) = state.get_ref();
    if req.headers().get("Authorization").and_then(|h| h.to_str().ok()) != Some(format!("Bearer {LLM_KEY}").as_str()) {
        return HttpResponse::Unauthorized().json(json!({"error": {"message": "bad key"}}));
    }
    let body = body.into_inner();
    // Counted when it arrives, so a test can act while the answer is still on its way.
    {
        let mut l = log.lock().unwrap();
        l.calls += 1;
        l.requests.push(body.clone());
    }
    if !latency.is_zero() {
        tokio::time::sleep(*latency).await;
    }
    let user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|x| x["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let content = match mode {
        LlmMode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "{\"slots\": []}".to_string()
        }
        LlmMode::Invalid => "Sure! The customer's name is probably Jane.".to_string(),
        LlmMode::Adversarial => {
            "{\"slots\": [{\"slot\": \"admin_override\", \"value\": \"confirm\", \"quote\": \"confirm\"}]}".to_string()
        }
        LlmMode::Liar => lie(&body, &user),
        // A script line keyed `<schema name>:<message>` answers only that kind of question (a
        // knowledge answer, not the intent guard's reading of the same words); one keyed by the
        // message alone answers any.
        LlmMode::Good => {
            let schema_name = body["response_format"]["json_schema"]["name"].as_str().unwrap_or_default();
            let named = format!("{schema_name}:{user}");
            script
                .iter()
                .find(|(k, _)| *k == named)
                .or_else(|| script.iter().find(|(k, _)| *k == user))
                .map(|(_, v)| v.to_string())
                .unwrap_or_else(|| "{\"slots\": []}".into())
        }
    };
    HttpResponse::Ok().json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    }))
}

/// A small deterministic random source (xorshift) for the lying LLM.
struct Dice(u64);

impl Dice {
    fn seeded(text: &str) -> Dice {
        Dice(text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
    /// One to `max` consecutive words of `words`, without their punctuation.
    fn span(&mut self, words: &[&str], max: usize) -> String {
        if words.is_empty() {
            return String::new();
        }
        let start = self.below(words.len());
        let len = 1 + self.below(max.min(words.len() - start));
        words[start..start + len].join(" ").trim_matches(|c: char| ",.!?".contains(c)).to_string()
    }
}

/// A schema-valid lie (see [`LlmMode::Liar`]).
fn lie(body: &Value, user: &str) -> String {
    let mut dice = Dice::seeded(user);
    let schema = &body["response_format"]["json_schema"]["schema"];
    let words: Vec<&str> = user.split_whitespace().collect();
    if let Some(intents) = schema.pointer("/properties/intent/enum").and_then(Value::as_array) {
        let intent = intents[dice.below(intents.len())].clone();
        let emotions = ["neutral", "happy", "confused", "frustrated", "angry"];
        return json!({"intent": intent, "emotion": emotions[dice.below(5)], "confidence": 0.95}).to_string();
    }
    let slots: Vec<String> = schema
        .pointer("/$defs/SlotAnswer/properties/slot/enum")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    // "- plan (choice): Plan; value must be one of the ids: one_time = One-time; subscription = …"
    let ids_of = |slot: &str| -> Vec<String> {
        system
            .lines()
            .find(|l| l.starts_with(&format!("- {slot} ")))
            .and_then(|l| l.split_once("one of the ids: "))
            .map(|(_, ids)| ids.split("; ").filter_map(|p| p.split(" = ").next()).map(String::from).collect())
            .unwrap_or_default()
    };
    // An answer for every slot it may name: whatever is not refused gets through.
    let mut answers = Vec::new();
    for slot in slots {
        let ids = ids_of(&slot);
        let quote = dice.span(&words, 3);
        let value = if !ids.is_empty() {
            ids[dice.below(ids.len())].clone()
        } else if dice.below(2) == 0 {
            quote.clone()
        } else {
            dice.span(&words, 2)
        };
        answers.push(json!({"slot": slot, "value": value, "quote": quote}));
    }
    json!({"slots": answers}).to_string()
}
