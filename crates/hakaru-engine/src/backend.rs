//! The one boundary the runner drives: a [`Backend`] renders prompts, generates, and scores text by
//! log-probability. [`CandleBackend`] implements it over an [`OpenedModel`];
//! [`crate::endpoint::EndpointBackend`] over an OpenAI-compatible server.
//!
//! Tokenization rules, fixed here so every suite kind agrees:
//! - A chat-rendered prompt already holds the BOS token the template writes, so it is encoded
//!   without special tokens (as transformers' `apply_chat_template` does); a raw prompt is encoded
//!   with the tokenizer's own special tokens.
//! - Continuations are tokenized **separately** from their context (context, then continuation,
//!   each encoded on its own and concatenated). The continuation's tokens therefore start at the
//!   boundary even where encoding the joined text would merge a token across it; the log-
//!   probability is that of the continuation's own tokenization, after the context's. This keeps
//!   the context's tokens identical for every choice (so its KV is computed once) and makes the
//!   boundary explicit: put a separating space at the start of each choice (`" A"`), not at the
//!   end of the context, if the model expects one.
//! - Perplexity scores every token of the text: when the tokenizer adds no BOS, the text is
//!   conditioned on one EOS token instead (as lm-evaluation-harness does), so the first token is
//!   scored too and per-character figures cover every character.
//! - A model without a tokenizer (a `synthetic:` shape) gets one token per UTF-8 byte (id = byte
//!   value), chat prompts rendered as their raw text, and outputs decoded from the ids below 256.
//!   The text is meaningless; such runs measure the shape's speed and memory.
//!   [`BackendInfo::notes`] says so, and the runner records it as a warning.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::generate::{self, GenerateOptions, Generation, PrefixScorer};
use crate::hub::ModelKind;
use crate::open::OpenedModel;

/// How a case becomes a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptMode {
    /// Through the model's chat template, ending with the assistant header.
    Chat,
    /// The text as it is.
    Raw,
}

/// A prompt ready for the model: its text (hashed into results) and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub mode: PromptMode,
}

/// A file of the model, for provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Everything about a backend that goes into a run's provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// As given on the command line.
    pub reference: String,
    /// `hub`, `local`, `gguf` or `synthetic`.
    pub kind: String,
    pub repo: Option<String>,
    pub requested_revision: Option<String>,
    /// The 40-hex commit, for hub models.
    pub commit_sha: Option<String>,
    /// Sorted by name.
    pub files: Vec<BackendFile>,
    /// `Qwen2ForCausalLM`, …
    pub architecture: String,
    /// `f32`, `bf16`, `f16`, or a quantization such as `Q8_0`.
    pub weights: String,
    pub parameters: u64,
    pub tokenizer_sha256: Option<String>,
    pub chat_template_sha256: Option<String>,
    /// The longest sequence the model takes (prompt plus generated tokens).
    pub max_positions: usize,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// GPU model, memory, driver and CUDA version, when on a GPU (from `nvidia-smi`).
    pub gpu: Option<GpuInfo>,
    /// Cargo features the engine was built with (`cuda`).
    pub features: Vec<String>,
    /// Caveats about results from this backend (byte-level text for a model without a tokenizer),
    /// recorded as run warnings.
    pub notes: Vec<String>,
    /// Bytes of weights one decoded token reads, and bytes of KV cache it reads per token of
    /// context (for the memory-bandwidth ceiling); 0 when not known.
    pub weight_bytes_per_token: u64,
    pub kv_bytes_per_position: u64,
    /// The CPU kernels the quantized projections run on (`avx512-vnni+gfni`, `avx2`, `candle`,
    /// …); `None` without quantized weights, on a GPU, or for a remote engine.
    pub kernels: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// `GPU-…`, as NVML and `nvidia-smi` name it (see [`crate::device::gpu_uuid`]).
    #[serde(default)]
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub memory_bytes: Option<u64>,
    pub driver_version: Option<String>,
    pub cuda_version: Option<String>,
}

/// Log-probability of one continuation after a context.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContinuationScore {
    /// Sum of the natural-log probabilities of the continuation's tokens.
    pub logprob_sum: f64,
    pub tokens: usize,
    /// Unicode scalar values in the continuation text.
    pub chars: usize,
}

/// Log-probability of a whole text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TextScore {
    pub logprob_sum: f64,
    /// Tokens scored (every token of the text).
    pub tokens: usize,
    pub chars: usize,
}

