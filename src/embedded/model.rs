//! Forward passes of the decoder architectures on the embedded ladder, written against
//! llama.cpp's graphs for the same GGUF files (the oracle they are validated against).
//!
//! Three architectures: `llama` (SmolLM2), `qwen2` (Qwen2.5-Coder: biases on the query,
//! key and value projections) and `gemma3` (Gemma 3: scaled embeddings, per-head
//! query/key norms, norms after attention and feed-forward, GELU(tanh) gating, and
//! sliding-window attention on five layers of every six). Gemma's GELU is written here
//! rather than borrowed, because a SiLU in its place gives plausible but wrong numbers.
//!
//! The key/value state of a [`Sequence`] is kept between calls, so that a prompt that
//! extends the previous one (the same preamble and exemplars, the same post in the
//! other order, the same prompt for the next sample) only computes its new tokens.

use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Tensor};

use super::attention::OneTokenAttention;

/// Why a model cannot be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a GGUF model file this build can run: {message}")]
    Format { path: String, message: String },
    #[error(
        "architecture `{0}` is not supported by the embedded backend (supported: llama, qwen2, gemma3)"
    )]
    Architecture(String),
    #[error("the prompt is {tokens} tokens, beyond the model's context of {context} tokens")]
    TooLong { tokens: usize, context: usize },
    #[error("inference failed: {0}")]
    Compute(#[from] candle_core::Error),
}

/// The supported architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
    Gemma3,
}

/// Shapes and constants read from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct Hyperparameters {
    pub architecture: Architecture,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub embedding: usize,
    pub norm_eps: f64,
    pub rope_base: f32,
    /// Gemma's sliding-window layers rotate with their own base.
    pub rope_base_local: f32,
    pub sliding_window: Option<usize>,
    pub context: usize,
}

/// A weight matrix, held in the form candle multiplies fastest. Types it multiplies with
/// vector instructions (see `has_vector_kernel`) stay quantized in large models, as
/// llama.cpp keeps them. The others (SmolLM2's Q4_1, the Q5_0 of Gemma 3 and Qwen 0.5B)
/// have only scalar kernels in candle, several times slower than a dense f32 matrix
/// product, so they are dequantized once at load: prefill chunks multiply them densely,
/// and sampling multiplies an 8-bit copy. Small models keep every layer dense: as fast,
/// and their scores stay closer to llama.cpp's (Gemma's largest gap on the oracle
/// prompts grew from 0.31 to 0.38 nats with its Q4_K layers quantized).
#[derive(Debug)]
enum Weight {
    Quantized(QMatMul),
    Dense {
        weights: Tensor,
        /// For sampling rationales one token at a time: the weights in 8-bit blocks,
        /// which candle multiplies with vector instructions on every thread. Scoring
        /// never uses them.
        decode: Option<QMatMul>,
    },
}

impl Weight {
    fn new(tensor: Arc<QTensor>, dense: bool) -> candle_core::Result<Weight> {
        if has_vector_kernel(tensor.dtype()) && !dense {
            return Ok(Weight::Quantized(QMatMul::from_arc(tensor)?));
        }
        let weights = tensor.dequantize(&Device::Cpu)?;
        let columns = tensor.shape().dims().last().copied().unwrap_or(0);
        let decode = (columns % GgmlDType::Q8_0.block_size() == 0)
            .then(|| QMatMul::from_qtensor(QTensor::quantize(&weights, GgmlDType::Q8_0)?))
            .transpose()?;
        Ok(Weight::Dense { weights, decode })
    }

    /// While sampling (one row, or one per sample of a batch): the fastest form held.
    /// Rows are computed independently, so that a sample's numbers do not depend on
    /// the rows it is batched with.
    fn forward_decode(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Weight::Dense {
                decode: Some(decode),
                ..
            } => decode.forward(x),
            _ => self.forward_by_row(x),
        }
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Weight::Quantized(quantized) => quantized.forward(x),
            Weight::Dense { weights, .. } => x.matmul(&weights.t()?),
        }
    }

    /// `forward`, each row as that row alone would get it. A quantized product computes
    /// rows independently, so all go at once; a dense one sums in another order when it
    /// has more rows, so it gets one row at a time.
    fn forward_by_row(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let rows = x.dims()[0];
        match self {
            Weight::Dense { .. } if rows > 1 => {
                let products = (0..rows)
                    .map(|row| self.forward(&x.narrow(0, row, 1)?))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::cat(&products, 0)
            }
            _ => self.forward(x),
        }
    }
}

