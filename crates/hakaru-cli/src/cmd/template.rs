//! `hakaru template`: render a model's chat template for a list of messages, byte for byte as
//! transformers' `tokenizer.apply_chat_template(messages, tokenize=False, ...)` renders it
//! (except that `strftime_now` is not defined, so prompts do not depend on today's date).
//!
//! Only the tokenizer configuration files are read (`tokenizer_config.json`,
//! `chat_template.jinja`, `special_tokens_map.json`); no weights, no tokenizer.json. For a hub
//! reference only those files are downloaded (`ResolveOptions::weights` off).
//!
//! GGUF models take their template from where generation takes it (`load::load_gguf`): the
//! directory's tokenizer files when a tokenizer.json is beside the .gguf, else the GGUF metadata
//! (`tokenizer.chat_template`, bos/eos ids), which only the header holds, so only the header is
//! read. A hub GGUF whose .gguf is not in the cache uses the repo's tokenizer_config.json /
//! chat_template.jinja; without those the .gguf must be pulled first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hakaru_engine::hub::{self, ResolveOptions};
use hakaru_engine::model_ref::ModelRef;
use hakaru_engine::registry::Registry;
use hakaru_engine::template::{load_messages, ChatTemplate};
use hakaru_engine::tokenizer::{ChatConfig, TokenizerBundle};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct TemplateArgs {
    /// Model whose chat template to use: org/name[@revision], org/name[@revision]:FILE.gguf, a
    /// registry name (see `hakaru models`), a model directory or a .gguf file. Only the tokenizer
    /// configuration files are downloaded, never weights
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
    /// Use only the local hub cache, never the network (same as HF_HUB_OFFLINE=1)
    #[arg(long)]
    pub offline: bool,
}

pub fn run(args: &TemplateArgs) -> Result<()> {
    // The messages first: a mistake there is reported before anything is downloaded.
    let messages = load_messages(&args.messages)?;
    let chat = model_chat(&args.model, args.offline)?;
    let config = chat.config();
    let own;
    let template: &ChatTemplate = match &args.chat_template {
        Some(path) => {
            own = ChatTemplate::from_file(path)?;
            &own
        }
        None => match config.chat_template.as_ref() {
            Some(t) => t,
            None => bail!("{}", chat.no_template),
        },
    };
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

/// Where a model's special tokens and chat template come from.
enum Source {
    /// tokenizer_config.json, chat_template.jinja, special_tokens_map.json.
    Files(Box<ChatConfig>),
    /// GGUF metadata (the rebuilt tokenizer carries the template and special tokens).
    Gguf(Box<TokenizerBundle>),
}

struct ModelChat {
    source: Source,
    /// The error to give when the model has no chat template and no --chat-template was passed.
    no_template: String,
}

impl ModelChat {
    fn config(&self) -> &ChatConfig {
        match &self.source {
            Source::Files(c) => c,
            Source::Gguf(b) => b.chat_config(),
        }
    }

    fn files(model: &str, config: ChatConfig) -> Self {
        ModelChat {
            source: Source::Files(Box::new(config)),
            no_template: format!(
                "model `{model}` has no chat template: neither chat_template.jinja nor a `chat_template` field in \
                 tokenizer_config.json; pass one with --chat-template FILE"
            ),
        }
    }
}

/// The special tokens and chat template of a model reference; no weights are read or downloaded.
fn model_chat(model: &str, offline: bool) -> Result<ModelChat> {
    match Registry::builtin().parse_ref(model)? {
        ModelRef::LocalDir(dir) => Ok(ModelChat::files(model, ChatConfig::from_dir(&dir)?)),
        ModelRef::GgufFile(path) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            if dir.join("tokenizer.json").is_file() {
                // As generation does: the tokenizer files beside the .gguf win over its metadata.
                Ok(ModelChat::files(model, ChatConfig::from_dir(dir)?))
            } else {
                gguf_chat(&path)
            }
        }
        r @ (ModelRef::Hub { .. } | ModelRef::HubGguf { .. }) => hub_chat(model, &r, offline),
        ModelRef::Synthetic(_) => bail!(
            "model `{model}`: synthetic models have no tokenizer files and so no chat template; pass a model \
             directory, a hub reference or a .gguf file"
        ),
    }
}

/// The chat template and special tokens in a GGUF file's metadata (only the header is read).
fn gguf_chat(path: &Path) -> Result<ModelChat> {
    let (_, content, _, _) = hakaru_engine::load::gguf_config(path)?;
    let bundle = hakaru_engine::gguf_tokenizer::from_gguf(&content, path)?.with_context(|| {
        format!(
            "{}: the GGUF metadata holds no tokenizer (`tokenizer.ggml.*`), so no special tokens or chat template; \
             put the model's tokenizer.json and tokenizer_config.json beside the file, or pass --chat-template FILE",
            path.display()
        )
    })?;
    Ok(ModelChat {
        source: Source::Gguf(Box::new(bundle)),
        no_template: format!(
            "{}: GGUF metadata key `tokenizer.chat_template` is missing, so the model has no chat template; pass \
             one with --chat-template FILE",
            path.display()
        ),
    })
}

/// Resolve a hub reference without weights (downloading only the config files unless offline)
/// and read the chat configuration from its snapshot.
fn hub_chat(model: &str, r: &ModelRef, offline: bool) -> Result<ModelChat> {
    let mut opts = ResolveOptions::from_env();
    opts.offline |= offline;
    opts.weights = false;
    opts.progress = Some(Arc::new(crate::cmd::pull::BarProgress::new()));
    let resolved = hub::resolve(r, &opts)?;
    let dir = resolved
        .dir
        .clone()
        .with_context(|| format!("model `{model}` resolved to no snapshot directory"))?;
    let at = format!(
        "{} at commit {}",
        resolved.repo.as_deref().unwrap_or(model),
        resolved.commit_sha.as_deref().unwrap_or("?")
    );
    let ModelRef::HubGguf { file, .. } = r else {
        return Ok(ModelChat::files(model, ChatConfig::from_dir(&dir)?));
    };
    // A GGUF build: the template comes from where generation takes it.
    if resolved.tokenizer_path().is_some() {
        return Ok(ModelChat::files(model, ChatConfig::from_dir(&dir)?));
    }
    let gguf = dir.join(file);
    if gguf.is_file() {
        // Pulled before: its metadata is at hand, and reading the header is cheap.
        return gguf_chat(&gguf);
    }
    if resolved.file("tokenizer_config.json").is_some()
        || resolved.file("chat_template.jinja").is_some()
    {
        return Ok(ModelChat::files(model, ChatConfig::from_dir(&dir)?));
    }
    bail!(
        "{at} ships no tokenizer_config.json or chat_template.jinja, and the chat template of a GGUF build is \
         embedded in the .gguf file itself, which `hakaru template` does not download. Run `hakaru pull {model}` \
         to download {file}, then run this command again (it reads the template from the cached file's header), \
         or pass the .gguf path that `hakaru pull` prints as --model"
    )
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
