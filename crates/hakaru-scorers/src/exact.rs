//! `exact`: does the response equal the reference, after normalization?
//!
//! Normalization: Unicode NFKC (full-width ↔ half-width forms, compatibility characters), every
//! run of whitespace (Unicode White_Space, including the ideographic space U+3000) collapsed to
//! one ASCII space, then trimmed. Case is kept: `Tokyo` and `tokyo` differ.

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use crate::{ScoreError, ScoreInput, Scorer};

pub struct Exact;

/// NFKC, whitespace runs to one space, trimmed.
pub fn normalize(s: &str) -> String {
    let nfkc: String = s.nfkc().collect();
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

impl Scorer for Exact {
    fn name(&self) -> &'static str {
        "exact"
    }
    fn description(&self) -> &'static str {
        "response equals reference after NFKC, whitespace collapsing and trimming; fields: match, response_normalized, reference_normalized"
    }
    fn needs(&self) -> &[&'static str] {
        &["reference"]
    }
    fn summary_fields(&self) -> &[&'static str] {
        &["match"]
    }
    fn score(&self, input: &ScoreInput) -> Result<Map<String, Value>, ScoreError> {
        let reference = input.reference.as_deref().ok_or(ScoreError::Missing {
            scorer: "exact",
            field: "reference",
        })?;
        let r = normalize(&input.response);
        let g = normalize(reference);
        let mut m = Map::new();
        m.insert("match".into(), Value::Bool(r == g));
        m.insert("response_normalized".into(), Value::String(r));
        m.insert("reference_normalized".into(), Value::String(g));
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(response: &str, reference: &str, expected: bool) {
        let input = ScoreInput {
            id: "t".into(),
            response: response.into(),
            reference: Some(reference.into()),
            ..Default::default()
        };
        let m = Exact.score(&input).unwrap();
        assert_eq!(
            m["match"],
            Value::Bool(expected),
            "{response:?} vs {reference:?}: {m:?}"
        );
    }

    #[test]
    fn table() {
        check("富士山", "富士山", true);
        check("  富士山\n", "富士山", true);
        check("富士山です", "富士山", false);
        check("ＡＢＣ１２３", "ABC123", true); // full-width forms
        check("ｶﾀｶﾅ", "カタカナ", true); // half-width katakana
        check("a\u{3000}b", "a b", true); // ideographic space
        check("a \t\n b", "a b", true);
        check("ab", "a b", false); // whitespace is collapsed, not removed
        check("Tokyo", "tokyo", false); // case is kept
        check("", "", true);
        check("①", "1", true); // NFKC compatibility
        check("\u{30AC}", "\u{30AB}\u{3099}", true); // composed vs decomposed ガ
    }

    #[test]
    fn normalized_forms_are_reported() {
        let input = ScoreInput {
            id: "t".into(),
            response: " ＡＢ  C ".into(),
            reference: Some("AB C".into()),
            ..Default::default()
        };
        let m = Exact.score(&input).unwrap();
        assert_eq!(m["response_normalized"], "AB C");
        assert_eq!(m["reference_normalized"], "AB C");
        let keys: Vec<_> = m.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["match", "response_normalized", "reference_normalized"]
        );
    }
}
