//! `hakaru pull` against a hub cache laid out in a temporary directory, offline.

use std::path::Path;

use hakaru_engine::hub::testing::{blob_of, sha256_hex, small_model_files, write_fake_hub_repo};
use serde_json::Value;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// `hakaru` with the hub cache at `cache`, offline, and no ambient token or registry.
fn hakaru(cache: &Path) -> assert_cmd::Command {
    let mut cmd = crate::hakaru();
    cmd.env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("hf-home"))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HAKARU_REGISTRY")
        .env("NO_COLOR", "1");
    cmd
}

fn cache_with_tiny_model() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let files = small_model_files();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_slice())).collect();
    write_fake_hub_repo(
        tmp.path(),
        "org/tiny",
        COMMIT,
        &files,
        &["model.safetensors"],
    );
    tmp
}

#[test]
fn pull_json_from_the_offline_cache() {
    let tmp = cache_with_tiny_model();
    let out = hakaru(tmp.path())
        .args(["pull", "org/tiny", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["repo"], "org/tiny");
    assert_eq!(v["kind"], "hub");
    assert_eq!(v["requested_revision"], "main");
    assert_eq!(v["commit_sha"], COMMIT);
    let files = v["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
    for (name, content) in small_model_files() {
        let f = files.iter().find(|f| f["name"] == name).unwrap();
        assert_eq!(f["sha256"], sha256_hex(&content), "{name}");
        assert_eq!(f["size"], content.len() as u64, "{name}");
    }
}

#[test]
fn pull_prints_a_table_for_a_pinned_commit() {
    let tmp = cache_with_tiny_model();
    let out = hakaru(tmp.path())
        .args(["pull", &format!("org/tiny@{COMMIT}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("commit    {COMMIT}")), "{text}");
    let weights = small_model_files()
        .into_iter()
        .find(|(n, _)| *n == "model.safetensors")
        .unwrap()
        .1;
    let row = text
        .lines()
        .find(|l| l.ends_with("model.safetensors"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains(&sha256_hex(&weights)) && row.contains("4.10 kB"),
        "{row}"
    );
    assert!(text.contains("in 4 files"), "{text}");
}

#[test]
fn offline_flag_works_without_the_environment_variable() {
    let tmp = cache_with_tiny_model();
    let out = hakaru(tmp.path())
        .env_remove("HF_HUB_OFFLINE")
        .args(["pull", "--offline", "org/tiny", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["commit_sha"], COMMIT);
}

#[test]
fn pickle_only_repo_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<(&str, &[u8])> = vec![
        ("config.json", b"{}"),
        ("tokenizer.json", b"{}"),
        ("pytorch_model.bin", b"PK\x03\x04"),
    ];
    write_fake_hub_repo(
        tmp.path(),
        "old/pickled",
        COMMIT,
        &files,
        &["pytorch_model.bin"],
    );
    let out = hakaru(tmp.path())
        .args(["pull", "old/pickled", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "only pickle weights",
        "pytorch_model.bin",
        "safetensors and GGUF",
    ] {
        assert!(err.contains(needle), "stderr lacks `{needle}`: {err}");
    }
}

#[test]
fn a_model_missing_from_the_cache_says_to_pull_with_network() {
    let tmp = cache_with_tiny_model();
    let out = hakaru(tmp.path())
        .args(["pull", "org/absent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("models--org--absent") && err.contains("hakaru pull org/absent"),
        "{err}"
    );
}

#[test]
fn verify_catches_a_corrupted_blob() {
    let tmp = cache_with_tiny_model();
    std::fs::write(
        blob_of(tmp.path(), "org/tiny", COMMIT, "model.safetensors"),
        b"bit rot",
    )
    .unwrap();
    // Without --verify the hub's recorded sha256 is reported as is.
    hakaru(tmp.path())
        .args(["pull", "org/tiny", "--json"])
        .assert()
        .success();
    let out = hakaru(tmp.path())
        .args(["pull", "org/tiny", "--verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("model.safetensors") && err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn bad_references_and_synthetic_models_are_explained() {
    let tmp = cache_with_tiny_model();
    let out = hakaru(tmp.path())
        .args(["pull", "org/name@"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("accepted forms"));
    let out = hakaru(tmp.path())
        .args(["pull", "synthetic:qwen2.5-0.5b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no files to pull"));
}

#[test]
fn pull_a_local_directory() {
    let tmp = tempfile::tempdir().unwrap();
    for (n, c) in small_model_files() {
        std::fs::write(tmp.path().join(n), c).unwrap();
    }
    let out = hakaru(tmp.path())
        .args(["pull", tmp.path().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "local");
    assert_eq!(v["commit_sha"], Value::Null);
    assert_eq!(v["files"].as_array().unwrap().len(), 4);
}
