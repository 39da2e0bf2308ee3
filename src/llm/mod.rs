//! One client for any OpenAI-compatible chat-completions endpoint (OpenRouter, OpenAI, vLLM,
//! Ollama, llama.cpp server), used only from guards.
//!
//! [`LlmClient::structured`] asks for JSON matching a schema (`response_format: json_schema` when
//! the endpoint supports it, the schema in the prompt otherwise), validates the answer with
//! `jsonschema`, retries once with the validation errors, and otherwise fails *typed*: timeout,
//! transport, HTTP status, invalid output, refusal. Every attempt is returned for the turn record.

pub mod speech;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// LLM failures, each with a stable code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum LlmError {
    /// No answer within the configured time.
    #[error(
        "llm.timeout: no answer within {0} ms; the deterministic extractors took over (raise LLM_TIMEOUT_MS if the model is just slow)"
    )]
    Timeout(u64),
    /// The endpoint could not be reached.
    #[error("llm.transport: {0}; check LLM_BASE_URL and the network")]
    Transport(String),
    /// The endpoint answered with an error status.
    #[error("llm.status: HTTP {status}: {body}; check LLM_API_KEY and LLM_MODEL")]
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The answer was not JSON matching the schema, twice.
    #[error("llm.invalid_output: the answer failed its schema twice: {0}")]
    InvalidOutput(String),
    /// The model refused.
    #[error("llm.refusal: the model refused: {0}")]
    Refusal(String),
    /// The circuit breaker is open after repeated failures: the LLM is not called until it
    /// cools down and a probe succeeds.
    #[error("llm.circuit_open: the LLM failed {0} times in a row; not calling it until the cool-down ends")]
    CircuitOpen(u32),
}

impl LlmError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::Timeout(_) => "llm.timeout",
            LlmError::Transport(_) => "llm.transport",
            LlmError::Status { .. } => "llm.status",
            LlmError::InvalidOutput(_) => "llm.invalid_output",
            LlmError::Refusal(_) => "llm.refusal",
            LlmError::CircuitOpen(_) => "llm.circuit_open",
        }
    }
}

/// Settings of the LLM client.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// OpenAI-style base, such as `https://openrouter.ai/api/v1`; `/chat/completions` is appended.
    pub base_url: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<String>,
    /// Model name.
    pub model: String,
    /// Time allowed per attempt.
    pub timeout: Duration,
    /// Send `response_format: json_schema` (true) or only put the schema in the prompt (false).
    pub json_schema_mode: bool,
    /// The most a customer waits for the LLM guard in one turn, all attempts included.
    pub budget: Duration,
    /// Failures in a row that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe call is let through.
    pub breaker_cooldown: Duration,
    /// LLM requests in flight at once; more wait (within the budget) without holding up
    /// conversations that need no LLM.
    pub max_concurrency: usize,
}

/// A circuit breaker: after `threshold` failures in a row, calls are refused for `cooldown`; then
/// one probe is let through, and its outcome closes or re-opens the circuit.
#[derive(Debug, Default)]
pub struct Breaker {
    failures: std::sync::atomic::AtomicU32,
    open_until_ms: std::sync::atomic::AtomicI64,
    probing: std::sync::atomic::AtomicBool,
}

impl Breaker {
    fn now_ms() -> i64 {
        jiff::Timestamp::now().as_millisecond()
    }

    /// Whether a call may go out now.
    pub fn allow(&self, threshold: u32) -> Result<(), LlmError> {
        use std::sync::atomic::Ordering::SeqCst;
        let failures = self.failures.load(SeqCst);
        if failures < threshold {
            return Ok(());
        }
        if Self::now_ms() < self.open_until_ms.load(SeqCst) {
            return Err(LlmError::CircuitOpen(failures));
        }
        // Half-open: one probe at a time.
        match self.probing.compare_exchange(false, true, SeqCst, SeqCst) {
            Ok(_) => Ok(()),
            Err(_) => Err(LlmError::CircuitOpen(failures)),
        }
    }

    /// Records an outcome.
    pub fn record(&self, ok: bool, threshold: u32, cooldown: Duration) {
        use std::sync::atomic::Ordering::SeqCst;
        self.probing.store(false, SeqCst);
        if ok {
            self.failures.store(0, SeqCst);
        } else {
            let n = self.failures.fetch_add(1, SeqCst) + 1;
            if n >= threshold {
                self.open_until_ms.store(Self::now_ms() + cooldown.as_millis() as i64, SeqCst);
                tracing::warn!(
                    code = "llm.circuit_open",
                    failures = n,
                    cooldown_ms = cooldown.as_millis() as u64,
                    "LLM circuit breaker opened"
                );
            }
        }
    }
}

