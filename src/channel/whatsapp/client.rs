//! The Graph API client: sends rendered messages with
//! `POST {WHATSAPP_API_BASE_URL}/{phone_number_id}/messages` and a bearer token
//! (`../shared/reference/whatsapp-cloud-api.md` §7, §9).

use std::time::Duration;

use serde_json::Value;

/// Send failures, each with a stable code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// No answer in time.
    #[error("channel.send_timeout: the Graph API did not answer within {0} ms; the send will be retried")]
    Timeout(u64),
    /// Could not connect.
    #[error("channel.send_transport: {0}; check WHATSAPP_API_BASE_URL")]
    Transport(String),
    /// The Graph API refused the message.
    #[error("channel.send_refused: HTTP {status}, WhatsApp error {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// WhatsApp's `error.code`.
        code: i64,
        /// WhatsApp's message and details.
        message: String,
    },
}

impl SendError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Timeout(_) => "channel.send_timeout",
            SendError::Transport(_) => "channel.send_transport",
            SendError::Api { .. } => "channel.send_refused",
        }
    }

    /// Whether a retry may succeed: timeouts, transport, HTTP 5xx and 429, and the error codes the
    /// reference lists as transient (4, 80007, 130429, 131000, 131056, 131057).
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Timeout(_) | SendError::Transport(_) => true,
            SendError::Api { status, code, .. } => {
                *status >= 500 || *status == 429 || matches!(code, 4 | 80007 | 130429 | 131000 | 131056 | 131057)
            }
        }
    }
}

/// The largest file a customer can send: WhatsApp refuses larger inbound files with error
/// 131052 (reference §9, "Media download").
pub const MAX_MEDIA_BYTES: u64 = 100 * 1024 * 1024;

/// Graph API settings.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// Base with version, such as `https://graph.facebook.com/v23.0`.
    pub base_url: String,
    /// System-user access token.
    pub access_token: String,
    /// Time allowed per send.
    pub timeout: Duration,
}

/// The Graph API client.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    settings: GraphSettings,
}

impl GraphClient {
    /// Builds a client. Errors: the HTTP client could not be built.
    pub fn new(settings: GraphSettings) -> Result<Self, SendError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| SendError::Transport(e.to_string()))?;
        Ok(GraphClient { http, settings })
    }

    /// Downloads a file the customer sent: `GET {base}/{media_id}` for a short-lived URL, then
    /// `GET <url>` with the same bearer token (reference §9, "Media download"). Returns the bytes
    /// and their MIME type. Errors as for [`GraphClient::send`]; an unknown or expired id is
    /// `channel.send_refused` with the Graph API's status.
    pub async fn download_media(&self, media_id: &str) -> Result<(Vec<u8>, String), SendError> {
        let timeout_ms = self.settings.timeout.as_millis() as u64;
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() { SendError::Timeout(timeout_ms) } else { SendError::Transport(e.to_string()) }
        };
        let refused = |status: u16, v: &Value| SendError::Api {
            status,
            code: v.pointer("/error/code").and_then(Value::as_i64).unwrap_or(0),
            message: v.pointer("/error/message").and_then(Value::as_str).unwrap_or("media download failed").to_string(),
        };
        let url = format!("{}/{}", self.settings.base_url.trim_end_matches('/'), media_id);
        let resp = self.http.get(url).bearer_auth(&self.settings.access_token).send().await.map_err(map_err)?;
        let status = resp.status();
        let meta: Value = resp.json().await.unwrap_or(Value::Null);
        let Some(file_url) = meta.get("url").and_then(Value::as_str).filter(|_| status.is_success()) else {
            return Err(refused(status.as_u16(), &meta));
        };
        let resp = self.http.get(file_url).bearer_auth(&self.settings.access_token).send().await.map_err(map_err)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(refused(status.as_u16(), &Value::Null));
        }
        let mime = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .or(meta.get("mime_type").and_then(Value::as_str))
            .unwrap_or("application/octet-stream")
            .to_string();
        if resp.content_length().is_some_and(|n| n > MAX_MEDIA_BYTES) {
            return Err(SendError::Api { status: 413, code: 131052, message: "the file is larger than 100 MB".into() });
        }
        let bytes = resp.bytes().await.map_err(map_err)?;
        if bytes.len() as u64 > MAX_MEDIA_BYTES {
            return Err(SendError::Api { status: 413, code: 131052, message: "the file is larger than 100 MB".into() });
        }
        Ok((bytes.to_vec(), mime))
    }

    /// Sends `body` from the business number `phone_number_id`; returns the message's wamid.
    pub async fn send(&self, phone_number_id: &str, body: &Value) -> Result<String, SendError> {
        let url = format!("{}/{}/messages", self.settings.base_url.trim_end_matches('/'), phone_number_id);
        let timeout_ms = self.settings.timeout.as_millis() as u64;
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() { SendError::Timeout(timeout_ms) } else { SendError::Transport(e.to_string()) }
        };
        let resp =
            self.http.post(url).bearer_auth(&self.settings.access_token).json(body).send().await.map_err(map_err)?;
        let status = resp.status();
        let text = resp.text().await.map_err(map_err)?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            if let Some(id) = v.pointer("/messages/0/id").and_then(Value::as_str) {
                return Ok(id.to_string());
            }
        }
        Err(SendError::Api {
            status: status.as_u16(),
            code: v.pointer("/error/code").and_then(Value::as_i64).unwrap_or(0),
            message: [v.pointer("/error/message"), v.pointer("/error/error_data/details")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" — ")
                .chars()
                .take(300)
                .collect(),
        })
    }
}