/// What the runner drives. Implementations own their model; every method may fail per call (a
/// prompt too long, a text the tokenizer rejects) without the backend becoming unusable.
pub trait Backend {
    fn describe(&self) -> BackendInfo;

    /// Render a case as a prompt. `messages` is a JSON array of `{role, content}`; `system`, when
    /// given, is put first as a system message (chat) or as a paragraph before the text (raw).
    /// Raw mode joins the messages' contents with blank lines.
    fn render_prompt(
        &self,
        messages: &Value,
        system: Option<&str>,
        mode: PromptMode,
    ) -> Result<Prompt>;

    /// Generate from a prompt. The backend's end-of-sequence ids are added to `opts.stop_ids`.
    fn generate(&mut self, prompt: &Prompt, opts: &GenerateOptions) -> Result<Generation>;

    /// Score each continuation after `context`; the context's KV is computed once.
    fn score_continuations(
        &mut self,
        context: &Prompt,
        continuations: &[String],
    ) -> Result<Vec<ContinuationScore>>;

    /// Log-probability of every token of `text` (see the module docs for the first token).
    fn perplexity(&mut self, text: &str) -> Result<TextScore>;

    /// Tokens `text` encodes to (no special tokens added).
    fn count_tokens(&self, _text: &str) -> Result<usize> {
        Err(Error::Other("this backend cannot count tokens".into()))
    }

    /// One repetition of a throughput test (see [`crate::bench`]).
    fn bench(&mut self, _test: &crate::bench::BenchTest) -> Result<crate::bench::BenchTiming> {
        Err(Error::Other(
            "this backend cannot run throughput tests".into(),
        ))
    }

    /// One repetition of a throughput test as `test.concurrency` requests at once: each
    /// request's timings, and the seconds from the first start to the last end.
    fn bench_concurrent(
        &mut self,
        _test: &crate::bench::BenchTest,
    ) -> Result<(Vec<crate::bench::BenchTiming>, f64)> {
        Err(Error::Other(
            "--concurrency: this backend runs one request at a time; concurrent requests need an endpoint".into(),
        ))
    }
}

/// A candle model on this machine.
pub struct CandleBackend {
    opened: OpenedModel,
    reference: String,
}

impl CandleBackend {
    /// `reference` is the model reference as the user gave it (recorded in provenance).
    pub fn new(opened: OpenedModel, reference: impl Into<String>) -> Self {
        CandleBackend {
            opened,
            reference: reference.into(),
        }
    }

    pub fn opened(&self) -> &OpenedModel {
        &self.opened
    }

    fn tokenizer(&self) -> Result<&crate::tokenizer::TokenizerBundle> {
        self.opened.loaded.tokenizer.as_ref().ok_or_else(|| {
            Error::reference(
                &self.reference,
                "this model has no tokenizer, so it cannot take text (synthetic models without a tokenizer only run throughput)",
            )
        })
    }

    fn encode(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        self.encode_text(&prompt.text, prompt.mode == PromptMode::Raw)
    }

    /// Tokenizer ids, or one id per UTF-8 byte when the model has no tokenizer.
    fn encode_text(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        match &self.opened.loaded.tokenizer {
            Some(t) => t.encode(text, add_special_tokens),
            None => Ok(text.bytes().map(u32::from).collect()),
        }
    }

    /// The token a text is conditioned on when it is scored from its start: BOS, else EOS (id 0
    /// for byte-level text).
    fn start_token(&self) -> Result<u32> {
        let Some(tok) = self.opened.loaded.tokenizer.as_ref() else {
            return Ok(0);
        };
        tok.bos_token_id()
            .or_else(|| tok.eos_ids().first().copied())
            .ok_or_else(|| {
                Error::reference(
                    &self.reference,
                    "the tokenizer has neither a BOS nor an EOS token to condition the first token on",
                )
            })
    }

    fn check_length(&self, n: usize, what: &str) -> Result<()> {
        let max = self.opened.config().max_position_embeddings;
        if n > max {
            return Err(Error::Resource(format!(
                "{what} is {n} tokens, more than the model's {max} positions (max_position_embeddings); shorten the case or use a model with a longer context"
            )));
        }
        Ok(())
    }
}

fn kind_name(k: ModelKind) -> &'static str {
    match k {
        ModelKind::Hub => "hub",
        ModelKind::Local => "local",
        ModelKind::Gguf => "gguf",
        ModelKind::Synthetic => "synthetic",
    }
}

