//! A model's tokenizer together with what goes with it: special tokens, the chat template, the ids
//! that end generation, and hashes for provenance.
//!
//! Files of a model directory (the hub layout):
//!
//! * `tokenizer.json` (required): the fast-tokenizer file, loaded with the `tokenizers` crate.
//! * `tokenizer_config.json` (optional): `chat_template` (a string, or a list of
//!   `{"name", "template"}` of which `default` is used), `bos_token` / `eos_token` / `pad_token` /
//!   `unk_token` (strings or AddedToken objects `{"content": …}`), `tokenizer_class`,
//!   `add_bos_token` / `add_eos_token`, `clean_up_tokenization_spaces`.
//! * `chat_template.jinja` (optional): the newer home of the template; it takes precedence over
//!   tokenizer_config.json's field, as in transformers.
//! * `special_tokens_map.json` (optional, read by [`TokenizerBundle::from_dir`] and
//!   [`ChatConfig::from_dir`]): fills special tokens tokenizer_config.json does not name.
//! * `generation_config.json` (optional): `eos_token_id` (an id or a list), `bos_token_id`.
//!
//! Encoding follows transformers: with `add_special_tokens` the tokenizer.json post-processor
//! decides what is added, except for the Llama tokenizer classes (`LlamaTokenizer[Fast]`,
//! `CodeLlamaTokenizer[Fast]`), whose `add_bos_token` (default true) and `add_eos_token` (default
//! false) replace the post-processor, as transformers' `LlamaTokenizerFast.update_post_processor`
//! does. Decoding never applies `clean_up_tokenization_spaces` (see [`TokenizerBundle::decode`]).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

use crate::config::{read_json, token_id_list};
use crate::error::{Error, Result};
use crate::template::{ChatTemplate, RenderOptions};

/// Special tokens as strings (an AddedToken object is reduced to its `content`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub pad_token: Option<String>,
}

/// What a chat prompt needs from a model's tokenizer files, without the tokenizer itself:
/// special tokens and the chat template. Read from `tokenizer_config.json`,
/// `chat_template.jinja` and `special_tokens_map.json`.
#[derive(Debug, Default)]
pub struct ChatConfig {
    pub special: SpecialTokens,
    pub unk_token: Option<String>,
    /// `additional_special_tokens` (contents of AddedToken objects).
    pub additional_special_tokens: Vec<String>,
    /// `tokenizer_class` of tokenizer_config.json (`PreTrainedTokenizerFast`, `LlamaTokenizerFast`…).
    pub tokenizer_class: Option<String>,
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    pub clean_up_tokenization_spaces: Option<bool>,
    /// The compiled template; its `source_name` says which file it came from.
    pub chat_template: Option<ChatTemplate>,
}

/// A `bos_token`-like field: a string, an AddedToken object with `content`, or null.
fn token_field(cfg: &Value, key: &str, path: &Path) -> Result<Option<String>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(Error::file(
                path,
                format!("field `{key}`: an AddedToken object needs a string `content`, e.g. {{\"content\": \"<s>\"}}"),
            )),
        },
        Some(other) => Err(Error::file(
            path,
            format!("field `{key}`: expected a string or an AddedToken object {{\"content\": …}}, found {other}"),
        )),
    }
}

/// A list of tokens (strings or AddedToken objects), e.g. `additional_special_tokens`.
fn token_list_field(cfg: &Value, key: &str, path: &Path) -> Result<Vec<String>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
                    Error::file(path, format!("field `{key}`: index {i}: an AddedToken object needs a string `content`"))
                }),
                other => Err(Error::file(
                    path,
                    format!("field `{key}`: index {i}: expected a string or an AddedToken object, found {other}"),
                )),
            })
            .collect(),
        Some(other) => Err(Error::file(path, format!("field `{key}`: expected a list of tokens, found {other}"))),
    }
}

fn bool_field(cfg: &Value, key: &str, path: &Path) -> Result<Option<bool>> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Error::file(
            path,
            format!("field `{key}`: expected true or false, found {other}"),
        )),
    }
}

/// `chat_template` of tokenizer_config.json: a string, or a list of `{"name", "template"}`.
fn template_field(cfg: &Value, path: &Path) -> Result<Option<String>> {
    match cfg.get("chat_template") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(list)) => {
            let mut names = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let name = item.get("name").and_then(Value::as_str);
                let text = item.get("template").and_then(Value::as_str);
                match (name, text) {
                    (Some("default"), Some(t)) => return Ok(Some(t.to_string())),
                    (Some(n), Some(_)) => names.push(n.to_string()),
                    _ => {
                        return Err(Error::file(
                            path,
                            format!(
                                "field `chat_template`: index {i}: expected {{\"name\": string, \"template\": string}}"
                            ),
                        ))
                    }
                }
            }
            tracing::warn!(
                path = %path.display(),
                "chat_template lists templates {names:?} but none is named `default`; the model has no default chat template"
            );
            Ok(None)
        }
        Some(other) => Err(Error::file(
            path,
            format!("field `chat_template`: expected a string or a list of {{\"name\", \"template\"}}, found {other}"),
        )),
    }
}

