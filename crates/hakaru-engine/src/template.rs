//! Chat templates, rendered in the Jinja dialect that Hugging Face transformers uses, so that a
//! prompt built here is byte for byte the prompt `tokenizer.apply_chat_template(..., tokenize=False)`
//! builds.
//!
//! transformers compiles a template with (`transformers/utils/chat_template_utils.py`,
//! `_compile_jinja_template`):
//!
//! ```python
//! ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
//!                               extensions=[AssistantTracker, jinja2.ext.loopcontrols])
//! env.filters["tojson"] = tojson            # json.dumps(x, ensure_ascii=False, indent=None,
//!                                           #            separators=None, sort_keys=False)
//! env.globals["raise_exception"] = raise_exception
//! env.globals["strftime_now"] = strftime_now
//! ```
//!
//! and renders it with `messages`, `tools`, `documents`, `add_generation_prompt`, the tokenizer's
//! special tokens (`bos_token`, `eos_token`, … as strings) and any extra keyword arguments.
//! [`ChatTemplate`] reproduces that on minijinja:
//!
//! * `trim_blocks` and `lstrip_blocks` on; `keep_trailing_newline` off (Jinja2's default, which
//!   transformers does not change): one trailing newline of the template is dropped.
//! * Line endings of the template are normalised to `\n` first, as Jinja2's lexer does.
//! * No auto-escaping (minijinja would otherwise pick HTML or JSON escaping from a name ending in
//!   `.html` or `.json`).
//! * Python string methods (`.strip()`, `.split()`, `.startswith()`, `.items()`, `.get()`, …) via
//!   minijinja-contrib's pycompat, with `strip`/`lstrip`/`rstrip`/`split`/`rsplit` reimplemented
//!   here with Python's definition of whitespace.
//! * `tojson` is transformers' own: `json.dumps` with `ensure_ascii=False`, optional `indent`,
//!   `separators` and `sort_keys`, Python's float formatting, keys in insertion order.
//! * Values print as Python's `str()` does: `None`, `True`, `1.0`, `['a', 1]`.
//! * `raise_exception(msg)` stops rendering with an error that carries `msg`.
//! * JSON objects keep their key order (messages, tools and extra values are wrapped in an
//!   ordered map object, because minijinja's own maps sort their keys).
//!
//! **Deterministic by design:** `strftime_now` is *not* defined, so templates that guard it with
//! `strftime_now is defined` (Llama 3.x) fall back to their built-in default date instead of
//! today's date. To render a specific date, pass it the way the template reads it (Llama 3.1:
//! `date_string`) as an extra value. This is the one intended difference from transformers.
//!
//! transformers' `{% generation %}` tag (used only to compute assistant-token masks) is not
//! supported; templates using it fail with a syntax error that names the line.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use minijinja::value::{from_args, Kwargs, Object, ObjectRepr, Rest, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, State, UndefinedBehavior};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::read_json;
use crate::error::{Error, Result};

type JValue = minijinja::Value;

/// Options for [`ChatTemplate::render`]; mirrors the keyword arguments of transformers'
/// `apply_chat_template`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOptions {
    /// End the prompt with the header of an assistant turn.
    pub add_generation_prompt: bool,
    /// Passed as `bos_token`; left undefined when `None` (as transformers does for unset tokens).
    pub bos_token: Option<String>,
    /// Passed as `eos_token`; left undefined when `None`.
    pub eos_token: Option<String>,
    /// Tool schemas, passed as `tools` (a list of JSON objects). `None` renders as Python's `None`
    /// (defined, but `none`), exactly as transformers passes it.
    pub tools: Option<Value>,
    /// Further template variables (`enable_thinking`, `date_string`, `documents`, `pad_token`, …).
    /// They are applied last, so they override `bos_token`/`eos_token`. `documents` defaults to
    /// `None` like `tools`. `messages`, `tools` and `add_generation_prompt` are reserved.
    pub extra: Map<String, Value>,
}

/// Names that [`RenderOptions::extra`] may not set, because a dedicated option sets them.
const RESERVED: [&str; 3] = ["messages", "tools", "add_generation_prompt"];

/// A compiled chat template.
pub struct ChatTemplate {
    source_name: String,
    text: String,
    sha256: String,
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_name", &self.source_name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compile a template. `source_name` says where the text came from (a file path, or
    /// `tokenizer_config.json` with the field) and prefixes every error.
    pub fn new(source_name: &str, text: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_debug(false);
        env.set_unknown_method_callback(py_method);
        env.set_formatter(|out, _state, value| {
            out.write_str(&py_str(value)?)
                .map_err(|_| minijinja::Error::from(ErrorKind::WriteFailure))
        });
        env.add_filter("tojson", tojson_filter);
        env.add_filter("trim", trim_filter);
        env.add_filter(
            "string",
            |v: JValue| -> std::result::Result<String, minijinja::Error> { py_str(&v) },
        );
        env.add_function("raise_exception", raise_exception);
        // Jinja2 normalises every line ending (in text and in string literals) to "\n".
        let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        env.add_template_owned(source_name.to_string(), normalised)
            .map_err(|e| template_error(source_name, &e))?;
        Ok(ChatTemplate {
            source_name: source_name.to_string(),
            text: text.to_string(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            env,
        })
    }

    /// Read a template file (`chat_template.jinja` or any Jinja file).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read the chat template: {e}")))?;
        Self::new(&path.display().to_string(), &text)
    }

