//! Generation with timing, sampling, and scoring of continuations by log-probability.

use std::time::Instant;

use candle_core::{Tensor, D};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{KvCache, Logits, Transformer};
use crate::tokenizer::TokenizerBundle;

/// Sampling settings. `temperature == 0` means greedy decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

impl Sampling {
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// Picks the next token from a logits row.
///
/// Hand-written rather than candle-transformers' `LogitsProcessor` so that hakaru does not compile
/// that crate's hundred model files for thirty lines, and so the order of the filters (temperature,
/// then top-k, then top-p, as transformers applies its warpers) is ours to pin.
pub struct Sampler {
    params: Sampling,
    // ChaCha is portable across platforms and rand versions: a seed gives the same draws anywhere.
    rng: rand_chacha::ChaCha20Rng,
}

impl Sampler {
    pub fn new(params: Sampling) -> Self {
        let rng = rand_chacha::ChaCha20Rng::seed_from_u64(params.seed);
        Sampler { params, rng }
    }

    /// The next token: temperature, then top-k, then top-p, then a draw. Candidates are put in
    /// order (best first, the lower index first among equal logits) only as far as the draw
    /// needs: the best 64, then 4 times as many until the top-p mass or the drawn point is
    /// reached, instead of sorting the whole vocabulary at every step (152k logits: milliseconds,
    /// inside the decoding time). When top-k cuts the candidates, the k are sorted and summed in
    /// order; otherwise the normalizing sum runs in index order.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let t = self.params.temperature as f32;
        let order = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
        let mut idx: Vec<usize> = (0..logits.len())
            .filter(|&i| logits[i].is_finite())
            .collect();
        if idx.is_empty() {
            return argmax(logits);
        }
        // How many leading entries of `idx` are in order.
        let mut sorted = 0;
        let top_k = self.params.top_k;
        if top_k > 0 && top_k < idx.len() {
            idx.select_nth_unstable_by(top_k - 1, order);
            idx.truncate(top_k);
            idx.sort_unstable_by(order);
            sorted = top_k;
        }
        let best = match sorted {
            0 => *idx.iter().min_by(|a, b| order(a, b)).expect("not empty"),
            _ => idx[0],
        };
        let max = logits[best] / t;
        if !max.is_finite() {
            // A temperature so small (or a logit so large) that the scaled best overflows:
            // every weight would be NaN. The limit of such sampling is the greedy choice.
            return argmax(logits);
        }
        let weight = |i: usize| ((logits[i] / t - max) as f64).exp();
        let total: f64 = idx.iter().map(|&i| weight(i)).sum();
        let top_p = self.params.top_p;
        let mut r = None;
        let mut n = sorted.max(idx.len().min(64));
        loop {
            if n > sorted {
                if n < idx.len() {
                    idx.select_nth_unstable_by(n - 1, order);
                }
                idx[..n].sort_unstable_by(order);
                sorted = n;
            }
            let whole = sorted == idx.len();
            if top_p < 1.0 {
                // The fewest best candidates holding top_p of the mass, then a draw among them.
                let mut acc = 0.0;
                let keep = idx[..sorted].iter().position(|&i| {
                    acc += weight(i) / total;
                    acc >= top_p
                });
                let keep = match keep {
                    Some(p) => p + 1,
                    None if whole => sorted,
                    None => {
                        n = (n * 4).min(idx.len());
                        continue;
                    }
                };
                let probs: Vec<f64> = idx[..keep].iter().map(|&i| weight(i) / total).collect();
                let s: f64 = probs.iter().sum();
                let r: f64 = self.rng.random();
                let mut acc = 0.0;
                for (p, &i) in probs.iter().zip(&idx[..keep]) {
                    acc += p / s;
                    if r < acc {
                        return i as u32;
                    }
                }
                return idx[keep - 1] as u32;
            }
            let r = *r.get_or_insert_with(|| self.rng.random::<f64>());
            let mut acc = 0.0;
            for &i in &idx[..sorted] {
                acc += weight(i) / total;
                if r < acc {
                    return i as u32;
                }
            }
            if whole {
                return idx[sorted - 1] as u32;
            }
            n = (n * 4).min(idx.len());
        }
    }
}

