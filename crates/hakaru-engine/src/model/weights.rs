//! Where a model's tensors come from. Every source answers to the transformers tensor names
//! (`model.layers.0.self_attn.q_proj`); the GGUF source maps them to llama.cpp's names.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, RngCore, SeedableRng};

use super::quant::QWeight;
use super::{Embedding, Linear};
use crate::error::{Error, Result};

pub trait WeightSource {
    /// The projection `{prefix}.weight` of shape `(out, inp)` and, if `bias`, `{prefix}.bias`.
    fn linear(&mut self, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear>;
    /// A 1-D tensor (norm weights), in the compute dtype.
    fn vector(&mut self, name: &str, dim: usize) -> Result<Tensor>;
    fn embedding(&mut self, name: &str, vocab: usize, hidden: usize) -> Result<Embedding>;
    /// Per-frequency rotary divisors stored in the file (GGUF `rope_freqs.weight`).
    fn rope_freq_factors(&mut self) -> Result<Option<Vec<f32>>> {
        Ok(None)
    }
    /// Whether q/k weights are laid out for interleaved (GPT-J style) rotary pairs.
    fn rope_interleaved(&self) -> bool {
        false
    }
}

fn check_shape(t: &Tensor, want: &[usize], name: &str, file: &Path) -> Result<()> {
    if t.dims() != want {
        return Err(Error::file(
            file,
            format!("tensor `{name}` has shape {:?}, the config implies {want:?}; config.json and the weights disagree", t.dims()),
        ));
    }
    Ok(())
}

/// Check that a safetensors file is complete before mapping it: its header must parse and the
/// file must be as long as the header says.
pub fn check_safetensors_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::file(path, format!("cannot read weights: {e}")))?;
    let size = meta.len();
    let redo = "the file is damaged or its download was interrupted: delete it and run `hakaru pull` again";
    if size < 8 {
        return Err(Error::file(
            path,
            format!("truncated safetensors file ({size} bytes); {redo}"),
        ));
    }
    let mut f = File::open(path).map_err(|e| Error::file(path, e.to_string()))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|e| Error::file(path, e.to_string()))?;
    let n = u64::from_le_bytes(n);
    if n > 100_000_000 || 8 + n > size {
        return Err(Error::file(
            path,
            format!("truncated or not a safetensors file: header claims {n} bytes, file has {size}; {redo}"),
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| Error::file(path, e.to_string()))?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| {
        Error::file(
            path,
            format!("safetensors header is not valid JSON ({e}); {redo}"),
        )
    })?;
    let obj = header.as_object().ok_or_else(|| {
        Error::file(
            path,
            format!("safetensors header is not a JSON object; {redo}"),
        )
    })?;
    let mut end = 0u64;
    for (name, v) in obj {
        if name == "__metadata__" {
            continue;
        }
        let off = v
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| o.get(1))
            .and_then(|o| o.as_u64())
            .ok_or_else(|| {
                Error::file(
                    path,
                    format!("tensor `{name}`: header entry has no data_offsets; {redo}"),
                )
            })?;
        end = end.max(off);
    }
    let want = 8 + n + end;
    if size < want {
        return Err(Error::file(
            path,
            format!(
                "truncated safetensors file: {size} bytes, its header describes {want}; {redo}"
            ),
        ));
    }
    Ok(())
}

/// Tensors from one or more safetensors files (a sharded checkpoint), memory-mapped.
pub struct SafetensorsSource {
    st: candle_core::safetensors::MmapedSafetensors,
    /// tensor name → file holding it, for error messages
    index: HashMap<String, PathBuf>,
    dtype: DType,
    device: Device,
}

