//! hakaru's own decoder implementation for Qwen2, Qwen3 and Llama, on candle-core/candle-nn.
//!
//! Why not candle-transformers' modules: in 0.11 several of them differ from transformers in ways
//! that matter for measurement. `qwen2` builds its rotary tables in the model dtype, so bf16
//! positions past ~256 are rounded and the phases drift; `quantized_qwen3` keeps the tables in f16;
//! `quantized_llama` caps positions at 4096 and has no Llama 3.1 frequency scaling; and they return
//! logits for the last position only, which rules out log-likelihood scoring. This module follows
//! transformers' eager code path operation by operation instead:
//! - rotary tables are computed in f32 for exact positions, then cast to the compute dtype;
//! - RMS norm normalises in f32, casts back, then multiplies by the weight in the compute dtype;
//! - attention scores are scaled in the compute dtype and soft-maxed in f32;
//! - logits are available at every position, and the KV cache can be truncated, so a shared
//!   prefix is computed once and several continuations scored against it.
//!
//! The weights come from a [`weights::WeightSource`]: safetensors, GGUF or synthetic.

pub mod cache;
mod decode;
mod matmul;
pub mod matvec;
pub mod quant;
pub mod rope;
pub mod weights;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{CpuStorage, DType, Device, Module, Storage, Tensor, D};
use std::sync::Arc;

use crate::config::ModelConfig;
use crate::error::Result;
pub use cache::KvCache;
use rope::Rope;
use weights::WeightSource;

/// A projection `y = x Wᵀ (+ b)`, dense or quantized.
#[derive(Debug, Clone)]
pub enum Linear {
    Dense {
        w: Tensor,
        b: Option<Tensor>,
    },
    Quant {
        w: QMatMul,
        b: Option<Tensor>,
    },
    /// GGML blocks computed by hakaru's own CPU kernels ([`quant`]); `prefill`, when set, is
    /// candle's `QMatMul` of the same bytes, which runs several rows where it is the faster
    /// ([`quant::QWeight::own_prefill`]).
    Packed {
        w: Arc<quant::QWeight>,
        b: Option<Tensor>,
        prefill: Option<QMatMul>,
    },
}

impl Linear {
    /// A projection on hakaru's kernels, with candle's for prefill where those are faster.
    pub fn packed(w: Arc<quant::QWeight>, b: Option<Tensor>) -> Result<Linear> {
        let prefill = match w.qtensor() {
            Some(q) if !w.own_prefill() => Some(QMatMul::from_arc(q.clone())?),
            _ => None,
        };
        Ok(Linear::Packed { w, b, prefill })
    }

    /// Bytes of the weight (and bias) as stored: what one token's pass reads of this projection.
    pub fn bytes(&self) -> u64 {
        let dense = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
        let (w, b) = match self {
            Linear::Dense { w, b } => (dense(w), b),
            Linear::Quant { w, b } => (
                match w {
                    QMatMul::QTensor(q) => q.storage_size_in_bytes() as u64,
                    QMatMul::Tensor(t) | QMatMul::TensorF16(t) => dense(t),
                },
                b,
            ),
            Linear::Packed { w, b, .. } => (w.storage_bytes() as u64, b),
        };
        w + b.as_ref().map_or(0, dense)
    }

    /// `x` is `(tokens, in)`; the result is `(tokens, out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (y, b) = match self {
            Linear::Dense { w, b } => match matvec::matvec(x, w)? {
                Some(y) => (y, b),
                None => (dense_matmul(x, w)?, b),
            },
            Linear::Quant { w, b } => (w.forward(x)?, b),
            Linear::Packed {
                prefill: Some(q),
                b,
                ..
            } if x.dim(0)? > 1 => (q.forward(x)?, b),
            Linear::Packed { w, b, .. } => (w.forward(x)?, b),
        };
        Ok(match b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    /// Several projections of the same input; quantized ones run together
    /// ([`quant::forward_many`]).
    pub fn forward_many<const N: usize>(ls: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
        let packed: Vec<&quant::QWeight> = ls
            .iter()
            .filter_map(|l| match l {
                Linear::Packed { w, .. } => Some(&**w),
                _ => None,
            })
            .collect();
        let ys: Vec<Tensor> = if packed.len() == N && N > 1 && x.dim(0)? == 1 {
            let ys = quant::forward_many(&packed, x)?;
            ys.into_iter()
                .zip(ls)
                .map(|(y, l)| match l {
                    Linear::Packed { b: Some(b), .. } => Ok(y.broadcast_add(b)?),
                    _ => Ok(y),
                })
                .collect::<Result<_>>()?
        } else {
            ls.iter().map(|l| l.forward(x)).collect::<Result<_>>()?
        };
        ys.try_into()
            .map_err(|_| crate::Error::Other("projection count changed".into()))
    }
}