/// Index of the largest value; the lowest index wins a tie, as torch.argmax does.
pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub ignore_eos: bool,
    pub sampling: Sampling,
    /// Token ids that end generation (the tokenizer's and generation_config's EOS ids).
    pub stop_ids: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token was produced.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generation {
    /// The answer: the generated text after any `</think>`.
    pub text: String,
    /// The reasoning between `<think>` and `</think>`, when the model produced one.
    pub reasoning: Option<String>,
    /// Generated token ids, including a final EOS token (empty from an endpoint, which sends text).
    pub token_ids: Vec<u32>,
    /// Tokens generated, including a final EOS token: `token_ids.len()` here, the server's count
    /// (`usage.completion_tokens`) from an endpoint.
    pub completion_tokens: usize,
    pub prompt_tokens: usize,
    pub finish_reason: FinishReason,
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// From the start of prefill to the first generated token.
    pub time_to_first_token_ms: f64,
}

/// Split a completion into reasoning and answer. Reasoning models either emit `<think>` themselves
/// or have it in the prompt (the R1 distills' template ends with `<think>\n`), so a `</think>`
/// alone also closes a reasoning block; a `<think>` without `</think>` (cut off) is all reasoning.
pub fn split_reasoning(text: &str) -> (Option<String>, String) {
    let trimmed = text.trim_start();
    if let Some(end) = text.find("</think>") {
        let before = &text[..end];
        let before = before
            .trim_start()
            .strip_prefix("<think>")
            .unwrap_or(before.trim_start());
        let after = &text[end + "</think>".len()..];
        return (
            Some(before.trim().to_string()),
            after.trim_start().to_string(),
        );
    }
    if let Some(rest) = trimmed.strip_prefix("<think>") {
        return (Some(rest.trim().to_string()), String::new());
    }
    (None, text.to_string())
}

fn sync(model: &Transformer) -> Result<()> {
    Ok(model.device().synchronize()?)
}

fn last_row(logits: &Tensor) -> Result<Vec<f32>> {
    let n = logits.dim(0)?;
    Ok(logits.get(n - 1)?.to_vec1::<f32>()?)
}

/// Generate from `prompt_ids`. `on_text` receives UTF-8-safe text as it is produced.
pub fn generate(
    model: &Transformer,
    tokenizer: Option<&TokenizerBundle>,
    prompt_ids: &[u32],
    opts: &GenerateOptions,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation> {
    if prompt_ids.is_empty() {
        return Err(Error::Other(
            "the prompt is empty: give at least one token".into(),
        ));
    }
    let mut cache = model.new_cache();
    let mut sampler = Sampler::new(opts.sampling.clone());
    let mut stream = tokenizer.map(|t| t.stream_decoder(true));
    // Embedding tables are often larger than the tokenizer (Qwen: 151936 rows, 151665 tokens). An
    // id past the tokenizer decodes to nothing, as in transformers; it is still kept in token_ids.
    let decodable = tokenizer.map(|t| t.vocab_size()).unwrap_or(0);
    let mut text = String::new();
    let mut out_ids = Vec::new();
    let mut finish = FinishReason::Length;

    let start = Instant::now();
    let logits = model.forward(prompt_ids, &mut cache, Logits::Last)?;
    let mut row = last_row(&logits)?;
    sync(model)?;
    let prefill = start.elapsed().as_secs_f64();
    let mut ttft = None;
    let decode_start = Instant::now();
    for step in 0..opts.max_tokens {
        let next = sampler.sample(&row);
        if ttft.is_none() {
            ttft = Some(start.elapsed().as_secs_f64());
        }
        out_ids.push(next);
        let is_eos = !opts.ignore_eos && opts.stop_ids.contains(&next);
        if let (Some(s), false, true) = (stream.as_mut(), is_eos, (next as usize) < decodable) {
            let piece = s.push(next)?;
            if !piece.is_empty() {
                on_text(&piece);
                text.push_str(&piece);
            }
        }
        if is_eos {
            finish = FinishReason::Stop;
            break;
        }
        if step + 1 == opts.max_tokens {
            break;
        }
        let logits = model.forward(&[next], &mut cache, Logits::Last)?;
        row = last_row(&logits)?;
    }
    sync(model)?;
    if let Some(s) = stream.as_mut() {
        let rest = s.flush()?;
        if !rest.is_empty() {
            on_text(&rest);
            text.push_str(&rest);
        }
    }
    let decode = decode_start.elapsed().as_secs_f64();
    // The first token comes from the prefill's logits; the rest each cost one decode step.
    let decode_steps = out_ids.len().saturating_sub(1);
    let (reasoning, answer) = split_reasoning(&text);
    Ok(Generation {
        text: answer,
        reasoning,
        completion_tokens: out_ids.len(),
        token_ids: out_ids,
        prompt_tokens: prompt_ids.len(),
        finish_reason: finish,
        prefill_seconds: prefill,
        decode_seconds: decode,
        prefill_tokens_per_s: prompt_ids.len() as f64 / prefill.max(1e-12),
        decode_tokens_per_s: if decode_steps > 0 {
            decode_steps as f64 / decode.max(1e-12)
        } else {
            0.0
        },
        time_to_first_token_ms: ttft.unwrap_or(prefill) * 1e3,
    })
}

/// Log-softmax over the vocabulary for each row of `logits` `(n, vocab)`.
pub fn log_softmax_rows(logits: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::log_softmax(logits, D::Minus1)?)
}

