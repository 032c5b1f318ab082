//! `hakaru validate [PATH]`: check suites and print every problem as
//! `file:line: field: what is wrong`, one per line, on stdout. Exit code 1 when there is any,
//! 0 with a one-line count otherwise.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A prompts directory, one suite's directory, a suite.toml or a *.jsonl case file
    #[arg(value_name = "PATH", env = "HAKARU_PROMPTS", default_value = "prompts")]
    pub path: PathBuf,
}

pub fn run(args: &Args) -> Result<()> {
    // Metric names in suite.toml must be registered scorers.
    let known = hakaru_scorers::names();
    let v = hakaru_suites::check(&args.path, Some(&known));
    if v.problems.is_empty() {
        let cases = format!("{} case{}", v.cases, if v.cases == 1 { "" } else { "s" });
        let text = if v.suites == 0 {
            format!("{cases}: no problems\n")
        } else {
            let s = if v.suites == 1 { "" } else { "s" };
            format!("{} suite{s}, {cases}: no problems\n", v.suites)
        };
        return super::pull::print_stdout(&text);
    }
    let mut text = String::new();
    for p in &v.problems {
        text.push_str(&p.to_string());
        text.push('\n');
    }
    super::pull::print_stdout(&text)?;
    let n = v.problems.len();
    eprintln!(
        "{n} problem{} in {}",
        if n == 1 { "" } else { "s" },
        args.path.display()
    );
    std::process::exit(1);
}
