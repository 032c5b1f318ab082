//! Runner integration tests on the tiny fixture model (random weights: the text is meaningless,
//! the bookkeeping is what is tested). Suites are written by each test into a temp prompts dir.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use hakaru_engine::backend::CandleBackend;
use hakaru_runner::rescore::{rescore, RescoreOptions};
use hakaru_runner::{
    read_run, resume, run, NullReporter, Plan, Reporter, ResumeOptions, RunError, RunOutcome,
    SamplingOverride, RUN_FILE, SAMPLES_FILE,
};
use hakaru_types::{RunRecord, RunStatus, SampleRecord};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn backend() -> CandleBackend {
    let dir = root().join("fixtures/models/tiny-qwen2");
    let r = dir.to_str().unwrap().to_string();
    let opened = hakaru_engine::open::open(
        &r,
        &hakaru_engine::hub::ResolveOptions::default(),
        &hakaru_engine::load::LoadOptions::default(),
    )
    .unwrap();
    CandleBackend::new(opened, r)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Three small suites: generate (exact), choice, perplexity.
fn prompts(dir: &Path) -> PathBuf {
    let p = dir.join("prompts");
    write(
        &p.join("t-gen/suite.toml"),
        r#"id = "t-gen"
version = "1"
kind = "generate"
template = "chat"
system_prompt = "簡潔に答えてください。"
metrics = ["exact"]
[sampling]
max_tokens = 6
"#,
    );
    write(
        &p.join("t-gen/cases.jsonl"),
        r#"{"id": "fuji", "input": "日本で一番高い山は？", "reference": "富士山", "lang": "ja"}
{"id": "capital", "input": "日本の首都は？", "reference": "東京", "lang": "ja"}
{"id": "multi", "messages": [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "はい"}, {"role": "user", "content": "1+1は？"}], "reference": "2", "lang": "ja"}
"#,
    );
    write(
        &p.join("t-choice/suite.toml"),
        r#"id = "t-choice"
version = "1"
kind = "choice"
template = "raw"
"#,
    );
    write(
        &p.join("t-choice/cases.jsonl"),
        r#"{"id": "c1", "input": "日本の首都は", "choices": ["東京", "大阪", "京都"], "expected": 0, "lang": "ja"}
{"id": "c2", "input": "The capital of France is", "choices": [" Paris", " Rome"], "expected": 1, "lang": "en"}
"#,
    );
    write(
        &p.join("t-ppl/suite.toml"),
        r#"id = "t-ppl"
version = "1"
kind = "perplexity"
template = "raw"
"#,
    );
    write(
        &p.join("t-ppl/cases.jsonl"),
        r#"{"id": "p1", "reference": "富士山は日本で一番高い山です。", "lang": "ja"}
{"id": "p2", "input": "問い:", "reference": "答えは東京です。", "lang": "ja"}
"#,
    );
    p
}

fn plan(prompts: &Path, ids: &[&str]) -> Plan {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let suites = hakaru_suites::select(prompts, &ids).unwrap();
    let mut plan = Plan::new(suites);
    plan.prompts = Some(prompts.to_path_buf());
    plan.argv = vec!["hakaru".into(), "run".into()];
    plan
}

const ALL: &[&str] = &["t-gen", "t-choice", "t-ppl"];

fn samples(dir: &Path) -> Vec<SampleRecord> {
    std::fs::read_to_string(dir.join(SAMPLES_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// samples.jsonl with the `timings` field of every line removed, re-serialized in key order as
/// written.
fn without_timings(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(SAMPLES_FILE))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Map<String, Value> = serde_json::from_str(l).unwrap();
            assert!(
                v.remove("timings").is_some(),
                "every line has a timings field"
            );
            serde_json::to_string(&v).unwrap() + "\n"
        })
        .collect()
}

fn keys(s: &[SampleRecord]) -> Vec<(String, String, usize)> {
    s.iter()
        .map(|r| (r.suite.clone(), r.case_id.clone(), r.repeat))
        .collect()
}

