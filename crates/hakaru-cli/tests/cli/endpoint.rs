//! `hakaru run`, `bench` and `generate` against an OpenAI-compatible endpoint: mockito's local
//! HTTP server (127.0.0.1) stands in for vLLM or llama.cpp's server.

use std::io::Write;
use std::time::Duration;

use mockito::{Matcher, Server, ServerGuard};
use serde_json::{json, Value};

use crate::hakaru;

fn serving() -> ServerGuard {
    let mut server = Server::new();
    server
        .mock("GET", "/v1/models")
        .with_header("content-type", "application/json")
        .with_body(json!({"data": [{"id": "org/served", "max_model_len": 8192}]}).to_string())
        .create();
    server
}

fn reference(server: &ServerGuard) -> String {
    format!("{}/v1#org/served", server.url())
}

#[test]
fn a_run_through_an_endpoint_generates_scores_choices_and_records_the_server() {
    let mut server = serving();
    let chat = server
        .mock("POST", "/v1/chat/completions")
        .match_header("authorization", "Bearer sk-local")
        .match_body(Matcher::PartialJson(json!({
            "model": "org/served",
            "max_tokens": 8,
            "temperature": 0.0,
            "stream": true
        })))
        .match_request(|r| {
            let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
            v["messages"][0]["content"]
                .as_str()
                .is_some_and(|c| c.ends_with("日本の首都は？"))
        })
        .with_header("content-type", "text/event-stream")
        .with_body(
            [
                json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
                json!({"choices": [{"index": 0, "delta": {"content": "東京"}, "finish_reason": "stop"}]}),
                json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}}),
            ]
            .iter()
            .map(|e| format!("data: {e}\n\n"))
            .collect::<String>()
                + "data: [DONE]\n\n",
        )
        .expect(2)
        .create();
    // One token a character (BOS 1 first when asked), and an echo whose log-probabilities are
    // -id/10000: 東京 scores higher than 大阪.
    server
        .mock("POST", "/tokenize")
        .with_body_from_request(|r| {
            let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
            let mut ids: Vec<u32> = Vec::new();
            if v["add_special_tokens"] == true {
                ids.push(1);
            }
            ids.extend(
                v["prompt"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .map(|c| c as u32 % 5000 + 10),
            );
            json!({ "tokens": ids }).to_string().into_bytes()
        })
        .create();
    server
        .mock("POST", "/v1/completions")
        .match_body(Matcher::PartialJson(json!({"echo": true, "logprobs": 1})))
        .with_body_from_request(|r| {
            let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
            let mut lps = vec![Value::Null];
            lps.extend(
                v["prompt"].as_array().unwrap()[1..]
                    .iter()
                    .map(|t| json!(-t.as_f64().unwrap() / 1e4)),
            );
            lps.push(json!(0.0));
            json!({"choices": [{"text": "", "logprobs": {"token_logprobs": lps}}]})
                .to_string()
                .into_bytes()
        })
        .create();
    let tmp = tempfile::tempdir().unwrap();
    // Two generate cases, a choice case and a perplexity case.
    let p = crate::run::prompts(tmp.path(), 2, 8);
    let out_dir = tmp.path().join("runs");
    let out = hakaru()
        .env("HAKARU_API_KEY", "sk-local")
        .args(["run", "--model", &reference(&server)])
        .arg("--prompts")
        .arg(&p)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    chat.assert();
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let m = &run["provenance"]["model"];
    assert_eq!(m["kind"], "endpoint");
    assert_eq!(m["reference"], reference(&server));
    assert_eq!(run["provenance"]["device"]["name"], "endpoint");
    let warnings = run["provenance"]["warnings"].to_string();
    assert!(
        warnings.contains("OpenAI-compatible endpoint"),
        "{warnings}"
    );
    let samples_text = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    for text in [run.to_string(), samples_text, stderr.to_string()] {
        assert!(
            !text.contains("sk-local"),
            "the key is never recorded: {text}"
        );
    }
    let samples: Vec<Value> = std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let gen: Vec<&Value> = samples.iter().filter(|s| s["suite"] == "c-gen").collect();
    assert_eq!(gen.len(), 2);
    for s in &gen {
        assert_eq!(s["output"], "東京");
        assert_eq!(
            (s["prompt_tokens"].as_u64(), s["completion_tokens"].as_u64()),
            (Some(12), Some(2))
        );
    }
    for s in &gen {
        assert_eq!(s["scores"]["exact"]["match"], true, "{s}");
    }
    let choice = samples.iter().find(|s| s["suite"] == "c-choice").unwrap();
    assert_eq!(choice["output"], "東京", "{choice}");
    let lps = &choice["scores"]["choice"]["logprobs"];
    assert!((lps[0].as_f64().unwrap() + 0.1641).abs() < 1e-9, "{choice}");
    // Every character of the text after the BOS.
    let ppl = samples.iter().find(|s| s["suite"] == "c-ppl").unwrap();
    let f = &ppl["scores"]["perplexity"];
    assert_eq!(
        (f["tokens"].as_u64(), f["chars"].as_u64()),
        (Some(15), Some(15)),
        "{ppl}"
    );
    let want: f64 = "富士山は日本で一番高い山です。"
        .chars()
        .map(|c| -((c as u32 % 5000 + 10) as f64) / 1e4)
        .sum();
    assert!(
        (f["logprob_sum"].as_f64().unwrap() - want).abs() < 1e-9,
        "{ppl}"
    );

    // Resuming reopens the endpoint from the recorded reference, with no load flags.
    let out = hakaru()
        .env("HAKARU_API_KEY", "sk-local")
        .args(["run", "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("already complete"), "{stderr}");
}

#[test]
fn bench_times_an_endpoint_and_leaves_out_what_it_cannot_see() {
    let mut server = serving();
    let paced = |n: usize, prompt_tokens: usize| {
        move |w: &mut dyn Write| {
            for i in 0..n {
                std::thread::sleep(Duration::from_millis(5));
                let c = json!({"choices": [{"index": 0, "text": format!("t{i}"), "finish_reason": null}]});
                w.write_all(format!("data: {c}\n\n").as_bytes())?;
            }
            let usage = json!({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n}});
            w.write_all(format!("data: {usage}\n\ndata: [DONE]\n\n").as_bytes())
        }
    };
    let pp = server
        .mock("POST", "/v1/completions")
        .match_body(Matcher::PartialJson(
            json!({"max_tokens": 1, "ignore_eos": true}),
        ))
        .with_header("content-type", "text/event-stream")
        .with_chunked_body(paced(1, 16))
        .expect(3 + 3 * 2)
        .create();
    let tg = server
        .mock("POST", "/v1/completions")
        .match_body(Matcher::PartialJson(
            json!({"max_tokens": 4, "ignore_eos": true}),
        ))
        .with_header("content-type", "text/event-stream")
        .with_chunked_body(paced(4, 1))
        .expect(3 + 3 * 2)
        .create();
    let tmp = tempfile::tempdir().unwrap();
    let out = hakaru()
        .args(["bench", "--model", &reference(&server)])
        .args([
            "-p", "16", "-n", "3", "-r", "2", "--warmup", "1", "-o", "json",
        ])
        .args(["-c", "1,2", "--price-per-hour", "2.5"])
        .arg("--prompts")
        .arg(tmp.path())
        .arg("--prices")
        .arg(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    pp.assert();
    tg.assert();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Each test alone, then two requests at once (a warm-up and two repetitions of each).
    let names: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(names, ["pp16", "pp16@c2", "tg3", "tg3@c2"]);
    let conc: Vec<u64> = rows
        .iter()
        .map(|r| r["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(conc, [1, 2, 1, 2]);
    // Latencies of every request: 2 repetitions × 2 requests × 3 steps.
    assert_eq!(
        rows[3]["itl_ms"]["n"].as_u64(),
        Some(12),
        "{}",
        rows[3]["itl_ms"]
    );
    for r in &rows {
        assert_eq!(r["model"]["kind"], "endpoint");
        assert_eq!(r["samples"].as_array().unwrap().len(), 2);
        assert!(
            r["energy"].is_null() && r["energy_note"].as_str().unwrap().contains("endpoint"),
            "{r}"
        );
        assert!(
            r["peak_rss_bytes"].is_null()
                && r["load_seconds"].is_null()
                && r["bandwidth"].is_null(),
            "{r}"
        );
        assert!(
            r["cost"]["usd_per_million_tokens"].as_f64().unwrap() > 0.0,
            "{r}"
        );
    }
    // The prompt's token came 5 ms after the request at the earliest: at most 3,200 tokens a
    // second for 16.
    let pp_median = rows[0]["median"].as_f64().unwrap();
    assert!(pp_median > 0.0 && pp_median <= 3200.0, "{pp_median}");
    assert_eq!(
        rows[2]["itl_ms"]["n"].as_u64(),
        Some(6),
        "{}",
        rows[2]["itl_ms"]
    );
}

#[test]
fn load_flags_and_local_only_commands_refuse_an_endpoint() {
    let server = serving();
    let r = reference(&server);
    let out = hakaru()
        .args([
            "bench", "--model", &r, "--device", "cuda", "-p", "8", "-n", "0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--device") && stderr.contains("endpoint"),
        "{stderr}"
    );
    // The load flags go to a local judge when the measured model is an endpoint.
    let tmp = tempfile::tempdir().unwrap();
    let p = crate::run::prompts(tmp.path(), 1, 2);
    let run = |judge: Option<&str>| {
        let mut cmd = hakaru();
        cmd.args(["run", "--model", &r, "--threads", "1", "--limit", "0"])
            .arg("--prompts")
            .arg(&p)
            .arg("--out")
            .arg(tmp.path().join("runs"));
        if let Some(j) = judge {
            cmd.args(["--judge", j]);
        }
        cmd.output().unwrap()
    };
    let out = run(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--threads: `http"), "{stderr}");
    let judge = crate::model_dir("tiny-qwen2");
    let out = run(Some(judge.to_str().unwrap()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let local = crate::model_dir("tiny-qwen2");
    let out = hakaru()
        .args([
            "bench",
            "--model",
            local.to_str().unwrap(),
            "-c",
            "2",
            "-p",
            "8",
            "-n",
            "0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("concurrent requests need an endpoint (--model http://"),
        "{stderr}"
    );

    let out = hakaru().args(["pull", &r]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("endpoint") && stderr.contains("hakaru run"),
        "{stderr}"
    );
}

#[test]
fn generate_prints_an_endpoints_answer_escaped() {
    let mut server = serving();
    server
        .mock("POST", "/v1/chat/completions")
        .with_header("content-type", "text/event-stream")
        .with_body(format!(
            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
            json!({"choices": [{"index": 0, "delta": {"reasoning_content": "考え中"}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "はい\u{1b}[31m"}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
        ))
        .create();
    let out = hakaru()
        .args([
            "generate",
            "--model",
            &reference(&server),
            "-p",
            "こんにちは",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("<think>\n考え中\n</think>"), "{stdout}");
    assert!(
        stdout.contains("はい\\u{1b}[31m") && !stdout.contains('\u{1b}'),
        "{stdout}"
    );
    assert!(stderr.contains("3 prompt tokens, 4 generated"), "{stderr}");
}
