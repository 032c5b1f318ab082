//! `hakaru template`: chat templates rendered as transformers renders them.

use std::path::{Path, PathBuf};

use crate::{hakaru, model_dir, root};

use serde_json::{json, Value};

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
    p
}

/// Run `hakaru template` and return (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = hakaru().arg("template").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn template_renders_every_golden_case_byte_for_byte() {
    let golden: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/golden/templates.json")).unwrap(),
    )
    .unwrap();
    assert!(golden.len() >= 10);
    let tmp = tempfile::tempdir().unwrap();
    for (i, case) in golden.iter().enumerate() {
        let model = model_dir(case["model"].as_str().unwrap());
        let messages = write_json(tmp.path(), &format!("m{i}.json"), &case["messages"]);
        let mut args: Vec<String> = vec![
            "--model".into(),
            model.display().to_string(),
            "--messages".into(),
            messages.display().to_string(),
        ];
        if case["add_generation_prompt"].as_bool().unwrap() {
            args.push("--add-generation-prompt".into());
        }
        for (k, v) in case["kwargs"].as_object().unwrap() {
            if k == "tools" {
                args.push("--tools".into());
                args.push(
                    write_json(tmp.path(), &format!("t{i}.json"), v)
                        .display()
                        .to_string(),
                );
            } else {
                args.push("--set".into());
                args.push(format!("{k}={v}"));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stdout, stderr) = run(&args);
        match case["rendered"].as_str() {
            Some(want) => {
                assert!(ok, "case {i}: {stderr}");
                // Without --json the prompt is printed bare: no trailing newline added.
                assert_eq!(stdout, want, "case {i}");
            }
            None => {
                assert!(!ok, "case {i} should fail");
                assert!(
                    stderr.contains(case["error"].as_str().unwrap()),
                    "case {i}: {stderr}"
                );
            }
        }
    }
}