/// Whether candle multiplies this quantized type with vector instructions (as llama.cpp
/// does: activations rounded to 8-bit blocks, integer dot products). For those, a
/// prefill chunk multiplies faster quantized than on weights dequantized for it; the
/// others (Q4_1, Q5_0, Q5_1) have only scalar kernels.
fn has_vector_kernel(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0
            | GgmlDType::Q8_0
            | GgmlDType::Q2K
            | GgmlDType::Q3K
            | GgmlDType::Q4K
            | GgmlDType::Q5K
            | GgmlDType::Q6K
            | GgmlDType::Q8K
    )
}

/// A projection with an optional bias.
#[derive(Debug)]
struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor, decoding: bool) -> candle_core::Result<Tensor> {
        let y = if decoding {
            self.weight.forward_decode(x)?
        } else {
            self.weight.forward(x)?
        };
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    post_attn_norm: Option<Tensor>,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: Option<Tensor>,
    sliding: bool,
}

/// Cosine and sine tables for every position up to the context.
#[derive(Debug)]
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(base: f32, head_dim: usize, positions: usize) -> candle_core::Result<Rope> {
        let half = head_dim / 2;
        let inverse: Vec<f32> = (0..half)
            .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
            .collect();
        let mut angles = Vec::with_capacity(positions * half);
        for position in 0..positions {
            angles.extend(inverse.iter().map(|f| position as f32 * f));
        }
        let angles = Tensor::from_vec(angles, (positions, half), &Device::Cpu)?;
        Ok(Rope {
            cos: angles.cos()?,
            sin: angles.sin()?,
        })
    }
}

/// A loaded model.
#[derive(Debug)]
pub struct Model {
    pub hyper: Hyperparameters,
    embedding: Arc<QTensor>,
    embedding_scale: Option<f64>,
    layers: Vec<Layer>,
    output_norm: Tensor,
    output: Weight,
    rope_global: Rope,
    rope_local: Option<Rope>,
}

/// The key/value state of the tokens evaluated so far.
#[derive(Debug, Default)]
pub struct Sequence {
    tokens: Vec<u32>,
    /// How many leading positions were computed in whole blocks (see [`BLOCK`]): their
    /// state is what any prompt that starts with the same tokens gets, so it can be
    /// reused bit for bit. A multiple of [`BLOCK`].
    whole_blocks: usize,
    /// Per layer, keys and values shaped `[kv_heads, capacity, head_dim]`, of which the
    /// first `tokens.len()` positions hold the sequence. Written in place: appending a
    /// token copies that token, not the whole state, which would cost decoding a copy
    /// of every layer's keys and values per token.
    cache: Vec<Option<(Tensor, Tensor)>>,
}

/// Key/value storage grows by this many positions at a time.
const CACHE_GROWTH: usize = 512;

impl Sequence {
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// How much of a prompt that shares its first `shared` tokens with this sequence
    /// can be kept without changing a bit of what the prompt computes: the whole blocks
    /// within the shared part.
    pub fn reusable(&self, shared: usize) -> usize {
        shared.min(self.whole_blocks) / BLOCK * BLOCK
    }

    /// Forgets every token from `len` on.
    pub fn truncate(&mut self, len: usize) -> candle_core::Result<()> {
        // A block cut short no longer holds what it would hold computed whole.
        self.whole_blocks = self.whole_blocks.min(len / BLOCK * BLOCK);
        if len >= self.tokens.len() {
            return Ok(());
        }
        self.tokens.truncate(len);
        if len == 0 {
            self.cache.iter_mut().for_each(|entry| *entry = None);
        }
        Ok(())
    }
}

/// The key/value state of several sequences that share a prefix and then advance
/// together, one token each per step: the samples of one prompt. Each step multiplies
/// every weight matrix once for all of them, where decoding them one after another
/// would read every matrix once per sample.
#[derive(Debug)]
pub struct Batch {
    rows: usize,
    len: usize,
    /// Per layer, keys and values shaped `[rows * kv_heads, capacity, head_dim]`: row
    /// `r`'s heads are `r * kv_heads..(r + 1) * kv_heads`.
    cache: Vec<Option<(Tensor, Tensor)>>,
}

