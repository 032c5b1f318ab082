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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cmd::init_tracing();
    let result = match &cli.command {
        Command::Pull(a) => cmd::pull::run(a),
        Command::Models(a) => cmd::models::run(a),
        Command::Template(a) => cmd::template::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Logits(a) => cmd::logits::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
