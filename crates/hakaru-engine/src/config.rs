//! Model shape and hyper-parameters, read from a hub `config.json` (both the long-standing format
//! with top-level `rope_theta`/`rope_scaling` and the newer `rope_parameters`), from GGUF metadata,
//! or from the registry's shape tables.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, FileContext, Result};

/// The decoder families hakaru runs. They share one implementation (`model::Transformer`); the
/// differences are flags on [`ModelConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// `Qwen2ForCausalLM`: q/k/v projections carry a bias.
    Qwen2,
    /// `Qwen3ForCausalLM`: RMS norm on each head of q and k; `head_dim` may differ from hidden/heads.
    Qwen3,
    /// `LlamaForCausalLM`: Llama 2/3/3.1 and derivatives (Swallow, R1-Distill-Llama).
    Llama,
}

impl Arch {
    pub fn from_hf_name(name: &str) -> Option<Arch> {
        match name {
            "Qwen2ForCausalLM" => Some(Arch::Qwen2),
            "Qwen3ForCausalLM" => Some(Arch::Qwen3),
            "LlamaForCausalLM" => Some(Arch::Llama),
            _ => None,
        }
    }
    pub fn hf_name(self) -> &'static str {
        match self {
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
            Arch::Llama => "LlamaForCausalLM",
        }
    }
    /// The `general.architecture` string used in GGUF files.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Llama => "llama",
        }
    }
    pub fn from_gguf_name(name: &str) -> Option<Arch> {
        match name {
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            "llama" => Some(Arch::Llama),
            _ => None,
        }
    }
    pub const SUPPORTED: &'static str = "Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM";
}

/// How rotary position frequencies are rescaled for long contexts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// Llama 3.1's piecewise frequency scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
    /// Positions divided by `factor` (equivalently, every frequency divided by it).
    Linear { factor: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    /// Bias on the q, k and v projections (always on for Qwen2, a config flag elsewhere).
    pub attention_bias: bool,
    /// Per-head RMS norm of q and k before rotary embedding (Qwen3).
    pub qk_norm: bool,
    /// The dtype the weights are stored in, as config.json names it (`bfloat16`, `float32`, …).
    pub torch_dtype: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn req_usize(v: &Value, key: &str, path: &Path) -> Result<usize> {
    match field(v, key) {
        Some(x) => x.as_u64().map(|n| n as usize).ok_or_else(|| {
            Error::file(
                path,
                format!("field `{key}`: expected a non-negative integer, found {x}"),
            )
        }),
        None => Err(Error::file(
            path,
            format!("field `{key}` is missing; a {} config needs it", "decoder"),
        )),
    }
}

fn opt_f64(v: &Value, key: &str, path: &Path) -> Result<Option<f64>> {
    match field(v, key) {
        Some(x) => x.as_f64().map(Some).ok_or_else(|| {
            Error::file(path, format!("field `{key}`: expected a number, found {x}"))
        }),
        None => Ok(None),
    }
}

fn opt_bool(v: &Value, key: &str, path: &Path) -> Result<Option<bool>> {
    match field(v, key) {
        Some(x) => x.as_bool().map(Some).ok_or_else(|| {
            Error::file(
                path,
                format!("field `{key}`: expected true or false, found {x}"),
            )
        }),
        None => Ok(None),
    }
}

/// `eos_token_id` is an integer or a list of integers in config.json and generation_config.json.
pub fn token_id_list(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => vec![],
    }
}

