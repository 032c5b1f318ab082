//! Reading a run directory: `run.json` (the [`RunRecord`]) and `samples.jsonl` (its
//! [`SampleRecord`]s), with the same rules as the runner's store: a missing `samples.jsonl` reads
//! as no samples; a torn last line (no newline, or not a sample record) is skipped with a note, as
//! a kill during an append leaves one; any other bad line is an error naming the file and line.

use std::path::{Path, PathBuf};

use hakaru_types::{RunRecord, SampleRecord, SCHEMA_VERSION};

use crate::ReportError;

/// The file that holds a run's summary and provenance.
pub const RUN_FILE: &str = "run.json";
/// The file that holds a run's samples, one JSON object per line.
pub const SAMPLES_FILE: &str = "samples.jsonl";

/// One run as a report sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    pub record: RunRecord,
    /// Every sample, in file order (all repeats).
    pub samples: Vec<SampleRecord>,
    /// What reading skipped or could not find (a torn last line, no `samples.jsonl`), shown with
    /// the run's warnings.
    pub notes: Vec<String>,
}

impl Run {
    /// A run from records already in memory (tests, or a caller that read them itself).
    pub fn new(dir: impl Into<PathBuf>, record: RunRecord, samples: Vec<SampleRecord>) -> Run {
        Run {
            dir: dir.into(),
            record,
            samples,
            notes: Vec::new(),
        }
    }
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> ReportError {
    ReportError::Io {
        path: path.to_path_buf(),
        msg: format!("{what}: {e}"),
    }
}

fn bad(path: &Path, line: Option<usize>, msg: impl Into<String>) -> ReportError {
    ReportError::File {
        path: path.to_path_buf(),
        line,
        msg: msg.into(),
    }
}

/// Load a run from its directory, or from its `run.json` (the samples are read beside it).
pub fn load(path: &Path) -> Result<Run, ReportError> {
    // A path that is a directory, or that does not exist and does not name a JSON file, is taken
    // for a run directory, so that a mistyped one is reported as `<dir>/run.json`.
    let as_dir = path.is_dir() || (!path.exists() && path.extension().is_none_or(|e| e != "json"));
    let (dir, run_json) = if as_dir {
        (path.to_path_buf(), path.join(RUN_FILE))
    } else {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        (dir, path.to_path_buf())
    };
    let record = read_record(&run_json)?;
    let samples_path = dir.join(SAMPLES_FILE);
    let (samples, mut notes) = read_samples(&samples_path)?;
    if !samples_path.exists() {
        notes.push(format!(
            "{}: not found; the report has no per-case outputs for this run",
            samples_path.display()
        ));
    }
    Ok(Run {
        dir,
        record,
        samples,
        notes,
    })
}

/// Read and check a `run.json`: JSON, a `schema_version` this crate reads, then the record.
pub fn read_record(path: &Path) -> Result<RunRecord, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        io_err(
            path,
            "cannot read (is this a run directory made by `hakaru run`?)",
            e,
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(path, Some(e.line()), format!("not JSON: {e}")))?;
    match v.get("schema_version").map(|x| x.as_u64()) {
        None => {
            return Err(bad(
                path,
                None,
                "not a hakaru run (schema_version missing)",
            ))
        }
        Some(None) => {
            return Err(bad(
                path,
                None,
                "not a hakaru run (schema_version is not a number)",
            ))
        }
        Some(Some(n)) if n > SCHEMA_VERSION as u64 => {
            return Err(bad(
                path,
                None,
                format!(
                    "schema_version {n} is newer than this hakaru reads ({SCHEMA_VERSION}); use a newer hakaru"
                ),
            ))
        }
        Some(Some(_)) => {}
    }
    serde_json::from_str(&text)
        .map_err(|e| bad(path, Some(e.line()), format!("not a run record: {e}")))
}

/// Read `samples.jsonl`: the samples and notes about what was skipped. A missing file is no
/// samples (the caller says so); a torn last line is skipped with a note; a bad line before the
/// last is an error naming its line ([`hakaru_types::jsonl::parse_sample_lines`]).
pub fn read_samples(path: &Path) -> Result<(Vec<SampleRecord>, Vec<String>), ReportError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(io_err(path, "cannot read", e)),
    };
    let read = hakaru_types::jsonl::parse_sample_lines(&bytes)
        .map_err(|b| bad(path, Some(b.line), b.msg))?;
    let notes = read
        .torn
        .map(|(line, why)| {
            format!(
                "{}:{line}: last line skipped ({why}; a write cut short)",
                path.display()
            )
        })
        .into_iter()
        .collect();
    Ok((read.samples, notes))
}
