//! A `tokenizers::Tokenizer` rebuilt from the tokenizer llama.cpp stores in a GGUF file
//! (`tokenizer.ggml.*`), for GGUF files that come without tokenizer.json.
//!
//! Only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is rebuilt, which covers Qwen2, Qwen3,
//! the R1 distills and Llama 3. The pre-tokenizer split pattern is chosen by
//! `tokenizer.ggml.pre` and mirrors the `Split` pre-tokenizer of those families' tokenizer.json.

use std::path::Path;

use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Error, Result};
use crate::tokenizer::{SpecialTokens, TokenizerBundle};

/// Qwen2/Qwen3 pre-tokenization: single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3 pre-tokenization: digits in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn strings(content: &gguf_file::Content, key: &str, path: &Path) -> Result<Vec<String>> {
    let v = content
        .metadata
        .get(key)
        .ok_or_else(|| Error::file(path, format!("GGUF metadata key `{key}` is missing")))?;
    let arr = v
        .to_vec()
        .map_err(|e| Error::file(path, format!("GGUF metadata key `{key}`: {e}")))?;
    arr.iter()
        .map(|x| {
            x.to_string()
                .cloned()
                .map_err(|e| Error::file(path, format!("GGUF metadata key `{key}`: {e}")))
        })
        .collect()
}

/// `Ok(None)` when the file carries no tokenizer at all.
pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Option<TokenizerBundle>> {
    let model = match content.metadata.get("tokenizer.ggml.model") {
        None => return Ok(None),
        Some(m) => m.to_string().cloned().unwrap_or_default(),
    };
    if model != "gpt2" {
        return Err(Error::file(
            path,
            format!("GGUF tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`); put the model's tokenizer.json beside the GGUF file"),
        ));
    }
    let tokens = strings(content, "tokenizer.ggml.tokens", path)?;
    let merges = strings(content, "tokenizer.ggml.merges", path)?;
    let types: Vec<i32> = match content
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
    {
        Some(a) => a.iter().map(|x| x.to_i32().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_else(|| "default".into());

    let mut vocab = Vocab::default();
    let mut specials = Vec::new();
    let mut added = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match types.get(i).copied().unwrap_or(1) {
            // 3 = control (special), 4 = user-defined (added, not special), 5 = unused (padding)
            3 => specials.push(AddedToken::from(t.clone(), true)),
            4 => added.push(AddedToken::from(t.clone(), false)),
            5 => continue,
            _ => {}
        }
        vocab.insert(t.clone(), i as u32);
    }
    let merges: Vec<(String, String)> = merges
        .iter()
        .enumerate()
        .map(|(n, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    Error::file(
                        path,
                        format!(
                            "GGUF tokenizer merge #{n} `{m}` is not two space-separated tokens"
                        ),
                    )
                })
        })
        .collect::<Result<_>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(pre == "llama-bpe" || pre == "llama3")
        .build()
        .map_err(|e| {
            Error::file(
                path,
                format!("cannot build the BPE tokenizer from GGUF metadata: {e}"),
            )
        })?;
    let pattern = match pre.as_str() {
        "qwen2" | "deepseek-r1-qwen" => Some(QWEN2_SPLIT),
        "llama-bpe" | "llama3" | "smaug-bpe" => Some(LLAMA3_SPLIT),
        _ => None, // GPT-2's own pattern, built into ByteLevel
    };
    let pre_tok: PreTokenizerWrapper = match pattern {
        Some(p) => Sequence::new(vec![
            Split::new(
                SplitPattern::Regex(p.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| Error::Other(format!("pre-tokenizer pattern: {e}")))?
            .into(),
            ByteLevel::new(false, true, false).into(),
        ])
        .into(),
        None => ByteLevel::new(false, true, true).into(),
    };
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre_tok));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    tok.add_tokens(added)
        .and_then(|_| tok.add_special_tokens(specials))
        .map_err(|e| Error::file(path, format!("cannot add the GGUF's added tokens: {e}")))?;

    let id_token = |key: &str| -> Option<String> {
        let id = content.metadata.get(key)?.to_u32().ok()? as usize;
        tokens.get(id).cloned()
    };
    let special = SpecialTokens {
        bos_token: id_token("tokenizer.ggml.bos_token_id"),
        eos_token: id_token("tokenizer.ggml.eos_token_id"),
        pad_token: id_token("tokenizer.ggml.padding_token_id"),
    };
    let template = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok().cloned());
    let add_bos = content
        .metadata
        .get("tokenizer.ggml.add_bos_token")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(false);
    let bundle = TokenizerBundle::from_tokenizer(tok, special, template)?
        .with_add_special_tokens(add_bos, false)
        .map_err(|e| Error::file(path, e.to_string()))?;
    Ok(Some(bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The tokenizer rebuilt from GGUF metadata encodes and decodes exactly as the tokenizer.json
    /// it was written from (transformers' ids in fixtures/golden/tokenize.json).
    #[test]
    fn gguf_tokenizer_matches_tokenizer_json() {
        let cases: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root().join("fixtures/golden/tokenize.json")).unwrap(),
        )
        .unwrap();
        for file in [
            "tiny-qwen2-q8_0.gguf",
            "tiny-qwen3-q8_0.gguf",
            "tiny-llama-q8_0.gguf",
        ] {
            let path = root().join("fixtures/gguf").join(file);
            let (_, content, _, _) = crate::load::gguf_config(&path).unwrap();
            let tok = from_gguf(&content, &path)
                .unwrap()
                .expect("fixture GGUF carries a tokenizer");
            assert!(
                tok.chat_template().is_some(),
                "{file}: chat template from metadata"
            );
            for case in cases.as_array().unwrap() {
                let text = case["text"].as_str().unwrap();
                let want: Vec<u32> = case["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect();
                assert_eq!(tok.encode(text, false).unwrap(), want, "{file}: {text:?}");
                assert_eq!(
                    tok.decode(&want, false).unwrap(),
                    case["decoded"].as_str().unwrap(),
                    "{file}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn llama3_pattern_groups_digits_by_three() {
        let re = split_with(LLAMA3_SPLIT, "x 1234567");
        assert_eq!(re, vec!["x", " ", "123", "456", "7"]);
        let re = split_with(QWEN2_SPLIT, "x 123");
        assert_eq!(re, vec!["x", " ", "1", "2", "3"]);
    }

    /// Pre-tokenize with the pattern through tokenizers' own Split, as the rebuilt tokenizer does.
    fn split_with(pattern: &str, text: &str) -> Vec<String> {
        use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
        let split = Split::new(
            SplitPattern::Regex(pattern.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .unwrap();
        let mut pre = PreTokenizedString::from(text);
        split.pre_tokenize(&mut pre).unwrap();
        pre.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(s, _, _)| s.to_string())
            .collect()
    }
}
