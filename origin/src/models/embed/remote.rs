//! An OpenAI-compatible `/v1/embeddings` client (OpenAI, Ollama, vLLM, TEI, LiteLLM...).
//!
//! Each attempt has a timeout; transient failures (timeouts, connection errors, 429, 5xx) are
//! retried with exponential backoff and jitter; a call that still fails counts against a circuit
//! breaker. While the breaker is open, calls fail at once, so search answers lexically and writes
//! store NULL vectors for the back-fill to complete later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable as _};
use serde::{Deserialize, Serialize};

use super::EmbedError;
use crate::models::breaker::{CircuitBreaker, Status};

/// The `[remote_embedding]` section of the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// The API's base URL (`http://127.0.0.1:11434/v1`) or its full `/embeddings` URL.
    pub url: String,
    pub model: String,
    /// The vector length the model returns; must equal the database column's.
    pub dimensions: usize,
    /// Send `dimensions` in the request (for models that can shorten their vectors).
    pub request_dimensions: bool,
    /// The bearer token, read from `AGENTPLANE_EMBEDDING_API_KEY` only, never from a file.
    #[serde(skip)]
    pub api_key: Option<String>,
    pub timeout_ms: u64,
    /// Retries after the first attempt.
    pub max_retries: usize,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Texts per request.
    pub batch_size: usize,
    /// Failed calls in a row that open the breaker.
    pub breaker_threshold: u32,
    pub breaker_cooldown_ms: u64,
    /// Price in millionths of a currency unit per million input tokens, for the usage ledger.
    pub price_micros_per_mtok: u64,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:11434/v1".into(),
            model: "all-minilm".into(),
            dimensions: 384,
            request_dimensions: false,
            api_key: None,
            timeout_ms: 10_000,
            max_retries: 2,
            backoff_min_ms: 200,
            backoff_max_ms: 5_000,
            batch_size: 64,
            breaker_threshold: 5,
            breaker_cooldown_ms: 30_000,
            price_micros_per_mtok: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RemoteEmbedder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RemoteConfig,
    endpoint: String,
    http: reqwest::Client,
    breaker: CircuitBreaker,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
    #[serde(default)]
    usage: Option<ResponseUsage>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

#[derive(Deserialize)]
struct ResponseUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// One attempt's failure, and whether another attempt may help.
#[derive(Debug)]
struct Attempt {
    error: EmbedError,
    transient: bool,
}