/// One attempt, as recorded in the turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The raw answer text (or the error).
    pub raw: String,
    /// Validation errors (`pointer: message`), empty when the answer validated.
    pub errors: Vec<String>,
    /// Milliseconds.
    pub latency_ms: u64,
    /// Tokens used, when the endpoint reports them.
    pub tokens: Option<u64>,
}

/// The outcome of a structured call.
#[derive(Debug, Clone)]
pub struct Structured {
    /// The validated JSON.
    pub value: Value,
    /// Every attempt.
    pub attempts: Vec<Attempt>,
}

/// The runtime of every LLM call: its HTTP connections, the parsing and validation of its answers.
///
/// Apart from the service's runtime so that a burst of answers (thousands of conversations
/// waiting on the LLM at once, all answered within a second) queues here, and the service's
/// workers keep serving button presses and the other quick turns; the kernel shares the cores
/// between the two. One thread: the work per answer is small, and it waits on the network.
///
/// Errors: [`LlmError::Transport`] when the runtime cannot be started.
fn io_runtime() -> Result<tokio::runtime::Handle, LlmError> {
    static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> = std::sync::OnceLock::new();
    let built = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("llm-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match built {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(LlmError::Transport(format!("cannot start the LLM runtime: {e}"))),
    }
}

/// The attempts of one call, shared between the call's task and its caller.
#[derive(Debug, Clone, Default)]
struct AttemptLog(std::sync::Arc<std::sync::Mutex<Vec<Attempt>>>);

impl AttemptLog {
    fn push(&self, attempt: Attempt) {
        if let Ok(mut v) = self.0.lock() {
            v.push(attempt);
        }
    }