impl ModelConfig {
    /// Read and check a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        Self::from_json(&v, path)
    }

    /// Parse a config.json value; `path` names the file in errors.
    pub fn from_json(v: &Value, path: &Path) -> Result<Self> {
        let arch_name = field(v, "architectures")
            .and_then(|a| a.as_array())
            .and_then(|a| a.first())
            .and_then(|a| a.as_str())
            .ok_or_else(|| {
                Error::file(path, "field `architectures` is missing or empty; it must name the model class, e.g. [\"Qwen2ForCausalLM\"]")
            })?;
        let arch = Arch::from_hf_name(arch_name).ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "field `architectures`: `{arch_name}` is not supported; hakaru runs {}",
                    Arch::SUPPORTED
                ),
            )
        })?;
        let hidden_size = req_usize(v, "hidden_size", path)?;
        let num_attention_heads = req_usize(v, "num_attention_heads", path)?;
        if num_attention_heads == 0 {
            return Err(Error::file(
                path,
                "field `num_attention_heads` must be at least 1",
            ));
        }
        let num_key_value_heads = match field(v, "num_key_value_heads") {
            Some(_) => req_usize(v, "num_key_value_heads", path)?,
            None => num_attention_heads,
        };
        if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(Error::file(
                path,
                format!(
                    "field `num_key_value_heads`: {num_key_value_heads} does not divide num_attention_heads = {num_attention_heads}"
                ),
            ));
        }
        let head_dim = match field(v, "head_dim") {
            Some(_) => req_usize(v, "head_dim", path)?,
            None => {
                if hidden_size % num_attention_heads != 0 {
                    return Err(Error::file(path, "field `head_dim` is missing and hidden_size is not a multiple of num_attention_heads"));
                }
                hidden_size / num_attention_heads
            }
        };
        if head_dim % 2 != 0 {
            return Err(Error::file(
                path,
                format!(
                    "field `head_dim`: {head_dim} is odd; rotary embedding needs an even head size"
                ),
            ));
        }
        // Newer transformers releases move rope settings into `rope_parameters`; older configs keep
        // `rope_theta` at the top level and the scaling in `rope_scaling`.
        let rope_params = field(v, "rope_parameters");
        // transformers' default when neither place gives one.
        let default_theta = 10_000.0;
        let rope_theta = match opt_f64(v, "rope_theta", path)? {
            Some(t) => t,
            None => match rope_params {
                Some(p) => opt_f64(p, "rope_theta", path)?.unwrap_or(default_theta),
                None => default_theta,
            },
        };
        let scaling_value = field(v, "rope_scaling").or(rope_params);
        let rope_scaling = match scaling_value {
            Some(s) => parse_rope_scaling(s, path)?,
            None => None,
        };
        let attention_bias = match arch {
            Arch::Qwen2 => true,
            _ => opt_bool(v, "attention_bias", path)?.unwrap_or(false),
        };
        let cfg = ModelConfig {
            arch,
            vocab_size: req_usize(v, "vocab_size", path)?,
            hidden_size,
            intermediate_size: req_usize(v, "intermediate_size", path)?,
            num_hidden_layers: req_usize(v, "num_hidden_layers", path)?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            max_position_embeddings: match field(v, "max_position_embeddings") {
                Some(_) => req_usize(v, "max_position_embeddings", path)?,
                None => 4096,
            },
            rope_theta,
            rope_scaling,
            rms_norm_eps: opt_f64(v, "rms_norm_eps", path)?.unwrap_or(1e-6),
            tie_word_embeddings: opt_bool(v, "tie_word_embeddings", path)?.unwrap_or(false),
            attention_bias,
            qk_norm: arch == Arch::Qwen3,
            torch_dtype: field(v, "torch_dtype")
                .or_else(|| field(v, "dtype"))
                .and_then(|d| d.as_str())
                .map(str::to_string),
            bos_token_id: field(v, "bos_token_id")
                .and_then(|x| x.as_u64())
                .map(|x| x as u32),
            eos_token_ids: token_id_list(field(v, "eos_token_id")),
        };
        cfg.check().map_err(|m| Error::file(path, m))?;
        Ok(cfg)
    }

    /// Sanity checks shared by every source of a config.
    pub fn check(&self) -> std::result::Result<(), String> {
        for (name, n) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if n == 0 {
                return Err(format!("field `{name}` must be at least 1"));
            }
        }
        // Written so that NaN fails too.
        if self.rope_theta.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(format!(
                "field `rope_theta` must be positive, found {}",
                self.rope_theta
            ));
        }
        Ok(())
    }

    /// Number of parameters, counting a tied output matrix once.
    /// `(outputs, inputs)` of each layer's projections: q, k, v, o, gate, up, down.
    pub fn layer_projections(&self) -> [(usize, usize); 7] {
        let h = self.hidden_size;
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let i = self.intermediate_size;
        [(q, h), (kv, h), (kv, h), (h, q), (i, h), (i, h), (h, i)]
    }

    pub fn param_count(&self) -> u64 {
        let h = self.hidden_size as u64;
        let q = (self.num_attention_heads * self.head_dim) as u64;
        let kv = (self.num_key_value_heads * self.head_dim) as u64;
        let v = self.vocab_size as u64;
        let projections: u64 = self
            .layer_projections()
            .iter()
            .map(|&(rows, cols)| rows as u64 * cols as u64)
            .sum();
        let mut layer = projections + 2 * h;
        if self.attention_bias {
            layer += q + 2 * kv;
        }
        if self.qk_norm {
            layer += 2 * self.head_dim as u64;
        }
        let embed = v * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        embed + head + h + layer * self.num_hidden_layers as u64
    }
}

