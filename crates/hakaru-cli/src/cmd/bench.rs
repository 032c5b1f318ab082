//! `hakaru bench`: prompt-processing and generation speed in the manner of llama-bench, with
//! latency percentiles, memory, the memory-bandwidth ceiling, energy where readable, and cost at
//! an hourly price beside API prices. Rows go to stdout (`-o md|json|jsonl|csv`), progress to
//! stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hakaru_runner::bench::{self, BenchContext, BenchPlan, Price};
use hakaru_types::{BandwidthUse, BenchRow};

use super::{LoadArgs, ModelArgs};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Model (any model reference; synthetic:<name> needs no download)
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Prompt sizes of the prompt-processing tests, comma-separated (0: none)
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_delimiter = ',',
        default_value = "512"
    )]
    pub n_prompt: Vec<usize>,
    /// Lengths of the generation tests, comma-separated (0: none)
    #[arg(
        short = 'n',
        long = "n-gen",
        value_delimiter = ',',
        default_value = "128"
    )]
    pub n_gen: Vec<usize>,
    /// Tokens of context before each test, comma-separated
    #[arg(
        short = 'd',
        long = "depth",
        value_delimiter = ',',
        default_value = "0"
    )]
    pub depth: Vec<usize>,
    /// A prompt-then-generation test (llama-bench's -pg): PP prompt tokens in one pass, then TG
    /// decode steps, timed together; repeat the flag for more
    #[arg(long = "pg", value_name = "PP,TG", value_parser = parse_pg)]
    pub pg: Vec<(usize, usize)>,
    /// CPU thread counts to compare, comma-separated (llama-bench's -t): each count runs in a
    /// process of its own (thread pools are fixed once started), its rows in turn
    #[arg(
        short = 't',
        long = "thread-counts",
        value_delimiter = ',',
        conflicts_with = "threads"
    )]
    pub thread_counts: Vec<usize>,
    /// Requests at once, comma-separated (an endpoint's; each test runs at each, named
    /// `tg128@c8`, its speed all the requests' tokens over their wall time)
    #[arg(
        short = 'c',
        long = "concurrency",
        value_delimiter = ',',
        default_value = "1"
    )]
    pub concurrency: Vec<usize>,
    /// Timed repetitions of each test
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub repetitions: usize,
    /// Untimed repetitions before each test
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Seed of the token ids fed to the model
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output: md, json, jsonl (one row per line, as each test ends) or csv
    #[arg(short = 'o', long = "output", default_value = "md")]
    pub output: String,
    /// Price the run at this many USD per hour
    #[arg(long, conflicts_with = "gpu")]
    pub price_per_hour: Option<f64>,
    /// Price the run at this entry of prices/gpus.toml (e.g. h100-sxm, cpu-c7i-xlarge)
    #[arg(long)]
    pub gpu: Option<String>,
    /// The provider of the --gpu price [default: the entry marked default]
    #[arg(long, requires = "gpu")]
    pub provider: Option<String>,
    /// Where the price tables are
    #[arg(long, default_value = "prices")]
    pub prices: PathBuf,
    /// Suites whose Japanese text gives the tokenizer's characters per token (for $/1M Japanese
    /// characters)
    #[arg(long, default_value = "prompts", env = "HAKARU_PROMPTS")]
    pub prompts: PathBuf,
    /// Measure this machine's memory bandwidth and print it (without --model, only that)
    #[arg(long)]
    pub bandwidth: bool,
    /// The memory bandwidth (GB/s) tg rows are compared with, instead of measuring it
    #[arg(long, value_name = "GB/S")]
    pub ceiling: Option<f64>,
    #[command(flatten)]
    pub load: LoadArgs,
}

const FORMATS: &[&str] = &["md", "json", "jsonl", "csv"];

