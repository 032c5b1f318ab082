//! `hakaru run`: suites against a model, written to `<out>/<run-id>/`; `--resume` finishes an
//! interrupted run. Progress bars on a terminal, plain lines otherwise (both on stderr); the run
//! directory on stdout at the end. Exit code 0 when every case ran cleanly, 1 when a case failed
//! (recorded in samples.jsonl), 2 when the run could not start or go on.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use hakaru_engine::backend::Backend;
use hakaru_runner::{Plan, Reporter, ResumeOptions, RunOutcome, SamplingOverride};
use hakaru_types::{RunRecord, RunStatus, SampleRecord, SuiteKind, SuiteSummary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{LoadArgs, ModelArgs};

/// The model `hakaru run` measures when none is given: the smallest Qwen2.5 instruct model.
pub const DEFAULT_MODEL: &str = "qwen2.5-0.5b";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model: org/name[@revision], org/name[@revision]:FILE.gguf, a registry name, a directory,
    /// a .gguf file, or synthetic:<name|config.json> [default: qwen2.5-0.5b; with --resume: the
    /// run's model]
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Suites to run, by id, comma-separated [default: every suite in --prompts, or none when
    /// --dataset is given]
    #[arg(long, value_delimiter = ',')]
    pub suite: Vec<String>,
    /// A public benchmark from your own files, as FORMAT=PATH (repeatable): jcommonsenseqa=DIR
    /// (JGLUE's valid-v1.1.json, with train-v1.1.json for examples) or jmmlu=DIR (one CSV per
    /// subject); a file works too
    #[arg(long, value_name = "FORMAT=PATH")]
    pub dataset: Vec<String>,
    /// Few-shot examples per case for every suite [default: each suite's own, e.g. 3 for
    /// jcommonsenseqa, 5 for jmmlu, none for most suites in prompts/]
    #[arg(long, value_name = "N")]
    pub num_fewshot: Option<usize>,
    /// At most N cases per suite (the first ones)
    #[arg(long)]
    pub limit: Option<usize>,
    /// Samples per case, each with its own seed [default: 1]
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Run seed; each case's sampling seed derives from it [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run directories are created
    #[arg(long, default_value = "results/runs")]
    pub out: PathBuf,
    /// The suites' directory [default: prompts; with --resume: where the run found them]
    #[arg(long, env = "HAKARU_PROMPTS")]
    pub prompts: Option<PathBuf>,
    /// Finish the interrupted run in RUN_DIR (its model, suites and settings come from its
    /// run.json; flags given must agree with them)
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// A judge model (any model reference) for the suites whose suite.toml names a rubric in
    /// prompts/judge/: ja-open answers get a 1-5 grade, low-confidence refusal labels a second
    /// opinion [with --resume: the run's judge]
    #[arg(long)]
    pub judge: Option<String>,
    /// Sampling temperature for every suite (0 = greedy) [default: each suite's own]
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold for every suite [default: each suite's own]
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Top-k filter for every suite (0 = none) [default: each suite's own]
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Generated tokens at most, for every suite [default: each suite's own]
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Device, precision, threads, hub access [with --resume: default from the run]
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Terminal progress: a bar on a terminal, one line per sample otherwise.
struct CliReporter {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
}

impl CliReporter {
    fn new() -> Self {
        CliReporter {
            bar: None,
            total: 0,
            done: 0,
        }
    }

    fn line(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}

fn summary_line(s: &SuiteSummary) -> String {
    let mut parts: Vec<String> = s
        .metrics
        .iter()
        .map(|(k, m)| match (m.ci_low, m.ci_high) {
            (Some(l), Some(h)) => format!("{k} {:.3} [{l:.3}, {h:.3}] (n={})", m.mean, m.n),
            _ => format!("{k} {:.3} (n={})", m.mean, m.n),
        })
        .collect();
    if s.errors > 0 {
        parts.push(format!("{} failed", s.errors));
    }
    if parts.is_empty() {
        parts.push("no metrics".into());
    }
    format!("{}: {}", s.suite, parts.join(", "))
}

impl Reporter for CliReporter {
    fn started(&mut self, run_id: &str, dir: &Path, total: usize, already_done: usize) {
        self.total = total;
        self.done = already_done;
        if std::io::stderr().is_terminal() {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
                    .with_position(already_done as u64)
                    .with_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta} {msg}",
                        )
                        .unwrap(),
                    );
            bar.enable_steady_tick(Duration::from_millis(200));
            self.bar = Some(bar);
        }
        let resumed = if already_done > 0 {
            format!(", {already_done} already done")
        } else {
            String::new()
        };
        self.line(&format!(
            "run {run_id}: {total} samples{resumed}, writing {}",
            dir.display()
        ));
    }

    fn suite_started(&mut self, suite: &str, kind: SuiteKind, samples: usize) {
        let kind = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match &self.bar {
            Some(b) => b.set_message(suite.to_string()),
            None => eprintln!("suite {suite} ({kind}): {samples} samples"),
        }
    }

    fn case_finished(&mut self, s: &SampleRecord) -> ControlFlow<()> {
        self.done += 1;
        let what = format!("{}/{} #{}", s.suite, s.case_id, s.repeat);
        match (&self.bar, &s.error) {
            (Some(b), None) => b.inc(1),
            (Some(b), Some(e)) => {
                b.inc(1);
                b.println(format!("{what}: failed: {e}"));
            }
            (None, None) => eprintln!("[{}/{}] {what}: ok", self.done, self.total),
            (None, Some(e)) => eprintln!("[{}/{}] {what}: failed: {e}", self.done, self.total),
        }
        ControlFlow::Continue(())
    }

    fn suite_finished(&mut self, s: &SuiteSummary) {
        self.line(&summary_line(s));
    }

    fn warning(&mut self, msg: &str) {
        self.line(&format!("warning: {msg}"));
    }

    fn message(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None => eprintln!("{msg}"),
        }
    }

    fn finished(&mut self, r: &RunRecord) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let status = match r.status {
            RunStatus::Complete => "complete",
            RunStatus::CompleteWithErrors => "complete, with failed cases",
            RunStatus::Running => "interrupted (finish it with --resume)",
            RunStatus::Failed => "failed",
        };
        eprintln!("run {}: {status}", r.run_id);
    }
}

fn sampling_override(args: &Args) -> Result<SamplingOverride> {
    if let Some(p) = args.top_p {
        if !(p > 0.0 && p <= 1.0) {
            anyhow::bail!("--top-p must be in (0, 1], got {p}");
        }
    }
    if let Some(t) = args.temperature {
        if !(t >= 0.0 && t.is_finite()) {
            anyhow::bail!("--temperature must be 0 (greedy) or positive, got {t}");
        }
    }
    Ok(SamplingOverride {
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        max_tokens: args.max_tokens,
    })
}

type Backends = (Box<dyn Backend>, Option<Box<dyn Backend>>);

/// The measured model and the judge (`--judge`), each with its load flags (a new run gives the
/// judge the measured model's: same device, precision and threads). The flags are for what runs
/// here: an endpoint judge takes none, and neither does an endpoint measured model beside a
/// local judge.
fn open_models(model: ModelArgs, judge: Option<ModelArgs>) -> Result<Backends> {
    let mut measured = model;
    if measured.is_endpoint() && judge.as_ref().is_some_and(|j| !j.is_endpoint()) {
        measured.load = LoadArgs::default();
    }
    let backend = measured.backend()?;
    let judge = match judge {
        Some(mut j) => {
            if j.is_endpoint() {
                j.load = LoadArgs::default();
            }
            let b = j
                .backend()
                .with_context(|| format!("opening the judge model {}", j.model))?;
            Some(b)
        }
        None => None,
    };
    Ok((backend, judge))
}

/// Load flags that reopen a stored model as it ran: each flag given now, else what the record
/// says (device, threads, a float dtype except for GGUF files, a synthetic model's
/// quantization). An endpoint takes the flags given now alone.
fn restored_load(
    l: &LoadArgs,
    reference: &str,
    m: &hakaru_types::ModelInfo,
    d: &hakaru_types::DeviceInfo,
) -> LoadArgs {
    if hakaru_engine::endpoint::EndpointRef::is_endpoint(reference) {
        return l.clone();
    }
    let float = matches!(m.weights.as_str(), "f32" | "bf16" | "f16");
    // A run that measured an endpoint names no device of this machine.
    let d = (d.name != "endpoint").then_some(d);
    LoadArgs {
        device: l.device.clone().or_else(|| d.map(|d| d.name.clone())),
        dtype: l
            .dtype
            .clone()
            .or_else(|| (float && m.kind != "gguf").then(|| m.weights.clone())),
        quant: l
            .quant
            .clone()
            .or_else(|| (!float && m.kind == "synthetic").then(|| m.weights.clone())),
        threads: l.threads.or(d.and_then(|d| d.threads)),
        offline: l.offline,
    }
}

fn start(args: &Args) -> Result<RunOutcome> {
    let sampling = sampling_override(args)?;
    let mut reporter = CliReporter::new();
    if let Some(dir) = &args.resume {
        let stored = hakaru_runner::read_run(dir)?;
        let pv = &stored.provenance;
        let m = &pv.model;
        let l = &args.load;
        let reference = args.model.clone().unwrap_or_else(|| m.reference.clone());
        let model = ModelArgs {
            load: restored_load(l, &reference, m, &pv.device),
            model: reference,
        };
        let judge_ref = args
            .judge
            .clone()
            .or_else(|| pv.judge.as_ref().map(|j| j.model.reference.clone()));
        // The judge as it ran where the record says (older records: like the measured model).
        let judge = judge_ref.as_ref().map(|r| ModelArgs {
            load: match &pv.judge {
                Some(hakaru_types::JudgeInfo {
                    model: jm,
                    device: Some(jd),
                    ..
                }) if jm.reference == *r => restored_load(l, r, jm, jd),
                _ => model.load.clone(),
            },
            model: r.clone(),
        });
        let root = args
            .prompts
            .clone()
            .or_else(|| pv.prompts.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("prompts"));
        let (mut backend, mut judge_backend) = open_models(model, judge)?;
        let opts = ResumeOptions {
            prompts: args.prompts.clone(),
            suites: (!args.suite.is_empty()).then(|| args.suite.clone()),
            limit: args.limit,
            repeats: args.repeats,
            seed: args.seed,
            sampling,
            few_shot: args.num_fewshot,
        };
        let mut judge = match judge_backend.as_mut() {
            Some(b) => {
                // The rubrics are those of the suites as they are now; resume compares them
                // with the run's.
                let ids: Vec<String> = pv
                    .suites
                    .iter()
                    .filter(|s| !pv.datasets.contains_key(&s.id))
                    .map(|s| s.id.clone())
                    .collect();
                let suites = hakaru_suites::select(&root, &ids)?;
                Some(hakaru_runner::Judge {
                    backend: b.as_mut(),
                    rubrics: hakaru_runner::judge::rubrics_for(&root, &suites)?,
                })
            }
            None => None,
        };
        return Ok(hakaru_runner::resume_judged(
            dir,
            &opts,
            backend.as_mut(),
            judge.as_mut(),
            &mut reporter,
        )?);
    }
    let prompts = args
        .prompts
        .clone()
        .unwrap_or_else(|| PathBuf::from("prompts"));
    let mut suites = if !args.suite.is_empty() {
        hakaru_suites::select(&prompts, &args.suite)?
    } else if args.dataset.is_empty() {
        hakaru_suites::load_all(&prompts)?
    } else {
        Vec::new()
    };
    let mut datasets = std::collections::BTreeMap::new();
    for d in &args.dataset {
        let Some((format, path)) = d.split_once('=') else {
            anyhow::bail!(
                "--dataset {d}: give FORMAT=PATH, e.g. --dataset jcommonsenseqa=~/data/JGLUE/datasets/jcommonsenseqa-v1.1 (formats: {})",
                hakaru_suites::datasets::FORMATS.join(", ")
            );
        };
        let (suite, info) = hakaru_suites::datasets::load(format, Path::new(path))?;
        if suites
            .iter()
            .any(|s: &hakaru_suites::Suite| s.spec.id == suite.spec.id)
        {
            anyhow::bail!(
                "--dataset {d}: a suite named `{}` is already in the run; give each dataset once and leave a same-named suite out of --suite",
                suite.spec.id
            );
        }
        datasets.insert(suite.spec.id.clone(), info);
        suites.push(suite);
    }
    let model = ModelArgs {
        model: args
            .model
            .clone()
            .unwrap_or_else(|| DEFAULT_MODEL.to_string()),
        load: args.load.clone(),
    };
    let plan = Plan {
        suites,
        limit: args.limit,
        repeats: args.repeats.unwrap_or(1),
        seed: args.seed.unwrap_or(0),
        sampling,
        argv: std::env::args().collect(),
        prompts: Some(std::path::absolute(&prompts).unwrap_or_else(|_| prompts.clone())),
        judge: args.judge.clone(),
        few_shot: args.num_fewshot,
        datasets,
    };
    hakaru_runner::check_plan(&plan)?;
    let rubrics = match &args.judge {
        Some(_) => hakaru_runner::judge::rubrics_for(&prompts, &plan.suites)?,
        None => Default::default(),
    };
    let judge = args.judge.as_ref().map(|r| ModelArgs {
        model: r.clone(),
        load: model.load.clone(),
    });
    let (mut backend, mut judge_backend) = open_models(model, judge)?;
    let mut judge = judge_backend.as_mut().map(|b| hakaru_runner::Judge {
        backend: b.as_mut(),
        rubrics,
    });
    hakaru_runner::run_judged(
        backend.as_mut(),
        judge.as_mut(),
        &plan,
        &args.out,
        &mut reporter,
    )
    .with_context(|| format!("the run in {} stopped", args.out.display()))
}

pub fn run(args: &Args) -> ExitCode {
    match start(args) {
        Ok(outcome) => {
            println!("{}", outcome.dir.display());
            if outcome.interrupted {
                ExitCode::from(2)
            } else if outcome.errors > 0 {
                eprintln!(
                    "{} of {} samples failed; their errors are in {}",
                    outcome.errors,
                    outcome.ran + outcome.already_done,
                    outcome.dir.join(hakaru_runner::SAMPLES_FILE).display()
                );
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