impl Batch {
    /// Drops the rows whose `keep` is false, keeping the others in order.
    pub fn retain(&mut self, keep: &[bool]) -> candle_core::Result<()> {
        if keep.iter().all(|&kept| kept) {
            return Ok(());
        }
        let Some(Some((first, _))) = self.cache.first() else {
            self.rows = keep.iter().filter(|&&kept| kept).count();
            return Ok(());
        };
        let kv_heads = first.dims()[0] / self.rows;
        let heads: Vec<u32> = keep
            .iter()
            .enumerate()
            .filter(|(_, kept)| **kept)
            .flat_map(|(row, _)| (row * kv_heads..(row + 1) * kv_heads).map(|h| h as u32))
            .collect();
        self.rows = heads.len() / kv_heads;
        if heads.is_empty() {
            self.cache.iter_mut().for_each(|entry| *entry = None);
            return Ok(());
        }
        let heads = Tensor::new(heads.as_slice(), &Device::Cpu)?;
        for entry in self.cache.iter_mut().flatten() {
            // The whole storage, so that the kept rows keep their room to grow.
            *entry = (
                entry.0.index_select(&heads, 0)?,
                entry.1.index_select(&heads, 0)?,
            );
        }
        Ok(())
    }
}

/// Writes `k` and `v` (`[kv_heads, count, head_dim]`) at position `start` of a layer's
/// storage, growing it if needed, and returns views of positions `0..start + count`.
fn store(
    entry: &mut Option<(Tensor, Tensor)>,
    k: &Tensor,
    v: &Tensor,
    start: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let (kv_heads, count, head_dim) = k.dims3()?;
    let total = start + count;
    let (all_k, all_v) = match entry.take() {
        Some(stored) if total <= stored.0.dims()[1] => entry.insert(stored),
        stored => {
            let capacity = stored.as_ref().map_or(0, |(k, _)| k.dims()[1]);
            let grown = total.div_ceil(CACHE_GROWTH) * CACHE_GROWTH;
            let fresh = || {
                Tensor::zeros(
                    (kv_heads, grown - capacity, head_dim),
                    k.dtype(),
                    k.device(),
                )
            };
            entry.insert(match stored {
                Some((old_k, old_v)) => (
                    Tensor::cat(&[&old_k, &fresh()?], 1)?,
                    Tensor::cat(&[&old_v, &fresh()?], 1)?,
                ),
                None => (fresh()?, fresh()?),
            })
        }
    };
    all_k.slice_set(&k.contiguous()?, 1, start)?;
    all_v.slice_set(&v.contiguous()?, 1, start)?;
    Ok((all_k.narrow(1, 0, total)?, all_v.narrow(1, 0, total)?))
}

/// Prompts are evaluated in blocks of this many positions, aligned to multiples of it,
/// and only whole blocks are kept for later prompts. Matrix products sum in an order
/// that depends on how many rows they multiply (candle's quantized kernels even round
/// the activations differently), so a position computed in another split of the prompt
/// gets other numbers: up to 0.24 in Qwen 0.5B's logits. Aligned blocks make every
/// score a function of its prompt alone, whichever prompts a worker evaluated before
/// it. Smaller blocks reuse more of a shared prefix; larger ones multiply faster: 128 is
/// the better trade on the larger models, which cost the most (see `benches/embedded.rs`).
pub const BLOCK: usize = 128;

/// Models at most this large keep every layer's weights dense (see [`Weight`]).
const DENSE_UP_TO_BYTES: u64 = 400_000_000;

/// The context a sequence may grow to, whatever the model was trained for: the
/// rotation tables and the key/value state are sized for it.
const MAX_CONTEXT: usize = 8192;