    /// Where the template came from, as given to [`ChatTemplate::new`].
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The template text, exactly as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Hex sha256 of the template text's UTF-8 bytes, for provenance.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Render a conversation. `messages` must be a JSON array of message objects (see
    /// [`validate_messages`], which this calls).
    pub fn render(&self, messages: &Value, opts: &RenderOptions) -> Result<String> {
        validate_messages(messages, "messages")?;
        for key in RESERVED {
            if opts.extra.contains_key(key) {
                return Err(Error::Other(format!(
                    "template variable `{key}` cannot be set as an extra value; it has its own option"
                )));
            }
        }
        let mut ctx: Vec<(String, JValue)> = vec![
            ("messages".into(), to_jinja(messages)),
            (
                "tools".into(),
                opts.tools
                    .as_ref()
                    .map(to_jinja)
                    .unwrap_or(JValue::from(())),
            ),
            ("documents".into(), JValue::from(())),
            (
                "add_generation_prompt".into(),
                JValue::from(opts.add_generation_prompt),
            ),
        ];
        if let Some(b) = &opts.bos_token {
            ctx.push(("bos_token".into(), JValue::from(b.as_str())));
        }
        if let Some(e) = &opts.eos_token {
            ctx.push(("eos_token".into(), JValue::from(e.as_str())));
        }
        for (k, v) in &opts.extra {
            ctx.retain(|(name, _)| name != k);
            ctx.push((k.clone(), to_jinja(v)));
        }
        let ctx = JValue::from_object(OrderedMap(
            ctx.into_iter().map(|(k, v)| (JValue::from(k), v)).collect(),
        ));
        let tmpl = self
            .env
            .get_template(&self.source_name)
            .map_err(|e| template_error(&self.source_name, &e))?;
        tmpl.render(ctx)
            .map_err(|e| template_error(&self.source_name, &e))
    }
}

/// The error `raise_exception` raises; kept as the source of the minijinja error so that the
/// message can be told apart from the engine's own errors.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

fn raise_exception(msg: JValue) -> std::result::Result<JValue, minijinja::Error> {
    let msg = py_str(&msg)?;
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg.clone()).with_source(Raised(msg)))
}

fn raised_message(e: &minijinja::Error) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Raised>() {
            return Some(r.0.clone());
        }
        cur = err.source();
    }
    None
}

/// Turn a minijinja error into one that names the template source and the line.
fn template_error(source_name: &str, e: &minijinja::Error) -> Error {
    let at = match e.line() {
        Some(line) => format!("line {line}: "),
        None => String::new(),
    };
    let msg = if let Some(raised) = raised_message(e) {
        format!(
            "{at}the template raised an error: {raised} (the template rejects these messages or \
             options; change them, or use a template that supports them)"
        )
    } else {
        let mut detail = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        let mut cur = std::error::Error::source(e);
        while let Some(inner) = cur {
            let _ = write!(detail, ": {inner}");
            cur = inner.source();
        }
        if e.kind() == ErrorKind::SyntaxError {
            format!(
                "{at}{detail} (the chat template is not valid Jinja for transformers' dialect; fix \
                 it or pass another template)"
            )
        } else {
            format!("{at}{detail} (the chat template failed on these messages; check the messages' fields against what the template expects)")
        }
    };
    Error::file(source_name, msg)
}