/// Stops the run after `n` samples.
struct StopAfter(usize);
impl Reporter for StopAfter {
    fn case_finished(&mut self, _s: &SampleRecord) -> ControlFlow<()> {
        self.0 -= 1;
        if self.0 == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn full_run(tmp: &Path, p: &Plan) -> RunOutcome {
    let mut b = backend();
    run(&mut b, p, &tmp.join("runs"), &mut NullReporter).unwrap()
}

#[test]
fn full_run_writes_every_case_once_with_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    let mut p = plan(&pr, ALL);
    p.repeats = 2;
    let out = full_run(tmp.path(), &p);
    assert!(!out.interrupted);
    assert_eq!(out.ran, (3 + 2 + 2) * 2);
    assert_eq!(out.errors, 0, "{:?}", samples(&out.dir));

    // The directory is named <UTC timestamp>-<model>-<6 hex> and holds exactly the two files.
    let name = out.dir.file_name().unwrap().to_str().unwrap().to_string();
    let parts: Vec<&str> = name.splitn(2, '-').collect();
    assert_eq!(parts[0].len(), 16, "{name}");
    assert!(name.contains("-tiny-qwen2-"), "{name}");
    let mut files: Vec<String> = std::fs::read_dir(&out.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, [RUN_FILE, SAMPLES_FILE]);

    // Every case × repeat exactly once, in plan order.
    let s = samples(&out.dir);
    let mut want = Vec::new();
    for (suite, cases) in [
        ("t-gen", &["fuji", "capital", "multi"][..]),
        ("t-choice", &["c1", "c2"][..]),
        ("t-ppl", &["p1", "p2"][..]),
    ] {
        for c in cases {
            for r in 0..2 {
                want.push((suite.to_string(), c.to_string(), r));
            }
        }
    }
    assert_eq!(keys(&s), want);

    // Per kind: generate has output, timings and exact scores; choice has per-choice logprobs;
    // perplexity has finite per-char perplexity.
    let fuji = &s[0];
    assert_eq!(fuji.prompt_sha256.len(), 64);
    assert!(fuji.output.is_some() && fuji.timings.is_some());
    assert_eq!(fuji.reference.as_deref(), Some("富士山"));
    assert_eq!(fuji.input.as_deref(), Some("日本で一番高い山は？"));
    assert!(fuji.completion_tokens.unwrap() <= 6);
    assert!(fuji.scores["exact"]["match"].is_boolean());
    let multi = s.iter().find(|r| r.case_id == "multi").unwrap();
    assert_eq!(
        multi.input.as_deref(),
        Some("1+1は？"),
        "the last user turn"
    );
    let c1 = s.iter().find(|r| r.case_id == "c1").unwrap();
    let ch = &c1.scores["choice"];
    assert_eq!(ch["logprobs"].as_array().unwrap().len(), 3);
    assert!(ch["logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x.as_f64().unwrap() < 0.0));
    assert_eq!(ch["chars"], serde_json::json!([2, 2, 2]));
    let predicted = ch["predicted"].as_u64().unwrap() as usize;
    assert_eq!(
        c1.output.as_deref(),
        Some(["東京", "大阪", "京都"][predicted])
    );
    assert_eq!(ch["correct"], predicted == 0);
    let p1 = s.iter().find(|r| r.case_id == "p1").unwrap();
    assert_eq!(p1.scores["perplexity"]["chars"], 15);
    let ppc = p1.scores["perplexity"]["perplexity_per_char"]
        .as_f64()
        .unwrap();
    assert!(ppc.is_finite() && ppc > 1.0, "{ppc}");

    // run.json is a complete RunRecord with provenance and summaries.
    let rec: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(out.dir.join(RUN_FILE)).unwrap()).unwrap();
    assert_eq!(rec, out.record);
    assert_eq!(rec.status, RunStatus::Complete);
    assert_eq!(rec.run_id, name);
    let pv = &rec.provenance;
    assert_eq!(pv.harness.version, env!("CARGO_PKG_VERSION"));
    assert!(pv.host.cpu_cores >= 1 && pv.host.memory_bytes > 0);
    assert_eq!(pv.device.name, "cpu");
    assert_eq!(pv.model.architecture, "Qwen2ForCausalLM");
    assert_eq!(pv.model.kind, "local");
    assert!(pv.model.files.iter().all(|f| f.sha256.len() == 64));
    assert!(pv.model.tokenizer_sha256.is_some() && pv.model.chat_template_sha256.is_some());
    assert_eq!(pv.repeats, 2);
    assert_eq!(pv.suites.len(), 3);
    assert!(pv.suites.iter().all(|s| s.content_hash.len() == 64));
    assert_eq!(pv.suite_sampling["t-gen"].max_tokens, 6);
    assert_eq!(pv.argv, ["hakaru", "run"]);
    assert!(pv.started_at.ends_with('Z') && pv.finished_at.is_some());
    assert_eq!(pv.prompts.as_deref(), Some(pr.to_str().unwrap()));
    let gen = &rec.summary[0];
    assert_eq!(
        (gen.suite.as_str(), gen.cases, gen.samples, gen.errors),
        ("t-gen", 3, 6, 0)
    );
    let m = &gen.metrics["exact.match"];
    assert_eq!(m.n, 3, "repeats are averaged per case");
    let choice = &rec.summary[1];
    assert!(choice.metrics.contains_key("choice.correct"));
    assert!(choice.metrics.contains_key("choice.correct_norm"));
    let ppl = &rec.summary[2];
    let m = &ppl.metrics["perplexity.perplexity_per_char"];
    assert!(m.mean > 1.0 && m.ci_low.is_some());
}

#[test]
fn identical_runs_give_identical_samples_apart_from_timings() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    let mut p = plan(&pr, ALL);
    // Seeded sampling, so the seeds matter, not just greedy argmax.
    p.sampling = SamplingOverride {
        temperature: Some(0.9),
        top_p: Some(0.95),
        ..Default::default()
    };
    p.seed = 7;
    p.repeats = 2;
    let a = full_run(tmp.path(), &p);
    let b = full_run(tmp.path(), &p);
    assert_ne!(a.dir, b.dir);
    let ta = without_timings(&a.dir);
    assert_eq!(ta, without_timings(&b.dir));
    // The repeats are sampled with different seeds: at least one case's two outputs differ.
    let s = samples(&a.dir);
    let gen: Vec<_> = s.iter().filter(|r| r.suite == "t-gen").collect();
    assert!(
        gen.chunks(2).any(|pair| pair[0].output != pair[1].output),
        "repeats share a seed: {gen:?}"
    );
    // A different run seed changes the outputs.
    p.seed = 8;
    let c = full_run(tmp.path(), &p);
    assert_ne!(ta, without_timings(&c.dir));
}

#[test]
fn interrupted_run_resumes_without_repeating_or_losing_a_case() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    let p = plan(&pr, ALL);
    let reference = full_run(tmp.path(), &p);