impl SafetensorsSource {
    pub fn open(files: &[PathBuf], dtype: DType, device: &Device) -> Result<Self> {
        let mut index = HashMap::new();
        for f in files {
            check_safetensors_file(f)?;
        }
        // SAFETY: the files are mapped read-only; hakaru never writes to model files while running.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(files) }
            .map_err(|e| Error::Other(format!("cannot map weights {files:?}: {e}")))?;
        for f in files {
            let single = unsafe { candle_core::safetensors::MmapedSafetensors::new(f) }
                .map_err(|e| Error::file(f, e.to_string()))?;
            for (name, _) in single.tensors() {
                index.insert(name, f.clone());
            }
        }
        Ok(SafetensorsSource {
            st,
            index,
            dtype,
            device: device.clone(),
        })
    }

    fn file_of(&self, name: &str) -> PathBuf {
        self.index
            .get(name)
            .cloned()
            .unwrap_or_else(|| PathBuf::from("model.safetensors"))
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if !self.index.contains_key(name) {
            let file = self.index.values().next().cloned().unwrap_or_default();
            return Err(Error::file(
                file,
                format!("tensor `{name}` is missing from the checkpoint; is config.json for this model?"),
            ));
        }
        let file = self.file_of(name);
        if let Some(t) = self.get_advised(name, shape)? {
            return Ok(t);
        }
        let t = self
            .st
            .load(name, &self.device)
            .map_err(|e| Error::file(&file, format!("tensor `{name}`: {e}")))?;
        check_shape(&t, shape, name, &file)?;
        Ok(t.to_dtype(self.dtype)?)
    }

    /// A tensor stored in the model's dtype and of the expected shape, loaded on the CPU: its
    /// bytes copied once from the mapped file into memory advised for huge pages
    /// ([`crate::pages::copied_vec`]), instead of candle's copy and a collapse after it. `None`
    /// for any other case, which [`Self::get`] loads through candle.
    fn get_advised(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if !self.device.is_cpu() || !crate::pages::enabled() {
            return Ok(None);
        }
        let Ok(view) = self.st.get(name) else {
            return Ok(None);
        };
        if DType::try_from(view.dtype()).ok() != Some(self.dtype) || view.shape() != shape {
            return Ok(None);
        }
        fn tensor<T: bytemuck::Pod + candle_core::WithDType>(
            data: &[u8],
            shape: &[usize],
        ) -> Result<Option<Tensor>> {
            crate::pages::copied_vec::<T>(data)
                .map(|v| Tensor::from_vec(v, shape, &Device::Cpu))
                .transpose()
                .map_err(Into::into)
        }
        match self.dtype {
            DType::F32 => tensor::<f32>(view.data(), shape),
            DType::BF16 => tensor::<half::bf16>(view.data(), shape),
            DType::F16 => tensor::<half::f16>(view.data(), shape),
            _ => Ok(None),
        }
    }
}

impl WeightSource for SafetensorsSource {
    fn linear(&mut self, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let w = self.get(&format!("{prefix}.weight"), &[out, inp])?;
        let b = if bias {
            Some(self.get(&format!("{prefix}.bias"), &[out])?)
        } else {
            None
        };
        Ok(Linear::Dense { w, b })
    }
    fn vector(&mut self, name: &str, dim: usize) -> Result<Tensor> {
        self.get(name, &[dim])
    }
    fn embedding(&mut self, name: &str, vocab: usize, hidden: usize) -> Result<Embedding> {
        Ok(Embedding::Dense(self.get(name, &[vocab, hidden])?))
    }
}

/// llama.cpp's tensor name for a transformers tensor name.
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head" => Some("output"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let mapped = match rest {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm.weight" => "attn_q_norm.weight",
        "self_attn.k_norm.weight" => "attn_k_norm.weight",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{mapped}"))
}

/// Tensors from a GGUF file, kept quantized (unquantized ones dense, in their dtype on the CPU).
pub struct GgufSource {
    path: PathBuf,
    content: gguf_file::Content,
    reader: BufReader<File>,
    device: Device,
    interleaved: bool,
}

impl GgufSource {
    pub fn new(
        path: &Path,
        content: gguf_file::Content,
        reader: BufReader<File>,
        device: &Device,
        interleaved: bool,
    ) -> Self {
        GgufSource {
            path: path.to_path_buf(),
            content,
            reader,
            device: device.clone(),
            interleaved,
        }
    }

