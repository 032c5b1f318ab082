//! The model registry: short names (`qwen2.5-7b`, `swallow-8b`, …) for the models hakaru is tuned
//! for, each with its hub repo, the exact shape of its config.json (so synthetic models and memory
//! estimates need no download) and known GGUF builds.
//!
//! The data is `models.toml` at the repository root, compiled into the binary; a different file
//! can be loaded with [`Registry::from_file`]. [`Registry::hash`] is the sha256 of the file's text,
//! recorded in results next to its `version`.
//!
//! This module also estimates memory needs ([`weight_bytes`], [`estimate`], [`fits`],
//! [`check_fits`]) so that a model that cannot fit is refused before loading.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Arch, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::model::quant::{self, QKind};
use crate::model_ref::{self, ModelRef};

/// The registry compiled into the binary.
pub const BUILTIN_TOML: &str = include_str!("../../../models.toml");
/// The `version` of registry files this build understands.
pub const SUPPORTED_VERSION: u32 = 1;

/// Model families, as `family = "…"` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "qwen2.5")]
    Qwen25,
    #[serde(rename = "qwen3")]
    Qwen3,
    #[serde(rename = "r1-distill-qwen")]
    R1DistillQwen,
    #[serde(rename = "r1-distill-llama")]
    R1DistillLlama,
    #[serde(rename = "llama3.1")]
    Llama31,
    #[serde(rename = "swallow")]
    Swallow,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Qwen25,
        Family::Qwen3,
        Family::R1DistillQwen,
        Family::R1DistillLlama,
        Family::Llama31,
        Family::Swallow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Qwen25 => "qwen2.5",
            Family::Qwen3 => "qwen3",
            Family::R1DistillQwen => "r1-distill-qwen",
            Family::R1DistillLlama => "r1-distill-llama",
            Family::Llama31 => "llama3.1",
            Family::Swallow => "swallow",
        }
    }

    /// The architecture every model of the family uses.
    pub fn arch(self) -> Arch {
        match self {
            Family::Qwen25 | Family::R1DistillQwen => Arch::Qwen2,
            Family::Qwen3 => Arch::Qwen3,
            Family::R1DistillLlama | Family::Llama31 | Family::Swallow => Arch::Llama,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A storage precision: a float dtype or a GGUF quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Precision {
    #[serde(rename = "f32")]
    F32,
    #[serde(rename = "bf16")]
    Bf16,
    #[serde(rename = "f16")]
    F16,
    #[serde(rename = "Q8_0")]
    Q8_0,
    #[serde(rename = "Q4_0")]
    Q4_0,
    #[serde(rename = "Q4_K_M")]
    Q4KM,
    #[serde(rename = "Q5_K_M")]
    Q5KM,
    #[serde(rename = "Q6_K")]
    Q6K,
}

impl Precision {
    pub const ALL: [Precision; 8] = [
        Precision::F32,
        Precision::Bf16,
        Precision::F16,
        Precision::Q8_0,
        Precision::Q4_0,
        Precision::Q4KM,
        Precision::Q5KM,
        Precision::Q6K,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
            Precision::Q8_0 => "Q8_0",
            Precision::Q4_0 => "Q4_0",
            Precision::Q4KM => "Q4_K_M",
            Precision::Q5KM => "Q5_K_M",
            Precision::Q6K => "Q6_K",
        }
    }

    pub fn is_quantized(self) -> bool {
        !matches!(self, Precision::F32 | Precision::Bf16 | Precision::F16)
    }

    /// Storage per weight. Exact for the float types and the block formats (Q8_0: 34 bytes per 32
    /// weights; Q4_0: 18 per 32; Q6_K: 210 per 256). The `_K_M` mixes keep some tensors at a higher
    /// precision, so their figure is an average over typical llama.cpp files: Q4_K_M ≈ 4.85 and
    /// Q5_K_M ≈ 5.69 bits per weight — approximations, good to a few percent.
    pub fn bits_per_weight(self) -> f64 {
        match self {
            Precision::F32 => 32.0,
            Precision::Bf16 | Precision::F16 => 16.0,
            Precision::Q8_0 => 34.0 * 8.0 / 32.0,
            Precision::Q4_0 => 18.0 * 8.0 / 32.0,
            Precision::Q4KM => 4.85,
            Precision::Q5KM => 5.69,
            Precision::Q6K => 210.0 * 8.0 / 256.0,
        }
    }

    /// Bytes per element of the KV cache when running at this precision. Float models keep the
    /// cache in their dtype; candle's quantized (GGUF) models compute in f32, so their cache is f32.
    pub fn kv_bytes_per_element(self) -> u64 {
        match self {
            Precision::Bf16 | Precision::F16 => 2,
            _ => 4,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = Error;
    /// Case-insensitive; also accepts config.json's `float32`, `bfloat16`, `float16`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let p = match lower.as_str() {
            "f32" | "float32" | "fp32" => Precision::F32,
            "bf16" | "bfloat16" => Precision::Bf16,
            "f16" | "float16" | "fp16" => Precision::F16,
            "q8_0" => Precision::Q8_0,
            "q4_0" => Precision::Q4_0,
            "q4_k_m" => Precision::Q4KM,
            "q5_k_m" => Precision::Q5KM,
            "q6_k" => Precision::Q6K,
            _ => {
                let known: Vec<&str> = Precision::ALL.iter().map(|p| p.as_str()).collect();
                return Err(Error::Other(format!(
                    "unknown dtype or quantization `{s}`; use one of {}",
                    known.join(", ")
                )));
            }
        };
        Ok(p)
    }
}

/// A GGUF build of a registry model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GgufBuild {
    pub quant: Precision,
    pub repo: String,
    pub file: String,
}