impl Model {
    /// Loads a model, and returns with it the file's metadata (the tokenizer is built
    /// from it).
    pub fn load(path: &Path) -> Result<(Model, gguf_file::Content), ModelError> {
        let shown = path.display().to_string();
        let read_error = |source| ModelError::Read {
            path: shown.clone(),
            source,
        };
        let format_error = |error: candle_core::Error| ModelError::Format {
            path: shown.clone(),
            message: error.to_string(),
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let file_bytes = file.metadata().map_err(read_error)?.len();
        let mut reader = std::io::BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(format_error)?;
        let hyper = hyperparameters(&content).map_err(format_error)?;
        let mut loader = Loader {
            content: &content,
            reader: &mut reader,
            dense: file_bytes <= DENSE_UP_TO_BYTES,
        };
        let load = |loader: &mut Loader<'_, _>| -> candle_core::Result<_> {
            let embedding = Arc::new(loader.quantized("token_embd.weight")?);
            let mut layers = Vec::with_capacity(hyper.layers);
            for index in 0..hyper.layers {
                let name = |part: &str| format!("blk.{index}.{part}");
                let q_bias = loader.optional_vector(&name("attn_q.bias"))?;
                let k_bias = loader.optional_vector(&name("attn_k.bias"))?;
                let v_bias = loader.optional_vector(&name("attn_v.bias"))?;
                layers.push(Layer {
                    attn_norm: loader.vector(&name("attn_norm.weight"))?,
                    q: loader.linear(&name("attn_q.weight"), q_bias)?,
                    k: loader.linear(&name("attn_k.weight"), k_bias)?,
                    v: loader.linear(&name("attn_v.weight"), v_bias)?,
                    o: loader.linear(&name("attn_output.weight"), None)?,
                    q_norm: loader.optional_vector(&name("attn_q_norm.weight"))?,
                    k_norm: loader.optional_vector(&name("attn_k_norm.weight"))?,
                    post_attn_norm: loader.optional_vector(&name("post_attention_norm.weight"))?,
                    ffn_norm: loader.vector(&name("ffn_norm.weight"))?,
                    gate: loader.linear(&name("ffn_gate.weight"), None)?,
                    up: loader.linear(&name("ffn_up.weight"), None)?,
                    down: loader.linear(&name("ffn_down.weight"), None)?,
                    post_ffn_norm: loader.optional_vector(&name("post_ffw_norm.weight"))?,
                    // llama.cpp's Gemma 3 pattern: every sixth layer attends globally.
                    sliding: hyper.sliding_window.is_some() && index % 6 < 5,
                });
            }
            let output_norm = loader.vector("output_norm.weight")?;
            let output = if loader.content.tensor_infos.contains_key("output.weight") {
                let output = loader.quantized("output.weight")?;
                Weight::new(Arc::new(output), false)?
            } else {
                // Tied embeddings: the output projection is the embedding matrix.
                Weight::new(embedding.clone(), false)?
            };
            Ok((embedding, layers, output_norm, output))
        };
        let (embedding, layers, output_norm, output) = load(&mut loader).map_err(format_error)?;
        let positions = hyper.context.min(MAX_CONTEXT);
        let rope_global = Rope::new(hyper.rope_base, hyper.head_dim, positions)?;
        let rope_local = match hyper.sliding_window {
            Some(_) => Some(Rope::new(hyper.rope_base_local, hyper.head_dim, positions)?),
            None => None,
        };
        let embedding_scale =
            (hyper.architecture == Architecture::Gemma3).then(|| (hyper.embedding as f64).sqrt());
        let model = Model {
            hyper,
            embedding,
            embedding_scale,
            layers,
            output_norm,
            output,
            rope_global,
            rope_local,
        };
        Ok((model, content))
    }

    /// The longest sequence this model runs.
    pub fn context(&self) -> usize {
        self.hyper.context.min(MAX_CONTEXT)
    }

    pub fn vocabulary(&self) -> usize {
        self.embedding.shape().dims()[0]
    }

    /// Extends `sequence` with `tokens` and returns the logits that follow the last one.
    pub fn extend(&self, sequence: &mut Sequence, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        self.extend_with(sequence, tokens, false)
    }

    /// Extends `sequence` by one sampled token, on the weights kept for decoding: fast,
    /// and for sampled text only (its log-probabilities differ in the third digit).
    pub fn decode(&self, sequence: &mut Sequence, token: u32) -> Result<Vec<f32>, ModelError> {
        self.extend_with(sequence, &[token], true)
    }

