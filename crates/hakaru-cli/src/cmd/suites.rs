//! `hakaru suites`: the suites under the prompts directory, one per line, id first: kind, case
//! count, content hash (12 hex digits; `--json` gives all 64), version and description.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hakaru_suites::Suite;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The prompts directory: one subdirectory per suite (suite.toml + *.jsonl)
    #[arg(
        long,
        value_name = "DIR",
        env = "HAKARU_PROMPTS",
        default_value = "prompts"
    )]
    pub prompts: PathBuf,
    /// Print the suites as JSON, with full content hashes and their files
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let root = &args.prompts;
    let suites = match hakaru_suites::load_all(root) {
        Ok(s) => s,
        Err(_) if !root.is_dir() => bail!(
            "no prompts directory at {} (relative paths start from the current directory); run hakaru from the repository root, or give --prompts DIR or set HAKARU_PROMPTS",
            root.display()
        ),
        Err(e) => bail!(
            "the suites in {} have problems; fix them (`hakaru validate {}` checks again):\n{e}",
            root.display(),
            root.display()
        ),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&to_json(&args.prompts, &suites))
            .context("cannot serialize the suite list")?
            + "\n"
    } else {
        render_table(&suites)
    };
    super::pull::print_stdout(&text)
}

fn kind_name(s: &Suite) -> String {
    serde_json::to_value(s.spec.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One line per suite, columns aligned; no header, so the id is always the first word.
fn render_table(suites: &[Suite]) -> String {
    let rows: Vec<[String; 6]> = suites
        .iter()
        .map(|s| {
            let n = s.cases.len();
            [
                s.spec.id.clone(),
                kind_name(s),
                format!("{n} case{}", if n == 1 { "" } else { "s" }),
                s.content_hash[..12].to_string(),
                format!("v{}", s.spec.version),
                s.spec.description.lines().next().unwrap_or("").to_string(),
            ]
        })
        .collect();
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..6).map(width).collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let w = widths[c];
            if c == 2 {
                // "9 cases" right-aligned on the number.
                line.push_str(&format!("{cell:>w$}  "));
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn to_json(root: &std::path::Path, suites: &[Suite]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = suites
        .iter()
        .map(|s| {
            json!({
                "id": s.spec.id,
                "version": s.spec.version,
                "kind": s.spec.kind,
                "template": s.spec.template,
                "description": s.spec.description,
                "cases": s.cases.len(),
                "content_hash": s.content_hash,
                "metrics": s.spec.metrics,
                "sampling": s.spec.sampling,
                "dir": s.dir.display().to_string(),
                "files": s.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "prompts": root.display().to_string(), "suites": list })
}
