//! Timed primitives of `hakaru bench`, in the manner of llama-bench: a prompt-processing test
//! (pp) times one forward pass over `n` prompt tokens after `depth` tokens of context; a
//! text-generation test (tg) times `n` single-token decode steps after `depth` tokens; a test with
//! both (pp+tg, llama-bench's `-pg`) times the prompt's pass and then the steps. Token ids
//! are pseudo-random (fixed by a seed) and EOS is never looked at; tokenization and sampling are
//! not timed. Each timed region ends with a device synchronization.

use std::time::Instant;

use crate::error::Result;
use crate::model::{Logits, Transformer};

/// What one bench test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchTest {
    /// Tokens of context put in the KV cache before the timed part (untimed).
    pub depth: usize,
    /// Prompt tokens processed in one timed forward pass (pp), or 0.
    pub n_prompt: usize,
    /// Decode steps, each timed (tg), or 0.
    pub n_gen: usize,
    pub seed: u64,
    /// Requests at once: [`crate::backend::Backend::bench_concurrent`] where above 1.
    pub concurrency: usize,
}

/// Timings of one repetition of a test.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchTiming {
    /// The prompt's forward pass, logits of its last position included (pp).
    pub prompt_seconds: Option<f64>,
    /// Each decode step (tg).
    pub step_seconds: Vec<f64>,
}

/// `n` token ids in `[0, vocab)` from SplitMix64 seeded with `seed` (a few lines, so no crate).
pub fn bench_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z % vocab.max(1) as u64) as u32
        })
        .collect()
}

/// Context is filled in chunks of this many tokens (bounds the attention mask's size).
const FILL_CHUNK: usize = 512;

/// Run one repetition of `test` on `model`.
pub fn run(model: &Transformer, test: &BenchTest) -> Result<BenchTiming> {
    if test.concurrency > 1 {
        return Err(crate::Error::Other(
            "--concurrency: hakaru's engine runs one sequence at a time; concurrent requests need an endpoint".into(),
        ));
    }
    let vocab = model.config.vocab_size;
    let total = test.depth + test.n_prompt + test.n_gen.max(1);
    if total > model.config.max_position_embeddings {
        return Err(crate::Error::Other(format!(
            "depth {} + prompt {} + generated {} tokens exceed the model's {} positions; use smaller -d/-p/-n",
            test.depth, test.n_prompt, test.n_gen, model.config.max_position_embeddings
        )));
    }
    let ids = bench_ids(total, vocab, test.seed);
    let mut cache = model.new_cache();
    for chunk in ids[..test.depth].chunks(FILL_CHUNK) {
        model.forward(chunk, &mut cache, Logits::Last)?;
    }
    let device = model.device();
    device.synchronize()?;
    let mut timing = BenchTiming {
        prompt_seconds: None,
        step_seconds: Vec::with_capacity(test.n_gen),
    };
    let mut pos = test.depth;
    if test.n_prompt > 0 {
        let t0 = Instant::now();
        let logits = model.forward(&ids[pos..pos + test.n_prompt], &mut cache, Logits::Last)?;
        device.synchronize()?;
        timing.prompt_seconds = Some(t0.elapsed().as_secs_f64());
        drop(logits);
        pos += test.n_prompt;
    }
    if test.n_gen > 0 {
        if test.depth + test.n_prompt == 0 {
            // A decode step needs something to attend to: one untimed token first.
            model.forward(&ids[pos..pos + 1], &mut cache, Logits::Last)?;
            device.synchronize()?;
            pos += 1;
        }
        for i in 0..test.n_gen {
            let id = ids[(pos + i).min(ids.len() - 1)];
            let t0 = Instant::now();
            let logits = model.forward(&[id], &mut cache, Logits::Last)?;
            device.synchronize()?;
            timing.step_seconds.push(t0.elapsed().as_secs_f64());
            drop(logits);
        }
    }
    Ok(timing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_seeded_and_in_range() {
        let a = bench_ids(1000, 37, 5);
        assert_eq!(a, bench_ids(1000, 37, 5));
        assert_ne!(a, bench_ids(1000, 37, 6));
        assert!(a.iter().all(|&x| x < 37));
        // Every value turns up: not stuck on a few ids.
        let mut seen = [false; 37];
        a.iter().for_each(|&x| seen[x as usize] = true);
        assert!(seen.iter().all(|&s| s));
    }
}
