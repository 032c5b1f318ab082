//! hakaru-types: the one serialized contract between hakaru's crates and its users.
//!
//! Everything a run writes (`samples.jsonl`, `run.json`) and every suite file it reads
//! (`suite.toml`, `*.jsonl` cases) has its type here. No I/O, no candle. The JSON Schema of the
//! result files is generated from these types (`schema/*.schema.json`, checked for drift by a
//! test) and `SCHEMA_VERSION` is bumped whenever their meaning changes; frozen result files of
//! every earlier version stay loadable (tests/frozen).

pub mod jsonl;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the result files' schema. Bump on any change to the types below that changes what a
/// field means or removes one; adding an optional field does not need a bump.
pub const SCHEMA_VERSION: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Suites (prompts/<suite>/suite.toml + *.jsonl)

/// What a suite asks of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuiteKind {
    /// Free generation, scored by the suite's metrics.
    Generate,
    /// Multiple choice by log-likelihood of each choice.
    Choice,
    /// Per-character perplexity of reference passages.
    Perplexity,
    /// Prefill/decode speed.
    Throughput,
}

/// How a case becomes a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateMode {
    /// Through the model's chat template.
    Chat,
    /// The input text as it is.
    Raw,
}

/// Sampling settings of a suite or a run. Temperature 0 is greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplingSpec {
    #[serde(default)]
    pub temperature: f64,
    #[serde(default = "one")]
    pub top_p: f64,
    #[serde(default)]
    pub top_k: usize,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

fn one() -> f64 {
    1.0
}
fn default_max_tokens() -> usize {
    512
}

impl Default for SamplingSpec {
    fn default() -> Self {
        SamplingSpec {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            max_tokens: default_max_tokens(),
        }
    }
}

/// `suite.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    pub id: String,
    /// Bumped when the suite's meaning changes; the content hash is recorded regardless.
    pub version: String,
    pub kind: SuiteKind,
    #[serde(default = "chat")]
    pub template: TemplateMode,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub sampling: SamplingSpec,
    /// Scorer names applied to every case (see `hakaru score --help`).
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Worked examples put before each case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub few_shot: Option<FewShotSpec>,
    /// A judge rubric (`prompts/judge/<name>.toml`) applied when the run is given `--judge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    /// Differences of this suite's rates against a matched control suite and between its
    /// languages, computed when both suites are in a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contrast: Option<ContrastSpec>,
    /// The tests of a throughput suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<ThroughputSpec>,
}

/// `[throughput]` of a throughput suite: the tests `hakaru bench` would run with the same flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThroughputSpec {
    /// Prompt sizes of the prompt-processing tests.
    #[serde(default = "default_pp")]
    pub prompt: Vec<usize>,
    /// Lengths of the generation tests.
    #[serde(default = "default_tg")]
    pub gen: Vec<usize>,
    #[serde(default = "default_depth")]
    pub depth: Vec<usize>,
    /// Prompt-then-generation tests, `[prompt, gen]` each (llama-bench's `-pg`): the prompt's
    /// forward pass and `gen` decode steps after it, timed together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pg: Vec<[usize; 2]>,
    #[serde(default = "default_reps")]
    pub repetitions: usize,
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    /// Requests at once (`hakaru bench -c`); each test runs at each. Above 1 only an endpoint
    /// runs them; a local model records a warning for those tests.
    #[serde(default = "default_concurrency")]
    pub concurrency: Vec<usize>,
}

fn default_concurrency() -> Vec<usize> {
    vec![1]
}

fn default_pp() -> Vec<usize> {
    vec![512]
}
fn default_tg() -> Vec<usize> {
    vec![128]
}
fn default_depth() -> Vec<usize> {
    vec![0]
}
fn default_reps() -> usize {
    5
}
fn default_warmup() -> usize {
    1
}

impl Default for ThroughputSpec {
    fn default() -> Self {
        ThroughputSpec {
            prompt: default_pp(),
            gen: default_tg(),
            depth: default_depth(),
            pg: Vec::new(),
            repetitions: default_reps(),
            warmup: default_warmup(),
            concurrency: default_concurrency(),
        }
    }
}

/// `[contrast]` of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContrastSpec {
    /// What the difference against the control is called (`censorship_asymmetry`).
    pub name: String,
    /// The matched control suite's id.
    pub against: String,
    /// Summary metrics compared (`refusal.non_answer`).
    pub metrics: Vec<String>,
    /// Tag prefix whose groups are compared too (`topic:`): the suite's and the control's cases
    /// with the same tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_tag_prefix: Option<String>,
    /// Also compare each pair of the suite's languages (`language_gap`).
    #[serde(default)]
    pub language_gaps: bool,
}

