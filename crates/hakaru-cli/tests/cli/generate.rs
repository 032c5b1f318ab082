//! `hakaru generate` and `hakaru logits` on the fixture models, and synthetic models.

use serde_json::Value;

use crate::{hakaru, model_dir};

fn json_out(args: &[&str]) -> Value {
    let out = hakaru().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "hakaru {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn logits_all_and_last_positions() {
    let dir = model_dir("tiny-qwen2");
    let m = dir.to_str().unwrap();
    let all = rows(&json_out(&[
        "logits",
        "--model",
        m,
        "--ids",
        "5,17,300,433,12",
    ]));
    assert_eq!(all.len(), 5);
    assert!(
        all.iter().all(|r| r.len() == 512),
        "one logit per vocabulary row (config vocab_size 512)"
    );
    let last = rows(&json_out(&[
        "logits",
        "--model",
        m,
        "--ids",
        "5,17,300,433,12",
        "--positions",
        "last",
    ]));
    assert_eq!(last.len(), 1);
    for (a, b) in last[0].iter().zip(&all[4]) {
        assert!(
            (a - b).abs() < 1e-5,
            "last-position logits must equal the last row of all positions"
        );
    }
    // bf16 changes the numbers, a little.
    let bf = rows(&json_out(&[
        "logits",
        "--model",
        m,
        "--ids",
        "5,17,300,433,12",
        "--dtype",
        "bf16",
    ]));
    let d = bf
        .iter()
        .flatten()
        .zip(all.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(d > 0.0 && d < 1.0, "bf16 vs f32 max difference {d}");
}

#[test]
fn logits_errors_are_clear() {
    let dir = model_dir("tiny-qwen2");
    let out = hakaru()
        .args([
            "logits",
            "--model",
            dir.to_str().unwrap(),
            "--ids",
            "1,99999",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99999") && err.contains("vocabulary"), "{err}");
    let out = hakaru()
        .args([
            "logits",
            "--model",
            dir.to_str().unwrap(),
            "--ids",
            "1",
            "--dtype",
            "f8",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("use f32, bf16 or f16"));
}

#[test]
fn generate_json_has_text_tokens_and_timings() {
    let dir = model_dir("tiny-qwen3");
    let args = [
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "日本の首都は？",
        "--max-tokens",
        "12",
        "--json",
    ];
    let v = json_out(&args);
    for key in [
        "text",
        "token_ids",
        "prompt_tokens",
        "finish_reason",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "time_to_first_token_ms",
    ] {
        assert!(v.get(key).is_some(), "missing `{key}` in {v}");
    }
    assert!(
        v.get("reasoning").is_some(),
        "`reasoning` is always present (null when none)"
    );
    let ids = v["token_ids"].as_array().unwrap();
    assert!(!ids.is_empty() && ids.len() <= 12);
    assert!(
        v["prompt_tokens"].as_u64().unwrap() > 10,
        "the chat template wraps the prompt"
    );
    let reason = v["finish_reason"].as_str().unwrap();
    assert!(
        reason == "stop" || (reason == "length" && ids.len() == 12),
        "{reason} after {} tokens",
        ids.len()
    );
    // Greedy decoding is deterministic.
    let again = json_out(&args);
    for k in [
        "text",
        "reasoning",
        "token_ids",
        "finish_reason",
        "prompt_tokens",
    ] {
        assert_eq!(
            again[k], v[k],
            "`{k}` differs between two identical greedy runs"
        );
    }
}

#[test]
fn raw_prompt_with_ignore_eos_runs_to_the_limit_and_streams_the_same_text() {
    let dir = model_dir("tiny-llama");
    let base = [
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--raw",
        "--prompt",
        "今日は良い天気です。",
        "--ignore-eos",
        "--max-tokens",
        "20",
    ];
    let v = json_out(&[&base[..], &["--json"]].concat());
    assert_eq!(v["token_ids"].as_array().unwrap().len(), 20);
    assert_eq!(v["finish_reason"], "length");
    // Streaming prints the same text as the JSON result, as valid UTF-8.
    let out = hakaru().args(base).output().unwrap();
    assert!(out.status.success());
    let streamed = String::from_utf8(out.stdout).expect("streamed output is valid UTF-8");
    let mut want = String::new();
    if let Some(r) = v["reasoning"].as_str() {
        want.push_str(r);
    }
    want.push_str(v["text"].as_str().unwrap());
    let strip = |s: &str| {
        s.replace(['\n', ' '], "")
            .replace("<think>", "")
            .replace("</think>", "")
    };
    // The terminal stream shows control characters as \u{..} escapes (model output is untrusted).
    let escaped: String = want
        .chars()
        .map(|c| match c.is_control() && c != '\n' && c != '\t' {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect();
    assert_eq!(strip(&streamed), strip(&escaped));
}

#[test]
fn seeded_sampling_is_reproducible() {
    let dir = model_dir("tiny-qwen2");
    let run = |seed: &str| {
        let v = json_out(&[
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--raw",
            "--prompt",
            "hello",
            "--ignore-eos",
            "--max-tokens",
            "16",
            "--temperature",
            "1.0",
            "--top-p",
            "0.9",
            "--seed",
            seed,
            "--json",
        ]);
        v["token_ids"].clone()
    };
    assert_eq!(run("1"), run("1"));
    assert_ne!(
        run("1"),
        run("2"),
        "different seeds should draw differently on 16 tokens"
    );
}

#[test]
fn synthetic_models_from_a_config_in_any_precision() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"], "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 1000, "max_position_embeddings": 512, "tie_word_embeddings": true
    });
    let path = dir.path().join("config.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let model = format!("synthetic:{}", path.display());
    for extra in [
        &["--dtype", "f32"][..],
        &["--dtype", "bf16"],
        &["--quant", "Q8_0"],
        &["--quant", "Q4_K_M"],
        &["--quant", "Q6_K"],
    ] {
        let v = json_out(
            &[
                &["logits", "--model", model.as_str(), "--ids", "1,2,3"][..],
                extra,
            ]
            .concat(),
        );
        let r = rows(&v);
        assert_eq!(r.len(), 3, "{extra:?}");
        assert!(
            r.iter()
                .all(|row| row.len() == 1000 && row.iter().all(|x| x.is_finite())),
            "{extra:?}"
        );
    }
    // A synthetic model has no tokenizer: generate explains what to use instead.
    let out = hakaru()
        .args(["generate", "--model", model.as_str(), "--prompt", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tokenizer"));
    let out = hakaru()
        .args(["logits", "--model", "synthetic:no-such-model", "--ids", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("hakaru models"));
}

#[test]
fn a_model_too_big_for_memory_is_refused_before_loading() {
    // Qwen2.5-32B in f32 is 131 GB of weights: more than this machine (or CI) has.
    let out = hakaru()
        .args([
            "logits",
            "--model",
            "synthetic:qwen2.5-32b",
            "--dtype",
            "f32",
            "--ids",
            "1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if crate_available_memory_gib() < 140.0 {
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("needs") && err.contains("GiB") && err.contains("available"),
            "{err}"
        );
    }
}

fn crate_available_memory_gib() -> f64 {
    hakaru_engine::registry::available_memory() as f64 / (1u64 << 30) as f64
}