    /// `rows` copies of `sequence`, to be extended together by [`Model::decode_batch`].
    pub fn fork(&self, sequence: &Sequence, rows: usize) -> Result<Batch, ModelError> {
        let len = sequence.tokens.len();
        let mut cache = Vec::with_capacity(sequence.cache.len());
        for entry in &sequence.cache {
            cache.push(match entry {
                Some((k, v)) if len > 0 => {
                    let k = k.narrow(1, 0, len)?;
                    let v = v.narrow(1, 0, len)?;
                    Some((
                        Tensor::cat(&vec![&k; rows], 0)?,
                        Tensor::cat(&vec![&v; rows], 0)?,
                    ))
                }
                _ => None,
            });
        }
        Ok(Batch { rows, len, cache })
    }

    /// Extends each row of `batch` by its sampled token (`tokens[row]`) and returns each
    /// row's next logits. A row's numbers are those [`Model::decode`] gives its sequence
    /// alone: every operation works row by row, so what a sample says does not depend on
    /// the samples it was decoded with.
    pub fn decode_batch(
        &self,
        batch: &mut Batch,
        tokens: &[u32],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if tokens.len() != batch.rows {
            return Err(ModelError::Compute(candle_core::Error::Msg(format!(
                "{} tokens for a batch of {} rows",
                tokens.len(),
                batch.rows
            ))));
        }
        if batch.len + 1 > self.context() {
            return Err(ModelError::TooLong {
                tokens: batch.len + 1,
                context: self.context(),
            });
        }
        if batch.cache.len() != self.layers.len() {
            batch.cache = vec![None; self.layers.len()];
        }
        let hidden = self.forward(&mut batch.cache, batch.len, batch.rows, tokens, true)?;
        batch.len += 1;
        let eps = self.hyper.norm_eps as f32;
        let normed = candle_nn::ops::rms_norm(&hidden, &self.output_norm, eps)?;
        let logits = self.output.forward_by_row(&normed)?;
        Ok(logits.to_dtype(DType::F32)?.to_vec2()?)
    }

    fn extend_with(
        &self,
        sequence: &mut Sequence,
        tokens: &[u32],
        decoding: bool,
    ) -> Result<Vec<f32>, ModelError> {
        let total = sequence.tokens.len() + tokens.len();
        if total > self.context() {
            return Err(ModelError::TooLong {
                tokens: total,
                context: self.context(),
            });
        }
        if sequence.cache.len() != self.layers.len() {
            sequence.cache = vec![None; self.layers.len()];
            sequence.tokens.clear();
            sequence.whole_blocks = 0;
        }
        // Decoding multiplies other weights, and a block begun on a partial one is not
        // computed whole: neither adds whole blocks.
        let adds_whole_blocks = !decoding && sequence.whole_blocks == sequence.tokens.len();
        let mut last = None;
        let mut rest = tokens;
        while !rest.is_empty() {
            let to_block_end = BLOCK - sequence.tokens.len() % BLOCK;
            let (block, after) = rest.split_at(to_block_end.min(rest.len()));
            last = Some(self.forward_chunk(sequence, block, decoding)?);
            rest = after;
        }
        if adds_whole_blocks {
            sequence.whole_blocks = sequence.tokens.len() / BLOCK * BLOCK;
        }
        last.ok_or_else(|| {
            ModelError::Compute(candle_core::Error::Msg("no tokens to evaluate".to_owned()))
        })
    }

    fn forward_chunk(
        &self,
        sequence: &mut Sequence,
        tokens: &[u32],
        decoding: bool,
    ) -> Result<Vec<f32>, ModelError> {
        let start = sequence.tokens.len();
        let count = tokens.len();
        let hidden = self.forward(&mut sequence.cache, start, 1, tokens, decoding)?;
        sequence.tokens.extend_from_slice(tokens);
        let last = hidden.narrow(0, count - 1, 1)?;
        let eps = self.hyper.norm_eps as f32;
        let last = candle_nn::ops::rms_norm(&last, &self.output_norm, eps)?;
        let logits = self.output.forward(&last)?;
        Ok(logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec1()?)
    }

