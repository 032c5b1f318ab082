//! `hakaru run`, `hakaru score` and `hakaru rescore` on the tiny fixture model, with suites
//! written by each test into a temp prompts directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hakaru_types::{RunRecord, RunStatus};
use serde_json::Value;

use crate::{hakaru, model_dir, write};

/// A generate suite of `n` cases (exact), a choice suite and a perplexity suite.
pub fn prompts(dir: &Path, n: usize, max_tokens: usize) -> PathBuf {
    let p = dir.join("prompts");
    write(
        &p.join("c-gen/suite.toml"),
        &format!("id = \"c-gen\"\nversion = \"1\"\nkind = \"generate\"\nmetrics = [\"exact\"]\n[sampling]\nmax_tokens = {max_tokens}\n"),
    );
    let cases: String = (0..n)
        .map(|i| format!("{{\"id\": \"q{i}\", \"input\": \"質問{i}: 日本の首都は？\", \"reference\": \"東京\", \"lang\": \"ja\"}}\n"))
        .collect();
    write(&p.join("c-gen/cases.jsonl"), &cases);
    write(
        &p.join("c-choice/suite.toml"),
        "id = \"c-choice\"\nversion = \"1\"\nkind = \"choice\"\ntemplate = \"raw\"\n",
    );
    write(
        &p.join("c-choice/cases.jsonl"),
        "{\"id\": \"c1\", \"input\": \"日本の首都は\", \"choices\": [\"東京\", \"大阪\"], \"expected\": 0}\n",
    );
    write(
        &p.join("c-ppl/suite.toml"),
        "id = \"c-ppl\"\nversion = \"1\"\nkind = \"perplexity\"\ntemplate = \"raw\"\n",
    );
    write(
        &p.join("c-ppl/cases.jsonl"),
        "{\"id\": \"p1\", \"reference\": \"富士山は日本で一番高い山です。\"}\n",
    );
    p
}

fn model() -> String {
    model_dir("tiny-qwen2").to_str().unwrap().to_string()
}

fn run_dir_of(stdout: &[u8]) -> PathBuf {
    let s = String::from_utf8_lossy(stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is the run directory alone: {s:?}");
    let p = PathBuf::from(lines[0]);
    assert!(p.is_dir(), "{p:?}");
    p
}

fn sample_keys(dir: &Path) -> Vec<(String, String, u64)> {
    std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["suite"].as_str().unwrap().to_string(),
                v["case_id"].as_str().unwrap().to_string(),
                v["repeat"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn without_timings(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("timings");
            v
        })
        .collect()
}

fn record(dir: &Path) -> RunRecord {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn run_prints_the_run_directory_and_writes_a_complete_run() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path(), 3, 4);
    let out_dir = tmp.path().join("runs");
    let out = hakaru()
        .args(["run", "--model", &model(), "--limit", "2", "--repeats", "2"])
        .arg("--prompts")
        .arg(&pr)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let dir = run_dir_of(&out.stdout);
    assert_eq!(dir.parent().unwrap(), out_dir);
    // Plain progress lines, not a bar, when stderr is not a terminal.
    assert!(
        stderr.contains("suite c-gen (generate): 4 samples"),
        "{stderr}"
    );
    assert!(stderr.contains("[1/8] c-choice/c1 #0: ok"), "{stderr}");
    assert!(stderr.contains("c-gen: exact.match "), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr}");

    // --limit 2 of 3 generate cases, 2 repeats each; suites in id order.
    let keys = sample_keys(&dir);
    assert_eq!(keys.len(), 8);
    assert_eq!(keys[0], ("c-choice".into(), "c1".into(), 0));
    assert!(keys.iter().all(|k| k.1 != "q2"), "{keys:?}");
    let r = record(&dir);
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!(r.provenance.limit, Some(2));
    assert_eq!(r.provenance.repeats, 2);
    assert_eq!(r.provenance.argv[1..3], ["run", "--model"]);
    assert!(r
        .provenance
        .prompts
        .as_deref()
        .unwrap()
        .ends_with("prompts"));
}

