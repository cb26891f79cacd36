//! Embedding providers. The default is the local model; every vector is stored with the name of
//! the model that made it.

pub mod local;

pub use local::LocalModel;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model cannot be loaded: {0}")]
    Load(String),
    #[error("embedding failed: {0}")]
    Inference(String),
}

/// Where vectors come from.
#[derive(Debug, Clone)]
pub enum Embedder {
    Local(LocalModel),
}

impl Embedder {
    pub fn model(&self) -> &'static str {
        match self {
            Embedder::Local(_) => local::MODEL,
        }
    }

    pub fn provider(&self) -> &'static str {
        match self {
            Embedder::Local(_) => "local",
        }
    }

    pub fn dimensions(&self) -> usize {
        match self {
            Embedder::Local(_) => local::DIMENSIONS,
        }
    }

    /// Embeds `texts` off the async threads (inference is CPU-bound); returns the vectors and the
    /// tokens read.
    pub async fn embed(&self, texts: Vec<String>) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        match self {
            Embedder::Local(m) => {
                let m = m.clone();
                tokio::task::spawn_blocking(move || m.embed_counting(&texts))
                    .await
                    .map_err(|e| EmbedError::Inference(format!("embedding task failed: {e}")))?
            }
        }
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
    pub model: &'static str,
    pub tokens: u64,
}

impl Embedder {
    /// Embeds one text; `None` (with a warning) when the provider fails, so callers fall back to
    /// lexical search or store a NULL vector to back-fill later.
    pub async fn embed_one(&self, text: String) -> Option<(Vec<f32>, Usage)> {
        match self.embed(vec![text]).await {
            Ok((mut v, tokens)) if v.len() == 1 => {
                let usage = Usage { provider: self.provider(), model: self.model(), tokens };
                v.pop().map(|e| (e, usage))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "embedding failed; continuing without a vector");
                None
            }
        }
    }
}