impl ChatConfig {
    /// Read the chat configuration from a model directory; every file is optional.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let opt = |name: &str| -> Option<PathBuf> { Some(dir.join(name)).filter(|p| p.is_file()) };
        let mut cfg = Self::from_files(
            opt("tokenizer_config.json").as_deref(),
            opt("chat_template.jinja").as_deref(),
        )?;
        if let Some(map) = opt("special_tokens_map.json") {
            cfg.fill_from_special_tokens_map(&map)?;
        }
        Ok(cfg)
    }

    /// Read `tokenizer_config.json` and `chat_template.jinja` (which wins over the config's
    /// `chat_template`, as in transformers). Either may be absent.
    pub fn from_files(
        tokenizer_config: Option<&Path>,
        chat_template_jinja: Option<&Path>,
    ) -> Result<Self> {
        let mut out = ChatConfig::default();
        let mut template: Option<(String, String)> = None;
        if let Some(path) = tokenizer_config {
            let cfg = read_json(path)?;
            if !cfg.is_object() {
                return Err(Error::file(path, "expected a JSON object"));
            }
            out.special = SpecialTokens {
                bos_token: token_field(&cfg, "bos_token", path)?,
                eos_token: token_field(&cfg, "eos_token", path)?,
                pad_token: token_field(&cfg, "pad_token", path)?,
            };
            out.unk_token = token_field(&cfg, "unk_token", path)?;
            out.additional_special_tokens =
                token_list_field(&cfg, "additional_special_tokens", path)?;
            out.tokenizer_class = match cfg.get("tokenizer_class") {
                Some(Value::String(s)) => Some(s.clone()),
                None | Some(Value::Null) => None,
                Some(other) => {
                    return Err(Error::file(
                        path,
                        format!("field `tokenizer_class`: expected a string, found {other}"),
                    ))
                }
            };
            out.add_bos_token = bool_field(&cfg, "add_bos_token", path)?;
            out.add_eos_token = bool_field(&cfg, "add_eos_token", path)?;
            out.clean_up_tokenization_spaces =
                bool_field(&cfg, "clean_up_tokenization_spaces", path)?;
            if let Some(t) = template_field(&cfg, path)? {
                template = Some((format!("{} (field `chat_template`)", path.display()), t));
            }
        }
        if let Some(path) = chat_template_jinja {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::file(path, format!("cannot read the chat template: {e}")))?;
            template = Some((path.display().to_string(), text));
        }
        if let Some((source, text)) = template {
            out.chat_template = Some(ChatTemplate::new(&source, &text)?);
        }
        Ok(out)
    }

    /// Fill special tokens that tokenizer_config.json left unset from `special_tokens_map.json`.
    pub fn fill_from_special_tokens_map(&mut self, path: &Path) -> Result<()> {
        let map = read_json(path)?;
        let fill = |slot: &mut Option<String>, key: &str| -> Result<()> {
            if slot.is_none() {
                *slot = token_field(&map, key, path)?;
            }
            Ok(())
        };
        fill(&mut self.special.bos_token, "bos_token")?;
        fill(&mut self.special.eos_token, "eos_token")?;
        fill(&mut self.special.pad_token, "pad_token")?;
        fill(&mut self.unk_token, "unk_token")?;
        if self.additional_special_tokens.is_empty() {
            self.additional_special_tokens =
                token_list_field(&map, "additional_special_tokens", path)?;
        }
        Ok(())
    }

    /// The template variables transformers passes from the tokenizer's `special_tokens_map`:
    /// `bos_token`, `eos_token`, and `pad_token` / `unk_token` / `additional_special_tokens` as
    /// extra values when set.
    pub fn render_options(&self, add_generation_prompt: bool) -> RenderOptions {
        let mut opts = RenderOptions {
            add_generation_prompt,
            bos_token: self.special.bos_token.clone(),
            eos_token: self.special.eos_token.clone(),
            ..Default::default()
        };
        if let Some(p) = &self.special.pad_token {
            opts.extra
                .insert("pad_token".into(), Value::String(p.clone()));
        }
        if let Some(u) = &self.unk_token {
            opts.extra
                .insert("unk_token".into(), Value::String(u.clone()));
        }
        if !self.additional_special_tokens.is_empty() {
            let list = self
                .additional_special_tokens
                .iter()
                .cloned()
                .map(Value::String)
                .collect();
            opts.extra
                .insert("additional_special_tokens".into(), Value::Array(list));
        }
        opts
    }

    /// Whether this tokenizer class lets `add_bos_token`/`add_eos_token` replace the
    /// post-processor (transformers' Llama tokenizer classes).
    fn overrides_post_processor(&self) -> bool {
        matches!(
            self.tokenizer_class.as_deref(),
            Some(
                "LlamaTokenizer"
                    | "LlamaTokenizerFast"
                    | "CodeLlamaTokenizer"
                    | "CodeLlamaTokenizerFast"
            )
        )
    }
}