/// `x Wᵀ` for several rows of `x` and an unquantized `w`: on the CPU in f32 whatever the two
/// dtypes ([`matmul`]; a GGUF file's f16 weights meet an f32 model's activations), elsewhere
/// candle's matmul (in `w`'s dtype should the two differ). The result has `x`'s dtype.
fn dense_matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.rank() == 2 {
        let t = x.dim(0)?;
        let xf = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        if let Some(y) = matmul::matmul_f32(&xf, t, w)? {
            let n = y.len() / t;
            return Ok(Tensor::from_vec(y, (t, n), x.device())?.to_dtype(x.dtype())?);
        }
    }
    if x.dtype() == w.dtype() {
        return Ok(x.matmul(&w.t()?)?);
    }
    Ok(x.to_dtype(w.dtype())?
        .matmul(&w.t()?)?
        .to_dtype(x.dtype())?)
}

/// The token embedding table, dense or quantized (a quantized table is dequantized row by row).
#[derive(Debug, Clone)]
pub enum Embedding {
    Dense(Tensor),
    Quant(Arc<QTensor>),
    Packed(Arc<quant::QWeight>),
}

impl Embedding {
    fn forward(&self, ids: &Tensor, dtype: DType) -> Result<Tensor> {
        Ok(match self {
            Embedding::Dense(w) => w.index_select(ids, 0)?.to_dtype(dtype)?,
            Embedding::Quant(q) => q.embedding(ids)?.to_dtype(dtype)?,
            Embedding::Packed(w) => w.rows_tensor(&ids.to_vec1::<u32>()?, dtype, ids.device())?,
        })
    }
    /// The same matrix used as the output projection (tied embeddings).
    fn as_linear(&self) -> Result<Linear> {
        Ok(match self {
            Embedding::Dense(w) => Linear::Dense {
                w: w.clone(),
                b: None,
            },
            Embedding::Quant(q) => Linear::Quant {
                w: QMatMul::from_arc(q.clone())?,
                b: None,
            },
            Embedding::Packed(w) => Linear::packed(w.clone(), None)?,
        })
    }
}

/// RMS norm as transformers computes it: normalise in f32, cast back, scale in the input dtype.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn new(weight: Tensor, eps: f64) -> Self {
        RmsNorm { weight, eps }
    }
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dtype() == DType::F32 {
            // Same arithmetic in one fused kernel.
            return Ok(candle_nn::ops::rms_norm(
                &x.contiguous()?,
                &self.weight,
                self.eps as f32,
            )?);
        }
        let dtype = x.dtype();
        let xf = x.to_dtype(DType::F32)?;
        let var = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let inv = (var + self.eps)?.sqrt()?.recip()?;
        Ok(xf
            .broadcast_mul(&inv)?
            .to_dtype(dtype)?
            .broadcast_mul(&self.weight)?)
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
}

impl Attention {
    fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        offset: usize,
        mask: Option<&Tensor>,
        cache: &mut cache::LayerCache,
    ) -> Result<Tensor> {
        let t = x.dim(0)?;
        let (h, kvh, d) = (self.n_head, self.n_kv_head, self.head_dim);
        let [q, k, v] = Linear::forward_many([&self.q, &self.k, &self.v], x)?;
        let mut q = q.reshape((t, h, d))?;
        let mut k = k.reshape((t, kvh, d))?;
        let v = v.reshape((t, kvh, d))?;
        if let Some(n) = &self.q_norm {
            q = n.forward(&q)?;
        }
        if let Some(n) = &self.k_norm {
            k = n.forward(&k)?;
        }
        // (1, heads, t, d)
        let q = q.transpose(0, 1)?.unsqueeze(0)?.contiguous()?;
        let k = k.transpose(0, 1)?.unsqueeze(0)?.contiguous()?;
        let v = v.transpose(0, 1)?.unsqueeze(0)?.contiguous()?;
        let q = rope.apply(&q, offset)?;
        let k = rope.apply(&k, offset)?;
        let (k, v) = cache.append(&k, &v)?;
        // Grouped-query attention without copying K/V: the query heads that share a KV head are
        // adjacent, so (1, h, t, d) regroups as (1, kvh, n_rep·t, d) against (1, kvh, s, d).
        let n_rep = h / kvh;
        let q = q.reshape((1, kvh, n_rep * t, d))?;
        let scale = 1.0 / (d as f64).sqrt();
        let scores = (rounded_matmul(&q, &k.t()?)? * scale)?;
        let mut scores = scores.to_dtype(DType::F32)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(x.dtype())?;
        let out = rounded_matmul(&probs, &v)?; // (1, kvh, n_rep·t, d)
        let out = out
            .reshape((h, t, d))?
            .transpose(0, 1)?
            .reshape((t, h * d))?;
        self.o.forward(&out)
    }
}