/// `[few_shot]` of a suite: `n` solved examples before each case, drawn from the suite's other
/// cases (or a dataset's training split), different for each case and fixed by the run's seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FewShotSpec {
    pub n: usize,
    /// Put between examples and before the case, in raw templates.
    #[serde(default = "blank_line")]
    pub separator: String,
}

fn blank_line() -> String {
    "\n\n".into()
}

fn chat() -> TemplateMode {
    TemplateMode::Chat
}

/// A chat message of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// One line of a suite's `*.jsonl` case file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// Unique within the suite.
    pub id: String,
    /// The user turn (or, for raw templates, the whole prompt). Exactly one of `input` and
    /// `messages` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    /// The reference answer (generate, perplexity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Choices (choice suites) and the index of the correct one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// BCP 47 language the case is asked in, which is the language its answer is expected in:
    /// `ja`, `zh-Hans`, `en`, … (an English instruction asking for a Japanese answer says `ja`;
    /// refusal scoring flags answers in another language than this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The same question in other languages shares a base id (`tiananmen-f1` for
    /// `tiananmen-f1.ja`, `tiananmen-f1.zh`, `tiananmen-f1.en`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Provenance

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HarnessInfo {
    pub version: String,
    pub git_sha: Option<String>,
    pub git_dirty: Option<bool>,
    /// Cargo features compiled in (`cuda`, …).
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    pub os: String,
    pub kernel: Option<String>,
    pub cpu_model: Option<String>,
    pub cpu_cores: usize,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceInfo {
    /// `cpu` or `cuda:N`.
    pub name: String,
    /// GPU model, when on a GPU.
    pub gpu: Option<String>,
    pub memory_bytes: Option<u64>,
    pub driver_version: Option<String>,
    pub cuda_version: Option<String>,
    /// CPU threads used.
    pub threads: Option<usize>,
    /// The CPU kernels the projections ran on: for quantized weights hakaru's
    /// `avx512-vnni+gfni`, `avx512-vnni` or `avx2`, or `candle`; for unquantized ones (f32,
    /// bf16, f16) the prefill kernel, hakaru's `dense-avx512` or the gemm crate's
    /// `dense-gemm`; followed by `, candle-amx` when Q4_K weights' prefill ran on candle's AMX
    /// kernel, by `, HAKARU_QUANT_KERNELS=…` when that was set and by
    /// `, HAKARU_HUGE_PAGES=off` when the weights were kept out of huge pages. Absent on a GPU
    /// and in records written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    /// As given on the command line.
    pub reference: String,
    /// `hub`, `local`, `gguf` or `synthetic`.
    pub kind: String,
    pub repo: Option<String>,
    pub requested_revision: Option<String>,
    pub commit_sha: Option<String>,
    pub files: Vec<FileInfo>,
    /// `Qwen2ForCausalLM`, …
    pub architecture: String,
    /// `f32`, `bf16`, `f16`, or a quantization such as `Q4_K_M`.
    pub weights: String,
    pub parameters: u64,
    pub tokenizer_sha256: Option<String>,
    pub chat_template_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuiteInfo {
    pub id: String,
    pub version: String,
    pub kind: SuiteKind,
    /// sha256 over suite.toml and the case files, in name order.
    pub content_hash: String,
    pub cases: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Provenance {
    pub harness: HarnessInfo,
    pub host: HostInfo,
    pub device: DeviceInfo,
    pub model: ModelInfo,
    pub sampling: SamplingSpec,
    pub seed: u64,
    pub repeats: usize,
    pub suites: Vec<SuiteInfo>,
    pub argv: Vec<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Unpinned revision, dirty tree, load from other processes while timing, …
    pub warnings: Vec<String>,
    /// `--limit`: at most this many cases per suite (the first ones, in file order).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The prompts directory the suites were loaded from (where `--resume` finds them again).
    #[serde(default)]
    pub prompts: Option<String>,
    /// The sampling each suite ran with (the run's override, else the suite's own), by suite id.
    #[serde(default)]
    pub suite_sampling: BTreeMap<String, SamplingSpec>,
    /// When the run was resumed (RFC 3339, UTC), oldest first.
    #[serde(default)]
    pub resumed_at: Vec<String>,
    /// Few-shot examples per case, by suite id (suites without examples are absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suite_few_shot: BTreeMap<String, usize>,
    /// Public datasets read from the user's files (`--dataset`): suite id → what was read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub datasets: BTreeMap<String, DatasetInfo>,
    /// The judge model and rubrics, when the run was given `--judge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeInfo>,
    /// The `[contrast]` of each suite that has one, by suite id (so that a rescore, which reads no
    /// suite files, computes the same contrasts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suite_contrasts: BTreeMap<String, ContrastSpec>,
    /// Data files that scorers embed (phrase lists), with their versions and hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scorer_data: Vec<DataFileInfo>,
}

/// A public dataset given with `--dataset NAME=PATH`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DatasetInfo {
    /// `jcommonsenseqa`, `jmmlu`.
    pub format: String,
    /// As given (absolute).
    pub path: String,
    /// The files read for the cases and for few-shot examples, with their hashes.
    pub files: Vec<FileInfo>,
}

/// A versioned data file: a judge rubric, a phrase list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DataFileInfo {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeInfo {
    pub model: ModelInfo,
    pub rubrics: Vec<DataFileInfo>,
    /// Where the judge ran (so that a resumed run reopens it the same way); absent in records
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Timings {
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub time_to_first_token_ms: f64,
}

/// One line of `samples.jsonl`: one case × repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct SampleRecord {
    pub suite: String,
    pub case_id: String,
    pub repeat: usize,
    /// sha256 of the rendered prompt text.
    pub prompt_sha256: String,
    pub output: Option<String>,
    pub reasoning: Option<String>,
    pub prompt_tokens: Option<usize>,
    pub completion_tokens: Option<usize>,
    pub finish_reason: Option<String>,
    pub timings: Option<Timings>,
    /// Scorer name → that scorer's fields.
    pub scores: BTreeMap<String, Value>,
    /// Why this case failed, when it did; the run goes on.
    pub error: Option<String>,
    /// What scorers are given besides the output, so a run can be rescored from its samples
    /// alone (`hakaru rescore`): the case's user text, reference answer and language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The case's tags and base id, for breakdowns and pairing across languages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_id: Option<String>,
    /// Ids of the worked examples put before the case (few-shot), in prompt order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shots: Vec<String>,
}

/// Aggregate of one metric over a suite's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricSummary {
    pub n: usize,
    pub mean: f64,
    /// 95% interval (Wilson for rates, bootstrap for means), when defined.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuiteSummary {
    pub suite: String,
    pub cases: usize,
    pub samples: usize,
    pub errors: usize,
    pub metrics: BTreeMap<String, MetricSummary>,
    /// The same metrics over the samples carrying each tag: tag → metric → summary.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_tag: BTreeMap<String, BTreeMap<String, MetricSummary>>,
    /// The same metrics per case language: lang → metric → summary.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_lang: BTreeMap<String, BTreeMap<String, MetricSummary>>,
    /// Per tag and language (suites with more than one language): tag → lang → metric → summary.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_tag_lang: BTreeMap<String, BTreeMap<String, BTreeMap<String, MetricSummary>>>,
}

