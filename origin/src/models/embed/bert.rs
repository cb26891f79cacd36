//! A BERT encoder for sentence embeddings, on plain matrices (ndarray, whose products run on
//! matrixmultiply's packed AVX2/FMA kernels).
//!
//! Why not a tensor framework: a general one pads every sequence of a batch to the longest, runs
//! each of a few hundred small operations through its dispatch, and spreads each product over a
//! thread pool; for a 20-token query that overhead was most of the ~30 ms a query cost. Here the
//! tokens of all sequences of a batch are one matrix, so the dense layers never compute a padding
//! token, and only attention, which mixes tokens, works per sequence. Each call runs on the
//! calling thread; callers get parallelism by running calls side by side.

use ndarray::linalg::general_mat_mul;
use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Slice};
use safetensors::{Dtype, SafeTensors};

/// The parts of a `config.json` the encoder reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_eps() -> f32 {
    1e-12
}

fn default_act() -> String {
    "gelu".to_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("tensor {0} is missing")]
    Missing(String),
    #[error("tensor {name} has shape {got:?}, expected {want:?}")]
    Shape { name: String, got: Vec<usize>, want: Vec<usize> },
    #[error("tensor {0} is not f32")]
    Dtype(String),
    #[error("activation {0:?} is not supported (only exact \"gelu\")")]
    Activation(String),
    #[error("{0}")]
    Format(String),
}

/// `y = x W^T + b`, with `W^T` stored once at load as `[in, out]`.
#[derive(Debug)]
struct Linear {
    weight_t: Array2<f32>,
    bias: Array1<f32>,
}

#[derive(Debug)]
struct LayerNorm {
    weight: Array1<f32>,
    bias: Array1<f32>,
    eps: f32,
}

