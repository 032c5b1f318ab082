//! A [`Backend`] over an OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp's `llama-server`,
//! or a hosted API), for models too large for this machine.
//!
//! The reference is the server's OpenAI base URL, then `#` and the served model's id:
//! `http://gpu-box:8000/v1#deepseek-ai/DeepSeek-R1`. Without `#model` the server must serve exactly
//! one model (`GET {base}/models`). An API key, where the server wants one, comes from
//! `HAKARU_API_KEY`, or for `https://api.openai.com` alone from `OPENAI_API_KEY` (so that a key
//! for OpenAI is never sent to another host); it is never recorded, and a URL with credentials in
//! it is refused, since references go into results.
//!
//! - **Prompts.** A chat prompt goes to `POST {base}/chat/completions` as the case's messages (the
//!   server applies its own chat template), a raw prompt to `POST {base}/completions`. A chat
//!   [`Prompt`]'s text is the messages as JSON, so a result's prompt hash covers what was sent.
//! - **Generation** streams (server-sent events) so that the time to the first token and the
//!   decoding speed are measured here; both include the network and the server's queue. Reasoning
//!   comes separately from servers that parse it (`reasoning_content` or `reasoning` in the
//!   deltas), else it is split from `<think>…</think>` as for a local model. Token counts are the
//!   server's (`usage`, asked for with `stream_options.include_usage`). Sampling settings, the seed
//!   (its low 31 bits: [`wire_seed`]) and `max_tokens` are sent; `top_k` and `ignore_eos` only
//!   when set, since OpenAI's own API refuses them (its chat API also gets the limit as
//!   `max_completion_tokens`, and no temperature or top-p at 1, for its reasoning models). A
//!   stream that ends without finishing, or finishes as aborted or failed, is an error.
//! - **Throughput tests** ([`crate::bench`]) send pseudo-random token ids as the prompt (ids in
//!   `[BENCH_ID_BASE, BENCH_ID_BASE + BENCH_ID_RANGE)`, valid in any vocabulary of 32,000 tokens or
//!   more; every request draws new ones, from the seed, a count of requests and a number drawn
//!   when the backend opens, so that no prefix cache can serve them) to `/completions` with
//!   `ignore_eos` (vLLM, SGLang and llama.cpp honour it). The prompt's pass is the time to the
//!   first streamed token; each decoding step is the time between two streamed tokens. A chunk's
//!   tokens are counted from its log-probabilities (`logprobs: 1`, which vLLM, SGLang and
//!   llama.cpp list per token), else one a chunk; a chunk of k tokens (a server that fell behind,
//!   or llama.cpp holding a token that ends mid-character for the next) is k steps of equal
//!   length, and a count that disagrees with the server's `usage` is an error rather than a
//!   guess. Depth (`-d`) is refused: the server's KV cache is not ours to fill.
//!   A test of several concurrent requests ([`Backend::bench_concurrent`]) sends them from as
//!   many threads at once, each timed as above.
//! - **Tokens** come from the server's `POST /tokenize` beside the OpenAI routes (vLLM and
//!   llama.cpp have one; vLLM's also renders a chat through the served template, and llama.cpp's
//!   `/apply-template` does where its `/tokenize` does not): counting them (characters per
//!   token; without the route the figure is absent) and scoring.
//! - **Log-probability scoring** (multiple choice, perplexity) follows the local rules: the
//!   context tokenized as its prompt is (a chat through the served template, raw text with the
//!   tokenizer's specials), each continuation tokenized on its own, and the ids sent as the
//!   prompt of a completion that echoes their log-probabilities (`echo` with `logprobs`: vLLM).
//!   A perplexity text is conditioned on the tokens the served tokenizer starts a text with (its
//!   BOS); a tokenizer without one is refused, where a local model would condition on EOS. A
//!   server without these routes fails such cases with a message saying so.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::Url;
use serde_json::{json, Value};

use crate::backend::{
    chat_messages, raw_text, Backend, BackendInfo, ContinuationScore, Prompt, PromptMode, TextScore,
};
use crate::bench::{bench_ids, BenchTest, BenchTiming};
use crate::error::{Error, Result};
use crate::generate::{split_reasoning, FinishReason, GenerateOptions, Generation};

/// Environment variables read for the API key: the first for any endpoint, the second for
/// [`OPENAI_HOST`] alone.
pub const API_KEY_VARS: [&str; 2] = ["HAKARU_API_KEY", "OPENAI_API_KEY"];

/// The one host `OPENAI_API_KEY` is sent to.
pub const OPENAI_HOST: &str = "api.openai.com";

/// Throughput tests' prompt ids start here (past the special and byte tokens at the start of most
/// vocabularies) …
pub const BENCH_ID_BASE: u32 = 1000;
/// … and span this many ids.
pub const BENCH_ID_RANGE: usize = 30_000;

/// `http[s]://host[:port]/path[#model]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRef {
    /// The OpenAI base URL, without a trailing `/`.
    pub base: String,
    /// The served model's id, when given.
    pub model: Option<String>,
}

impl EndpointRef {
    /// True for a reference spelled as an `http://` or `https://` URL.
    pub fn is_endpoint(s: &str) -> bool {
        let s = s.trim();
        s.starts_with("http://") || s.starts_with("https://")
    }

    pub fn parse(input: &str) -> Result<EndpointRef> {
        let s = input.trim();
        let bad = |msg: String| {
            Error::reference(
                s,
                format!("{msg}; an endpoint is its OpenAI base URL and the served model, e.g. `http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct`"),
            )
        };
        let (base, model) = match s.split_once('#') {
            Some((b, m)) => (b, Some(m.trim())),
            None => (s, None),
        };
        let url = Url::parse(base).map_err(|e| bad(format!("`{base}` is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("`{}` is not http or https", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("the URL has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(format!(
                "the URL holds credentials, and references are written into results; put the key in {} instead",
                API_KEY_VARS[0]
            )));
        }
        if url.query().is_some() {
            return Err(bad("the base URL must not have a query (`?…`)".into()));
        }
        if model == Some("") {
            return Err(bad("`#` must be followed by the served model's id".into()));
        }
        Ok(EndpointRef {
            base: base.trim_end_matches('/').to_string(),
            model: model.map(str::to_string),
        })
    }
}

impl EndpointRef {
    /// True for OpenAI's own API over https.
    pub fn is_openai(&self) -> bool {
        Url::parse(&self.base)
            .is_ok_and(|u| u.scheme() == "https" && u.host_str() == Some(OPENAI_HOST))
    }
}

impl fmt::Display for EndpointRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.base)?;
        if let Some(m) = &self.model {
            write!(f, "#{m}")?;
        }
        Ok(())
    }
}

/// How to talk to the server.
#[derive(Clone, Default)]
pub struct EndpointOptions {
    /// Sent as `Authorization: Bearer …`.
    pub api_key: Option<String>,
    /// Longest a whole request may take; `None`: no limit (a long generation streams for minutes).
    pub timeout: Option<Duration>,
}

// By hand, so that the key is never printed.
impl fmt::Debug for EndpointOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointOptions")
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EndpointOptions {
    /// The API key for `r` from [`API_KEY_VARS`], no timeout.
    pub fn from_env(r: &EndpointRef) -> Self {
        let var = |v: &str| std::env::var(v).ok().filter(|k| !k.trim().is_empty());
        EndpointOptions {
            api_key: var(API_KEY_VARS[0])
                .or_else(|| r.is_openai().then(|| var(API_KEY_VARS[1])).flatten()),
            timeout: None,
        }
    }
}

/// A model served by an OpenAI-compatible endpoint.
pub struct EndpointBackend {
    base: String,
    model: String,
    client: Client,
    api_key: Option<String>,
    /// From `GET /models`, where the server says (vLLM: `max_model_len`; llama.cpp: `meta`'s
    /// `n_ctx`, `n_params` and `ftype`).
    max_model_len: Option<usize>,
    parameters: Option<u64>,
    ftype: Option<String>,
    owned_by: Option<String>,
    /// The HTTP `Server` header of the models listing.
    server: Option<String>,
    /// OpenAI's own API ([`EndpointRef::is_openai`]).
    openai: bool,
    /// Bench requests sent, and a number drawn at open: mixed into each bench prompt.
    requests: u64,
    nonce: u64,
}

/// The error's message and those of its sources (reqwest's own message alone says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn endpoint_err(url: &str, msg: impl Into<String>) -> Error {
    Error::Endpoint {
        url: url.to_string(),
        msg: msg.into(),
    }
}

/// The server's message in an error body (`{"error": {"message"}}`, `{"error": "…"}`,
/// `{"message"}`, or the text), cut to a readable length.
fn error_message(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let msg = v.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let msg = msg.unwrap_or_else(|| body.trim().to_string());
    let mut cut: String = msg.chars().take(500).collect();
    if cut.len() < msg.len() {
        cut.push('…');
    }
    if cut.is_empty() {
        "(no message)".into()
    } else {
        cut
    }
}

