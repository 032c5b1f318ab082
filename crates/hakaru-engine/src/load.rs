//! Turning files into a runnable model: a model directory (config.json + safetensors), a GGUF
//! file, or a synthetic shape. Finding the files is `hub`'s job; this module only builds.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{DType, Device};

use crate::config::{Arch, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::hub::WeightFormat;
use crate::model::weights::{GgufSource, SafetensorsSource, SyntheticSource};
use crate::model::Transformer;
use crate::registry::Precision;
use crate::tokenizer::TokenizerBundle;

/// How to load: where, in which compute dtype, and (synthetic only) which quantization.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    /// Compute dtype for safetensors and synthetic models; `None` = the dtype the weights are
    /// stored in (config.json's `torch_dtype`). GGUF models always compute in f32.
    pub dtype: Option<DType>,
    /// Quantize a synthetic model's matrices to this type.
    pub quant: Option<Precision>,
    /// Seed of a synthetic model's random weights.
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            dtype: None,
            quant: None,
            seed: 0,
        }
    }
}

/// The block type a synthetic model's matrices are quantized to. (llama.cpp's `_M` mixes keep a
/// few tensors at a higher type; a synthetic model uses the base type throughout.)
pub fn ggml_type(p: Precision) -> Option<GgmlDType> {
    Some(match p {
        Precision::Q8_0 => GgmlDType::Q8_0,
        Precision::Q4_0 => GgmlDType::Q4_0,
        Precision::Q4KM => GgmlDType::Q4K,
        Precision::Q5KM => GgmlDType::Q5K,
        Precision::Q6K => GgmlDType::Q6K,
        Precision::F32 | Precision::Bf16 | Precision::F16 => return None,
    })
}

pub fn parse_dtype(s: &str) -> Option<DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" => Some(DType::F32),
        "bf16" | "bfloat16" => Some(DType::BF16),
        "f16" | "float16" | "half" => Some(DType::F16),
        _ => None,
    }
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        _ => "other",
    }
}

/// A model ready to run, with what it was loaded as.
pub struct LoadedModel {
    pub transformer: Transformer,
    pub tokenizer: Option<TokenizerBundle>,
    /// `f32`, `bf16`, `f16`, or a quantization such as `Q8_0`.
    pub weights: String,
    pub format: WeightFormat,
}

/// The weight files of a model directory: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json`. Pickle checkpoints are refused.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let v = crate::config::read_json(&index)?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::file(&index, "field `weight_map` is missing or not an object"))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        for p in &paths {
            if !p.exists() {
                return Err(Error::file(
                    &index,
                    format!(
                        "shard `{}` is listed but missing; run `hakaru pull` again",
                        p.display()
                    ),
                ));
            }
        }
        return Ok(paths);
    }
    let mut others: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::file(dir, format!("cannot list the model directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    if !others.is_empty() {
        others.sort();
        return Ok(others);
    }
    let pickle = [
        "pytorch_model.bin",
        "model.bin",
        "model.pt",
        "model.pth",
        "pytorch_model.bin.index.json",
    ];
    if pickle.iter().any(|p| dir.join(p).exists()) {
        return Err(Error::file(
            dir,
            "has only PyTorch pickle weights; hakaru loads only safetensors and GGUF (pickle can run code). Use a revision or repo that ships model.safetensors, or a GGUF file",
        ));
    }
    Err(Error::file(
        dir,
        "no model.safetensors, model.safetensors.index.json or *.safetensors found",
    ))
}

/// Load a transformers-format model directory.
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
    let cfg_path = dir.join("config.json");
    if !cfg_path.exists() {
        return Err(Error::file(
            &cfg_path,
            "missing: a model directory needs config.json",
        ));
    }
    let cfg = ModelConfig::from_file(&cfg_path)?;
    let files = safetensors_files(dir)?;
    let tokenizer = Some(TokenizerBundle::from_dir(dir)?.with_extra_eos(&cfg.eos_token_ids));
    let dtype = match opts.dtype {
        Some(d) => d,
        None => cfg
            .torch_dtype
            .as_deref()
            .and_then(parse_dtype)
            .unwrap_or(DType::F32),
    };
    let mut src = SafetensorsSource::open(&files, dtype, &opts.device)?;
    let transformer = Transformer::load(&cfg, &mut src, dtype, &opts.device)?;
    Ok(LoadedModel {
        transformer,
        tokenizer,
        weights: dtype_name(dtype).to_string(),
        format: WeightFormat::Safetensors,
    })
}

/// Build a model of `cfg`'s exact shape with random weights.
pub fn load_synthetic(cfg: &ModelConfig, opts: &LoadOptions) -> Result<LoadedModel> {
    let quant = opts.quant.and_then(ggml_type);
    let (dtype, label) = match (quant, opts.quant) {
        (Some(_), Some(q)) => (DType::F32, q.as_str().to_string()),
        _ => {
            let d = opts.dtype.unwrap_or(DType::F32);
            (d, dtype_name(d).to_string())
        }
    };
    let mut src = SyntheticSource::new(opts.seed, dtype, quant, &opts.device);
    let transformer = Transformer::load(cfg, &mut src, dtype, &opts.device)?;
    Ok(LoadedModel {
        transformer,
        tokenizer: None,
        weights: label,
        format: WeightFormat::None,
    })
}

