//! `chrf`: character n-gram F-score (chrF, Popović 2015) of the response against the reference.
//!
//! Matches sacrebleu 2.6.0's `CHRF()` with its defaults, signature
//! `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0`, to 2 decimals (in practice
//! the arithmetic is done in the same order, so the scores agree to the last bit):
//!
//! - **β = 2** (recall weighs more than precision), **character order 6**, **word order 0**
//!   (chrF, not chrF++), case kept, one reference.
//! - **Whitespace is removed** before n-grams are taken (`space:no`): every character Python's
//!   `str.isspace()` accepts, which is Unicode White_Space plus U+001C..U+001F. `"東京 タワー"`
//!   and `"東京タワー"` score 100. No other normalization: no NFKC, no lowercasing.
//! - **Characters are Unicode scalar values** (Python string indices), not bytes or graphemes.
//! - **Statistics**, per order n = 1..6, three numbers: `[hyp, ref, match]` (18 in all): the
//!   hypothesis n-gram count, the reference n-gram count, and the clipped matches (each n-gram
//!   counted at most as often as in the reference). When the reference has no n-grams of an
//!   order, that order's `hyp` is recorded as 0, as sacrebleu does; this matters only for corpus
//!   sums.
//! - **Score** (`eff:yes`, effective order): only orders where both `hyp` and `ref` are
//!   non-zero count. Precision `match/hyp` and recall `match/ref` are each **averaged over those
//!   orders first**, and one F-score is taken of the averages:
//!   `100 · (1 + β²) · P · R / (β² · P + R)`. No order counts, or `P + R = 0`: the score is 0.
//!   No epsilon smoothing enters the result (sacrebleu's `eps_smoothing=False`).
//! - **Corpus score**: the statistics of every pair are summed, then scored once; it is not the
//!   mean of sentence scores.
//!
//! Sentence scores are what the scorer reports per sample; its `chrf_stats` field keeps the 18
//! statistics so a corpus score can be computed later from stored samples
//! ([`sum_stats`] + [`chrf_from_stats`]). `tests/data/chrf-golden.json`, written by
//! `scripts/make-chrf-golden.py` with sacrebleu, holds the values the tests compare against.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::{ScoreError, ScoreInput, Scorer};

/// Character n-gram order (sacrebleu's `char_order`, `nc`).
pub const CHAR_ORDER: usize = 6;
/// Weight of recall against precision (sacrebleu's `beta`).
pub const BETA: f64 = 2.0;
/// Length of a statistics vector: `[hyp, ref, match]` for each order 1..=[`CHAR_ORDER`].
pub const STATS_LEN: usize = 3 * CHAR_ORDER;

/// The `chrf` scorer: fields `chrf` (sentence chrF, 0–100) and `chrf_stats` (the 18 statistics,
/// as integers).
pub struct Chrf;

/// Whether sacrebleu (Python's `str.split()`) treats `c` as whitespace: Unicode White_Space,
/// plus the information separators U+001C..U+001F, which Python counts and Rust does not.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A text with whitespace removed and the byte offset of each character (plus the end), so
/// that character n-grams are string slices.
struct Chars {
    text: String,
    bounds: Vec<usize>,
}

impl Chars {
    fn new(s: &str) -> Self {
        let text: String = s.chars().filter(|&c| !is_python_whitespace(c)).collect();
        let mut bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        bounds.push(text.len());
        Chars { text, bounds }
    }

    fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Every character n-gram of order `n`, with its count.
    fn ngrams(&self, n: usize) -> HashMap<&str, u64> {
        let mut m = HashMap::new();
        if self.len() >= n {
            for i in 0..=self.len() - n {
                *m.entry(&self.text[self.bounds[i]..self.bounds[i + n]])
                    .or_insert(0) += 1;
            }
        }
        m
    }
}