/// `512,128` of `--pg`.
fn parse_pg(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("`{s}`: give the prompt size and the generation length, e.g. 512,128");
    let (p, n) = s.split_once(',').ok_or_else(bad)?;
    let (p, n) = (
        p.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if p == 0 || n == 0 {
        return Err(format!(
            "`{s}`: both numbers must be positive (use -p or -n for one alone)"
        ));
    }
    Ok((p, n))
}

/// The threads the model runs on: `--threads`, else the count settled at start-up
/// (`hakaru_engine::device::settle_threads`).
fn threads(load: &LoadArgs) -> usize {
    load.threads
        .unwrap_or_else(hakaru_runner::provenance::cpu_threads)
}

pub fn run(args: &Args) -> Result<()> {
    if !FORMATS.contains(&args.output.as_str()) {
        bail!("-o {}: use one of {}", args.output, FORMATS.join(", "));
    }
    if args.thread_counts.contains(&0) {
        bail!("-t: thread counts start at 1; drop the 0");
    }
    if args.thread_counts.len() > 1 {
        return sweep(args);
    }
    if let Some(&n) = args.thread_counts.first() {
        let mut one = args.clone();
        one.thread_counts.clear();
        one.load.threads = Some(n);
        return run(&one);
    }
    if args.repetitions == 0 {
        bail!("-r 0: give at least one repetition");
    }
    if args.concurrency.contains(&0) {
        bail!("-c: concurrency starts at 1; drop the 0");
    }
    let endpoint = args
        .model
        .as_deref()
        .is_some_and(hakaru_engine::endpoint::EndpointRef::is_endpoint);
    if !endpoint && args.concurrency.iter().any(|&c| c > 1) {
        bail!("-c/--concurrency: hakaru's engine runs one sequence at a time; concurrent requests need an endpoint (--model http://host:port/v1#model)");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this hakaru is a debug build: speeds and bandwidth are far below what the machine can do; build with `cargo install --path crates/hakaru-cli` (release) for figures");
    }
    // An endpoint's server runs elsewhere: this machine's bandwidth is no ceiling of its speed.
    let on_cpu = !endpoint && args.load.device.as_deref().is_none_or(|d| d == "cpu");
    // Measured unless given (--bandwidth measures even then), on the CPU only.
    let given = args.ceiling.filter(|_| !args.bandwidth);
    let probe =
        (on_cpu && given.is_none()).then(|| bench::BandwidthProbe::new(threads(&args.load), 5));
    let ceiling = if given.is_some() {
        given
    } else if let Some(p) = probe {
        eprintln!("measuring memory bandwidth ({} threads)…", p.threads);
        let gb = p.read();
        eprintln!("memory bandwidth: {gb:.1} GB/s");
        Some(gb)
    } else {
        None
    };
    let Some(model_ref) = &args.model else {
        if args.bandwidth {
            println!("{:.2}", ceiling.unwrap_or(f64::NAN));
            return Ok(());
        }
        bail!("--model: give the model to measure (e.g. --model synthetic:qwen2.5-0.5b --quant Q8_0), or --bandwidth alone");
    };
    // The price tables: needed for --gpu; with --price-per-hour only for the API anchors, so a
    // missing table is a warning there.
    let table = match (args.price_per_hour, &args.gpu) {
        (None, Some(_)) => Some(hakaru_suites::prices::load(&args.prices)?),
        (Some(_), _) => match hakaru_suites::prices::load(&args.prices) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("warning: no API prices to compare with: {e}");
                None
            }
        },
        (None, None) => None,
    };
    let price = match (args.price_per_hour, &args.gpu) {
        (Some(x), _) if !(x.is_finite() && x > 0.0) => {
            bail!("--price-per-hour {x}: give a positive number of USD")
        }
        (Some(x), _) => Some(Price {
            name: "price-per-hour".into(),
            provider: None,
            usd_per_hour: x,
            source: None,
            date: None,
        }),
        (None, Some(g)) => {
            let e = table
                .as_ref()
                .expect("loaded for --gpu")
                .gpu(g, args.provider.as_deref())
                .map_err(anyhow::Error::msg)?;
            Some(Price {
                name: e.name.clone(),
                provider: Some(e.provider.clone()),
                usd_per_hour: e.price_per_hour,
                source: Some(e.source.clone()),
                date: Some(e.date.clone()),
            })
        }
        (None, None) => None,
    };
    let apis = table.map(|t| t.apis).unwrap_or_default();

    let model = ModelArgs {
        model: model_ref.clone(),
        load: args.load.clone(),
    };
    let t0 = Instant::now();
    let mut backend = model.backend()?;
    let load_seconds = t0.elapsed().as_secs_f64();
    if endpoint {
        eprintln!(
            "connected to {} in {load_seconds:.2} s",
            backend.describe().reference
        );
    } else {
        eprintln!("loaded {model_ref} in {load_seconds:.2} s");
    }
    let ja = hakaru_suites::load_all(&args.prompts)
        .ok()
        .and_then(|s| bench::ja_chars_per_token(backend.as_ref(), &s));
    if let Some((c, n)) = ja {
        eprintln!("Japanese characters per token: {c:.3} (over {n} characters of the suites' Japanese text)");
    }
    let plan = BenchPlan {
        prompts: args.n_prompt.clone(),
        gens: args.n_gen.clone(),
        depths: args.depth.clone(),
        pgs: args.pg.clone(),
        repetitions: args.repetitions,
        warmup: args.warmup,
        seed: args.seed,
        concurrency: {
            let mut c = args.concurrency.clone();
            c.sort_unstable();
            c.dedup();
            c
        },
    };
    let mut cx = BenchContext {
        api_prices: apis
            .iter()
            .map(|a| hakaru_types::ApiPriceAnchor {
                name: a.name.clone(),
                model: a.model.clone(),
                provider: a.provider.clone(),
                input_per_million: a.input_per_million,
                output_per_million: a.output_per_million,
                date: a.date.clone(),
                source: a.source.clone(),
            })
            .collect(),
        // An endpoint's load time is its server's; connecting is not loading.
        load_seconds: (!endpoint).then_some(load_seconds),
        ceiling_gb_s: ceiling,
        // Read again after each tg test where measured (not with --ceiling).
        ceiling_probe: probe,
        price,
        ja_chars_per_token: ja.map(|x| x.0),
    };
    let tests = bench::tests(&plan);
    if tests.is_empty() {
        bail!("no tests: -p and -n are all 0");
    }
    let mut rows = Vec::new();
    let mut out = std::io::stdout().lock();
    for t in &tests {
        eprintln!(
            "{} ({} + {} warm-up repetitions)…",
            bench::test_name(t),
            plan.repetitions,
            plan.warmup
        );
        let row =
            bench::run_test(backend.as_mut(), t, &plan, &mut cx).map_err(anyhow::Error::msg)?;
        if row.noisy {
            eprintln!(
                "warning: {}: other processes used {:.0}% of a CPU core meanwhile; the row is marked noisy",
                row.test,
                row.other_cpu_percent.unwrap_or(0.0)
            );
        }
        if let Some(b) = row.bandwidth.as_ref().filter(|b| b.unsteady()) {
            eprintln!(
                "warning: {}: the memory bandwidth read {} GB/s around the test; its share of the ceiling is against the higher reading",
                row.test,
                readings(b, 1, " and ")
            );
        }
        if args.output == "jsonl" {
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
            out.flush()?;
        }
        rows.push(row);
    }
    emit(&rows, &args.output)
}