/// Scores continuations of a shared context: the context's KV is computed once, and each
/// continuation is run on top of it, then cut back off the cache.
pub struct PrefixScorer<'a> {
    model: &'a Transformer,
    cache: KvCache,
    /// Log-probabilities of the token that follows the context.
    next_logprobs: Vec<f32>,
}

impl<'a> PrefixScorer<'a> {
    pub fn new(model: &'a Transformer, context: &[u32]) -> Result<Self> {
        let mut cache = model.new_cache();
        let logits = model.forward(context, &mut cache, Logits::Last)?;
        let next_logprobs = log_softmax_rows(&logits)?.get(0)?.to_vec1::<f32>()?;
        Ok(PrefixScorer {
            model,
            cache,
            next_logprobs,
        })
    }

    pub fn context_len(&self) -> usize {
        self.cache.len()
    }

    /// Log-probability of each continuation token given the context and the tokens before it.
    pub fn score(&mut self, continuation: &[u32]) -> Result<Vec<f32>> {
        if continuation.is_empty() {
            return Ok(vec![]);
        }
        let ctx = self.cache.len();
        let mut out = Vec::with_capacity(continuation.len());
        out.push(self.next_logprobs[continuation[0] as usize]);
        if continuation.len() > 1 {
            let logits = self.model.forward(
                &continuation[..continuation.len() - 1],
                &mut self.cache,
                Logits::All,
            )?;
            out.extend(picked_logprobs(&logits, &continuation[1..])?);
        }
        self.cache.truncate(ctx);
        Ok(out)
    }
}

/// Log-probability of every token of `ids` after the first, by one full forward pass.
pub fn sequence_logprobs(model: &Transformer, ids: &[u32]) -> Result<Vec<f32>> {
    let mut cache = model.new_cache();
    let logits = model.forward(ids, &mut cache, Logits::All)?;
    picked_logprobs(&logits, &ids[1..])
}