    // Stopped after 4 samples (mid-suite: t-gen has 3, t-choice 2).
    let mut b = backend();
    let out = run(&mut b, &p, &tmp.path().join("runs"), &mut StopAfter(4)).unwrap();
    assert!(out.interrupted);
    assert_eq!(out.ran, 4);
    assert_eq!(samples(&out.dir).len(), 4);
    let stored = read_run(&out.dir).unwrap();
    assert_eq!(stored.status, RunStatus::Running);
    assert!(stored.provenance.finished_at.is_none());

    let resumed = resume(
        &out.dir,
        &ResumeOptions::default(),
        &mut b,
        &mut NullReporter,
    )
    .unwrap();
    assert_eq!((resumed.already_done, resumed.ran), (4, 3));
    assert!(!resumed.interrupted);
    assert_eq!(resumed.record.status, RunStatus::Complete);
    assert_eq!(resumed.record.provenance.resumed_at.len(), 1);
    assert_eq!(without_timings(&out.dir), without_timings(&reference.dir));
    assert_eq!(resumed.record.summary, reference.record.summary);

    // Resuming a complete run does nothing.
    let before = std::fs::read(out.dir.join(RUN_FILE)).unwrap();
    let again = resume(
        &out.dir,
        &ResumeOptions::default(),
        &mut b,
        &mut NullReporter,
    )
    .unwrap();
    assert_eq!(again.ran, 0);
    assert_eq!(std::fs::read(out.dir.join(RUN_FILE)).unwrap(), before);
}

