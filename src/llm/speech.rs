//! Speech to text for voice notes, through any OpenAI-style `POST {base}/audio/transcriptions`
//! endpoint (OpenAI, a local whisper.cpp or faster-whisper server, vLLM). Off unless
//! `SPEECH_BASE_URL` is set; without it a voice note is answered with the business's
//! `voice_note` message asking the customer to type.
//!
//! The request is `multipart/form-data` with `file` (the audio as WhatsApp sent it, usually
//! `audio/ogg; codecs=opus`) and `model`; the answer is JSON with a `text` field (the OpenAI
//! audio API's `json` response format).

use std::time::Duration;

use serde::Deserialize;

use super::LlmError;

/// Settings of the speech-to-text client.
#[derive(Debug, Clone)]
pub struct SpeechSettings {
    /// OpenAI-style base, such as `http://127.0.0.1:8000/v1`; `/audio/transcriptions` is appended.
    pub base_url: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<String>,
    /// Model name (`whisper-1` by default).
    pub model: String,
    /// Time allowed for one transcription.
    pub timeout: Duration,
}

/// The speech-to-text client.
#[derive(Debug, Clone)]
pub struct SpeechClient {
    http: reqwest::Client,
    settings: SpeechSettings,
}

#[derive(Deserialize)]
struct Transcription {
    text: String,
}

impl SpeechClient {
    /// Builds a client. Errors: the HTTP client could not be built (TLS set-up).
    pub fn new(settings: SpeechSettings) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        Ok(SpeechClient { http, settings })
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// Transcribes `audio` (its MIME type `mime`). Returns the text heard, trimmed (possibly
    /// empty: silence).
    ///
    /// Errors: [`LlmError::Timeout`], [`LlmError::Transport`], [`LlmError::Status`] as for the
    /// chat endpoint; [`LlmError::InvalidOutput`] when the answer has no `text`.
    pub async fn transcribe(&self, audio: Vec<u8>, mime: &str) -> Result<String, LlmError> {
        let url = format!("{}/audio/transcriptions", self.settings.base_url.trim_end_matches('/'));
        let extension = match mime.split(';').next().unwrap_or_default().trim() {
            "audio/ogg" | "audio/opus" => "ogg",
            "audio/mpeg" => "mp3",
            "audio/mp4" | "audio/aac" => "m4a",
            "audio/amr" => "amr",
            "audio/wav" | "audio/x-wav" => "wav",
            _ => "bin",
        };
        let part = reqwest::multipart::Part::bytes(audio)
            .file_name(format!("voice-note.{extension}"))
            .mime_str(mime)
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("model", self.settings.model.clone())
            .text("response_format", "json");
        let mut request = self.http.post(url).multipart(form);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout(self.settings.timeout.as_millis() as u64)
            } else {
                LlmError::Transport(e.to_string())
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(LlmError::Status { status: status.as_u16(), body: body.chars().take(300).collect() });
        }
        let answer: Transcription = response
            .json()
            .await
            .map_err(|e| LlmError::InvalidOutput(format!("the transcription answer has no text: {e}")))?;
        Ok(answer.text.trim().to_string())
    }
}