// ---------------------------------------------------------------------------------------------
// Messages files

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Check that `messages` is a JSON array of objects, each with a string `role` and a `content`
/// that is a string or a list of `{"type": "text", "text": …}` parts (`content` may be null or
/// absent on an assistant message that carries `tool_calls`, and a `tool`/`ipython` message may
/// carry a JSON object or array as its result). Other fields (`tool_calls`,
/// `reasoning_content`, `name`, …) pass through to the template untouched. `source` names the
/// messages in errors: `source: index N: field `x`: what is wrong`.
pub fn validate_messages(messages: &Value, source: &str) -> Result<()> {
    let err = |msg: String| Error::file(source, msg);
    let list = messages.as_array().ok_or_else(|| {
        err(format!(
            "expected a JSON array of messages like [{{\"role\": \"user\", \"content\": \"…\"}}], found {}",
            kind_name(messages)
        ))
    })?;
    if list.is_empty() {
        return Err(err(
            "the list of messages is empty; give at least one message".into(),
        ));
    }
    for (i, m) in list.iter().enumerate() {
        let obj = m.as_object().ok_or_else(|| {
            err(format!(
                "index {i}: expected a message object with `role` and `content`, found {}",
                kind_name(m)
            ))
        })?;
        match obj.get("role") {
            Some(Value::String(r)) if !r.is_empty() => {}
            Some(Value::String(_)) => {
                return Err(err(format!("index {i}: field `role`: is empty; use system, user, assistant or tool")))
            }
            Some(other) => {
                return Err(err(format!("index {i}: field `role`: expected a string, found {}", kind_name(other))))
            }
            None => {
                return Err(err(format!(
                    "index {i}: field `role` is missing; every message needs one (system, user, assistant, tool)"
                )))
            }
        }
        let has_tool_calls = obj.get("tool_calls").is_some_and(|t| !t.is_null());
        let is_tool_output = matches!(
            obj.get("role").and_then(Value::as_str),
            Some("tool" | "ipython")
        );
        match obj.get("content") {
            Some(Value::String(_)) => {}
            // Tool results may be structured (Llama 3.1 prints them with `tojson`).
            Some(Value::Object(_) | Value::Array(_)) if is_tool_output => {}
            None | Some(Value::Null) if has_tool_calls => {}
            None => {
                return Err(err(format!(
                    "index {i}: field `content` is missing; give the message text as a string"
                )))
            }
            Some(Value::Array(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    let po = p.as_object().ok_or_else(|| {
                        err(format!(
                            "index {i}: field `content`: part {j}: expected an object {{\"type\": \"text\", \"text\": …}}, found {}",
                            kind_name(p)
                        ))
                    })?;
                    match po.get("type").and_then(Value::as_str) {
                        Some("text") => {}
                        Some(t) => {
                            return Err(err(format!(
                                "index {i}: field `content`: part {j}: type `{t}` is not supported; only text parts are"
                            )))
                        }
                        None => {
                            return Err(err(format!(
                                "index {i}: field `content`: part {j}: field `type` is missing or not a string; use \"text\""
                            )))
                        }
                    }
                    if !po.get("text").is_some_and(Value::is_string) {
                        return Err(err(format!(
                            "index {i}: field `content`: part {j}: field `text` must be a string"
                        )));
                    }
                }
            }
            Some(other) => {
                return Err(err(format!(
                    "index {i}: field `content`: expected a string or a list of {{\"type\": \"text\", \"text\": …}} parts, found {}",
                    kind_name(other)
                )))
            }
        }
    }
    Ok(())
}

/// Read and validate a messages file (a JSON array of messages); errors name the file.
pub fn load_messages(path: &Path) -> Result<Value> {
    let v = read_json(path)?;
    validate_messages(&v, &path.display().to_string())?;
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// JSON values as template values, with key order kept.

/// A JSON object as a template value. minijinja's own maps sort their keys (without its
/// `preserve_order` feature), which would reorder `tools | tojson`; this keeps insertion order.
#[derive(Debug)]
struct OrderedMap(Vec<(JValue, JValue)>);

impl Object for OrderedMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        use minijinja::value::ObjectExt;
        self.mapped_enumerator(|this| Box::new(this.0.iter().map(|(k, _)| k.clone())))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Convert a JSON value into a template value (objects keep their key order).
fn to_jinja(v: &Value) -> JValue {
    match v {
        Value::Null => JValue::from(()),
        Value::Bool(b) => JValue::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                JValue::from(i)
            } else if let Some(u) = n.as_u64() {
                JValue::from(u)
            } else {
                JValue::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => JValue::from(s.as_str()),
        Value::Array(a) => JValue::from(a.iter().map(to_jinja).collect::<Vec<_>>()),
        Value::Object(o) => JValue::from_object(OrderedMap(
            o.iter()
                .map(|(k, v)| (JValue::from(k.as_str()), to_jinja(v)))
                .collect(),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Python semantics

/// Python's `str.isspace()` for one character: Rust's White_Space plus U+001C..U+001F.
fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `repr(float)` (and `str(float)`, and `json.dumps` of a float): the shortest digits
/// that round-trip, fixed notation for exponents -4..=15, otherwise `1e+16` style.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` prints the shortest round-tripping digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

fn number_str(v: &JValue) -> String {
    if v.is_integer() {
        v.to_string()
    } else {
        match f64::try_from(v.clone()) {
            Ok(f) => py_float_repr(f),
            Err(_) => v.to_string(),
        }
    }
}

/// Characters Python's `str.isprintable()` rejects, approximately: controls, format characters,
/// separators other than the ASCII space, private use. (Only used by `repr` of strings inside
/// printed lists and dicts, which templates rarely do.)
fn py_nonprintable(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || (0x7f..=0xa0).contains(&u)
        || u == 0xad
        || (0x600..=0x605).contains(&u)
        || u == 0x61c
        || u == 0x6dd
        || u == 0x70f
        || u == 0x1680
        || u == 0x180e
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x206f).contains(&u)
        || u == 0x3000
        || (0xd800..=0xf8ff).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || u >= 0xf0000
}

/// Python's `repr(str)`.
fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if py_nonprintable(c) => {
                let u = c as u32;
                if u <= 0xff {
                    let _ = write!(out, "\\x{u:02x}");
                } else if u <= 0xffff {
                    let _ = write!(out, "\\u{u:04x}");
                } else {
                    let _ = write!(out, "\\U{u:08x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a template value.
fn py_repr(v: &JValue) -> std::result::Result<String, minijinja::Error> {
    Ok(match v.kind() {
        ValueKind::String => py_str_repr(v.as_str().unwrap_or_default()),
        ValueKind::Undefined => "Undefined".into(),
        _ => py_str(v)?,
    })
}

/// Python's `str()` of a template value: what `{{ value }}` prints in Jinja2.
fn py_str(v: &JValue) -> std::result::Result<String, minijinja::Error> {
    Ok(match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => number_str(v),
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::Seq | ValueKind::Iterable => {
            let mut out = String::from("[");
            for (i, item) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&py_repr(&item)?);
            }
            out.push(']');
            out
        }
        ValueKind::Map => {
            let mut out = String::from("{");
            for (i, key) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let val = v.get_item(&key)?;
                let _ = write!(out, "{}: {}", py_repr(&key)?, py_repr(&val)?);
            }
            out.push('}');
            out
        }
        _ => v.to_string(),
    })
}

fn strip_with(s: &str, chars: Option<&str>, left: bool, right: bool) -> String {
    let set: Option<Vec<char>> = chars.map(|c| c.chars().collect());
    let is_strip = |c: char| match &set {
        Some(set) => set.contains(&c),
        None => py_is_space(c),
    };
    let mut out = s;
    if left {
        out = out.trim_start_matches(is_strip);
    }
    if right {
        out = out.trim_end_matches(is_strip);
    }
    out.to_string()
}

fn opt_str_arg(
    v: Option<&JValue>,
    what: &str,
) -> std::result::Result<Option<String>, minijinja::Error> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() || v.is_undefined() => Ok(None),
        Some(v) => v.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("{what} arg must be None or str, not {}", v.kind()),
            )
        }),
    }
}