/// `a · b` as transformers' CPU matmul computes it in bf16 or f16: the product of the values
/// accumulated in f32, rounded once to the dtype. On the CPU the operands are widened to f32 for
/// candle's f32 matmul, which is faster than its 16-bit ones (bf16 and f16 prefill of 512
/// tokens 2–3% faster end to end; benches/README.md).
fn rounded_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dtype = a.dtype();
    if !a.device().is_cpu() || !matches!(dtype, DType::BF16 | DType::F16) {
        return Ok(a.matmul(b)?);
    }
    Ok(a.to_dtype(DType::F32)?
        .matmul(&b.to_dtype(DType::F32)?)?
        .to_dtype(dtype)?)
}

/// Additive mask for `t` new queries at positions `offset..offset+t` against `s` keys, repeated
/// for the `n_rep` query heads grouped on one KV head. Built on the device it is used on: on a GPU
/// a mask built here and copied over would cost every prefill pass a host loop and a copy (66 MB
/// for a 512-token pass at depth 4096 with 7 query heads per KV head).
fn causal_mask(t: usize, s: usize, offset: usize, n_rep: usize, device: &Device) -> Result<Tensor> {
    let query = Tensor::arange(offset as u32, (offset + t) as u32, device)?.reshape((t, 1))?;
    let key = Tensor::arange(0u32, s as u32, device)?.reshape((1, s))?;
    let future = key.broadcast_gt(&query)?;
    let blocked = Tensor::full(f32::NEG_INFINITY, (t, s), device)?;
    let open = Tensor::zeros((t, s), DType::F32, device)?;
    Ok(future.where_cond(&blocked, &open)?.repeat((n_rep, 1))?)
}

#[derive(Debug, Clone)]
struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [g, u] = Linear::forward_many([&self.gate, &self.up], x)?;
        self.down.forward(&(candle_nn::ops::silu(&g)? * u)?)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: RmsNorm,
    attn: Attention,
    mlp_norm: RmsNorm,
    mlp: Mlp,
}

/// Which positions' logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    All,
    Last,
}

/// A loaded decoder: embedding, layers, final norm and output projection.
#[derive(Debug, Clone)]
pub struct Transformer {
    pub config: ModelConfig,
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    dtype: DType,
    device: Device,
}

impl Transformer {
    /// Bytes of weights one decoded token reads: every projection of every layer and the output
    /// projection (norms are negligible; the embedding contributes one row). The memory-bandwidth
    /// ceiling of decoding is the machine's bandwidth divided by this (plus the KV cache read).
    pub fn weight_bytes_per_token(&self) -> u64 {
        self.projections().map(|x| x.bytes()).sum()
    }

    /// Every projection of the model: each layer's seven, then the output head.
    fn projections(&self) -> impl Iterator<Item = &Linear> {
        self.layers
            .iter()
            .flat_map(|l| {
                [
                    &l.attn.q,
                    &l.attn.k,
                    &l.attn.v,
                    &l.attn.o,
                    &l.mlp.gate,
                    &l.mlp.up,
                    &l.mlp.down,
                ]
            })
            .chain([&self.lm_head])
    }

    /// The kernels this model's projections run on, for provenance: the quantized ones'
    /// ([`quant::kernels_label`]) when it has quantized weights, else the unquantized ones'
    /// prefill kernel ([`matmul::kernels_label`]); `None` on a GPU.
    pub fn kernels(&self) -> Option<String> {
        if !self.device.is_cpu() {
            return None;
        }
        let (mut packed, mut candle, mut q4k_prefill) = (false, false, false);
        for l in self.projections() {
            match l {
                Linear::Packed { w, prefill, .. } => {
                    packed = true;
                    q4k_prefill |= prefill.is_some() && w.kind() == quant::QKind::Q4K;
                }
                Linear::Quant { w, .. } => {
                    candle = true;
                    q4k_prefill |= matches!(w, QMatMul::QTensor(q) if q.dtype() == GgmlDType::Q4K);
                }
                Linear::Dense { .. } => {}
            }
        }
        Some(match packed || candle {
            true => quant::kernels_label(packed, q4k_prefill),
            false => matmul::kernels_label(),
        })
    }