impl RemoteEmbedder {
    pub fn new(config: RemoteConfig) -> Result<Self, EmbedError> {
        let url = config.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(EmbedError::Load(format!("embedding url {url:?} is not an http(s) URL")));
        }
        let endpoint = if url.ends_with("/embeddings") { url.to_owned() } else { format!("{url}/embeddings") };
        if config.batch_size == 0 || config.dimensions == 0 {
            return Err(EmbedError::Load("embedding batch_size and dimensions must be positive".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5_000)))
            .build()
            .map_err(|e| EmbedError::Load(format!("HTTP client: {e}")))?;
        let breaker = CircuitBreaker::new(config.breaker_threshold, Duration::from_millis(config.breaker_cooldown_ms));
        Ok(Self { inner: Arc::new(Inner { config, endpoint, http, breaker }) })
    }

    pub fn model(&self) -> &str {
        &self.inner.config.model
    }

    pub fn dimensions(&self) -> usize {
        self.inner.config.dimensions
    }

    /// The price of `tokens` input tokens, rounded up.
    pub fn cost_micros(&self, tokens: u64) -> u64 {
        crate::models::usage::micros([(tokens, self.inner.config.price_micros_per_mtok)])
    }

    pub fn is_priced(&self) -> bool {
        self.inner.config.price_micros_per_mtok > 0
    }

    pub fn breaker(&self) -> Status {
        self.inner.breaker.status()
    }

    /// Embeds `texts` in requests of `batch_size`; returns the vectors in order and the tokens
    /// the provider counted.
    pub async fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        let mut tokens = 0;
        for chunk in texts.chunks(self.inner.config.batch_size) {
            let (v, t) = self.call(chunk).await?;
            vectors.extend(v);
            tokens += t;
        }
        Ok((vectors, tokens))
    }

    /// One request, with retries, through the breaker.
    async fn call(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        let inner = &self.inner;
        if let Err(refused) = inner.breaker.allow(Instant::now()) {
            return Err(EmbedError::Unavailable(format!(
                "circuit open after repeated failures of {}; next try in {} ms",
                inner.endpoint,
                refused.retry_in.as_millis()
            )));
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(inner.config.backoff_min_ms))
            .with_max_delay(Duration::from_millis(inner.config.backoff_max_ms))
            .with_max_times(inner.config.max_retries)
            .with_jitter();
        let outcome = (|| self.attempt(texts))
            .retry(backoff)
            .when(|a: &Attempt| a.transient)
            .notify(|a: &Attempt, wait: Duration| {
                tracing::warn!(error = %a.error, retry_in_ms = wait.as_millis() as u64, "embedding request failed; retrying");
            })
            .await;
        match outcome {
            Ok(v) => {
                inner.breaker.on_success();
                Ok(v)
            }
            Err(a) => {
                // A request the provider rejects as malformed says nothing about its health.
                if a.transient {
                    inner.breaker.on_failure(Instant::now());
                }
                Err(a.error)
            }
        }
    }

    async fn attempt(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), Attempt> {
        let inner = &self.inner;
        let body = Request {
            model: &inner.config.model,
            input: texts,
            encoding_format: "float",
            dimensions: inner.config.request_dimensions.then_some(inner.config.dimensions),
        };
        let mut request = inner.http.post(&inner.endpoint).json(&body);
        if let Some(key) = &inner.config.api_key {
            request = request.bearer_auth(key);
        }
        let transient = |e: reqwest::Error| Attempt {
            transient: true,
            error: EmbedError::Unavailable(if e.is_timeout() {
                format!("{} did not answer within {} ms", inner.endpoint, inner.config.timeout_ms)
            } else {
                format!("{}: {e}", inner.endpoint)
            }),
        };
        let response = request.send().await.map_err(transient)?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            let detail: String = detail.chars().take(300).collect();
            return Err(Attempt {
                transient: status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
                error: EmbedError::Unavailable(format!("{} answered {status}: {detail}", inner.endpoint)),
            });
        }
        let parsed: Response = response.json().await.map_err(|e| Attempt {
            transient: e.is_timeout(),
            error: EmbedError::Inference(format!("{} sent an unreadable answer: {e}", inner.endpoint)),
        })?;
        let permanent = |msg: String| Attempt { transient: false, error: EmbedError::Inference(msg) };
        if parsed.data.len() != texts.len() {
            return Err(permanent(format!("asked for {} vectors, got {}", texts.len(), parsed.data.len())));
        }
        let mut vectors = vec![Vec::new(); texts.len()];
        for (position, item) in parsed.data.into_iter().enumerate() {
            let i = item.index.unwrap_or(position);
            let len = item.embedding.len();
            if len != inner.config.dimensions {
                return Err(permanent(format!(
                    "model {} returned {len} dimensions; configured {}",
                    inner.config.model, inner.config.dimensions
                )));
            }
            match vectors.get_mut(i) {
                Some(slot) if slot.is_empty() => *slot = item.embedding,
                _ => return Err(permanent(format!("answer has a bad or repeated index {i}"))),
            }
        }
        let tokens = parsed
            .usage
            .and_then(|u| u.prompt_tokens.or(u.total_tokens))
            // Some servers report no usage; about four characters a token is the usual estimate.
            .unwrap_or_else(|| texts.iter().map(|t| t.len().div_ceil(4) as u64).sum());
        Ok((vectors, tokens))
    }
}