/// A whole answer's body as JSON.
fn read_json(url: &str, resp: Response) -> Result<Value> {
    resp.text()
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
        .ok_or_else(|| {
            endpoint_err(
                url,
                "the answer is not JSON; check that the URL is the server's OpenAI base (e.g. http://localhost:8000/v1)",
            )
        })
}

fn usage_count(usage: Option<&Value>, field: &str) -> Option<usize> {
    usage
        .and_then(|u| u.get(field))
        .and_then(Value::as_u64)
        .map(|n| n as usize)
}

/// The seed as sent: its low 31 bits. vLLM and OpenAI take a signed 64-bit seed and llama.cpp an
/// unsigned 32-bit one, while hakaru's case seeds use all 64 bits.
pub fn wire_seed(seed: u64) -> u64 {
    seed & 0x7fff_ffff
}

/// One streamed chunk's share of the answer.
struct Piece<'a> {
    text: &'a str,
    reasoning: &'a str,
    finish: Option<&'a str>,
    /// The chunk has a choice at all (the usage-only last chunk has none).
    has_choice: bool,
    /// A chat stream's opening chunk: the assistant's role and no text.
    role_only: bool,
    /// Tokens the chunk's log-probabilities list (completions' `tokens`, chat's `content`), when
    /// it has them.
    listed: Option<usize>,
}

impl Piece<'_> {
    /// Whether the chunk carried a token: text or reasoning, or neither but also no finish reason
    /// and no role (a token that ends mid-character has no text yet). A chat stream's opening
    /// role chunk and a last chunk holding only the finish reason (llama.cpp sends one) carry none.
    fn has_token(&self) -> bool {
        !self.text.is_empty()
            || !self.reasoning.is_empty()
            || (self.has_choice && self.finish.is_none() && !self.role_only)
    }

    /// Tokens the chunk carried: as its log-probabilities list them, else one if it carried any.
    fn tokens(&self) -> usize {
        match self.listed {
            Some(n) if n > 0 => n,
            _ => usize::from(self.has_token()),
        }
    }
}

fn piece(v: &Value) -> Piece<'_> {
    let Some(c) = v.get("choices").and_then(|c| c.get(0)) else {
        return Piece {
            text: "",
            reasoning: "",
            finish: None,
            has_choice: false,
            role_only: false,
            listed: None,
        };
    };
    // Streams carry `delta`, whole answers `message`; completions carry `text`.
    let d = c.get("delta").or_else(|| c.get("message"));
    let text = d
        .and_then(|d| d.get("content"))
        .or_else(|| c.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let reasoning = d
        .and_then(|d| d.get("reasoning_content").or_else(|| d.get("reasoning")))
        .and_then(Value::as_str)
        .unwrap_or("");
    let role_only = text.is_empty()
        && reasoning.is_empty()
        && d.is_some_and(|d| d.get("role").is_some_and(Value::is_string));
    let listed = c
        .pointer("/logprobs/tokens")
        .or_else(|| c.pointer("/logprobs/content"))
        .and_then(Value::as_array)
        .map(Vec::len);
    Piece {
        text,
        reasoning,
        finish: c.get("finish_reason").and_then(Value::as_str),
        has_choice: true,
        role_only,
        listed,
    }
}

/// Feed each event of a server-sent-event stream (or the one JSON body of a server that answered
/// without streaming) to `f`, with the time it arrived. True when the stream ended with
/// `[DONE]` (or was one body).
fn read_events(url: &str, resp: Response, mut f: impl FnMut(&Value, Instant)) -> Result<bool> {
    let json_body = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let mut reader = BufReader::new(resp);
    if json_body {
        let mut body = String::new();
        reader
            .read_to_string(&mut body)
            .map_err(|e| endpoint_err(url, format!("reading the answer: {e}")))?;
        let v: Value = serde_json::from_str(&body).map_err(|e| {
            endpoint_err(
                url,
                format!("the answer is not JSON ({e}): {}", error_message(&body)),
            )
        })?;
        f(&v, Instant::now());
        return Ok(true);
    }
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| endpoint_err(url, format!("reading line {n} of the stream: {e}")))?;
        if read == 0 {
            break;
        }
        let at = Instant::now();
        let l = line.trim_end_matches(['\r', '\n']);
        // llama.cpp sends an error inside a stream as an `error:` line.
        if let Some(e) = l.strip_prefix("error:") {
            return Err(endpoint_err(
                url,
                format!(
                    "the server stopped with an error: {}",
                    error_message(e.trim())
                ),
            ));
        }
        // Other SSE fields (`event:`, `id:`, `retry:`) and comments (`:`) carry nothing here.
        let Some(data) = l.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            let excerpt: String = data.chars().take(200).collect();
            endpoint_err(
                url,
                format!("line {n} of the stream is not a JSON event ({e}): {excerpt}"),
            )
        })?;
        if let Some(err) = v.get("error") {
            return Err(endpoint_err(
                url,
                format!(
                    "the server stopped with an error: {}",
                    error_message(&json!({ "error": err }).to_string())
                ),
            ));
        }
        f(&v, at);
    }
    Ok(false)
}

