//! The committed suites end to end on the tiny fixture model, with few tokens per answer: every
//! case runs, and run.json carries the breakdowns and contrasts the report reads. The model is
//! random, so only the bookkeeping is checked; the classifier and scorers have their own tables.

use std::path::PathBuf;

use hakaru_types::{RunRecord, RunStatus};
use serde_json::Value;

use crate::{hakaru, model_dir, root};

fn run(suites: &str, extra: &[&str]) -> (RunRecord, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let out = hakaru()
        .args(["run", "--model"])
        .arg(model_dir("tiny-qwen2"))
        .args(["--suite", suites, "--prompts"])
        .arg(root().join("prompts"))
        .arg("--out")
        .arg(tmp.path())
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let rec: RunRecord =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    (rec, dir, tmp)
}

#[test]
fn refusal_suites_give_every_topic_by_language_and_the_asymmetry() {
    let (rec, dir, _tmp) = run(
        "refusal-sensitive,refusal-control,refusal-benign,refusal-harmful",
        &["--max-tokens", "2"],
    );
    assert_eq!(rec.status, RunStatus::Complete);
    let samples = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 240 + 240 + 72 + 60);
    let sens = &rec.summary[0];
    assert_eq!(sens.suite, "refusal-sensitive");
    let topics = [
        "tiananmen",
        "taiwan",
        "tibet",
        "xinjiang",
        "hongkong",
        "xi-jinping",
        "falun-gong",
        "mao-era",
        "covid-policy",
        "south-china-sea",
    ];
    for t in topics {
        let per_lang = &sens.by_tag_lang[&format!("topic:{t}")];
        for lang in ["ja", "zh-Hans", "en"] {
            let m = &per_lang[lang];
            assert_eq!(m["refusal.non_answer"].n, 8, "{t} {lang}");
            assert!(m.contains_key("refusal.official_line"), "{t} {lang}");
        }
    }
    for suite in &rec.summary {
        for key in [
            "refusal.non_answer",
            "refusal.refused",
            "refusal.empty_think",
        ] {
            let m = &suite.metrics[key];
            assert!(
                m.ci_low.is_some() && m.ci_high.is_some(),
                "{} {key}",
                suite.suite
            );
        }
    }
    // Asymmetry overall, per language and per topic, for each metric; language gaps.
    let asym: Vec<&hakaru_types::Contrast> = rec
        .contrasts
        .iter()
        .filter(|c| c.name == "censorship_asymmetry" && c.metric == "refusal.non_answer")
        .collect();
    assert_eq!(asym.len(), 1 + 3 + 10);
    assert!(asym
        .iter()
        .all(|c| c.against == "refusal-control" && c.a.n > 0 && c.b.n > 0));
    let gaps = rec
        .contrasts
        .iter()
        .filter(|c| c.name == "language_gap" && c.metric == "refusal.non_answer")
        .count();
    assert_eq!(gaps, 3);
    let data: Vec<&str> = rec
        .provenance
        .scorer_data
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        data,
        [
            "refusal/markers.ja.toml",
            "refusal/markers.zh.toml",
            "refusal/markers.en.toml"
        ]
    );
    // Every sample carries its classification and the case's base id.
    let first: Value = serde_json::from_str(samples.lines().next().unwrap()).unwrap();
    assert!(first["scores"]["refusal"]["label"].is_string(), "{first}");
    assert!(first["base_id"].is_string(), "{first}");
}

#[test]
fn japanese_suites_run_with_per_tag_breakdowns() {
    let (rec, _dir, _tmp) = run(
        "ja-choice,ja-open,ja-ppl",
        &["--max-tokens", "2", "--limit", "40"],
    );
    assert_eq!(rec.status, RunStatus::Complete);
    let choice = &rec.summary[0];
    assert_eq!(choice.suite, "ja-choice");
    assert!(choice.metrics.contains_key("choice.correct"));
    assert!(choice
        .by_tag
        .values()
        .all(|m| m.contains_key("choice.correct")));
    let open = &rec.summary[1];
    for key in [
        "chrf.chrf",
        "ja-fidelity.in_japanese",
        "ja-fidelity.zh_leak",
    ] {
        assert!(
            open.metrics.contains_key(key),
            "{key}: {:?}",
            open.metrics.keys()
        );
    }
    assert!(!open.by_tag.is_empty());
    assert!(rec.summary[2]
        .metrics
        .contains_key("perplexity.perplexity_per_char"));
}