impl GgufBuild {
    pub fn model_ref(&self) -> ModelRef {
        ModelRef::HubGguf {
            repo: self.repo.clone(),
            revision: None,
            file: self.file.clone(),
        }
    }
}

mod arch_hf_name {
    use super::Arch;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(a: &Arch, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.hf_name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        let name = String::deserialize(d)?;
        Arch::from_hf_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "arch `{name}` is not supported; use one of {}",
                Arch::SUPPORTED
            ))
        })
    }
}

/// One registry model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The short name, lower case (`qwen2.5-7b`).
    pub name: String,
    /// The safetensors repo on the hub.
    pub repo: String,
    pub family: Family,
    /// The config.json class name (`Qwen2ForCausalLM`, …).
    #[serde(with = "arch_hf_name")]
    pub arch: Arch,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    /// Only where it differs from hidden_size / num_attention_heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub gguf: Vec<GgufBuild>,
}

impl Entry {
    /// The model's exact shape, as its config.json would give it. Token ids are not part of the
    /// registry (they come from the real config or tokenizer), so they are left empty.
    pub fn config(&self) -> ModelConfig {
        ModelConfig {
            arch: self.arch,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self
                .head_dim
                .unwrap_or(self.hidden_size / self.num_attention_heads.max(1)),
            max_position_embeddings: self.max_position_embeddings,
            rope_theta: self.rope_theta,
            rope_scaling: self.rope_scaling.clone(),
            rms_norm_eps: self.rms_norm_eps,
            tie_word_embeddings: self.tie_word_embeddings,
            attention_bias: self.arch == Arch::Qwen2,
            qk_norm: self.arch == Arch::Qwen3,
            torch_dtype: Some("bfloat16".to_string()),
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }

    pub fn param_count(&self) -> u64 {
        self.config().param_count()
    }

    /// The GGUF build for a quantization, if the registry knows one.
    pub fn gguf_build(&self, quant: Precision) -> Option<&GgufBuild> {
        self.gguf.iter().find(|g| g.quant == quant)
    }

    pub fn model_ref(&self) -> ModelRef {
        ModelRef::Hub {
            repo: self.repo.clone(),
            revision: None,
        }
    }

    /// Check the entry; messages name the field.
    fn check(&self) -> std::result::Result<(), String> {
        let n = &self.name;
        if n.is_empty()
            || !n.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')
            })
        {
            return Err(format!(
                "field `name`: `{n}` must be non-empty lower-case letters, digits, `-`, `.` or `_`"
            ));
        }
        model_ref::check_repo_id(&self.repo).map_err(|m| format!("field `repo`: {m}"))?;
        if self.family.arch() != self.arch {
            return Err(format!(
                "field `arch`: {} models are {}, not {}",
                self.family,
                self.family.arch().hf_name(),
                self.arch.hf_name()
            ));
        }
        if self.num_attention_heads == 0
            || self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return Err(format!(
                "field `num_key_value_heads`: {} must be at least 1 and divide num_attention_heads = {}",
                self.num_key_value_heads, self.num_attention_heads
            ));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(
                "field `head_dim` is needed: hidden_size is not a multiple of num_attention_heads"
                    .into(),
            );
        }
        if self.rms_norm_eps.is_nan() || self.rms_norm_eps <= 0.0 {
            return Err(format!(
                "field `rms_norm_eps` must be positive, found {}",
                self.rms_norm_eps
            ));
        }
        self.config().check()?;
        let mut seen = Vec::new();
        for (i, g) in self.gguf.iter().enumerate() {
            if !g.quant.is_quantized() {
                return Err(format!(
                    "field `gguf[{i}].quant`: `{}` is not a GGUF quantization",
                    g.quant
                ));
            }
            if seen.contains(&g.quant) {
                return Err(format!(
                    "field `gguf[{i}].quant`: `{}` is listed twice",
                    g.quant
                ));
            }
            seen.push(g.quant);
            model_ref::check_repo_id(&g.repo)
                .map_err(|m| format!("field `gguf[{i}].repo`: {m}"))?;
            if !g.file.to_ascii_lowercase().ends_with(".gguf") {
                return Err(format!(
                    "field `gguf[{i}].file`: `{}` does not end in .gguf",
                    g.file
                ));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    version: u32,
    #[serde(default)]
    models: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub version: u32,
    pub models: Vec<Entry>,
    /// Where the data came from: `builtin` or a file path.
    pub origin: String,
    hash: String,
}

impl Registry {
    /// The registry compiled into the binary (parsed once; its validity is a unit test).
    pub fn builtin() -> &'static Registry {
        static BUILTIN: OnceLock<Registry> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Registry::from_toml(BUILTIN_TOML, "builtin models.toml")
                .unwrap_or_else(|e| panic!("the built-in models.toml is invalid: {e}"))
        })
    }

    /// Read a registry file.
    pub fn from_file(path: &Path) -> Result<Registry> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read the model registry: {e}")))?;
        Registry::from_toml(&text, &path.display().to_string())
    }

    /// The registry at `path` if given, else the built-in one.
    pub fn load(path: Option<&Path>) -> Result<Registry> {
        match path {
            Some(p) => Registry::from_file(p),
            None => Ok(Registry::builtin().clone()),
        }
    }

    /// Parse and check registry text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Registry> {
        let file: RegistryFile = toml::from_str(text).map_err(|e| {
            Error::file(
                PathBuf::from(origin),
                format!("not a valid model registry: {e}"),
            )
        })?;
        if file.version != SUPPORTED_VERSION {
            return Err(Error::file(
                PathBuf::from(origin),
                format!(
                    "field `version`: {} is not supported; this hakaru reads version {SUPPORTED_VERSION} registries",
                    file.version
                ),
            ));
        }
        let mut names: Vec<String> = Vec::new();
        for e in &file.models {
            e.check().map_err(|m| {
                Error::file(PathBuf::from(origin), format!("model `{}`: {m}", e.name))
            })?;
            let lower = e.name.to_ascii_lowercase();
            if names.contains(&lower) {
                return Err(Error::file(
                    PathBuf::from(origin),
                    format!("model `{}`: field `name`: the name is used twice", e.name),
                ));
            }
            names.push(lower);
        }
        Ok(Registry {
            version: file.version,
            models: file.models,
            origin: origin.to_string(),
            hash: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// The sha256 of the registry text, lower-case hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn entries(&self) -> &[Entry] {
        &self.models
    }

    /// Look an entry up by short name or by repo id, ignoring case.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        let key = key.trim();
        self.models
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(key))
            .or_else(|| {
                self.models
                    .iter()
                    .find(|e| e.repo.eq_ignore_ascii_case(key))
            })
    }

    /// Parse a model reference, also accepting registry names: `name[@revision]` is the entry's
    /// safetensors repo, `name[@revision]:QUANT` (e.g. `qwen2.5-7b:Q4_K_M`) its GGUF build (the
    /// revision then applies to the GGUF repo). A repo id known to the registry is rewritten to
    /// the registry's spelling. Existing local paths still win; everything else is
    /// [`ModelRef::parse`].
    pub fn parse_ref(&self, s: &str) -> Result<ModelRef> {
        let t = s.trim();
        if t.starts_with("synthetic:") || t.starts_with(['.', '/', '~']) || Path::new(t).exists() {
            return ModelRef::parse(t);
        }
        let (head, quant) = match t.split_once(':') {
            Some((h, q)) => (h, Some(q)),
            None => (t, None),
        };
        let (key, revision) = match head.split_once('@') {
            Some((k, r)) => (k, Some(r)),
            None => (head, None),
        };
        let by_name = self
            .models
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(key));
        let by_repo = self
            .models
            .iter()
            .find(|e| e.repo.eq_ignore_ascii_case(key));
        match (by_name, by_repo, quant) {
            (Some(e), _, Some(q)) => {
                let p: Precision = q
                    .parse()
                    .map_err(|err: Error| Error::reference(t, err.to_string()))?;
                let g = e.gguf_build(p).ok_or_else(|| {
                    let known: Vec<&str> = e.gguf.iter().map(|g| g.quant.as_str()).collect();
                    Error::reference(
                        t,
                        format!(
                            "the registry has no {p} build of {}; known: {} (or name a file: `org/name:FILE.gguf`)",
                            e.name,
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        ),
                    )
                })?;
                // Validate the revision with the ordinary parser.
                let spelled = match revision {
                    Some(r) => format!("{}@{r}:{}", g.repo, g.file),
                    None => format!("{}:{}", g.repo, g.file),
                };
                ModelRef::parse(&spelled).map_err(|_| {
                    Error::reference(t, format!("invalid revision `{}`", revision.unwrap_or("")))
                })
            }
            (Some(e), _, None) | (None, Some(e), None) => {
                let spelled = match revision {
                    Some(r) => format!("{}@{r}", e.repo),
                    None => e.repo.clone(),
                };
                ModelRef::parse(&spelled).map_err(|err| match err {
                    Error::Ref { msg, .. } => Error::reference(t, msg),
                    other => other,
                })
            }
            _ => ModelRef::parse(t),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory fit

/// Context length the fit rule reserves a KV cache for.
pub const FIT_CONTEXT_TOKENS: usize = 4096;
/// Headroom on top of weights + KV cache, in percent (activations, allocator slack, the runtime).
pub const FIT_HEADROOM_PERCENT: u64 = 10;

/// Bytes the weights of `cfg` take at `dtype_or_quant` (`bf16`, `Q8_0`, `Q4_K_M`, …; see
/// [`Precision::bits_per_weight`] for which figures are exact and which approximate).
pub fn weight_bytes(cfg: &ModelConfig, dtype_or_quant: &str) -> Result<u64> {
    let p: Precision = dtype_or_quant.parse()?;
    Ok(weight_bytes_at(cfg, p))
}

pub fn weight_bytes_at(cfg: &ModelConfig, p: Precision) -> u64 {
    let n = cfg.param_count();
    match p {
        Precision::F32 => n * 4,
        Precision::Bf16 | Precision::F16 => n * 2,
        Precision::Q8_0 => n.div_ceil(32) * 34,
        Precision::Q4_0 => n.div_ceil(32) * 18,
        Precision::Q6K => n.div_ceil(256) * 210,
        Precision::Q4KM | Precision::Q5KM => (n as f64 * p.bits_per_weight() / 8.0).ceil() as u64,
    }
}

/// Bytes of the KV cache for `tokens` positions: keys and values for every layer.
pub fn kv_cache_bytes(cfg: &ModelConfig, p: Precision, tokens: usize) -> u64 {
    2 * cfg.num_hidden_layers as u64
        * cfg.num_key_value_heads as u64
        * cfg.head_dim as u64
        * tokens as u64
        * p.kv_bytes_per_element()
}

/// Bytes of the repacked weight copies candle's CPU prefill keeps on this CPU for a model at `p`
/// ([`quant::prefill_copy_bytes`] of each projection and of the output head). Counted for the
/// precision's main format: a Q4_K_M file's Q6_K tensors have somewhat larger copies and its
/// Q5_0 fallbacks (widths not a multiple of 256) none. Only what runs on the CPU.
pub fn prefill_copy_bytes(cfg: &ModelConfig, p: Precision) -> u64 {
    let kind = match p {
        Precision::Q8_0 => QKind::Q8_0,
        Precision::Q4_0 => QKind::Q4_0,
        Precision::Q4KM => QKind::Q4K,
        Precision::Q6K => QKind::Q6K,
        Precision::F32 | Precision::Bf16 | Precision::F16 | Precision::Q5KM => return 0,
    };
    let layer: u64 = cfg
        .layer_projections()
        .iter()
        .map(|&(rows, cols)| quant::prefill_copy_bytes(kind, rows, cols))
        .sum();
    layer * cfg.num_hidden_layers as u64
        + quant::prefill_copy_bytes(kind, cfg.vocab_size, cfg.hidden_size)
}

/// What running a model at a precision needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    pub precision: Precision,
    pub weights: u64,
    pub kv_cache: u64,
    /// Repacked weight copies candle's CPU prefill keeps ([`prefill_copy_bytes`]).
    #[serde(default)]
    pub prefill_copy: u64,
    pub context_tokens: usize,
    /// `(weights + kv_cache + prefill_copy) * (1 + FIT_HEADROOM_PERCENT / 100)`.
    pub needed: u64,
}