/// A difference of one metric between two groups of samples: a suite against its matched
/// control (`censorship_asymmetry`), or one language against another (`language_gap`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Contrast {
    pub name: String,
    pub metric: String,
    /// The suite of side `a`, and of side `b` (the control; the same suite for language gaps).
    pub suite: String,
    pub against: String,
    /// The subgroup compared: `all`, `lang:ja`, `topic:tiananmen`, or for language gaps
    /// `zh-Hans-ja` style pairs written as `lang:zh-Hans vs lang:ja`.
    pub group: String,
    pub a: MetricSummary,
    pub b: MetricSummary,
    /// `a.mean - b.mean`, with a 95% interval combined from the two sides' intervals (MOVER;
    /// for two Wilson intervals this is Newcombe's hybrid score interval).
    pub difference: f64,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Complete,
    /// Finished, with at least one failed case.
    CompleteWithErrors,
    Failed,
}

/// `run.json`: summary plus provenance, rewritten atomically as the run goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    pub schema_version: u32,
    pub run_id: String,
    pub status: RunStatus,
    pub provenance: Provenance,
    pub summary: Vec<SuiteSummary>,
    /// Differences between suites and between languages (see [`ContrastSpec`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contrasts: Vec<Contrast>,
    /// Throughput suites' tests, one row per test.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughput: Vec<BenchRow>,
}