    /// The layers over `rows` sequences of equal length `start`, each extended by
    /// `tokens.len() / rows` tokens (`tokens` row after row): the final hidden states,
    /// one row per new token.
    fn forward(
        &self,
        cache: &mut [Option<(Tensor, Tensor)>],
        start: usize,
        rows: usize,
        tokens: &[u32],
        decoding: bool,
    ) -> candle_core::Result<Tensor> {
        let count = tokens.len() / rows;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut hidden = self.embedding.embedding(&ids)?;
        if let Some(scale) = self.embedding_scale {
            hidden = (hidden * scale)?;
        }
        let eps = self.hyper.norm_eps as f32;
        // Every layer of a kind masks alike: built once per chunk, not once per layer.
        let global_mask = causal_mask(start, count, None)?;
        let sliding_mask = self
            .hyper
            .sliding_window
            .map(|window| causal_mask(start, count, Some(window)))
            .transpose()?;
        let shape = Shape { rows, count, start };
        for (layer, cache) in self.layers.iter().zip(cache.iter_mut()) {
            let normed = candle_nn::ops::rms_norm(&hidden, &layer.attn_norm, eps)?;
            let mask = match (&sliding_mask, layer.sliding) {
                (Some(sliding), true) => sliding,
                _ => &global_mask,
            };
            let mut attended = self.attention(layer, &normed, cache, shape, mask, decoding)?;
            if let Some(norm) = &layer.post_attn_norm {
                attended = candle_nn::ops::rms_norm(&attended, norm, eps)?;
            }
            hidden = (hidden + attended)?;
            let normed = candle_nn::ops::rms_norm(&hidden, &layer.ffn_norm, eps)?;
            let gate = layer.gate.forward(&normed, decoding)?;
            let up = layer.up.forward(&normed, decoding)?;
            let gated = match self.hyper.architecture {
                Architecture::Gemma3 => gelu_gated(&gate, &up)?,
                Architecture::Llama | Architecture::Qwen2 => (candle_nn::ops::silu(&gate)? * up)?,
            };
            let mut fed = layer.down.forward(&gated, decoding)?;
            if let Some(norm) = &layer.post_ffn_norm {
                fed = candle_nn::ops::rms_norm(&fed, norm, eps)?;
            }
            hidden = (hidden + fed)?;
        }
        Ok(hidden)
    }

