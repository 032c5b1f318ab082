//! Reading `samples.jsonl` as the runner writes it: one sample per line, each appended and
//! synced on its own, so an interrupted run can leave only its last line torn. The runner (to
//! resume) and the report (to render) read it by the same rule.

use crate::SampleRecord;

/// What a `samples.jsonl` holds.
#[derive(Debug, Default)]
pub struct SampleLines {
    pub samples: Vec<SampleRecord>,
    /// Byte length of the complete, valid lines (where a torn tail starts).
    pub valid_len: u64,
    /// A torn last line: its 1-based number and why it is not a sample (`no newline`,
    /// `not JSON: …`, `not a sample record: …`).
    pub torn: Option<(usize, String)>,
}

/// A line before the last that is not a sample: the file was damaged otherwise than by an
/// interrupted append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// `not JSON: …` or `not a sample record: …`.
    pub msg: String,
}

/// Parse the bytes of a `samples.jsonl`. Blank lines are skipped; a last line without its newline
/// or not a sample is reported in [`SampleLines::torn`]; a bad line before the last is an error.
pub fn parse_sample_lines(bytes: &[u8]) -> Result<SampleLines, BadLine> {
    let mut out = SampleLines::default();
    let mut start = 0usize;
    let mut line_no = 0usize;
    while start < bytes.len() {
        line_no += 1;
        let (end, complete) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, true),
            None => (bytes.len(), false),
        };
        let line = &bytes[start..end];
        let next = end + complete as usize;
        let is_last = next >= bytes.len();
        start = next;
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                out.valid_len = next as u64;
                continue;
            }
            break;
        }
        if !complete {
            out.torn = Some((line_no, "no newline".into()));
            break;
        }
        let parsed = serde_json::from_slice::<serde_json::Value>(line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| {
                serde_json::from_value::<SampleRecord>(v)
                    .map_err(|e| format!("not a sample record: {e}"))
            });
        match parsed {
            Ok(rec) => {
                out.samples.push(rec);
                out.valid_len = next as u64;
            }
            Err(msg) if is_last => {
                out.torn = Some((line_no, msg));
                break;
            }
            Err(msg) => return Err(BadLine { line: line_no, msg }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_bad_lines() {
        assert_eq!(parse_sample_lines(b"").unwrap().samples.len(), 0);
        let r = parse_sample_lines(b"\n{\"x\"").unwrap();
        assert_eq!(r.torn, Some((2, "no newline".into())));
        assert_eq!(r.valid_len, 1);
        let r = parse_sample_lines(b"{oops\n").unwrap();
        assert!(r.torn.as_ref().unwrap().1.starts_with("not JSON"), "{r:?}");
        let e = parse_sample_lines(b"{oops\n\n{}\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.msg.starts_with("not JSON"));
        let e = parse_sample_lines(b"{}\n{}\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.msg.starts_with("not a sample record"), "{e:?}");
    }
}