// ---------------------------------------------------------------------------------------------
// Throughput (`hakaru bench`, throughput suites)

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// How many latencies they are taken over.
    pub n: usize,
}

/// A generation test's use of memory bandwidth: every decoded token reads the weights (and the
/// KV cache at the test's depth) once, so bandwidth bounds decode speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BandwidthUse {
    /// Bytes one decoded token reads.
    pub bytes_per_token: u64,
    /// The machine's measured memory bandwidth (`hakaru bench --bandwidth`), GB/s (10⁹ bytes):
    /// the highest of `readings_gb_s` where there are readings, else the value given.
    pub ceiling_gb_s: f64,
    /// The bandwidth readings around this test, GB/s: the one before it (at start, or right
    /// after the previous generation test) and one right after its repetitions, so that a
    /// machine whose memory others share meanwhile shows in the spread. Empty where the ceiling
    /// was given (`--ceiling`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readings_gb_s: Vec<f64>,
    /// Tokens per second the ceiling allows: `ceiling / bytes_per_token`.
    pub ceiling_tokens_per_s: f64,
    /// Median tokens per second / the ceiling's.
    pub fraction: f64,
}

impl BandwidthUse {
    /// Readings further apart than this fraction of the higher mark the share as unsteady.
    pub const UNSTEADY_SPREAD: f64 = 0.10;

    /// How far apart the readings are, as a fraction of the highest (0 with fewer than two).
    pub fn spread(&self) -> f64 {
        let hi = self.readings_gb_s.iter().copied().fold(f64::NAN, f64::max);
        let lo = self.readings_gb_s.iter().copied().fold(f64::NAN, f64::min);
        if self.readings_gb_s.len() < 2 || hi.is_nan() || hi <= 0.0 {
            return 0.0;
        }
        (hi - lo) / hi
    }

    /// Whether the bandwidth moved during the test by more than [`Self::UNSTEADY_SPREAD`]:
    /// others used the machine's memory meanwhile, and the share is less certain.
    pub fn unsteady(&self) -> bool {
        self.spread() > Self::UNSTEADY_SPREAD
    }
}

/// Energy used during a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Energy {
    /// `nvml` (GPU) or `rapl` (CPU package).
    pub source: String,
    /// Over the timed repetitions.
    pub joules: f64,
    pub wh_per_million_tokens: f64,
}

/// What the test's tokens cost at an hourly price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cost {
    /// The price table entry (`h100-sxm`), or `price-per-hour` when given by hand.
    pub price_name: String,
    pub provider: Option<String>,
    pub usd_per_hour: f64,
    pub source: Option<String>,
    /// When the price was published or read (YYYY-MM-DD).
    pub date: Option<String>,
    /// At the median speed: dollars per million tokens of this test's kind (prompt tokens for pp,
    /// output tokens for tg), and tokens per dollar.
    pub usd_per_million_tokens: f64,
    pub tokens_per_usd: f64,
    /// Characters of Japanese text per token of this model's tokenizer, measured on the Japanese
    /// suites' text, and the cost of a million Japanese characters.
    pub ja_chars_per_token: Option<f64>,
    pub usd_per_million_ja_chars: Option<f64>,
    /// Hosted APIs' prices at the time (prices/apis.toml), to read the local cost against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_prices: Vec<ApiPriceAnchor>,
}

/// One hosted API's list price, as recorded with a cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiPriceAnchor {
    pub name: String,
    pub model: String,
    pub provider: String,
    pub input_per_million: f64,
    pub output_per_million: f64,
    pub date: String,
    pub source: String,
}