/// sacrebleu's per-order statistics of one hypothesis against one reference: for n = 1..=6,
/// `[hyp, ref, match]` ([`STATS_LEN`] values, all whole numbers). `hyp` is 0 for an order the
/// reference has no n-grams of.
pub fn chrf_stats(hypothesis: &str, reference: &str) -> Vec<f64> {
    let hyp = Chars::new(hypothesis);
    let refr = Chars::new(reference);
    let mut stats = Vec::with_capacity(STATS_LEN);
    for n in 1..=CHAR_ORDER {
        let h = hyp.ngrams(n);
        let r = refr.ngrams(n);
        let hyp_count: u64 = h.values().sum();
        let ref_count: u64 = r.values().sum();
        let matches: u64 = h
            .iter()
            .map(|(g, &c)| r.get(g).map_or(0, |&rc| c.min(rc)))
            .sum();
        let hyp_count = if r.is_empty() { 0 } else { hyp_count };
        stats.extend([hyp_count as f64, ref_count as f64, matches as f64]);
    }
    stats
}

/// chrF (0–100) from statistics laid out as [`chrf_stats`] gives them, for one sentence or
/// summed over a corpus. Reads whole `[hyp, ref, match]` triples; a trailing partial triple is
/// ignored, and a shorter vector scores as if the missing orders had no n-grams.
pub fn chrf_from_stats(stats: &[f64]) -> f64 {
    let factor = BETA * BETA;
    let mut avg_prec = 0.0;
    let mut avg_rec = 0.0;
    let mut effective_order = 0usize;
    for t in stats.chunks_exact(3) {
        let (n_hyp, n_ref, n_match) = (t[0], t[1], t[2]);
        if n_hyp > 0.0 && n_ref > 0.0 {
            avg_prec += n_match / n_hyp;
            avg_rec += n_match / n_ref;
            effective_order += 1;
        }
    }
    if effective_order == 0 {
        return 0.0;
    }
    avg_prec /= effective_order as f64;
    avg_rec /= effective_order as f64;
    if avg_prec + avg_rec == 0.0 {
        return 0.0;
    }
    // Same operation order as sacrebleu, so the floats agree exactly.
    let mut score = (1.0 + factor) * avg_prec * avg_rec;
    score /= factor * avg_prec + avg_rec;
    100.0 * score
}

/// Sentence-level chrF (0–100) of `hypothesis` against one `reference`, as sacrebleu's
/// `CHRF().sentence_score(hypothesis, [reference]).score`.
pub fn sentence_chrf(hypothesis: &str, reference: &str) -> f64 {
    chrf_from_stats(&chrf_stats(hypothesis, reference))
}

/// Element-wise sum of statistics vectors (corpus aggregation). Vectors of different lengths
/// are summed as if padded with zeros.
pub fn sum_stats<S: AsRef<[f64]>>(rows: &[S]) -> Vec<f64> {
    let len = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let mut total = vec![0.0; len];
    for row in rows {
        for (t, x) in total.iter_mut().zip(row.as_ref()) {
            *t += x;
        }
    }
    total
}

/// Corpus-level chrF (0–100) over `(hypothesis, reference)` pairs, as sacrebleu's
/// `CHRF().corpus_score(hypotheses, [references]).score`: statistics summed over the pairs,
/// then one score. An empty corpus scores 0 (sacrebleu raises an error).
pub fn corpus_chrf(pairs: &[(&str, &str)]) -> f64 {
    let rows: Vec<Vec<f64>> = pairs.iter().map(|(h, r)| chrf_stats(h, r)).collect();
    chrf_from_stats(&sum_stats(&rows))
}