    pub fn has(&self, gguf: &str) -> bool {
        self.content.tensor_infos.contains_key(gguf)
    }

    fn qtensor(&mut self, name: &str, shape: &[usize]) -> Result<QTensor> {
        if !self.has(name) {
            return Err(Error::file(&self.path, format!("tensor `{name}` is missing; the file is incomplete or not a supported architecture")));
        }
        let q = self
            .content
            .tensor(&mut self.reader, name, &self.device)
            .map_err(|e| Error::file(&self.path, format!("tensor `{name}`: {e}")))?;
        if q.shape().dims() != shape {
            return Err(Error::file(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}, the metadata implies {shape:?}",
                    q.shape().dims()
                ),
            ));
        }
        Ok(q)
    }

    /// The weight `name` as a dense tensor in its stored dtype when the file holds it unquantized
    /// (F32, F16, BF16); `None` for a quantized one.
    ///
    /// On the CPU kept in its dtype rather than dequantized to f32 as candle's `QMatMul` does: an
    /// f16 file's projections then read half the bytes and run on the dense decoding step
    /// ([`super::matvec`]) and prefill ([`super::matmul`]), which widen the weights as they read
    /// them. Elsewhere widened to f32 at load, as before.
    fn unquantized(&mut self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Ok(None);
        };
        let dtype = match info.ggml_dtype {
            GgmlDType::F32 => DType::F32,
            GgmlDType::F16 => DType::F16,
            GgmlDType::BF16 => DType::BF16,
            _ => return Ok(None),
        };
        let dims = info.shape.dims().to_vec();
        if dims != shape {
            return Err(Error::file(
                &self.path,
                format!("tensor `{name}` has shape {dims:?}, the metadata implies {shape:?}"),
            ));
        }
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        let n: usize = dims.iter().product();
        let t = match dtype {
            DType::F32 => self.read_values::<f32>(name, start, n, &dims)?,
            DType::F16 => self.read_values::<half::f16>(name, start, n, &dims)?,
            _ => self.read_values::<half::bf16>(name, start, n, &dims)?,
        };
        if !self.device.is_cpu() {
            // A GPU computes these in the model's dtype (f32), as `QMatMul` did: rounding the
            // activations to f16 could overflow.
            return Ok(Some(t.to_dtype(DType::F32)?.to_device(&self.device)?));
        }
        Ok(Some(t))
    }

    /// The `n` values of `T` at byte `start` of the file as a CPU tensor of `dims`, read in one
    /// copy into memory advised for huge pages before it is written ([`crate::pages`]). candle's
    /// `Content::tensor` reads them into a byte buffer and copies them twice more.
    fn read_values<T: bytemuck::Pod + candle_core::WithDType>(
        &mut self,
        name: &str,
        start: u64,
        n: usize,
        dims: &[usize],
    ) -> Result<Tensor> {
        use std::io::{Read, Seek, SeekFrom};
        let bytes = n as u64 * std::mem::size_of::<T>() as u64;
        let io = |e: std::io::Error| Error::file(&self.path, format!("tensor `{name}`: {e}"));
        let size = self.reader.seek(SeekFrom::End(0)).map_err(io)?;
        if start.saturating_add(bytes) > size {
            return Err(Error::file(
                &self.path,
                format!(
                    "tensor `{name}` needs {bytes} bytes at offset {start}, the file has {size}; \
                     it is truncated: download it again"
                ),
            ));
        }
        let mut v = crate::pages::zeroed_vec::<T>(n);
        self.reader.seek(SeekFrom::Start(start)).map_err(io)?;
        self.reader
            .read_exact(bytemuck::cast_slice_mut(&mut v))
            .map_err(io)?;
        Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
    }

    fn dense(&mut self, gguf: &str, dim: usize) -> Result<Tensor> {
        let q = self
            .content
            .tensor(&mut self.reader, gguf, &self.device)
            .map_err(|e| Error::file(&self.path, format!("tensor `{gguf}`: {e}")))?;
        let t = q.dequantize(&self.device)?;
        check_shape(&t, &[dim], gguf, &self.path)?;
        Ok(t)
    }
}