fn md_u(content: &gguf_file::Content, key: &str, path: &Path) -> Result<usize> {
    let v = content
        .metadata
        .get(key)
        .ok_or_else(|| Error::file(path, format!("GGUF metadata key `{key}` is missing")))?;
    v.to_u64()
        .map(|x| x as usize)
        .or_else(|_| v.to_u32().map(|x| x as usize))
        .or_else(|_| v.to_i32().map(|x| x as usize))
        .map_err(|e| Error::file(path, format!("GGUF metadata key `{key}`: {e}")))
}

fn md_f(content: &gguf_file::Content, key: &str) -> Option<f64> {
    let v = content.metadata.get(key)?;
    v.to_f32().map(|x| x as f64).or_else(|_| v.to_f64()).ok()
}

/// llama.cpp's `general.file_type` codes for the quantizations hakaru reports.
fn file_type_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        7 => "Q8_0",
        10 => "Q2_K",
        12 => "Q3_K_M",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

/// Read a GGUF file's header and derive the model config from its metadata.
pub fn gguf_config(
    path: &Path,
) -> Result<(ModelConfig, gguf_file::Content, BufReader<File>, String)> {
    let f = File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let mut reader = BufReader::new(f);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| {
        Error::file(
            path,
            format!("not a readable GGUF file ({e}); re-download it"),
        )
    })?;
    let arch_name = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok().cloned())
        .ok_or_else(|| Error::file(path, "GGUF metadata key `general.architecture` is missing"))?;
    let arch = Arch::from_gguf_name(&arch_name).ok_or_else(|| {
        Error::file(path, format!("GGUF architecture `{arch_name}` is not supported; hakaru runs qwen2, qwen3 and llama"))
    })?;
    let a = arch_name.as_str();
    let hidden = md_u(&content, &format!("{a}.embedding_length"), path)?;
    let heads = md_u(&content, &format!("{a}.attention.head_count"), path)?;
    let kv = md_u(&content, &format!("{a}.attention.head_count_kv"), path).unwrap_or(heads);
    let head_dim =
        md_u(&content, &format!("{a}.attention.key_length"), path).unwrap_or(hidden / heads.max(1));
    let embd = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| Error::file(path, "tensor `token_embd.weight` is missing"))?;
    let vocab = embd.shape.dims()[0];
    let tie = !content.tensor_infos.contains_key("output.weight");
    let rope_scaling = match content
        .metadata
        .get(&format!("{a}.rope.scaling.type"))
        .and_then(|v| v.to_string().ok())
    {
        Some(t) if t == "linear" => md_f(&content, &format!("{a}.rope.scaling.factor"))
            .map(|factor| RopeScaling::Linear { factor }),
        _ => None,
    };
    let u32_of = |k: &str| content.metadata.get(k).and_then(|v| v.to_u32().ok());
    let cfg = ModelConfig {
        arch,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: md_u(&content, &format!("{a}.feed_forward_length"), path)?,
        num_hidden_layers: md_u(&content, &format!("{a}.block_count"), path)?,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        head_dim,
        max_position_embeddings: md_u(&content, &format!("{a}.context_length"), path)
            .unwrap_or(4096),
        rope_theta: md_f(&content, &format!("{a}.rope.freq_base")).unwrap_or(10_000.0),
        rope_scaling,
        rms_norm_eps: md_f(&content, &format!("{a}.attention.layer_norm_rms_epsilon"))
            .unwrap_or(1e-6),
        tie_word_embeddings: tie,
        attention_bias: content.tensor_infos.contains_key("blk.0.attn_q.bias"),
        qk_norm: content
            .tensor_infos
            .contains_key("blk.0.attn_q_norm.weight"),
        torch_dtype: None,
        bos_token_id: u32_of("tokenizer.ggml.bos_token_id"),
        eos_token_ids: u32_of("tokenizer.ggml.eos_token_id").into_iter().collect(),
    };
    cfg.check().map_err(|m| Error::file(path, m))?;
    let label = u32_of("general.file_type")
        .and_then(file_type_name)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:?}", embd.ggml_dtype));
    Ok((cfg, content, reader, label))
}

/// Load a GGUF file. The tokenizer comes from `tokenizer_dir` (tokenizer.json and friends) when
/// given, else from the files beside the GGUF, else from the GGUF's own metadata.
pub fn load_gguf(
    path: &Path,
    tokenizer_dir: Option<&Path>,
    opts: &LoadOptions,
) -> Result<LoadedModel> {
    let (cfg, content, reader, label) = gguf_config(path)?;
    let tokenizer = match tokenizer_dir.or(path.parent()) {
        Some(d) if d.join("tokenizer.json").exists() => Some(TokenizerBundle::from_dir(d)?),
        _ => crate::gguf_tokenizer::from_gguf(&content, path)?,
    }
    .map(|t| t.with_extra_eos(&cfg.eos_token_ids));
    let interleaved = cfg.arch == Arch::Llama;
    let mut src = GgufSource::new(path, content, reader, &opts.device, interleaved);
    let transformer = Transformer::load(&cfg, &mut src, DType::F32, &opts.device)?;
    Ok(LoadedModel {
        transformer,
        tokenizer,
        weights: label,
        format: WeightFormat::Gguf,
    })
}
