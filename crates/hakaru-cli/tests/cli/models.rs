//! `hakaru models`: the registry listing.

use serde_json::Value;

const FAMILIES: [&str; 6] = [
    "qwen2.5",
    "qwen3",
    "r1-distill-qwen",
    "r1-distill-llama",
    "llama3.1",
    "swallow",
];

fn hakaru() -> assert_cmd::Command {
    let mut cmd = crate::hakaru();
    cmd.env_remove("HAKARU_REGISTRY").env("NO_COLOR", "1");
    cmd
}

fn models_json(extra: &[&str]) -> Value {
    let out = hakaru()
        .arg("models")
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

#[test]
fn lists_every_family_and_model() {
    let out = hakaru()
        .args(["models", "--memory-gib", "8"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for f in FAMILIES {
        assert!(
            text.lines().any(|l| l.split_whitespace().nth(1) == Some(f)),
            "no {f} row in:\n{text}"
        );
    }
    for name in [
        "qwen2.5-0.5b",
        "qwen2.5-32b",
        "qwen3-0.6b",
        "qwen3-32b",
        "r1-distill-qwen-1.5b",
        "r1-distill-llama-8b",
        "llama3.1-8b",
        "swallow-8b",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "no row for {name}:\n{text}"
        );
    }
    let row = text.lines().find(|l| l.starts_with("qwen2.5-7b ")).unwrap();
    assert!(
        row.contains("7.62B") && row.contains("15.23") && row.contains("Qwen/Qwen2.5-7B-Instruct"),
        "{row}"
    );
    assert!(text.contains("8.0 GiB available"), "{text}");
}

#[test]
fn json_parses_and_carries_shapes_and_memory() {
    let v = models_json(&["--memory-gib", "12"]);
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 19);
    assert_eq!(v["registry"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["available_bytes"], 12u64 << 30);
    for f in FAMILIES {
        assert!(models.iter().any(|m| m["family"] == f), "no {f}");
    }
    let q7 = models.iter().find(|m| m["name"] == "qwen2.5-7b").unwrap();
    assert_eq!(q7["params"], 7_615_616_512u64);
    assert_eq!(q7["config"]["hidden_size"], 3584);
    assert_eq!(q7["memory"]["bf16"]["weights_bytes"], 2 * 7_615_616_512u64);
    assert_eq!(q7["memory"]["bf16"]["fits"], false);
    // Q4_K_M fits 12 GiB unless the prefill's copies push it over (on AMX CPUs, where candle
    // keeps two of Q4_K weights); a 3B model fits with every copy counted.
    let q4 = &q7["memory"]["Q4_K_M"];
    let needed = q4["needed_bytes"].as_u64().unwrap();
    assert!(
        needed
            > q4["weights_bytes"].as_u64().unwrap()
                + q4["kv_cache_bytes"].as_u64().unwrap()
                + q4["prefill_copy_bytes"].as_u64().unwrap(),
        "{q4}"
    );
    assert_eq!(q4["fits"], needed <= 12u64 << 30, "{q4}");
    let q3 = models.iter().find(|m| m["name"] == "qwen2.5-3b").unwrap();
    assert_eq!(q3["memory"]["Q4_K_M"]["fits"], true);
    assert!(q7["gguf"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["quant"] == "Q4_K_M"));
}

#[test]
fn fits_follow_the_memory_given() {
    let none = models_json(&["--memory-gib", "0"]);
    let all = models_json(&["--memory-gib", "100000"]);
    for (v, expected) in [(none, false), (all, true)] {
        for m in v["models"].as_array().unwrap() {
            for p in ["bf16", "Q8_0", "Q4_K_M"] {
                assert_eq!(m["memory"][p]["fits"], expected, "{} {p}", m["name"]);
            }
        }
    }
}

#[test]
fn a_custom_registry_file_replaces_the_builtin_one() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("models.toml");
    std::fs::write(
        &path,
        r#"version = 1
[[models]]
name = "tiny"
repo = "me/tiny"
family = "llama3.1"
arch = "LlamaForCausalLM"
hidden_size = 64
intermediate_size = 128
num_hidden_layers = 2
num_attention_heads = 4
num_key_value_heads = 2
vocab_size = 100
max_position_embeddings = 2048
rope_theta = 10000.0
rms_norm_eps = 1e-5
tie_word_embeddings = true
"#,
    )
    .unwrap();
    let v = models_json(&["--registry", path.to_str().unwrap()]);
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], "tiny");
    assert_eq!(v["registry"]["origin"], path.to_str().unwrap());

    std::fs::write(&path, "version = 1\n[[models]]\nname = \"x\"\n").unwrap();
    let out = hakaru()
        .args(["models", "--registry", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(path.to_str().unwrap()) && err.contains("missing field"),
        "{err}"
    );
}