/// A tokenizer with its special tokens, chat template, stop ids and provenance hashes.
pub struct TokenizerBundle {
    tokenizer: Tokenizer,
    chat: ChatConfig,
    /// `Some((add_bos, add_eos))` when these, not the post-processor, decide what
    /// `encode(.., true)` adds.
    add_special_override: Option<(bool, bool)>,
    generation_eos: Vec<u32>,
    generation_bos: Option<u32>,
    extra_eos: Vec<u32>,
    vocab_size: usize,
    tokenizer_sha256: String,
}

impl std::fmt::Debug for TokenizerBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenizerBundle")
            .field("special", &self.chat.special)
            .field("vocab_size", &self.vocab_size)
            .field("eos_ids", &self.eos_ids())
            .field("tokenizer_sha256", &self.tokenizer_sha256)
            .field("chat_template", &self.chat.chat_template)
            .finish_non_exhaustive()
    }
}

fn tok_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("tokenizer: {what}: {e}"))
}

impl TokenizerBundle {
    /// Load from a model directory: `tokenizer.json` (required) and whichever of
    /// `tokenizer_config.json`, `chat_template.jinja`, `special_tokens_map.json`,
    /// `generation_config.json` exist.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tokenizer_json = dir.join("tokenizer.json");
        if !tokenizer_json.is_file() {
            return Err(missing_tokenizer_json(&tokenizer_json));
        }
        let opt = |name: &str| -> Option<PathBuf> { Some(dir.join(name)).filter(|p| p.is_file()) };
        let chat = ChatConfig::from_dir(dir)?;
        Self::build(
            &tokenizer_json,
            chat,
            opt("generation_config.json").as_deref(),
        )
    }

    /// Load from explicit files; only `tokenizer_json` is required.
    pub fn from_files(
        tokenizer_json: &Path,
        tokenizer_config: Option<&Path>,
        chat_template_jinja: Option<&Path>,
        generation_config: Option<&Path>,
    ) -> Result<Self> {
        let chat = ChatConfig::from_files(tokenizer_config, chat_template_jinja)?;
        Self::build(tokenizer_json, chat, generation_config)
    }

    fn build(
        tokenizer_json: &Path,
        chat: ChatConfig,
        generation_config: Option<&Path>,
    ) -> Result<Self> {
        let bytes = match std::fs::read(tokenizer_json) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing_tokenizer_json(tokenizer_json))
            }
            Err(e) => {
                return Err(Error::file(
                    tokenizer_json,
                    format!("cannot read the tokenizer: {e}"),
                ))
            }
        };
        let tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| {
            Error::file(
                tokenizer_json,
                format!("not a tokenizer file the `tokenizers` library can load: {e}; re-save it with a recent transformers (tokenizer.save_pretrained)"),
            )
        })?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let (generation_eos, generation_bos) = match generation_config {
            Some(p) => read_generation_config(p)?,
            None => (vec![], None),
        };
        let source = tokenizer_json.display().to_string();
        Self::assemble(
            tokenizer,
            chat,
            generation_eos,
            generation_bos,
            sha,
            &source,
        )
    }

    /// Build from an in-memory tokenizer (the GGUF loader's path). `tokenizer_sha256` is then the
    /// sha256 of the tokenizer's JSON serialization, since there is no tokenizer.json file.
    pub fn from_tokenizer(
        tok: Tokenizer,
        special: SpecialTokens,
        chat_template: Option<String>,
    ) -> Result<Self> {
        let chat_template = match chat_template {
            Some(t) => Some(ChatTemplate::new(
                "GGUF metadata `tokenizer.chat_template`",
                &t,
            )?),
            None => None,
        };
        let chat = ChatConfig {
            special,
            chat_template,
            ..Default::default()
        };
        let serialized = tok
            .to_string(false)
            .map_err(|e| tok_err("cannot serialize the tokenizer", e))?;
        let sha = hex::encode(Sha256::digest(serialized.as_bytes()));
        Self::assemble(tok, chat, vec![], None, sha, "the in-memory tokenizer")
    }

    fn assemble(
        tokenizer: Tokenizer,
        chat: ChatConfig,
        generation_eos: Vec<u32>,
        generation_bos: Option<u32>,
        tokenizer_sha256: String,
        source: &str,
    ) -> Result<Self> {
        let add_special_override = if chat.overrides_post_processor() {
            Some((
                chat.add_bos_token.unwrap_or(true),
                chat.add_eos_token.unwrap_or(false),
            ))
        } else {
            None
        };
        let bundle = TokenizerBundle {
            vocab_size: tokenizer.get_vocab_size(true),
            tokenizer,
            chat,
            add_special_override,
            generation_eos,
            generation_bos,
            extra_eos: vec![],
            tokenizer_sha256,
        };
        for (name, tok) in [
            ("bos_token", bundle.chat.special.bos_token.clone()),
            ("eos_token", bundle.chat.special.eos_token.clone()),
        ] {
            if let Some(t) = tok {
                if bundle.tokenizer.token_to_id(&t).is_none() {
                    return Err(Error::Other(format!(
                        "tokenizer: {name} `{t}` (from the tokenizer config) is not in the vocabulary of {source}; the files do not belong together"
                    )));
                }
            }
        }
        if let Some((add_bos, add_eos)) = bundle.add_special_override {
            if add_bos && bundle.bos_token_id().is_none() {
                return Err(Error::Other(
                    "tokenizer: add_bos_token is true but the tokenizer config names no bos_token"
                        .into(),
                ));
            }
            if add_eos && bundle.eos_token().is_none() {
                return Err(Error::Other(
                    "tokenizer: add_eos_token is true but the tokenizer config names no eos_token"
                        .into(),
                ));
            }
        }
        Ok(bundle)
    }

    /// Add end-of-sequence ids from elsewhere (config.json's `eos_token_id`, GGUF metadata).
    pub fn with_extra_eos(mut self, ids: &[u32]) -> Self {
        self.extra_eos.extend_from_slice(ids);
        self
    }

    /// Make `encode(.., true)` add exactly the bos (and eos) token, whatever the tokenizer's
    /// post-processor does (GGUF's `tokenizer.ggml.add_bos_token`).
    pub fn with_add_special_tokens(mut self, add_bos: bool, add_eos: bool) -> Result<Self> {
        if add_bos && self.bos_token_id().is_none() {
            return Err(Error::Other(
                "tokenizer: add_bos_token is true but there is no bos token".into(),
            ));
        }
        if add_eos && self.eos_token_id().is_none() {
            return Err(Error::Other(
                "tokenizer: add_eos_token is true but there is no eos token".into(),
            ));
        }
        self.add_special_override = Some((add_bos, add_eos));
        Ok(self)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encode text. With `add_special_tokens`, the bos/eos tokens the model expects are added
    /// (see the module docs); a rendered chat prompt already contains them, so encode it with
    /// `false`, as transformers' `apply_chat_template` does.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        match (add_special_tokens, self.add_special_override) {
            (true, Some((add_bos, add_eos))) => {
                let enc = self
                    .tokenizer
                    .encode(text, false)
                    .map_err(|e| tok_err("cannot encode the text", e))?;
                let mut ids = Vec::with_capacity(enc.get_ids().len() + 2);
                if add_bos {
                    ids.extend(self.bos_token_id());
                }
                ids.extend_from_slice(enc.get_ids());
                if add_eos {
                    ids.extend(self.eos_token_id());
                }
                Ok(ids)
            }
            _ => {
                let enc = self
                    .tokenizer
                    .encode(text, add_special_tokens)
                    .map_err(|e| tok_err("cannot encode the text", e))?;
                Ok(enc.get_ids().to_vec())
            }
        }
    }

    /// Decode ids to text. `clean_up_tokenization_spaces` is deliberately not applied: it rewrites
    /// `" ."` to `"."` and the like (a legacy transformers post-processing, wrong for code), and it
    /// would make [`StreamDecoder`]'s output differ from this. Ids outside the vocabulary are an
    /// error (the `tokenizers` library would silently drop them).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(bad) = ids
            .iter()
            .find(|&&id| self.tokenizer.id_to_token(id).is_none())
        {
            return Err(Error::Other(format!(
                "tokenizer: token id {bad} is not in the vocabulary ({} tokens); the model produced an id the tokenizer cannot decode (its embedding has more rows than the tokenizer has tokens)",
                self.vocab_size
            )));
        }
        self.tokenizer
            .decode(ids, skip_special)
            .map_err(|e| tok_err("cannot decode the ids", e))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// Number of distinct tokens, added tokens included (`len(tokenizer)` in transformers).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.chat.special
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.chat.special.bos_token.as_deref()
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.chat.special.eos_token.as_deref()
    }

    pub fn pad_token(&self) -> Option<&str> {
        self.chat.special.pad_token.as_deref()
    }

    /// The bos token's id: from the bos token string, else generation_config's `bos_token_id`.
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token()
            .and_then(|t| self.token_to_id(t))
            .or(self.generation_bos)
    }

    /// The eos token's id (of the tokenizer config's `eos_token`).
    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos_token().and_then(|t| self.token_to_id(t))
    }

    /// Every id that ends generation, without duplicates: generation_config's `eos_token_id`,
    /// then the ids given to [`with_extra_eos`](Self::with_extra_eos), then the eos token's id.
    pub fn eos_ids(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for id in self
            .generation_eos
            .iter()
            .chain(&self.extra_eos)
            .copied()
            .chain(self.eos_token_id())
        {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// The chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat.chat_template.as_ref()
    }

    /// Special tokens, template and tokenizer-config flags.
    pub fn chat_config(&self) -> &ChatConfig {
        &self.chat
    }

    /// Render options carrying this tokenizer's special tokens, as transformers passes them.
    pub fn render_options(&self, add_generation_prompt: bool) -> RenderOptions {
        self.chat.render_options(add_generation_prompt)
    }

    /// Hex sha256 of the tokenizer.json bytes (of the serialized tokenizer for
    /// [`from_tokenizer`](Self::from_tokenizer)).
    pub fn tokenizer_sha256(&self) -> &str {
        &self.tokenizer_sha256
    }

    /// Hex sha256 of the chat template text, if there is a template.
    pub fn chat_template_sha256(&self) -> Option<&str> {
        self.chat.chat_template.as_ref().map(ChatTemplate::sha256)
    }

    /// Incremental decoding for generation; see [`StreamDecoder`].
    pub fn stream_decoder(&self, skip_special: bool) -> StreamDecoder<'_> {
        StreamDecoder::new(self, skip_special)
    }
}