#[test]
fn a_failed_case_exits_1_and_a_broken_plan_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path(), 1, 2);
    let long = "あ".repeat(40_000);
    write(
        &pr.join("c-gen/cases.jsonl"),
        &format!("{{\"id\": \"long\", \"input\": \"{long}\", \"reference\": \"x\"}}\n{{\"id\": \"short\", \"input\": \"hi\", \"reference\": \"x\"}}\n"),
    );
    let out = hakaru()
        .args(["run", "--model", &model(), "--suite", "c-gen"])
        .arg("--prompts")
        .arg(&pr)
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("c-gen/long #0: failed: generating: "),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 2 samples failed"), "{stderr}");
    let dir = run_dir_of(&out.stdout);
    assert_eq!(
        sample_keys(&dir).len(),
        2,
        "the run went on after the failure"
    );
    assert_eq!(record(&dir).status, RunStatus::CompleteWithErrors);

    // An unknown suite: exit 2, nothing written.
    let out = hakaru()
        .args(["run", "--model", &model(), "--suite", "nope"])
        .arg("--prompts")
        .arg(&pr)
        .arg("--out")
        .arg(tmp.path().join("runs2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(!tmp.path().join("runs2").exists());
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test leaves none behind.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn kill_now(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill_now();
    }
}

#[test]
fn a_run_killed_mid_way_resumes_to_the_same_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path(), 120, 24);
    let runs = tmp.path().join("runs");
    let args = |cmd: &mut assert_cmd::Command| {
        cmd.args(["run", "--model", &model(), "--suite", "c-gen,c-choice"])
            .arg("--prompts")
            .arg(&pr)
            .arg("--out")
            .arg(&runs);
    };
    // An uninterrupted run, for comparison.
    let mut full = hakaru();
    args(&mut full);
    let out = full.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = run_dir_of(&out.stdout);
    let total = sample_keys(&reference).len();
    assert_eq!(total, 121);

    // The same run, killed (SIGKILL) once a few samples are written.
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("hakaru"));
    cmd.env("NO_COLOR", "1")
        .args(["run", "--model", &model(), "--suite", "c-gen,c-choice"])
        .arg("--prompts")
        .arg(&pr)
        .arg("--out")
        .arg(&runs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let start = Instant::now();
    let killed = loop {
        let dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|p| *p != reference)
            .collect();
        if let Some(d) = dirs.first() {
            let n = std::fs::read(d.join("samples.jsonl"))
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0);
            if n >= 3 {
                child.kill_now();
                break d.clone();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never wrote samples"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let written = sample_keys(&killed).len();
    assert!(
        written < total,
        "killed after the run finished ({written} samples); make it longer"
    );
    assert_eq!(record(&killed).status, RunStatus::Running);

    // A flag that disagrees with the run is refused, naming it.
    let out = hakaru()
        .arg("run")
        .arg("--resume")
        .arg(&killed)
        .args(["--seed", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seed: the run used 0, --seed asks for 3"),
        "{stderr}"
    );

    let out = hakaru()
        .arg("run")
        .arg("--resume")
        .arg(&killed)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(run_dir_of(&out.stdout), killed);
    assert!(stderr.contains("already done"), "{stderr}");
    // Every case once, and the same samples as the uninterrupted run (timings aside).
    assert_eq!(sample_keys(&killed), sample_keys(&reference));
    assert_eq!(without_timings(&killed), without_timings(&reference));
    let r = record(&killed);
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!(r.provenance.resumed_at.len(), 1);
}

#[test]
fn rescore_prints_the_new_record_and_leaves_the_run_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let pr = prompts(tmp.path(), 2, 3);
    let out = hakaru()
        .args(["run", "--model", &model()])
        .arg("--prompts")
        .arg(&pr)
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let dir = run_dir_of(&out.stdout);
    let samples = std::fs::read(dir.join("samples.jsonl")).unwrap();
    let run_json = std::fs::read(dir.join("run.json")).unwrap();

    let out = hakaru().arg("rescore").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(path.parent().unwrap(), dir);
    assert!(path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("run.rescored-"));
    let new: RunRecord = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        new.summary,
        record(&dir).summary,
        "same scorers, same summary"
    );
    assert!(stderr.contains("4 samples rescored, 0 changed"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("samples.jsonl")).unwrap(), samples);
    assert_eq!(std::fs::read(dir.join("run.json")).unwrap(), run_json);

    let out = hakaru().arg("rescore").arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run.json: cannot read"), "{stderr}");
}

#[test]
fn score_applies_a_scorer_to_an_external_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("responses.jsonl");
    write(
        &input,
        concat!(
            "{\"id\": \"a\", \"response\": \" ＴＯＫＹＯ \", \"reference\": \"TOKYO\", \"model\": \"api-x\"}\n",
            "\n",
            "{\"id\": 2, \"response\": \"大阪\", \"reference\": \"東京\"}\n",
            "{\"id\": \"c\", \"response\": \"x\"}\n",
            "not json\n",
        ),
    );
    let out = hakaru()
        .args(["score", "exact", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["match"], true);
    assert_eq!(lines[0]["response_normalized"], "TOKYO");
    assert_eq!(lines[1]["id"], 2);
    assert_eq!(lines[1]["match"], false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = input.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{name}:4: field `reference`: missing; scorer `exact` needs it"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{name}:5: not JSON")), "{stderr}");
    assert!(stderr.contains("2 of 4 lines"), "{stderr}");

    let out = hakaru()
        .args(["score", "bleu", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bleu") && stderr.contains("exact"),
        "{stderr}"
    );
}

#[test]
fn score_chrf_and_ja_fidelity_on_external_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("api.jsonl");
    write(
        &input,
        concat!(
            "{\"id\": \"ja\", \"response\": \"東京は日本の首都です。\", \"reference\": \"日本の首都は東京です。\"}\n",
            "{\"id\": \"zh\", \"response\": \"这个问题的答案是东京。\", \"reference\": \"答えは東京です。\"}\n",
        ),
    );
    let lines = |scorer: &str| -> Vec<Value> {
        let out = hakaru()
            .args(["score", scorer, "--input"])
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let chrf = lines("chrf");
    let want =
        hakaru_scorers::chrf::sentence_chrf("東京は日本の首都です。", "日本の首都は東京です。");
    assert!((chrf[0]["chrf"].as_f64().unwrap() - want).abs() < 1e-9);
    assert!(chrf[1]["chrf"].as_f64().unwrap() < chrf[0]["chrf"].as_f64().unwrap());
    let fid = lines("ja-fidelity");
    assert_eq!(fid[0]["id"], "ja");
    assert_eq!(fid[0]["in_japanese"], true);
    assert_eq!(fid[0]["zh_leak"], false);
    assert_eq!(fid[1]["language"], "zh");
    assert_eq!(fid[1]["zh_leak"], true);
}