impl MemoryEstimate {
    /// Weights, KV cache and prefill copies, before headroom.
    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache + self.prefill_copy
    }
}

/// Weights + KV cache for [`FIT_CONTEXT_TOKENS`] + the CPU prefill's weight copies +
/// [`FIT_HEADROOM_PERCENT`].
pub fn estimate(cfg: &ModelConfig, p: Precision) -> MemoryEstimate {
    let weights = weight_bytes_at(cfg, p);
    let kv_cache = kv_cache_bytes(cfg, p, FIT_CONTEXT_TOKENS);
    let prefill_copy = prefill_copy_bytes(cfg, p);
    MemoryEstimate {
        precision: p,
        weights,
        kv_cache,
        prefill_copy,
        context_tokens: FIT_CONTEXT_TOKENS,
        needed: with_headroom(weights + kv_cache + prefill_copy),
    }
}

fn with_headroom(bytes: u64) -> u64 {
    bytes + (bytes * FIT_HEADROOM_PERCENT).div_ceil(100)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fit", rename_all = "snake_case")]
pub enum Fit {
    Fits { needed: u64, available: u64 },
    TooBig { needed: u64, available: u64 },
}

impl Fit {
    pub fn fits(&self) -> bool {
        matches!(self, Fit::Fits { .. })
    }
}

/// The fit rule: `bytes` (weights + KV cache + prefill copies) plus [`FIT_HEADROOM_PERCENT`]
/// must not exceed `available`.
pub fn fits(bytes: u64, available: u64) -> Fit {
    let needed = with_headroom(bytes);
    if needed <= available {
        Fit::Fits { needed, available }
    } else {
        Fit::TooBig { needed, available }
    }
}

/// Memory this machine can give a model now: sysinfo's available memory, capped by the cgroup's
/// free memory inside a container.
pub fn available_memory() -> u64 {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let avail = sys.available_memory();
    match sys.cgroup_limits() {
        Some(cg) if cg.free_memory > 0 => avail.min(cg.free_memory),
        _ => avail,
    }
}

const GIB: f64 = (1u64 << 30) as f64;

fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / GIB)
}