/// All rows at once in `format` (jsonl rows went out as they came).
fn emit(rows: &[BenchRow], format: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(rows)?)?,
        "csv" => out.write_all(csv(rows)?.as_bytes())?,
        "md" => out.write_all(markdown(rows).as_bytes())?,
        _ => {}
    }
    Ok(())
}

/// `-t 1,2,4`: this command again for each count (`--threads N -o jsonl`, the other flags as
/// given), in turn, each a process of its own because candle's thread pools keep the size they
/// started with; the rows are gathered and written as asked (jsonl as they come).
fn sweep(args: &Args) -> Result<()> {
    if args.bandwidth {
        bail!("--bandwidth with -t: give one thread count at a time");
    }
    let exe = std::env::current_exe().context("finding this program to run each thread count")?;
    let base = child_args(std::env::args().skip(1));
    let mut rows = Vec::new();
    let mut out = std::io::stdout().lock();
    for &n in &args.thread_counts {
        eprintln!("{n} threads:");
        let mut child = std::process::Command::new(&exe)
            .args(&base)
            .args(["--threads", &n.to_string(), "-o", "jsonl"])
            .env("RAYON_NUM_THREADS", n.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the run with {n} threads"))?;
        let stdout = child.stdout.take().context("the child's output")?;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line?;
            let row: BenchRow = serde_json::from_str(&line)
                .with_context(|| format!("a row of the run with {n} threads: {line}"))?;
            if args.output == "jsonl" {
                writeln!(out, "{line}")?;
                out.flush()?;
            }
            rows.push(row);
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("the run with {n} threads failed ({status}); its error is above");
        }
    }
    drop(out);
    if rows.is_empty() {
        bail!("no rows");
    }
    emit(&rows, &args.output)
}

