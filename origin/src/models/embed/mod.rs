//! Embedding providers: the local model (the default) or an OpenAI-compatible HTTP API. Every
//! vector is stored with the name of the model that made it; rows whose provider was unavailable
//! keep a NULL vector until the back-fill embeds them.

pub mod backfill;
pub mod batcher;
pub mod bert;
pub mod local;
pub mod query;
pub mod remote;

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

pub use local::LocalModel;
pub use remote::{RemoteConfig, RemoteEmbedder};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model cannot be loaded: {0}")]
    Load(String),
    #[error("embedding failed: {0}")]
    Inference(String),
    /// The provider cannot be reached or its circuit is open; worth trying again later.
    #[error("embedding provider unavailable: {0}")]
    Unavailable(String),
}

/// Where vectors come from.
#[derive(Debug, Clone)]
pub enum Engine {
    Local(LocalModel),
    Remote(RemoteEmbedder),
}

/// An engine and the vectors of its recent queries. Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct Embedder {
    engine: Engine,
    queries: Arc<query::QueryCache>,
    /// The local model's query workers (none for a remote provider).
    batcher: Option<batcher::QueryBatcher>,
    latency: Latency,
}

/// How long embedding calls take, by provider and outcome; `/metrics` registers it.
pub type Latency = Family<LatencyLabels, Histogram>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    provider: &'static str,
    outcome: &'static str,
}

impl Embedder {
    /// `query_cache_entries` recent query vectors are kept; 0 keeps none.
    pub fn new(engine: Engine, query_cache_entries: usize) -> Self {
        let batcher = match &engine {
            Engine::Local(m) => {
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                // Without its threads a query runs alone on a blocking thread, as a batch does.
                batcher::QueryBatcher::start(m.clone(), workers)
                    .inspect_err(|e| tracing::warn!(error = %e, "query batching is off"))
                    .ok()
            }
            Engine::Remote(_) => None,
        };
        // 1 ms to about 30 s: a short query on the local model to a remote batch that times out.
        let latency = Latency::new_with_constructor(|| Histogram::new(exponential_buckets(1e-3, 2.0, 16)));
        Self { engine, queries: Arc::new(query::QueryCache::new(query_cache_entries)), batcher, latency }
    }

    /// Every call's latency (a batch is one call; a query from the cache is none).
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    fn observe<T>(&self, started: Instant, result: &Result<T, EmbedError>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        let labels = LatencyLabels { provider: self.provider(), outcome };
        self.latency.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    }

    pub fn model(&self) -> &str {
        match &self.engine {
            Engine::Local(_) => local::MODEL,
            Engine::Remote(r) => r.model(),
        }
    }

    pub fn provider(&self) -> &'static str {
        match &self.engine {
            Engine::Local(_) => "local",
            Engine::Remote(_) => "openai-compatible",
        }
    }

    pub fn dimensions(&self) -> usize {
        match &self.engine {
            Engine::Local(_) => local::DIMENSIONS,
            Engine::Remote(r) => r.dimensions(),
        }
    }

    /// Whether a call costs money (a remote provider with a configured price).
    pub fn is_priced(&self) -> bool {
        matches!(&self.engine, Engine::Remote(r) if r.is_priced())
    }

    /// The remote provider's circuit state; the local model has none.
    pub fn breaker(&self) -> Option<crate::models::breaker::Status> {
        match &self.engine {
            Engine::Local(_) => None,
            Engine::Remote(r) => Some(r.breaker()),
        }
    }

    /// Embeds `texts` in batches; returns one vector per text, in order, and what the call used.
    /// Local inference runs off the async threads, since it is CPU-bound.
    pub async fn embed(&self, texts: Vec<String>) -> Result<(Vec<Vec<f32>>, Usage), EmbedError> {
        let started = Instant::now();
        let span =
            tracing::info_span!("embedding", otel.kind = "client", provider = self.provider(), texts = texts.len());
        let result = tracing::Instrument::instrument(self.embed_uncounted(texts), span).await;
        self.observe(started, &result);
        result
    }

    async fn embed_uncounted(&self, texts: Vec<String>) -> Result<(Vec<Vec<f32>>, Usage), EmbedError> {
        let (vectors, tokens) = match &self.engine {
            Engine::Local(m) => {
                let m = m.clone();
                tokio::task::spawn_blocking(move || m.embed_counting(&texts))
                    .await
                    .map_err(|e| EmbedError::Inference(format!("embedding task failed: {e}")))??
            }
            Engine::Remote(r) => r.embed(&texts).await?,
        };
        Ok((vectors, self.usage(tokens)))
    }

    /// Embeds one text.
    pub async fn embed_one(&self, text: String) -> Result<(Vec<f32>, Usage), EmbedError> {
        let (mut v, usage) = self.embed(vec![text]).await?;
        match (v.pop(), v.is_empty()) {
            (Some(e), true) => Ok((e, usage)),
            _ => Err(EmbedError::Inference("expected exactly one vector".into())),
        }
    }

    /// Embeds a search query, from the cache when the same text was embedded recently; the
    /// usage is `None` then, since nothing was spent.
    pub async fn embed_query(&self, text: &str) -> Result<(Arc<[f32]>, Option<Usage>), EmbedError> {
        let key = query::QueryCache::key(text);
        if let Some(v) = self.queries.get(&key) {
            return Ok((v, None));
        }
        let (v, usage) = match &self.batcher {
            Some(b) => {
                let started = Instant::now();
                let span =
                    tracing::info_span!("embedding", otel.kind = "client", provider = self.provider(), texts = 1);
                let result = tracing::Instrument::instrument(b.embed(text.to_owned()), span).await;
                self.observe(started, &result);
                let (v, tokens) = result?;
                (v, self.usage(tokens))
            }
            None => self.embed_one(text.to_owned()).await?,
        };
        let v: Arc<[f32]> = Arc::from(v);
        self.queries.put(key, v.clone());
        Ok((v, Some(usage)))
    }

    fn usage(&self, tokens: u64) -> Usage {
        let cost_micros = match &self.engine {
            // In process: no price per call.
            Engine::Local(_) => 0,
            Engine::Remote(r) => r.cost_micros(tokens),
        };
        Usage { provider: self.provider(), model: self.model().to_owned(), tokens, cost_micros }
    }
}

/// The text of a document that gets embedded: title and content, as BEIR's dense baselines do.
pub fn document_text(title: &str, content: &str) -> String {
    if title.is_empty() { content.to_owned() } else { format!("{title} {content}") }
}

/// What the usage ledger records of one embedding call.
#[derive(Debug, Clone)]
pub struct Usage {
    pub provider: &'static str,
    pub model: String,
    pub tokens: u64,
    /// Millionths of a currency unit, from the configured price.
    pub cost_micros: u64,
}
