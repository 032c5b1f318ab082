//! `hakaru template`: render a model's chat template for a list of messages, byte for byte as
//! transformers' `tokenizer.apply_chat_template(messages, tokenize=False, ...)` renders it
//! (except that `strftime_now` is not defined, so prompts do not depend on today's date).
//!
//! Only the tokenizer configuration files are read (`tokenizer_config.json`,
//! `chat_template.jinja`, `special_tokens_map.json`); no weights, no tokenizer.json.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hakaru_engine::model_ref::ModelRef;
use hakaru_engine::template::{load_messages, ChatTemplate};
use hakaru_engine::tokenizer::ChatConfig;
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct TemplateArgs {
    /// Model whose chat template to use: a local model directory (with tokenizer_config.json
    /// and/or chat_template.jinja)
    #[arg(long, short = 'm')]
    pub model: String,
    /// JSON file with the conversation: [{"role": "user", "content": "…"}, …]
    #[arg(long, value_name = "FILE")]
    pub messages: PathBuf,
    /// End the prompt with the header of an assistant turn, ready for generation
    #[arg(long)]
    pub add_generation_prompt: bool,
    /// JSON file with a list of tool schemas, passed to the template as `tools`
    #[arg(long, value_name = "FILE")]
    pub tools: Option<PathBuf>,
    /// Use this Jinja file instead of the model's chat template
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
    /// Set a template variable to a JSON value, e.g. --set enable_thinking=false
    /// --set date_string='"01 Jan 2025"' (repeatable; strings need JSON quotes)
    #[arg(long = "set", value_name = "KEY=JSON")]
    pub set: Vec<String>,
    /// Print {"prompt": "…"} instead of the bare prompt
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &TemplateArgs) -> Result<()> {
    let config = chat_config(&args.model)?;
    let own;
    let template: &ChatTemplate = match &args.chat_template {
        Some(path) => {
            own = ChatTemplate::from_file(path)?;
            &own
        }
        None => config.chat_template.as_ref().with_context(|| {
            format!(
                "model `{}` has no chat template: neither chat_template.jinja nor a `chat_template` field in \
                 tokenizer_config.json; pass one with --chat-template FILE",
                args.model
            )
        })?,
    };
    let messages = load_messages(&args.messages)?;
    let mut opts = config.render_options(args.add_generation_prompt);
    if let Some(path) = &args.tools {
        opts.tools = Some(read_tools(path)?);
    }
    for item in &args.set {
        let (key, value) = parse_set(item)?;
        match key.as_str() {
            "tools" => opts.tools = Some(value),
            "messages" => bail!("--set {item}: the messages come from --messages"),
            "add_generation_prompt" => {
                bail!("--set {item}: use the --add-generation-prompt flag instead")
            }
            _ => {
                opts.extra.insert(key, value);
            }
        }
    }
    let prompt = template.render(&messages, &opts)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&json!({ "prompt": prompt }))?
        )?;
    } else {
        out.write_all(prompt.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The special tokens and chat template of a model reference.
fn chat_config(model: &str) -> Result<ChatConfig> {
    match ModelRef::parse(model)? {
        ModelRef::LocalDir(dir) => Ok(ChatConfig::from_dir(&dir)?),
        ModelRef::GgufFile(path) => bail!(
            "{}: reading the chat template from GGUF metadata is not supported by `hakaru template`; pass the \
             directory holding the model's tokenizer_config.json, or --model DIR --chat-template FILE",
            path.display()
        ),
        // INTEGRATION POINT (hub): resolve the hub reference with `hakaru_engine::hub::resolve` (the
        // config files are enough; no weights are needed) and read the snapshot directory with
        // `ChatConfig::from_dir`, or build it with `ChatConfig::from_files` from the resolved
        // `tokenizer_config.json` / `chat_template.jinja` paths (+ `fill_from_special_tokens_map`).
        r @ (ModelRef::Hub { .. } | ModelRef::HubGguf { .. }) => bail!(
            "model `{r}`: `hakaru template` reads local model directories only for now; pass the directory that \
             holds the model's tokenizer_config.json (for a downloaded model, its hub cache snapshot directory)"
        ),
        ModelRef::Synthetic(_) => bail!(
            "model `{model}`: synthetic models have no tokenizer files and so no chat template; pass a model directory"
        ),
    }
}

fn read_tools(path: &Path) -> Result<Value> {
    let v = hakaru_engine::config::read_json(path)?;
    if !v.is_array() {
        bail!("{}: expected a JSON list of tool schemas like [{{\"type\": \"function\", \"function\": {{…}}}}]", path.display());
    }
    Ok(v)
}

/// `key=JSON` of `--set`.
fn parse_set(item: &str) -> Result<(String, Value)> {
    let Some((key, raw)) = item.split_once('=') else {
        bail!("--set {item}: expected KEY=JSON, e.g. --set enable_thinking=false");
    };
    let key = key.trim();
    if key.is_empty()
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || key.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!("--set {item}: `{key}` is not a template variable name (letters, digits and _)");
    }
    let value: Value = serde_json::from_str(raw).with_context(|| {
        format!("--set {item}: the value is not JSON; write strings in JSON quotes, e.g. --set {key}='\"text\"'")
    })?;
    Ok((key.to_string(), value))
}
