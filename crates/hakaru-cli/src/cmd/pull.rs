//! `hakaru pull`: resolve a model reference (downloading into the hub cache, or finding it there
//! offline) and print what it resolved to: repo, commit, and every file with size and sha256.
//!
//! Also home of [`BarProgress`], the terminal progress bars for downloads and hashing that every
//! command loading a model uses.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use hakaru_engine::hub::{self, DownloadProgress, Phase, ResolveOptions, ResolvedModel};
use hakaru_engine::model_ref::ModelRef;
use hakaru_engine::registry::Registry;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Model: org/name[@revision], org/name[@revision]:FILE.gguf, a registry name (qwen2.5-7b,
    /// qwen2.5-7b:Q4_K_M; see `hakaru models`), a model directory or a .gguf file
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Print the resolved model (repo, commit, files with sizes and sha256) as JSON
    #[arg(long)]
    pub json: bool,
    /// Hash every file and check it against the sha256 the hub recorded (reads every byte)
    #[arg(long)]
    pub verify: bool,
    /// Use only the local hub cache, never the network (same as HF_HUB_OFFLINE=1)
    #[arg(long)]
    pub offline: bool,
    /// A model registry file to use instead of the built-in one
    #[arg(long, value_name = "FILE", env = "HAKARU_REGISTRY")]
    pub registry: Option<PathBuf>,
}

pub fn run(args: &PullArgs) -> Result<()> {
    let registry = Registry::load(args.registry.as_deref())?;
    let reference = registry.parse_ref(&args.model)?;
    if let ModelRef::Synthetic(name) = &reference {
        bail!(
            "`{}` is a synthetic model (random weights of the shape of `{name}`): there are no files to pull; \
             use it directly with other commands",
            args.model
        );
    }
    let mut opts = ResolveOptions::from_env();
    opts.offline |= args.offline;
    opts.verify = args.verify;
    opts.progress = Some(Arc::new(BarProgress::new()));
    let resolved = hub::resolve(&reference, &opts)?;
    let text = if args.json {
        serde_json::to_string_pretty(&resolved).context("cannot serialize the resolved model")?
            + "\n"
    } else {
        render_table(&resolved)
    };
    print_stdout(&text)
}

/// Write `text` to stdout; a closed pipe (`hakaru … | head`) is not an error.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}

/// `1234567` → `1.23 MB` (decimal units, as the hub shows sizes).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.2} {unit}")
}

fn render_table(m: &ResolvedModel) -> String {
    let mut s = String::new();
    let kind = serde_json::to_value(m.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let format = serde_json::to_value(m.format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    s.push_str(&format!("model     {} ({kind}, {format})\n", m.reference));
    if let Some(repo) = &m.repo {
        s.push_str(&format!("repo      {repo}\n"));
    }
    if let Some(rev) = &m.requested_revision {
        s.push_str(&format!("revision  {rev}\n"));
    }
    if let Some(sha) = &m.commit_sha {
        s.push_str(&format!("commit    {sha}\n"));
    }
    if let Some(dir) = &m.dir {
        s.push_str(&format!("dir       {}\n", dir.display()));
    }
    s.push('\n');
    let sizes: Vec<String> = m.files.iter().map(|f| human_bytes(f.size)).collect();
    let w = sizes.iter().map(String::len).max().unwrap_or(4).max(4);
    s.push_str(&format!("{:>w$}  {:<64}  FILE\n", "SIZE", "SHA256"));
    for (f, size) in m.files.iter().zip(&sizes) {
        s.push_str(&format!("{size:>w$}  {:<64}  {}\n", f.sha256, f.name));
    }
    s.push_str(&format!(
        "\n{} in {} file{}\n",
        human_bytes(m.total_size()),
        m.files.len(),
        if m.files.len() == 1 { "" } else { "s" }
    ));
    s
}

/// Download and hashing progress as indicatif bars on stderr, one per file in flight. Draws
/// nothing when stderr is not a terminal.
pub struct BarProgress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl BarProgress {
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        BarProgress {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for BarProgress {
    fn default() -> Self {
        BarProgress::new()
    }
}

impl DownloadProgress for BarProgress {
    fn start(&self, file: &str, phase: Phase, total_bytes: u64) {
        let verb = match phase {
            Phase::Download => "download",
            Phase::Hash => "sha256  ",
        };
        let bar = if total_bytes > 0 {
            let style = ProgressStyle::with_template(
                "{prefix} {msg:30!} [{bar:30}] {bytes:>10}/{total_bytes:10} {binary_bytes_per_sec:>12} {eta:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            ProgressBar::new(total_bytes).with_style(style)
        } else {
            let style = ProgressStyle::with_template("{prefix} {msg:30!} {spinner} {bytes:>10}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            ProgressBar::new_spinner().with_style(style)
        };
        let bar = self
            .multi
            .add(bar.with_prefix(verb).with_message(file.to_string()));
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(old) = bars.insert(file.to_string(), bar) {
                old.finish_and_clear();
            }
        }
    }

    fn advance(&self, file: &str, done: u64) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(bar) = bars.get(file) {
                bar.set_position(done);
            }
        }
    }

    fn finish(&self, file: &str) {
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(bar) = bars.remove(file) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_table() {
        for (n, s) in [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.00 kB"),
            (1_234_567, "1.23 MB"),
            (15_231_000_000, "15.23 GB"),
            (2_000_000_000_000, "2.00 TB"),
        ] {
            assert_eq!(human_bytes(n), s, "{n}");
        }
    }

    #[test]
    fn bar_progress_tracks_files() {
        let p = BarProgress::new();
        p.start("a", Phase::Download, 10);
        p.start("b", Phase::Hash, 0);
        p.advance("a", 5);
        assert_eq!(p.bars.lock().unwrap().get("a").unwrap().position(), 5);
        p.finish("a");
        p.finish("unknown");
        assert_eq!(p.bars.lock().unwrap().len(), 1);
        p.finish("b");
        assert!(p.bars.lock().unwrap().is_empty());
    }
}