impl EndpointBackend {
    /// Connect: list the served models and check (or pick) the one to use.
    pub fn open(r: &EndpointRef, opts: &EndpointOptions) -> Result<EndpointBackend> {
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(opts.timeout)
            .build()
            .map_err(|e| {
                endpoint_err(
                    &r.base,
                    format!("cannot make an HTTP client: {}", chain(&e)),
                )
            })?;
        let mut b = EndpointBackend {
            base: r.base.clone(),
            model: r.model.clone().unwrap_or_default(),
            client,
            api_key: opts.api_key.clone(),
            max_model_len: None,
            parameters: None,
            ftype: None,
            owned_by: None,
            server: None,
            openai: r.is_openai(),
            requests: 0,
            // std's per-process random hasher keys, so no crate for one number.
            nonce: {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                h.finish()
            },
        };
        let url = format!("{}/models", b.base);
        let resp = b.send(b.client.get(&url), &url)?;
        b.server = resp
            .headers()
            .get(reqwest::header::SERVER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .text()
            .map_err(|e| endpoint_err(&url, format!("reading the answer: {}", chain(&e))))?;
        let v: Value = serde_json::from_str(&body).map_err(|e| {
            endpoint_err(
                &url,
                format!("the model list is not JSON ({e}); is this the server's OpenAI base URL (it usually ends in /v1)?"),
            )
        })?;
        let Some(data) = v.get("data").and_then(Value::as_array) else {
            return Err(endpoint_err(
                &url,
                "the answer has no `data` list of models; is this the server's OpenAI base URL (it usually ends in /v1)?",
            ));
        };
        let ids: Vec<&str> = data
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .collect();
        let listed = || {
            ids.iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chosen = match &r.model {
            Some(m) => {
                if !ids.contains(&m.as_str()) {
                    return Err(endpoint_err(
                        &url,
                        format!(
                            "the server does not serve `{m}`; it serves {}: give one after `#`",
                            if ids.is_empty() {
                                "no models".into()
                            } else {
                                listed()
                            }
                        ),
                    ));
                }
                m.clone()
            }
            None => match ids.as_slice() {
                [one] => one.to_string(),
                [] => return Err(endpoint_err(&url, "the server lists no models")),
                _ => {
                    return Err(endpoint_err(
                        &url,
                        format!(
                            "the server serves {}; name one after `#` (e.g. `{}#{}`)",
                            listed(),
                            r.base,
                            ids[0]
                        ),
                    ))
                }
            },
        };
        let entry = data
            .iter()
            .find(|m| m.get("id").and_then(Value::as_str) == Some(chosen.as_str()));
        let field = |path: &str| entry.and_then(|m| m.pointer(path));
        b.max_model_len = field("/max_model_len")
            .or_else(|| field("/meta/n_ctx"))
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        b.parameters = field("/meta/n_params").and_then(Value::as_u64);
        b.ftype = field("/meta/ftype")
            .and_then(Value::as_str)
            .map(str::to_string);
        b.owned_by = entry
            .and_then(|m| m.get("owned_by"))
            .and_then(Value::as_str)
            .map(str::to_string);
        b.model = chosen;
        Ok(b)
    }

    /// The reference with the model the server resolved it to.
    pub fn reference(&self) -> String {
        EndpointRef {
            base: self.base.clone(),
            model: Some(self.model.clone()),
        }
        .to_string()
    }

    /// Send a request; anything but a 2xx answer is an error carrying the server's message.
    fn send(&self, req: reqwest::blocking::RequestBuilder, url: &str) -> Result<Response> {
        let req = match &self.api_key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        // A kept-alive connection the server has since closed fails as the request goes out
        // (llama.cpp's server closes them after a few requests); it is sent once more, on a
        // new connection. The server never saw the first.
        let again = req.try_clone();
        let resp = match (req.send(), again) {
            (Err(e), Some(again)) if !e.is_timeout() && !e.is_connect() => again.send(),
            (r, _) => r,
        }
        .map_err(|e| {
            endpoint_err(
                url,
                format!(
                    "no answer ({}); check that the server is running and that the URL is its OpenAI base (e.g. http://localhost:8000/v1)",
                    chain(&e)
                ),
            )
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().unwrap_or_default();
        let hint = match status.as_u16() {
            401 | 403 => format!(
                "; set {} to the server's API key ({} is sent only to {OPENAI_HOST})",
                API_KEY_VARS[0], API_KEY_VARS[1]
            ),
            404 => "; is this the server's OpenAI base URL (it usually ends in /v1)?".into(),
            _ => String::new(),
        };
        Err(endpoint_err(
            url,
            format!("answered {status}: {}{hint}", error_message(&body)),
        ))
    }

    /// POST `body` to `{base}/{path}`: the answer and the URL (for messages).
    fn post(&self, path: &str, body: &Value) -> Result<(Response, String)> {
        let url = format!("{}/{path}", self.base);
        Ok((self.post_to(&url, body)?, url))
    }

    fn post_to(&self, url: &str, body: &Value) -> Result<Response> {
        let req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.send(req, url)
    }

    /// Token ids from the server's `/tokenize` (beside the OpenAI routes). vLLM reads `prompt` or
    /// `messages` and `add_special_tokens`, llama.cpp `content` and `add_special`; both answer
    /// `tokens`.
    fn tokenize(&self, what: &Tokenize, add_special: bool) -> Result<Vec<u32>> {
        let ids = self.tokenize_once(what, add_special)?;
        let Tokenize::Chat(messages) = what else {
            return Ok(ids);
        };
        if !ids.is_empty() {
            return Ok(ids);
        }
        // llama.cpp's /tokenize ignores `messages`; its /apply-template renders them.
        let url = format!("{}/apply-template", self.root());
        let body = json!({"messages": messages, "add_generation_prompt": true});
        let rendered = self
            .post_to(&url, &body)
            .and_then(|r| read_json(&url, r))
            .ok()
            .and_then(|v| v.get("prompt").and_then(Value::as_str).map(str::to_string))
            .ok_or_else(|| {
                endpoint_err(
                    &url,
                    "the server renders a chat neither through /tokenize (vLLM takes `messages`) nor through /apply-template (llama.cpp); score this suite with `template = \"raw\"` or on a local model",
                )
            })?;
        // A rendered chat holds its own BOS, as on a local model.
        self.tokenize_once(&Tokenize::Text(&rendered), false)
    }

    fn tokenize_once(&self, what: &Tokenize, add_special: bool) -> Result<Vec<u32>> {
        let url = format!("{}/tokenize", self.root());
        let body = match what {
            Tokenize::Text(t) => json!({
                "model": self.model,
                "prompt": t,
                "content": t,
                "add_special_tokens": add_special,
                "add_special": add_special,
            }),
            Tokenize::Chat(m) => json!({
                "model": self.model,
                "messages": m,
                "add_generation_prompt": true,
                "add_special_tokens": add_special,
            }),
        };
        let v = read_json(&url, self.post_to(&url, &body)?)?;
        let tokens = v
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| endpoint_err(&url, "the answer has no `tokens` list"))?;
        tokens
            .iter()
            .map(|t| {
                t.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        endpoint_err(&url, format!("`tokens` holds {t}, not a token id"))
                    })
            })
            .collect()
    }

    /// Sum of the log-probabilities of `ids[from..]` after `ids[..from]`, from a completion that
    /// echoes the prompt with its log-probabilities (vLLM: `echo` with `logprobs`).
    fn echo_logprobs(&self, ids: &[u32], from: usize) -> Result<f64> {
        let body = json!({
            "model": self.model,
            "prompt": ids,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": true,
            "logprobs": 1,
        });
        const NEEDS: &str = "scoring through an endpoint needs a server that echoes the prompt's log-probabilities (vLLM: `echo` with `logprobs`), or run these suites on a local model";
        let (resp, url) = self.post("completions", &body).map_err(|e| match e {
            Error::Endpoint { url, msg } => Error::Endpoint {
                url,
                msg: format!("{msg}; {NEEDS}"),
            },
            e => e,
        })?;
        let v = read_json(&url, resp)?;
        let lps = v
            .pointer("/choices/0/logprobs/token_logprobs")
            .and_then(Value::as_array)
            .filter(|l| l.len() >= ids.len())
            .ok_or_else(|| {
                endpoint_err(
                    &url,
                    format!("the answer has no log-probabilities of the prompt's tokens; {NEEDS}"),
                )
            })?;
        lps[from..ids.len()]
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_f64().ok_or_else(|| {
                    endpoint_err(
                        &url,
                        format!(
                            "the log-probability of prompt token {} is {x}, not a number",
                            from + i
                        ),
                    )
                })
            })
            .sum()
    }

    /// [`Backend::generate`], with each streamed chunk's reasoning and text handed to
    /// `on_piece` as it arrives (as the server sent them: the `<think>` split of text without a
    /// reasoning parser comes only in the result).
    pub fn generate_streaming(
        &mut self,
        prompt: &Prompt,
        opts: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str, &str),
    ) -> Result<Generation> {
        let s = &opts.sampling;
        let mut body = json!({
            "model": self.model,
            "max_tokens": opts.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": wire_seed(s.seed),
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if s.top_k > 0 {
            body["top_k"] = json!(s.top_k);
        }
        if opts.ignore_eos {
            body["ignore_eos"] = json!(true);
        }
        // OpenAI's chat API names the limit `max_completion_tokens`, and its reasoning models
        // refuse `max_tokens` and any sampling setting at all: those at their defaults (1) are
        // left out.
        if self.openai && prompt.mode == PromptMode::Chat {
            if let Some(o) = body.as_object_mut() {
                if let Some(m) = o.remove("max_tokens") {
                    o.insert("max_completion_tokens".into(), m);
                }
                for k in ["temperature", "top_p"] {
                    if o.get(k).and_then(Value::as_f64) == Some(1.0) {
                        o.remove(k);
                    }
                }
            }
        }
        let path = match prompt.mode {
            PromptMode::Chat => {
                let messages: Value = serde_json::from_str(&prompt.text).map_err(|e| {
                    Error::Other(format!(
                        "a chat prompt for an endpoint is its messages as JSON, and this one is not ({e}); render it with this backend"
                    ))
                })?;
                body["messages"] = messages;
                "chat/completions"
            }
            PromptMode::Raw => {
                if prompt.text.is_empty() {
                    return Err(Error::Other(
                        "the prompt is empty; give the case some `input`".into(),
                    ));
                }
                body["prompt"] = json!(prompt.text);
                "completions"
            }
        };
        let t0 = Instant::now();
        let (resp, url) = self.post(path, &body)?;
        let st = Streamed::read(&url, resp, on_piece)?;
        let end = Instant::now();
        let completion_tokens =
            usage_count(st.usage.as_ref(), "completion_tokens").unwrap_or(st.tokens());
        let prompt_tokens = usage_count(st.usage.as_ref(), "prompt_tokens").unwrap_or(0);
        let first = st.chunks.first().map_or(end, |c| c.0);
        let last = st.chunks.last().map_or(end, |c| c.0);
        let ttft = first.duration_since(t0).as_secs_f64();
        let decode = last.duration_since(first).as_secs_f64();
        let finish_reason = match st.finish.as_deref() {
            Some("length") => FinishReason::Length,
            Some(_) => FinishReason::Stop,
            None if completion_tokens >= opts.max_tokens => FinishReason::Length,
            None => FinishReason::Stop,
        };
        let (reasoning, text) = if st.reasoning.is_empty() {
            split_reasoning(&st.text)
        } else {
            (
                Some(st.reasoning.trim().to_string()),
                st.text.trim_start().to_string(),
            )
        };
        let steps = completion_tokens.saturating_sub(1);
        Ok(Generation {
            text,
            reasoning,
            token_ids: Vec::new(),
            completion_tokens,
            prompt_tokens,
            finish_reason,
            prefill_seconds: ttft,
            decode_seconds: decode,
            prefill_tokens_per_s: prompt_tokens as f64 / ttft.max(1e-12),
            decode_tokens_per_s: if steps > 0 && decode > 0.0 {
                steps as f64 / decode
            } else {
                0.0
            },
            time_to_first_token_ms: ttft * 1e3,
        })
    }

    /// Where the server's own routes (`/tokenize`) live: the base without its `/v1`.
    fn root(&self) -> &str {
        self.base.strip_suffix("/v1").unwrap_or(&self.base)
    }
}

/// What `/tokenize` is asked to tokenize.
enum Tokenize<'a> {
    Text(&'a str),
    /// A chat, through the served chat template, ending with the assistant's header.
    Chat(&'a Value),
}

/// Tokens and their arrival times, from a streamed completion.
#[derive(Default)]
struct Streamed {
    text: String,
    reasoning: String,
    /// Arrival of each chunk that carried tokens, and how many ([`Piece::tokens`]).
    chunks: Vec<(Instant, usize)>,
    finish: Option<String>,
    usage: Option<Value>,
}

impl Streamed {
    fn tokens(&self) -> usize {
        self.chunks.iter().map(|c| c.1).sum()
    }

    /// Read the stream; `on_piece` gets each chunk's reasoning and text as they arrive.
    fn read(url: &str, resp: Response, on_piece: &mut dyn FnMut(&str, &str)) -> Result<Streamed> {
        let mut s = Streamed::default();
        let done = read_events(url, resp, |v, at| {
            if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                s.usage = Some(u.clone());
            }
            let p = piece(v);
            match p.tokens() {
                0 => {}
                n => s.chunks.push((at, n)),
            }
            if !p.text.is_empty() || !p.reasoning.is_empty() {
                on_piece(p.reasoning, p.text);
            }
            s.text.push_str(p.text);
            s.reasoning.push_str(p.reasoning);
            if let Some(f) = p.finish {
                s.finish = Some(f.to_string());
            }
        })?;
        match s.finish.as_deref() {
            None if !done => Err(endpoint_err(
                url,
                "the stream ended before the answer finished (no finish reason, no [DONE]); the connection was cut or the server failed",
            )),
            Some(f @ ("abort" | "error" | "cancelled")) => Err(endpoint_err(
                url,
                format!("the server ended the answer with finish reason `{f}`"),
            )),
            _ => Ok(s),
        }
    }
}

impl Backend for EndpointBackend {
    fn describe(&self) -> BackendInfo {
        let mut about = vec![format!("model `{}`", self.model)];
        if let Some(o) = &self.owned_by {
            about.push(format!("owned by `{o}`"));
        }
        if let Some(s) = &self.server {
            about.push(format!("server `{s}`"));
        }
        BackendInfo {
            reference: self.reference(),
            kind: "endpoint".into(),
            repo: None,
            requested_revision: None,
            commit_sha: None,
            files: Vec::new(),
            architecture: "unknown".into(),
            weights: self.ftype.clone().unwrap_or_else(|| "unknown".into()),
            parameters: self.parameters.unwrap_or(0),
            tokenizer_sha256: None,
            chat_template_sha256: None,
            max_positions: self.max_model_len.unwrap_or(0),
            device: "endpoint".into(),
            gpu: None,
            features: Vec::new(),
            notes: vec![format!(
                "served by the OpenAI-compatible endpoint {} ({}): its weights, chat template, tokenizer and hardware are the server's and are not recorded here (precision and parameters only as the server reports them), and its timings include the network",
                self.base,
                about.join(", ")
            )],
            weight_bytes_per_token: 0,
            kv_bytes_per_position: 0,
            kernels: None,
        }
    }

    fn render_prompt(
        &self,
        messages: &Value,
        system: Option<&str>,
        mode: PromptMode,
    ) -> Result<Prompt> {
        let text = match mode {
            PromptMode::Raw => raw_text(messages, system)?,
            PromptMode::Chat => {
                let all = chat_messages(messages, system)?;
                for (i, m) in all.iter().enumerate() {
                    for field in ["role", "content"] {
                        if !m.get(field).is_some_and(Value::is_string) {
                            return Err(Error::Other(format!(
                                "messages[{i}]: field `{field}` is missing or not a string"
                            )));
                        }
                    }
                }
                Value::Array(all).to_string()
            }
        };
        Ok(Prompt { text, mode })
    }

    fn generate(&mut self, prompt: &Prompt, opts: &GenerateOptions) -> Result<Generation> {
        self.generate_streaming(prompt, opts, &mut |_, _| {})
    }

    fn score_continuations(
        &mut self,
        context: &Prompt,
        continuations: &[String],
    ) -> Result<Vec<ContinuationScore>> {
        // As a local model does: the context tokenized as its prompt is (the chat template's
        // tokens, or the raw text with the tokenizer's specials), each continuation on its own.
        let ctx = match context.mode {
            PromptMode::Raw => self.tokenize(&Tokenize::Text(&context.text), true)?,
            PromptMode::Chat => {
                let messages: Value = serde_json::from_str(&context.text).map_err(|e| {
                    Error::Other(format!(
                        "a chat prompt for an endpoint is its messages as JSON, and this one is not ({e})"
                    ))
                })?;
                self.tokenize(&Tokenize::Chat(&messages), false)?
            }
        };
        if ctx.is_empty() {
            return Err(Error::Other(
                "the context is empty after tokenizing; give the case some `input`".into(),
            ));
        }
        let mut out = Vec::with_capacity(continuations.len());
        for (i, c) in continuations.iter().enumerate() {
            let ids = self.tokenize(&Tokenize::Text(c), false)?;
            if ids.is_empty() {
                return Err(Error::Other(format!(
                    "choices[{i}]: the continuation is empty, so it has no probability to score; give every choice some text"
                )));
            }
            let mut all = ctx.clone();
            all.extend_from_slice(&ids);
            out.push(ContinuationScore {
                logprob_sum: self.echo_logprobs(&all, ctx.len())?,
                tokens: ids.len(),
                chars: c.chars().count(),
            });
        }
        Ok(out)
    }

    fn perplexity(&mut self, text: &str) -> Result<TextScore> {
        let body = self.tokenize(&Tokenize::Text(text), false)?;
        if body.is_empty() {
            return Err(Error::Other(
                "the text is empty, so it has no perplexity; give the case a non-empty `reference`"
                    .into(),
            ));
        }
        // Every token is scored, so the first needs something before it: the tokens the served
        // tokenizer puts at the start of a text (its BOS).
        let mut ids = self.tokenize(&Tokenize::Text(""), true)?;
        if ids.is_empty() {
            return Err(Error::Other(
                "the served tokenizer puts no BOS token before a text, so the text's first token has nothing to be conditioned on; run perplexity suites on a local model (which conditions on EOS then)".into(),
            ));
        }
        let start = ids.len();
        ids.extend_from_slice(&body);
        Ok(TextScore {
            logprob_sum: self.echo_logprobs(&ids, start)?,
            tokens: body.len(),
            chars: text.chars().count(),
        })
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.tokenize(&Tokenize::Text(text), false)?.len())
    }

    fn bench(&mut self, test: &BenchTest) -> Result<BenchTiming> {
        if test.concurrency > 1 {
            return Err(Error::Other(format!(
                "a test of {} concurrent requests runs through bench_concurrent",
                test.concurrency
            )));
        }
        let salt = self.salt(test)?;
        self.bench_request(test, salt)
    }

    fn bench_concurrent(&mut self, test: &BenchTest) -> Result<(Vec<BenchTiming>, f64)> {
        let salts: Vec<u64> = (0..test.concurrency.max(1))
            .map(|_| self.salt(test))
            .collect::<Result<_>>()?;
        let this = &*self;
        let t0 = Instant::now();
        let results: Vec<Result<(BenchTiming, Instant)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = salts
                .iter()
                .map(|&salt| {
                    std::thread::Builder::new().spawn_scoped(scope, move || {
                        let t = this.bench_request(test, salt)?;
                        Ok((t, Instant::now()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|_| {
                        Err(Error::Other("a request's thread panicked".into()))
                    }),
                    Err(e) => Err(Error::Resource(format!(
                        "cannot start a thread for each of {} requests ({e}); use a smaller -c",
                        test.concurrency
                    ))),
                })
                .collect()
        });
        let mut timings = Vec::with_capacity(results.len());
        let mut last = t0;
        for r in results {
            let (t, end) = r?;
            last = last.max(end);
            timings.push(t);
        }
        Ok((timings, last.duration_since(t0).as_secs_f64()))
    }
}

impl EndpointBackend {
    /// A new number for a bench request's prompt ids. Never the same prompt twice, in this
    /// process or another with the same seed: a prefix cache (vLLM's, SGLang's, llama.cpp's)
    /// would answer it without a prompt pass.
    fn salt(&mut self, test: &BenchTest) -> Result<u64> {
        if test.depth > 0 {
            return Err(Error::Other(
                "-d/--depth: an endpoint's KV cache is the server's, so depth tests need a local model; leave -d at 0".into(),
            ));
        }
        self.requests += 1;
        Ok(test.seed
            ^ self.nonce
            ^ self.requests.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ ((test.n_prompt as u64) << 32 | test.n_gen as u64).rotate_left(17))
    }

    /// One bench request: `test.n_prompt` ids drawn from `salt` (one when there are none), then
    /// the first token and `test.n_gen` more, streamed and timed.
    fn bench_request(&self, test: &BenchTest, salt: u64) -> Result<BenchTiming> {
        // A tg test alone still sends one (untimed) prompt token, as the local test decodes one
        // untimed token first.
        let n = test.n_prompt.max(1);
        let ids: Vec<u32> = bench_ids(n, BENCH_ID_RANGE, salt)
            .into_iter()
            .map(|i| i + BENCH_ID_BASE)
            .collect();
        // The first token comes out of the prompt's pass; each further one is a decoding step.
        let want = test.n_gen + 1;
        let body = json!({
            "model": self.model,
            "prompt": ids,
            "max_tokens": want,
            "temperature": 0.0,
            "ignore_eos": true,
            // Each chunk then lists its tokens (vLLM, SGLang; llama.cpp from 1 up, and it merges
            // a token that ends mid-character into the next chunk).
            "logprobs": 1,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let t0 = Instant::now();
        let (resp, url) = self.post("completions", &body)?;
        let st = Streamed::read(&url, resp, &mut |_, _| {})?;
        let got = st.tokens();
        if let Some(p) = usage_count(st.usage.as_ref(), "prompt_tokens") {
            if p < n {
                return Err(endpoint_err(
                    &url,
                    format!("the server counted {p} prompt tokens where {n} token ids were sent; it must take a prompt as token ids"),
                ));
            }
        }
        if let Some(c) = usage_count(st.usage.as_ref(), "completion_tokens") {
            if c != got {
                return Err(endpoint_err(
                    &url,
                    format!("the server counted {c} tokens, and its chunks say {got}, so the time of each decoding step cannot be read; have it stream one token per chunk (SGLang: --stream-interval 1), or list each chunk's tokens in its log-probabilities"),
                ));
            }
        }
        if got != want {
            return Err(endpoint_err(
                &url,
                format!("the server sent {got} tokens where {want} were asked with ignore_eos; a server that stops at its end-of-sequence token cannot run throughput tests"),
            ));
        }
        if st.chunks[0].1 > 1 {
            return Err(endpoint_err(
                &url,
                format!("the server sent its first {} tokens in one chunk, so the prompt's pass cannot be timed apart from the steps after it", st.chunks[0].1),
            ));
        }
        // A chunk of k tokens (a server that fell behind sends several at once) is k steps
        // of equal length.
        let mut step_seconds = Vec::with_capacity(test.n_gen);
        for w in st.chunks.windows(2) {
            let (dt, k) = (w[1].0.duration_since(w[0].0).as_secs_f64(), w[1].1);
            step_seconds.extend(std::iter::repeat_n(dt / k as f64, k));
        }
        Ok(BenchTiming {
            prompt_seconds: (test.n_prompt > 0)
                .then(|| st.chunks[0].0.duration_since(t0).as_secs_f64()),
            step_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Against mockito's local HTTP server (on 127.0.0.1; nothing leaves the machine), which
    //! checks what hakaru sends and streams what a server would answer.
    use super::*;
    use crate::generate::Sampling;
    use mockito::{Matcher, Server, ServerGuard};
    use std::io::Write;

    fn sse(events: &[Value]) -> String {
        let mut s: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        s.push_str("data: [DONE]\n\n");
        s
    }

    fn serving(models: Value) -> ServerGuard {
        let mut server = Server::new();
        server
            .mock("GET", "/v1/models")
            .with_header("content-type", "application/json")
            .with_header("server", "test-engine")
            .with_body(json!({ "object": "list", "data": models }).to_string())
            .create();
        server
    }

    fn one_model() -> ServerGuard {
        serving(json!([{"id": "org/served", "owned_by": "tester", "max_model_len": 4096}]))
    }

    #[test]
    fn what_llama_cpp_reports_of_its_model_is_recorded() {
        let server = serving(json!([{"id": "qwen-shape", "owned_by": "llamacpp",
            "meta": {"n_ctx": 8192, "n_params": 494032768, "ftype": "Q8_0"}}]));
        let info = open(&server, None).unwrap().describe();
        assert_eq!(
            (info.weights.as_str(), info.parameters, info.max_positions),
            ("Q8_0", 494032768, 8192)
        );
        let info = open(&one_model(), None).unwrap().describe();
        assert_eq!((info.weights.as_str(), info.parameters), ("unknown", 0));
    }

    fn open(server: &ServerGuard, model: Option<&str>) -> Result<EndpointBackend> {
        let r = EndpointRef {
            base: format!("{}/v1", server.url()),
            model: model.map(str::to_string),
        };
        EndpointBackend::open(&r, &EndpointOptions::default())
    }

    fn opts(max_tokens: usize) -> GenerateOptions {
        GenerateOptions {
            max_tokens,
            ignore_eos: false,
            sampling: Sampling {
                temperature: 0.7,
                top_p: 0.9,
                top_k: 0,
                seed: 7,
            },
            stop_ids: vec![],
        }
    }

    fn chat_chunk(content: &str, finish: Option<&str>) -> Value {
        json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
    }

    #[test]
    fn references_parse_and_print_back() {
        let r = EndpointRef::parse("http://gpu:8000/v1/#deepseek-ai/DeepSeek-R1").unwrap();
        assert_eq!(r.base, "http://gpu:8000/v1");
        assert_eq!(r.model.as_deref(), Some("deepseek-ai/DeepSeek-R1"));
        assert_eq!(r.to_string(), "http://gpu:8000/v1#deepseek-ai/DeepSeek-R1");
        let r = EndpointRef::parse(" https://api.example.com/v1 ").unwrap();
        assert_eq!(
            (r.base.as_str(), r.model),
            ("https://api.example.com/v1", None)
        );
        assert!(EndpointRef::is_endpoint("http://x/v1"));
        assert!(!EndpointRef::is_endpoint("Qwen/Qwen2.5-7B-Instruct"));
        for (bad, says) in [
            ("http://user:secret@gpu:8000/v1#m", "credentials"),
            ("http://gpu:8000/v1#", "served model"),
            ("http://gpu:8000/v1?x=1#m", "query"),
            ("http://:8000/v1", "not a URL"),
        ] {
            let e = EndpointRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn opening_picks_or_checks_the_served_model() {
        let server = one_model();
        let b = open(&server, None).unwrap();
        assert_eq!(b.model, "org/served");
        let info = b.describe();
        assert_eq!(info.kind, "endpoint");
        assert_eq!(info.device, "endpoint");
        assert_eq!(info.max_positions, 4096);
        assert_eq!(info.reference, format!("{}/v1#org/served", server.url()));
        assert!(
            info.notes[0].contains("owned by `tester`"),
            "{:?}",
            info.notes
        );
        assert!(
            info.notes[0].contains("server `test-engine`"),
            "{:?}",
            info.notes
        );
        let e = open(&server, Some("org/other")).err().unwrap().to_string();
        assert!(
            e.contains("does not serve `org/other`") && e.contains("`org/served`"),
            "{e}"
        );

        let two = serving(json!([{"id": "a"}, {"id": "b"}]));
        let e = open(&two, None).err().unwrap().to_string();
        assert!(e.contains("`a`, `b`") && e.contains("#a"), "{e}");
        assert_eq!(open(&two, Some("b")).unwrap().model, "b");
    }

    #[test]
    fn unreachable_or_refusing_servers_say_what_to_do() {
        let mut server = Server::new();
        server.mock("GET", "/v1/models").with_status(404).create();
        let e = open(&server, None).err().unwrap().to_string();
        assert!(e.contains("404") && e.contains("ends in /v1"), "{e}");

        let mut server = Server::new();
        server
            .mock("GET", "/v1/models")
            .with_status(401)
            .with_body(r#"{"error": {"message": "invalid api key"}}"#)
            .create();
        let e = open(&server, None).err().unwrap().to_string();
        assert!(
            e.contains("invalid api key") && e.contains("HAKARU_API_KEY"),
            "{e}"
        );

        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = EndpointRef::parse(&format!("http://127.0.0.1:{port}/v1")).unwrap();
        let e = EndpointBackend::open(&r, &EndpointOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("no answer") && e.contains("server is running"),
            "{e}"
        );
    }

    #[test]
    fn a_request_the_server_dropped_unanswered_is_sent_once_more() {
        // By hand, since mockito cannot close a connection mid-request: the first connection is
        // closed as soon as the request arrives, the second is answered.
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (mut first, _) = listener.accept().unwrap();
            let _ = first.read(&mut buf);
            drop(first);
            let (mut second, _) = listener.accept().unwrap();
            let _ = second.read(&mut buf);
            let body = json!({"data": [{"id": "m"}]}).to_string();
            write!(
                second,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        });
        let r = EndpointRef::parse(&format!("http://127.0.0.1:{port}/v1")).unwrap();
        let b = EndpointBackend::open(&r, &EndpointOptions::default()).unwrap();
        assert_eq!(b.model, "m");
        server.join().unwrap();
    }

    #[test]
    fn chat_generation_sends_the_settings_and_reads_the_stream() {
        let mut server = one_model();
        let m = server
            .mock("POST", "/v1/chat/completions")
            .match_header("authorization", "Bearer sk-test")
            .match_body(Matcher::PartialJson(json!({
                "model": "org/served",
                "messages": [
                    {"role": "system", "content": "日本語で答えてください。"},
                    {"role": "user", "content": "富士山の高さは？"}
                ],
                "max_tokens": 16,
                "temperature": 0.7,
                "top_p": 0.9,
                "seed": 7,
                "stream": true,
                "stream_options": {"include_usage": true}
            })))
            // What OpenAI's own API refuses is left out when not asked for.
            .match_request(|r| {
                let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
                v.get("top_k").is_none() && v.get("ignore_eos").is_none()
            })
            .with_header("content-type", "text/event-stream")
            .with_body(sse(&[
                json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
                json!({"choices": [{"index": 0, "delta": {"reasoning_content": "高さを思い出す。"}, "finish_reason": null}]}),
                chat_chunk("3776", None),
                chat_chunk("メートルです。", None),
                chat_chunk("", Some("stop")),
                json!({"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 9}}),
            ]))
            .create();
        let r = EndpointRef {
            base: format!("{}/v1", server.url()),
            model: Some("org/served".into()),
        };
        let mut b = EndpointBackend::open(
            &r,
            &EndpointOptions {
                api_key: Some("sk-test".into()),
                timeout: None,
            },
        )
        .unwrap();
        let p = b
            .render_prompt(
                &json!([{"role": "user", "content": "富士山の高さは？"}]),
                Some("日本語で答えてください。"),
                PromptMode::Chat,
            )
            .unwrap();
        let g = b.generate(&p, &opts(16)).unwrap();
        m.assert();
        assert_eq!(g.text, "3776メートルです。");
        assert_eq!(g.reasoning.as_deref(), Some("高さを思い出す。"));
        assert_eq!((g.prompt_tokens, g.completion_tokens), (21, 9));
        assert!(g.token_ids.is_empty());
        assert_eq!(g.finish_reason, FinishReason::Stop);
    }

    #[test]
    fn raw_generation_uses_completions_and_splits_think() {
        let mut server = one_model();
        let m = server
            .mock("POST", "/v1/completions")
            .match_body(Matcher::PartialJson(json!({
                "prompt": "Q: 1+1?\n\nA:",
                "top_k": 40,
                "ignore_eos": true
            })))
            .with_header("content-type", "text/event-stream")
            .with_body(sse(&[
                json!({"choices": [{"index": 0, "text": "<think>easy</think>", "finish_reason": null}]}),
                json!({"choices": [{"index": 0, "text": " 2", "finish_reason": "length"}],
                       "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
            ]))
            .create();
        let mut b = open(&server, None).unwrap();
        let p = b
            .render_prompt(
                &json!([{"role": "user", "content": "A:"}]),
                Some("Q: 1+1?"),
                PromptMode::Raw,
            )
            .unwrap();
        let mut o = opts(4);
        o.sampling.top_k = 40;
        o.ignore_eos = true;
        let g = b.generate(&p, &o).unwrap();
        m.assert();
        assert_eq!(
            (g.text.as_str(), g.reasoning.as_deref()),
            ("2", Some("easy"))
        );
        assert_eq!(g.finish_reason, FinishReason::Length);
        assert_eq!(g.completion_tokens, 4);
    }

    #[test]
    fn server_errors_and_bad_streams_are_errors_with_the_message() {
        let mut server = one_model();
        server
            .mock("POST", "/v1/chat/completions")
            .with_status(400)
            .with_body(r#"{"error": {"message": "max_tokens is too large: 99999"}}"#)
            .create();
        server
            .mock("POST", "/v1/completions")
            .with_header("content-type", "text/event-stream")
            .with_body("data: {\"choices\": [{\"text\": \"a\"}]}\n\ndata: {oops\n\n")
            .create();
        let mut b = open(&server, None).unwrap();
        let chat = b
            .render_prompt(&json!("hi"), None, PromptMode::Chat)
            .unwrap();
        let e = b.generate(&chat, &opts(99999)).unwrap_err().to_string();
        assert!(
            e.contains("400") && e.contains("max_tokens is too large"),
            "{e}"
        );
        let raw = b
            .render_prompt(&json!("hi"), None, PromptMode::Raw)
            .unwrap();
        let e = b.generate(&raw, &opts(4)).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("{oops"), "{e}");
        let e = b
            .render_prompt(&json!([{"role": "user"}]), None, PromptMode::Chat)
            .unwrap_err()
            .to_string();
        assert!(e.contains("messages[0]") && e.contains("content"), "{e}");
    }

    #[test]
    fn a_server_that_does_not_stream_is_read_whole() {
        let mut server = one_model();
        server
            .mock("POST", "/v1/chat/completions")
            .with_header("content-type", "application/json")
            .with_body(
                json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "はい"}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
                .to_string(),
            )
            .create();
        let mut b = open(&server, None).unwrap();
        let p = b
            .render_prompt(&json!("はい？"), None, PromptMode::Chat)
            .unwrap();
        let g = b.generate(&p, &opts(8)).unwrap();
        assert_eq!((g.text.as_str(), g.completion_tokens), ("はい", 2));
    }

    /// A streamed completion of `n` token chunks `gap` apart (after `gap`), then llama.cpp's
    /// finish-only chunk and the usage.
    fn paced(
        n: usize,
        gap: Duration,
        usage_tokens: usize,
        prompt_tokens: usize,
    ) -> impl Fn(&mut dyn Write) -> std::io::Result<()> {
        move |w| {
            for i in 0..n {
                std::thread::sleep(gap);
                let c = json!({"choices": [{"index": 0, "text": format!("t{i}"), "finish_reason": null}]});
                w.write_all(format!("data: {c}\n\n").as_bytes())?;
            }
            let end = json!({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]});
            let usage = json!({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": usage_tokens}});
            w.write_all(format!("data: {end}\n\ndata: {usage}\n\ndata: [DONE]\n\n").as_bytes())
        }
    }

    #[test]
    fn throughput_tests_time_the_prompt_and_each_step() {
        let gap = Duration::from_millis(20);
        let mut server = one_model();
        // Bench requests with a prompt of `len` ids, answered with 4 paced tokens.
        let mut paced_for = |len: usize| {
            server
                .mock("POST", "/v1/completions")
                .match_body(Matcher::PartialJson(
                    json!({"max_tokens": 4, "ignore_eos": true, "temperature": 0.0}),
                ))
                .match_request(move |r| {
                    let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
                    v["prompt"].as_array().is_some_and(|p| p.len() == len)
                })
                .with_header("content-type", "text/event-stream")
                .with_chunked_body(paced(4, gap, 4, len))
                .create()
        };
        let tg = paced_for(1);
        let pg = paced_for(8);
        let pp = server
            .mock("POST", "/v1/completions")
            .match_body(Matcher::PartialJson(json!({"max_tokens": 1})))
            .match_request(|r| {
                let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
                let ids = v["prompt"].as_array().unwrap();
                ids.len() == 64
                    && ids.iter().all(|i| {
                        let i = i.as_u64().unwrap();
                        i >= BENCH_ID_BASE as u64
                            && i < BENCH_ID_BASE as u64 + BENCH_ID_RANGE as u64
                    })
            })
            .with_header("content-type", "text/event-stream")
            .with_chunked_body(paced(1, gap, 1, 64))
            .create();
        let mut b = open(&server, None).unwrap();
        let t = b
            .bench(&BenchTest {
                depth: 0,
                n_prompt: 0,
                n_gen: 3,
                seed: 1,
                concurrency: 1,
            })
            .unwrap();
        tg.assert();
        assert_eq!(t.prompt_seconds, None);
        assert_eq!(t.step_seconds.len(), 3);
        // A chunk cannot arrive before it is written: the last one comes 4 gaps after the
        // request at the earliest. (Each gap alone is no bound: buffering may bunch arrivals.)
        let t = b
            .bench(&BenchTest {
                depth: 0,
                n_prompt: 8,
                n_gen: 3,
                seed: 1,
                concurrency: 1,
            })
            .unwrap();
        pg.assert();
        let total = t.prompt_seconds.unwrap() + t.step_seconds.iter().sum::<f64>();
        assert!(total >= 4.0 * gap.as_secs_f64(), "{t:?}");
        assert_eq!(t.step_seconds.len(), 3);
        let t = b
            .bench(&BenchTest {
                depth: 0,
                n_prompt: 64,
                n_gen: 0,
                seed: 1,
                concurrency: 1,
            })
            .unwrap();
        pp.assert();
        assert!(t.prompt_seconds.unwrap() >= gap.as_secs_f64(), "{t:?}");
        assert!(t.step_seconds.is_empty());
        let e = b
            .bench(&BenchTest {
                depth: 512,
                n_prompt: 0,
                n_gen: 3,
                seed: 1,
                concurrency: 1,
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("depth"), "{e}");
    }

    #[test]
    fn concurrent_requests_each_get_their_own_prompt_and_timings() {
        let gap = Duration::from_millis(10);
        let mut server = one_model();
        let prompts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
        let seen = prompts.clone();
        let m = server
            .mock("POST", "/v1/completions")
            .match_request(move |r| {
                let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
                seen.lock().unwrap().push(v["prompt"].clone());
                true
            })
            .with_header("content-type", "text/event-stream")
            .with_chunked_body(paced(4, gap, 4, 8))
            .expect(3)
            .create();
        let mut b = open(&server, None).unwrap();
        let test = BenchTest {
            depth: 0,
            n_prompt: 8,
            n_gen: 3,
            seed: 1,
            concurrency: 3,
        };
        let e = b.bench(&test).unwrap_err().to_string();
        assert!(e.contains("bench_concurrent"), "{e}");
        let (timings, wall) = b.bench_concurrent(&test).unwrap();
        m.assert();
        assert_eq!(timings.len(), 3);
        let mut sum = 0.0;
        for t in &timings {
            assert_eq!(t.step_seconds.len(), 3);
            let total = t.prompt_seconds.unwrap() + t.step_seconds.iter().sum::<f64>();
            assert!(
                total >= 4.0 * gap.as_secs_f64() && total <= wall,
                "{t:?} {wall}"
            );
            sum += total;
        }
        // At once, not one after another (which would take at least the sum).
        assert!(wall < 0.8 * sum, "{wall} s for {sum} s of requests");
        let p = prompts.lock().unwrap();
        assert!(p[0] != p[1] && p[1] != p[2] && p[0] != p[2]);
    }

    #[test]
    fn a_chunk_of_several_tokens_is_as_many_steps() {
        // vLLM's shape: each chunk lists its tokens in its log-probabilities; the server fell
        // behind once and sent two tokens together.
        let chunk = |tokens: &[&str]| {
            let lps: Vec<f64> = tokens.iter().map(|_| -0.5).collect();
            json!({"choices": [{"index": 0, "text": tokens.concat(), "finish_reason": null,
                "logprobs": {"tokens": tokens, "token_logprobs": lps}}]})
        };
        let events = [
            chunk(&["a"]),
            chunk(&["b"]),
            chunk(&["c", "d"]),
            chunk(&["e"]),
            json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 5}}),
        ];
        let mut server = one_model();
        server
            .mock("POST", "/v1/completions")
            .match_body(Matcher::PartialJson(
                json!({"logprobs": 1, "max_tokens": 5}),
            ))
            .with_header("content-type", "text/event-stream")
            .with_chunked_body(move |w| {
                for e in &events {
                    std::thread::sleep(Duration::from_millis(2));
                    w.write_all(format!("data: {e}\n\n").as_bytes())?;
                }
                w.write_all(b"data: [DONE]\n\n")
            })
            .create();
        let mut b = open(&server, None).unwrap();
        let t = b
            .bench(&BenchTest {
                depth: 0,
                n_prompt: 0,
                n_gen: 4,
                seed: 1,
                concurrency: 1,
            })
            .unwrap();
        // Four steps: b; c and d, each half of their chunk's interval; e.
        assert_eq!(t.step_seconds.len(), 4);
        assert_eq!(t.step_seconds[1], t.step_seconds[2]);

        // Two tokens in the first chunk: the prompt's pass cannot be told apart.
        let mut server = one_model();
        let first = chunk(&["a", "b"]);
        server
            .mock("POST", "/v1/completions")
            .with_header("content-type", "text/event-stream")
            .with_body(format!(
                "data: {first}\n\ndata: {}\n\ndata: [DONE]\n\n",
                chunk(&["c"])
            ))
            .create();
        let mut b = open(&server, None).unwrap();
        let e = b
            .bench(&BenchTest {
                depth: 0,
                n_prompt: 4,
                n_gen: 2,
                seed: 1,
                concurrency: 1,
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("first 2 tokens in one chunk"), "{e}");
    }

    #[test]
    fn throughput_tests_refuse_what_cannot_be_timed() {
        let gap = Duration::from_millis(1);
        // Five tokens in four chunks: steps cannot be told apart.
        let mut server = one_model();
        server
            .mock("POST", "/v1/completions")
            .with_header("content-type", "text/event-stream")
            .with_chunked_body(paced(4, gap, 5, 1))
            .create();
        let mut b = open(&server, None).unwrap();
        let test = BenchTest {
            depth: 0,
            n_prompt: 0,
            n_gen: 4,
            seed: 1,
            concurrency: 1,
        };
        let e = b.bench(&test).unwrap_err().to_string();
        assert!(e.contains("counted 5 tokens, and its chunks say 4"), "{e}");
        // Stopped early (no ignore_eos).
        let mut server = one_model();
        server
            .mock("POST", "/v1/completions")
            .with_header("content-type", "text/event-stream")
            .with_chunked_body(paced(2, gap, 2, 1))
            .create();
        let mut b = open(&server, None).unwrap();
        let e = b.bench(&test).unwrap_err().to_string();
        assert!(e.contains("sent 2 tokens where 5 were asked"), "{e}");
    }

    /// `/tokenize` answering `ids` for a text (or chat) body matching `body`.
    fn tokenizes(server: &mut ServerGuard, body: Value, ids: &[u32]) {
        server
            .mock("POST", "/tokenize")
            .match_body(Matcher::PartialJson(body))
            .with_body(json!({ "tokens": ids }).to_string())
            .create();
    }

    /// An echoing `/completions`: each prompt token `t` after a token `u` has log-probability
    /// `-(t + u/1000)/100` (so a score tells which token came before), and one generated token
    /// follows.
    fn echoes(server: &mut ServerGuard) {
        server
            .mock("POST", "/v1/completions")
            .match_body(Matcher::PartialJson(
                json!({"echo": true, "logprobs": 1, "max_tokens": 1}),
            ))
            .with_body_from_request(|r| {
                let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
                let ids = v["prompt"].as_array().unwrap();
                let ids: Vec<f64> = ids.iter().map(|t| t.as_f64().unwrap()).collect();
                let mut lps: Vec<Value> = vec![Value::Null];
                lps.extend(
                    ids.windows(2)
                        .map(|w| json!(-(w[1] + w[0] / 1000.0) / 100.0)),
                );
                lps.push(json!(-9.0));
                json!({"choices": [{"index": 0, "text": "", "logprobs": {"token_logprobs": lps}}]})
                    .to_string()
                    .into_bytes()
            })
            .create();
    }

    #[test]
    fn log_probabilities_follow_the_local_tokenization_rules() {
        let mut server = one_model();
        tokenizes(
            &mut server,
            json!({"prompt": "日本の首都は", "add_special_tokens": true}),
            &[1, 10, 11],
        );
        tokenizes(
            &mut server,
            json!({"prompt": " 東京", "add_special_tokens": false}),
            &[20],
        );
        tokenizes(
            &mut server,
            json!({"prompt": " 大阪", "add_special_tokens": false}),
            &[30, 31],
        );
        tokenizes(
            &mut server,
            json!({"prompt": "", "add_special_tokens": true}),
            &[1],
        );
        tokenizes(
            &mut server,
            json!({"prompt": "富士山", "add_special_tokens": false}),
            &[40, 41],
        );
        tokenizes(
            &mut server,
            json!({"messages": [{"role": "user", "content": "首都は？"}], "add_generation_prompt": true}),
            &[2, 3],
        );
        echoes(&mut server);
        let mut b = open(&server, None).unwrap();
        let raw = b
            .render_prompt(&json!("日本の首都は"), None, PromptMode::Raw)
            .unwrap();
        let s = b
            .score_continuations(&raw, &[" 東京".into(), " 大阪".into()])
            .unwrap();
        // Only the continuation's tokens count, after the context's last (11): 20 → -0.20011;
        // 30, 31 → -0.30011 - 0.3103.
        assert!((s[0].logprob_sum + 0.20011).abs() < 1e-9, "{s:?}");
        assert!((s[1].logprob_sum + 0.61041).abs() < 1e-9, "{s:?}");
        assert_eq!((s[1].tokens, s[1].chars), (2, 3));
        let chat = b
            .render_prompt(&json!("首都は？"), None, PromptMode::Chat)
            .unwrap();
        let s = b.score_continuations(&chat, &[" 東京".into()]).unwrap();
        // After the chat's last token (3).
        assert!((s[0].logprob_sum + 0.20003).abs() < 1e-9, "{s:?}");
        // Every token of the text, after the BOS (1): 40, 41 → -0.40001 - 0.4104.
        let p = b.perplexity("富士山").unwrap();
        assert!((p.logprob_sum + 0.81041).abs() < 1e-9, "{p:?}");
        assert_eq!((p.tokens, p.chars), (2, 3));
    }

    #[test]
    fn a_chat_context_is_rendered_by_apply_template_where_tokenize_ignores_messages() {
        let mut server = one_model();
        // llama.cpp: /tokenize answers no tokens for `messages`, /apply-template renders them.
        tokenizes(&mut server, json!({"add_generation_prompt": true}), &[]);
        server
            .mock("POST", "/apply-template")
            .match_body(Matcher::PartialJson(
                json!({"messages": [{"role": "user", "content": "首都は？"}]}),
            ))
            .with_body(
                r#"{"prompt": "<|im_start|>user\n首都は？<|im_end|>\n<|im_start|>assistant\n"}"#,
            )
            .create();
        tokenizes(
            &mut server,
            json!({"content": "<|im_start|>user\n首都は？<|im_end|>\n<|im_start|>assistant\n", "add_special": false}),
            &[2, 3, 4],
        );
        tokenizes(&mut server, json!({"prompt": "東京"}), &[20]);
        echoes(&mut server);
        let mut b = open(&server, None).unwrap();
        let chat = b
            .render_prompt(&json!("首都は？"), None, PromptMode::Chat)
            .unwrap();
        let s = b.score_continuations(&chat, &["東京".into()]).unwrap();
        // After the rendered chat's last token (4).
        assert!((s[0].logprob_sum + 0.20004).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn scoring_refuses_what_the_server_cannot_give() {
        let mut server = one_model();
        tokenizes(&mut server, json!({"prompt": ""}), &[]);
        tokenizes(&mut server, json!({"prompt": "text"}), &[7]);
        tokenizes(&mut server, json!({"prompt": "ctx"}), &[5]);
        // A server that does not echo the prompt.
        server
            .mock("POST", "/v1/completions")
            .with_body(
                json!({"choices": [{"index": 0, "text": "x", "logprobs": null}]}).to_string(),
            )
            .create();
        let mut b = open(&server, None).unwrap();
        let e = b.perplexity("text").unwrap_err().to_string();
        assert!(e.contains("no BOS") && e.contains("local model"), "{e}");
        let ctx = b
            .render_prompt(&json!("ctx"), None, PromptMode::Raw)
            .unwrap();
        let e = b
            .score_continuations(&ctx, &["text".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("echoes") && e.contains("vLLM"), "{e}");
        let e = b
            .score_continuations(&ctx, &["".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("choices[0]"), "{e}");
    }

    #[test]
    fn broken_streams_are_errors() {
        let mut server = one_model();
        let token = json!({"choices": [{"text": "x", "finish_reason": null}]});
        let aborted = json!({"choices": [{"text": "x", "finish_reason": "abort"}]});
        // llama.cpp's error line, a cut connection, an aborted answer.
        for (prompt, body) in [
            ("a", format!("data: {token}\n\nerror: {{\"code\": 500, \"message\": \"slot unavailable\"}}\n\n")),
            ("b", format!("data: {token}\n\n")),
            ("c", format!("data: {aborted}\n\ndata: [DONE]\n\n")),
        ] {
            server
                .mock("POST", "/v1/completions")
                .match_body(Matcher::PartialJson(json!({ "prompt": prompt })))
                .with_header("content-type", "text/event-stream")
                .with_body(body)
                .create();
        }
        let mut b = open(&server, None).unwrap();
        let mut err = |p: &str| {
            let p = b.render_prompt(&json!(p), None, PromptMode::Raw).unwrap();
            b.generate(&p, &opts(4)).unwrap_err().to_string()
        };
        let e = err("a");
        assert!(e.contains("slot unavailable"), "{e}");
        let e = err("b");
        assert!(e.contains("ended before the answer finished"), "{e}");
        let e = err("c");
        assert!(e.contains("`abort`"), "{e}");
    }

    #[test]
    fn seeds_fit_every_server_and_bench_prompts_never_repeat() {
        assert_eq!(wire_seed(u64::MAX), 0x7fff_ffff);
        assert_eq!(wire_seed(0x1_2345_6789), 0x2345_6789);
        let mut server = one_model();
        let ok = json!({"choices": [{"text": "ok", "finish_reason": "stop"}]});
        server
            .mock("POST", "/v1/completions")
            .match_body(Matcher::PartialJson(json!({"seed": 0x7fff_ffffu64})))
            .with_header("content-type", "text/event-stream")
            .with_body(format!("data: {ok}\n\ndata: [DONE]\n\n"))
            .create();
        let prompts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
        let seen = prompts.clone();
        server
            .mock("POST", "/v1/completions")
            .match_body(Matcher::PartialJson(json!({"ignore_eos": true})))
            .match_request(move |r| {
                let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
                seen.lock().unwrap().push(v["prompt"].clone());
                true
            })
            .with_header("content-type", "text/event-stream")
            .with_chunked_body(paced(1, Duration::ZERO, 1, 16))
            .create();
        let mut b = open(&server, None).unwrap();
        let mut o = opts(4);
        o.sampling.seed = u64::MAX;
        let p = b
            .render_prompt(&json!("hi"), None, PromptMode::Raw)
            .unwrap();
        assert_eq!(b.generate(&p, &o).unwrap().text, "ok");
        let test = BenchTest {
            depth: 0,
            n_prompt: 16,
            n_gen: 0,
            seed: 3,
            concurrency: 1,
        };
        b.bench(&test).unwrap();
        b.bench(&test).unwrap();
        // A second backend (another `hakaru bench` with the same seed) too.
        open(&server, None).unwrap().bench(&test).unwrap();
        let prompts = prompts.lock().unwrap();
        assert_eq!(prompts.len(), 3);
        assert!(prompts[0] != prompts[1] && prompts[0] != prompts[2] && prompts[1] != prompts[2]);
    }

    #[test]
    fn openai_chat_gets_max_completion_tokens() {
        let mut server = one_model();
        let ok =
            json!({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]});
        server
            .mock("POST", "/v1/chat/completions")
            .match_body(Matcher::PartialJson(json!({"max_completion_tokens": 4})))
            .match_request(|r| {
                let v: Value = serde_json::from_slice(r.body().unwrap()).unwrap();
                v.get("max_tokens").is_none()
                    && v.get("temperature").is_none()
                    && v.get("top_p").is_none()
            })
            .with_header("content-type", "text/event-stream")
            .with_body(format!("data: {ok}\n\ndata: [DONE]\n\n"))
            .create();
        let mut b = open(&server, None).unwrap();
        // As open() sets it for https://api.openai.com, which a local test cannot be.
        b.openai = true;
        let p = b
            .render_prompt(&json!("hi"), None, PromptMode::Chat)
            .unwrap();
        let mut o = opts(4);
        (o.sampling.temperature, o.sampling.top_p) = (1.0, 1.0);
        assert_eq!(b.generate(&p, &o).unwrap().text, "ok");
    }

    #[test]
    fn an_openai_key_goes_to_openai_alone() {
        let openai = EndpointRef::parse("https://api.openai.com/v1#gpt-4o").unwrap();
        let other = EndpointRef::parse("http://api.openai.com.evil.example/v1#m").unwrap();
        assert!(openai.is_openai() && !other.is_openai());
        assert!(!EndpointRef::parse("http://api.openai.com/v1")
            .unwrap()
            .is_openai());
        // The only test in this binary that reads these variables.
        std::env::remove_var(API_KEY_VARS[0]);
        std::env::set_var(API_KEY_VARS[1], "sk-openai");
        assert_eq!(
            EndpointOptions::from_env(&openai).api_key.as_deref(),
            Some("sk-openai")
        );
        assert_eq!(EndpointOptions::from_env(&other).api_key, None);
        std::env::set_var(API_KEY_VARS[0], "sk-hakaru");
        assert_eq!(
            EndpointOptions::from_env(&other).api_key.as_deref(),
            Some("sk-hakaru")
        );
        let shown = format!("{:?}", EndpointOptions::from_env(&other));
        assert!(!shown.contains("sk-hakaru"), "{shown}");
        std::env::remove_var(API_KEY_VARS[0]);
        std::env::remove_var(API_KEY_VARS[1]);
    }

    #[test]
    fn tokens_are_counted_by_the_servers_tokenize_route() {
        let mut server = one_model();
        // vLLM answers a count; llama.cpp the tokens.
        server
            .mock("POST", "/tokenize")
            .match_body(Matcher::PartialJson(
                json!({"prompt": "こんにちは", "content": "こんにちは"}),
            ))
            .with_body(r#"{"count": 3, "tokens": [1, 2, 3], "max_model_len": 4096}"#)
            .create();
        server
            .mock("POST", "/tokenize")
            .match_body(Matcher::PartialJson(json!({"content": "さようなら"})))
            .with_body(r#"{"tokens": [5, 6]}"#)
            .create();
        let b = open(&server, None).unwrap();
        assert_eq!(b.count_tokens("こんにちは").unwrap(), 3);
        assert_eq!(b.count_tokens("さようなら").unwrap(), 2);
    }
}
