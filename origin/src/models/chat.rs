//! The chat model: an OpenAI-compatible `/chat/completions` client (OpenAI, vLLM, Ollama, TGI,
//! llama.cpp server) behind a timeout and a circuit breaker. Callers treat every error as "no
//! model now" and fall back to what works offline.

use std::time::{Duration, Instant};

use crate::models::breaker::CircuitBreaker;

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
    /// The most tokens one answer may have (sent as `max_tokens`): it bounds what a call can
    /// cost, which budgets reserve before the call.
    pub max_output_tokens: u64,
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
            max_output_tokens: 1024,
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

#[derive(Debug)]
pub struct ChatClient {
    endpoint: String,
    config: ChatConfig,
    http: reqwest::Client,
    breaker: CircuitBreaker,
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
            breaker: CircuitBreaker::new(config.breaker_failures, Duration::from_secs(config.breaker_cooldown_secs)),
        }))
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The price of a call with these token counts, rounded up.
    pub fn cost_micros(&self, input: u64, output: u64) -> u64 {
        crate::models::usage::micros([
            (input, self.config.input_price_micros_per_mtok),
            (output, self.config.output_price_micros_per_mtok),
        ])
    }

    /// The most a completion of these messages can cost: the input at a token per 3 bytes (more
    /// than any tokenizer in use makes of text) and a full `max_output_tokens` answer.
    pub fn max_cost_micros(&self, system: &str, user: &str) -> u64 {
        let input = u64::try_from((system.len() + user.len()).div_ceil(3)).unwrap_or(u64::MAX);
        self.cost_micros(input, self.config.max_output_tokens)
    }

    /// How long a call may take in all, for how long its budget reservation holds.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs.max(1))
    }

    /// One completion of a system and a user message, at temperature 0.
    pub async fn complete(&self, system: &str, user: &str) -> Result<Completion, ChatError> {
        if self.breaker.allow(Instant::now()).is_err() {
            return Err(ChatError::BreakerOpen);
        }
        let result = self.call(system, user).await;
        match &result {
            Ok(_) => self.breaker.on_success(),
            Err(_) => self.breaker.on_failure(Instant::now()),
        }
        result
    }

    async fn call(&self, system: &str, user: &str) -> Result<Completion, ChatError> {
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "max_tokens": self.config.max_output_tokens,
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