impl WeightSource for GgufSource {
    fn linear(&mut self, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let base = gguf_name(prefix)
            .ok_or_else(|| Error::Other(format!("no GGUF name for tensor `{prefix}`")))?;
        let name = format!("{base}.weight");
        let b = if bias {
            Some(self.dense(&format!("{base}.bias"), out)?)
        } else {
            None
        };
        if let Some(w) = self.unquantized(&name, &[out, inp])? {
            return Ok(Linear::Dense { w, b });
        }
        quant_linear(self.qtensor(&name, &[out, inp])?, b)
    }
    fn vector(&mut self, name: &str, dim: usize) -> Result<Tensor> {
        let g = gguf_name(name)
            .ok_or_else(|| Error::Other(format!("no GGUF name for tensor `{name}`")))?;
        self.dense(&g, dim)
    }
    fn embedding(&mut self, name: &str, vocab: usize, hidden: usize) -> Result<Embedding> {
        let g = gguf_name(name)
            .ok_or_else(|| Error::Other(format!("no GGUF name for tensor `{name}`")))?;
        if let Some(w) = self.unquantized(&g, &[vocab, hidden])? {
            return Ok(Embedding::Dense(w));
        }
        quant_embedding(self.qtensor(&g, &[vocab, hidden])?)
    }
    fn rope_freq_factors(&mut self) -> Result<Option<Vec<f32>>> {
        if !self.has("rope_freqs.weight") {
            return Ok(None);
        }
        let q = self
            .content
            .tensor(&mut self.reader, "rope_freqs.weight", &self.device)
            .map_err(|e| Error::file(&self.path, format!("tensor `rope_freqs.weight`: {e}")))?;
        Ok(Some(
            q.dequantize(&Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()?,
        ))
    }
    fn rope_interleaved(&self) -> bool {
        self.interleaved
    }
}

/// A quantized projection: on hakaru's own kernels where they apply, else candle's `QMatMul`.
fn quant_linear(w: QTensor, b: Option<Tensor>) -> Result<Linear> {
    let w = Arc::new(w);
    match QWeight::from_qtensor(&w)? {
        Some(p) => Linear::packed(Arc::new(p), b),
        None => Ok(Linear::Quant {
            w: QMatMul::from_arc(w)?,
            b,
        }),
    }
}

fn quant_embedding(w: QTensor) -> Result<Embedding> {
    let w = Arc::new(w);
    Ok(match QWeight::from_qtensor(&w)? {
        Some(p) => Embedding::Packed(Arc::new(p)),
        None => Embedding::Quant(w),
    })
}

/// Random weights of the exact shape, for throughput measurements without a download. Values are
/// uniform in ±`scale` (norms are 1), which keeps activations finite through any depth.
pub struct SyntheticSource {
    rng: rand::rngs::SmallRng,
    dtype: DType,
    quant: Option<GgmlDType>,
    device: Device,
    scale: f32,
}

impl SyntheticSource {
    pub fn new(seed: u64, dtype: DType, quant: Option<GgmlDType>, device: &Device) -> Self {
        SyntheticSource {
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
            dtype,
            quant,
            device: device.clone(),
            scale: 0.05,
        }
    }

    /// The next tensor's values, one seed drawn per tensor.
    fn values(&mut self, shape: &[usize]) -> Vec<f32> {
        random_values(self.rng.next_u64(), shape.iter().product(), self.scale)
    }

    fn random(&mut self, shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_vec(self.values(shape), shape, &Device::Cpu)?)
    }

    fn quantize(&mut self, shape: &[usize], q: GgmlDType) -> Result<QTensor> {
        let values = self.values(shape);
        quantize_on_threads(&values, shape, q, &self.device, 1 << 20)
    }
}

