//! The `hakaru` command. Thin: parsing, terminal output and exit codes; the work is in the
//! library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "hakaru",
    version,
    about = "Measure open-weight LLMs on your own hardware: Japanese quality, refusals, throughput per dollar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download a model (or find it in the hub cache) and print its files with sizes and sha256
    Pull(cmd::pull::PullArgs),
    /// List the models hakaru knows by short name, their sizes, and whether they fit in memory
    Models(cmd::models::ModelsArgs),
    /// Render a model's chat template for a list of messages
    Template(cmd::template::TemplateArgs),
    /// Generate text from a prompt
    Generate(cmd::generate::GenerateArgs),
    /// Print the logits of a token sequence, at every position or the last
    Logits(cmd::logits::LogitsArgs),
    /// List the suites in prompts/: id, kind, case count, content hash
    Suites(cmd::suites::Args),
    /// Check suite files and report every problem as file:line: field: what is wrong
    Validate(cmd::validate::Args),
    /// Run suites against a model and write results/runs/<run-id>/
    Run(cmd::run::Args),
    /// Apply a scorer to responses from anywhere (JSON lines in, JSON lines out)
    Score(cmd::score::Args),
    /// Re-apply the current scorers to a stored run
    Rescore(cmd::rescore::Args),
    /// Prompt-processing and generation speed (llama-bench style), with latency, memory,
    /// bandwidth ceiling and cost
    Bench(cmd::bench::Args),
    /// A report of one or more runs: Markdown, self-contained HTML, CSV or JSON
    Report(cmd::report::ReportArgs),
    /// Two runs compared case by case, with intervals and a verdict per metric
    Compare(cmd::report::CompareArgs),
}

fn main() -> ExitCode {
    hakaru_engine::device::tune_allocator();
    hakaru_engine::device::settle_threads();
    let cli = Cli::parse();
    cmd::init_tracing();
    let result = match &cli.command {
        Command::Pull(a) => cmd::pull::run(a),
        Command::Models(a) => cmd::models::run(a),
        Command::Template(a) => cmd::template::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Logits(a) => cmd::logits::run(a),
        Command::Suites(a) => cmd::suites::run(a),
        Command::Validate(a) => cmd::validate::run(a),
        Command::Run(a) => return cmd::run::run(a),
        Command::Score(a) => cmd::score::run(a),
        Command::Rescore(a) => cmd::rescore::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Report(a) => cmd::report::report(a),
        Command::Compare(a) => cmd::report::compare(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
