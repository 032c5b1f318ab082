//! hakaru-runner: drives a [`Backend`] through suites and writes the results.
//!
//! [`run`] takes a [`Plan`] (suites, limit, repeats, seed, sampling) and writes
//! `<out>/<run-id>/samples.jsonl` (one [`SampleRecord`] per case × repeat, appended and fsynced
//! as each finishes) and `run.json` (a [`RunRecord`]: provenance and per-suite summaries,
//! rewritten atomically as the run goes). [`resume`] finishes a run that was interrupted at any
//! instant, refusing when the suites, model or settings changed. [`rescore::rescore`] re-applies
//! the current scorers to a stored run without touching its samples.
//!
//! Order and determinism: cases run suite by suite (in plan order), case by case (in file
//! order), repeat by repeat. Each case's sampling seed is derived from the run's seed, the suite,
//! the case id and the repeat ([`case_seed`]), so a case's output does not depend on what ran
//! before it: a resumed run writes the same samples as an uninterrupted one, and two identical
//! runs write identical `samples.jsonl` apart from the `timings` fields.
//!
//! The runner never draws on the terminal: progress goes to a [`Reporter`].

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use hakaru_engine::backend::{Backend, Prompt, PromptMode};
use hakaru_engine::generate::{FinishReason, GenerateOptions, Sampling};
use hakaru_suites::{Suite, SuiteErrors};
use hakaru_types::{
    CaseSpec, Provenance, RunRecord, RunStatus, SampleRecord, SamplingSpec, SuiteKind,
    SuiteSummary, TemplateMode, Timings, SCHEMA_VERSION,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub mod bench;
pub mod few_shot;
pub mod judge;
pub mod provenance;
pub mod rescore;
pub mod store;
pub mod summary;

pub use judge::Judge;
pub use store::{RUN_FILE, SAMPLES_FILE};

/// Why a run could not start or go on. Per-case failures are not errors: they are recorded in
/// the case's [`SampleRecord::error`] and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}: {msg}", path.display())]
    Io { path: PathBuf, msg: String },
    #[error("{}:{line}: {msg}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{0}")]
    Suites(#[from] SuiteErrors),
    #[error("{0}")]
    Plan(String),
    #[error("cannot resume {}: it differs from the run it would continue:\n{}\nStart a new run (without --resume), or put back what changed.", dir.display(), differences.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n"))]
    Refused {
        dir: PathBuf,
        differences: Vec<String>,
    },
}

/// Sampling settings given for the whole run, each replacing the suites' own when set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingOverride {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub max_tokens: Option<usize>,
}

impl SamplingOverride {
    pub fn is_empty(&self) -> bool {
        *self == SamplingOverride::default()
    }
    pub fn apply(&self, base: &SamplingSpec) -> SamplingSpec {
        SamplingSpec {
            temperature: self.temperature.unwrap_or(base.temperature),
            top_p: self.top_p.unwrap_or(base.top_p),
            top_k: self.top_k.unwrap_or(base.top_k),
            max_tokens: self.max_tokens.unwrap_or(base.max_tokens),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub suites: Vec<Suite>,
    /// At most this many cases per suite (the first ones).
    pub limit: Option<usize>,
    /// Samples per case (each with its own derived seed).
    pub repeats: usize,
    pub seed: u64,
    pub sampling: SamplingOverride,
    /// The command line, for provenance.
    pub argv: Vec<String>,
    /// Where the suites were loaded from (recorded so `--resume` finds them again).
    pub prompts: Option<PathBuf>,
    /// The judge model's reference as given (`--judge`); the model itself is handed to
    /// [`run_judged`].
    pub judge: Option<String>,
    /// Few-shot examples per case for every suite, replacing the suites' own `[few_shot] n`.
    pub few_shot: Option<usize>,
    /// Suites read from public datasets (`--dataset`), by suite id: what was read.
    pub datasets: BTreeMap<String, hakaru_types::DatasetInfo>,
}

impl Plan {
    pub fn new(suites: Vec<Suite>) -> Plan {
        Plan {
            suites,
            limit: None,
            repeats: 1,
            seed: 0,
            sampling: SamplingOverride::default(),
            argv: Vec::new(),
            prompts: None,
            judge: None,
            few_shot: None,
            datasets: BTreeMap::new(),
        }
    }
}

/// How the run went.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub record: RunRecord,
    /// Samples run by this call.
    pub ran: usize,
    /// Samples found already done (resume).
    pub already_done: usize,
    /// Samples of the whole run with an error.
    pub errors: usize,
    /// The reporter stopped the run before every case ran; `--resume` finishes it.
    pub interrupted: bool,
}

/// Progress of a run, for a terminal or a log. Every method has a do-nothing default.
pub trait Reporter {
    /// `total` samples in the plan, of which `already_done` were done before (resume).
    fn started(&mut self, _run_id: &str, _dir: &Path, _total: usize, _already_done: usize) {}
    /// A suite begins; `samples` of its samples are still to run.
    fn suite_started(&mut self, _suite: &str, _kind: SuiteKind, _samples: usize) {}
    /// A sample was written. Return `Break` to stop the run here (it stays resumable).
    fn case_finished(&mut self, _sample: &SampleRecord) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn suite_finished(&mut self, _summary: &SuiteSummary) {}
    fn warning(&mut self, _msg: &str) {}
    fn message(&mut self, _msg: &str) {}
    fn finished(&mut self, _record: &RunRecord) {}
}

/// A reporter that reports nothing.
pub struct NullReporter;
impl Reporter for NullReporter {}

/// The seed of one case × repeat: the first 8 bytes (little-endian) of
/// sha256(`seed` as decimal, NUL, suite id, NUL, case id, NUL, repeat as decimal).
pub fn case_seed(seed: u64, suite: &str, case: &str, repeat: usize) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_string().as_bytes());
    h.update([0]);
    h.update(suite.as_bytes());
    h.update([0]);
    h.update(case.as_bytes());
    h.update([0]);
    h.update(repeat.to_string().as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap())
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn builtin_of(kind: SuiteKind) -> Option<&'static str> {
    match kind {
        SuiteKind::Choice => Some(summary::CHOICE),
        SuiteKind::Perplexity => Some(summary::PERPLEXITY),
        _ => None,
    }
}