/// Cargo features the engine was compiled with.
pub fn compiled_features() -> Vec<String> {
    let mut f = Vec::new();
    if cfg!(feature = "cuda") {
        f.push("cuda".to_string());
    }
    f
}

/// A GPU's name, memory, driver and CUDA version from `nvidia-smi`, asked by `uuid` where known
/// (else by CUDA's `ordinal`, which is `nvidia-smi`'s only when CUDA numbers GPUs as it does);
/// `None` when it cannot be asked (no driver tools installed).
pub fn query_gpu(ordinal: usize, uuid: Option<String>) -> Option<GpuInfo> {
    let ask = |id: &str| {
        std::process::Command::new("nvidia-smi")
            .args([
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader,nounits",
                &format!("--id={id}"),
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    // A MIG slice's UUID is not a GPU's: its GPU is then asked by number.
    let out = uuid
        .as_deref()
        .and_then(ask)
        .or_else(|| ask(&ordinal.to_string()));
    let Some(out) = out else {
        // No nvidia-smi: the UUID still lets NVML find the GPU.
        return uuid.map(|u| GpuInfo {
            uuid: Some(u),
            name: None,
            memory_bytes: None,
            driver_version: None,
            cuda_version: None,
        });
    };
    let line = String::from_utf8_lossy(&out.stdout);
    let mut parts = line
        .lines()
        .next()?
        .split(',')
        .map(|s| s.trim().to_string());
    let name = parts.next().filter(|s| !s.is_empty());
    // memory.total is in MiB with nounits.
    let memory_bytes = parts
        .next()
        .and_then(|m| m.parse::<u64>().ok())
        .map(|mib| mib * 1024 * 1024);
    let driver_version = parts.next().filter(|s| !s.is_empty());
    // The CUDA version the driver supports is only in the banner ("CUDA Version: 12.4").
    let cuda_version = std::process::Command::new("nvidia-smi")
        .output()
        .ok()
        .and_then(|o| parse_cuda_version(&String::from_utf8_lossy(&o.stdout)));
    Some(GpuInfo {
        uuid,
        name,
        memory_bytes,
        driver_version,
        cuda_version,
    })
}

fn parse_cuda_version(banner: &str) -> Option<String> {
    let rest = &banner[banner.find("CUDA Version:")? + "CUDA Version:".len()..];
    let v: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Join messages for a raw prompt: contents separated by blank lines, the system text first.
/// A case's messages as a chat: `system` first when given, a bare string as one user message.
pub(crate) fn chat_messages(messages: &Value, system: Option<&str>) -> Result<Vec<Value>> {
    let mut all = Vec::new();
    if let Some(s) = system {
        all.push(serde_json::json!({"role": "system", "content": s}));
    }
    match messages {
        Value::Array(ms) => all.extend(ms.iter().cloned()),
        Value::String(s) => all.push(serde_json::json!({"role": "user", "content": s})),
        _ => {
            return Err(Error::Other(
                "messages: expected a list of {role, content} objects or a string".into(),
            ))
        }
    }
    Ok(all)
}

pub(crate) fn raw_text(messages: &Value, system: Option<&str>) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    if let Some(s) = system {
        parts.push(s);
    }
    match messages {
        Value::String(s) => parts.push(s),
        Value::Array(ms) => {
            for (i, m) in ms.iter().enumerate() {
                let c = m.get("content").and_then(Value::as_str).ok_or_else(|| {
                    Error::Other(format!(
                        "messages[{i}]: field `content` is missing or not a string"
                    ))
                })?;
                parts.push(c);
            }
        }
        _ => {
            return Err(Error::Other(
                "messages: expected a list of {role, content} objects or a string".into(),
            ))
        }
    }
    Ok(parts.join("\n\n"))
}

impl Backend for CandleBackend {
    fn describe(&self) -> BackendInfo {
        let r = &self.opened.resolved;
        let cfg = self.opened.config();
        let tok = self.opened.loaded.tokenizer.as_ref();
        let device = self.opened.loaded.transformer.device();
        let label = crate::device::device_label(device);
        let gpu = match device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => {
                query_gpu(gpu_id, crate::device::gpu_uuid(device))
            }
            _ => None,
        };
        BackendInfo {
            reference: self.reference.clone(),
            kind: kind_name(r.kind).to_string(),
            repo: r.repo.clone(),
            requested_revision: r.requested_revision.clone(),
            commit_sha: r.commit_sha.clone(),
            files: r
                .files
                .iter()
                .map(|f| BackendFile {
                    name: f.name.clone(),
                    size: f.size,
                    sha256: f.sha256.clone(),
                })
                .collect(),
            architecture: cfg.arch.hf_name().to_string(),
            weights: self.opened.loaded.weights.clone(),
            parameters: cfg.param_count(),
            tokenizer_sha256: tok.map(|t| t.tokenizer_sha256().to_string()),
            chat_template_sha256: tok.and_then(|t| t.chat_template_sha256().map(str::to_string)),
            max_positions: cfg.max_position_embeddings,
            device: label,
            gpu,
            features: compiled_features(),
            notes: if tok.is_none() {
                vec![format!(
                    "model `{}` has no tokenizer: text was encoded one token per UTF-8 byte and outputs are meaningless; only timings and memory describe the model",
                    self.reference
                )]
            } else {
                vec![]
            },
            weight_bytes_per_token: self.opened.loaded.transformer.weight_bytes_per_token(),
            kv_bytes_per_position: self.opened.loaded.transformer.kv_bytes_per_token(1),
            kernels: self.opened.loaded.transformer.kernels(),
        }
    }

    fn render_prompt(
        &self,
        messages: &Value,
        system: Option<&str>,
        mode: PromptMode,
    ) -> Result<Prompt> {
        let text = match mode {
            PromptMode::Raw => raw_text(messages, system)?,
            // Without a tokenizer there is no template either: byte-level text, as raw.
            PromptMode::Chat if self.opened.loaded.tokenizer.is_none() => {
                raw_text(messages, system)?
            }
            PromptMode::Chat => {
                let tok = self.tokenizer()?;
                let template = tok.chat_template().ok_or_else(|| {
                    Error::reference(
                        &self.reference,
                        "this model has no chat template; set `template = \"raw\"` in the suite's suite.toml to send cases as they are",
                    )
                })?;
                let all = chat_messages(messages, system)?;
                template.render(&Value::Array(all), &tok.render_options(true))?
            }
        };
        Ok(Prompt { text, mode })
    }

    fn generate(&mut self, prompt: &Prompt, opts: &GenerateOptions) -> Result<Generation> {
        let ids = self.encode(prompt)?;
        if ids.is_empty() {
            return Err(Error::Other(
                "the prompt is empty; give the case some `input`".into(),
            ));
        }
        self.check_length(ids.len(), "the prompt")?;
        let tok = self.opened.loaded.tokenizer.as_ref();
        let mut opts = opts.clone();
        for id in tok.map(|t| t.eos_ids()).unwrap_or_default() {
            if !opts.stop_ids.contains(&id) {
                opts.stop_ids.push(id);
            }
        }
        // Never ask for positions past the model's: cut max_tokens to what fits.
        let room = self
            .opened
            .config()
            .max_position_embeddings
            .saturating_sub(ids.len());
        opts.max_tokens = opts.max_tokens.min(room);
        let mut g = generate::generate(
            &self.opened.loaded.transformer,
            tok,
            &ids,
            &opts,
            &mut |_| {},
        )?;
        if tok.is_none() {
            let bytes: Vec<u8> = g
                .token_ids
                .iter()
                .filter_map(|&i| u8::try_from(i).ok())
                .collect();
            let (reasoning, text) = generate::split_reasoning(&String::from_utf8_lossy(&bytes));
            g.text = text;
            g.reasoning = reasoning;
        }
        Ok(g)
    }

    fn score_continuations(
        &mut self,
        context: &Prompt,
        continuations: &[String],
    ) -> Result<Vec<ContinuationScore>> {
        let mut ctx = self.encode(context)?;
        if ctx.is_empty() {
            ctx.push(self.start_token()?);
        }
        let conts: Vec<Vec<u32>> = continuations
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ids = self.encode_text(c, false)?;
                if ids.is_empty() {
                    return Err(Error::Other(format!(
                        "choices[{i}]: the continuation is empty, so it has no probability to score; give every choice some text"
                    )));
                }
                Ok(ids)
            })
            .collect::<Result<_>>()?;
        let longest = conts.iter().map(Vec::len).max().unwrap_or(0);
        self.check_length(ctx.len() + longest, "the context plus the longest choice")?;
        let mut scorer = PrefixScorer::new(&self.opened.loaded.transformer, &ctx)?;
        let mut out = Vec::with_capacity(conts.len());
        for (ids, text) in conts.iter().zip(continuations) {
            let lps = scorer.score(ids)?;
            out.push(ContinuationScore {
                logprob_sum: lps.iter().map(|&x| x as f64).sum(),
                tokens: ids.len(),
                chars: text.chars().count(),
            });
        }
        Ok(out)
    }

    fn perplexity(&mut self, text: &str) -> Result<TextScore> {
        let body = self.encode_text(text, false)?;
        if body.is_empty() {
            return Err(Error::Other(
                "the text is empty, so it has no perplexity; give the case a non-empty `reference`"
                    .into(),
            ));
        }
        let mut ids = vec![self.start_token()?];
        ids.extend_from_slice(&body);
        self.check_length(ids.len(), "the text")?;
        let lps = generate::sequence_logprobs(&self.opened.loaded.transformer, &ids)?;
        Ok(TextScore {
            logprob_sum: lps.iter().map(|&x| x as f64).sum(),
            tokens: body.len(),
            chars: text.chars().count(),
        })
    }

    fn bench(&mut self, test: &crate::bench::BenchTest) -> Result<crate::bench::BenchTiming> {
        crate::bench::run(&self.opened.loaded.transformer, test)
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        if self.opened.loaded.tokenizer.is_none() {
            return Err(Error::Other(format!(
                "model `{}` has no tokenizer",
                self.reference
            )));
        }
        Ok(self.encode_text(text, false)?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::ResolveOptions;
    use crate::load::LoadOptions;
    use std::path::Path;

    fn fixture(name: &str) -> CandleBackend {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/models")
            .join(name);
        let r = dir.to_str().unwrap().to_string();
        let opened =
            crate::open::open(&r, &ResolveOptions::default(), &LoadOptions::default()).unwrap();
        CandleBackend::new(opened, r)
    }

    #[test]
    fn describe_fills_provenance() {
        let b = fixture("tiny-qwen2");
        let d = b.describe();
        assert_eq!(d.kind, "local");
        assert_eq!(d.architecture, "Qwen2ForCausalLM");
        assert_eq!(d.weights, "f32");
        assert_eq!(d.device, "cpu");
        assert_eq!(d.max_positions, 16384);
        assert!(d.parameters > 0);
        assert!(d
            .files
            .iter()
            .any(|f| f.name == "model.safetensors" && f.sha256.len() == 64));
        assert_eq!(d.tokenizer_sha256.as_deref().map(str::len), Some(64));
        assert!(d.chat_template_sha256.is_some());
        // f32 weights: the dense prefill kernel is named.
        let k = d.kernels.expect("an f32 model on the CPU");
        let path = k.split(',').next().unwrap();
        assert!(["dense-avx512", "dense-gemm"].contains(&path), "{k}");
    }

    /// A quantized model on the CPU names the kernels its projections run on.
    #[test]
    fn describe_names_the_quantized_kernels() {
        let gguf = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/gguf/tiny-qwen2-q8_0.gguf");
        let r = gguf.to_str().unwrap().to_string();
        let opened =
            crate::open::open(&r, &ResolveOptions::default(), &LoadOptions::default()).unwrap();
        let d = CandleBackend::new(opened, r).describe();
        let k = d.kernels.expect("a Q8_0 model on the CPU");
        let path = k.split(',').next().unwrap();
        let known = ["avx512-vnni+gfni", "avx512-vnni", "avx2", "candle"];
        assert!(known.contains(&path), "{k}");
        // Where this CPU runs hakaru's kernels, the weights are on them, not on candle's.
        if crate::model::quant::kernels_available() {
            assert_ne!(path, "candle", "{k}");
        }
    }

    #[test]
    fn prompts_render_in_both_modes() {
        let b = fixture("tiny-qwen2");
        let msgs = serde_json::json!([{"role": "user", "content": "日本で一番高い山は？"}]);
        let chat = b
            .render_prompt(&msgs, Some("簡潔に"), PromptMode::Chat)
            .unwrap();
        assert!(
            chat.text
                .starts_with("<|im_start|>system\n簡潔に<|im_end|>"),
            "{}",
            chat.text
        );
        assert!(
            chat.text.ends_with("<|im_start|>assistant\n"),
            "{}",
            chat.text
        );
        let raw = b
            .render_prompt(&msgs, Some("簡潔に"), PromptMode::Raw)
            .unwrap();
        assert_eq!(raw.text, "簡潔に\n\n日本で一番高い山は？");
        let e = b
            .render_prompt(
                &serde_json::json!([{"role": "user"}]),
                None,
                PromptMode::Raw,
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("messages[0]: field `content`"),
            "{e}"
        );
    }

    #[test]
    fn continuation_scores_equal_full_recomputation() {
        let mut b = fixture("tiny-qwen2");
        let ctx = Prompt {
            text: "The capital of Japan is".into(),
            mode: PromptMode::Raw,
        };
        let conts = vec![" Tokyo".to_string(), " Kyoto and Osaka".to_string()];
        let scores = b.score_continuations(&ctx, &conts).unwrap();
        let tok = b.opened.loaded.tokenizer.as_ref().unwrap();
        let ctx_ids = tok.encode(&ctx.text, true).unwrap();
        for (s, c) in scores.iter().zip(&conts) {
            let cont_ids = tok.encode(c, false).unwrap();
            let mut all = ctx_ids.clone();
            all.extend(&cont_ids);
            let lps = generate::sequence_logprobs(&b.opened.loaded.transformer, &all).unwrap();
            let want: f64 = lps[ctx_ids.len() - 1..].iter().map(|&x| x as f64).sum();
            assert!(
                (s.logprob_sum - want).abs() < 1e-3,
                "{} vs {want}",
                s.logprob_sum
            );
            assert_eq!(s.tokens, cont_ids.len());
            assert_eq!(s.chars, c.chars().count());
            assert!(s.logprob_sum < 0.0);
        }
        let e = b.score_continuations(&ctx, &["".to_string()]).unwrap_err();
        assert!(e.to_string().contains("choices[0]"), "{e}");
    }

    #[test]
    fn perplexity_scores_every_token() {
        let mut b = fixture("tiny-qwen2");
        let t = b.perplexity("富士山は日本で一番高い山です。").unwrap();
        let tok = b.opened.loaded.tokenizer.as_ref().unwrap();
        assert_eq!(
            t.tokens,
            tok.encode("富士山は日本で一番高い山です。", false)
                .unwrap()
                .len()
        );
        assert_eq!(t.chars, 15);
        assert!(t.logprob_sum < 0.0 && t.logprob_sum.is_finite());
        assert!(b.perplexity("").is_err());
    }

    #[test]
    fn too_long_prompt_is_an_error_naming_positions() {
        let mut b = fixture("tiny-qwen2");
        let p = Prompt {
            text: "あ".repeat(40_000),
            mode: PromptMode::Raw,
        };
        let e = b
            .generate(
                &p,
                &GenerateOptions {
                    max_tokens: 4,
                    ignore_eos: false,
                    sampling: Default::default(),
                    stop_ids: vec![],
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("max_position_embeddings"), "{e}");
    }

    #[test]
    fn a_model_without_tokenizer_runs_on_bytes() {
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/models/tiny-qwen2/config.json");
        let r = format!("synthetic:{}", cfg.display());
        let opened =
            crate::open::open(&r, &ResolveOptions::default(), &LoadOptions::default()).unwrap();
        let mut b = CandleBackend::new(opened, r);
        let d = b.describe();
        assert_eq!(d.kind, "synthetic");
        assert!(d.tokenizer_sha256.is_none());
        assert!(
            d.notes[0].contains("one token per UTF-8 byte"),
            "{:?}",
            d.notes
        );
        let msgs = serde_json::json!([{"role": "user", "content": "日本"}]);
        let p = b.render_prompt(&msgs, None, PromptMode::Chat).unwrap();
        assert_eq!(p.text, "日本");
        let g = b
            .generate(
                &p,
                &GenerateOptions {
                    max_tokens: 5,
                    ignore_eos: false,
                    sampling: Default::default(),
                    stop_ids: vec![],
                },
            )
            .unwrap();
        assert_eq!(g.prompt_tokens, 6, "one token per byte");
        assert_eq!(g.token_ids.len(), 5, "no EOS without a tokenizer");
        let s = b.score_continuations(&p, &["x".to_string()]).unwrap();
        assert_eq!((s[0].tokens, s[0].chars), (1, 1));
        assert_eq!(b.perplexity("ab").unwrap().tokens, 2);
    }

    #[test]
    fn cuda_banner_parses() {
        let banner =
            "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |";
        assert_eq!(parse_cuda_version(banner).as_deref(), Some("12.4"));
        assert_eq!(parse_cuda_version("no banner"), None);
    }
}