/// The command line without `-t`/`--thread-counts` and `-o`/`--output` (and their values,
/// apart or attached).
fn child_args(argv: impl Iterator<Item = String>) -> Vec<String> {
    let mut v = Vec::new();
    let mut skip_value = false;
    for a in argv {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if ["-t", "--thread-counts", "-o", "--output"].contains(&a.as_str()) {
            skip_value = true;
            continue;
        }
        let attached = a.starts_with("--thread-counts=")
            || a.starts_with("--output=")
            || (!a.starts_with("--") && (a.starts_with("-t") || a.starts_with("-o")));
        if !attached {
            v.push(a);
        }
    }
    v
}

/// A row's bandwidth readings, `digits` after the point, joined by `sep` (`23.1 and 27.9`).
fn readings(b: &BandwidthUse, digits: usize, sep: &str) -> String {
    b.readings_gb_s
        .iter()
        .map(|x| format!("{x:.digits$}"))
        .collect::<Vec<_>>()
        .join(sep)
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// The summary columns of a row, shared by CSV and Markdown.
fn columns(r: &BenchRow) -> Vec<(&'static str, String)> {
    let lat = r.ttft_ms.as_ref().or(r.itl_ms.as_ref());
    vec![
        ("model", r.model.reference.clone()),
        ("weights", r.model.weights.clone()),
        (
            "params",
            // 0: not known (an endpoint that does not say).
            match r.model.parameters {
                0 => "-".into(),
                n => format!("{:.2} B", n as f64 / 1e9),
            },
        ),
        ("device", r.device.name.clone()),
        (
            "threads",
            r.device.threads.map_or("-".into(), |t| t.to_string()),
        ),
        ("test", r.test.clone()),
        ("t/s", format!("{:.2} ± {:.2}", r.mean, r.sd)),
        ("median t/s", format!("{:.2}", r.median)),
        ("p50 ms", fmt_opt(lat.map(|l| l.p50), 2)),
        ("p99 ms", fmt_opt(lat.map(|l| l.p99), 2)),
        (
            "of ceiling",
            r.bandwidth.as_ref().map_or("-".into(), |b| {
                let mark = if b.unsteady() { "*" } else { "" };
                format!("{:.0}%{mark}", b.fraction * 100.0)
            }),
        ),
        (
            "$/1M tok",
            fmt_opt(r.cost.as_ref().map(|c| c.usd_per_million_tokens), 4),
        ),
        (
            "$/1M ja chars",
            fmt_opt(r.cost.as_ref().and_then(|c| c.usd_per_million_ja_chars), 4),
        ),
        ("noisy", if r.noisy { "yes".into() } else { "".into() }),
    ]
}

fn csv(rows: &[BenchRow]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let head: Vec<&str> = columns(rows.first().context("no rows")?)
        .iter()
        .map(|c| c.0)
        .collect();
    let mut header: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    header.extend(
        [
            "samples",
            "load_seconds",
            "peak_rss_bytes",
            "other_cpu_percent",
            "git_sha",
            "ceiling_readings_gb_s",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for r in rows {
        let mut rec: Vec<String> = columns(r).into_iter().map(|c| c.1).collect();
        rec.push(
            r.samples
                .iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(";"),
        );
        rec.push(r.load_seconds.map_or(String::new(), |s| format!("{s:.3}")));
        rec.push(r.peak_rss_bytes.map_or(String::new(), |b| b.to_string()));
        rec.push(fmt_opt(r.other_cpu_percent, 1));
        rec.push(r.harness.git_sha.clone().unwrap_or_default());
        rec.push(
            r.bandwidth
                .as_ref()
                .map_or(String::new(), |b| readings(b, 2, ";")),
        );
        w.write_record(&rec)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Escape a cell for a Markdown table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(rows: &[BenchRow]) -> String {
    let device = rows[0].device.name.as_str();
    let mut s = String::new();
    let cols = columns(&rows[0]);
    s += &format!(
        "| {} |\n",
        cols.iter().map(|c| c.0).collect::<Vec<_>>().join(" | ")
    );
    s += &format!("|{}\n", cols.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        s += &format!(
            "| {} |\n",
            columns(r)
                .iter()
                .map(|c| cell(&c.1))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let r = &rows[0];
    s += &format!(
        "\nhakaru {} ({}{}), {} on {}{}, load {} s, peak RSS {}",
        r.harness.version,
        r.harness
            .git_sha
            .as_deref()
            .map_or("unknown", |g| &g[..g.len().min(12)]),
        if r.harness.git_dirty == Some(true) {
            ", dirty"
        } else {
            ""
        },
        device,
        r.host.cpu_model.as_deref().unwrap_or("unknown CPU"),
        r.device
            .kernels
            .as_ref()
            .map_or(String::new(), |k| format!(" ({k} kernels)")),
        fmt_opt(r.load_seconds, 2),
        rows.iter()
            .filter_map(|r| r.peak_rss_bytes)
            .max()
            .map_or("-".into(), |b| format!("{:.2} GB", b as f64 / 1e9)),
    );
    let bws: Vec<&BandwidthUse> = rows.iter().filter_map(|r| r.bandwidth.as_ref()).collect();
    let all: Vec<f64> = bws
        .iter()
        .flat_map(|b| b.readings_gb_s.iter().copied())
        .collect();
    if let (Some(lo), Some(hi)) = (
        all.iter().copied().reduce(f64::min),
        all.iter().copied().reduce(f64::max),
    ) {
        s += &format!(
            ", memory bandwidth {lo:.1}–{hi:.1} GB/s (read at start and after each tg test; each tg row against the higher reading around it)"
        );
    } else if let Some(b) = bws.first() {
        s += &format!(", memory bandwidth {:.1} GB/s", b.ceiling_gb_s);
    }
    s += "\n";
    if bws.iter().any(|b| b.unsteady()) {
        s += &format!(
            "*: the memory bandwidth moved by more than {:.0}% between the readings around the test (others used the memory meanwhile): its share of the ceiling is less certain\n",
            BandwidthUse::UNSTEADY_SPREAD * 100.0
        );
    }
    if let Some(note) = rows.iter().find_map(|r| r.energy_note.as_ref()) {
        s += &format!("energy: not measured ({note})\n");
    }
    if let Some(c) = rows.iter().find_map(|r| r.cost.as_ref()) {
        s += &format!(
            "cost at {} USD/h ({}{}{}); $/1M tok is per prompt token for pp rows, per output token for tg rows, per token of either for pp+tg rows\n",
            c.usd_per_hour,
            c.price_name,
            c.provider.as_deref().map(|p| format!(", {p}")).unwrap_or_default(),
            c.date.as_deref().map(|d| format!(", {d}")).unwrap_or_default(),
        );
        if let Some(cpt) = c.ja_chars_per_token {
            s += &format!("Japanese characters per token: {cpt:.3}\n");
        }
        if !c.api_prices.is_empty() {
            s += "\n| API | input $/1M tok | output $/1M tok | as of |\n|---|---|---|---|\n";
            for a in &c.api_prices {
                s += &format!(
                    "| {} | {} | {} | {} |\n",
                    cell(&a.model),
                    a.input_per_million,
                    a.output_per_million,
                    a.date
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_args_drop_thread_counts_and_output() {
        let argv = "bench -m x.gguf -t 1,2 -p 512 -o md --pg 8,2 -t4 -ojson --thread-counts=1,2 --output=csv --threads-x -r 3 --thread-counts 3";
        let got = child_args(argv.split(' ').map(String::from));
        assert_eq!(
            got.join(" "),
            "bench -m x.gguf -p 512 --pg 8,2 --threads-x -r 3"
        );
    }
}
