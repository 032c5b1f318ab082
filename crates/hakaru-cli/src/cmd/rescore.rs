//! `hakaru rescore <run-dir>`: re-apply the current scorers to a stored run. The run's files are
//! only read; `run.rescored-<timestamp>.json` and `samples.rescored-<timestamp>.jsonl` are
//! written beside them, and the new run.json's path is printed.

use std::path::PathBuf;

use anyhow::Result;
use hakaru_runner::rescore::{rescore, RescoreOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run directory (results/runs/<run-id>)
    pub run_dir: PathBuf,
    /// Apply these scorers, comma-separated, instead of those the run used
    #[arg(long, value_delimiter = ',')]
    pub scorers: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    let opts = RescoreOptions {
        scorers: (!args.scorers.is_empty()).then(|| args.scorers.clone()),
    };
    let r = rescore(&args.run_dir, &opts)?;
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    for s in &r.record.summary {
        let metrics: Vec<String> = s
            .metrics
            .iter()
            .map(|(k, m)| format!("{k} {:.3} (n={})", m.mean, m.n))
            .collect();
        eprintln!(
            "{}: {}",
            s.suite,
            if metrics.is_empty() {
                "no metrics".into()
            } else {
                metrics.join(", ")
            }
        );
    }
    eprintln!(
        "{} samples rescored, {} changed; samples with the new scores: {}",
        r.record.summary.iter().map(|s| s.samples).sum::<usize>(),
        r.changed,
        r.samples.display()
    );
    println!("{}", r.run_json.display());
    Ok(())
}