/// A kill at any instant leaves complete lines plus a torn one; the torn one is redone.
#[test]
fn torn_last_line_is_dropped_and_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    let p = plan(&pr, &["t-gen", "t-choice"]);
    let reference = full_run(tmp.path(), &p);
    let full = std::fs::read(reference.dir.join(SAMPLES_FILE)).unwrap();
    let ends: Vec<usize> = full
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let run_json = std::fs::read_to_string(reference.dir.join(RUN_FILE)).unwrap();
    let mut running: Value = serde_json::from_str(&run_json).unwrap();
    running["status"] = "running".into();
    running["provenance"]["finished_at"] = Value::Null;

    let mut b = backend();
    // Cut in the middle of the third line, just before its newline, and just after the second.
    for (n, cut) in [
        (2, ends[1] + (ends[2] - ends[1]) / 2),
        (2, ends[2] - 1),
        (2, ends[1]),
        (0, 7),
    ] {
        let dir = tmp.path().join(format!("killed-{cut}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(SAMPLES_FILE), &full[..cut]).unwrap();
        std::fs::write(dir.join(RUN_FILE), serde_json::to_string(&running).unwrap()).unwrap();
        let out = resume(&dir, &ResumeOptions::default(), &mut b, &mut NullReporter).unwrap();
        assert_eq!(out.already_done, n, "cut at {cut}");
        assert_eq!(out.ran, ends.len() - n, "cut at {cut}");
        let s = samples(&dir);
        assert_eq!(keys(&s), keys(&samples(&reference.dir)), "cut at {cut}");
        assert_eq!(
            without_timings(&dir),
            without_timings(&reference.dir),
            "cut at {cut}"
        );
    }
}

#[test]
fn resume_is_refused_when_the_suite_or_a_setting_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    let p = plan(&pr, &["t-gen", "t-choice"]);
    let mut b = backend();
    let out = run(&mut b, &p, &tmp.path().join("runs"), &mut StopAfter(2)).unwrap();
    let before = std::fs::read(out.dir.join(SAMPLES_FILE)).unwrap();

    // A changed case file.
    let cases = pr.join("t-gen/cases.jsonl");
    let original = std::fs::read_to_string(&cases).unwrap();
    std::fs::write(&cases, original.replace("富士山\"", "富士山。\"")).unwrap();
    let opts = ResumeOptions {
        seed: Some(5),
        ..Default::default()
    };
    let e = resume(&out.dir, &opts, &mut b, &mut NullReporter).unwrap_err();
    assert!(matches!(e, RunError::Refused { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("suite `t-gen`: its files in"), "{msg}");
    assert!(msg.contains("content hash was"), "{msg}");
    assert!(
        msg.contains("seed: the run used 0, --seed asks for 5"),
        "{msg}"
    );
    assert!(
        !msg.contains("t-choice"),
        "only what differs is named: {msg}"
    );
    assert_eq!(
        std::fs::read(out.dir.join(SAMPLES_FILE)).unwrap(),
        before,
        "nothing written"
    );

    // Restored suite, but other sampling and another model.
    std::fs::write(&cases, &original).unwrap();
    let opts = ResumeOptions {
        sampling: SamplingOverride {
            max_tokens: Some(99),
            ..Default::default()
        },
        ..Default::default()
    };
    let msg = resume(&out.dir, &opts, &mut b, &mut NullReporter)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("sampling of suite `t-gen`: the run used temperature 0, top_p 1, top_k 0, max_tokens 6, the flags ask for temperature 0, top_p 1, top_k 0, max_tokens 99"), "{msg}");
    let llama_dir = root().join("fixtures/models/tiny-llama");
    let r = llama_dir.to_str().unwrap().to_string();
    let opened = hakaru_engine::open::open(
        &r,
        &hakaru_engine::hub::ResolveOptions::default(),
        &hakaru_engine::load::LoadOptions::default(),
    )
    .unwrap();
    let mut llama = CandleBackend::new(opened, r);
    let msg = resume(
        &out.dir,
        &ResumeOptions::default(),
        &mut llama,
        &mut NullReporter,
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains(
            "model architecture: the run used Qwen2ForCausalLM, this model has LlamaForCausalLM"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("model file `model.safetensors`: sha256 was"),
        "{msg}"
    );

    // Nothing changed: it resumes.
    let ok = resume(
        &out.dir,
        &ResumeOptions::default(),
        &mut b,
        &mut NullReporter,
    )
    .unwrap();
    assert_eq!(ok.ran, 3);
}

#[test]
fn a_failing_case_is_recorded_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    // A prompt longer than the model's 16384 positions, between two good cases.
    let long = "あ".repeat(40_000);
    write(
        &pr.join("t-gen/cases.jsonl"),
        &format!(
            "{{\"id\": \"ok1\", \"input\": \"こんにちは\", \"reference\": \"x\"}}\n{{\"id\": \"too-long\", \"input\": \"{long}\", \"reference\": \"x\"}}\n{{\"id\": \"ok2\", \"input\": \"さようなら\", \"reference\": \"x\"}}\n"
        ),
    );
    let p = plan(&pr, &["t-gen"]);
    let out = full_run(tmp.path(), &p);
    assert_eq!(out.errors, 1);
    assert_eq!(out.record.status, RunStatus::CompleteWithErrors);
    let s = samples(&out.dir);
    assert_eq!(keys(&s).len(), 3);
    let bad = &s[1];
    assert_eq!(bad.case_id, "too-long");
    let e = bad.error.as_deref().unwrap();
    assert!(
        e.starts_with("generating: ") && e.contains("max_position_embeddings"),
        "{e}"
    );
    assert!(bad.output.is_none() && bad.scores.is_empty());
    assert_eq!(bad.prompt_sha256.len(), 64, "the prompt was rendered");
    assert!(s[0].error.is_none() && s[2].error.is_none());
    let sum = &out.record.summary[0];
    assert_eq!((sum.samples, sum.errors), (3, 1));
    assert_eq!(sum.metrics["exact.match"].n, 2);
}

#[test]
fn plans_with_unknown_scorers_are_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    write(
        &pr.join("t-gen/suite.toml"),
        "id = \"t-gen\"\nversion = \"1\"\nkind = \"generate\"\nmetrics = [\"exact\", \"bleu\"]\n",
    );
    write(
        &pr.join("t-ppl/suite.toml"),
        "id = \"t-ppl\"\nversion = \"1\"\nkind = \"perplexity\"\nmetrics = [\"perplexity\", \"exact\"]\n",
    );
    let p = plan(&pr, &["t-gen", "t-ppl"]);
    let mut b = backend();
    let runs = tmp.path().join("runs");
    let e = run(&mut b, &p, &runs, &mut NullReporter)
        .unwrap_err()
        .to_string();
    let gen_toml = pr.join("t-gen").join("suite.toml");
    assert!(
        e.contains(&format!(
            "{}: metrics: scorer `bleu` is not known; known scorers: chrf, exact",
            gen_toml.display()
        )),
        "{e}"
    );
    assert!(
        e.contains("scorer `exact` scores a response, and perplexity suites produce none"),
        "{e}"
    );
    assert!(!runs.exists(), "nothing was written");
}