/// `values` of `shape` quantized to `q` on every thread, in runs of whole rows of about
/// `chunk` values, onto `device`. The same bytes as candle's `QTensor::quantize` of the whole
/// matrix, which runs on one thread (a 7B model's minute), since every block of a row is
/// quantized on its own.
fn quantize_on_threads(
    values: &[f32],
    shape: &[usize],
    q: GgmlDType,
    device: &Device,
    chunk: usize,
) -> Result<QTensor> {
    use candle_core::quantized::QStorage;
    use rayon::prelude::*;
    let n: usize = shape.iter().product();
    if values.len() != n || n == 0 {
        return Err(Error::Other(format!(
            "quantizing {} values as a {shape:?} matrix: give its {n} values (and at least one)",
            values.len()
        )));
    }
    let cols = shape.last().copied().unwrap_or(1).max(1);
    let rows_per_chunk = (chunk / cols).max(1);
    let parts = values
        .par_chunks(rows_per_chunk * cols)
        .map(|c| -> Result<Vec<u8>> {
            let t = Tensor::from_slice(c, (c.len() / cols, cols), &Device::Cpu)?;
            Ok(QTensor::quantize(&t, q)?.data()?.into_owned())
        })
        .collect::<Result<Vec<_>>>()?;
    let storage = QStorage::from_data(std::borrow::Cow::Owned(parts.concat()), device, q)?;
    Ok(QTensor::new(storage, shape)?)
}

/// `n` values uniform in ±`scale` from `seed`, drawn on every thread: each block of
/// [`RANDOM_BLOCK`] values has its own generator, seeded from `seed` and the block's index, so the
/// values depend on the seed alone and not on the thread count. (One generator for a whole 7B
/// model, 7.6 G values, takes minutes on one core.)
fn random_values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    use rayon::prelude::*;
    let mut data = vec![0f32; n];
    data.par_chunks_mut(RANDOM_BLOCK)
        .enumerate()
        .for_each(|(i, block)| {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(
                seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            for x in block {
                *x = rng.random_range(-scale..scale);
            }
        });
    data
}

/// Values per generator in [`random_values`].
const RANDOM_BLOCK: usize = 1 << 16;

/// The type a row of `cols` values is quantized to when asked for `q`: K-quants need rows that are
/// multiples of 256, and for other rows llama.cpp's quantizer falls back to a 32-wide type of
/// about the same size (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0; `llama_tensor_get_type`). Synthetic
/// K-quant models do the same, so they hold what a real GGUF of that shape holds (Qwen2.5-0.5B's
/// hidden size 896 is not a multiple of 256). `None`: no quantized type fits; kept dense.
fn fitting_type(q: GgmlDType, cols: usize) -> Option<GgmlDType> {
    if cols.is_multiple_of(q.block_size()) {
        return Some(q);
    }
    let fallback = match q {
        GgmlDType::Q2K | GgmlDType::Q3K => GgmlDType::Q4_0,
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        GgmlDType::Q6K => GgmlDType::Q8_0,
        _ => return None,
    };
    cols.is_multiple_of(fallback.block_size())
        .then_some(fallback)
}

