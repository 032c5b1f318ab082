//! `hakaru suites` and `hakaru validate`.

use std::path::Path;

use serde_json::Value;

fn hakaru() -> assert_cmd::Command {
    let mut cmd = crate::hakaru();
    cmd.env_remove("HAKARU_PROMPTS");
    cmd
}

/// Cases in a committed suite, counted from its files (non-blank lines of every *.jsonl).
fn committed_cases(id: &str) -> usize {
    let dir = crate::root().join("prompts").join(id);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum()
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn suites_lists_the_example_suites_id_first() {
    // Default prompts directory: prompts/ under the current directory.
    let out = hakaru()
        .arg("suites")
        .current_dir(crate::root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout_of(&out);
    let ids: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "not sorted by id:\n{text}");
    for (id, kind) in [("smoke-ja", "generate"), ("smoke-choice", "choice")] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no line for {id}:\n{text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[1], kind, "{line}");
        assert_eq!(words[2], committed_cases(id).to_string(), "{line}");
        assert_eq!(words[3], "cases", "{line}");
        assert!(
            words[4].len() == 12 && words[4].chars().all(|c| c.is_ascii_hexdigit()),
            "no 12-digit hash in: {line}"
        );
    }
}

#[test]
fn suites_json_parses_and_agrees_with_the_table() {
    let prompts = crate::root().join("prompts");
    let run = |json: bool| {
        let mut cmd = hakaru();
        cmd.arg("suites").arg("--prompts").arg(&prompts);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout_of(&out)
    };
    let v: Value = serde_json::from_str(&run(true)).expect("stdout is one JSON document");
    let table = run(false);
    let suites = v["suites"].as_array().unwrap();
    assert_eq!(suites.len(), table.lines().count());
    for id in ["smoke-ja", "smoke-choice"] {
        let s = suites.iter().find(|s| s["id"] == id).unwrap();
        let hash = s["content_hash"].as_str().unwrap();
        assert!(
            hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{hash}"
        );
        assert_eq!(s["cases"], committed_cases(id));
        assert_eq!(s["version"], "1");
        let line = table.lines().find(|l| l.starts_with(id)).unwrap();
        assert!(line.contains(&hash[..12]), "{line} vs {hash}");
        assert!(s["files"][0].as_str().unwrap().ends_with("suite.toml"));
    }
    let ja = suites.iter().find(|s| s["id"] == "smoke-ja").unwrap();
    assert_eq!(ja["kind"], "generate");
    assert_eq!(ja["metrics"][0], "exact");
    assert_eq!(ja["sampling"]["max_tokens"], 32);
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn hakaru_prompts_selects_the_prompts_directory() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "only/suite.toml",
        "id = \"only\"\nversion = \"7\"\nkind = \"perplexity\"\ntemplate = \"raw\"\n",
    );
    write(
        tmp.path(),
        "only/passages.jsonl",
        "{\"id\": \"p1\", \"reference\": \"吾輩は本文である。\"}\n",
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let out = hakaru()
        .arg("suites")
        .env("HAKARU_PROMPTS", tmp.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout_of(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("only  perplexity  1 case  "), "{text}");
    assert!(text.contains(" v7"), "{text}");

    let out = hakaru()
        .arg("validate")
        .env("HAKARU_PROMPTS", tmp.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_of(&out), "1 suite, 1 case: no problems\n");

    // No prompts directory where one is looked for: an error saying where and what to do.
    let out = hakaru()
        .arg("suites")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no prompts directory at prompts") && err.contains("HAKARU_PROMPTS"),
        "{err}"
    );
}

