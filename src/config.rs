//! Typed configuration, read once from the environment at start-up. Every variable has a default
//! that runs the service locally (SQLite, sample flows, sandbox WhatsApp and ERP, no LLM); the
//! README lists them all.

use std::path::PathBuf;
use std::time::Duration;

use crate::channel::whatsapp::client::GraphSettings;
use crate::erp::ErpSettings;
use crate::llm::LlmSettings;
use crate::llm::speech::SpeechSettings;
use crate::store::{DatabaseUrl, StoreError};

/// The app secret used when `WHATSAPP_APP_SECRET` is unset: fine for the local sandbox and
/// `chat`, refused as soon as a real Graph API is configured.
pub const DEV_APP_SECRET: &str = "carewell-dev-secret";
/// The verify token used when `WHATSAPP_VERIFY_TOKEN` is unset.
pub const DEV_VERIFY_TOKEN: &str = "carewell-dev-verify";

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that cannot be used.
    #[error("config.invalid: {name}={value:?}: {why}")]
    Invalid {
        /// Variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        why: String,
    },
    /// DATABASE_URL.
    #[error(transparent)]
    Database(#[from] StoreError),
}

/// All settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub host: String,
    /// Listen port (0: any free port, printed at start).
    pub port: u16,
    /// Database.
    pub database: DatabaseUrl,
    /// Flows directory (of the single business, without `TENANTS_DIR`).
    pub flows_dir: PathBuf,
    /// Where each tenant's folder is (`TENANTS_DIR`); `None`: one business, from `flows_dir` and
    /// this environment's credentials (see [`crate::tenant`]).
    pub tenants_dir: Option<PathBuf>,
    /// The key tenants' credentials are sealed with (`TENANT_SECRETS_KEY`, 64 hex digits).
    pub tenant_secrets_key: Option<crate::tenant::secret::SecretsKey>,
    /// Webhook verify token.
    pub verify_token: String,
    /// App secret for `X-Hub-Signature-256`.
    pub app_secret: String,
    /// Graph API, when configured (otherwise the sandbox keeps outbound messages).
    pub graph: Option<GraphSettings>,
    /// Sender number override (otherwise the number each message arrived on).
    pub phone_number_id: Option<String>,
    /// LLM, when configured.
    pub llm: Option<LlmSettings>,
    /// Speech to text for voice notes, when configured (`SPEECH_BASE_URL`).
    pub speech: Option<SpeechSettings>,
    /// ERP, when configured (otherwise the sandbox).
    pub erp: Option<ErpSettings>,
    /// Conversations processed at once.
    pub worker_concurrency: usize,
    /// Outbox attempts before dead-lettering.
    pub outbox_max_attempts: u32,
    /// First retry delay.
    pub outbox_base_delay: Duration,
    /// `json` for JSON logs.
    pub log_json: bool,
    /// The break-glass bearer token of the admin API (`ADMIN_TOKEN`): every permission, for
    /// when nobody can log in. Off unless set; leave it unset in production once an owner exists.
    pub admin_token: Option<String>,
    /// A console session ends after this long without a request (`SESSION_IDLE_MINUTES`, 30).
    pub session_idle: Duration,
    /// Messages a customer may send per minute before further ones are kept but not answered.
    pub rate_sender_per_minute: u32,
    /// Requests per second one IP address may make to the webhook.
    pub rate_ip_per_second: u32,
    /// Requests per second one IP address may make to the admin API.
    pub rate_admin_per_second: u32,
    /// The header a trusted reverse proxy puts the client's address in (`X-Forwarded-For`,
    /// `X-Real-IP`, `Forwarded`), for the per-address rate limits; `None` (the default) uses the
    /// connection's address. Set it only behind a proxy that sets or appends this header: a
    /// client can write any header it likes.
    pub trusted_proxy_header: Option<String>,
    /// Messages per second WhatsApp accepts from one business number, across every process
    /// (`OUTBOUND_PER_SECOND`; WhatsApp's default is 80, up to 1,000 once upgraded: reference
    /// §10, "Throughput"). Each process paces each number at this divided by `instances`.
    pub outbound_per_second: u32,
    /// Service processes sharing the business numbers (`INSTANCES`, default 1): each paces its
    /// sends at `outbound_per_second / instances` per number, so together they stay within it.
    pub instances: u32,
    /// How long a process keeps an outbox row it claimed before another may take it.
    pub outbox_claim: Duration,
    /// How long a worker holds a conversation's lease before another process may take it over.
    pub lease: Duration,
    /// Where hand-offs are posted for the team (`HANDOFF_WEBHOOK_URL`), if anywhere.
    pub team_webhook: Option<TeamWebhook>,
    /// Staff WhatsApp numbers (digits, `HANDOFF_STAFF_NUMBERS`, comma-separated) told of each
    /// hand-off; none by default.
    pub staff_numbers: Vec<String>,
    /// The key that signs website chat sessions' tokens (`WIDGET_SECRET`; by default one derived
    /// from `WHATSAPP_APP_SECRET`, the same in every instance given the same environment).
    pub widget_secret: String,
    /// Website chat requests per minute per address (`RATE_WEB_IP_PER_MINUTE`, 300).
    pub rate_web_ip_per_minute: u32,
    /// Website chat messages per minute per session (`RATE_WEB_SESSION_PER_MINUTE`, 30).
    pub rate_web_session_per_minute: u32,
    /// What the LLM's provider charges per million tokens, in the currency of its bill
    /// (`LLM_PRICE_PER_MILLION_TOKENS`, a decimal; unset: the dashboard shows tokens, not cost).
    pub llm_price_per_million_tokens: Option<f64>,
    /// HTTP worker threads (`HTTP_WORKERS`); each is a thread beside the runtime's own, so on a
    /// small machine fewer means fewer thread switches (see BENCHMARKS.md).
    pub http_workers: usize,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Where hand-offs are posted for the team: a signed JSON POST per hand-off