#[test]
fn throughput_suites_record_their_tests_after_the_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    write(
        &pr.join("t-speed/suite.toml"),
        "id = \"t-speed\"\nversion = \"1\"\nkind = \"throughput\"\n[throughput]\nprompt = [8]\ngen = [4]\nrepetitions = 2\nwarmup = 0\n",
    );
    let p = plan(&pr, &["t-speed", "t-choice"]);
    let out = full_run(tmp.path(), &p);
    assert_eq!(out.ran, 2);
    assert!(samples(&out.dir).iter().all(|s| s.suite == "t-choice"));
    let rows = &out.record.throughput;
    let names: Vec<&str> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(names, ["pp8", "tg4"]);
    assert!(rows
        .iter()
        .all(|r| r.suite.as_deref() == Some("t-speed") && r.samples.len() == 2));
    assert_eq!(rows[1].itl_ms.as_ref().unwrap().n, 8);
    assert!(
        rows[1].bandwidth.is_some(),
        "CPU runs compare tg with the bandwidth ceiling"
    );
    assert_eq!(out.record.summary[0].samples, 0);
    // Stored in run.json, as read back.
    assert_eq!(read_run(&out.dir).unwrap().throughput, *rows);
}

#[test]
fn rescore_recomputes_from_stored_samples_without_touching_them() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path());
    let p = plan(&pr, ALL);
    let out = full_run(tmp.path(), &p);
    // Tamper with the stored scores, as if an older scorer had written them.
    let path = out.dir.join(SAMPLES_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[0]["scores"]["exact"]["match"] = true.into();
    lines[0]["output"] = "富士山".into();
    lines[3]["scores"]["choice"]["predicted"] = 99.into();
    let tampered: String = lines
        .iter()
        .map(|v| serde_json::to_string(v).unwrap() + "\n")
        .collect();
    std::fs::write(&path, &tampered).unwrap();
    let run_json = std::fs::read(out.dir.join(RUN_FILE)).unwrap();

    let r = rescore(&out.dir, &RescoreOptions::default()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        tampered,
        "samples.jsonl untouched"
    );
    assert_eq!(
        std::fs::read(out.dir.join(RUN_FILE)).unwrap(),
        run_json,
        "run.json untouched"
    );
    let name = r.run_json.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("run.rescored-") && name.ends_with(".json"),
        "{name}"
    );
    let new: Vec<SampleRecord> = std::fs::read_to_string(&r.samples)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(new.len(), 7);
    // The output now equals the reference: the current scorer says so.
    assert_eq!(new[0].scores["exact"]["match"], true);
    assert_eq!(new[0].scores["exact"]["response_normalized"], "富士山");
    // The built-in choice measure is recomputed from the stored logprobs.
    let orig: Vec<SampleRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(new[3].scores["choice"], orig[3].scores["choice"]);
    assert_eq!(r.changed, 2, "the fuji score and the tampered choice");
    let stored: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(&r.run_json).unwrap()).unwrap();
    assert_eq!(stored, r.record);
    assert!(stored
        .provenance
        .warnings
        .iter()
        .any(|w| w.starts_with("rescored at ")));
    let m = &stored.summary[0].metrics["exact.match"];
    assert_eq!(m.n, 3);
    assert!(m.mean >= 1.0 / 3.0);

    // Explicit scorers; unknown ones are refused.
    let e = rescore(
        &out.dir,
        &RescoreOptions {
            scorers: Some(vec!["nope".into()]),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`nope` is not known; known scorers: chrf, exact"),
        "{e}"
    );
    let again = rescore(
        &out.dir,
        &RescoreOptions {
            scorers: Some(vec!["exact".into()]),
        },
    )
    .unwrap();
    assert_ne!(
        again.run_json, r.run_json,
        "a second rescore never overwrites the first"
    );
}

