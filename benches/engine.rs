//! Engine micro-benchmarks on the committed fixture models: one decode step, a short prefill,
//! tokenizer encode/decode of Japanese text, and drawing a token from a vocabulary of Qwen's size.
//! Run with `cargo bench -p hakaru-benches`.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use hakaru_engine::load::{load_dir, LoadOptions};
use hakaru_engine::model::Logits;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/models")
        .join(name)
}

const JAPANESE: &str =
    "日本語の文章をトークンに分けて、また元の文字列に戻します。東京は日本の首都で、\
人口はおよそ千四百万人です。敬語には尊敬語、謙譲語、丁寧語の三種類があります。";

fn decode_step(c: &mut Criterion) {
    let m = load_dir(&fixture("tiny-qwen2"), &LoadOptions::default()).expect("fixture model loads");
    let t = &m.transformer;
    let prompt: Vec<u32> = (0..64).map(|i| (i * 7 % 400) as u32).collect();
    c.bench_function("tiny-qwen2 f32: decode one token after 64", |b| {
        let mut cache = t.new_cache();
        t.forward(&prompt, &mut cache, Logits::Last).unwrap();
        b.iter(|| {
            t.forward(&[42], &mut cache, Logits::Last).unwrap();
            cache.truncate(prompt.len());
        })
    });
    c.bench_function("tiny-qwen2 f32: prefill 64 tokens", |b| {
        b.iter(|| {
            let mut cache = t.new_cache();
            t.forward(&prompt, &mut cache, Logits::Last).unwrap()
        })
    });
}

fn tokenizer(c: &mut Criterion) {
    let m = load_dir(&fixture("tiny-qwen2"), &LoadOptions::default()).expect("fixture model loads");
    let tok = m.tokenizer.expect("fixture has a tokenizer");
    let ids = tok.encode(JAPANESE, false).unwrap();
    c.bench_function("tokenizer: encode Japanese paragraph", |b| {
        b.iter(|| tok.encode(JAPANESE, false).unwrap())
    });
    c.bench_function("tokenizer: decode Japanese paragraph", |b| {
        b.iter(|| tok.decode(&ids, true).unwrap())
    });
}

/// One sampled token from 151,936 logits (Qwen2.5's vocabulary), as each decoding step draws it:
/// with DeepSeek-R1's recommended temperature 0.6 and top-p 0.95, and with top-k 40.
fn sampling(c: &mut Criterion) {
    use hakaru_engine::generate::{Sampler, Sampling};
    // A peaked row, as a trained model's: a few tokens far above a long tail.
    let logits: Vec<f32> = (0..151_936u32)
        .map(|i| {
            let h = i.wrapping_mul(2_654_435_761) >> 8;
            (h % 1000) as f32 / 100.0 - 5.0 + if i % 9973 == 0 { 12.0 } else { 0.0 }
        })
        .collect();
    for (name, top_p, top_k) in [("top-p 0.95", 0.95, 0), ("top-k 40", 1.0, 40)] {
        let mut s = Sampler::new(Sampling {
            temperature: 0.6,
            top_p,
            top_k,
            seed: 1,
        });
        c.bench_function(
            &format!("sampling: 151,936 logits, temperature 0.6, {name}"),
            |b| b.iter(|| s.sample(&logits)),
        );
    }
}

criterion_group!(benches, decode_step, tokenizer, sampling);
criterion_main!(benches);