/// Check a plan before anything is written: repeats, judge, and every suite's metric names.
pub fn check_plan(plan: &Plan) -> Result<(), RunError> {
    let mut problems = Vec::new();
    if plan.repeats == 0 {
        problems.push("--repeats: must be 1 or more".to_string());
    }
    if plan.suites.is_empty() {
        problems.push("no suites to run; give --suite ids that exist (see `hakaru suites`)".into());
    }
    let known = hakaru_scorers::names().join(", ");
    for s in &plan.suites {
        let file = s.dir.join(hakaru_suites::SUITE_FILE);
        for name in &s.spec.metrics {
            if builtin_of(s.spec.kind) == Some(name.as_str()) {
                continue;
            }
            match hakaru_scorers::get(name) {
                Some(_) if s.spec.kind == SuiteKind::Perplexity => problems.push(format!(
                    "{}: metrics: scorer `{name}` scores a response, and perplexity suites produce none; remove it (perplexity is always measured)",
                    file.display()
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{}: metrics: scorer `{name}` is not known; known scorers: {known}{}",
                    file.display(),
                    builtin_of(s.spec.kind)
                        .map(|b| format!(" (and `{b}`, measured for every {b} suite)"))
                        .unwrap_or_default()
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RunError::Plan(problems.join("\n")))
    }
}

/// One sample to run: suite index, case index, repeat.
#[derive(Debug, Clone, Copy)]
struct Item {
    suite: usize,
    case: usize,
    repeat: usize,
}

fn items(plan: &Plan) -> Vec<Item> {
    let mut v = Vec::new();
    for (si, s) in plan.suites.iter().enumerate() {
        if s.spec.kind == SuiteKind::Throughput {
            continue;
        }
        let n = plan.limit.map_or(s.cases.len(), |l| l.min(s.cases.len()));
        for ci in 0..n {
            for r in 0..plan.repeats {
                v.push(Item {
                    suite: si,
                    case: ci,
                    repeat: r,
                });
            }
        }
    }
    v
}

fn planned_cases(plan: &Plan, s: &Suite) -> usize {
    if s.spec.kind == SuiteKind::Throughput {
        return 0;
    }
    plan.limit.map_or(s.cases.len(), |l| l.min(s.cases.len()))
}

/// Run the throughput suites' tests that are not in the record yet; each row is saved as it is
/// measured, so an interrupted run keeps the finished tests.
fn run_throughput(
    session: &mut Session,
    plan: &Plan,
    backend: &mut dyn Backend,
    reporter: &mut dyn Reporter,
) -> Result<(), RunError> {
    let suites: Vec<&Suite> = plan
        .suites
        .iter()
        .filter(|s| s.spec.kind == SuiteKind::Throughput)
        .collect();
    if suites.is_empty() {
        return Ok(());
    }
    let info = backend.describe();
    let probe =
        (info.device == "cpu").then(|| bench::BandwidthProbe::new(provenance::cpu_threads(), 3));
    let ceiling = probe.map(|p| {
        reporter.message("measuring memory bandwidth");
        p.read()
    });
    let mut cx = bench::BenchContext {
        api_prices: Vec::new(),
        load_seconds: None,
        ceiling_gb_s: ceiling,
        ceiling_probe: probe,
        price: None,
        ja_chars_per_token: bench::ja_chars_per_token(backend, &plan.suites).map(|x| x.0),
    };
    for suite in suites {
        let spec = suite.spec.throughput.clone().unwrap_or_default();
        let bp = bench::BenchPlan::of_suite(&spec, plan.seed);
        reporter.suite_started(&suite.spec.id, SuiteKind::Throughput, 0);
        for t in bench::tests(&bp) {
            let name = bench::test_name(&t);
            let done = session
                .record
                .throughput
                .iter()
                .any(|r| r.suite.as_deref() == Some(suite.spec.id.as_str()) && r.test == name);
            if done {
                continue;
            }
            reporter.message(&format!("{}: {name}", suite.spec.id));
            match bench::run_test(backend, &t, &bp, &mut cx) {
                Ok(mut row) => {
                    row.suite = Some(suite.spec.id.clone());
                    if row.noisy {
                        push_warning(
                            &mut session.record,
                            reporter,
                            format!(
                                "throughput `{}` {name}: other processes used {:.0}% of a CPU core meanwhile; the row is marked noisy",
                                suite.spec.id,
                                row.other_cpu_percent.unwrap_or(0.0)
                            ),
                        );
                    }
                    session.record.throughput.push(row);
                }
                Err(e) => push_warning(
                    &mut session.record,
                    reporter,
                    format!("throughput `{}`: {e}", suite.spec.id),
                ),
            }
            session.save(plan)?;
        }
    }
    Ok(())
}

/// The messages of a case as the backend takes them: `messages`, or `input` as one user turn.
fn messages_of(case: &CaseSpec) -> Result<Value, String> {
    if let Some(m) = &case.messages {
        return Ok(serde_json::to_value(m).expect("messages serialize"));
    }
    if let Some(i) = &case.input {
        return Ok(Value::Array(vec![
            serde_json::json!({"role": "user", "content": i}),
        ]));
    }
    Err("fields `input`/`messages`: the case has neither; give the prompt as `input` (or `messages`)".into())
}

/// The user's text of a case: `input`, or the last user message.
fn user_text(case: &CaseSpec) -> Option<String> {
    case.input.clone().or_else(|| {
        case.messages.as_ref().and_then(|ms| {
            ms.iter()
                .rev()
                .find(|m| m.role == "user")
                .map(|m| m.content.clone())
        })
    })
}

fn prompt_mode(t: TemplateMode) -> PromptMode {
    match t {
        TemplateMode::Chat => PromptMode::Chat,
        TemplateMode::Raw => PromptMode::Raw,
    }
}

struct CaseCtx<'a> {
    suite: &'a Suite,
    case: &'a CaseSpec,
    sampling: &'a SamplingSpec,
    seed: u64,
    /// Worked examples put before the case.
    shots: Vec<&'a CaseSpec>,
}

fn render(backend: &dyn Backend, cx: &CaseCtx) -> Result<Prompt, String> {
    let separator = cx
        .suite
        .spec
        .few_shot
        .as_ref()
        .map_or("\n\n", |f| f.separator.as_str());
    let msgs = few_shot::messages(
        messages_of(cx.case)?,
        cx.case.input.as_deref(),
        &cx.shots,
        cx.suite.spec.template,
        separator,
    );
    backend
        .render_prompt(
            &msgs,
            cx.suite.spec.system_prompt.as_deref(),
            prompt_mode(cx.suite.spec.template),
        )
        .map_err(|e| format!("rendering the prompt: {e}"))
}

/// Apply the suite's registered scorers to a response; scorer failures are collected.
fn apply_scorers(
    cx: &CaseCtx,
    rec: &mut SampleRecord,
    response: &str,
    reasoning: Option<&str>,
) -> Vec<String> {
    let input = hakaru_scorers::ScoreInput {
        id: cx.case.id.clone(),
        response: response.to_string(),
        prompt: user_text(cx.case),
        reference: cx.case.reference.clone(),
        lang: cx.case.lang.clone(),
        reasoning: reasoning.map(str::to_string),
        finish_reason: rec.finish_reason.clone(),
        choices: cx.case.choices.clone(),
        expected: cx.case.expected.clone(),
    };
    let mut errs = Vec::new();
    for name in &cx.suite.spec.metrics {
        let Some(scorer) = hakaru_scorers::get(name) else {
            continue; // a built-in measure's name (checked by check_plan)
        };
        match hakaru_scorers::score_checked(scorer, &input) {
            Ok(m) => {
                rec.scores.insert(name.clone(), Value::Object(m));
            }
            Err(e) => errs.push(format!("scorer `{name}`: {e}")),
        }
    }
    errs
}

fn run_generate(
    backend: &mut dyn Backend,
    cx: &CaseCtx,
    rec: &mut SampleRecord,
) -> Result<(), String> {
    rec.input = user_text(cx.case);
    rec.reference = cx.case.reference.clone();
    rec.lang = cx.case.lang.clone();
    let prompt = render(backend, cx)?;
    rec.prompt_sha256 = sha256_hex(&prompt.text);
    let opts = GenerateOptions {
        max_tokens: cx.sampling.max_tokens,
        ignore_eos: false,
        sampling: Sampling {
            temperature: cx.sampling.temperature,
            top_p: cx.sampling.top_p,
            top_k: cx.sampling.top_k,
            seed: cx.seed,
        },
        stop_ids: Vec::new(),
    };
    let g = backend
        .generate(&prompt, &opts)
        .map_err(|e| format!("generating: {e}"))?;
    rec.output = Some(g.text.clone());
    rec.reasoning = g.reasoning.clone();
    rec.prompt_tokens = Some(g.prompt_tokens);
    rec.completion_tokens = Some(g.completion_tokens);
    rec.finish_reason = Some(
        match g.finish_reason {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
        .into(),
    );
    rec.timings = Some(Timings {
        prefill_seconds: g.prefill_seconds,
        decode_seconds: g.decode_seconds,
        prefill_tokens_per_s: g.prefill_tokens_per_s,
        decode_tokens_per_s: g.decode_tokens_per_s,
        time_to_first_token_ms: g.time_to_first_token_ms,
    });
    let errs = apply_scorers(cx, rec, &g.text, g.reasoning.as_deref());
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// A case's `expected` as an index into its choices: an integer, or the text of a choice.
fn expected_index(case: &CaseSpec, n: usize) -> Result<Option<usize>, String> {
    let bad = || {
        format!(
            "field `expected`: {} is not an index into `choices` (0 to {}); give the 0-based index of the correct choice",
            case.expected.as_ref().map(Value::to_string).unwrap_or_default(),
            n.saturating_sub(1)
        )
    };
    match &case.expected {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(x)) => match x.as_u64() {
            Some(i) if (i as usize) < n => Ok(Some(i as usize)),
            _ => Err(bad()),
        },
        Some(Value::String(s)) => case
            .choices
            .as_ref()
            .and_then(|cs| cs.iter().position(|c| c == s))
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

fn run_choice(
    backend: &mut dyn Backend,
    cx: &CaseCtx,
    rec: &mut SampleRecord,
) -> Result<(), String> {
    rec.input = user_text(cx.case);
    rec.lang = cx.case.lang.clone();
    let choices = cx
        .case
        .choices
        .as_ref()
        .filter(|c| !c.is_empty())
        .ok_or("field `choices`: missing or empty; a choice case needs two or more choices")?;
    let expected = expected_index(cx.case, choices.len())?;
    let prompt = render(backend, cx)?;
    rec.prompt_sha256 = sha256_hex(&prompt.text);
    let scores = backend
        .score_continuations(&prompt, choices)
        .map_err(|e| format!("scoring the choices: {e}"))?;
    let lps: Vec<f64> = scores.iter().map(|s| s.logprob_sum).collect();
    let toks: Vec<usize> = scores.iter().map(|s| s.tokens).collect();
    let chars: Vec<usize> = scores.iter().map(|s| s.chars).collect();
    let fields = summary::choice_fields(&lps, &toks, &chars, expected);
    let predicted = fields
        .get("predicted")
        .and_then(Value::as_u64)
        .map(|i| choices[i as usize].clone());
    rec.scores
        .insert(summary::CHOICE.into(), Value::Object(fields));
    rec.output = predicted.clone();
    let errs = match predicted {
        Some(p) => apply_scorers(cx, rec, &p, None),
        None => vec![],
    };
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

fn run_perplexity(
    backend: &mut dyn Backend,
    cx: &CaseCtx,
    rec: &mut SampleRecord,
) -> Result<(), String> {
    rec.lang = cx.case.lang.clone();
    let text = cx
        .case
        .reference
        .as_ref()
        .ok_or("field `reference`: missing; a perplexity case scores its `reference` text")?;
    let (lp, tokens, chars) = if cx.case.input.is_some() || cx.case.messages.is_some() {
        // The reference is scored after its context, as a continuation.
        rec.input = user_text(cx.case);
        let prompt = render(backend, cx)?;
        rec.prompt_sha256 = sha256_hex(&prompt.text);
        let s = backend
            .score_continuations(&prompt, std::slice::from_ref(text))
            .map_err(|e| format!("scoring the reference: {e}"))?;
        (s[0].logprob_sum, s[0].tokens, s[0].chars)
    } else {
        rec.prompt_sha256 = sha256_hex(text);
        let s = backend
            .perplexity(text)
            .map_err(|e| format!("scoring the reference: {e}"))?;
        (s.logprob_sum, s.tokens, s.chars)
    };
    rec.scores.insert(
        summary::PERPLEXITY.into(),
        Value::Object(summary::perplexity_fields(lp, tokens, chars)),
    );
    Ok(())
}

fn run_case(backend: &mut dyn Backend, cx: &CaseCtx, repeat: usize) -> SampleRecord {
    let mut rec = SampleRecord {
        suite: cx.suite.spec.id.clone(),
        case_id: cx.case.id.clone(),
        repeat,
        tags: cx.case.tags.clone(),
        base_id: cx.case.base_id.clone(),
        shots: cx.shots.iter().map(|c| c.id.clone()).collect(),
        ..Default::default()
    };
    let result = match cx.suite.spec.kind {
        SuiteKind::Generate => run_generate(backend, cx, &mut rec),
        SuiteKind::Choice => run_choice(backend, cx, &mut rec),
        SuiteKind::Perplexity => run_perplexity(backend, cx, &mut rec),
        SuiteKind::Throughput => Err("throughput suites have no cases".into()),
    };
    if let Err(e) = result {
        rec.error = Some(e);
    }
    rec
}

/// One generation on a case's prompt before anything is timed (caches, lazy initialization).
fn warm_up(backend: &mut dyn Backend, plan: &Plan, todo: &[Item]) {
    let Some(item) = todo
        .iter()
        .find(|i| plan.suites[i.suite].spec.kind == SuiteKind::Generate)
    else {
        return;
    };
    let suite = &plan.suites[item.suite];
    let sampling = SamplingSpec::default();
    let cx = CaseCtx {
        suite,
        case: &suite.cases[item.case],
        sampling: &sampling,
        seed: 0,
        shots: Vec::new(),
    };
    if let Ok(p) = render(backend, &cx) {
        let opts = GenerateOptions {
            max_tokens: 2,
            ignore_eos: true,
            sampling: Sampling::default(),
            stop_ids: Vec::new(),
        };
        let _ = backend.generate(&p, &opts);
    }
}

struct Session {
    dir: PathBuf,
    record: RunRecord,
    samples: Vec<SampleRecord>,
    writer: store::SampleWriter,
    /// Effective sampling per plan suite.
    sampling: Vec<SamplingSpec>,
}

impl Session {
    fn summaries(&self, plan: &Plan) -> Vec<SuiteSummary> {
        plan.suites
            .iter()
            .map(|s| {
                let mine: Vec<&SampleRecord> = self
                    .samples
                    .iter()
                    .filter(|r| r.suite == s.spec.id)
                    .collect();
                summary::summarize(&s.spec.id, planned_cases(plan, s), &mine)
            })
            .collect()
    }

    fn save(&mut self, plan: &Plan) -> Result<(), RunError> {
        self.record.summary = self.summaries(plan);
        self.record.contrasts = summary::contrasts(
            &self.record.provenance.suite_contrasts,
            &self.record.summary,
        );
        store::write_record(&self.dir.join(RUN_FILE), &self.record)
    }
}

fn push_warning(record: &mut RunRecord, reporter: &mut dyn Reporter, w: String) {
    if !record.provenance.warnings.contains(&w) {
        reporter.warning(&w);
        record.provenance.warnings.push(w);
    }
}

/// run.json is rewritten after a case when this long has passed since the last write (and always
/// at the end of a suite and of the run); samples.jsonl is written after every case regardless.
const SAVE_INTERVAL_SECS: f64 = 1.0;

fn execute(
    mut session: Session,
    plan: &Plan,
    backend: &mut dyn Backend,
    mut judge: Option<&mut Judge>,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome, RunError> {
    let all = items(plan);
    let done: HashSet<(String, String, usize)> = session
        .samples
        .iter()
        .map(|s| (s.suite.clone(), s.case_id.clone(), s.repeat))
        .collect();
    let todo: Vec<Item> = all
        .iter()
        .copied()
        .filter(|i| {
            let s = &plan.suites[i.suite];
            !done.contains(&(s.spec.id.clone(), s.cases[i.case].id.clone(), i.repeat))
        })
        .collect();
    let already_done = all.len() - todo.len();
    reporter.started(
        &session.record.run_id,
        &session.dir,
        all.len(),
        already_done,
    );

    let monitor = provenance::CpuLoadMonitor::start();
    if !todo.is_empty() {
        reporter.message("warming up");
        warm_up(backend, plan, &todo);
    }
    session.save(plan)?;

    let mut ran = 0;
    let mut interrupted = false;
    let mut last_save = Instant::now();
    for (n, item) in todo.iter().enumerate() {
        let suite = &plan.suites[item.suite];
        let first_of_suite = n == 0 || todo[n - 1].suite != item.suite;
        if first_of_suite {
            let left = todo[n..].iter().filter(|i| i.suite == item.suite).count();
            reporter.suite_started(&suite.spec.id, suite.spec.kind, left);
        }
        let case = &suite.cases[item.case];
        let cx = CaseCtx {
            suite,
            case,
            sampling: &session.sampling[item.suite],
            seed: case_seed(plan.seed, &suite.spec.id, &case.id, item.repeat),
            shots: few_shot::choose(plan.seed, suite, item.case, few_shot_n(plan, suite)),
        };
        let mut rec = run_case(backend, &cx, item.repeat);
        if let Some(j) = judge.as_deref_mut() {
            if suite.spec.kind == SuiteKind::Generate && rec.error.is_none() {
                if let Some(e) = judge::judge_sample(j, suite, &mut rec, cx.seed ^ 0x4A55_D6E5) {
                    rec.error = Some(e);
                }
            }
        }
        session.writer.append(&rec)?;
        session.samples.push(rec);
        ran += 1;
        let flow = reporter.case_finished(session.samples.last().unwrap());
        let last_of_suite = todo.get(n + 1).is_none_or(|next| next.suite != item.suite);
        if last_of_suite || last_save.elapsed().as_secs_f64() >= SAVE_INTERVAL_SECS {
            session.save(plan)?;
            last_save = Instant::now();
        }
        if last_of_suite {
            if let Some(s) = session.record.summary.get(item.suite) {
                reporter.suite_finished(s);
            }
        }
        if flow.is_break() {
            interrupted = ran < todo.len();
            break;
        }
    }

    // An endpoint's timings are its server's: this machine's load says nothing of them (and a
    // server on this machine is itself the load).
    if ran > 0 && session.record.provenance.model.kind != "endpoint" {
        if let Some(w) = monitor.warning() {
            push_warning(&mut session.record, reporter, w);
        }
    }
    if !interrupted {
        run_throughput(&mut session, plan, backend, reporter)?;
    }
    let errors = session.samples.iter().filter(|s| s.error.is_some()).count();
    if !interrupted {
        session.record.status = if errors > 0 {
            RunStatus::CompleteWithErrors
        } else {
            RunStatus::Complete
        };
        session.record.provenance.finished_at = Some(provenance::now());
    }
    session.save(plan)?;
    reporter.finished(&session.record);
    Ok(RunOutcome {
        dir: session.dir,
        record: session.record,
        ran,
        already_done,
        errors,
        interrupted,
    })
}

/// The data files embedded in the scorers this plan uses (the refusal phrase lists).
fn scorer_data(plan: &Plan) -> Vec<hakaru_types::DataFileInfo> {
    let uses = |name: &str| {
        plan.suites
            .iter()
            .any(|s| s.spec.metrics.iter().any(|m| m == name))
    };
    if !uses("refusal") {
        return Vec::new();
    }
    hakaru_scorers::refusal::markers_info()
        .into_iter()
        .map(|m| hakaru_types::DataFileInfo {
            name: format!("refusal/markers.{}.toml", m.lang),
            version: m.version,
            sha256: m.sha256,
        })
        .collect()
}

/// Examples per case of a suite in this plan.
fn few_shot_n(plan: &Plan, suite: &Suite) -> usize {
    plan.few_shot
        .or(suite.spec.few_shot.as_ref().map(|f| f.n))
        .unwrap_or(0)
}

fn effective_sampling(plan: &Plan) -> Vec<SamplingSpec> {
    plan.suites
        .iter()
        .map(|s| plan.sampling.apply(&s.spec.sampling))
        .collect()
}

/// Run `plan` on `backend`, writing `<out_dir>/<run-id>/`. Fails before writing anything when the
/// plan is invalid; once the run directory exists, per-case failures are recorded and the run
/// goes on, and only I/O failures stop it (leaving it resumable).
pub fn run(
    backend: &mut dyn Backend,
    plan: &Plan,
    out_dir: &Path,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome, RunError> {
    run_judged(backend, None, plan, out_dir, reporter)
}

/// [`run`], with a judge for the suites whose `suite.toml` names a rubric.
pub fn run_judged(
    backend: &mut dyn Backend,
    judge: Option<&mut Judge>,
    plan: &Plan,
    out_dir: &Path,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome, RunError> {
    check_plan(plan)?;
    let info = backend.describe();
    let harness = provenance::harness(&info.features);
    let model = provenance::model(&info);
    let mut warnings = provenance::start_warnings(&harness, &model);
    warnings.extend(info.notes.iter().cloned());
    if let Some(j) = judge.as_deref() {
        if !plan.suites.iter().any(|s| {
            s.spec
                .judge
                .as_ref()
                .is_some_and(|n| j.rubrics.contains_key(n))
        }) {
            warnings.push("--judge was given, but no suite of this run names a judge rubric; nothing is judged".into());
        }
    }
    for w in &warnings {
        reporter.warning(w);
    }
    let sampling = effective_sampling(plan);
    std::fs::create_dir_all(out_dir)
        .map_err(|e| store::io_err(out_dir, "cannot create the output directory", e))?;
    let started = SystemTime::now();
    let short = provenance::model_short_name(&info);
    let (run_id, dir) = {
        let mut salt = 0u64;
        loop {
            let id = provenance::run_id(started, &short, salt);
            let dir = out_dir.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => break (id, dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && salt < 16 => salt += 1,
                Err(e) => return Err(store::io_err(&dir, "cannot create the run directory", e)),
            }
        }
    };
    let record = RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id,
        status: RunStatus::Running,
        provenance: Provenance {
            harness,
            host: provenance::host(),
            device: provenance::device(&info),
            model,
            sampling: plan.sampling.apply(&SamplingSpec::default()),
            seed: plan.seed,
            repeats: plan.repeats,
            suites: plan.suites.iter().map(Suite::info).collect(),
            argv: plan.argv.clone(),
            started_at: provenance::rfc3339(started),
            finished_at: None,
            warnings,
            limit: plan.limit,
            prompts: plan.prompts.as_ref().map(|p| p.display().to_string()),
            suite_sampling: plan
                .suites
                .iter()
                .zip(&sampling)
                .map(|(s, sp)| (s.spec.id.clone(), sp.clone()))
                .collect(),
            resumed_at: Vec::new(),
            suite_few_shot: plan
                .suites
                .iter()
                .map(|s| (s.spec.id.clone(), few_shot_n(plan, s)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            datasets: plan.datasets.clone(),
            judge: judge.as_deref().map(Judge::info),
            suite_contrasts: plan
                .suites
                .iter()
                .filter_map(|s| s.spec.contrast.clone().map(|c| (s.spec.id.clone(), c)))
                .collect(),
            scorer_data: scorer_data(plan),
        },
        summary: Vec::new(),
        contrasts: Vec::new(),
        throughput: Vec::new(),
    };
    // run.json first, then an empty samples.jsonl: a kill from here on leaves a resumable run.
    store::write_record(&dir.join(RUN_FILE), &record)?;
    let writer = store::SampleWriter::open(&dir.join(SAMPLES_FILE))?;
    let session = Session {
        dir,
        record,
        samples: Vec::new(),
        writer,
        sampling,
    };
    execute(session, plan, backend, judge, reporter)
}

/// Settings given again with `--resume`; each, when set, must equal the run's.
#[derive(Debug, Clone, Default)]
pub struct ResumeOptions {
    /// Where to find the suites (default: where the run found them).
    pub prompts: Option<PathBuf>,
    pub suites: Option<Vec<String>>,
    pub limit: Option<usize>,
    pub repeats: Option<usize>,
    pub seed: Option<u64>,
    pub sampling: SamplingOverride,
    /// `--num-fewshot`, checked against the count each suite ran with.
    pub few_shot: Option<usize>,
}

/// Read a run directory's `run.json`.
pub fn read_run(run_dir: &Path) -> Result<RunRecord, RunError> {
    store::read_record(&run_dir.join(RUN_FILE))
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

fn model_differences(
    stored: &hakaru_types::ModelInfo,
    now: &hakaru_types::ModelInfo,
) -> Vec<String> {
    let mut d = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            d.push(format!(
                "model {name}: the run used {a}, this model has {b}"
            ));
        }
    };
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    field("kind", stored.kind.clone(), now.kind.clone());
    field("repo", opt(&stored.repo), opt(&now.repo));
    field("commit", opt(&stored.commit_sha), opt(&now.commit_sha));
    field(
        "architecture",
        stored.architecture.clone(),
        now.architecture.clone(),
    );
    field("weights", stored.weights.clone(), now.weights.clone());
    field(
        "tokenizer sha256",
        opt(&stored.tokenizer_sha256),
        opt(&now.tokenizer_sha256),
    );
    field(
        "chat template sha256",
        opt(&stored.chat_template_sha256),
        opt(&now.chat_template_sha256),
    );
    let a: BTreeMap<&str, &str> = stored
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.sha256.as_str()))
        .collect();
    let b: BTreeMap<&str, &str> = now
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.sha256.as_str()))
        .collect();
    for (name, h) in &a {
        match b.get(name) {
            None => d.push(format!("model file `{name}`: in the run, missing now")),
            Some(h2) if h2 != h => d.push(format!(
                "model file `{name}`: sha256 was {}…, is now {}…",
                short(h),
                short(h2)
            )),
            _ => {}
        }
    }
    for name in b.keys().filter(|n| !a.contains_key(*n)) {
        d.push(format!("model file `{name}`: new, not in the run"));
    }
    d
}

fn sampling_text(s: &SamplingSpec) -> String {
    format!(
        "temperature {}, top_p {}, top_k {}, max_tokens {}",
        s.temperature, s.top_p, s.top_k, s.max_tokens
    )
}

/// Finish the run in `run_dir`: samples already written are kept, a torn last line is dropped
/// (that case runs again), and the rest run. Refused, naming each difference, when a suite's
/// content, the model (commit, file hashes, weights), the device, or a setting given in `opts`
/// differs from the run's.
pub fn resume(
    run_dir: &Path,
    opts: &ResumeOptions,
    backend: &mut dyn Backend,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome, RunError> {
    resume_judged(run_dir, opts, backend, None, reporter)
}

/// [`resume`] of a run that had a judge: the same judge model and rubrics must be given again.
pub fn resume_judged(
    run_dir: &Path,
    opts: &ResumeOptions,
    backend: &mut dyn Backend,
    judge: Option<&mut Judge>,
    reporter: &mut dyn Reporter,
) -> Result<RunOutcome, RunError> {
    let run_path = run_dir.join(RUN_FILE);
    let mut record = store::read_record(&run_path)?;
    let prov = &record.provenance;
    let root = match (&opts.prompts, &prov.prompts) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => {
            return Err(RunError::Plan(format!(
                "{}: field `provenance.prompts`: missing, so the suites cannot be found; give --prompts DIR",
                run_path.display()
            )))
        }
    };
    let ids: Vec<String> = prov.suites.iter().map(|s| s.id.clone()).collect();
    let from_prompts: Vec<String> = ids
        .iter()
        .filter(|id| !prov.datasets.contains_key(*id))
        .cloned()
        .collect();
    let mut loaded = if from_prompts.is_empty() {
        Vec::new()
    } else {
        hakaru_suites::select(&root, &from_prompts)?
    };
    for (id, d) in &prov.datasets {
        let (suite, _) = hakaru_suites::datasets::load(&d.format, Path::new(&d.path))?;
        if suite.spec.id != *id {
            return Err(RunError::Plan(format!(
                "{}: provenance.datasets.{id}: the files at {} are a `{}` dataset, not `{id}`",
                run_path.display(),
                d.path,
                suite.spec.id
            )));
        }
        loaded.push(suite);
    }
    // In the run's order, each with the few-shot count it ran with.
    let mut suites = Vec::new();
    for id in &ids {
        let i = loaded
            .iter()
            .position(|s| s.spec.id == *id)
            .expect("every id was loaded");
        let mut s = loaded.swap_remove(i);
        let n = prov.suite_few_shot.get(id).copied().unwrap_or(0);
        s.spec.few_shot = (n > 0).then(|| hakaru_types::FewShotSpec {
            n,
            separator: s
                .spec
                .few_shot
                .as_ref()
                .map_or_else(|| "\n\n".into(), |f| f.separator.clone()),
        });
        suites.push(s);
    }

    let mut diffs = Vec::new();
    if let Some(want) = &opts.suites {
        if *want != ids {
            diffs.push(format!(
                "suites: the run has {}, --suite asks for {}",
                ids.join(","),
                want.join(",")
            ));
        }
    }
    for (stored, s) in prov.suites.iter().zip(&suites) {
        if stored.content_hash != s.content_hash {
            let version = if stored.version != s.spec.version {
                format!(" (version {} → {})", stored.version, s.spec.version)
            } else {
                String::new()
            };
            diffs.push(format!(
                "suite `{}`: its files in {} changed since the run started{version}: content hash was {}…, is now {}…",
                s.spec.id,
                s.dir.display(),
                short(&stored.content_hash),
                short(&s.content_hash)
            ));
        }
    }
    if let Some(seed) = opts.seed.filter(|&x| x != prov.seed) {
        diffs.push(format!(
            "seed: the run used {}, --seed asks for {seed}",
            prov.seed
        ));
    }
    if let Some(r) = opts.repeats.filter(|&x| x != prov.repeats) {
        diffs.push(format!(
            "repeats: the run used {}, --repeats asks for {r}",
            prov.repeats
        ));
    }
    if let Some(k) = opts.few_shot {
        for s in &suites {
            let used = prov.suite_few_shot.get(&s.spec.id).copied().unwrap_or(0);
            if used != k {
                diffs.push(format!(
                    "few-shot examples of suite `{}`: the run used {used}, --num-fewshot asks for {k}",
                    s.spec.id
                ));
            }
        }
    }
    if let Some(l) = opts.limit.filter(|&l| Some(l) != prov.limit) {
        diffs.push(format!(
            "limit: the run used {}, --limit asks for {l}",
            prov.limit.map_or("none".into(), |l| l.to_string()),
        ));
    }
    // The sampling each suite runs with: as stored; settings given now must match it.
    let mut sampling = Vec::new();
    for s in &suites {
        let stored = prov
            .suite_sampling
            .get(&s.spec.id)
            .cloned()
            .unwrap_or_else(|| s.spec.sampling.clone());
        if !opts.sampling.is_empty() {
            let asked = opts.sampling.apply(&stored);
            if asked != stored {
                diffs.push(format!(
                    "sampling of suite `{}`: the run used {}, the flags ask for {}",
                    s.spec.id,
                    sampling_text(&stored),
                    sampling_text(&asked)
                ));
            }
        }
        sampling.push(stored);
    }
    let info = backend.describe();
    diffs.extend(model_differences(&prov.model, &provenance::model(&info)));
    if prov.device.name != info.device {
        diffs.push(format!(
            "device: the run used {}, this one is {} (give --device {})",
            prov.device.name, info.device, prov.device.name
        ));
    }
    match (&prov.judge, judge.as_deref()) {
        (None, None) => {}
        (Some(j), None) => diffs.push(format!(
            "judge: the run was judged by {}; give --judge {} again",
            j.model.reference, j.model.reference
        )),
        (None, Some(_)) => {
            diffs.push("judge: the run had no judge; resume it without --judge".into())
        }
        (Some(stored), Some(now)) => {
            let info = now.info();
            diffs.extend(
                model_differences(&stored.model, &info.model)
                    .into_iter()
                    .map(|d| format!("judge {d}")),
            );
            if let (Some(a), Some(b)) = (&stored.device, &info.device) {
                if a.name != b.name {
                    diffs.push(format!(
                        "judge device: the run's judge ran on {}, this one on {}",
                        a.name, b.name
                    ));
                }
            }
            if stored.rubrics != info.rubrics {
                diffs.push(format!(
                    "judge rubrics: the run used {}, now {}",
                    rubric_list(&stored.rubrics),
                    rubric_list(&info.rubrics)
                ));
            }
        }
    }
    if !diffs.is_empty() {
        return Err(RunError::Refused {
            dir: run_dir.to_path_buf(),
            differences: diffs,
        });
    }

    let plan = Plan {
        suites,
        limit: prov.limit,
        repeats: prov.repeats,
        seed: prov.seed,
        sampling: SamplingOverride::default(),
        argv: prov.argv.clone(),
        prompts: Some(root),
        judge: None,
        few_shot: None,
        datasets: prov.datasets.clone(),
    };
    let samples_path = run_dir.join(SAMPLES_FILE);
    let read = store::read_samples(&samples_path)?;

    // Every stored sample must belong to the plan, once.
    let planned: HashSet<(String, String, usize)> = items(&plan)
        .iter()
        .map(|i| {
            let s = &plan.suites[i.suite];
            (s.spec.id.clone(), s.cases[i.case].id.clone(), i.repeat)
        })
        .collect();
    let mut seen = HashSet::new();
    for (n, s) in read.samples.iter().enumerate() {
        let key = (s.suite.clone(), s.case_id.clone(), s.repeat);
        if !planned.contains(&key) {
            return Err(RunError::Corrupt {
                path: samples_path.clone(),
                line: n + 1,
                msg: format!(
                    "sample ({}, {}, repeat {}) is not part of this run's plan; the file does not belong to this run.json; start a new run",
                    s.suite, s.case_id, s.repeat
                ),
            });
        }
        if !seen.insert(key) {
            return Err(RunError::Corrupt {
                path: samples_path.clone(),
                line: n + 1,
                msg: format!(
                    "sample ({}, {}, repeat {}) appears twice; the file was written by something other than one hakaru run; start a new run",
                    s.suite, s.case_id, s.repeat
                ),
            });
        }
    }
    let complete = record.status != RunStatus::Running;
    if complete && seen.len() == planned.len() && read.torn.is_none() {
        reporter.message("the run is already complete; nothing to do");
        let errors = read.samples.iter().filter(|s| s.error.is_some()).count();
        return Ok(RunOutcome {
            dir: run_dir.to_path_buf(),
            record,
            ran: 0,
            already_done: seen.len(),
            errors,
            interrupted: false,
        });
    }
    if let Some((line, why)) = &read.torn {
        store::truncate_to(&samples_path, read.valid_len)?;
        reporter.warning(&format!(
            "{}:{line}: dropped a torn last line ({why}); that case runs again",
            samples_path.display()
        ));
    }
    let host = provenance::host();
    if host.cpu_model != record.provenance.host.cpu_model || host.os != record.provenance.host.os {
        let w = format!(
            "resumed on a different host ({} on {}) than the run started on ({} on {}); timings of the two parts are not comparable",
            host.cpu_model.as_deref().unwrap_or("unknown CPU"),
            host.os,
            record.provenance.host.cpu_model.as_deref().unwrap_or("unknown CPU"),
            record.provenance.host.os
        );
        push_warning(&mut record, reporter, w);
    }
    record.provenance.resumed_at.push(provenance::now());
    record.status = RunStatus::Running;
    record.provenance.finished_at = None;
    let writer = store::SampleWriter::open(&samples_path)?;
    let session = Session {
        dir: run_dir.to_path_buf(),
        record,
        samples: read.samples,
        writer,
        sampling,
    };
    execute(session, &plan, backend, judge, reporter)
}

fn rubric_list(r: &[hakaru_types::DataFileInfo]) -> String {
    r.iter()
        .map(|f| format!("{} v{} ({}…)", f.name, f.version, short(&f.sha256)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_seeds_are_stable_and_distinct() {
        // Pinned: changing the derivation changes every sampled output of every stored run.
        assert_eq!(case_seed(0, "s", "a", 0), case_seed(0, "s", "a", 0));
        let seeds: HashSet<u64> = [
            case_seed(0, "s", "a", 0),
            case_seed(1, "s", "a", 0),
            case_seed(0, "t", "a", 0),
            case_seed(0, "s", "b", 0),
            case_seed(0, "s", "a", 1),
            // The separators keep ("sa", "") apart from ("s", "a").
            case_seed(0, "sa", "", 0),
        ]
        .into_iter()
        .collect();
        assert_eq!(seeds.len(), 6);
    }

    #[test]
    fn overrides_replace_only_what_is_given() {
        let base = SamplingSpec {
            temperature: 0.7,
            top_p: 0.9,
            top_k: 20,
            max_tokens: 64,
        };
        let o = SamplingOverride {
            max_tokens: Some(8),
            ..Default::default()
        };
        let s = o.apply(&base);
        assert_eq!(
            (s.temperature, s.top_p, s.top_k, s.max_tokens),
            (0.7, 0.9, 20, 8)
        );
        assert!(SamplingOverride::default().is_empty() && !o.is_empty());
    }

    #[test]
    fn expected_as_index_or_text() {
        let case: CaseSpec = serde_json::from_str(
            r#"{"id": "q", "input": "?", "choices": ["A", "B"], "expected": 1}"#,
        )
        .unwrap();
        assert_eq!(expected_index(&case, 2), Ok(Some(1)));
        let case = CaseSpec {
            expected: Some(Value::String("A".into())),
            ..case
        };
        assert_eq!(expected_index(&case, 2), Ok(Some(0)));
        let case = CaseSpec {
            expected: Some(serde_json::json!(2)),
            ..case
        };
        let e = expected_index(&case, 2).unwrap_err();
        assert!(
            e.starts_with("field `expected`: 2 is not an index into `choices` (0 to 1)"),
            "{e}"
        );
    }
}
