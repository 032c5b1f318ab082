//! Broken model files give errors that name the file and say what to do, never a panic.

use std::path::{Path, PathBuf};

mod common;

use hakaru_engine::load::{load_dir, load_gguf, LoadOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(name)
}

/// A copy of a fixture model directory that a test may damage.
fn copy_model(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

/// The error of loading the GGUF file at `p`, which must fail.
fn gguf_err(p: &Path) -> String {
    match load_gguf(p, None, &LoadOptions::default()) {
        Ok(_) => panic!("loading {} should fail", p.display()),
        Err(e) => e.to_string(),
    }
}

fn load_err(dir: &Path) -> String {
    match load_dir(dir, &LoadOptions::default()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_safetensors() {
    let d = copy_model("tiny-qwen2");
    let w = d.path().join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(d.path());
    assert!(e.contains("model.safetensors"), "{e}");
    assert!(e.contains("truncated"), "{e}");
    assert!(e.contains("hakaru pull"), "{e}");
    // Cut inside the header, too.
    std::fs::write(&w, &bytes[..20]).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn bad_config_json() {
    let d = copy_model("tiny-qwen2");
    let c = d.path().join("config.json");
    std::fs::write(
        &c,
        "{\n  \"architectures\": [\"Qwen2ForCausalLM\"],\n  \"hidden_size\": 64,,\n}",
    )
    .unwrap();
    let e = load_err(d.path());
    assert!(e.contains("config.json") && e.contains("line 3"), "{e}");

    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("tiny-qwen2").join("config.json")).unwrap())
            .unwrap();
    v["num_attention_heads"] = serde_json::json!("four");
    std::fs::write(&c, v.to_string()).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("config.json") && e.contains("num_attention_heads"),
        "{e}"
    );
}

#[test]
fn config_disagreeing_with_weights() {
    let d = copy_model("tiny-qwen2");
    let c = d.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    v["intermediate_size"] = serde_json::json!(96);
    std::fs::write(&c, v.to_string()).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("model.safetensors") && e.contains("mlp.gate_proj") && e.contains("disagree"),
        "{e}"
    );
}

#[test]
fn missing_tokenizer() {
    let d = copy_model("tiny-qwen2");
    std::fs::remove_file(d.path().join("tokenizer.json")).unwrap();
    let e = load_err(d.path());
    assert!(e.contains("tokenizer.json"), "{e}");
}

#[test]
fn unknown_architecture() {
    let d = copy_model("tiny-llama");
    let c = d.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    v["architectures"] = serde_json::json!(["MixtralForCausalLM"]);
    std::fs::write(&c, v.to_string()).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("config.json")
            && e.contains("MixtralForCausalLM")
            && e.contains("Qwen2ForCausalLM"),
        "{e}"
    );
}

#[test]
fn pickle_only_directory_is_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("tiny-qwen2").join("config.json"),
        d.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(d.path().join("pytorch_model.bin"), b"not really a pickle").unwrap();
    let e = load_err(d.path());
    assert!(e.contains("pickle") && e.contains("safetensors"), "{e}");
}

#[test]
fn truncated_gguf() {
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/tiny-qwen2-q8_0.gguf");
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("cut.gguf");
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
    let e = gguf_err(&p);
    assert!(e.contains("cut.gguf"), "{e}");
}

/// A GGUF file whose unquantized (F16) tensors run past its end: the error names the file and
/// the tensor and says the file is truncated (these tensors are read by hakaru, not candle).
#[test]
fn truncated_unquantized_gguf() {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    use candle_core::Device;
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/tiny-qwen2-q8_0.gguf");
    let mut f = std::fs::File::open(&src).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    // Every tensor as F16 (norms as F32), the token embedding written last so that cutting the
    // file's end cuts it.
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort_by_key(|n| (n.as_str() == "token_embd.weight", n.as_str()));
    assert_eq!(names.last().map(|n| n.as_str()), Some("token_embd.weight"));
    let tensors: Vec<(String, QTensor)> = names
        .iter()
        .map(|n| {
            let t = content
                .tensor(&mut f, n, &Device::Cpu)
                .unwrap()
                .dequantize(&Device::Cpu)
                .unwrap();
            let q = if t.rank() == 1 {
                GgmlDType::F32
            } else {
                GgmlDType::F16
            };
            (n.to_string(), QTensor::quantize(&t, q).unwrap())
        })
        .collect();
    let d = tempfile::tempdir().unwrap();
    let whole = d.path().join("whole.gguf");
    common::write_gguf(&whole, &content, &tensors, 1);
    // The whole file loads (so the failure below is the cut's).
    load_gguf(&whole, None, &LoadOptions::default()).unwrap();
    let p = d.path().join("cut.gguf");
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let e = gguf_err(&p);
    assert!(
        e.contains("cut.gguf") && e.contains("token_embd.weight") && e.contains("truncated"),
        "{e}"
    );
}
