use std::io::Write;

use anyhow::{bail, Context, Result};
use hakaru_engine::backend::{Backend, PromptMode};
use hakaru_engine::generate::{generate, GenerateOptions, Generation, Sampling};

use super::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The user message (or, with --raw, the whole prompt text)
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// Use the prompt as it is, without the chat template
    #[arg(long)]
    pub raw: bool,
    /// A system message for the chat template
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Keep going past end-of-sequence tokens
    #[arg(long)]
    pub ignore_eos: bool,
    /// 0 = greedy (default)
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// 0 = no top-k filter
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object with the text, reasoning, token ids and timings instead of streaming
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &GenerateArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.top_p) || args.top_p == 0.0 {
        bail!("--top-p must be in (0, 1], got {}", args.top_p);
    }
    if args.temperature < 0.0 {
        bail!(
            "--temperature must be 0 (greedy) or positive, got {}",
            args.temperature
        );
    }
    let sampling = Sampling {
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        seed: args.seed,
    };
    if args.model.is_endpoint() {
        return endpoint(args, sampling);
    }
    let opened = args.model.open()?;
    let tok = opened.loaded.tokenizer.as_ref().with_context(|| {
        format!("model `{}` has no tokenizer, so it cannot take a text prompt (synthetic models: use `hakaru bench`, or `hakaru logits --ids`)", args.model.model)
    })?;
    let prompt = if args.raw {
        args.prompt.clone()
    } else {
        let template = tok.chat_template().with_context(|| {
            format!(
                "model `{}` has no chat template; use --raw to send the prompt as it is",
                args.model.model
            )
        })?;
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(serde_json::json!({"role": "system", "content": s}));
        }
        messages.push(serde_json::json!({"role": "user", "content": args.prompt}));
        template.render(
            &serde_json::Value::Array(messages),
            &tok.render_options(true),
        )?
    };
    // A chat template writes the BOS token itself; a raw prompt gets the tokenizer's own specials.
    let ids = tok.encode(&prompt, args.raw)?;
    let opts = GenerateOptions {
        max_tokens: args.max_tokens,
        ignore_eos: args.ignore_eos,
        sampling,
        stop_ids: tok.eos_ids(),
    };
    let stdout = std::io::stdout();
    let json = args.json;
    let mut on_text = |s: &str| {
        if !json {
            let mut out = stdout.lock();
            let _ = out.write_all(terminal_safe(s).as_bytes());
            let _ = out.flush();
        }
    };
    let g = generate(
        &opened.loaded.transformer,
        Some(tok),
        &ids,
        &opts,
        &mut on_text,
    )?;
    if json {
        println!("{}", serde_json::to_string(&g)?);
    } else {
        println!();
        print_stats(&g);
    }
    Ok(())
}

fn print_stats(g: &Generation) {
    eprintln!(
            "[{} prompt tokens, {} generated ({:?}); prefill {:.1} tok/s, decode {:.1} tok/s, first token {:.0} ms]",
        g.prompt_tokens,
        g.completion_tokens,
        g.finish_reason,
        g.prefill_tokens_per_s,
        g.decode_tokens_per_s,
        g.time_to_first_token_ms
    );
}

/// Through an OpenAI-compatible endpoint: the server applies its chat template; the answer is
/// streamed as it comes, reasoning the server sends apart between think tags.
fn endpoint(args: &GenerateArgs, sampling: Sampling) -> Result<()> {
    let mut backend = args.model.endpoint()?;
    let mode = if args.raw {
        PromptMode::Raw
    } else {
        PromptMode::Chat
    };
    let messages = serde_json::json!([{"role": "user", "content": args.prompt}]);
    let prompt = backend.render_prompt(&messages, args.system.as_deref(), mode)?;
    let opts = GenerateOptions {
        max_tokens: args.max_tokens,
        ignore_eos: args.ignore_eos,
        sampling,
        stop_ids: Vec::new(),
    };
    let stdout = std::io::stdout();
    let json = args.json;
    let mut thinking = false;
    let mut on_piece = |reasoning: &str, text: &str| {
        if json {
            return;
        }
        let mut out = stdout.lock();
        if !reasoning.is_empty() {
            if !thinking {
                let _ = out.write_all(b"<think>\n");
                thinking = true;
            }
            let _ = out.write_all(terminal_safe(reasoning).as_bytes());
        }
        if !text.is_empty() {
            if thinking {
                let _ = out.write_all(b"\n</think>\n\n");
                thinking = false;
            }
            let _ = out.write_all(terminal_safe(text).as_bytes());
        }
        let _ = out.flush();
    };
    let g = backend.generate_streaming(&prompt, &opts, &mut on_piece)?;
    if json {
        println!("{}", serde_json::to_string(&g)?);
        return Ok(());
    }
    if thinking {
        print!("\n</think>");
    }
    println!();
    print_stats(&g);
    Ok(())
}

/// Model output is untrusted: control characters other than newline and tab (ANSI escape
/// sequences, carriage returns, bells) are shown as `\u{..}` escapes instead of acting on the
/// terminal. `--json` carries the exact text.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(terminal_safe("日本語\nです\t。"), "日本語\nです\t。");
        assert_eq!(terminal_safe("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(terminal_safe("x\ry\u{7}"), "x\\u{d}y\\u{7}");
    }
}