    /// Self-attention of `count` new tokens per row, at positions `start..`, over each
    /// row's cached ones.
    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cache: &mut Option<(Tensor, Tensor)>,
        Shape { rows, count, start }: Shape,
        mask: &Tensor,
        decoding: bool,
    ) -> candle_core::Result<Tensor> {
        let hyper = &self.hyper;
        let (heads, kv_heads, head_dim) = (hyper.heads, hyper.kv_heads, hyper.head_dim);
        let heads_first = |t: Tensor, n: usize| -> candle_core::Result<Tensor> {
            t.reshape((rows, count, n, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let mut q = heads_first(layer.q.forward(x, decoding)?, heads)?;
        let mut k = heads_first(layer.k.forward(x, decoding)?, kv_heads)?;
        let v = heads_first(layer.v.forward(x, decoding)?, kv_heads)?;
        if let Some(norm) = &layer.q_norm {
            q = candle_nn::ops::rms_norm(&q, norm, hyper.norm_eps as f32)?;
        }
        if let Some(norm) = &layer.k_norm {
            k = candle_nn::ops::rms_norm(&k, norm, hyper.norm_eps as f32)?;
        }
        let rope = match (&self.rope_local, layer.sliding) {
            (Some(local), true) => local,
            _ => &self.rope_global,
        };
        let cos = rope.cos.narrow(0, start, count)?;
        let sin = rope.sin.narrow(0, start, count)?;
        let (q, k) = match hyper.architecture {
            // GGUF conversion permutes llama's query and key rows for interleaved rotation.
            Architecture::Llama => (
                candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?,
                candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?,
            ),
            Architecture::Qwen2 | Architecture::Gemma3 => (
                candle_nn::rotary_emb::rope(&q, &cos, &sin)?,
                candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
            ),
        };
        let k = k.reshape((rows * kv_heads, count, head_dim))?;
        let v = v.reshape((rows * kv_heads, count, head_dim))?;
        let (k, v) = store(cache, &k, &v, start)?;
        let total = start + count;
        let group = heads / kv_heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        // Query heads that share a key head are stacked, one product per key head.
        let q = q.reshape((rows * kv_heads, group * count, head_dim))?;
        let out = if count == 1 && OneTokenAttention::reads(&k, &v) {
            let window = hyper.sliding_window.filter(|_| layer.sliding);
            let one_token = OneTokenAttention {
                scale: scale as f32,
                window,
            };
            q.contiguous()?.apply_op3_no_bwd(&k, &v, &one_token)?
        } else {
            let scores = (q * scale)?.matmul(&k.t()?)?;
            let scores = scores
                .reshape((rows * kv_heads, group, count, total))?
                .broadcast_add(mask)?;
            let weights = candle_nn::ops::softmax_last_dim(&scores)?;
            weights
                .reshape((rows * kv_heads, group * count, total))?
                .matmul(&v)?
        };
        let out = out
            .reshape((rows, heads, count, head_dim))?
            .transpose(1, 2)?
            .reshape((rows * count, heads * head_dim))?;
        layer.o.forward(&out, decoding)
    }
}

/// How a forward pass is laid out: `rows` sequences, each `start` tokens long before
/// and extended by `count`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    rows: usize,
    count: usize,
    start: usize,
}

/// GELU(tanh) of `gate` times `up`, computed as llama.cpp computes it on the CPU: the
/// input rounded to half precision and looked up in a table of half-precision results
/// (exact below -10 and above 10). It follows the oracle's rounding, and the lookup is
/// several times faster than a tanh per value.
fn gelu_gated(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    let table = gelu_table();
    let gate_values = gate.flatten_all()?.to_vec1::<f32>()?;
    let up_values = up.flatten_all()?.to_vec1::<f32>()?;
    let gated: Vec<f32> = gate_values
        .iter()
        .zip(&up_values)
        .map(|(&x, &u)| {
            let activated = if x <= -10.0 {
                0.0
            } else if x >= 10.0 {
                x
            } else {
                table[usize::from(half::f16::from_f32(x).to_bits())]
            };
            activated * u
        })
        .collect();
    Tensor::from_vec(gated, gate.shape(), gate.device())
}

/// GELU(tanh) of every half-precision value, rounded to half precision, by bit pattern.
fn gelu_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| {
                let x = half::f16::from_bits(bits).to_f32();
                let inner = (2.0 / std::f32::consts::PI).sqrt() * x * (1.0 + 0.044_715 * x * x);
                half::f16::from_f32(0.5 * x * (1.0 + inner.tanh())).to_f32()
            })
            .collect()
    })
}

/// `-inf` where new token `i` (at position `start + i`) may not look: later positions,
/// and with a sliding window, positions `window` or more behind it.
fn causal_mask(start: usize, count: usize, window: Option<usize>) -> candle_core::Result<Tensor> {
    let total = start + count;
    let mut mask = vec![0f32; count * total];
    for i in 0..count {
        let position = start + i;
        for (j, cell) in mask[i * total..(i + 1) * total].iter_mut().enumerate() {
            let future = j > position;
            let outside = window.is_some_and(|w| position - j.min(position) >= w);
            if future || outside {
                *cell = f32::NEG_INFINITY;
            }
        }
    }
    Tensor::from_vec(mask, (count, total), &Device::Cpu)
}

/// Reads tensors by name from an open GGUF file.
struct Loader<'a, R> {
    content: &'a gguf_file::Content,
    reader: &'a mut R,
    dense: bool,
}