fn missing_tokenizer_json(path: &Path) -> Error {
    Error::file(
        path,
        "not found: hakaru needs the fast-tokenizer file tokenizer.json, and the model repository must ship \
         it (repositories with only tokenizer.model or vocab.json + merges.txt are not supported; convert with \
         transformers: AutoTokenizer.from_pretrained(repo).save_pretrained(dir))",
    )
}

fn read_generation_config(path: &Path) -> Result<(Vec<u32>, Option<u32>)> {
    let v = read_json(path)?;
    let eos = v.get("eos_token_id");
    match eos {
        None | Some(Value::Null) | Some(Value::Number(_)) => {}
        Some(Value::Array(a)) if a.iter().all(|x| x.as_u64().is_some()) => {}
        Some(other) => {
            return Err(Error::file(
                path,
                format!(
                "field `eos_token_id`: expected a token id or a list of token ids, found {other}"
            ),
            ))
        }
    }
    let ids = token_id_list(eos.filter(|x| !x.is_null()));
    if eos.is_some_and(|e| e.is_number()) && ids.is_empty() {
        return Err(Error::file(
            path,
            "field `eos_token_id`: expected a non-negative integer",
        ));
    }
    let bos = match v.get("bos_token_id") {
        None | Some(Value::Null) => None,
        Some(x) => Some(x.as_u64().map(|b| b as u32).ok_or_else(|| {
            Error::file(
                path,
                format!("field `bos_token_id`: expected a non-negative integer, found {x}"),
            )
        })?),
    };
    Ok((ids, bos))
}