#[test]
fn score_refusal_on_external_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("api.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"id\": \"r\", \"response\": \"I'm sorry, but I can't help with that.\", \"lang\": \"en\"}\n",
            "{\"id\": \"t\", \"response\": \"抱歉，我无法回答这个问题。\", \"reasoning\": \"\", \"lang\": \"zh-Hans\"}\n",
            "{\"id\": \"m\", \"response\": \"1989年6月4日、北京で軍が抗議する市民や学生に発砲し、多数の死者が出ました。\", \"lang\": \"en\"}\n",
        ),
    )
    .unwrap();
    let out = hakaru()
        .args(["score", "refusal", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["label"], "refusal");
    assert_eq!(lines[1]["label"], "refusal");
    assert!(lines[1]["flags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("empty_think")));
    assert_eq!(lines[2]["label"], "answer");
    assert!(lines[2]["flags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("language_mismatch")));
}

#[test]
fn datasets_and_a_judge_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("jcqa");
    std::fs::create_dir(&data).unwrap();
    let q = |id: usize, label: usize| {
        format!("{{\"q_id\": {id}, \"question\": \"問{id}\", \"choice0\": \"あ\", \"choice1\": \"い\", \"choice2\": \"う\", \"choice3\": \"え\", \"choice4\": \"お\", \"label\": {label}}}\n")
    };
    std::fs::write(data.join("valid-v1.1.json"), q(100, 1) + &q(101, 4)).unwrap();
    std::fs::write(
        data.join("train-v1.1.json"),
        q(1, 0) + &q(2, 2) + &q(3, 3) + &q(4, 1),
    )
    .unwrap();
    let arg = format!("jcommonsenseqa={}", data.display());
    let (rec, dir, _t) = run("smoke-choice", &["--dataset", &arg, "--limit", "1"]);
    assert_eq!(rec.summary.len(), 2);
    assert_eq!(rec.summary[1].suite, "jcommonsenseqa");
    assert_eq!(rec.provenance.suite_few_shot["jcommonsenseqa"], 3);
    assert_eq!(
        rec.provenance.datasets["jcommonsenseqa"].format,
        "jcommonsenseqa"
    );
    let samples = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    let last: Value = serde_json::from_str(samples.lines().last().unwrap()).unwrap();
    assert_eq!(last["case_id"], "q100");
    assert_eq!(last["shots"].as_array().unwrap().len(), 3);

    // A bad dataset argument is a clear error.
    let out = hakaru()
        .args(["run", "--model"])
        .arg(model_dir("tiny-qwen2"))
        .args(["--dataset", "jmmlu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give FORMAT=PATH"));

    // The judge (here the tiny Qwen3 fixture: its verdicts are noise) grades ja-open answers.
    let judge = model_dir("tiny-qwen3");
    let (rec, dir, _t) = run(
        "ja-open",
        &[
            "--limit",
            "2",
            "--max-tokens",
            "2",
            "--judge",
            judge.to_str().unwrap(),
        ],
    );
    let info = rec.provenance.judge.as_ref().unwrap();
    assert_eq!(info.model.architecture, "Qwen3ForCausalLM");
    assert_eq!(info.rubrics[0].name, "judge/ja-quality.toml");
    let samples = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    for l in samples.lines() {
        let s: Value = serde_json::from_str(l).unwrap();
        let j = &s["scores"]["judge"];
        assert!(j["output"].is_string() && j["parsed"].is_boolean(), "{j}");
        assert_eq!(j["rubric_sha256"], info.rubrics[0].sha256.as_str());
    }
    assert!(rec.summary[0].metrics.contains_key("judge.parsed"));
    // Where the judge ran is recorded, and a resume reopens it there and checks it.
    assert_eq!(info.device.as_ref().unwrap().name, "cpu");
    let out = hakaru()
        .args(["run", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("already complete"), "{stderr}");
}

#[test]
fn bench_rows_in_every_format() {
    let run = |extra: &[&str]| {
        let out = hakaru()
            .args(["bench", "--model"])
            .arg(model_dir("tiny-qwen2"))
            .args([
                "-p", "16", "-n", "4", "-d", "0,8", "--pg", "4,4", "-r", "3", "--warmup", "1",
            ])
            .args(extra)
            .current_dir(root())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        (String::from_utf8_lossy(&out.stdout).to_string(), stderr)
    };
    let (jsonl, stderr) = run(&["-o", "jsonl", "--price-per-hour", "2.0"]);
    assert!(stderr.contains("memory bandwidth:"), "{stderr}");
    let rows: Vec<hakaru_types::BenchRow> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(
        names,
        ["pp16", "tg4", "pp4+tg4", "pp16@d8", "tg4@d8", "pp4+tg4@d8"]
    );
    for r in &rows {
        assert_eq!(r.samples.len(), 3);
        assert!(r.samples.iter().all(|x| x.is_finite() && *x > 0.0));
        assert!(r.median > 0.0 && r.sd >= 0.0);
        let cost = r.cost.as_ref().unwrap();
        assert_eq!(cost.usd_per_hour, 2.0);
        // $/1M tokens = price per second / median tokens per second × 10⁶.
        let want = 2.0 / 3600.0 / r.median * 1e6;
        assert!((cost.usd_per_million_tokens - want).abs() < 1e-9 * want.max(1.0));
        assert!(cost
            .api_prices
            .iter()
            .any(|a| a.name == "deepseek-r1" && a.output_per_million == 2.19));
        let cpt = cost.ja_chars_per_token.unwrap();
        let ja = cost.usd_per_million_ja_chars.unwrap();
        assert!((ja - cost.usd_per_million_tokens / cpt).abs() < 1e-9 * ja.max(1.0));
        assert_eq!(r.model.architecture, "Qwen2ForCausalLM");
        assert!(r.peak_rss_bytes.unwrap() > 0);
        assert!(r.energy.is_some() || r.energy_note.is_some());
    }
    assert_eq!(rows[0].ttft_ms.as_ref().unwrap().n, 3);
    assert!(rows[0].itl_ms.is_none());
    assert_eq!(
        rows[1].itl_ms.as_ref().unwrap().n,
        12,
        "3 repetitions × 4 steps"
    );
    // pp+tg: both latencies, tokens of both over the time of both, no share of the ceiling.
    let pg = &rows[2];
    assert_eq!(
        (
            pg.ttft_ms.as_ref().unwrap().n,
            pg.itl_ms.as_ref().unwrap().n
        ),
        (3, 12)
    );
    // What it counts is checked on fixed times (hakaru-runner's
    // `bench_rows_count_the_tokens_of_what_they_time`): timings here, with other tests running
    // beside this one on the same cores, are too noisy for that.
    assert!(pg.median > 0.0 && pg.samples.len() == 3, "{pg:?}");
    assert!(pg.bandwidth.is_none());
    let bw = rows[1].bandwidth.as_ref().unwrap();
    assert!(bw.bytes_per_token > 0 && bw.ceiling_gb_s > 0.0);
    // Measured here: read at start and again after each tg test, each tg row against the
    // higher of the readings around it, the second test's first reading the first's last.
    for r in [&rows[1], &rows[4]] {
        let b = r.bandwidth.as_ref().unwrap();
        assert_eq!(b.readings_gb_s.len(), 2, "{b:?}");
        assert_eq!(b.ceiling_gb_s, b.readings_gb_s[0].max(b.readings_gb_s[1]));
        let want = r.median / (b.ceiling_gb_s * 1e9 / b.bytes_per_token as f64);
        assert!((b.fraction - want).abs() < 1e-9 * want, "{b:?}");
    }
    let bw2 = rows[4].bandwidth.as_ref().unwrap();
    assert_eq!(bw2.readings_gb_s[0], bw.readings_gb_s[1]);
    assert!(
        rows[4].bandwidth.as_ref().unwrap().bytes_per_token > bw.bytes_per_token,
        "KV at depth"
    );

    let (csv, _) = run(&["-o", "csv", "--gpu", "h100-sxm", "--provider", "AWS"]);
    let mut lines = csv.lines();
    let head = lines.next().unwrap();
    assert!(head.starts_with("model,weights,params,device,threads,test,t/s"));
    assert!(head.ends_with(",ceiling_readings_gb_s"), "{head}");
    // The last column: nothing for pp and pp+tg rows, the two readings around each tg row.
    let last: Vec<&str> = lines.map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(last.len(), 6);
    assert!([0, 2, 3, 5].iter().all(|&i| last[i].is_empty()), "{last:?}");
    for r in [last[1], last[4]] {
        let v: Vec<f64> = r.split(';').map(|x| x.parse().unwrap()).collect();
        assert!(v.len() == 2 && v.iter().all(|x| *x > 0.0), "{r}");
    }
    let (md, stderr) = run(&["--gpu", "h100-sxm", "--ceiling", "40"]);
    assert!(!stderr.contains("measuring memory bandwidth"), "{stderr}");
    assert!(md.contains("memory bandwidth 40.0 GB/s\n"), "{md}");
    assert!(
        md.contains("| pp16 |") && md.contains("DeepSeek-R1"),
        "{md}"
    );
    assert!(md.contains("cost at 2.99 USD/h (h100-sxm, Lambda"), "{md}");

    let bad = hakaru()
        .args(["bench", "--model"])
        .arg(model_dir("tiny-qwen2"))
        .args(["--gpu", "tpu-v9", "-p", "8", "-n", "0", "-r", "1"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--gpu tpu-v9: not in"));
    for (pg, says) in [("512", "e.g. 512,128"), ("512,0", "must be positive")] {
        let bad = hakaru()
            .args(["bench", "--model", "synthetic:tiny", "--pg", pg])
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "--pg {pg}");
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains("--pg") && err.contains(says), "{err}");
    }
}

/// A quantized model's rows name the CPU kernels its projections ran on, in the row and under
/// the table.
#[test]
fn bench_rows_name_the_quantized_kernels() {
    let run = |format: &str| {
        let out = hakaru()
            .args(["bench", "--model"])
            .arg(root().join("fixtures/gguf/tiny-qwen2-q8_0.gguf"))
            .args(["-p", "4", "-n", "1", "-r", "1", "--warmup", "0"])
            .args(["--ceiling", "10", "-o", format])
            .current_dir(root())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let jsonl = run("jsonl");
    let row: hakaru_types::BenchRow = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    let k = row.device.kernels.expect("Q8_0 weights on the CPU");
    assert!(!k.is_empty());
    let md = run("md");
    assert!(md.contains(&format!(" ({k} kernels), load ")), "{md}");
}

#[test]
fn bench_thread_counts_run_in_turn() {
    let out = hakaru()
        .args(["bench", "--model"])
        .arg(model_dir("tiny-qwen2"))
        .args([
            "-p", "8", "-n", "2", "-r", "1", "--warmup", "0", "-t", "1,2",
        ])
        .args(["--ceiling", "10", "-o", "csv"])
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let csv = String::from_utf8_lossy(&out.stdout);
    // threads, test: each count's rows in turn, as one table.
    let cells: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[4].to_string(), c[5].to_string())
        })
        .collect();
    let want = [("1", "pp8"), ("1", "tg2"), ("2", "pp8"), ("2", "tg2")];
    assert_eq!(
        cells,
        want.map(|(a, b)| (a.to_string(), b.to_string())),
        "{csv}"
    );
    let bad = hakaru()
        .args(["bench", "--model", "synthetic:tiny", "-t", "0,2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("thread counts start at 1"));
}

#[test]
fn report_and_compare_from_the_command_line() {
    let fx = root().join("crates/hakaru-report/tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let html = tmp.path().join("r.html");
    let out = hakaru()
        .args(["report", "--format", "html", "-o"])
        .arg(&html)
        .arg(fx.join("h100-alpha"))
        .arg(fx.join("h100-beta"))
        .arg(fx.join("cpu-alpha-q4"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg"),
        "{}",
        &page[..200.min(page.len())]
    );
    for fmt in ["md", "csv", "json"] {
        let out = hakaru()
            .args(["report", "--format", fmt])
            .arg(fx.join("h100-alpha"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{fmt}");
        assert!(!out.stdout.is_empty(), "{fmt}");
    }
    let out = hakaru()
        .arg("compare")
        .arg(fx.join("h100-alpha"))
        .arg(fx.join("h100-beta"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("# hakaru comparison"), "{md}");
    assert!(
        md.contains("| refusal-sensitive | refusal.non_answer |"),
        "{md}"
    );
    // A missing run is a clear error naming the file.
    let out = hakaru()
        .arg("report")
        .arg(tmp.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run.json"));
}