/// A prompts directory with problems in several suites and files.
fn broken_prompts(root: &Path) {
    // Unknown scorer, TOML fine otherwise; a case with a typo'd field and one missing its reference.
    write(
        root,
        "gen/suite.toml",
        "id = \"gen\"\nversion = \"1\"\nkind = \"generate\"\nmetrics = [\"exact\", \"exactt\"]\n",
    );
    write(
        root,
        "gen/cases.jsonl",
        "{\"id\": \"a\", \"input\": \"x\", \"reference\": \"y\"}\n{\"id\": \"b\", \"input\": \"x\", \"refrence\": \"y\"}\n\n{\"id\": \"a\", \"input\": \"z\", \"reference\": \"y\", \"lang\": \"jp\"}\n",
    );
    // A second case file in the same suite, with a line that is not JSON.
    write(
        root,
        "gen/more.jsonl",
        "{\"id\": \"c\", \"input\": \"x\", \"reference\": \"y\"}\n{\"id\": \"d\", \"input\": \"x\",\n",
    );
    // TOML syntax error.
    write(
        root,
        "syntax/suite.toml",
        "id = \"syntax\"\nversion = \"1\nkind = \"generate\"\n",
    );
    write(
        root,
        "syntax/cases.jsonl",
        "{\"id\": \"a\", \"input\": \"x\"}\n",
    );
    // Choice problems, and an id that is not the directory's name.
    write(
        root,
        "pick/suite.toml",
        "id = \"choose\"\nversion = \"1\"\nkind = \"choice\"\n",
    );
    write(
        root,
        "pick/cases.jsonl",
        "{\"id\": \"q1\", \"input\": \"x\", \"choices\": [\"a\", \"b\"], \"expected\": 2}\n{\"id\": \"q2\", \"input\": \"x\", \"choices\": [\"a\"], \"expected\": 0}\n",
    );
    // Case files without a suite.toml.
    write(
        root,
        "orphan/cases.jsonl",
        "{\"id\": \"a\", \"input\": \"x\"}\n",
    );
}

#[test]
fn validate_reports_every_problem_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    broken_prompts(tmp.path());
    let out = hakaru().arg("validate").arg(tmp.path()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("{}/", tmp.path().display());
    let text = stdout_of(&out).replace(&prefix, "");
    let expected = [
        "gen/suite.toml:4: metrics: unknown scorer \"exactt\"",
        "gen/cases.jsonl:2: refrence: unknown field",
        "gen/cases.jsonl:2: reference: missing; the suite's metric \"exact\" compares the output with a reference",
        "gen/cases.jsonl:4: id: duplicate id \"a\", first used at gen/cases.jsonl:1",
        "gen/cases.jsonl:4: lang: \"jp\" is not a known language; use one of ja, en, zh-Hans, zh-Hant, ko",
        "gen/more.jsonl:2: invalid JSON: ",
        "orphan/suite.toml: missing: this directory has *.jsonl case files but no suite.toml",
        "pick/suite.toml:1: id: \"choose\" differs from the directory name \"pick\"",
        "pick/cases.jsonl:1: expected: 2 is out of range; there are 2 choices, so use 0 to 1",
        "pick/cases.jsonl:2: choices: has 1 entry; a choice case needs two or more",
        "syntax/suite.toml:2: invalid TOML: ",
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "expected:\n{}\ngot:\n{text}",
        expected.join("\n")
    );
    for (line, want) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(want),
            "expected {want:?}\ngot {line:?}\nall:\n{text}"
        );
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("11 problems"), "{err}");

    // One file at a time works too, with the same text.
    let out = hakaru()
        .arg("validate")
        .arg(tmp.path().join("pick/cases.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout_of(&out).replace(&prefix, "").lines().count(),
        2,
        "{}",
        stdout_of(&out)
    );

    // `hakaru suites` refuses the same directory, naming the problems.
    let out = hakaru()
        .args(["suites", "--prompts"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).replace(&prefix, "");
    assert!(
        err.contains("hakaru validate") && err.contains("pick/cases.jsonl:1: expected:"),
        "{err}"
    );
}

#[test]
fn validate_passes_the_committed_prompts() {
    let out = hakaru()
        .arg("validate")
        .current_dir(crate::root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stdout: {}", stdout_of(&out));
    let text = stdout_of(&out);
    let (suites, rest) = text.split_once(" suites, ").expect(&text);
    assert!(suites.parse::<usize>().unwrap() >= 2, "{text}");
    let cases = committed_cases("smoke-ja") + committed_cases("smoke-choice");
    let n: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
    assert!(n >= cases, "{text}");
    assert!(text.ends_with(" cases: no problems\n"), "{text}");
}
