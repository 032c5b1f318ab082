//! `hakaru models`: the registry's models with their size at bf16, Q8_0 and Q4_K_M, and whether
//! each fits this machine's memory (weights + KV cache for 4096 tokens + the CPU prefill's repacked weight
//! copies + 10% headroom).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hakaru_engine::registry::{self, Entry, Precision, Registry};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct ModelsArgs {
    /// Print the registry (shapes, GGUF builds, memory needs) as JSON
    #[arg(long)]
    pub json: bool,
    /// A model registry file to use instead of the built-in one
    #[arg(long, value_name = "FILE", env = "HAKARU_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Check fits against this much memory, in GiB, instead of what this machine has available
    #[arg(long, value_name = "GIB")]
    pub memory_gib: Option<f64>,
}

/// The precisions the listing shows.
const SHOWN: [Precision; 3] = [Precision::Bf16, Precision::Q8_0, Precision::Q4KM];

pub fn run(args: &ModelsArgs) -> Result<()> {
    let registry = Registry::load(args.registry.as_deref())?;
    let available = match args.memory_gib {
        Some(g) if g.is_finite() && g >= 0.0 => (g * (1u64 << 30) as f64) as u64,
        Some(g) => bail!("--memory-gib must be a non-negative number of GiB, got {g}"),
        None => registry::available_memory(),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&to_json(&registry, available))
            .context("cannot serialize the registry")?
            + "\n"
    } else {
        render_table(&registry, available)
    };
    super::pull::print_stdout(&text)
}

/// `7_615_616_512` → `7.62B`.
pub fn human_params(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2}B", n as f64 / 1e9)
    } else {
        format!("{:.0}M", n as f64 / 1e6)
    }
}

fn gb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1e9)
}

fn fitting(e: &Entry, available: u64) -> Vec<&'static str> {
    let cfg = e.config();
    SHOWN
        .iter()
        .filter(|p| {
            let est = registry::estimate(&cfg, **p);
            registry::fits(est.total(), available).fits()
        })
        .map(|p| p.as_str())
        .collect()
}

fn render_table(r: &Registry, available: u64) -> String {
    let header = [
        "NAME",
        "FAMILY",
        "PARAMS",
        "BF16 GB",
        "Q8_0 GB",
        "Q4_K_M GB",
        "FITS",
        "REPO",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for e in r.entries() {
        let cfg = e.config();
        let fit = fitting(e, available);
        let mut row = vec![
            e.name.clone(),
            e.family.to_string(),
            human_params(cfg.param_count()),
        ];
        row.extend(
            SHOWN
                .iter()
                .map(|p| gb(registry::weight_bytes_at(&cfg, *p))),
        );
        row.push(if fit.is_empty() {
            "-".to_string()
        } else {
            fit.join(",")
        });
        row.push(e.repo.clone());
        rows.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let w = widths[c];
            // Numbers right-aligned, text left-aligned; the last column is not padded.
            if (2..=5).contains(&c) {
                line.push_str(&format!("{cell:>w$}  "));
            } else if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s.push_str(&format!(
        "\nGB: weights only (10^9 bytes; Q4_K_M is an estimate at ~4.85 bits/weight). FITS: weights + KV cache for {} \
         tokens + the CPU prefill's repacked weight copies + {}% headroom within {:.1} GiB available.\nRegistry: {} (version {}, sha256 {}).\n",
        registry::FIT_CONTEXT_TOKENS,
        registry::FIT_HEADROOM_PERCENT,
        available as f64 / (1u64 << 30) as f64,
        r.origin,
        r.version,
        &r.hash()[..12],
    ));
    s
}

fn to_json(r: &Registry, available: u64) -> serde_json::Value {
    let models: Vec<serde_json::Value> = r
        .entries()
        .iter()
        .map(|e| {
            let cfg = e.config();
            let mut memory = serde_json::Map::new();
            for p in SHOWN {
                let est = registry::estimate(&cfg, p);
                let fit = registry::fits(est.total(), available);
                memory.insert(
                    p.as_str().to_string(),
                    json!({
                        "weights_bytes": est.weights,
                        "kv_cache_bytes": est.kv_cache,
                        "prefill_copy_bytes": est.prefill_copy,
                        "needed_bytes": est.needed,
                        "fits": fit.fits(),
                    }),
                );
            }
            json!({
                "name": e.name,
                "family": e.family,
                "repo": e.repo,
                "arch": e.arch.hf_name(),
                "params": cfg.param_count(),
                "config": cfg,
                "gguf": e.gguf,
                "memory": memory,
            })
        })
        .collect();
    json!({
        "registry": { "origin": r.origin, "version": r.version, "sha256": r.hash() },
        "available_bytes": available,
        "fit_rule": {
            "context_tokens": registry::FIT_CONTEXT_TOKENS,
            "headroom_percent": registry::FIT_HEADROOM_PERCENT,
        },
        "models": models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_params_table() {
        for (n, s) in [
            (494_032_768, "494M"),
            (1_543_714_304, "1.54B"),
            (7_615_616_512, "7.62B"),
            (32_763_876_352, "32.76B"),
        ] {
            assert_eq!(human_params(n), s, "{n}");
        }
    }

    #[test]
    fn table_marks_what_fits() {
        let r = Registry::builtin();
        let t = render_table(r, 12 << 30);
        let line = t.lines().find(|l| l.starts_with("qwen2.5-7b ")).unwrap();
        // 7.62B: bf16 15.23 GB does not fit 12 GiB. Q4_K_M 4.62 GB does with the prefill's
        // AVX-512/AVX2 tile copies (about 5.3 GB more on x86 CPUs), not where candle's AMX
        // prefill keeps a second one (about 8.9 GB more). Q8_0 8.09 GB fits only where
        // candle's prefill keeps no copy of it (CPUs without VNNI).
        assert!(
            line.contains("15.23") && line.contains("8.09") && line.contains("4.62"),
            "{line}"
        );
        assert!(!line.contains("bf16"), "{line}");
        let cfg = r.get("qwen2.5-7b").unwrap().config();
        for (p, name) in [(Precision::Q8_0, "Q8_0"), (Precision::Q4KM, "Q4_K_M ")] {
            let est = registry::estimate(&cfg, p);
            assert_eq!(
                line.contains(name),
                est.needed <= 12 << 30,
                "{line} {est:?}"
            );
        }
        if !hakaru_engine::model::quant::candle_amx_q4k() {
            assert!(line.contains("Q4_K_M "), "{line}");
        }
        // With 24 GiB, Q4_K_M fits with every copy counted.
        let t = render_table(r, 24 << 30);
        let line = t.lines().find(|l| l.starts_with("qwen2.5-7b ")).unwrap();
        assert!(line.contains("Q4_K_M "), "{line}");
        let none = render_table(r, 0);
        let line = none
            .lines()
            .find(|l| l.starts_with("qwen2.5-0.5b "))
            .unwrap();
        assert!(line.contains(" - "), "{line}");
    }
}
