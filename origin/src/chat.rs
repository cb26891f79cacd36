//! The chat model: an OpenAI-compatible `/chat/completions` client (OpenAI, vLLM, Ollama, TGI,
//! llama.cpp server) behind a timeout and a circuit breaker. Callers treat every error as "no
//! model now" and fall back to what works offline.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

/// `[chat]` in the configuration. No `url`: no chat model; workflows answer extractively.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// The API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub url: Option<String>,
    pub model: String,
    /// Sent as a bearer token. From `AGENTPLANE_CHAT_API_KEY`; never logged.
    pub api_key: Option<String>,
    pub timeout_secs: u64,
    /// Prices in millionths of a currency unit per million tokens, for the usage ledger.
    pub input_price_micros_per_mtok: u64,
    pub output_price_micros_per_mtok: u64,
    /// Consecutive failures that open the breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cooldown_secs: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            url: None,
            model: "gpt-4o-mini".into(),
            api_key: None,
            timeout_secs: 30,
            input_price_micros_per_mtok: 0,
            output_price_micros_per_mtok: 0,
            breaker_failures: 3,
            breaker_cooldown_secs: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("the chat model is failing; not calling it for a while")]
    BreakerOpen,
    #[error("the chat model did not answer in time")]
    Timeout,
    #[error("the chat model answered HTTP {0}")]
    Status(u16),
    #[error("cannot reach the chat model: {0}")]
    Transport(String),
    #[error("unexpected answer from the chat model: {0}")]
    Malformed(String),
}

/// One completion and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

/// Opens after `threshold` consecutive failures; after `cooldown` one call is let through, and
/// its outcome closes the breaker or opens it again.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<(u32, Option<Instant>)>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, state: Mutex::new((0, None)) }
    }

    /// Whether a call may go out at `now`.
    pub fn allow(&self, now: Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.1 {
            Some(until) if now < until => false,
            Some(_) => {
                // Half-open: this call is the trial; the next failure re-opens at once.
                s.1 = None;
                s.0 = self.threshold - 1;
                true
            }
            None => true,
        }
    }

    pub fn record(&self, ok: bool, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            *s = (0, None);
        } else {
            s.0 += 1;
            if s.0 >= self.threshold {
                s.1 = Some(now + self.cooldown);
            }
        }
    }
}

#[derive(Debug)]
pub struct ChatClient {
    endpoint: String,
    config: ChatConfig,
    http: reqwest::Client,
    breaker: Breaker,
}

impl ChatClient {
    /// `None` when no chat model is configured.
    pub fn new(config: &ChatConfig) -> Result<Option<Self>, ChatError> {
        let Some(url) = config.url.as_deref().filter(|u| !u.is_empty()) else { return Ok(None) };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build()
            .map_err(|e| ChatError::Transport(e.to_string()))?;
        Ok(Some(Self {
            endpoint: format!("{}/chat/completions", url.trim_end_matches('/')),
            config: config.clone(),
            http,
            breaker: Breaker::new(config.breaker_failures, Duration::from_secs(config.breaker_cooldown_secs)),
        }))
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The price of a call with these token counts, rounded up.
    pub fn cost_micros(&self, input: u64, output: u64) -> u64 {
        let micros = u128::from(input) * u128::from(self.config.input_price_micros_per_mtok)
            + u128::from(output) * u128::from(self.config.output_price_micros_per_mtok);
        u64::try_from(micros.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    /// One completion of a system and a user message, at temperature 0.
    pub async fn complete(&self, system: &str, user: &str) -> Result<Completion, ChatError> {
        if !self.breaker.allow(Instant::now()) {
            return Err(ChatError::BreakerOpen);
        }
        let result = self.call(system, user).await;
        self.breaker.record(result.is_ok(), Instant::now());
        result
    }

    async fn call(&self, system: &str, user: &str) -> Result<Completion, ChatError> {
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        });
        let mut request = self.http.post(&self.endpoint).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() { ChatError::Timeout } else { ChatError::Transport(e.without_url().to_string()) }
        })?;
        if !response.status().is_success() {
            return Err(ChatError::Status(response.status().as_u16()));
        }
        let v: Value = response.json().await.map_err(|e| {
            if e.is_timeout() { ChatError::Timeout } else { ChatError::Malformed(e.without_url().to_string()) }
        })?;
        let text = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| ChatError::Malformed("no choices[0].message.content".into()))?
            .to_owned();
        let input_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
        let output_tokens = v["usage"]["completion_tokens"].as_u64().unwrap_or(0);
        Ok(Completion { text, input_tokens, output_tokens, cost_micros: self.cost_micros(input_tokens, output_tokens) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_failures_and_half_opens_after_the_cooldown() {
        let b = Breaker::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(b.allow(t0));
        b.record(false, t0);
        assert!(b.allow(t0));
        b.record(false, t0);
        assert!(!b.allow(t0 + Duration::from_secs(5)), "open");
        assert!(b.allow(t0 + Duration::from_secs(11)), "half-open: one trial");
        b.record(false, t0 + Duration::from_secs(11));
        assert!(!b.allow(t0 + Duration::from_secs(12)), "a failed trial re-opens at once");
        assert!(b.allow(t0 + Duration::from_secs(22)));
        b.record(true, t0 + Duration::from_secs(22));
        assert!(b.allow(t0 + Duration::from_secs(22)));
        b.record(false, t0 + Duration::from_secs(22));
        assert!(b.allow(t0 + Duration::from_secs(22)), "closed again: one failure is not enough");
    }

    #[test]
    fn prices_are_per_million_tokens_rounded_up() {
        let config = ChatConfig {
            url: Some("http://127.0.0.1:1/v1".into()),
            input_price_micros_per_mtok: 150_000,
            output_price_micros_per_mtok: 600_000,
            ..ChatConfig::default()
        };
        let c = ChatClient::new(&config).unwrap().unwrap();
        assert_eq!(c.cost_micros(1_000_000, 0), 150_000);
        assert_eq!(c.cost_micros(1, 1), 1);
        assert_eq!(c.cost_micros(0, 0), 0);
        assert!(ChatClient::new(&ChatConfig::default()).unwrap().is_none());
    }
}