#[derive(Debug)]
struct Layer {
    /// Query, key and value in one product: `[hidden, 3 * hidden]`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder's weights. Immutable after load, so one copy serves every thread.
#[derive(Debug)]
pub struct Bert {
    word: Array2<f32>,
    position: Array2<f32>,
    /// Every token is of type 0 for single-sentence embeddings.
    token_type: Array1<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    max_positions: usize,
}

struct Weights<'a> {
    tensors: SafeTensors<'a>,
    /// Some checkpoints name everything under `bert.`.
    prefix: &'static str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let full = format!("{}{name}", self.prefix);
        let view = self.tensors.tensor(&full).map_err(|_| LoadError::Missing(full.clone()))?;
        if view.dtype() != Dtype::F32 {
            return Err(LoadError::Dtype(full));
        }
        if view.shape() != shape {
            return Err(LoadError::Shape { name: full, got: view.shape().to_vec(), want: shape.to_vec() });
        }
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>, LoadError> {
        Array2::from_shape_vec((rows, cols), self.get(name, &[rows, cols])?)
            .map_err(|e| LoadError::Format(e.to_string()))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Array1<f32>, LoadError> {
        Ok(Array1::from_vec(self.get(name, &[len])?))
    }

    /// A `[out, in]` weight and its bias, stored transposed for `x W^T`.
    fn linear(&self, name: &str, out: usize, input: usize) -> Result<Linear, LoadError> {
        let w = self.matrix(&format!("{name}.weight"), out, input)?;
        Ok(Linear {
            weight_t: w.t().as_standard_layout().into_owned(),
            bias: self.vector(&format!("{name}.bias"), out)?,
        })
    }

    fn norm(&self, name: &str, len: usize, eps: f32) -> Result<LayerNorm, LoadError> {
        Ok(LayerNorm {
            weight: self.vector(&format!("{name}.weight"), len)?,
            bias: self.vector(&format!("{name}.bias"), len)?,
            eps,
        })
    }
}

impl Bert {
    /// Reads a BERT checkpoint from safetensors bytes.
    pub fn load(safetensors: &[u8], config: &Config) -> Result<Self, LoadError> {
        if config.hidden_act != "gelu" {
            return Err(LoadError::Activation(config.hidden_act.clone()));
        }
        let tensors = SafeTensors::deserialize(safetensors).map_err(|e| LoadError::Format(e.to_string()))?;
        let prefix = if tensors.names().iter().any(|n| n.starts_with("bert.")) { "bert." } else { "" };
        let w = Weights { tensors, prefix };
        let (h, i, eps) = (config.hidden_size, config.intermediate_size, config.layer_norm_eps);
        if config.num_attention_heads == 0 || h % config.num_attention_heads != 0 {
            return Err(LoadError::Format(format!(
                "hidden size {h} is not a multiple of {} heads",
                config.num_attention_heads
            )));
        }
        let vocab = w
            .tensors
            .tensor(&format!("{prefix}embeddings.word_embeddings.weight"))
            .map_err(|_| LoadError::Missing("embeddings.word_embeddings.weight".into()))?
            .shape()
            .first()
            .copied()
            .unwrap_or(0);
        let token_types = w.matrix("embeddings.token_type_embeddings.weight", 2, h)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let name = |part: &str| format!("encoder.layer.{l}.{part}");
            let (q, k, v) = (
                w.linear(&name("attention.self.query"), h, h)?,
                w.linear(&name("attention.self.key"), h, h)?,
                w.linear(&name("attention.self.value"), h, h)?,
            );
            let weight_t = ndarray::concatenate(Axis(1), &[q.weight_t.view(), k.weight_t.view(), v.weight_t.view()])
                .map_err(|e| LoadError::Format(e.to_string()))?
                .as_standard_layout()
                .into_owned();
            let bias = ndarray::concatenate(Axis(0), &[q.bias.view(), k.bias.view(), v.bias.view()])
                .map_err(|e| LoadError::Format(e.to_string()))?;
            layers.push(Layer {
                qkv: Linear { weight_t, bias },
                attention_out: w.linear(&name("attention.output.dense"), h, h)?,
                attention_norm: w.norm(&name("attention.output.LayerNorm"), h, eps)?,
                intermediate: w.linear(&name("intermediate.dense"), i, h)?,
                output: w.linear(&name("output.dense"), h, i)?,
                output_norm: w.norm(&name("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Self {
            word: w.matrix("embeddings.word_embeddings.weight", vocab, h)?,
            position: w.matrix("embeddings.position_embeddings.weight", config.max_position_embeddings, h)?,
            token_type: token_types.row(0).to_owned(),
            embedding_norm: w.norm("embeddings.LayerNorm", h, eps)?,
            layers,
            heads: config.num_attention_heads,
            hidden: h,
            max_positions: config.max_position_embeddings,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.word.nrows()
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Mean-pooled, unit-length sentence vectors, one per sequence of token ids. Ids must be
    /// below [`Bert::vocab_size`] and sequences no longer than [`Bert::max_positions`]; the
    /// caller's tokenizer guarantees both (an id out of range is read as id 0, never a panic).
    pub fn embed(&self, sequences: &[&[u32]]) -> Vec<Vec<f32>> {
        let spans: Vec<(usize, usize)> = sequences
            .iter()
            .scan(0, |start, s| {
                let len = s.len().min(self.max_positions);
                let span = (*start, len);
                *start += len;
                Some(span)
            })
            .collect();
        let total: usize = spans.iter().map(|(_, l)| l).sum();
        let mut x = Array2::<f32>::zeros((total, self.hidden));
        for (seq, &(start, len)) in sequences.iter().zip(&spans) {
            for (p, &id) in seq.iter().take(len).enumerate() {
                let id = if (id as usize) < self.word.nrows() { id as usize } else { 0 };
                let mut row = x.row_mut(start + p);
                row += &self.word.row(id);
                row += &self.position.row(p);
                row += &self.token_type;
            }
        }
        layer_norm(&mut x.view_mut(), &self.embedding_norm);
        for layer in &self.layers {
            x = self.layer(layer, x, &spans);
        }
        spans
            .iter()
            .map(|&(start, len)| {
                let mean = if len == 0 {
                    Array1::zeros(self.hidden)
                } else {
                    block(x.view(), start..start + len, 0..self.hidden)
                        .mean_axis(Axis(0))
                        .unwrap_or_else(|| Array1::zeros(self.hidden))
                };
                let norm = mean.dot(&mean).sqrt();
                mean.iter().map(|v| if norm > 0.0 { v / norm } else { 0.0 }).collect()
            })
            .collect()
    }

    fn layer(&self, layer: &Layer, x: Array2<f32>, spans: &[(usize, usize)]) -> Array2<f32> {
        let h = self.hidden;
        let qkv = linear(&x.view(), &layer.qkv);
        let mut context = Array2::<f32>::zeros((x.nrows(), h));
        let head = h / self.heads;
        let scale = 1.0 / (head as f32).sqrt();
        for &(start, len) in spans {
            if len == 0 {
                continue;
            }
            let rows = start..start + len;
            let mut scores = Array2::<f32>::zeros((len, len));
            for hd in 0..self.heads {
                let q = block(qkv.view(), rows.clone(), hd * head..(hd + 1) * head);
                let k = block(qkv.view(), rows.clone(), h + hd * head..h + (hd + 1) * head);
                let v = block(qkv.view(), rows.clone(), 2 * h + hd * head..2 * h + (hd + 1) * head);
                general_mat_mul(scale, &q, &k.t(), 0.0, &mut scores);
                softmax_rows(&mut scores.view_mut());
                let mut out = block_mut(context.view_mut(), rows.clone(), hd * head..(hd + 1) * head);
                general_mat_mul(1.0, &scores, &v, 0.0, &mut out);
            }
        }
        let mut attended = linear(&context.view(), &layer.attention_out);
        attended += &x;
        layer_norm(&mut attended.view_mut(), &layer.attention_norm);
        let mut inner = linear(&attended.view(), &layer.intermediate);
        inner.mapv_inplace(gelu);
        let mut out = linear(&inner.view(), &layer.output);
        out += &attended;
        layer_norm(&mut out.view_mut(), &layer.output_norm);
        out
    }
}

/// The rows and columns of a matrix view (ndarray's `s!` macro expands to code our
/// `forbid(unsafe_code)` rejects).
fn block(mut m: ArrayView2<'_, f32>, rows: Range<usize>, cols: Range<usize>) -> ArrayView2<'_, f32> {
    m.slice_axis_inplace(Axis(0), Slice::from(rows));
    m.slice_axis_inplace(Axis(1), Slice::from(cols));
    m
}

fn block_mut(mut m: ArrayViewMut2<'_, f32>, rows: Range<usize>, cols: Range<usize>) -> ArrayViewMut2<'_, f32> {
    m.slice_axis_inplace(Axis(0), Slice::from(rows));
    m.slice_axis_inplace(Axis(1), Slice::from(cols));
    m
}

fn linear(x: &ArrayView2<f32>, l: &Linear) -> Array2<f32> {
    let mut y = Array2::<f32>::zeros((x.nrows(), l.weight_t.ncols()));
    y.rows_mut().into_iter().for_each(|mut r| r.assign(&l.bias));
    general_mat_mul(1.0, x, &l.weight_t, 1.0, &mut y);
    y
}

fn layer_norm(x: &mut ArrayViewMut2<f32>, n: &LayerNorm) {
    let width = x.ncols() as f32;
    for mut row in x.rows_mut() {
        let mean = row.sum() / width;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width;
        let inv = 1.0 / (var + n.eps).sqrt();
        row.iter_mut().zip(n.weight.iter().zip(&n.bias)).for_each(|(v, (w, b))| *v = (*v - mean) * inv * w + b);
    }
}

fn softmax_rows(x: &mut ArrayViewMut2<f32>) {
    for mut row in x.rows_mut() {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        row.mapv_inplace(|v| {
            let e = exp(v - max);
            sum += e;
            e
        });
        row /= sum;
    }
}

#[inline]
/// BERT's exact GELU, `x * Φ(x)`, with [`erf`] below.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `erf` as a rational function of `x` clamped to [-4, 4] (beyond, erf is ±1 in f32): the
/// approximation Eigen and XLA use for f32, within a few ulp of the exact value. No branch and no
/// call (plain products: `mul_add` is a library call unless the build targets FMA), so a loop of it
/// vectorises; a library `erff` per element was a third of a document's
/// embedding time, since GELU runs on every one of the 1,536 intermediate values of every token.
#[inline]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906_3e-4;
    p = x2 * p - 2.954_6e-3;
    p = x2 * p - 1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329e-3;
    q = x2 * q - 1.426_473_9e-2;
    x * p / q
}

/// `e^x` for softmax (x <= 0 there): Cephes' `expf` polynomial on the remainder after powers of
/// two, which are put in by building the float's exponent bits. Branch-free like [`erf`], so the
/// softmax loop vectorises; attention of a 256-token text takes 4.7 million of these.
#[inline]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and subtracting 1.5 * 2^23 (`round` is a library call unless
    // the build targets SSE4.1).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_library_function() {
        let worst = (-87_000..=10_000)
            .map(|i| i as f32 / 1000.0)
            .map(|x| ((exp(x) - x.exp()) / x.exp()).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "worst relative error {worst}");
    }

    #[test]
    fn erf_matches_the_library_function() {
        let worst =
            (-6000..=6000).map(|i| i as f32 / 1000.0).map(|x| (erf(x) - libm::erff(x)).abs()).fold(0.0f32, f32::max);
        assert!(worst < 2e-6, "worst error {worst}");
    }
}