/// One throughput test of one model on one device: a line of `hakaru bench -o jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BenchRow {
    /// The throughput suite the test belongs to, in a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// `pp512`, `tg128`; `@d4096` is appended for a test at depth, `@c8` for 8 concurrent
    /// requests.
    pub test: String,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub depth: usize,
    /// Requests run at once (an endpoint's; 1 on this machine's engine). Each repetition's sample
    /// is then the tokens of all of them over the time from the first start to the last end.
    #[serde(default = "one_request")]
    pub concurrency: usize,
    pub warmup: usize,
    /// Tokens per second of each timed repetition, in order.
    pub samples: Vec<f64>,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 with one sample.
    pub sd: f64,
    pub median: f64,
    /// Repetitions more than 3 scaled median absolute deviations from the median (kept, flagged).
    pub outliers: Vec<usize>,
    /// pp: time to first token (the prompt's forward pass); tg: inter-token latency.
    pub ttft_ms: Option<Latency>,
    pub itl_ms: Option<Latency>,
    /// Loading the model (`hakaru bench`; absent in runs).
    pub load_seconds: Option<f64>,
    /// Peak resident memory of the process so far, and peak GPU memory, in bytes.
    pub peak_rss_bytes: Option<u64>,
    pub peak_gpu_bytes: Option<u64>,
    /// CPU used by other processes while the test ran, in percent of one core; `noisy` when it
    /// was enough to disturb the timings.
    pub other_cpu_percent: Option<f64>,
    pub noisy: bool,
    pub bandwidth: Option<BandwidthUse>,
    pub energy: Option<Energy>,
    /// Why `energy` is absent.
    pub energy_note: Option<String>,
    pub cost: Option<Cost>,
    pub harness: HarnessInfo,
    pub host: HostInfo,
    pub device: DeviceInfo,
    pub model: ModelInfo,
    pub seed: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
}

fn one_request() -> usize {
    1
}

/// The JSON Schemas of the result files, as committed under `schema/`.
pub fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "run.schema.json",
            serde_json::to_value(schemars::schema_for!(RunRecord)).unwrap(),
        ),
        (
            "bench.schema.json",
            serde_json::to_value(schemars::schema_for!(BenchRow)).unwrap(),
        ),
        (
            "sample.schema.json",
            serde_json::to_value(schemars::schema_for!(SampleRecord)).unwrap(),
        ),
        (
            "suite.schema.json",
            serde_json::to_value(schemars::schema_for!(SuiteSpec)).unwrap(),
        ),
        (
            "case.schema.json",
            serde_json::to_value(schemars::schema_for!(CaseSpec)).unwrap(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn schema_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema")
    }

    /// The committed schemas equal the generated ones. To update after changing the types:
    /// `HAKARU_WRITE_SCHEMA=1 cargo test -p hakaru-types`.
    #[test]
    fn committed_schema_matches_the_types() {
        let write = std::env::var_os("HAKARU_WRITE_SCHEMA").is_some();
        for (name, schema) in schemas() {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = schema_dir().join(name);
            if write {
                std::fs::create_dir_all(schema_dir()).unwrap();
                std::fs::write(&path, &text).unwrap();
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!(
                    "{} is missing; run HAKARU_WRITE_SCHEMA=1 cargo test -p hakaru-types",
                    path.display()
                )
            });
            assert_eq!(committed, text, "{name} drifted from the types; run HAKARU_WRITE_SCHEMA=1 cargo test -p hakaru-types and commit");
        }
    }

    #[test]
    fn bandwidth_spread_marks_unsteady_readings() {
        let bw = |readings: Vec<f64>| BandwidthUse {
            bytes_per_token: 1,
            ceiling_gb_s: 20.0,
            readings_gb_s: readings,
            ceiling_tokens_per_s: 2e10,
            fraction: 0.5,
        };
        // (20 − 17.5) / 20 = 12.5%, in either order.
        assert!((bw(vec![17.5, 20.0]).spread() - 0.125).abs() < 1e-12);
        assert!(bw(vec![20.0, 17.5]).unsteady());
        assert!(!bw(vec![19.0, 20.0]).unsteady());
        // A given ceiling has no readings; one reading has no spread.
        assert_eq!(bw(vec![]).spread(), 0.0);
        assert_eq!(bw(vec![20.0]).spread(), 0.0);
        // Files written before the field existed still load, without readings.
        let old: BandwidthUse = serde_json::from_str(
            r#"{"bytes_per_token": 1, "ceiling_gb_s": 20.0, "ceiling_tokens_per_s": 2e10, "fraction": 0.5}"#,
        )
        .unwrap();
        assert!(old.readings_gb_s.is_empty() && !old.unsteady());
    }

    #[test]
    fn case_and_suite_reject_unknown_fields() {
        let e =
            serde_json::from_str::<CaseSpec>(r#"{"id": "a", "input": "x", "refrence": "typo"}"#)
                .unwrap_err();
        assert!(e.to_string().contains("refrence"), "{e}");
        let c: CaseSpec =
            serde_json::from_str(r#"{"id": "a", "input": "x", "lang": "ja", "tags": ["t"]}"#)
                .unwrap();
        assert_eq!(c.lang.as_deref(), Some("ja"));
    }
}