/// Python's `str.split(sep=None, maxsplit=-1)`; `from_right` gives `rsplit`.
fn py_split(
    s: &str,
    sep: Option<&str>,
    maxsplit: i64,
    from_right: bool,
) -> std::result::Result<Vec<String>, minijinja::Error> {
    let limit = if maxsplit < 0 {
        usize::MAX
    } else {
        maxsplit as usize
    };
    match sep {
        Some("") => Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "empty separator",
        )),
        Some(sep) => Ok(if from_right {
            let mut v: Vec<String> = s
                .rsplitn(limit.saturating_add(1), sep)
                .map(str::to_string)
                .collect();
            v.reverse();
            v
        } else {
            s.splitn(limit.saturating_add(1), sep)
                .map(str::to_string)
                .collect()
        }),
        None => {
            let chars: Vec<char> = s.chars().collect();
            let mut out = Vec::new();
            if !from_right {
                let mut i = 0;
                let n = chars.len();
                while i < n {
                    while i < n && py_is_space(chars[i]) {
                        i += 1;
                    }
                    if i == n {
                        break;
                    }
                    if out.len() == limit {
                        // Python keeps the remainder as is, trailing whitespace included.
                        out.push(chars[i..].iter().collect());
                        break;
                    }
                    let start = i;
                    while i < n && !py_is_space(chars[i]) {
                        i += 1;
                    }
                    out.push(chars[start..i].iter().collect());
                }
            } else {
                let mut i = chars.len();
                while i > 0 {
                    while i > 0 && py_is_space(chars[i - 1]) {
                        i -= 1;
                    }
                    if i == 0 {
                        break;
                    }
                    if out.len() == limit {
                        out.push(chars[..i].iter().collect());
                        break;
                    }
                    let end = i;
                    while i > 0 && !py_is_space(chars[i - 1]) {
                        i -= 1;
                    }
                    out.push(chars[i..end].iter().collect());
                }
                out.reverse();
            }
            Ok(out)
        }
    }
}