fn parse_rope_scaling(s: &Value, path: &Path) -> Result<Option<RopeScaling>> {
    let kind = field(s, "rope_type")
        .or_else(|| field(s, "type"))
        .and_then(|t| t.as_str())
        .unwrap_or("default");
    let get = |k: &str| -> Result<f64> {
        opt_f64(s, k, path)?
            .ok_or_else(|| Error::file(path, format!("rope scaling `{kind}` needs field `{k}`")))
    };
    match kind {
        "default" => Ok(None),
        "linear" => Ok(Some(RopeScaling::Linear { factor: get("factor")? })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: get("factor")?,
            low_freq_factor: get("low_freq_factor")?,
            high_freq_factor: get("high_freq_factor")?,
            original_max_position_embeddings: get("original_max_position_embeddings")? as usize,
        })),
        other => Err(Error::file(
            path,
            format!("field `rope_scaling`: rope type `{other}` is not supported (supported: default, linear, llama3)"),
        )),
    }
}

/// Read a JSON file into a value, with the path, line and column in any error.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_file(path)?;
    serde_json::from_str(&text).map_err(|e| {
        Error::file(
            path,
            format!(
                "line {}, column {}: not valid JSON: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ModelConfig> {
        ModelConfig::from_json(&v, Path::new("config.json"))
    }

    fn llama_base() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 100, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
            "eos_token_id": [1, 2]
        })
    }

    #[test]
    fn old_and_new_rope_formats_agree() {
        let mut old = llama_base();
        old["rope_theta"] = json!(500000.0);
        old["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let mut new = llama_base();
        new["rope_parameters"] = json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let a = parse(old).unwrap();
        let b = parse(new).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rope_theta, 500000.0);
        assert!(matches!(
            a.rope_scaling,
            Some(RopeScaling::Llama3 {
                original_max_position_embeddings: 8192,
                ..
            })
        ));
        assert_eq!(a.eos_token_ids, vec![1, 2]);
        assert_eq!(a.head_dim, 16);
    }

    #[test]
    fn default_rope_parameters_mean_no_scaling() {
        let mut v = llama_base();
        v["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 1000000.0});
        let c = parse(v).unwrap();
        assert_eq!(c.rope_scaling, None);
        assert_eq!(c.rope_theta, 1e6);
    }

    #[test]
    fn qwen_flags() {
        let mut v = llama_base();
        v["architectures"] = json!(["Qwen2ForCausalLM"]);
        let c = parse(v.clone()).unwrap();
        assert!(c.attention_bias && !c.qk_norm);
        v["architectures"] = json!(["Qwen3ForCausalLM"]);
        v["head_dim"] = json!(32);
        let c = parse(v).unwrap();
        assert!(!c.attention_bias && c.qk_norm);
        assert_eq!(c.head_dim, 32);
    }

    #[test]
    fn errors_name_file_and_field() {
        let mut v = llama_base();
        v["architectures"] = json!(["GPT2LMHeadModel"]);
        let e = parse(v).unwrap_err().to_string();
        assert!(e.starts_with("config.json: field `architectures`"), "{e}");
        assert!(e.contains("GPT2LMHeadModel"), "{e}");
        let mut v = llama_base();
        v.as_object_mut().unwrap().remove("hidden_size");
        let e = parse(v).unwrap_err().to_string();
        assert!(e.contains("`hidden_size` is missing"), "{e}");
        let mut v = llama_base();
        v["num_key_value_heads"] = json!(3);
        assert!(parse(v)
            .unwrap_err()
            .to_string()
            .contains("num_key_value_heads"));
        let mut v = llama_base();
        v["rope_scaling"] = json!({"rope_type": "yarn", "factor": 4.0});
        assert!(parse(v)
            .unwrap_err()
            .to_string()
            .contains("`yarn` is not supported"));
    }

    #[test]
    fn param_count_of_a_known_shape() {
        // Qwen2.5-0.5B: 494,032,768 parameters (tied embeddings), as published.
        let v = json!({
            "architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
            "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
            "vocab_size": 151936, "tie_word_embeddings": true
        });
        assert_eq!(parse(v).unwrap().param_count(), 494_032_768);
    }
}
