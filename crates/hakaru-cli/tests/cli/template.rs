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