#[test]
fn template_json_output_and_options() {
    let tmp = tempfile::tempdir().unwrap();
    let messages = write_json(
        tmp.path(),
        "m.json",
        &json!([{"role": "user", "content": "こんにちは"}]),
    );
    let model = model_dir("tiny-qwen3");
    let (ok, stdout, stderr) = run(&[
        "--model",
        model.to_str().unwrap(),
        "--messages",
        messages.to_str().unwrap(),
        "--add-generation-prompt",
        "--set",
        "enable_thinking=false",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let prompt = v["prompt"].as_str().unwrap();
    assert!(prompt.contains("こんにちは"), "{prompt}");
    assert!(prompt.ends_with("<think>\n\n</think>\n\n"), "{prompt:?}");
    assert_eq!(v.as_object().unwrap().len(), 1);

    // --chat-template replaces the model's template.
    let tpl = tmp.path().join("t.jinja");
    std::fs::write(&tpl, "{{ eos_token }}|{{ messages[0].content }}|{{ x }}\n").unwrap();
    let (ok, stdout, stderr) = run(&[
        "-m",
        model.to_str().unwrap(),
        "--messages",
        messages.to_str().unwrap(),
        "--chat-template",
        tpl.to_str().unwrap(),
        "--set",
        "x=[1, \"a\"]",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "<|im_end|>|こんにちは|[1, 'a']");
}

#[test]
fn template_errors_name_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_dir("tiny-qwen2");
    let m = model.to_str().unwrap();

    // A bad messages file: file, index and field.
    let bad = write_json(
        tmp.path(),
        "bad.json",
        &json!([{"role": "user", "content": "x"}, {"role": "assistant"}]),
    );
    let (ok, _, stderr) = run(&["--model", m, "--messages", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "{}: index 1: field `content` is missing",
            bad.display()
        )),
        "{stderr}"
    );

    // raise_exception's message surfaces, with the template's source and line.
    let narrator = write_json(
        tmp.path(),
        "n.json",
        &json!([{"role": "narrator", "content": "x"}]),
    );
    let (ok, _, stderr) = run(&["--model", m, "--messages", narrator.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("tokenizer_config.json (field `chat_template`): line"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the template raised an error: Unknown message role: narrator"),
        "{stderr}"
    );

    // A template with a syntax error: its path and line.
    let good = write_json(
        tmp.path(),
        "g.json",
        &json!([{"role": "user", "content": "x"}]),
    );
    let tpl = tmp.path().join("broken.jinja");
    std::fs::write(&tpl, "ok\n{% for m in messages %}\n").unwrap();
    let (ok, _, stderr) = run(&[
        "--model",
        m,
        "--messages",
        good.to_str().unwrap(),
        "--chat-template",
        tpl.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{}: line", tpl.display())) && stderr.contains("syntax error"),
        "{stderr}"
    );

    // --set values are JSON.
    let (ok, _, stderr) = run(&[
        "--model",
        m,
        "--messages",
        good.to_str().unwrap(),
        "--set",
        "date_string=01 Jan",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("--set date_string=01 Jan: the value is not JSON"),
        "{stderr}"
    );

    // A directory without a chat template.
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(&[
        "--model",
        empty.path().to_str().unwrap(),
        "--messages",
        good.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("has no chat template") && stderr.contains("--chat-template"),
        "{stderr}"
    );
}

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// `hakaru template` with the hub cache at `cache`, offline, no ambient token or registry.
fn run_offline(cache: &Path, args: &[&str]) -> (bool, String, String) {
    let out = hakaru()
        .env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("hf-home"))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .env_remove("HF_TOKEN")
        .arg("template")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn prompt_of(stdout: &str) -> String {
    let v: Value = serde_json::from_str(stdout).unwrap();
    v["prompt"].as_str().unwrap().to_string()
}

#[test]
fn template_of_a_hub_repo_needs_no_weights() {
    use hakaru_engine::hub::testing::write_fake_hub_repo;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let tokenizer_config = json!({
        "bos_token": "<s>",
        "eos_token": {"content": "</s>", "special": true},
        "chat_template": "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
    })
    .to_string();
    // Config files only: no model.safetensors, no tokenizer.json.
    let files: Vec<(&str, &[u8])> = vec![
        ("config.json", br#"{"architectures":["LlamaForCausalLM"]}"#),
        ("tokenizer_config.json", tokenizer_config.as_bytes()),
    ];
    write_fake_hub_repo(&cache, "org/name", COMMIT, &files, &[]);
    // A registry short name resolves to its repo the same way.
    write_fake_hub_repo(&cache, "Qwen/Qwen2.5-0.5B-Instruct", COMMIT, &files, &[]);
    let messages = write_json(
        tmp.path(),
        "m.json",
        &json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"}
        ]),
    );
    let want = "<s><system>Be brief.</s>\n<user>Hi</s>\n<assistant>";
    for model in [
        "org/name",
        "org/name@main",
        &format!("org/name@{COMMIT}"),
        "qwen2.5-0.5b",
    ] {
        let (ok, stdout, stderr) = run_offline(
            &cache,
            &[
                "--model",
                model,
                "--messages",
                messages.to_str().unwrap(),
                "--add-generation-prompt",
                "--json",
            ],
        );
        assert!(ok, "{model}: {stderr}");
        assert_eq!(prompt_of(&stdout), want, "{model}");
    }

    // A repo that is not cached: the error says how to get it.
    let (ok, _, stderr) = run_offline(
        &cache,
        &[
            "--model",
            "org/absent",
            "--messages",
            messages.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("models--org--absent") && stderr.contains("hakaru pull org/absent"),
        "{stderr}"
    );
}

/// Render `messages` for `model` with --add-generation-prompt --json, offline in `cache`.
fn render(cache: &Path, model: &str, messages: &Path) -> String {
    let (ok, stdout, stderr) = run_offline(
        cache,
        &[
            "--model",
            model,
            "--messages",
            messages.to_str().unwrap(),
            "--add-generation-prompt",
            "--json",
        ],
    );
    assert!(ok, "{model}: {stderr}");
    prompt_of(&stdout)
}

#[test]
fn template_of_a_gguf_file_comes_from_its_metadata() {
    use hakaru_engine::hub::testing::write_fake_hub_repo;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    std::fs::create_dir_all(&cache).unwrap();
    let messages = write_json(
        tmp.path(),
        "m.json",
        &json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"}
        ]),
    );
    let from_dir = render(&cache, model_dir("tiny-qwen2").to_str().unwrap(), &messages);
    assert!(
        from_dir.ends_with("<|im_start|>assistant\n"),
        "{from_dir:?}"
    );

    // A local .gguf (nothing beside it but other .gguf files): the template and special tokens
    // come from its metadata.
    let gguf = root().join("fixtures/gguf/tiny-qwen2-q8_0.gguf");
    assert_eq!(render(&cache, gguf.to_str().unwrap(), &messages), from_dir);

    // A hub GGUF build whose .gguf is cached (here through a registry name): read from the cache.
    let bytes = std::fs::read(&gguf).unwrap();
    let file = "qwen2.5-0.5b-instruct-q8_0.gguf";
    write_fake_hub_repo(
        &cache,
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        COMMIT,
        &[(file, &bytes)],
        &[file],
    );
    assert_eq!(render(&cache, "qwen2.5-0.5b:Q8_0", &messages), from_dir);

    // The same repo without the .gguf and without tokenizer_config.json: the error says why the
    // file is needed and how to get it.
    write_fake_hub_repo(
        &cache,
        "org/m-GGUF",
        COMMIT,
        &[("README.md", b"# GGUF builds")],
        &[],
    );
    let (ok, _, stderr) = run_offline(
        &cache,
        &[
            "--model",
            "org/m-GGUF:m-Q4_K_M.gguf",
            "--messages",
            messages.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    for needle in [
        "org/m-GGUF at commit",
        "no tokenizer_config.json or chat_template.jinja",
        "hakaru pull org/m-GGUF:m-Q4_K_M.gguf",
        "m-Q4_K_M.gguf",
    ] {
        assert!(stderr.contains(needle), "`{stderr}` lacks `{needle}`");
    }

    // A hub GGUF repo that ships tokenizer_config.json renders without the .gguf.
    let tokenizer_config =
        std::fs::read(model_dir("tiny-qwen2").join("tokenizer_config.json")).unwrap();
    write_fake_hub_repo(
        &cache,
        "org/t-GGUF",
        COMMIT,
        &[("tokenizer_config.json", &tokenizer_config)],
        &[],
    );
    assert_eq!(
        render(&cache, "org/t-GGUF:t-Q8_0.gguf", &messages),
        from_dir
    );
}