/// (`pipeline::queue::HandoffNotice`).
#[derive(Debug, Clone)]
pub struct TeamWebhook {
    /// `HANDOFF_WEBHOOK_URL`.
    pub url: String,
    /// `HANDOFF_WEBHOOK_SECRET`: the HMAC-SHA256 key of the `X-Carewell-Signature` header.
    pub secret: String,
    /// Per POST (`HANDOFF_WEBHOOK_TIMEOUT_MS`, default 5 s).
    pub timeout: Duration,
}

/// Staff numbers from a comma-separated list: digits only (a leading `+`, spaces and dashes are
/// dropped), 8 to 15 of them (E.164). Errors name the entry that is not a number.
fn staff_numbers(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let digits: String = n.chars().filter(|c| !matches!(c, '+' | ' ' | '-')).collect();
            if (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
                Ok(digits)
            } else {
                Err(ConfigError::Invalid {
                    name: "HANDOFF_STAFF_NUMBERS",
                    value: n.to_string(),
                    why: "each entry must be a phone number in international format, e.g. +971501234567".into(),
                })
            }
        })
        .collect()
}

fn number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => {
            v.parse().map_err(|_| ConfigError::Invalid { name, value: v, why: "expected a whole number".into() })
        }
    }
}

impl Settings {
    /// Reads the environment. Errors name the variable and what it should hold.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let graph = match var("WHATSAPP_API_BASE_URL") {
            Some(base_url) => Some(GraphSettings {
                base_url,
                access_token: var("WHATSAPP_ACCESS_TOKEN").ok_or(ConfigError::Invalid {
                    name: "WHATSAPP_ACCESS_TOKEN",
                    value: String::new(),
                    why: "required when WHATSAPP_API_BASE_URL is set".into(),
                })?,
                timeout: Duration::from_millis(number("WHATSAPP_TIMEOUT_MS", 10_000u64)?),
            }),
            None => None,
        };
        let app_secret = var("WHATSAPP_APP_SECRET").unwrap_or_else(|| DEV_APP_SECRET.into());
        let widget_secret = var("WIDGET_SECRET").unwrap_or_else(|| derived_widget_secret(&app_secret));
        if graph.is_some() && app_secret == DEV_APP_SECRET {
            return Err(ConfigError::Invalid {
                name: "WHATSAPP_APP_SECRET",
                value: String::new(),
                why: "set it to your Meta app secret before talking to the real Graph API".into(),
            });
        }
        let llm = match var("LLM_BASE_URL") {
            Some(base_url) => Some(LlmSettings {
                base_url,
                api_key: var("LLM_API_KEY"),
                model: var("LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                timeout: Duration::from_millis(number("LLM_TIMEOUT_MS", 4_000u64)?),
                json_schema_mode: var("LLM_JSON_SCHEMA").is_none_or(|v| v != "0" && v != "false"),
                budget: Duration::from_millis(number("LLM_BUDGET_MS", 6_000u64)?),
                breaker_failures: number("LLM_BREAKER_FAILURES", 5u32)?.max(1),
                breaker_cooldown: Duration::from_millis(number("LLM_BREAKER_COOLDOWN_MS", 30_000u64)?),
                max_concurrency: number("LLM_MAX_CONCURRENCY", 256usize)?.max(1),
            }),
            None => None,
        };
        let speech = match var("SPEECH_BASE_URL") {
            Some(base_url) => Some(SpeechSettings {
                base_url,
                api_key: var("SPEECH_API_KEY"),
                model: var("SPEECH_MODEL").unwrap_or_else(|| "whisper-1".into()),
                timeout: Duration::from_millis(number("SPEECH_TIMEOUT_MS", 8_000u64)?),
            }),
            None => None,
        };
        let erp = match var("ERP_BASE_URL") {
            Some(base_url) => Some(ErpSettings {
                base_url,
                api_key: var("ERP_API_KEY").unwrap_or_default(),
                api_secret: var("ERP_API_SECRET").unwrap_or_default(),
                timeout: Duration::from_millis(number("ERP_TIMEOUT_MS", 10_000u64)?),
            }),
            None => None,
        };
        Ok(Settings {
            host: var("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: number("PORT", 8080u16)?,
            database: DatabaseUrl::parse(var("DATABASE_URL").as_deref())?,
            flows_dir: PathBuf::from(var("FLOWS_DIR").unwrap_or_else(|| "flows".into())),
            tenants_dir: var("TENANTS_DIR").map(PathBuf::from),
            tenant_secrets_key: match var("TENANT_SECRETS_KEY") {
                None => None,
                Some(v) => Some(crate::tenant::secret::SecretsKey::from_hex(&v).map_err(|e| ConfigError::Invalid {
                    name: "TENANT_SECRETS_KEY",
                    value: "(hidden)".into(),
                    why: e.to_string(),
                })?),
            },
            verify_token: var("WHATSAPP_VERIFY_TOKEN").unwrap_or_else(|| DEV_VERIFY_TOKEN.into()),
            app_secret,
            graph,
            phone_number_id: var("WHATSAPP_PHONE_NUMBER_ID"),
            llm,
            speech,
            erp,
            worker_concurrency: number("WORKER_CONCURRENCY", 8192usize)?.max(1),
            outbox_max_attempts: number("OUTBOX_MAX_ATTEMPTS", 8u32)?.max(1),
            outbox_base_delay: Duration::from_millis(number("OUTBOX_BASE_DELAY_MS", 500u64)?),
            log_json: var("LOG_FORMAT").is_some_and(|v| v == "json"),
            admin_token: var("ADMIN_TOKEN"),
            session_idle: Duration::from_secs(60 * number("SESSION_IDLE_MINUTES", 30u64)?.max(1)),
            rate_sender_per_minute: number("RATE_SENDER_PER_MINUTE", 30u32)?.max(1),
            rate_ip_per_second: number("RATE_IP_PER_SECOND", 200u32)?.max(1),
            rate_admin_per_second: number("RATE_ADMIN_PER_SECOND", 10u32)?.max(1),
            trusted_proxy_header: var("TRUSTED_PROXY_HEADER").filter(|h| !h.trim().is_empty()),
            outbound_per_second: number("OUTBOUND_PER_SECOND", 80u32)?.max(1),
            instances: number("INSTANCES", 1u32)?.max(1),
            outbox_claim: Duration::from_millis(number("OUTBOX_CLAIM_MS", 30_000u64)?.max(1000)),
            lease: Duration::from_millis(number("LEASE_MS", 30_000u64)?.max(1000)),
            http_workers: number("HTTP_WORKERS", 1usize)?.max(1),
            widget_secret,
            rate_web_ip_per_minute: number("RATE_WEB_IP_PER_MINUTE", 300u32)?.max(1),
            rate_web_session_per_minute: number("RATE_WEB_SESSION_PER_MINUTE", 30u32)?.max(1),
            llm_price_per_million_tokens: match var("LLM_PRICE_PER_MILLION_TOKENS") {
                None => None,
                Some(v) => Some(v.parse::<f64>().ok().filter(|p| p.is_finite() && *p >= 0.0).ok_or_else(|| {
                    ConfigError::Invalid {
                        name: "LLM_PRICE_PER_MILLION_TOKENS",
                        value: v.clone(),
                        why: "expected a price such as 0.60".into(),
                    }
                })?),
            },
            team_webhook: match var("HANDOFF_WEBHOOK_URL") {
                Some(url) => Some(TeamWebhook {
                    url,
                    secret: var("HANDOFF_WEBHOOK_SECRET").ok_or(ConfigError::Invalid {
                        name: "HANDOFF_WEBHOOK_SECRET",
                        value: String::new(),
                        why: "required with HANDOFF_WEBHOOK_URL: the receiver checks each POST's signature with it"
                            .into(),
                    })?,
                    timeout: Duration::from_millis(number("HANDOFF_WEBHOOK_TIMEOUT_MS", 5_000u64)?),
                }),
                None => None,
            },
            staff_numbers: staff_numbers(var("HANDOFF_STAFF_NUMBERS").as_deref().unwrap_or_default())?,
        })
    }
}

/// The widget's session-signing key when `WIDGET_SECRET` is not set: HMAC-SHA256 of a fixed label
/// under the app secret, in hex (never the app secret itself).
fn derived_widget_secret(app_secret: &str) -> String {
    use hmac::Mac;
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(b"carewell website chat sessions");
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => app_secret.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_numbers_are_read_as_digits_and_a_wrong_one_is_named() {
        assert_eq!(staff_numbers("").unwrap(), Vec::<String>::new());
        assert_eq!(
            staff_numbers("+971 50 000 9900, 971-50-111-2222").unwrap(),
            vec!["971500009900".to_string(), "971501112222".to_string()]
        );
        let err = staff_numbers("+971500009900, front desk").unwrap_err().to_string();
        assert!(err.contains("HANDOFF_STAFF_NUMBERS") && err.contains("front desk"), "{err}");
        assert!(staff_numbers("12345").is_err(), "too short for a phone number");
    }
}
