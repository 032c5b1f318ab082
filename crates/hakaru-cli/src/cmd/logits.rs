use anyhow::{bail, Context, Result};
use hakaru_engine::model::Logits;

use super::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Token ids, comma-separated: 1,2,3
    #[arg(long, value_delimiter = ',', required = true)]
    pub ids: Vec<u32>,
    /// all: one row per position; last: the last position only
    #[arg(long, default_value = "all", value_parser = ["all", "last"])]
    pub positions: String,
}

pub fn run(args: &LogitsArgs) -> Result<()> {
    if args.ids.is_empty() {
        bail!("--ids needs at least one token id");
    }
    let opened = args.model.open()?;
    let t = &opened.loaded.transformer;
    let which = if args.positions == "last" {
        Logits::Last
    } else {
        Logits::All
    };
    let mut cache = t.new_cache();
    let logits = t
        .forward(&args.ids, &mut cache, which)
        .context("forward pass failed")?;
    let rows = logits.to_vec2::<f32>()?;
    let out = serde_json::json!({ "logits": rows });
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