/// A run.json and samples.jsonl of schema version 1, as hakaru wrote them, must keep loading.
#[test]
fn frozen_schema_v1_run_loads_and_rescores() {
    let frozen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/frozen/v1");
    let rec = read_run(&frozen).unwrap();
    assert_eq!(rec.schema_version, 1);
    assert_eq!(rec.status, RunStatus::Complete);
    assert!(!rec.provenance.suites.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    for f in [RUN_FILE, SAMPLES_FILE] {
        std::fs::copy(frozen.join(f), tmp.path().join(f)).unwrap();
    }
    let r = rescore(tmp.path(), &RescoreOptions::default()).unwrap();
    assert_eq!(r.changed, 0, "today's scorers agree with the frozen scores");
    // The same overall metrics; breakdowns by language are added (v1 samples carry no tags).
    assert_eq!(r.record.summary.len(), rec.summary.len());
    for (now, then) in r.record.summary.iter().zip(&rec.summary) {
        assert_eq!(
            (&now.suite, now.cases, now.samples, now.errors, &now.metrics),
            (
                &then.suite,
                then.cases,
                then.samples,
                then.errors,
                &then.metrics
            )
        );
        assert!(then.by_lang.is_empty() && then.by_tag.is_empty());
        assert_eq!(
            now.by_lang["ja"], now.metrics,
            "every frozen case is in Japanese"
        );
    }
}

/// A few-shot case is scored on the examples' text followed by its own: the same log-probs as a
/// zero-shot case written out with that text. The examples are recorded, with tags and language
/// breakdowns in the summary.
#[test]
fn few_shot_prompts_are_the_examples_then_the_case() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("prompts");
    write(
        &p.join("fs/suite.toml"),
        "id = \"fs\"\nversion = \"1\"\nkind = \"choice\"\ntemplate = \"raw\"\n[few_shot]\nn = 1\nseparator = \"\\n---\\n\"\n",
    );
    write(
        &p.join("fs/cases.jsonl"),
        r#"{"id": "a", "input": "日本の首都は", "choices": ["東京", "大阪"], "expected": 0, "lang": "ja", "tags": ["geo"]}
{"id": "b", "input": "富士山がある県は", "choices": ["長野", "静岡"], "expected": 1, "lang": "ja", "tags": ["geo"]}
"#,
    );
    write(
        &p.join("zs/suite.toml"),
        "id = \"zs\"\nversion = \"1\"\nkind = \"choice\"\ntemplate = \"raw\"\n",
    );
    write(
        &p.join("zs/cases.jsonl"),
        r#"{"id": "a", "input": "富士山がある県は静岡\n---\n日本の首都は", "choices": ["東京", "大阪"], "expected": 0}
{"id": "b", "input": "日本の首都は東京\n---\n富士山がある県は", "choices": ["長野", "静岡"], "expected": 1}
"#,
    );
    let mut b = backend();
    let out = run(
        &mut b,
        &plan(&p, &["fs", "zs"]),
        &tmp.path().join("runs"),
        &mut NullReporter,
    )
    .unwrap();
    let s = samples(&out.dir);
    assert_eq!(s[0].shots, ["b"]);
    assert_eq!(s[1].shots, ["a"]);
    assert_eq!(s[0].tags, ["geo"]);
    for i in 0..2 {
        assert_eq!(
            s[i].scores["choice"]["logprobs"],
            s[i + 2].scores["choice"]["logprobs"]
        );
        assert!(s[i + 2].shots.is_empty());
    }
    assert_eq!(out.record.provenance.suite_few_shot.get("fs"), Some(&1));
    assert!(!out.record.provenance.suite_few_shot.contains_key("zs"));
    let fs = &out.record.summary[0];
    assert_eq!(fs.by_tag["geo"]["choice.correct"].n, 2);
    assert_eq!(
        fs.by_lang["ja"]["choice.correct"],
        fs.metrics["choice.correct"]
    );

    // --num-fewshot 0 turns the examples off.
    let mut zero = plan(&p, &["fs"]);
    zero.few_shot = Some(0);
    let out0 = run(&mut b, &zero, &tmp.path().join("runs"), &mut NullReporter).unwrap();
    let s0 = samples(&out0.dir);
    assert!(s0[0].shots.is_empty());
    assert_ne!(s0[0].prompt_sha256, s[0].prompt_sha256);
}

/// A dataset read with `--dataset` runs like a suite, and `--resume` finds its files again.
#[test]
fn datasets_run_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("jcqa");
    write(
        &data.join("valid-v1.1.json"),
        r#"{"q_id": 7, "question": "朝に食べる食事は？", "choice0": "夕食", "choice1": "朝食", "choice2": "夜食", "choice3": "間食", "choice4": "昼食", "label": 1}
{"q_id": 8, "question": "魚が住む場所は？", "choice0": "砂漠", "choice1": "山頂", "choice2": "川", "choice3": "屋根", "choice4": "雲", "label": 2}
"#,
    );
    write(
        &data.join("train-v1.1.json"),
        r#"{"q_id": 1, "question": "猫が鳴く声は？", "choice0": "ワン", "choice1": "ニャー", "choice2": "モー", "choice3": "コケコッコー", "choice4": "ブー", "label": 1}
"#,
    );
    let (suite, info) = hakaru_suites::datasets::load("jcommonsenseqa", &data).unwrap();
    let mut pl = Plan::new(vec![suite]);
    pl.datasets.insert("jcommonsenseqa".into(), info);
    pl.prompts = Some(prompts(tmp.path()));
    struct StopAfterOne;
    impl Reporter for StopAfterOne {
        fn case_finished(&mut self, _: &SampleRecord) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
    }
    let mut b = backend();
    let out = run(&mut b, &pl, &tmp.path().join("runs"), &mut StopAfterOne).unwrap();
    assert!(out.interrupted);
    let s = samples(&out.dir);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].shots, ["q1"], "the training split gives the example");
    assert_eq!(
        out.record.provenance.datasets["jcommonsenseqa"].files.len(),
        2
    );
    let done = resume(
        &out.dir,
        &ResumeOptions::default(),
        &mut b,
        &mut NullReporter,
    )
    .unwrap();
    assert_eq!((done.ran, done.already_done), (1, 1));
    assert_eq!(done.record.status, RunStatus::Complete);
    assert_eq!(done.record.summary[0].metrics["choice.correct"].n, 2);

    // Changed dataset files refuse the resume, like changed suites.
    let again = run(&mut b, &pl, &tmp.path().join("runs"), &mut StopAfterOne).unwrap();
    write(&data.join("train-v1.1.json"), "{\"q_id\": 1, \"question\": \"x\", \"choice0\": \"a\", \"choice1\": \"b\", \"choice2\": \"c\", \"choice3\": \"d\", \"choice4\": \"e\", \"label\": 0}\n");
    let e = resume(
        &again.dir,
        &ResumeOptions::default(),
        &mut b,
        &mut NullReporter,
    )
    .unwrap_err();
    assert!(e.to_string().contains("suite `jcommonsenseqa`"), "{e}");
}