/// Turns generated ids into text as they come, never emitting half a character.
///
/// Byte-level BPE tokens are byte strings: one Japanese character (3 UTF-8 bytes) is often split
/// across two or three tokens, and decoding a token alone yields U+FFFD. This decoder re-decodes a
/// small window of ids — one already-emitted "context" stretch plus the pending ids — and emits the
/// new suffix only when the window's text does not end in U+FFFD (an incomplete character).
/// Decoding with the preceding ids as context also keeps decoders that treat a word's first token
/// specially (SentencePiece-style `▁` spaces) right. When the text is emitted the window moves
/// forward, so each step decodes a handful of ids, not the whole output.
///
/// Why not `tokenizers`' own `decode_stream`: it implements the same window idea, but has no way to
/// flush trailing bytes when generation stops mid-character (they are silently lost), and it
/// returns an error, mid-generation, if a decoder's output is not prefix-stable; here the end is
/// flushed and a non-prefix-stable window falls back to emitting from the first difference.
///
/// The concatenation of everything `push` and `flush` return equals `decode(all ids)` for
/// byte-level BPE tokenizers.
pub struct StreamDecoder<'a> {
    bundle: &'a TokenizerBundle,
    skip_special: bool,
    /// The window: `ids[..read]` were emitted already (the context), `ids[read..]` are pending.
    ids: Vec<u32>,
    read: usize,
    /// `decode(ids[..read])`, cached.
    prefix_text: String,
}

impl<'a> StreamDecoder<'a> {
    pub fn new(bundle: &'a TokenizerBundle, skip_special: bool) -> Self {
        StreamDecoder {
            bundle,
            skip_special,
            ids: Vec::new(),
            read: 0,
            prefix_text: String::new(),
        }
    }