    fn snapshot(&self) -> Vec<Attempt> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// A spawned call, aborted if its caller stops waiting (the budget ran out).
struct AbortOnDrop<T>(tokio::task::JoinHandle<Result<T, LlmError>>);

impl<T> AbortOnDrop<T> {
    async fn wait(&mut self) -> Result<T, LlmError> {
        match (&mut self.0).await {
            Ok(r) => r,
            Err(e) => Err(LlmError::Transport(format!("the LLM call stopped: {e}"))),
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The OpenAI-compatible client.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    settings: LlmSettings,
    breaker: std::sync::Arc<Breaker>,
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    /// The runtime LLM calls run on.
    io: tokio::runtime::Handle,
    /// Compiled validators by schema text: compiling one costs far more than validating an
    /// answer, and a flow has a handful of schemas (one per step the LLM may read).
    validators: moka::future::Cache<String, std::sync::Arc<jsonschema::Validator>>,
}

impl LlmClient {
    /// Builds a client. Errors: the HTTP client could not be built (TLS set-up).
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(settings.max_concurrency));
        Ok(LlmClient {
            io: io_runtime()?,
            http,
            settings,
            breaker: Default::default(),
            in_flight,
            validators: moka::future::Cache::new(256),
        })
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// Asks for JSON that validates against `schema` (a JSON Schema made from a Rust type with
    /// schemars). Returns the validated value and every attempt; after two invalid answers, or on
    /// any transport failure, a typed [`LlmError`] — with the attempts so far in `attempts_out`.
    pub async fn structured(
        &self,
        system: &str,
        user: &str,
        schema_name: &str,
        schema: &Value,
        attempts_out: &mut Vec<Attempt>,
    ) -> Result<Structured, LlmError> {
        let s = &self.settings;
        self.breaker.allow(s.breaker_failures)?;
        // The call runs on the LLM's own runtime (see [`io_runtime`]); the attempts it makes are
        // kept even when the budget runs out halfway.
        let log = AttemptLog::default();
        let call = {
            let (client, log) = (self.clone(), log.clone());
            let (system, user, schema_name, schema) =
                (system.to_string(), user.to_string(), schema_name.to_string(), schema.clone());
            async move {
                let _slot = client
                    .in_flight
                    .acquire()
                    .await
                    .map_err(|_| LlmError::Transport("the LLM client is shutting down".into()))?;
                client.attempt(&system, &user, &schema_name, &schema, &log).await
            }
        };
        let mut task = AbortOnDrop(self.io.spawn(call));
        let outcome = match tokio::time::timeout(s.budget, task.wait()).await {
            Ok(r) => r,
            Err(_) => Err(LlmError::Timeout(s.budget.as_millis() as u64)),
        };
        drop(task);
        attempts_out.extend(log.snapshot());
        // Only availability failures count against the breaker, not a model's bad answer.
        let available =
            !matches!(outcome, Err(LlmError::Timeout(_) | LlmError::Transport(_) | LlmError::Status { .. }));
        self.breaker.record(available, s.breaker_failures, s.breaker_cooldown);
        outcome
    }

    /// The compiled validator of `schema`, from the cache when it was compiled before.
    async fn validator(&self, schema: &Value) -> Result<std::sync::Arc<jsonschema::Validator>, LlmError> {
        let key = schema.to_string();
        if let Some(v) = self.validators.get(&key).await {
            return Ok(v);
        }
        let compiled = std::sync::Arc::new(
            jsonschema::validator_for(schema)
                .map_err(|e| LlmError::InvalidOutput(format!("schema does not compile: {e}")))?,
        );
        self.validators.insert(key, compiled.clone()).await;
        Ok(compiled)
    }

    async fn attempt(
        &self,
        system: &str,
        user: &str,
        schema_name: &str,
        schema: &Value,
        attempts_out: &AttemptLog,
    ) -> Result<Structured, LlmError> {
        let validator = self.validator(schema).await?;
        let system = if self.settings.json_schema_mode {
            system.to_string()
        } else {
            format!("{system}\n\nAnswer with JSON only, matching this JSON Schema:\n{schema}")
        };
        let mut messages = vec![json!({"role": "system", "content": system}), json!({"role": "user", "content": user})];
        for attempt in 0..2 {
            let started = Instant::now();
            let mut body = json!({
                "model": self.settings.model,
                "messages": messages,
                "temperature": 0,
            });
            if self.settings.json_schema_mode {
                body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": schema_name, "strict": true, "schema": schema}});
            }
            let url = format!("{}/chat/completions", self.settings.base_url.trim_end_matches('/'));
            let mut req = self.http.post(&url).json(&body);
            if let Some(key) = &self.settings.api_key {
                req = req.bearer_auth(key);
            }
            let timeout_ms = self.settings.timeout.as_millis() as u64;
            let resp = req.send().await.map_err(|e| {
                if e.is_timeout() { LlmError::Timeout(timeout_ms) } else { LlmError::Transport(e.to_string()) }
            });
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    attempts_out.push(Attempt {
                        raw: e.to_string(),
                        errors: vec![],
                        latency_ms: started.elapsed().as_millis() as u64,
                        tokens: None,
                    });
                    return Err(e);
                }
            };
            let status = resp.status();
            let text = match resp.text().await {
                Ok(t) => t,
                Err(e) => {
                    let err =
                        if e.is_timeout() { LlmError::Timeout(timeout_ms) } else { LlmError::Transport(e.to_string()) };
                    attempts_out.push(Attempt {
                        raw: err.to_string(),
                        errors: vec![],
                        latency_ms: started.elapsed().as_millis() as u64,
                        tokens: None,
                    });
                    return Err(err);
                }
            };
            let latency_ms = started.elapsed().as_millis() as u64;
            if !status.is_success() {
                let body: String = text.chars().take(300).collect();
                attempts_out.push(Attempt { raw: body.clone(), errors: vec![], latency_ms, tokens: None });
                return Err(LlmError::Status { status: status.as_u16(), body });
            }
            let envelope: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let tokens = envelope.pointer("/usage/total_tokens").and_then(Value::as_u64);
            if let Some(refusal) = envelope.pointer("/choices/0/message/refusal").and_then(Value::as_str) {
                attempts_out.push(Attempt { raw: refusal.to_string(), errors: vec![], latency_ms, tokens });
                return Err(LlmError::Refusal(refusal.to_string()));
            }
            let content =
                envelope.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_string();
            let content_json = strip_fences(&content);
            let errors: Vec<String> = match serde_json::from_str::<Value>(content_json) {
                Ok(value) => {
                    let errors: Vec<String> = validator
                        .iter_errors(&value)
                        .map(|e| {
                            format!(
                                "{}: {}",
                                if e.instance_path().to_string().is_empty() {
                                    "/".to_string()
                                } else {
                                    e.instance_path().to_string()
                                },
                                e
                            )
                        })
                        .collect();
                    if errors.is_empty() {
                        attempts_out.push(Attempt { raw: content.clone(), errors: vec![], latency_ms, tokens });
                        return Ok(Structured { value, attempts: attempts_out.snapshot() });
                    }
                    errors
                }
                Err(e) => vec![format!("/: not JSON: {e}")],
            };
            attempts_out.push(Attempt { raw: content.clone(), errors: errors.clone(), latency_ms, tokens });
            if attempt == 0 {
                messages.push(json!({"role": "assistant", "content": content}));
                messages.push(json!({"role": "user", "content": format!(
                    "That answer does not validate against the schema:\n{}\nAnswer again with JSON only.", errors.join("\n"))}));
            } else {
                return Err(LlmError::InvalidOutput(errors.join("; ")));
            }
        }
        Err(LlmError::InvalidOutput("no valid answer".into()))
    }
}

/// Models often wrap JSON in Markdown fences; take what is inside.
fn strip_fences(s: &str) -> &str {
    let t = s.trim();
    let t = t.strip_prefix("```json").or_else(|| t.strip_prefix("```")).unwrap_or(t);
    t.strip_suffix("```").unwrap_or(t).trim()
}