/// The `Backend` methods a test's wrapper passes unchanged to the fixture backend it holds as
/// `inner`.
macro_rules! pass_to_inner {
    () => {
        fn describe(&self) -> hakaru_engine::backend::BackendInfo {
            self.inner.describe()
        }
        fn render_prompt(
            &self,
            messages: &Value,
            system: Option<&str>,
            mode: hakaru_engine::backend::PromptMode,
        ) -> hakaru_engine::Result<hakaru_engine::backend::Prompt> {
            self.inner.render_prompt(messages, system, mode)
        }
        fn score_continuations(
            &mut self,
            context: &hakaru_engine::backend::Prompt,
            continuations: &[String],
        ) -> hakaru_engine::Result<Vec<hakaru_engine::backend::ContinuationScore>> {
            self.inner.score_continuations(context, continuations)
        }
        fn perplexity(
            &mut self,
            text: &str,
        ) -> hakaru_engine::Result<hakaru_engine::backend::TextScore> {
            self.inner.perplexity(text)
        }
    };
}

/// A judge that answers with a fixed text (on top of the fixture model, which renders and
/// describes), recording the prompts it was given.
struct Scripted {
    inner: CandleBackend,
    reply: String,
    prompts: Vec<String>,
}

impl hakaru_engine::backend::Backend for Scripted {
    pass_to_inner!();
    fn generate(
        &mut self,
        prompt: &hakaru_engine::backend::Prompt,
        opts: &hakaru_engine::generate::GenerateOptions,
    ) -> hakaru_engine::Result<hakaru_engine::generate::Generation> {
        self.prompts.push(prompt.text.clone());
        let mut o = opts.clone();
        o.max_tokens = 1;
        let mut g = self.inner.generate(prompt, &o)?;
        g.text = self.reply.clone();
        Ok(g)
    }
}

/// `--judge`: suites naming a rubric get a `judge` score with the raw answer, the verdict and the
/// rubric's hash; provenance names the judge; resuming needs the same judge.
#[test]
fn judged_runs_record_the_verdict_and_its_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let p = prompts(tmp.path());
    let toml = std::fs::read_to_string(p.join("t-gen/suite.toml")).unwrap();
    write(
        &p.join("t-gen/suite.toml"),
        &toml.replace(
            "metrics = [\"exact\"]",
            "metrics = [\"exact\"]\njudge = \"ja-quality\"",
        ),
    );
    let rubric = root().join("prompts/judge/ja-quality.toml");
    write(
        &p.join("judge/ja-quality.toml"),
        &std::fs::read_to_string(&rubric).unwrap(),
    );
    let pl = plan(&p, &["t-gen", "t-choice"]);
    let mut b = backend();
    let mut jb = Scripted {
        inner: backend(),
        reply: "要点は合っています。\n評価：4".into(),
        prompts: Vec::new(),
    };
    let rubrics = hakaru_runner::judge::rubrics_for(&p, &pl.suites).unwrap();
    let mut judge = hakaru_runner::Judge {
        backend: &mut jb,
        rubrics: rubrics.clone(),
    };
    let out = hakaru_runner::run_judged(
        &mut b,
        Some(&mut judge),
        &pl,
        &tmp.path().join("runs"),
        &mut NullReporter,
    )
    .unwrap();
    let s = samples(&out.dir);
    let judged: Vec<&SampleRecord> = s
        .iter()
        .filter(|r| r.scores.contains_key("judge"))
        .collect();
    assert_eq!(judged.len(), 3, "every t-gen case, no choice case");
    let j = &judged[0].scores["judge"];
    assert_eq!(j["score"], 4);
    assert_eq!(j["parsed"], true);
    assert_eq!(j["rubric"], "ja-quality");
    assert_eq!(j["output"], "要点は合っています。\n評価：4");
    assert_eq!(j["rubric_sha256"].as_str().unwrap().len(), 64);
    // The judge saw the question, the reference and the answer.
    assert_eq!(jb.prompts.len(), 3);
    let first = &jb.prompts[0];
    assert!(
        first.contains("日本で一番高い山は？") && first.contains("富士山"),
        "{first}"
    );
    assert!(
        first.contains(judged[0].output.as_deref().unwrap()),
        "{first}"
    );
    let m = &out.record.summary[0].metrics["judge.score"];
    assert_eq!((m.n, m.mean), (3, 4.0));
    let info = out.record.provenance.judge.as_ref().unwrap();
    assert_eq!(info.rubrics[0].name, "judge/ja-quality.toml");

    // An answer without a verdict is recorded, unparsed.
    jb.reply = "よくわかりません".into();
    let mut judge = hakaru_runner::Judge {
        backend: &mut jb,
        rubrics,
    };
    let out2 = hakaru_runner::run_judged(
        &mut b,
        Some(&mut judge),
        &plan(&p, &["t-gen"]),
        &tmp.path().join("runs"),
        &mut NullReporter,
    )
    .unwrap();
    let s2 = samples(&out2.dir);
    assert_eq!(s2[0].scores["judge"]["parsed"], false);
    assert_eq!(s2[0].scores["judge"]["score"], Value::Null);

    // Resuming a judged run without the judge is refused.
    let e = resume(
        &out.dir,
        &ResumeOptions::default(),
        &mut b,
        &mut NullReporter,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("judge: the run was judged by"),
        "{e}"
    );
}