    /// Bytes of KV cache one decoded token reads at `depth` tokens of context.
    pub fn kv_bytes_per_token(&self, depth: usize) -> u64 {
        let c = &self.config;
        (2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * depth) as u64
            * self.dtype.size_in_bytes() as u64
    }

    /// Build the model from a weight source. `dtype` is the compute dtype (activations); quantized
    /// sources compute in f32.
    pub fn load(
        config: &ModelConfig,
        src: &mut dyn WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let c = config;
        let (h, kvh, d) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let embed = src.embedding("model.embed_tokens.weight", c.vocab_size, c.hidden_size)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let bias = c.attention_bias;
            let attn = Attention {
                q: src.linear(&format!("{p}.self_attn.q_proj"), h * d, c.hidden_size, bias)?,
                k: src.linear(
                    &format!("{p}.self_attn.k_proj"),
                    kvh * d,
                    c.hidden_size,
                    bias,
                )?,
                v: src.linear(
                    &format!("{p}.self_attn.v_proj"),
                    kvh * d,
                    c.hidden_size,
                    bias,
                )?,
                o: src.linear(
                    &format!("{p}.self_attn.o_proj"),
                    c.hidden_size,
                    h * d,
                    false,
                )?,
                q_norm: match c.qk_norm {
                    true => Some(RmsNorm::new(
                        src.vector(&format!("{p}.self_attn.q_norm.weight"), d)?,
                        c.rms_norm_eps,
                    )),
                    false => None,
                },
                k_norm: match c.qk_norm {
                    true => Some(RmsNorm::new(
                        src.vector(&format!("{p}.self_attn.k_norm.weight"), d)?,
                        c.rms_norm_eps,
                    )),
                    false => None,
                },
                n_head: h,
                n_kv_head: kvh,
                head_dim: d,
            };
            let mlp = Mlp {
                gate: src.linear(
                    &format!("{p}.mlp.gate_proj"),
                    c.intermediate_size,
                    c.hidden_size,
                    false,
                )?,
                up: src.linear(
                    &format!("{p}.mlp.up_proj"),
                    c.intermediate_size,
                    c.hidden_size,
                    false,
                )?,
                down: src.linear(
                    &format!("{p}.mlp.down_proj"),
                    c.hidden_size,
                    c.intermediate_size,
                    false,
                )?,
            };
            layers.push(Layer {
                attn_norm: RmsNorm::new(
                    src.vector(&format!("{p}.input_layernorm.weight"), c.hidden_size)?,
                    c.rms_norm_eps,
                ),
                attn,
                mlp_norm: RmsNorm::new(
                    src.vector(
                        &format!("{p}.post_attention_layernorm.weight"),
                        c.hidden_size,
                    )?,
                    c.rms_norm_eps,
                ),
                mlp,
            });
        }
        let norm = RmsNorm::new(
            src.vector("model.norm.weight", c.hidden_size)?,
            c.rms_norm_eps,
        );
        let lm_head = if c.tie_word_embeddings {
            embed.as_linear()?
        } else {
            src.linear("lm_head", c.vocab_size, c.hidden_size, false)?
        };
        let rope = Rope::new(
            c,
            src.rope_freq_factors()?,
            src.rope_interleaved(),
            dtype,
            device,
        )?;
        let model = Transformer {
            config: c.clone(),
            embed,
            layers,
            norm,
            lm_head,
            rope,
            dtype,
            device: device.clone(),
        };
        model.collapse_dense_weights();
        Ok(model)
    }

    /// Put the unquantized projections' weights into huge pages ([`crate::pages::collapse`]):
    /// a decoding step streams through them as it does through the quantized ones, which are
    /// laid out in huge pages as they are built.
    fn collapse_dense_weights(&self) {
        if !self.device.is_cpu() || !crate::pages::enabled() {
            return;
        }
        use rayon::prelude::*;
        let dense: Vec<&Tensor> = self
            .projections()
            .filter_map(|l| match l {
                Linear::Dense { w, .. } => Some(w),
                _ => None,
            })
            .collect();
        // In parallel: each is a copy into fresh pages.
        dense.par_iter().for_each(|w| {
            let (s, _) = w.storage_and_layout();
            match &*s {
                Storage::Cpu(CpuStorage::F32(v)) => crate::pages::collapse(bytemuck::cast_slice(v)),
                Storage::Cpu(CpuStorage::BF16(v)) => {
                    crate::pages::collapse(bytemuck::cast_slice(v))
                }
                Storage::Cpu(CpuStorage::F16(v)) => crate::pages::collapse(bytemuck::cast_slice(v)),
                _ => false,
            };
        });
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A fresh KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// Run `ids` at positions `cache.len()..`, appending to the cache. Returns f32 logits of shape
    /// `(ids.len(), vocab)` for [`Logits::All`] or `(1, vocab)` for [`Logits::Last`].
    ///
    /// One token on the CPU in f32, bf16 or f16 takes [`Transformer::decode_step`], on the
    /// calling thread: its parallel parts run on candle's barrier pool, which the caller joins
    /// (only a projection that falls back to candle's matmul would use rayon). Every other pass
    /// runs on a thread of rayon's pool, so that its parallel parts find rayon's threads awake
    /// instead of waking them from the calling thread and sleeping meanwhile. Sending a
    /// decoding step to rayon too cost two futex hand-offs per token and woke rayon's idle
    /// thread to spin beside the pool's two on two cores: steps of 13.5 ms, about one in eight
    /// 4–34 ms longer, against 12.3 ms steady without (benches/README.md, "The decoding step
    /// off rayon").
    ///
    /// On a GPU every pass stays on the calling thread: candle queues CUDA work on the calling
    /// thread's own stream, so kernels queued from a rayon thread would be ordered neither with
    /// the caller's reads of the logits nor with its `synchronize` (which times a bench test).
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Tensor> {
        let step = ids.len() == 1 && self.has_decode_step();
        if !step && self.device.is_cpu() && rayon::current_thread_index().is_none() {
            return rayon::scope(|_| self.forward(ids, cache, which));
        }
        match ids {
            [id] if step => {
                self.check_ids(ids, cache.len())?;
                self.decode_step(*id, cache)
            }
            _ => self.forward_general(ids, cache, which),
        }
    }

    fn check_ids(&self, ids: &[u32], offset: usize) -> Result<()> {
        if ids.is_empty() {
            return Err(crate::Error::Other(
                "forward pass called with no tokens".into(),
            ));
        }
        if offset + ids.len() > self.rope.max_positions() {
            return Err(crate::Error::Resource(format!(
                "sequence of {} tokens exceeds the model's {} positions (max_position_embeddings)",
                offset + ids.len(),
                self.rope.max_positions()
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(crate::Error::Other(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.config.vocab_size
            )));
        }
        Ok(())
    }

    /// Any number of tokens through candle operations.
    fn forward_general(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Tensor> {
        self.check_ids(ids, cache.len())?;
        let offset = cache.len();
        let t = ids.len();
        let ids_t = Tensor::new(ids, &self.device)?;
        let mut x = self.embed.forward(&ids_t, self.dtype)?;
        // One causal mask for every layer; a single new token attends to everything cached.
        let mask = match t {
            1 => None,
            _ => {
                let n_rep = self.config.num_attention_heads / self.config.num_key_value_heads;
                Some(causal_mask(t, offset + t, offset, n_rep, &self.device)?)
            }
        };
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let r = x.clone();
            let a = layer.attn.forward(
                &layer.attn_norm.forward(&x)?,
                &self.rope,
                offset,
                mask.as_ref(),
                lc,
            )?;
            let x1 = (r + a)?;
            let m = layer.mlp.forward(&layer.mlp_norm.forward(&x1)?)?;
            x = (x1 + m)?;
        }
        cache.advance(t);
        let x = match which {
            Logits::All => x,
            Logits::Last => x.narrow(0, t - 1, 1)?,
        };
        let x = self.norm.forward(&x)?;
        Ok(self.lm_head.forward(&x)?.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_blocks_only_future_positions() {
        let m = causal_mask(2, 5, 3, 1, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m[0], vec![0.0, 0.0, 0.0, 0.0, f32::NEG_INFINITY]);
        assert_eq!(m[1], vec![0.0; 5]);
        let m = causal_mask(2, 2, 0, 2, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0], vec![0.0, f32::NEG_INFINITY]);
        assert_eq!(m[1], vec![0.0, 0.0]);
        assert_eq!(m[2], vec![0.0, f32::NEG_INFINITY]);
        assert_eq!(m[3], vec![0.0, 0.0]);
        // Every entry against the rule, on a mask with several heads and an offset.
        let (t, s, offset, n_rep) = (5, 9, 4, 3);
        let m = causal_mask(t, s, offset, n_rep, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m.len(), n_rep * t);
        for (r, row) in m.iter().enumerate() {
            let i = r % t;
            for (j, &v) in row.iter().enumerate() {
                let want = if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                };
                assert_eq!(v, want, "row {r}, key {j}");
            }
        }
    }
}