/// Refuse, before loading, a model that cannot fit: `label` names it in the message.
pub fn check_fits(
    label: &str,
    cfg: &ModelConfig,
    p: Precision,
    available: u64,
) -> Result<MemoryEstimate> {
    let est = estimate(cfg, p);
    match fits(est.total(), available) {
        Fit::Fits { .. } => Ok(est),
        Fit::TooBig { needed, available } => Err(Error::Resource(format!(
            "{label} at {p} needs {} GiB (weights {} + KV cache {} for {} tokens{}, plus {}% headroom), this machine has \
             {} GiB available; {}try a smaller model or a quantization such as Q4_K_M",
            gib(needed),
            gib(est.weights),
            gib(est.kv_cache),
            est.context_tokens,
            if est.prefill_copy > 0 {
                format!(" + {} of repacked weights for prompt processing", gib(est.prefill_copy))
            } else {
                String::new()
            },
            FIT_HEADROOM_PERCENT,
            gib(available),
            match fits(est.weights + est.kv_cache, available) {
                Fit::Fits { needed, .. } if est.prefill_copy > 0 => format!(
                    "set HAKARU_QUANT_KERNELS=hakaru to run prompt processing on hakaru's own kernels, \
                     which keep no copies ({} GiB; prompts are slower), or ",
                    gib(needed)
                ),
                _ => String::new(),
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> &'static Registry {
        Registry::builtin()
    }

    #[test]
    fn builtin_registry_is_valid_and_complete() {
        let r = reg();
        assert_eq!(r.version, SUPPORTED_VERSION);
        let names: Vec<&str> = r.entries().iter().map(|e| e.name.as_str()).collect();
        let expected = [
            "qwen2.5-0.5b",
            "qwen2.5-1.5b",
            "qwen2.5-3b",
            "qwen2.5-7b",
            "qwen2.5-14b",
            "qwen2.5-32b",
            "qwen3-0.6b",
            "qwen3-1.7b",
            "qwen3-4b",
            "qwen3-8b",
            "qwen3-14b",
            "qwen3-32b",
            "r1-distill-qwen-1.5b",
            "r1-distill-qwen-7b",
            "r1-distill-qwen-14b",
            "r1-distill-qwen-32b",
            "r1-distill-llama-8b",
            "llama3.1-8b",
            "swallow-8b",
        ];
        assert_eq!(names, expected);
        for f in Family::ALL {
            assert!(r.entries().iter().any(|e| e.family == f), "no {f} model");
        }
        for e in r.entries() {
            for q in [Precision::Q8_0, Precision::Q4KM] {
                assert!(e.gguf_build(q).is_some(), "{} has no {q} build", e.name);
            }
        }
        assert_eq!(
            r.hash(),
            hex::encode(Sha256::digest(BUILTIN_TOML.as_bytes()))
        );
        assert_eq!(r.hash().len(), 64);
    }

    /// Parameter counts against the totals the model cards publish.
    #[test]
    fn param_counts_match_published_totals() {
        for (name, published) in [
            ("qwen2.5-0.5b", 494_032_768u64),
            ("qwen2.5-1.5b", 1_543_714_304),
            ("qwen2.5-3b", 3_085_938_688),
            ("qwen2.5-7b", 7_615_616_512),
            ("qwen2.5-14b", 14_770_033_664),
            ("qwen2.5-32b", 32_763_876_352),
            ("qwen3-4b", 4_022_468_096),
            ("qwen3-8b", 8_190_735_360),
            ("qwen3-14b", 14_768_307_200),
            ("qwen3-32b", 32_762_123_264),
            ("r1-distill-qwen-1.5b", 1_777_088_000),
            ("llama3.1-8b", 8_030_261_248),
            ("r1-distill-llama-8b", 8_030_261_248),
            ("swallow-8b", 8_030_261_248),
        ] {
            assert_eq!(reg().get(name).unwrap().param_count(), published, "{name}");
        }
    }

    #[test]
    fn config_carries_the_full_shape() {
        let c = reg().get("qwen3-0.6b").unwrap().config();
        assert_eq!(
            (c.arch, c.head_dim, c.num_attention_heads, c.hidden_size),
            (Arch::Qwen3, 128, 16, 1024)
        );
        assert!(c.qk_norm && !c.attention_bias && c.tie_word_embeddings);
        let c = reg().get("qwen2.5-7b").unwrap().config();
        assert_eq!((c.head_dim, c.vocab_size, c.rope_theta), (128, 152064, 1e6));
        assert!(c.attention_bias && !c.tie_word_embeddings);
        let c = reg().get("llama3.1-8b").unwrap().config();
        assert_eq!(
            c.rope_scaling,
            Some(RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192
            })
        );
        assert_eq!(
            (c.rope_theta, c.rms_norm_eps, c.max_position_embeddings),
            (500000.0, 1e-5, 131072)
        );
        assert!(c.check().is_ok());
    }

    #[test]
    fn lookup_by_name_or_repo_ignoring_case() {
        let r = reg();
        for key in [
            "qwen2.5-7b",
            "Qwen2.5-7B",
            " QWEN2.5-7B ",
            "Qwen/Qwen2.5-7B-Instruct",
            "qwen/qwen2.5-7b-instruct",
        ] {
            assert_eq!(
                r.get(key).map(|e| e.name.as_str()),
                Some("qwen2.5-7b"),
                "{key}"
            );
        }
        assert_eq!(
            r.get("swallow-8b").unwrap().repo,
            "tokyotech-llm/Llama-3.1-Swallow-8B-Instruct-v0.3"
        );
        assert!(r.get("qwen2.5-8b").is_none());
    }

    #[test]
    fn parse_ref_accepts_registry_names() {
        let r = reg();
        let hub = |repo: &str, rev: Option<&str>| ModelRef::Hub {
            repo: repo.into(),
            revision: rev.map(Into::into),
        };
        assert_eq!(
            r.parse_ref("qwen2.5-0.5b").unwrap(),
            hub("Qwen/Qwen2.5-0.5B-Instruct", None)
        );
        assert_eq!(
            r.parse_ref("Qwen2.5-0.5B@dev").unwrap(),
            hub("Qwen/Qwen2.5-0.5B-Instruct", Some("dev"))
        );
        assert_eq!(
            r.parse_ref("qwen/qwen2.5-0.5b-instruct").unwrap(),
            hub("Qwen/Qwen2.5-0.5B-Instruct", None)
        );
        assert_eq!(
            r.parse_ref("qwen2.5-0.5b:q4_k_m").unwrap(),
            ModelRef::HubGguf {
                repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF".into(),
                revision: None,
                file: "qwen2.5-0.5b-instruct-q4_k_m.gguf".into()
            }
        );
        // Not a registry name: the ordinary syntax.
        assert_eq!(
            r.parse_ref("some/repo@v2").unwrap(),
            hub("some/repo", Some("v2"))
        );
        assert_eq!(
            r.parse_ref("synthetic:qwen3-8b").unwrap(),
            ModelRef::Synthetic("qwen3-8b".into())
        );
        let e = r.parse_ref("qwen2.5-0.5b:Q6_K").unwrap_err().to_string();
        assert!(
            e.contains("no Q6_K build") && e.contains("Q8_0, Q4_K_M"),
            "{e}"
        );
        let e = r.parse_ref("qwen2.5-0.5b:Q3").unwrap_err().to_string();
        assert!(e.contains("unknown dtype or quantization `Q3`"), "{e}");
        let e = r.parse_ref("qwen2.5-0.5b@").unwrap_err().to_string();
        assert!(e.contains("`@` must be followed"), "{e}");
    }

    #[test]
    fn registry_errors_name_model_and_field() {
        let base = BUILTIN_TOML;
        let check = |text: &str, needles: &[&str]| {
            let e = Registry::from_toml(text, "custom.toml")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("custom.toml: "), "{e}");
            for n in needles {
                assert!(e.contains(n), "`{e}` lacks `{n}`");
            }
        };
        check(
            &base.replacen("version = 1", "version = 2", 1),
            &["field `version`", "2"],
        );
        check(
            &base.replacen("hidden_size = 896", "hidden_size = \"x\"", 1),
            &["hidden_size"],
        );
        check(
            &base.replacen("family = \"qwen2.5\"", "family = \"qwen9\"", 1),
            &["qwen9"],
        );
        check(
            &base.replacen(
                "arch = \"Qwen2ForCausalLM\"",
                "arch = \"Qwen3ForCausalLM\"",
                1,
            ),
            &["model `qwen2.5-0.5b`", "field `arch`"],
        );
        check(
            &base.replacen("arch = \"Qwen2ForCausalLM\"", "arch = \"GPT2\"", 1),
            &["GPT2", "not supported"],
        );
        check(
            &base.replacen("num_key_value_heads = 2", "num_key_value_heads = 3", 1),
            &["model `qwen2.5-0.5b`", "num_key_value_heads"],
        );
        check(
            &base.replacen("name = \"qwen2.5-1.5b\"", "name = \"Qwen2.5-0.5B\"", 1),
            &["field `name`"],
        );
        check(
            &base.replacen("name = \"qwen2.5-1.5b\"", "name = \"qwen2.5-0.5b\"", 1),
            &["used twice"],
        );
        check(
            &base.replacen("quant = \"Q4_K_M\"", "quant = \"bf16\"", 1),
            &["gguf[1].quant", "not a GGUF quantization"],
        );
        check(
            &base.replacen("-q8_0.gguf\"", "-q8_0.bin\"", 1),
            &["gguf[0].file", ".gguf"],
        );
        check(
            &base.replacen(
                "repo = \"Qwen/Qwen2.5-0.5B-Instruct\"",
                "repo = \"Qwen2.5\"",
                1,
            ),
            &["field `repo`"],
        );
        check(
            &base.replacen(
                "tie_word_embeddings = true",
                "tie_word_embeddings = true\ncolour = 1",
                1,
            ),
            &["colour"],
        );
        // A valid custom file loads, with its own hash.
        let custom = Registry::from_toml("version = 1\n", "custom.toml").unwrap();
        assert!(custom.entries().is_empty());
        assert_ne!(custom.hash(), reg().hash());
    }

    #[test]
    fn registry_from_file_names_the_path() {
        let e = Registry::from_file(Path::new("/no/such/models.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/no/such/models.toml") && e.contains("cannot read"),
            "{e}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.toml");
        std::fs::write(&p, BUILTIN_TOML).unwrap();
        let r = Registry::load(Some(&p)).unwrap();
        assert_eq!(r.hash(), reg().hash());
        assert_eq!(r.origin, p.display().to_string());
    }

    #[test]
    fn weight_bytes_table() {
        let c = reg().get("qwen2.5-7b").unwrap().config();
        let n = 7_615_616_512u64;
        for (p, expected) in [
            ("f32", n * 4),
            ("bf16", n * 2),
            ("BFloat16", n * 2),
            ("f16", n * 2),
            ("Q8_0", n / 32 * 34),
            ("q4_0", n / 32 * 18),
            ("Q6_K", n / 256 * 210),
            ("Q4_K_M", (n as f64 * 4.85 / 8.0).ceil() as u64),
            ("Q5_K_M", (n as f64 * 5.69 / 8.0).ceil() as u64),
        ] {
            assert_eq!(weight_bytes(&c, p).unwrap(), expected, "{p}");
        }
        // Published Q4_K_M file of Qwen2.5-7B-Instruct is ~4.68 GB; the estimate is within 3%.
        let q4 = weight_bytes(&c, "Q4_K_M").unwrap() as f64;
        assert!((q4 / 4.68e9 - 1.0).abs() < 0.03, "{q4}");
        let e = weight_bytes(&c, "int3").unwrap_err().to_string();
        assert!(e.contains("`int3`") && e.contains("Q4_K_M"), "{e}");
    }

    /// The CPU prefill's repacked copies: on x86 CPUs with hakaru's kernels, every Q4_K
    /// projection whose input width is a multiple of 256 and output count of 16 (0.75 bytes per
    /// value, 2 where candle's AMX prefill keeps a second copy); none for the 896-wide
    /// projections of Qwen2.5-0.5B, none for unquantized weights.
    #[test]
    fn prefill_copies_count_candles_repacked_projections() {
        let small = reg().get("qwen2.5-0.5b").unwrap().config();
        let big = reg().get("qwen2.5-7b").unwrap().config();
        assert_eq!(prefill_copy_bytes(&big, Precision::Bf16), 0);
        assert_eq!(prefill_copy_bytes(&big, Precision::Q4_0), 0);
        assert_eq!(prefill_copy_bytes(&big, Precision::Q5KM), 0);
        if !quant::kernels_available() {
            eprintln!("this CPU runs candle's kernels only: no copies are counted");
            assert_eq!(prefill_copy_bytes(&big, Precision::Q4KM), 0);
            return;
        }
        // Bytes per value of the copies: the AVX-512/AVX2 tiles', and the AMX tiles' too where
        // candle runs long Q4_K prefills on AMX.
        let copies = |values: u64| match quant::candle_amx_q4k() {
            true => values * 3 / 4 + values * 5 / 4,
            false => values * 3 / 4,
        };
        // Only ffn_down (896 outputs × 4864 inputs) of each of the 24 layers.
        assert_eq!(
            prefill_copy_bytes(&small, Precision::Q4KM),
            copies(24 * 896 * 4864)
        );
        // Every projection and the (untied) output head of Qwen2.5-7B.
        let (h, q, kv, i, v) = (3584u64, 3584u64, 512u64, 18944u64, 152064u64);
        let layer = h * q + 2 * h * kv + q * h + 3 * h * i;
        assert_eq!(
            prefill_copy_bytes(&big, Precision::Q4KM),
            copies(28 * layer + v * h)
        );
        let est = estimate(&big, Precision::Q4KM);
        assert_eq!(est.prefill_copy, prefill_copy_bytes(&big, Precision::Q4KM));
        assert_eq!(est.needed, est.total() + est.total().div_ceil(10));
        assert!(est.needed > (est.weights + est.kv_cache) * 2);
    }

    #[test]
    fn kv_cache_and_fit_rule() {
        let c = reg().get("llama3.1-8b").unwrap().config();
        // 2 * 32 layers * 8 kv heads * 128 * 4096 tokens * 2 bytes = 512 MiB.
        assert_eq!(kv_cache_bytes(&c, Precision::Bf16, 4096), 512 << 20);
        assert_eq!(kv_cache_bytes(&c, Precision::Q4KM, 4096), 1024 << 20);
        let est = estimate(&c, Precision::Bf16);
        assert_eq!(
            est.needed,
            (est.weights + est.kv_cache) + (est.weights + est.kv_cache).div_ceil(10)
        );
        assert_eq!(
            fits(1000, 1100),
            Fit::Fits {
                needed: 1100,
                available: 1100
            }
        );
        assert_eq!(
            fits(1000, 1099),
            Fit::TooBig {
                needed: 1100,
                available: 1099
            }
        );
        assert!(fits(0, 0).fits());
    }

    #[test]
    fn check_fits_refuses_with_numbers() {
        let c = reg().get("qwen2.5-32b").unwrap().config();
        let e = check_fits("qwen2.5-32b", &c, Precision::Bf16, 16 << 30).unwrap_err();
        assert!(matches!(e, Error::Resource(_)));
        let e = e.to_string();
        for n in [
            "qwen2.5-32b at bf16 needs",
            "GiB (weights 61.0 + KV cache 1.0",
            "has 16.0 GiB available",
            "Q4_K_M",
        ] {
            assert!(e.contains(n), "`{e}` lacks `{n}`");
        }
        // Where only the prefill's copies do not fit, the message says how to do without them.
        let c7 = reg().get("qwen2.5-7b").unwrap().config();
        let est = estimate(&c7, Precision::Q4KM);
        if est.prefill_copy > 0 {
            let between = with_headroom(est.weights + est.kv_cache) + (1 << 20);
            assert!(between < est.needed);
            let e = check_fits("qwen2.5-7b", &c7, Precision::Q4KM, between)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("repacked weights for prompt processing")
                    && e.contains("set HAKARU_QUANT_KERNELS=hakaru"),
                "{e}"
            );
        }
        let e = check_fits("qwen2.5-7b", &c7, Precision::Q4KM, 1 << 30)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("HAKARU_QUANT_KERNELS"), "{e}");
        let ok = check_fits(
            "qwen2.5-0.5b",
            &reg().get("qwen2.5-0.5b").unwrap().config(),
            Precision::Q4KM,
            16 << 30,
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn available_memory_is_plausible() {
        let a = available_memory();
        assert!(a > 16 << 20, "{a}");
    }

    #[test]
    fn precision_names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