impl WeightSource for SyntheticSource {
    fn linear(&mut self, _prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let b = if bias {
            Some(
                self.random(&[out])?
                    .to_dtype(self.dtype)?
                    .to_device(&self.device)?,
            )
        } else {
            None
        };
        Ok(match self.quant.and_then(|q| fitting_type(q, inp)) {
            Some(q) => quant_linear(self.quantize(&[out, inp], q)?, b)?,
            _ => Linear::Dense {
                w: self
                    .random(&[out, inp])?
                    .to_dtype(self.dtype)?
                    .to_device(&self.device)?,
                b,
            },
        })
    }
    fn vector(&mut self, _name: &str, dim: usize) -> Result<Tensor> {
        Ok(Tensor::ones(dim, self.dtype, &self.device)?)
    }
    fn embedding(&mut self, _name: &str, vocab: usize, hidden: usize) -> Result<Embedding> {
        Ok(match self.quant.and_then(|q| fitting_type(q, hidden)) {
            Some(q) => quant_embedding(self.quantize(&[vocab, hidden], q)?)?,
            _ => Embedding::Dense(
                self.random(&[vocab, hidden])?
                    .to_dtype(self.dtype)?
                    .to_device(&self.device)?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_quants_fall_back_on_rows_not_a_multiple_of_256() {
        assert_eq!(fitting_type(GgmlDType::Q4K, 1024), Some(GgmlDType::Q4K));
        assert_eq!(fitting_type(GgmlDType::Q4K, 896), Some(GgmlDType::Q5_0));
        assert_eq!(fitting_type(GgmlDType::Q5K, 896), Some(GgmlDType::Q5_1));
        assert_eq!(fitting_type(GgmlDType::Q6K, 896), Some(GgmlDType::Q8_0));
        assert_eq!(fitting_type(GgmlDType::Q8_0, 896), Some(GgmlDType::Q8_0));
        assert_eq!(fitting_type(GgmlDType::Q8_0, 100), None);
    }

    #[test]
    fn random_values_depend_on_the_seed_not_the_thread_count() {
        let n = 3 * RANDOM_BLOCK + 17;
        let on = |threads: usize, seed: u64| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| random_values(seed, n, 0.05))
        };
        let one = on(1, 7);
        assert_eq!(one.len(), n);
        assert_eq!(one, on(3, 7), "values changed with the thread count");
        assert!(one.iter().all(|x| (-0.05..0.05).contains(x)));
        // Blocks draw different values: no block repeats the first one's.
        let first = &one[..64];
        assert!(one
            .chunks(RANDOM_BLOCK)
            .skip(1)
            .all(|b| b[..b.len().min(64)] != first[..b.len().min(64)]));
        let other = on(2, 8);
        assert_ne!(
            one[..64],
            other[..64],
            "another seed should draw other values"
        );
        // Spread over the range, not stuck near one value.
        let mean = one.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = one.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-3, "mean {mean}");
        // Uniform in ±0.05: variance 0.1² / 12.
        assert!((var / (0.01 / 12.0) - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn quantizing_in_runs_of_rows_gives_candles_bytes() {
        let shape = [12usize, 512];
        let values = random_values(3, 12 * 512, 0.05);
        let t = Tensor::from_slice(&values, &shape[..], &Device::Cpu).unwrap();
        for q in [GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K] {
            let whole = QTensor::quantize(&t, q).unwrap();
            // Runs of 1 row, 5 rows (the last run shorter) and all rows at once.
            for chunk in [512, 5 * 512, 1 << 20] {
                let ours = quantize_on_threads(&values, &shape, q, &Device::Cpu, chunk).unwrap();
                assert_eq!(ours.shape().dims(), &shape[..]);
                assert_eq!(ours.dtype(), q);
                assert_eq!(
                    ours.data().unwrap(),
                    whole.data().unwrap(),
                    "{q:?} in runs of {chunk} values"
                );
            }
        }
        let e = quantize_on_threads(&values[1..], &shape, GgmlDType::Q8_0, &Device::Cpu, 512)
            .unwrap_err()
            .to_string();
        assert!(e.contains("6143 values") && e.contains("its 6144"), "{e}");
    }

    #[test]
    fn gguf_names() {
        for (hf, g) in [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("lm_head", "output"),
            ("model.layers.3.self_attn.q_proj", "blk.3.attn_q"),
            (
                "model.layers.0.self_attn.k_norm.weight",
                "blk.0.attn_k_norm.weight",
            ),
            (
                "model.layers.12.post_attention_layernorm.weight",
                "blk.12.ffn_norm.weight",
            ),
            ("model.layers.1.mlp.down_proj", "blk.1.ffn_down"),
        ] {
            assert_eq!(gguf_name(hf).as_deref(), Some(g), "{hf}");
        }
        assert_eq!(gguf_name("model.layers.1.mlp.nonsense"), None);
    }
}
