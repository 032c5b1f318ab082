//! The result files: `samples.jsonl` (appended, one line per case × repeat, fsynced per line) and
//! `run.json` (rewritten atomically: temp file in the same directory, fsync, rename, fsync of the
//! directory).
//!
//! A process killed at any instant leaves `samples.jsonl` as complete lines plus, at most, one torn
//! last line (bytes without their newline), and `run.json` as either the old or the new version.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use hakaru_types::{RunRecord, SampleRecord, SCHEMA_VERSION};

use crate::RunError;

pub const SAMPLES_FILE: &str = "samples.jsonl";
pub const RUN_FILE: &str = "run.json";

pub(crate) fn io_err(path: &Path, what: &str, e: std::io::Error) -> RunError {
    RunError::Io {
        path: path.to_path_buf(),
        msg: format!("{what}: {e}"),
    }
}

/// Serialize one sample as its `samples.jsonl` line (with the newline). Field order is the
/// struct's, object keys keep insertion order, floats print in their shortest round-trip form
/// (ryu): the same record always gives the same bytes.
pub fn sample_line(rec: &SampleRecord) -> String {
    let mut s = serde_json::to_string(rec).expect("a SampleRecord always serializes");
    s.push('\n');
    s
}

/// Appends samples, each flushed and fsynced before [`append`](Self::append) returns.
pub struct SampleWriter {
    path: PathBuf,
    file: File,
}

impl SampleWriter {
    pub fn open(path: &Path) -> Result<Self, RunError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err(path, "cannot open for appending", e))?;
        Ok(SampleWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn append(&mut self, rec: &SampleRecord) -> Result<(), RunError> {
        let line = sample_line(rec);
        // One write of the whole line: a kill leaves a prefix of it, never an interleaving.
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| io_err(&self.path, "cannot append a sample", e))
    }
}

/// What reading `samples.jsonl` found.
pub type ReadSamples = hakaru_types::jsonl::SampleLines;

/// Read `samples.jsonl` ([`hakaru_types::jsonl::parse_sample_lines`]). A torn last line is
/// reported in `torn` (a write cut short); a bad line before the last is an error naming its
/// line, since the file was damaged otherwise than by an interrupted append. A missing file reads
/// as empty.
pub fn read_samples(path: &Path) -> Result<ReadSamples, RunError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReadSamples::default()),
        Err(e) => return Err(io_err(path, "cannot read", e)),
    };
    hakaru_types::jsonl::parse_sample_lines(&bytes).map_err(|b| RunError::Corrupt {
        path: path.to_path_buf(),
        line: b.line,
        msg: format!(
            "{}; the file is damaged before its last line, so what ran cannot be told; start a new run",
            b.msg
        ),
    })
}

/// Cut `samples.jsonl` back to its complete lines (dropping a torn last line), durably.
pub fn truncate_to(path: &Path, len: u64) -> Result<(), RunError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, "cannot open to drop the torn last line", e))?;
    f.set_len(len)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err(path, "cannot drop the torn last line", e))
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsynced, renamed over
/// `path`, then the directory fsynced so the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Directories cannot be opened for syncing on every platform; the rename stands anyway.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, "cannot write", e)
    })
}

pub fn write_record(path: &Path, rec: &RunRecord) -> Result<(), RunError> {
    let mut s = serde_json::to_string_pretty(rec).expect("a RunRecord always serializes");
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Read a `run.json`, refusing one from a newer schema.
pub fn read_record(path: &Path) -> Result<RunRecord, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        io_err(
            path,
            "cannot read (is this a run directory, made by `hakaru run`?)",
            e,
        )
    })?;
    // Check the version first: a newer file may not parse as today's types at all.
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| RunError::Corrupt {
        path: path.to_path_buf(),
        line: e.line(),
        msg: format!("not JSON: {e}"),
    })?;
    match v.get("schema_version").and_then(|x| x.as_u64()) {
        Some(n) if n > SCHEMA_VERSION as u64 => {
            return Err(RunError::Corrupt {
                path: path.to_path_buf(),
                line: 1,
                msg: format!(
                    "field `schema_version`: {n} is newer than this hakaru reads ({SCHEMA_VERSION}); use a newer hakaru"
                ),
            })
        }
        Some(_) => {}
        None => {
            return Err(RunError::Corrupt {
                path: path.to_path_buf(),
                line: 1,
                msg: "field `schema_version`: missing or not a number; this is not a hakaru run.json".into(),
            })
        }
    }
    serde_json::from_str(&text).map_err(|e| RunError::Corrupt {
        path: path.to_path_buf(),
        line: e.line(),
        msg: format!("not a run record: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rec(case: &str) -> SampleRecord {
        SampleRecord {
            suite: "s".into(),
            case_id: case.into(),
            repeat: 0,
            prompt_sha256: "00".into(),
            output: Some("出力\n\"quoted\"".into()),
            reasoning: None,
            prompt_tokens: Some(3),
            completion_tokens: Some(2),
            finish_reason: Some("stop".into()),
            timings: None,
            scores: BTreeMap::new(),
            error: None,
            ..Default::default()
        }
    }

    #[test]
    fn torn_and_damaged_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SAMPLES_FILE);
        assert!(read_samples(&p).unwrap().samples.is_empty());
        let mut w = SampleWriter::open(&p).unwrap();
        w.append(&rec("a")).unwrap();
        w.append(&rec("b")).unwrap();
        let full = std::fs::read(&p).unwrap();
        let r = read_samples(&p).unwrap();
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.valid_len, full.len() as u64);
        assert!(r.torn.is_none());

        // A kill mid-append: every prefix of the second line reads as one sample plus a torn line.
        let first_len = sample_line(&rec("a")).len();
        for cut in first_len + 1..full.len() {
            std::fs::write(&p, &full[..cut]).unwrap();
            let r = read_samples(&p).unwrap();
            assert_eq!(r.samples.len(), 1, "cut at {cut}");
            assert_eq!(r.valid_len, first_len as u64);
            assert_eq!(r.torn.as_ref().unwrap().0, 2);
        }
        truncate_to(&p, first_len as u64).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), full[..first_len]);

        // A complete but invalid last line is torn too; before the last, it is damage.
        let mut bad = full[..first_len].to_vec();
        bad.extend_from_slice(b"{\"suite\": 1}\n");
        std::fs::write(&p, &bad).unwrap();
        assert_eq!(read_samples(&p).unwrap().torn.unwrap().0, 2);
        bad.extend_from_slice(sample_line(&rec("c")).as_bytes());
        std::fs::write(&p, &bad).unwrap();
        let e = read_samples(&p).unwrap_err().to_string();
        assert!(e.contains("samples.jsonl:2:"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RUN_FILE);
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(RUN_FILE)]);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RUN_FILE);
        std::fs::write(&p, r#"{"schema_version": 99}"#).unwrap();
        let e = read_record(&p).unwrap_err().to_string();
        assert!(e.contains("schema_version") && e.contains("newer"), "{e}");
        std::fs::write(&p, "{").unwrap();
        assert!(read_record(&p)
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
    }
}