impl<R: std::io::Read + std::io::Seek> Loader<'_, R> {
    fn quantized(&mut self, name: &str) -> candle_core::Result<QTensor> {
        self.content.tensor(self.reader, name, &Device::Cpu)
    }

    fn vector(&mut self, name: &str) -> candle_core::Result<Tensor> {
        self.quantized(name)?.dequantize(&Device::Cpu)
    }

    fn optional_vector(&mut self, name: &str) -> candle_core::Result<Option<Tensor>> {
        if self.content.tensor_infos.contains_key(name) {
            self.vector(name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn linear(&mut self, name: &str, bias: Option<Tensor>) -> candle_core::Result<Linear> {
        let tensor = Arc::new(self.quantized(name)?);
        Ok(Linear {
            weight: Weight::new(tensor, self.dense)?,
            bias,
        })
    }
}

fn hyperparameters(content: &gguf_file::Content) -> candle_core::Result<Hyperparameters> {
    let get = |key: &str| {
        content
            .metadata
            .get(key)
            .ok_or_else(|| candle_core::Error::Msg(format!("metadata key `{key}` is missing")))
    };
    let name = get("general.architecture")?.to_string()?.clone();
    let architecture = match name.as_str() {
        "llama" => Architecture::Llama,
        "qwen2" => Architecture::Qwen2,
        "gemma3" => Architecture::Gemma3,
        other => {
            return Err(candle_core::Error::Msg(format!(
                "architecture `{other}` is not supported (supported: llama, qwen2, gemma3)"
            )));
        }
    };
    let key = |suffix: &str| format!("{name}.{suffix}");
    let number =
        |suffix: &str| -> candle_core::Result<usize> { Ok(get(&key(suffix))?.to_u32()? as usize) };
    let optional_number = |suffix: &str| {
        content
            .metadata
            .get(&key(suffix))
            .and_then(|v| v.to_u32().ok())
    };
    let heads = number("attention.head_count")?;
    let embedding = number("embedding_length")?;
    let head_dim =
        optional_number("attention.key_length").map_or(embedding / heads, |v| v as usize);
    Ok(Hyperparameters {
        architecture,
        layers: number("block_count")?,
        heads,
        kv_heads: optional_number("attention.head_count_kv").map_or(heads, |v| v as usize),
        head_dim,
        embedding,
        norm_eps: get(&key("attention.layer_norm_rms_epsilon"))?.to_f32()? as f64,
        rope_base: content
            .metadata
            .get(&key("rope.freq_base"))
            .map_or(Ok(10_000.0), |v| v.to_f32())?,
        rope_base_local: 10_000.0,
        sliding_window: (architecture == Architecture::Gemma3)
            .then(|| optional_number("attention.sliding_window").map(|v| v as usize))
            .flatten(),
        context: number("context_length")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gelu_tanh(x: f32) -> f32 {
        let inner = (2.0 / std::f32::consts::PI).sqrt() * (x + 0.044_715 * x * x * x);
        0.5 * x * (1.0 + inner.tanh())
    }

    #[test]
    fn only_whole_blocks_within_the_shared_prefix_are_reused() {
        let mut sequence = Sequence {
            tokens: vec![0; 2 * BLOCK + 40],
            whole_blocks: 2 * BLOCK,
            cache: Vec::new(),
        };
        assert_eq!(sequence.reusable(2 * BLOCK + 30), 2 * BLOCK);
        assert_eq!(sequence.reusable(2 * BLOCK - 1), BLOCK);
        assert_eq!(sequence.reusable(BLOCK - 1), 0);
        sequence.truncate(BLOCK + 5).unwrap();
        assert_eq!(sequence.tokens.len(), BLOCK + 5);
        assert_eq!(
            sequence.reusable(BLOCK + 5),
            BLOCK,
            "the cut block is not whole"
        );
        sequence.truncate(0).unwrap();
        assert_eq!(sequence.reusable(10), 0);
    }

    #[test]
    fn gelu_gating_matches_the_formula_to_half_precision() {
        let inputs = [
            -12.0f32, -10.0, -3.0, -0.5, 0.0, 0.001, 0.7, 1.0, 2.5, 9.9, 10.0, 15.0,
        ];
        let gate = Tensor::new(&inputs, &Device::Cpu).unwrap();
        let up = Tensor::new(&[2.0f32; 12], &Device::Cpu).unwrap();
        let gated = gelu_gated(&gate, &up).unwrap().to_vec1::<f32>().unwrap();
        for (x, y) in inputs.iter().zip(&gated) {
            let expected = 2.0 * gelu_tanh(*x);
            // Input and result are each rounded to half precision (11 significant bits).
            let tolerance = 2e-3 * expected.abs().max(x.abs()) + 1e-6;
            assert!(
                (y - expected).abs() <= tolerance,
                "gelu({x}) * 2 = {y}, expected {expected}"
            );
        }
        assert_eq!(gated[0], 0.0, "exactly 0 below -10");
        assert_eq!(gated[11], 30.0, "exactly the input above 10");
    }
}