/// The fixture model whose throughput tests take fixed times: the prompt's pass 2 ms, each
/// step 1 ms, so each row's tokens per second follow from what it counts.
struct Clocked {
    inner: CandleBackend,
}

impl hakaru_engine::backend::Backend for Clocked {
    pass_to_inner!();
    fn generate(
        &mut self,
        prompt: &hakaru_engine::backend::Prompt,
        opts: &hakaru_engine::generate::GenerateOptions,
    ) -> hakaru_engine::Result<hakaru_engine::generate::Generation> {
        self.inner.generate(prompt, opts)
    }
    fn bench(
        &mut self,
        test: &hakaru_engine::bench::BenchTest,
    ) -> hakaru_engine::Result<hakaru_engine::bench::BenchTiming> {
        Ok(hakaru_engine::bench::BenchTiming {
            prompt_seconds: (test.n_prompt > 0).then_some(0.002),
            step_seconds: vec![0.001; test.n_gen],
        })
    }
    /// Each request as `bench` times it, all of them in 10 ms.
    fn bench_concurrent(
        &mut self,
        test: &hakaru_engine::bench::BenchTest,
    ) -> hakaru_engine::Result<(Vec<hakaru_engine::bench::BenchTiming>, f64)> {
        let one = self.bench(test)?;
        Ok((vec![one; test.concurrency], 0.010))
    }
}

/// Tokens per second as llama-bench counts them, on fixed times (timing on a shared machine
/// is too noisy to check the count): pp the prompt's tokens over its pass, tg the steps over
/// theirs, pp+tg both over both; the latencies are the times given.
#[test]
fn bench_rows_count_the_tokens_of_what_they_time() {
    use hakaru_runner::bench::{run_test, tests, BenchContext, BenchPlan};
    let plan = BenchPlan {
        prompts: vec![4],
        gens: vec![4],
        depths: vec![0],
        pgs: vec![(4, 4)],
        repetitions: 3,
        warmup: 0,
        seed: 0,
        concurrency: vec![1],
    };
    let mut cx = BenchContext {
        api_prices: Vec::new(),
        load_seconds: None,
        ceiling_gb_s: None,
        ceiling_probe: None,
        price: None,
        ja_chars_per_token: None,
    };
    let mut b = Clocked { inner: backend() };
    let rows: Vec<_> = tests(&plan)
        .iter()
        .map(|t| run_test(&mut b, t, &plan, &mut cx).unwrap())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(names, ["pp4", "tg4", "pp4+tg4"]);
    // 4 tokens in 2 ms; 4 in 4 × 1 ms; 8 in 6 ms.
    for (r, want) in rows.iter().zip([2000.0, 1000.0, 8.0 / 0.006]) {
        assert_eq!(r.samples.len(), 3, "{}", r.test);
        for s in &r.samples {
            assert!(
                (s - want).abs() < 1e-6 * want,
                "{}: {s} t/s, want {want}",
                r.test
            );
        }
        assert!((r.median - want).abs() < 1e-6 * want, "{}", r.test);
    }
    let ms =
        |l: &Option<hakaru_types::Latency>| l.as_ref().map(|l| ((l.p50 * 1e6).round() / 1e6, l.n));
    assert_eq!(ms(&rows[0].ttft_ms), Some((2.0, 3)));
    assert_eq!(ms(&rows[0].itl_ms), None);
    assert_eq!(ms(&rows[1].ttft_ms), None);
    assert_eq!(ms(&rows[1].itl_ms), Some((1.0, 12)));
    assert_eq!(ms(&rows[2].ttft_ms), Some((2.0, 3)));
    assert_eq!(ms(&rows[2].itl_ms), Some((1.0, 12)));

    // Three requests at once: all their tokens over the 10 ms they took together (a tg
    // request's first token too), and every request's latencies.
    let plan = BenchPlan {
        concurrency: vec![3],
        ..plan
    };
    let rows: Vec<_> = tests(&plan)
        .iter()
        .map(|t| run_test(&mut b, t, &plan, &mut cx).unwrap())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(names, ["pp4@c3", "tg4@c3", "pp4+tg4@c3"]);
    for (r, want) in rows.iter().zip([1200.0, 1500.0, 2400.0]) {
        assert_eq!(r.concurrency, 3);
        assert!(
            (r.median - want).abs() < 1e-6 * want,
            "{}: {}",
            r.test,
            r.median
        );
    }
    assert_eq!(ms(&rows[1].itl_ms), Some((1.0, 36)));
    assert_eq!(ms(&rows[2].ttft_ms), Some((2.0, 9)));
}