/// Row i's log-probability of `ids[i]`, for the rows of `logits` `(≥ ids.len(), vocab)`. Picked
/// where the logits are, so only the picked values are copied out (a whole matrix is 0.6 GB for a
/// 1,000-token passage of a 152k vocabulary, and on a GPU a copy across the bus).
fn picked_logprobs(logits: &Tensor, ids: &[u32]) -> Result<Vec<f32>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Checked here: on a GPU an index past the row would be a device-side assertion, which
    // leaves the GPU unusable for the rest of the process.
    let vocab = logits.dim(1)?;
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Other(format!(
            "token id {bad} is past the model's vocabulary of {vocab}: the tokenizer does not belong to this model; give the model's own tokenizer"
        )));
    }
    let lp = log_softmax_rows(&logits.narrow(0, 0, ids.len())?)?;
    let index = Tensor::new(ids, logits.device())?.unsqueeze(1)?;
    Ok(lp.gather(&index, 1)?.squeeze(1)?.to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_logprobs_are_each_rows_log_softmax_at_its_token() {
        let (rows, vocab) = (4, 7);
        let v: Vec<f32> = (0..rows * vocab)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
            .collect();
        let logits = Tensor::from_vec(v.clone(), (rows, vocab), &candle_core::Device::Cpu).unwrap();
        // One row more than tokens, as after a whole sequence's pass: the last row is unused.
        let ids = [3u32, 0, 6];
        let got = picked_logprobs(&logits, &ids).unwrap();
        assert_eq!(got.len(), ids.len());
        for (r, (&id, &g)) in ids.iter().zip(&got).enumerate() {
            let row = &v[r * vocab..(r + 1) * vocab];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
            let want = row[id as usize] - lse;
            assert!((g - want).abs() < 1e-5, "row {r}: {g} vs {want}");
        }
        assert!(picked_logprobs(&logits, &[]).unwrap().is_empty());
        let e = picked_logprobs(&logits, &[1, 7]).unwrap_err().to_string();
        assert!(
            e.contains("token id 7") && e.contains("vocabulary of 7"),
            "{e}"
        );
    }

    #[test]
    fn reasoning_split() {
        for (input, reasoning, answer) in [
            (
                "<think>\nlet me see\n</think>\n\n答えは3です。",
                Some("let me see"),
                "答えは3です。",
            ),
            (
                "the prompt opened it\n</think>\nOK",
                Some("the prompt opened it"),
                "OK",
            ),
            ("<think></think>すみません", Some(""), "すみません"),
            (
                "<think>cut off mid-thought",
                Some("cut off mid-thought"),
                "",
            ),
            ("plain answer", None, "plain answer"),
        ] {
            let (r, a) = split_reasoning(input);
            assert_eq!(r.as_deref(), reasoning, "{input}");
            assert_eq!(a, answer, "{input}");
        }
    }

    /// Sampling by sorting every candidate first: what [`Sampler::sample`] must draw.
    fn sample_by_full_sort(
        params: &Sampling,
        rng: &mut rand_chacha::ChaCha20Rng,
        logits: &[f32],
    ) -> u32 {
        let t = params.temperature as f32;
        let mut idx: Vec<usize> = (0..logits.len())
            .filter(|&i| logits[i].is_finite())
            .collect();
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        if params.top_k > 0 && params.top_k < idx.len() {
            idx.truncate(params.top_k);
        }
        let max = logits[idx[0]] / t;
        let mut probs: Vec<f64> = idx
            .iter()
            .map(|&i| ((logits[i] / t - max) as f64).exp())
            .collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        if params.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (n, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= params.top_p {
                    keep = n + 1;
                    break;
                }
            }
            probs.truncate(keep);
            idx.truncate(keep);
            let s: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= s);
        }
        let r: f64 = rng.random();
        let mut acc = 0.0;
        for (p, &i) in probs.iter().zip(&idx) {
            acc += p;
            if r < acc {
                return i as u32;
            }
        }
        *idx.last().unwrap() as u32
    }

    #[test]
    fn sampling_draws_as_a_full_sort_would() {
        let mut gen = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let mut cases = 0;
        for &n in &[1usize, 5, 300, 3_000] {
            for case in 0..6 {
                // Logits on a coarse grid (ties), some of them -inf or NaN, and a spread that
                // puts the top-p cut both inside and past the first 64 candidates.
                let spread = [0.5f32, 2.0, 8.0][case % 3];
                let logits: Vec<f32> = (0..n)
                    .map(|_| match gen.random_range(0..100) {
                        0 => f32::NEG_INFINITY,
                        1 if case % 2 == 0 => f32::NAN,
                        _ => (gen.random_range(-spread..spread) * 4.0).round() / 4.0,
                    })
                    .collect();
                if !logits.iter().any(|x| x.is_finite()) {
                    continue;
                }
                for temperature in [0.3, 1.0, 1.5] {
                    for top_k in [0, 1, 3, 40, 100_000] {
                        for top_p in [1.0, 0.999, 0.95, 0.5, 0.1] {
                            let params = Sampling {
                                temperature,
                                top_p,
                                top_k,
                                seed: cases as u64,
                            };
                            let mut ours = Sampler::new(params.clone());
                            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(params.seed);
                            for draw in 0..8 {
                                assert_eq!(
                                    ours.sample(&logits),
                                    sample_by_full_sort(&params, &mut rng, &logits),
                                    "{n} logits, case {case}, {params:?}, draw {draw}"
                                );
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert!(cases > 300, "{cases}");
    }

    #[test]
    fn greedy_and_seeded_sampling() {
        let logits = [0.1f32, 2.0, 2.0, -1.0];
        assert_eq!(argmax(&logits), 1);
        let mut s = Sampler::new(Sampling::default());
        assert_eq!(s.sample(&logits), 1);
        let p = Sampling {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 7,
        };
        let draws = |p: &Sampling| {
            let mut s = Sampler::new(p.clone());
            (0..50).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draws(&p), draws(&p));
        assert!(
            draws(&p).contains(&0),
            "temperature 1 must sometimes pick a lower logit"
        );
        let k1 = Sampling {
            top_k: 1,
            ..p.clone()
        };
        assert!(draws(&k1).iter().all(|&t| t == 1));
        // top-p 0.5 keeps only the two tied best tokens.
        let tp = Sampling { top_p: 0.5, ..p };
        assert!(draws(&tp).iter().all(|&t| t == 1 || t == 2));
    }
}