/// Python methods on template values: the whitespace-sensitive string methods here, the rest from
/// minijinja-contrib's pycompat.
fn py_method(
    state: &State,
    value: &JValue,
    method: &str,
    args: &[JValue],
) -> std::result::Result<JValue, minijinja::Error> {
    if let Some(s) = value.as_str() {
        match method {
            "strip" | "lstrip" | "rstrip" => {
                let (chars,): (Option<JValue>,) = from_args(args)?;
                let chars = opt_str_arg(chars.as_ref(), method)?;
                let (l, r) = match method {
                    "strip" => (true, true),
                    "lstrip" => (true, false),
                    _ => (false, true),
                };
                return Ok(JValue::from(strip_with(s, chars.as_deref(), l, r)));
            }
            "split" | "rsplit" => {
                let (sep, maxsplit, kwargs): (Option<JValue>, Option<i64>, Kwargs) =
                    from_args(args)?;
                let sep = match kwargs.get::<Option<JValue>>("sep")? {
                    Some(v) => opt_str_arg(Some(&v), "sep")?,
                    None => opt_str_arg(sep.as_ref(), "sep")?,
                };
                let maxsplit = kwargs
                    .get::<Option<i64>>("maxsplit")?
                    .or(maxsplit)
                    .unwrap_or(-1);
                kwargs.assert_all_used()?;
                let parts = py_split(s, sep.as_deref(), maxsplit, method == "rsplit")?;
                return Ok(JValue::from(parts));
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Jinja2's `trim` filter: `str(value).strip(chars)`.
fn trim_filter(
    value: JValue,
    chars: Option<JValue>,
) -> std::result::Result<String, minijinja::Error> {
    let chars = opt_str_arg(chars.as_ref(), "trim")?;
    Ok(strip_with(&py_str(&value)?, chars.as_deref(), true, true))
}

// ---------------------------------------------------------------------------------------------
// tojson: transformers' `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False)`.

struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

fn tojson_filter(
    value: &JValue,
    args: Rest<JValue>,
    kwargs: Kwargs,
) -> std::result::Result<JValue, minijinja::Error> {
    // Positional order of transformers' filter: ensure_ascii, indent, separators, sort_keys.
    let names = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > names.len() {
        return Err(minijinja::Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let mut given: Vec<Option<JValue>> = vec![None; 4];
    for (i, a) in args.iter().enumerate() {
        given[i] = Some(a.clone());
    }
    for (i, name) in names.iter().enumerate() {
        if let Some(v) = kwargs.get::<Option<JValue>>(name)? {
            if given[i].is_some() {
                return Err(minijinja::Error::new(
                    ErrorKind::TooManyArguments,
                    format!("tojson got multiple values for argument `{name}`"),
                ));
            }
            given[i] = Some(v);
        }
    }
    kwargs.assert_all_used()?;
    let ensure_ascii = given[0].as_ref().is_some_and(|v| v.is_true());
    let indent = match &given[1] {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.is_integer() => {
            let n = i64::try_from(v.clone())?;
            Some(" ".repeat(n.max(0) as usize))
        }
        Some(v) if v.kind() == ValueKind::String => {
            Some(v.as_str().unwrap_or_default().to_string())
        }
        Some(v) => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "tojson: indent must be an integer, a string or none, not {}",
                    v.kind()
                ),
            ))
        }
    };
    let (item_sep, key_sep) = match &given[2] {
        Some(v) if !v.is_none() => {
            let parts: Vec<JValue> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] if a.as_str().is_some() && b.as_str().is_some() => (
                    a.as_str().unwrap().to_string(),
                    b.as_str().unwrap().to_string(),
                ),
                _ => return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: separators must be a pair of strings (item_separator, key_separator)",
                )),
            }
        }
        _ => {
            if indent.is_some() {
                (",".to_string(), ": ".to_string())
            } else {
                (", ".to_string(), ": ".to_string())
            }
        }
    };
    let sort_keys = given[3].as_ref().is_some_and(|v| v.is_true());
    let style = JsonStyle {
        ensure_ascii,
        indent,
        item_sep,
        key_sep,
        sort_keys,
    };
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    Ok(JValue::from(out))
}

fn json_escape(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_key(key: &JValue) -> std::result::Result<String, minijinja::Error> {
    Ok(match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_string(),
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
        ValueKind::None => "null".into(),
        ValueKind::Number => number_str(key),
        other => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: keys must be str, int, float, bool or None, not {other}"),
            ))
        }
    })
}