    /// Add one generated id; returns the newly completed text (often empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.ids.push(id);
        let text = self.bundle.decode(&self.ids, self.skip_special)?;
        if text.len() <= self.prefix_text.len() || text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let new = self.new_suffix(&text);
        // Move the window: the ids just emitted become the context of the next step. Their text
        // is decoded on its own (not cut out of `text`) so that the next comparison is between
        // decodes that start at the same id.
        self.ids.drain(..self.read);
        self.read = self.ids.len();
        self.prefix_text = self.bundle.decode(&self.ids, self.skip_special)?;
        Ok(new)
    }

    /// Emit whatever is pending at the end of generation, even an incomplete character (as
    /// U+FFFD, exactly as `decode` shows it). The decoder is then empty and can be reused.
    pub fn flush(&mut self) -> Result<String> {
        let new = if self.read < self.ids.len() {
            let text = self.bundle.decode(&self.ids, self.skip_special)?;
            if text.len() > self.prefix_text.len() {
                self.new_suffix(&text)
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        self.ids.clear();
        self.read = 0;
        self.prefix_text.clear();
        Ok(new)
    }

    /// The part of `text` (a decode of the whole window) after the already-emitted context.
    fn new_suffix(&self, text: &str) -> String {
        if let Some(rest) = text.strip_prefix(self.prefix_text.as_str()) {
            return rest.to_string();
        }
        // The decoder changed the context's text once more ids followed (not prefix-stable).
        // Emit from the first difference; what was emitted cannot be taken back.
        let common = text
            .char_indices()
            .zip(self.prefix_text.chars())
            .find(|((_, a), b)| a != b)
            .map(|((i, _), _)| i)
            .unwrap_or_else(|| text.len().min(self.prefix_text.len()));
        let start = if text.is_char_boundary(common) {
            common
        } else {
            0
        };
        text[start..].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .unwrap()
    }

    fn fixture(name: &str) -> PathBuf {
        let p = workspace_root().join("fixtures/models").join(name);
        assert!(
            p.is_dir(),
            "fixture {} is missing; run scripts/make-fixtures.py",
            p.display()
        );
        p
    }

    /// GPT-2's byte-to-unicode table, as the ByteLevel pre-tokenizer uses it.
    fn byte_char(b: u8) -> char {
        let printable = |b: u8| {
            (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
        };
        if printable(b) {
            return b as char;
        }
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).unwrap()
    }

    /// A byte-level BPE with all 256 byte symbols and merges that join the last byte of one
    /// Japanese character to the first byte of the next, so characters straddle tokens.
    fn tiny_bpe() -> Tokenizer {
        let mut vocab = serde_json::Map::new();
        for b in 0..=255u8 {
            vocab.insert(byte_char(b).to_string(), json!(b as u32));
        }
        let text = "日本語です";
        let bytes = text.as_bytes();
        let mut merges = vec![];
        // Join byte 2 of each character with byte 0 of the next: "日" = E6 97 A5, "本" = E6 9C AC…
        for i in (2..bytes.len() - 1).step_by(3) {
            let (a, b) = (
                byte_char(bytes[i]).to_string(),
                byte_char(bytes[i + 1]).to_string(),
            );
            let merged = format!("{a}{b}");
            if !vocab.contains_key(&merged) {
                vocab.insert(merged, json!(vocab.len() as u32));
                merges.push(json!([a, b]));
            }
        }
        let eos_id = vocab.len() as u32;
        let tj = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{"id": eos_id, "content": "<eos>", "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true}],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "vocab": vocab, "merges": merges}
        });
        Tokenizer::from_bytes(serde_json::to_vec(&tj).unwrap()).unwrap()
    }

    fn tiny_bundle() -> TokenizerBundle {
        let special = SpecialTokens {
            eos_token: Some("<eos>".into()),
            ..Default::default()
        };
        TokenizerBundle::from_tokenizer(tiny_bpe(), special, None).unwrap()
    }

    /// Stream `ids` one at a time; returns the pieces (flush included).
    fn stream(b: &TokenizerBundle, ids: &[u32], skip: bool) -> Vec<String> {
        let mut d = b.stream_decoder(skip);
        let mut pieces: Vec<String> = ids.iter().map(|&id| d.push(id).unwrap()).collect();
        pieces.push(d.flush().unwrap());
        pieces
    }

    #[test]
    fn stream_decoder_never_splits_a_character() {
        let b = tiny_bundle();
        let text = "日本語です。hello 日本";
        let ids = b.encode(text, false).unwrap();
        // The test is only meaningful if tokens really split characters.
        let lone: Vec<String> = ids
            .iter()
            .map(|&i| b.decode(&[i], false).unwrap())
            .collect();
        assert!(
            lone.iter().any(|s| s.contains('\u{FFFD}')),
            "no split character in {lone:?}"
        );
        let pieces = stream(&b, &ids, false);
        for p in &pieces {
            assert!(!p.contains('\u{FFFD}'), "broken character in {pieces:?}");
        }
        assert_eq!(pieces.concat(), text);
        assert_eq!(b.decode(&ids, false).unwrap(), text);
        // Text arrives as soon as it is complete, not all at the end.
        assert!(
            pieces.iter().filter(|p| !p.is_empty()).count() >= 5,
            "{pieces:?}"
        );
        assert_eq!(pieces.last().unwrap(), "");
    }

    #[test]
    fn stream_decoder_flushes_an_incomplete_tail() {
        let b = tiny_bundle();
        let mut ids = b.encode("日本", false).unwrap();
        // Stop in the middle of "語": its first byte only.
        ids.extend(b.encode("語", false).unwrap().first().copied());
        let mut d = b.stream_decoder(false);
        let mut out = String::new();
        for &id in &ids {
            out.push_str(&d.push(id).unwrap());
        }
        assert_eq!(out, "日本");
        assert_eq!(d.flush().unwrap(), "\u{FFFD}");
        assert_eq!(d.flush().unwrap(), "");
    }

    #[test]
    fn stream_decoder_skips_special_tokens() {
        let b = tiny_bundle();
        let mut ids = b.encode("です", false).unwrap();
        ids.push(b.token_to_id("<eos>").unwrap());
        assert_eq!(stream(&b, &ids, true).concat(), "です");
        assert_eq!(stream(&b, &ids, false).concat(), "です<eos>");
    }

    #[test]
    fn stream_decoder_on_fixture_tokenizer_matches_golden_decode() {
        let b = TokenizerBundle::from_dir(&fixture("tiny-qwen2")).unwrap();
        for case in golden_tokenize() {
            let ids: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
            for (skip, key) in [(false, "decoded"), (true, "decoded_skip_special")] {
                let pieces = stream(&b, &ids, skip);
                assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
                assert_eq!(
                    pieces.concat(),
                    case[key].as_str().unwrap(),
                    "text {}",
                    case["text"]
                );
            }
        }
    }

    fn golden_tokenize() -> Vec<Value> {
        let p = workspace_root().join("fixtures/golden/tokenize.json");
        serde_json::from_str(
            &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    }

    #[test]
    fn golden_tokenization() {
        for model in ["tiny-qwen2", "tiny-qwen3", "tiny-llama"] {
            let b = TokenizerBundle::from_dir(&fixture(model)).unwrap();
            assert_eq!(b.vocab_size(), 440);
            let cases = golden_tokenize();
            assert!(!cases.is_empty());
            for case in cases {
                let text = case["text"].as_str().unwrap();
                let ids: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
                assert_eq!(b.encode(text, false).unwrap(), ids, "{model}: {text:?}");
                let tokens: Vec<String> = ids.iter().map(|&i| b.id_to_token(i).unwrap()).collect();
                assert_eq!(json!(tokens), case["tokens"], "{model}: {text:?}");
                assert_eq!(
                    b.decode(&ids, false).unwrap(),
                    case["decoded"].as_str().unwrap()
                );
                assert_eq!(
                    b.decode(&ids, true).unwrap(),
                    case["decoded_skip_special"].as_str().unwrap()
                );
            }
        }
    }

    #[test]
    fn fixture_special_tokens_and_eos_ids() {
        let q2 = TokenizerBundle::from_dir(&fixture("tiny-qwen2")).unwrap();
        assert_eq!(q2.bos_token(), None);
        assert_eq!(q2.eos_token(), Some("<|im_end|>"));
        assert_eq!(q2.pad_token(), Some("<|endoftext|>"));
        assert_eq!(q2.eos_ids(), vec![433, 431]);
        assert!(q2
            .chat_template()
            .unwrap()
            .source_name()
            .ends_with("tokenizer_config.json (field `chat_template`)"));
        // config.json's eos ids are merged in without duplicates.
        let q2 = q2.with_extra_eos(&[433, 7]);
        assert_eq!(q2.eos_ids(), vec![433, 431, 7]);

        let llama = TokenizerBundle::from_dir(&fixture("tiny-llama")).unwrap();
        // An AddedToken object is reduced to its content.
        assert_eq!(llama.bos_token(), Some("<|begin_of_text|>"));
        assert_eq!(llama.bos_token_id(), Some(436));
        assert_eq!(llama.eos_ids(), vec![437, 431]);
        // PreTrainedTokenizerFast with a ByteLevel post-processor adds nothing.
        assert_eq!(
            llama.encode("hi", true).unwrap(),
            llama.encode("hi", false).unwrap()
        );

        let q3 = TokenizerBundle::from_dir(&fixture("tiny-qwen3")).unwrap();
        let opts = q3.render_options(true);
        assert_eq!(opts.bos_token, None);
        assert_eq!(opts.eos_token.as_deref(), Some("<|im_end|>"));
        assert_eq!(
            Value::Object(opts.extra),
            json!({"pad_token": "<|endoftext|>", "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        );
        assert!(q3
            .chat_template()
            .unwrap()
            .source_name()
            .ends_with("chat_template.jinja"));
        let text =
            std::fs::read_to_string(fixture("tiny-qwen3").join("chat_template.jinja")).unwrap();
        assert_eq!(
            q3.chat_template_sha256().unwrap(),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        let tj = std::fs::read(fixture("tiny-qwen3").join("tokenizer.json")).unwrap();
        assert_eq!(q3.tokenizer_sha256(), hex::encode(Sha256::digest(&tj)));
    }

    /// Copy a fixture's tokenizer.json into a temp dir with the given tokenizer_config.json.
    fn dir_with_config(cfg: Value) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixture("tiny-qwen2").join("tokenizer.json"),
            d.path().join("tokenizer.json"),
        )
        .unwrap();
        std::fs::write(d.path().join("tokenizer_config.json"), cfg.to_string()).unwrap();
        d
    }

    #[test]
    fn llama_tokenizer_class_adds_bos_like_transformers() {
        let d = dir_with_config(
            json!({"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<|begin_of_text|>",
                                       "eos_token": "<|eot_id|>"}),
        );
        let b = TokenizerBundle::from_dir(d.path()).unwrap();
        let plain = b.encode("hi", false).unwrap();
        assert_eq!(
            b.encode("hi", true).unwrap(),
            [vec![436], plain.clone()].concat()
        );
        let d = dir_with_config(
            json!({"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<|begin_of_text|>",
                                       "eos_token": "<|eot_id|>", "add_bos_token": false, "add_eos_token": true}),
        );
        let b = TokenizerBundle::from_dir(d.path()).unwrap();
        assert_eq!(b.encode("hi", true).unwrap(), [plain, vec![437]].concat());
    }

    #[test]
    fn chat_template_forms() {
        let d = dir_with_config(
            json!({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}),
        );
        let b = TokenizerBundle::from_dir(d.path()).unwrap();
        assert_eq!(b.chat_template().unwrap().text(), "D");
        // chat_template.jinja wins over the config's field.
        std::fs::write(d.path().join("chat_template.jinja"), "J").unwrap();
        let b = TokenizerBundle::from_dir(d.path()).unwrap();
        assert_eq!(b.chat_template().unwrap().text(), "J");
        let d = dir_with_config(json!({"chat_template": [{"name": "tool_use", "template": "T"}]}));
        assert!(TokenizerBundle::from_dir(d.path())
            .unwrap()
            .chat_template()
            .is_none());
    }

    #[test]
    fn special_tokens_map_fills_gaps() {
        let d = dir_with_config(json!({"eos_token": "<|im_end|>"}));
        std::fs::write(
            d.path().join("special_tokens_map.json"),
            r#"{"eos_token": "<|endoftext|>", "pad_token": {"content": "<|endoftext|>"}}"#,
        )
        .unwrap();
        let b = TokenizerBundle::from_dir(d.path()).unwrap();
        assert_eq!(b.eos_token(), Some("<|im_end|>"));
        assert_eq!(b.pad_token(), Some("<|endoftext|>"));
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let d = tempfile::tempdir().unwrap();
        let e = TokenizerBundle::from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.starts_with(&d.path().join("tokenizer.json").display().to_string()),
            "{e}"
        );
        assert!(e.contains("must ship"), "{e}");

        let d = dir_with_config(json!({"bos_token": 3}));
        let e = TokenizerBundle::from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains(
                "tokenizer_config.json: field `bos_token`: expected a string or an AddedToken"
            ),
            "{e}"
        );

        let d = dir_with_config(json!({"chat_template": 5}));
        let e = TokenizerBundle::from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("field `chat_template`: expected a string or a list"),
            "{e}"
        );

        let d = dir_with_config(json!({"chat_template": "{% if %}"}));
        let e = TokenizerBundle::from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer_config.json (field `chat_template`): line 1: syntax error"),
            "{e}"
        );

        let d = dir_with_config(json!({"eos_token": "<nope>"}));
        let e = TokenizerBundle::from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("eos_token `<nope>`") && e.contains("not in the vocabulary"),
            "{e}"
        );

        let d = dir_with_config(json!({}));
        std::fs::write(
            d.path().join("generation_config.json"),
            r#"{"eos_token_id": "x"}"#,
        )
        .unwrap();
        let e = TokenizerBundle::from_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("generation_config.json: field `eos_token_id`"),
            "{e}"
        );

        let d = dir_with_config(json!({}));
        std::fs::write(d.path().join("tokenizer.json"), "{}").unwrap();
        let e = TokenizerBundle::from_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json: not a tokenizer file"), "{e}");
    }

    #[test]
    fn decode_rejects_ids_outside_the_vocabulary() {
        let b = tiny_bundle();
        let e = b.decode(&[1, 9999], false).unwrap_err().to_string();
        assert!(e.contains("token id 9999 is not in the vocabulary"), "{e}");
    }

    #[test]
    fn from_tokenizer_hashes_and_gguf_add_bos() {
        let a = tiny_bundle();
        let b = tiny_bundle();
        assert_eq!(a.tokenizer_sha256().len(), 64);
        assert_eq!(a.tokenizer_sha256(), b.tokenizer_sha256());
        assert!(a.chat_template_sha256().is_none());
        let special = SpecialTokens {
            bos_token: Some("<eos>".into()),
            ..Default::default()
        };
        let c =
            TokenizerBundle::from_tokenizer(tiny_bpe(), special, Some("{{ bos_token }}".into()))
                .unwrap()
                .with_add_special_tokens(true, false)
                .unwrap();
        let eos = c.token_to_id("<eos>").unwrap();
        assert_eq!(c.encode("a", true).unwrap(), vec![eos, b'a' as u32]);
        assert!(c.chat_template().unwrap().source_name().contains("GGUF"));
    }

    fn golden_templates() -> Vec<Value> {
        let p = workspace_root().join("fixtures/golden/templates.json");
        serde_json::from_str(
            &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    }

    #[test]
    fn golden_templates_render_byte_for_byte() {
        let cases = golden_templates();
        assert!(cases.len() >= 10);
        for (i, case) in cases.iter().enumerate() {
            let model = case["model"].as_str().unwrap();
            let b = TokenizerBundle::from_dir(&fixture(model)).unwrap();
            let mut opts = b.render_options(case["add_generation_prompt"].as_bool().unwrap());
            for (k, v) in case["kwargs"].as_object().unwrap() {
                if k == "tools" {
                    opts.tools = Some(v.clone());
                } else {
                    opts.extra.insert(k.clone(), v.clone());
                }
            }
            let got = b.chat_template().unwrap().render(&case["messages"], &opts);
            match case["rendered"].as_str() {
                Some(want) => assert_eq!(
                    got.unwrap_or_else(|e| panic!("case {i} ({model}): {e}")),
                    want,
                    "case {i} ({model})"
                ),
                None => {
                    let e = got.unwrap_err().to_string();
                    let want = case["error"].as_str().unwrap();
                    assert!(
                        e.contains(&format!("the template raised an error: {want}")),
                        "case {i}: {e}"
                    );
                }
            }
        }
    }
}