impl Scorer for Chrf {
    fn name(&self) -> &'static str {
        "chrf"
    }
    fn description(&self) -> &'static str {
        "character n-gram F-score of response against reference (chrF: beta 2, 6 char orders, whitespace removed; as sacrebleu 2.6.0 CHRF()); fields: chrf (0-100), chrf_stats ([hyp, ref, match] per order 1-6, summed for a corpus score)"
    }
    fn needs(&self) -> &[&'static str] {
        &["reference"]
    }
    fn summary_fields(&self) -> &[&'static str] {
        &["chrf"]
    }
    fn score(&self, input: &ScoreInput) -> Result<Map<String, Value>, ScoreError> {
        let reference = input.reference.as_deref().ok_or(ScoreError::Missing {
            scorer: "chrf",
            field: "reference",
        })?;
        let stats = chrf_stats(&input.response, reference);
        let mut m = Map::new();
        m.insert("chrf".into(), Value::from(chrf_from_stats(&stats)));
        m.insert(
            "chrf_stats".into(),
            Value::Array(stats.iter().map(|&x| Value::from(x as u64)).collect()),
        );
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str = include_str!("../tests/data/chrf-golden.json");

    fn golden() -> Value {
        serde_json::from_str(GOLDEN).expect("chrf-golden.json parses")
    }

    fn f64s(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn golden_pairs(g: &Value) -> Vec<(String, String, String)> {
        g["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["hypothesis"].as_str().unwrap().to_owned(),
                    p["reference"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn golden_file_is_from_sacrebleu_2_6_0_defaults() {
        let g = golden();
        assert_eq!(g["sacrebleu_version"], "2.6.0");
        assert_eq!(
            g["signature"],
            "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
        );
        assert!(g["pairs"].as_array().unwrap().len() >= 40);
    }

    #[test]
    fn golden_sentence_scores_match_to_2_decimals() {
        let g = golden();
        let mut bad = Vec::new();
        for p in g["pairs"].as_array().unwrap() {
            let (h, r) = (
                p["hypothesis"].as_str().unwrap(),
                p["reference"].as_str().unwrap(),
            );
            let want = p["sentence_chrf"].as_f64().unwrap();
            let got = sentence_chrf(h, r);
            if !close(got, want, 0.005) {
                bad.push(format!("{}: got {got}, sacrebleu {want}", p["name"]));
            }
        }
        assert!(bad.is_empty(), "sentence chrF differs:\n{}", bad.join("\n"));
    }

    #[test]
    fn golden_sentence_scores_agree_to_1e9() {
        // Same arithmetic in the same order as sacrebleu: the floats agree, not just 2 decimals.
        let g = golden();
        for p in g["pairs"].as_array().unwrap() {
            let got = sentence_chrf(
                p["hypothesis"].as_str().unwrap(),
                p["reference"].as_str().unwrap(),
            );
            let want = p["sentence_chrf"].as_f64().unwrap();
            assert!(close(got, want, 1e-9), "{}: {got} vs {want}", p["name"]);
        }
    }

    #[test]
    fn golden_stats_match_exactly() {
        let g = golden();
        let mut bad = Vec::new();
        for p in g["pairs"].as_array().unwrap() {
            let got = chrf_stats(
                p["hypothesis"].as_str().unwrap(),
                p["reference"].as_str().unwrap(),
            );
            let want = f64s(&p["stats"]);
            if got != want {
                bad.push(format!("{}: got {got:?}, sacrebleu {want:?}", p["name"]));
            }
        }
        assert!(
            bad.is_empty(),
            "chrF statistics differ:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn golden_corpus_scores_match() {
        let g = golden();
        let pairs = golden_pairs(&g);
        let all: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(_, h, r)| (h.as_str(), r.as_str()))
            .collect();
        let want = g["corpus_chrf"].as_f64().unwrap();
        let got = corpus_chrf(&all);
        assert!(close(got, want, 0.005), "corpus: {got} vs sacrebleu {want}");
        assert!(close(got, want, 1e-9), "corpus: {got} vs sacrebleu {want}");

        let subsets = g["corpus_subsets"].as_array().unwrap();
        assert!(!subsets.is_empty());
        for s in subsets {
            let sel: Vec<(&str, &str)> = s["indices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| all[i.as_u64().unwrap() as usize])
                .collect();
            let want = s["chrf"].as_f64().unwrap();
            let got = corpus_chrf(&sel);
            assert!(close(got, want, 0.005), "{}: {got} vs {want}", s["name"]);
        }
    }

    #[test]
    fn corpus_from_stored_stats_equals_corpus_chrf() {
        // What a report does: read `chrf_stats` back from samples, sum, score.
        let g = golden();
        let pairs = golden_pairs(&g);
        let rows: Vec<Vec<f64>> = pairs
            .iter()
            .map(|(_, h, r)| {
                let input = ScoreInput {
                    id: "t".into(),
                    response: h.clone(),
                    reference: Some(r.clone()),
                    ..Default::default()
                };
                let m = Chrf.score(&input).unwrap();
                let json = serde_json::to_string(&m).unwrap();
                let back: Map<String, Value> = serde_json::from_str(&json).unwrap();
                f64s(&back["chrf_stats"])
            })
            .collect();
        let got = chrf_from_stats(&sum_stats(&rows));
        assert_eq!(got, g["corpus_chrf"].as_f64().unwrap());
    }

    #[test]
    fn whitespace_is_what_python_str_split_removes() {
        let g = golden();
        let python: Vec<u32> = g["python_whitespace"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let ours: Vec<u32> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| is_python_whitespace(c))
            .map(u32::from)
            .collect();
        assert_eq!(ours, python);
    }

    /// Hand-computed values (β = 2: F = 5PR / (4P + R)).
    #[test]
    fn table() {
        let cases: &[(&str, &str, f64)] = &[
            ("", "", 0.0),
            ("", "富士山", 0.0),
            ("富士山", "", 0.0),
            (" \t\n", "こんにちは", 0.0),
            ("こんにちは", "\u{3000}", 0.0),
            ("富士山", "富士山", 100.0),
            ("山", "山", 100.0),
            ("山", "川", 0.0),
            ("abc", "xyz", 0.0),
            // Whitespace removed (Python's set, including U+3000 and U+001C).
            ("東京 タワー", "東京タワー", 100.0),
            ("東京\u{3000}タワー\n", "東京タワー", 100.0),
            ("ab\u{1c}c", "abc", 100.0),
            // No normalization: case, width and composition are kept.
            ("ABC", "abc", 0.0),
            ("ＡＢＣ", "ABC", 0.0),
            // Only order 1 is effective: P = 1/3, R = 1 → 5/7.
            ("abc", "a", 500.0 / 7.0),
            // P = 1, R = 1/3 → 5/13 (β = 1 would give 50).
            ("a", "abc", 500.0 / 13.0),
            ("山", "富士山", 500.0 / 13.0),
            // Orders 1, 2: P̄ = 1, R̄ = (2/3 + 1/2)/2 = 7/12 → 7/11 (mean of F-scores: 63.49).
            ("ab", "abc", 700.0 / 11.0),
            // Clipping: 7 × は against 2: order 1 P = 2/7, R = 1; order 2 P = 1/6, R = 1.
            ("ははははははは", "はは", {
                let p = (2.0 / 7.0 + 1.0 / 6.0) / 2.0;
                100.0 * 5.0 * p / (4.0 * p + 1.0)
            }),
        ];
        for &(h, r, want) in cases {
            let got = sentence_chrf(h, r);
            assert!(
                close(got, want, 1e-9),
                "{h:?} vs {r:?}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn averages_precision_and_recall_before_the_f_score() {
        let got = sentence_chrf("ab", "abc");
        let f = |p: f64, r: f64| 5.0 * p * r / (4.0 * p + r);
        let mean_of_f = 100.0 * (f(1.0, 2.0 / 3.0) + f(1.0, 0.5)) / 2.0;
        assert!(close(got, 700.0 / 11.0, 1e-9));
        assert!((got - mean_of_f).abs() > 0.1, "{got} vs {mean_of_f}");
    }

    #[test]
    fn stats_layout_and_counting_by_character() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, [u32; STATS_LEN])] = &[
            // Characters, not bytes: 2 kanji are 2 unigrams and 1 bigram.
            ("日本", "日本", [2, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // An astral character (4 UTF-8 bytes) is one character.
            ("𠮷", "吉", [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // Reference lacks orders 2..: hypothesis counts there recorded as 0.
            ("abc", "a", [3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("abc", "", [0; STATS_LEN]),
            ("", "ab", [0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // Matches clipped to the reference count.
            ("aaa", "a", [3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("a a", "aaa", [2, 3, 2, 1, 2, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // Seven characters: 6-grams exist, and nothing beyond order 6 is counted.
            ("abcdefg", "abcdefg", [7, 7, 7, 6, 6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2]),
        ];
        for (h, r, want) in cases {
            let want: Vec<f64> = want.iter().map(|&x| x as f64).collect();
            assert_eq!(chrf_stats(h, r), want, "{h:?} vs {r:?}");
        }
    }

    #[test]
    fn corpus_sums_statistics_rather_than_averaging_scores() {
        let pairs = [("abc", "a"), ("a", "abc")];
        let got = corpus_chrf(&pairs);
        // Summed: order 1 [4, 4, 2] only (order 2's hyp is zeroed for the first pair,
        // the second has no hyp bigrams) → P = R = 1/2 → 50.
        assert!(close(got, 50.0, 1e-9), "{got}");
        let mean = (sentence_chrf("abc", "a") + sentence_chrf("a", "abc")) / 2.0;
        assert!((got - mean).abs() > 1.0);
        // Without zeroing, order 2 would be [2, 2, 0] and the score would differ.
        assert!(!close(
            chrf_from_stats(&[4., 4., 2., 2., 2., 0.]),
            50.0,
            0.01
        ));
        assert_eq!(corpus_chrf(&[]), 0.0);
        assert_eq!(corpus_chrf(&[("abc", "a")]), sentence_chrf("abc", "a"));
    }

    #[test]
    fn from_stats_tolerates_short_or_odd_vectors() {
        assert_eq!(chrf_from_stats(&[]), 0.0);
        assert_eq!(chrf_from_stats(&[1.0, 1.0, 1.0]), 100.0);
        assert_eq!(chrf_from_stats(&[1.0, 1.0, 1.0, 5.0]), 100.0);
        assert_eq!(chrf_from_stats(&[0.0; STATS_LEN]), 0.0);
        assert_eq!(sum_stats(&[vec![1.0, 2.0], vec![1.0]]), vec![2.0, 2.0]);
    }

    #[test]
    fn scorer_fields() {
        assert_eq!(Chrf.name(), "chrf");
        assert_eq!(Chrf.needs(), ["reference"]);
        assert_eq!(Chrf.summary_fields(), ["chrf"]);
        let input = ScoreInput {
            id: "t".into(),
            response: "東京は日本の首都である。".into(),
            reference: Some("日本の首都は東京です。".into()),
            ..Default::default()
        };
        let m = Chrf.score(&input).unwrap();
        let keys: Vec<_> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["chrf", "chrf_stats"]);
        let score = m["chrf"].as_f64().unwrap();
        assert!(close(score, 34.8667, 1e-4), "{score}");
        assert_eq!(
            m["chrf_stats"],
            serde_json::json!([12, 11, 10, 11, 10, 5, 10, 9, 3, 9, 8, 2, 8, 7, 1, 7, 6, 0])
        );
        // Pure: the same input gives the same bytes.
        let again = Chrf.score(&input).unwrap();
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            serde_json::to_string(&again).unwrap()
        );
        // Summary values pick `chrf` only.
        let summary = crate::summary_values(Some(&Chrf), &m);
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].0, "chrf");
    }

    #[test]
    fn missing_reference_is_named() {
        let input = ScoreInput {
            id: "t".into(),
            response: "x".into(),
            ..Default::default()
        };
        let e = crate::score_checked(&Chrf, &input).unwrap_err();
        assert_eq!(
            e,
            ScoreError::Missing {
                scorer: "chrf",
                field: "reference"
            }
        );
        assert!(Chrf.score(&input).is_err());
    }
}