fn write_json(
    out: &mut String,
    v: &JValue,
    st: &JsonStyle,
    level: usize,
) -> std::result::Result<(), minijinja::Error> {
    let newline = |out: &mut String, level: usize| {
        if let Some(ind) = &st.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    };
    match v.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
            } else {
                let f = f64::try_from(v.clone())?;
                if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    out.push_str(&py_float_repr(f));
                }
            }
        }
        ValueKind::String => json_escape(out, v.as_str().unwrap_or_default(), st.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<JValue> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            newline(out, level + 1);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&st.item_sep);
                    newline(out, level + 1);
                }
                write_json(out, item, st, level + 1)?;
            }
            newline(out, level);
            out.push(']');
        }
        ValueKind::Map => {
            let mut pairs: Vec<(String, JValue)> = Vec::new();
            for key in v.try_iter()? {
                let val = v.get_item(&key)?;
                pairs.push((json_key(&key)?, val));
            }
            if st.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if pairs.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            newline(out, level + 1);
            for (i, (k, val)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(&st.item_sep);
                    newline(out, level + 1);
                }
                json_escape(out, k, st.ensure_ascii);
                out.push_str(&st.key_sep);
                write_json(out, val, st, level + 1)?;
            }
            newline(out, level);
            out.push('}');
        }
        ValueKind::Undefined => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "tojson: an undefined value is not JSON serializable",
            ))
        }
        other => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: a value of type {other} is not JSON serializable"),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render_with(tpl: &str, messages: Value, opts: &RenderOptions) -> String {
        ChatTemplate::new("t.jinja", tpl)
            .unwrap()
            .render(&messages, opts)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn msgs() -> Value {
        json!([{"role": "user", "content": "hi"}])
    }

    /// Render `tpl` with one user message, `extra` as extra variables and no other options.
    fn check(tpl: &str, extra: Value, expected: &str) {
        let opts = RenderOptions {
            extra: extra.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        };
        let got = render_with(tpl, msgs(), &opts);
        assert_eq!(got, expected, "template: {tpl:?}");
    }

    // Every expected string below is what transformers' render_jinja_template (Jinja2 3.1)
    // produces for the same template and variables.
    #[test]
    fn whitespace_control_matches_transformers() {
        check("{% if true %}\n  a\n{% endif %}\nb", json!({}), "  a\nb");
        check("  {% if true %}x{% endif %}  \ny", json!({}), "x  \ny");
        check("  {# c #}\nz", json!({}), "z");
        check("a\n", json!({}), "a");
        check("a\n\n", json!({}), "a\n");
        check("a\r\nb\r\n", json!({}), "a\nb");
        check("{{- ' x ' -}}\n", json!({}), " x ");
        check(
            "{% for i in [1,2] %}\n{{ i }}\n{% endfor %}\n",
            json!({}),
            "1\n2\n",
        );
    }

    #[test]
    fn python_string_methods() {
        check("{{ '  a b  '.strip() }}|", json!({}), "a b|");
        check("{{ '\\n\\nx\\n'.lstrip('\\n') }}|", json!({}), "x\n|");
        check("{{ 'x\\n\\n'.rstrip('\\n') }}|", json!({}), "x|");
        check("{{ 'xxaxx'.strip('x') }}", json!({}), "a");
        check("{{ '\\x1fa\\u3000'.strip() }}|", json!({}), "a|");
        check(
            "{{ 'a</think>b</think>c'.split('</think>')[-1] }}",
            json!({}),
            "c",
        );
        check("{{ ' a  b '.split() }}", json!({}), "['a', 'b']");
        check(
            "{{ ' a  b c '.split(none, 1) }}",
            json!({}),
            "['a', 'b c ']",
        );
        check("{{ 'a,b,c'.rsplit(',', 1) }}", json!({}), "['a,b', 'c']");
        check("{{ 'a,b'.split(sep=',') }}", json!({}), "['a', 'b']");
        check(
            "{{ '<tool_response>x'.startswith('<tool_response>') }}",
            json!({}),
            "True",
        );
        check(
            "{{ 'x.json'.endswith(('.md', '.json')) }}",
            json!({}),
            "True",
        );
        check(
            "{{ 'abc'.upper() }}{{ 'ABC'.lower() }}{{ 'a-b'.replace('-', '+') }}",
            json!({}),
            "ABCabca+b",
        );
        check(
            "{{ d.get('a') }}{{ d.get('z', 'dflt') }}{{ d.get('z') }}",
            json!({"d": {"a": 1}}),
            "1dfltNone",
        );
        check(
            "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
            json!({"d": {"b": 1, "a": 2}}),
            "b=1;a=2;",
        );
        check(
            "{{ d.keys() | list }}{{ d.values() | list }}",
            json!({"d": {"b": 1, "a": 2}}),
            "['b', 'a'][1, 2]",
        );
        check("{{ '  x '|trim }}|{{ 'xyx'|trim('x') }}", json!({}), "x|y");
    }

    #[test]
    fn values_print_like_python() {
        check(
            "{{ none }}|{{ true }}|{{ false }}|{{ 1.0 }}|{{ 0.5 }}|{{ 3 }}",
            json!({}),
            "None|True|False|1.0|0.5|3",
        );
        check(
            "{{ x }}",
            json!({"x": [1, "a", null, true, 1.5]}),
            "[1, 'a', None, True, 1.5]",
        );
        check(
            "{{ x }}",
            json!({"x": {"b": "it's", "a": [] }}),
            "{'b': \"it's\", 'a': []}",
        );
        check("{{ undefined_thing }}|", json!({}), "|");
        check(
            "{{ 1e16 }}|{{ 1e-05 }}|{{ 123456789.125 }}",
            json!({}),
            "1e+16|1e-05|123456789.125",
        );
        check("{{ x | string }}", json!({"x": null}), "None");
    }

    #[test]
    fn tojson_like_transformers() {
        let v = json!({"x": {"name": "天気", "b": 1, "a": [1.0, 2, null, true], "q": "\"<&>'\n", "e": {}, "l": []}});
        check(
            "{{ x | tojson }}",
            v.clone(),
            r#"{"name": "天気", "b": 1, "a": [1.0, 2, null, true], "q": "\"<&>'\n", "e": {}, "l": []}"#,
        );
        check(
            "{{ x | tojson(indent=2) }}",
            json!({"x": {"a": [1, {"b": null}], "e": {}}}),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"e\": {}\n}",
        );
        check(
            "{{ x | tojson(ensure_ascii=true) }}",
            json!({"x": "日😀\u{7f}"}),
            r#""\u65e5\ud83d\ude00\u007f""#,
        );
        check(
            "{{ x | tojson(separators=(',', ':')) }}",
            json!({"x": {"a": [1, 2]}}),
            r#"{"a":[1,2]}"#,
        );
        check(
            "{{ x | tojson(sort_keys=true) }}",
            json!({"x": {"b": 1, "a": 2}}),
            r#"{"a": 2, "b": 1}"#,
        );
        check("{{ x | tojson }}", json!({"x": 1e16}), "1e+16");
        check(
            "{{ x | tojson }}",
            json!({"x": "\u{1}\u{8}\u{c}\t"}),
            r#""\u0001\b\f\t""#,
        );
    }

    /// Maps written as literals inside a template keep their order in Jinja2; minijinja's own maps
    /// sort keys unless its `preserve_order` feature is on (not enabled in this workspace yet).
    /// Data from messages, tools and extra values is not affected (see `OrderedMap`).
    #[test]
    fn map_literals_keep_insertion_order() {
        check(
            "{{ {'z': 1, 'a': 2} | tojson }}",
            json!({}),
            r#"{"z": 1, "a": 2}"#,
        );
    }

    /// Harness for `scripts/check-real-templates.py`: renders every case of the JSON file named by
    /// `HAKARU_TEMPLATE_CASES` and writes the results to `HAKARU_TEMPLATE_OUT`. Each case is
    /// `{"template": path, "messages": [...], "add_generation_prompt": bool, "bos_token"?: str,
    /// "eos_token"?: str, "tools"?: [...], "extra"?: {...}}`; each result `{"rendered": str}` or
    /// `{"error": str}`.
    #[test]
    #[ignore = "driven by scripts/check-real-templates.py"]
    fn render_cases_from_env() {
        let cases_path = std::env::var("HAKARU_TEMPLATE_CASES").expect("set HAKARU_TEMPLATE_CASES");
        let out_path = std::env::var("HAKARU_TEMPLATE_OUT").expect("set HAKARU_TEMPLATE_OUT");
        let cases = read_json(Path::new(&cases_path)).unwrap();
        let mut results = Vec::new();
        for case in cases.as_array().expect("a list of cases") {
            let path = Path::new(case["template"].as_str().expect("template path"));
            let opts = RenderOptions {
                add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap_or(false),
                bos_token: case
                    .get("bos_token")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                eos_token: case
                    .get("eos_token")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                tools: case.get("tools").filter(|t| !t.is_null()).cloned(),
                extra: case
                    .get("extra")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            };
            let r = ChatTemplate::from_file(path).and_then(|t| t.render(&case["messages"], &opts));
            results.push(match r {
                Ok(s) => json!({"rendered": s}),
                Err(e) => json!({"error": e.to_string()}),
            });
        }
        std::fs::write(&out_path, serde_json::to_string(&results).unwrap()).unwrap();
    }

    #[test]
    fn raise_exception_surfaces_message_and_line() {
        let t = ChatTemplate::new(
            "tpl.jinja",
            "ok\n{{ raise_exception('Roles must alternate user/assistant') }}",
        )
        .unwrap();
        let e = t
            .render(&msgs(), &RenderOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("tpl.jinja: line 2: the template raised an error: Roles must alternate user/assistant"), "{e}");
    }

    #[test]
    fn loop_controls_namespace_and_slicing() {
        check("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", json!({}), "02");
        check("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", json!({}), "6");
        check(
            "{{ [1, 2, 3][::-1] }}{{ [1, 2, 3][1:] }}{{ 'abc'[-1] }}",
            json!({}),
            "[3, 2, 1][2, 3]c",
        );
        check(
            "{% for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{% endfor %}",
            json!({}),
            "0TrueTrue",
        );
    }

    #[test]
    fn context_variables() {
        let opts = RenderOptions {
            add_generation_prompt: true,
            bos_token: Some("<s>".into()),
            eos_token: Some("</s>".into()),
            tools: Some(json!([{"type": "function", "function": {"name": "f"}}])),
            extra: json!({"enable_thinking": false})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let t = "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}|{{ add_generation_prompt }}|{{ tools[0].function.name }}|{{ enable_thinking is false }}|{{ documents is none }}";
        assert_eq!(render_with(t, msgs(), &opts), "<s>hi</s>|True|f|True|True");
        // Unset tokens are undefined, tools and documents are defined but none, as in transformers.
        let t = "{{ bos_token is defined }}|{{ tools is defined }}|{{ tools is none }}|{{ add_generation_prompt }}";
        assert_eq!(
            render_with(t, msgs(), &RenderOptions::default()),
            "False|True|True|False"
        );
        // Extra values override the special tokens.
        let opts = RenderOptions {
            bos_token: Some("<s>".into()),
            extra: json!({"bos_token": "B", "documents": [{"title": "t"}]})
                .as_object()
                .cloned()
                .unwrap(),
            ..Default::default()
        };
        assert_eq!(
            render_with("{{ bos_token }}{{ documents[0].title }}", msgs(), &opts),
            "Bt"
        );
    }

    #[test]
    fn strftime_now_is_not_defined() {
        let t = "{% if strftime_now is defined %}{{ strftime_now('%d %b %Y') }}{% else %}26 Jul 2024{% endif %}";
        check(t, json!({}), "26 Jul 2024");
    }

    #[test]
    fn content_parts_and_tests() {
        let m = json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]);
        let t = "{% for p in messages[0].content %}{{ p.text }}{% endfor %}|{{ messages[0].content is string }}|{{ 'x' is iterable }}|{{ {} is mapping }}";
        assert_eq!(
            render_with(t, m, &RenderOptions::default()),
            "ab|False|True|True"
        );
        check(
            "{{ 'tool_calls' in messages[0] }}{{ 'role' in messages[0] }}",
            json!({}),
            "FalseTrue",
        );
    }

    #[test]
    fn syntax_error_names_source_and_line() {
        let e = ChatTemplate::new("models/x/chat_template.jinja", "a\nb\n{% if %}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("models/x/chat_template.jinja: line 3: syntax error"),
            "{e}"
        );
        assert!(e.contains("not valid Jinja"), "{e}");
        let e = ChatTemplate::new("t.jinja", "{% for x in y %}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.jinja: line 1: syntax error"), "{e}");
    }

    #[test]
    fn runtime_error_names_source_and_line() {
        let t = ChatTemplate::new("t.jinja", "x\n{{ messages[0].content + 1 }}").unwrap();
        let e = t
            .render(&msgs(), &RenderOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.jinja: line 2: invalid operation"), "{e}");
    }

    #[test]
    fn reserved_extra_names_are_rejected() {
        let t = ChatTemplate::new("t.jinja", "x").unwrap();
        let opts = RenderOptions {
            extra: json!({"messages": []}).as_object().cloned().unwrap(),
            ..Default::default()
        };
        let e = t.render(&msgs(), &opts).unwrap_err().to_string();
        assert!(e.contains("`messages`"), "{e}");
    }

    #[test]
    fn bad_messages_are_explained() {
        let cases = [
            (
                json!({"role": "user"}),
                "m.json: expected a JSON array of messages",
            ),
            (json!([]), "m.json: the list of messages is empty"),
            (json!(["hi"]), "m.json: index 0: expected a message object"),
            (
                json!([{"content": "x"}]),
                "m.json: index 0: field `role` is missing",
            ),
            (
                json!([{"role": 1, "content": "x"}]),
                "m.json: index 0: field `role`: expected a string, found a number",
            ),
            (
                json!([{"role": "user", "content": "x"}, {"role": "user"}]),
                "m.json: index 1: field `content` is missing",
            ),
            (
                json!([{"role": "user", "content": 3}]),
                "m.json: index 0: field `content`: expected a string or a list",
            ),
            (
                json!([{"role": "user", "content": [{"type": "image"}]}]),
                "m.json: index 0: field `content`: part 0: type `image` is not supported",
            ),
            (
                json!([{"role": "user", "content": [{"type": "text"}]}]),
                "m.json: index 0: field `content`: part 0: field `text` must be a string",
            ),
        ];
        for (v, want) in cases {
            let e = validate_messages(&v, "m.json").unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}\nwanted: {want}");
        }
        // An assistant message with tool calls may have no content; a tool result may be structured.
        validate_messages(
            &json!([{"role": "assistant", "content": null, "tool_calls": [{}]}]),
            "m.json",
        )
        .unwrap();
        validate_messages(
            &json!([{"role": "tool", "content": {"temp": 21}}]),
            "m.json",
        )
        .unwrap();
        let e = validate_messages(
            &json!([{"role": "user", "content": {"temp": 21}}]),
            "m.json",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("index 0: field `content`: expected a string"),
            "{e}"
        );
    }

    #[test]
    fn load_messages_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(&p, r#"[{"role": "user", "content": "x"}, {"role": "bot"}]"#).unwrap();
        let e = load_messages(&p).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}: index 1: field `content` is missing",
                p.display()
            )),
            "{e}"
        );
        std::fs::write(&p, "[{").unwrap();
        let e = load_messages(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 1, column") && e.contains("not valid JSON"),
            "{e}"
        );
    }

    #[test]
    fn sha256_is_of_the_text() {
        let t = ChatTemplate::new("t", "abc").unwrap();
        assert_eq!(
            t.sha256(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(t.text(), "abc");
        assert_eq!(t.source_name(), "t");
    }

    #[test]
    fn python_float_repr() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1.2345e20, "1.2345e+20"),
            (123.456, "123.456"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(py_float_repr(f), s, "{f}");
        }
    }
}
