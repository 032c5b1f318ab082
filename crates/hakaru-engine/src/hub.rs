//! Turning a [`ModelRef`] into files on disk, with their provenance (commit sha, sha256 of every
//! file). Resolution is separate from building a model: this module never parses weights.
//!
//! * Hub references go through hf-hub's cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
//!   `~/.cache/huggingface/hub`). Online, the repo info at the requested revision gives the commit
//!   sha and the file list; every file is then downloaded *at that commit*, so the set is one
//!   commit even if the branch moves meanwhile. Offline (`HF_HUB_OFFLINE=1` or
//!   [`ResolveOptions::offline`]) nothing touches the network: `refs/<revision>` and the snapshot
//!   directory are read directly.
//! * Local directories and GGUF files are listed and hashed in place.
//! * Synthetic references resolve to no files; the caller builds the model from a shape.
//!
//! The cache layout (hf-hub's and `huggingface_hub`'s):
//!
//! ```text
//! <cache>/models--<org>--<name>/
//!     blobs/<etag>                      content; etag = sha256 for LFS files, git sha1 otherwise
//!     refs/<revision>                   the commit sha the revision pointed at when last fetched
//!     snapshots/<commit>/<file>         relative symlink to ../../blobs/<etag>
//!     .no_exist/<commit>/<file>         empty marker: the hub said this file does not exist
//! ```
//!
//! Which files are picked (the same rule online, offline and for local directories):
//! `config.json` and `tokenizer.json` (required for safetensors models), whichever of
//! `generation_config.json`, `tokenizer_config.json`, `special_tokens_map.json`,
//! `chat_template.jinja` exist, and the weights: `model.safetensors`, or
//! `model.safetensors.index.json` plus every shard its `weight_map` names. For a GGUF reference,
//! the .gguf file plus whichever of the config/tokenizer files exist. Pickle weights (`*.bin`,
//! `*.pt`, `*.pth`, `*.ckpt`) are never fetched or loaded.
//!
//! With [`ResolveOptions::weights`] off (`hakaru template`: a chat template needs only the
//! tokenizer configuration), only the [`AUX_FILES`] that exist are picked, never weights, and
//! nothing is required: a repo with pickle weights only, or a cached snapshot holding only the
//! config files, resolves too. [`ResolvedModel::format`] then says what the weights *would* be,
//! from the reference and the listing alone: `gguf` for a GGUF reference or a local directory
//! holding one .gguf (an `org/name:FILE.gguf` file is checked against the hub's file list online,
//! not offline), `safetensors` when the listing has `model.safetensors` or
//! `model.safetensors.index.json`, and `none` otherwise (pickle-only repos, repos of several GGUF
//! files, snapshots pulled without weights).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model_ref::ModelRef;

/// Files picked up beside the weights when they exist.
pub const AUX_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
];
/// Files a safetensors model cannot run without.
pub const REQUIRED_SAFETENSORS_FILES: &[&str] = &["config.json", "tokenizer.json"];
pub const SAFETENSORS_SINGLE: &str = "model.safetensors";
pub const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
/// Extensions of pickle-based weight files, which hakaru refuses to load.
pub const PICKLE_EXTENSIONS: &[&str] = &[".bin", ".pt", ".pth", ".ckpt"];

const DEFAULT_REVISION: &str = "main";
const HASH_BUFFER: usize = 8 * 1024 * 1024;

/// Where a resolved model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// A safetensors model from the hub cache.
    Hub,
    /// A local directory (safetensors, or a single .gguf inside).
    Local,
    /// A GGUF file: from a hub repo (`repo` is set) or a local path (`repo` is None).
    Gguf,
    /// A random-weight model of a known shape; no files.
    Synthetic,
}

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    Safetensors,
    Gguf,
    /// Synthetic models have no weight files.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedFile {
    /// Path relative to the repo (or local directory) root, with `/` separators.
    pub name: String,
    /// Where the file is on disk (for hub files: the snapshot path, a symlink into `blobs/`).
    pub path: PathBuf,
    pub size: u64,
    /// Lower-case hex sha256 of the content.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedModel {
    /// The reference as written by [`ModelRef`]'s `Display`.
    pub reference: String,
    pub kind: ModelKind,
    pub format: WeightFormat,
    pub repo: Option<String>,
    /// The revision asked for (`main` when none was given); hub references only.
    pub requested_revision: Option<String>,
    /// The 40-hex commit the files come from; hub references only.
    pub commit_sha: Option<String>,
    /// The snapshot directory (hub) or the model directory (local, absolute).
    pub dir: Option<PathBuf>,
    /// Sorted by name.
    pub files: Vec<ResolvedFile>,
}

impl ResolvedModel {
    pub fn file(&self, name: &str) -> Option<&ResolvedFile> {
        self.files.iter().find(|f| f.name == name)
    }
    pub fn config_path(&self) -> Option<&Path> {
        self.file("config.json").map(|f| f.path.as_path())
    }
    pub fn tokenizer_path(&self) -> Option<&Path> {
        self.file("tokenizer.json").map(|f| f.path.as_path())
    }
    /// The .gguf weights, for GGUF models.
    pub fn gguf_path(&self) -> Option<&Path> {
        self.files
            .iter()
            .find(|f| is_gguf(&f.name))
            .map(|f| f.path.as_path())
    }
    /// Every safetensors weight file, in name order.
    pub fn safetensors_paths(&self) -> Vec<&Path> {
        self.files
            .iter()
            .filter(|f| f.name.ends_with(".safetensors"))
            .map(|f| f.path.as_path())
            .collect()
    }
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// What a progress callback is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Bytes coming from the hub.
    Download,
    /// Bytes being read to compute a sha256.
    Hash,
}

/// Progress of downloads and hashing, one file at a time. The engine never prints; the CLI
/// implements this with progress bars. Calls may come from a background thread and must not block.
pub trait DownloadProgress: Send + Sync {
    /// Work on `file` begins; `total_bytes` is 0 when unknown.
    fn start(&self, file: &str, phase: Phase, total_bytes: u64);
    /// `done` bytes of `file` are complete (a running total, not a delta).
    fn advance(&self, file: &str, done: u64);
    /// Work on `file` is over (also called after a failure, so bars can be cleared).
    fn finish(&self, file: &str);
}

#[derive(Clone)]
pub struct ResolveOptions {
    /// Never touch the network; use only the hub cache. Default: `HF_HUB_OFFLINE` is `1` or `true`.
    pub offline: bool,
    /// The hub cache. Default: hf-hub's resolution of `HF_HUB_CACHE`, `HF_HOME/hub`,
    /// `~/.cache/huggingface/hub`.
    pub cache_dir: Option<PathBuf>,
    /// Access token for private or gated repos. Default: `HF_TOKEN` or the stored token, via hf-hub.
    pub token: Option<String>,
    /// Hub endpoint. Default: `HF_ENDPOINT`, else `https://huggingface.co`.
    pub endpoint: Option<String>,
    pub progress: Option<Arc<dyn DownloadProgress>>,
    /// Hash every file, even hub LFS blobs whose name already is their sha256, and fail on a
    /// mismatch.
    pub verify: bool,
    /// Resolve (and download) the weights. When false, only the config and tokenizer files
    /// ([`AUX_FILES`]) that exist are picked, no weights are fetched and none are required (see
    /// the module documentation). Default: true.
    pub weights: bool,
}

impl std::fmt::Debug for ResolveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolveOptions")
            .field("offline", &self.offline)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("endpoint", &self.endpoint)
            .field("progress", &self.progress.is_some())
            .field("verify", &self.verify)
            .field("weights", &self.weights)
            .finish()
    }
}

impl ResolveOptions {
    /// Options from the environment: `HF_HUB_OFFLINE` (`1`, `true`, `yes`, `on`) turns offline
    /// mode on; the cache, token and endpoint are left to hf-hub's own environment handling
    /// (`HF_HUB_CACHE`, `HF_HOME`, `HF_TOKEN`, `HF_ENDPOINT`). No progress, no verification;
    /// weights are resolved.
    pub fn from_env() -> Self {
        ResolveOptions {
            offline: offline_from_env_value(std::env::var("HF_HUB_OFFLINE").ok().as_deref()),
            cache_dir: None,
            token: None,
            endpoint: None,
            progress: None,
            verify: false,
            weights: true,
        }
    }
}

impl Default for ResolveOptions {
    /// Same as [`ResolveOptions::from_env`].
    fn default() -> Self {
        ResolveOptions::from_env()
    }
}

/// `HF_HUB_OFFLINE` semantics, as in `huggingface_hub`: `1`, `true`, `yes`, `on` (any case).
pub fn offline_from_env_value(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

/// The hub cache directory these options use.
pub fn cache_dir(opts: &ResolveOptions) -> Result<PathBuf> {
    if let Some(d) = &opts.cache_dir {
        return Ok(d.clone());
    }
    let client = hf_hub::HFClientBuilder::new()
        .build()
        .map_err(|e| Error::Hub(format!("cannot set up the hub client: {e}")))?;
    Ok(client.cache_dir().to_path_buf())
}

/// `models--org--name`, the repo's folder in the hub cache.
pub fn repo_folder_name(repo: &str) -> String {
    std::iter::once("models")
        .chain(repo.split('/'))
        .collect::<Vec<_>>()
        .join("--")
}

pub fn is_commit_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_gguf(name: &str) -> bool {
    name.len() > 5 && name[name.len() - 5..].eq_ignore_ascii_case(".gguf")
}

fn is_pickle(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    PICKLE_EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

/// Resolve a reference to files on disk, downloading hub files unless offline.
pub fn resolve(r: &ModelRef, opts: &ResolveOptions) -> Result<ResolvedModel> {
    match r {
        ModelRef::Synthetic(_) => Ok(ResolvedModel {
            reference: r.to_string(),
            kind: ModelKind::Synthetic,
            format: WeightFormat::None,
            repo: None,
            requested_revision: None,
            commit_sha: None,
            dir: None,
            files: vec![],
        }),
        ModelRef::LocalDir(dir) => resolve_local_dir(r, dir, opts),
        ModelRef::GgufFile(path) => resolve_local_gguf(r, path, opts),
        ModelRef::Hub { repo, revision } | ModelRef::HubGguf { repo, revision, .. } => {
            let gguf = match r {
                ModelRef::HubGguf { file, .. } => Some(file.as_str()),
                _ => None,
            };
            let revision = revision.as_deref().unwrap_or(DEFAULT_REVISION);
            if opts.offline {
                resolve_cached(r, repo, revision, gguf, opts)
            } else {
                resolve_online(r, repo, revision, gguf, opts)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Choosing the file set

/// What a directory listing (hub file list, snapshot or local directory) resolves to.
#[derive(Debug, PartialEq)]
struct Selection {
    format: WeightFormat,
    files: Vec<String>,
}

/// The error for a .gguf file that `available` lacks, listing the .gguf files it has.
fn missing_gguf(available: &BTreeSet<String>, g: &str, place: &str, remedy: &str) -> Error {
    let ggufs: Vec<&str> = available
        .iter()
        .filter(|f| is_gguf(f))
        .map(String::as_str)
        .collect();
    let there = if ggufs.is_empty() {
        "there are no .gguf files there".to_string()
    } else {
        format!(".gguf files there: {}", ggufs.join(", "))
    };
    Error::Hub(format!("{place}: `{g}` is missing; {there}{remedy}"))
}

/// Without weights: the [`AUX_FILES`] in `available`, and the format the weights would have
/// (see the module documentation). Never fails.
fn select_aux_only(available: &BTreeSet<String>, gguf: Option<&str>) -> Selection {
    let format = if gguf.is_some() {
        WeightFormat::Gguf
    } else if available.contains(SAFETENSORS_SINGLE) || available.contains(SAFETENSORS_INDEX) {
        WeightFormat::Safetensors
    } else {
        WeightFormat::None
    };
    let files = AUX_FILES
        .iter()
        .filter(|f| available.contains(**f))
        .map(|f| f.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Selection { format, files }
}

/// Pick the files to use from `available` (repo-relative names). `read_index` returns the text
/// of `model.safetensors.index.json` when the weights are sharded. `place` names the listing in
/// errors (a repo at a commit, a cache folder, a directory); `remedy` is appended to errors about
/// missing files.
fn select_files(
    available: &BTreeSet<String>,
    gguf: Option<&str>,
    place: &str,
    remedy: &str,
    read_index: &mut dyn FnMut() -> Result<String>,
) -> Result<Selection> {
    let aux = |files: &mut Vec<String>| {
        for f in AUX_FILES {
            if available.contains(*f) {
                files.push(f.to_string());
            }
        }
    };
    if let Some(g) = gguf {
        if !available.contains(g) {
            return Err(missing_gguf(available, g, place, remedy));
        }
        let mut files = vec![g.to_string()];
        aux(&mut files);
        files.sort();
        return Ok(Selection {
            format: WeightFormat::Gguf,
            files,
        });
    }

    let mut files = Vec::new();
    if available.contains(SAFETENSORS_SINGLE) {
        files.push(SAFETENSORS_SINGLE.to_string());
    } else if available.contains(SAFETENSORS_INDEX) {
        let text = read_index()?;
        let shards = index_shards(&text)
            .map_err(|m| Error::Hub(format!("{place}: {SAFETENSORS_INDEX}: {m}")))?;
        let missing: Vec<&str> = shards
            .iter()
            .filter(|s| !available.contains(*s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::Hub(format!(
                "{place}: {SAFETENSORS_INDEX} names shards that are missing: {}{remedy}",
                missing.join(", ")
            )));
        }
        files.push(SAFETENSORS_INDEX.to_string());
        files.extend(shards);
    } else {
        let pickles: Vec<&str> = available
            .iter()
            .filter(|f| is_pickle(f))
            .map(String::as_str)
            .collect();
        let ggufs: Vec<&str> = available
            .iter()
            .filter(|f| is_gguf(f))
            .map(String::as_str)
            .collect();
        if !pickles.is_empty() {
            return Err(Error::Hub(format!(
                "{place} has only pickle weights ({}); hakaru loads only safetensors and GGUF, because loading a \
                 pickle file can run arbitrary code. Use a revision that has model.safetensors (the hub often has a \
                 conversion pull request: try `@refs/pr/<N>`), or a GGUF repo of the same model",
                pickles.join(", ")
            )));
        }
        if !ggufs.is_empty() {
            return Err(Error::Hub(format!(
                "{place} holds GGUF files, not safetensors; pick one with `org/name:FILE.gguf` (or a file path): {}",
                ggufs.join(", ")
            )));
        }
        let listed: Vec<&str> = available.iter().map(String::as_str).collect();
        return Err(Error::Hub(format!(
            "{place} has no weights: neither {SAFETENSORS_SINGLE} nor {SAFETENSORS_INDEX} is there (files: {}){remedy}",
            if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
        )));
    }
    let missing: Vec<&str> = REQUIRED_SAFETENSORS_FILES
        .iter()
        .copied()
        .filter(|f| !available.contains(*f))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Hub(format!(
            "{place}: {} missing; a safetensors model needs it{remedy}",
            missing.join(" and ")
        )));
    }
    aux(&mut files);
    files.sort();
    files.dedup();
    Ok(Selection {
        format: WeightFormat::Safetensors,
        files,
    })
}

/// The distinct shard files named by a safetensors index, sorted.
fn index_shards(text: &str) -> std::result::Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "line {}, column {}: not valid JSON: {e}",
            e.line(),
            e.column()
        )
    })?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or("field `weight_map` is missing or not an object")?;
    let mut shards = BTreeSet::new();
    for (tensor, file) in map {
        let f = file
            .as_str()
            .ok_or_else(|| format!("field `weight_map.{tensor}`: expected a file name"))?;
        if f.starts_with('/')
            || f.split('/').any(|p| p == ".." || p.is_empty())
            || !f.ends_with(".safetensors")
        {
            return Err(format!(
                "field `weight_map.{tensor}`: `{f}` is not a .safetensors file inside the repo"
            ));
        }
        shards.insert(f.to_string());
    }
    if shards.is_empty() {
        return Err("field `weight_map` is empty".into());
    }
    Ok(shards.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Hashing

/// Stream-hash a file with sha256 (8 MiB reads), reporting progress as `name`.
pub fn sha256_file(
    path: &Path,
    name: &str,
    progress: Option<&dyn DownloadProgress>,
) -> Result<String> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::file(path, format!("cannot open to hash it: {e}")))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(p) = progress {
        p.start(name, Phase::Hash, total);
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut done = 0u64;
    let result = loop {
        match f.read(&mut buf) {
            Ok(0) => break Ok(hex::encode(hasher.finalize())),
            Ok(n) => {
                hasher.update(&buf[..n]);
                done += n as u64;
                if let Some(p) = progress {
                    p.advance(name, done);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(Error::file(path, format!("read failed while hashing: {e}"))),
        }
    };
    if let Some(p) = progress {
        p.finish(name);
    }
    result
}

/// Describe a file in a hub snapshot: size and sha256 (from the blob name for LFS files unless
/// verifying, else by hashing).
fn hub_file(snapshot: &Path, name: &str, opts: &ResolveOptions) -> Result<ResolvedFile> {
    let path = snapshot.join(name);
    let meta = std::fs::metadata(&path).map_err(|e| {
        Error::file(&path, format!("cannot read the cached file (a dangling link into blobs/?): {e}; run `hakaru pull` again to repair the cache"))
    })?;
    let blob_name = std::fs::read_link(&path)
        .ok()
        .and_then(|t| t.file_name().and_then(|n| n.to_str()).map(str::to_string));
    let progress = opts.progress.as_deref();
    let sha256 = match blob_name {
        Some(b) if is_sha256_hex(&b) => {
            let recorded = b.to_ascii_lowercase();
            if opts.verify {
                let actual = sha256_file(&path, name, progress)?;
                if actual != recorded {
                    let blob = std::fs::canonicalize(&path).unwrap_or(path.clone());
                    return Err(Error::file(
                        &blob,
                        format!(
                            "`{name}` is corrupt: its sha256 is {actual} but the hub recorded {recorded}; delete this blob \
                             and run `hakaru pull` again"
                        ),
                    ));
                }
                actual
            } else {
                recorded
            }
        }
        _ => sha256_file(&path, name, progress)?,
    };
    Ok(ResolvedFile {
        name: name.to_string(),
        path,
        size: meta.len(),
        sha256,
    })
}

fn local_file(dir: &Path, name: &str, opts: &ResolveOptions) -> Result<ResolvedFile> {
    let path = dir.join(name);
    let meta =
        std::fs::metadata(&path).map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    let sha256 = sha256_file(&path, name, opts.progress.as_deref())?;
    Ok(ResolvedFile {
        name: name.to_string(),
        path,
        size: meta.len(),
        sha256,
    })
}

/// Every regular file under `root` (following symlinks), as `/`-separated relative names. Hidden
/// directories (`.git`, `.cache`, …) are skipped.
fn list_tree(root: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::file(&dir, format!("cannot list the directory: {e}")))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::file(&dir, format!("cannot list the directory: {e}")))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            // `metadata` follows symlinks, so snapshot links count as files (and dangling ones
            // are reported when used, not silently skipped here: they are listed by name).
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {
                    if !name.starts_with('.') {
                        stack.push((path, rel));
                    }
                }
                Ok(_) => {
                    out.insert(rel);
                }
                Err(_) if std::fs::symlink_metadata(&path).is_ok() => {
                    out.insert(rel);
                }
                Err(_) => {}
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Local files

fn resolve_local_dir(r: &ModelRef, dir: &Path, opts: &ResolveOptions) -> Result<ResolvedModel> {
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| Error::file(dir, format!("cannot open the model directory: {e}")))?;
    let available = list_tree(&dir)?;
    let place = format!("model directory {}", dir.display());
    let has_safetensors =
        available.contains(SAFETENSORS_SINGLE) || available.contains(SAFETENSORS_INDEX);
    let ggufs: Vec<&String> = available.iter().filter(|f| is_gguf(f)).collect();
    let gguf = if !has_safetensors && !ggufs.is_empty() {
        if ggufs.len() > 1 && !opts.weights {
            // Without weights the choice does not matter: the format is just unknown.
            None
        } else if ggufs.len() > 1 {
            let names: Vec<&str> = ggufs.iter().map(|s| s.as_str()).collect();
            return Err(Error::reference(
                r.to_string(),
                format!(
                    "{place} holds several .gguf files ({}); give the path of the one to use",
                    names.join(", ")
                ),
            ));
        } else {
            Some(ggufs[0].clone())
        }
    } else {
        None
    };
    let index_path = dir.join(SAFETENSORS_INDEX);
    let sel = if opts.weights {
        select_files(&available, gguf.as_deref(), &place, "", &mut || {
            std::fs::read_to_string(&index_path)
                .map_err(|e| Error::file(&index_path, format!("cannot read: {e}")))
        })?
    } else {
        select_aux_only(&available, gguf.as_deref())
    };
    let files = sel
        .files
        .iter()
        .map(|n| local_file(&dir, n, opts))
        .collect::<Result<Vec<_>>>()?;
    Ok(ResolvedModel {
        reference: r.to_string(),
        kind: ModelKind::Local,
        format: sel.format,
        repo: None,
        requested_revision: None,
        commit_sha: None,
        dir: Some(dir),
        files,
    })
}

fn resolve_local_gguf(r: &ModelRef, path: &Path, opts: &ResolveOptions) -> Result<ResolvedModel> {
    let path = std::fs::canonicalize(path)
        .map_err(|e| Error::file(path, format!("cannot open the GGUF file: {e}")))?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::file(&path, "the file name is not valid UTF-8"))?;
    // Without weights the .gguf itself is left out (and not hashed), as for every other kind.
    let mut files = if opts.weights {
        vec![local_file(&dir, name, opts)?]
    } else {
        vec![]
    };
    for aux in AUX_FILES {
        if dir.join(aux).is_file() {
            files.push(local_file(&dir, aux, opts)?);
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ResolvedModel {
        reference: r.to_string(),
        kind: ModelKind::Gguf,
        format: WeightFormat::Gguf,
        repo: None,
        requested_revision: None,
        commit_sha: None,
        dir: Some(dir),
        files,
    })
}

// ---------------------------------------------------------------------------------------------
// The hub cache, offline

fn resolve_cached(
    r: &ModelRef,
    repo: &str,
    revision: &str,
    gguf: Option<&str>,
    opts: &ResolveOptions,
) -> Result<ResolvedModel> {
    let cache = cache_dir(opts)?;
    let folder = cache.join(repo_folder_name(repo));
    let pull = format!("run `hakaru pull {r}` with network access first (offline mode is on: HF_HUB_OFFLINE or --offline)");
    if !folder.is_dir() {
        return Err(Error::Hub(format!(
            "{repo} is not in the hub cache: {} does not exist; {pull}",
            folder.display()
        )));
    }
    let commit = if is_commit_sha(revision) {
        revision.to_ascii_lowercase()
    } else {
        let ref_path = folder.join("refs").join(revision);
        match std::fs::read_to_string(&ref_path) {
            Ok(s) if is_commit_sha(s.trim()) => s.trim().to_ascii_lowercase(),
            Ok(s) => {
                return Err(Error::file(
                    &ref_path,
                    format!(
                        "expected a 40-hex commit sha, found `{}`; delete the file and {pull}",
                        s.trim()
                    ),
                ))
            }
            Err(_) => {
                let refs = list_tree(&folder.join("refs")).unwrap_or_default();
                let known = if refs.is_empty() {
                    "none".to_string()
                } else {
                    refs.into_iter().collect::<Vec<_>>().join(", ")
                };
                return Err(Error::Hub(format!(
                    "revision `{revision}` of {repo} is not in the hub cache: {} does not exist (cached refs: {known}); {pull}",
                    ref_path.display()
                )));
            }
        }
    };
    let snapshot = folder.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return Err(Error::Hub(format!(
            "commit {commit} of {repo} is not in the hub cache: {} does not exist; {pull}",
            snapshot.display()
        )));
    }
    let available = list_tree(&snapshot)?;
    // A required file the hub said does not exist (hf-hub leaves a `.no_exist` marker): pulling
    // again will not help, so say that rather than "run hakaru pull".
    let has_safetensors =
        available.contains(SAFETENSORS_SINGLE) || available.contains(SAFETENSORS_INDEX);
    if opts.weights && gguf.is_none() && has_safetensors {
        for f in REQUIRED_SAFETENSORS_FILES {
            let marker = folder.join(".no_exist").join(&commit).join(f);
            if !available.contains(*f) && marker.exists() {
                return Err(Error::Hub(format!(
                    "{repo} has no {f} at commit {commit} (the hub said so when it was pulled; marker: {}); a \
                     safetensors model needs config.json and tokenizer.json: use a repo or revision that has them",
                    marker.display()
                )));
            }
        }
    }
    let place = format!("{repo} at commit {commit} (cached in {})", folder.display());
    let remedy = format!("; {pull}");
    let index_path = snapshot.join(SAFETENSORS_INDEX);
    let sel = if opts.weights {
        select_files(&available, gguf, &place, &remedy, &mut || {
            std::fs::read_to_string(&index_path)
                .map_err(|e| Error::file(&index_path, format!("cannot read: {e}; {pull}")))
        })?
    } else {
        // The snapshot may hold only the config files (pulled without weights), so the .gguf
        // of a GGUF reference is not looked for.
        select_aux_only(&available, gguf)
    };
    hub_resolved(
        r,
        repo,
        revision,
        commit,
        snapshot,
        sel,
        gguf.is_some(),
        opts,
    )
}

/// The resolved model of a hub snapshot: every selected file with its size and sha256.
#[allow(clippy::too_many_arguments)]
fn hub_resolved(
    r: &ModelRef,
    repo: &str,
    revision: &str,
    commit: String,
    snapshot: PathBuf,
    sel: Selection,
    gguf: bool,
    opts: &ResolveOptions,
) -> Result<ResolvedModel> {
    let files = sel
        .files
        .iter()
        .map(|n| hub_file(&snapshot, n, opts))
        .collect::<Result<Vec<_>>>()?;
    Ok(ResolvedModel {
        reference: r.to_string(),
        kind: if gguf {
            ModelKind::Gguf
        } else {
            ModelKind::Hub
        },
        format: sel.format,
        repo: Some(repo.to_string()),
        requested_revision: Some(revision.to_string()),
        commit_sha: Some(commit),
        dir: Some(snapshot),
        files,
    })
}

// ---------------------------------------------------------------------------------------------
// The hub, online

/// Turn an hf-hub error into one that says what to do.
fn hub_error(e: hf_hub::HFError, repo: &str, what: &str) -> Error {
    use hf_hub::HFError as E;
    let token_hint = "if the repo is private or gated, accept its terms on https://huggingface.co/{repo} and set HF_TOKEN to a token with read access";
    let token_hint = token_hint.replace("{repo}", repo);
    match e {
        E::AuthRequired { .. } | E::Forbidden { .. } => {
            Error::Hub(format!("{what}: access to {repo} was refused ({e}); {token_hint}"))
        }
        E::RepoNotFound { .. } => Error::Hub(format!("{what}: repo {repo} was not found on the hub; check the name, and {token_hint}")),
        E::RevisionNotFound { revision, .. } => Error::Hub(format!(
            "{what}: revision `{revision}` does not exist in {repo}; use a branch, tag or commit sha that exists"
        )),
        E::EntryNotFound { path, .. } => Error::Hub(format!("{what}: {repo} has no file `{path}`")),
        E::RateLimited { .. } => Error::Hub(format!("{what}: the hub is rate-limiting requests ({e}); wait and retry, or set HF_TOKEN")),
        E::LocalEntryNotFound { path } => Error::Hub(format!(
            "{what}: `{path}` of {repo} is not in the hub cache; run `hakaru pull` with network access first"
        )),
        E::Request { .. } => Error::Hub(format!(
            "{what}: cannot reach the hub ({e}); check the network, or set HF_HUB_OFFLINE=1 to use only files pulled before"
        )),
        other => Error::Hub(format!("{what}: {other}")),
    }
}

/// Adapts hf-hub's progress events for one file to [`DownloadProgress`].
struct ProgressAdapter {
    inner: Arc<dyn DownloadProgress>,
    file: String,
    started: AtomicBool,
}

impl ProgressAdapter {
    fn ensure_started(&self, total: u64) {
        if !self.started.swap(true, Ordering::SeqCst) {
            self.inner.start(&self.file, Phase::Download, total);
        }
    }
    fn done(&self) {
        if self.started.swap(false, Ordering::SeqCst) {
            self.inner.finish(&self.file);
        }
    }
}

impl hf_hub::progress::ProgressHandler for ProgressAdapter {
    fn on_progress(&self, event: &hf_hub::progress::ProgressEvent) {
        use hf_hub::progress::{DownloadEvent, ProgressEvent};
        let ProgressEvent::Download(ev) = event else {
            return;
        };
        match ev {
            DownloadEvent::Start { total_bytes, .. } => self.ensure_started(*total_bytes),
            DownloadEvent::Progress { files } => {
                for f in files.iter().filter(|f| f.filename == self.file) {
                    self.ensure_started(f.total_bytes);
                    self.inner.advance(&self.file, f.bytes_completed);
                }
            }
            DownloadEvent::AggregateProgress {
                bytes_completed,
                total_bytes,
                ..
            } => {
                self.ensure_started(*total_bytes);
                self.inner.advance(&self.file, *bytes_completed);
            }
            DownloadEvent::Complete => self.done(),
        }
    }
}

fn resolve_online(
    r: &ModelRef,
    repo: &str,
    revision: &str,
    gguf: Option<&str>,
    opts: &ResolveOptions,
) -> Result<ResolvedModel> {
    let mut builder = hf_hub::HFClientBuilder::new();
    if let Some(d) = &opts.cache_dir {
        builder = builder.cache_dir(d);
    }
    if let Some(t) = &opts.token {
        builder = builder.token(t);
    }
    if let Some(e) = &opts.endpoint {
        builder = builder.endpoint(e);
    }
    let client = builder
        .build()
        .map_err(|e| Error::Hub(format!("cannot set up the hub client: {e}")))?;
    let cache = client.cache_dir().to_path_buf();
    let client = hf_hub::HFClientSync::from_inner(client)
        .map_err(|e| Error::Hub(format!("cannot set up the hub client: {e}")))?;
    let (owner, name) = hf_hub::split_id(repo);
    let info = match client
        .model(owner, name)
        .info()
        .revision(revision.to_string())
        .send()
    {
        Ok(info) => info,
        // The hub cannot be reached: like huggingface_hub, fall back to what the cache holds for
        // this revision (the provenance still names a real commit), and say so.
        Err(e @ hf_hub::HFError::Request { .. }) => {
            let err = hub_error(
                e,
                repo,
                &format!("fetching the file list of {repo}@{revision}"),
            );
            return match resolve_cached(r, repo, revision, gguf, opts) {
                Ok(m) => {
                    tracing::warn!(
                        "{err}; using the cached commit {} instead",
                        m.commit_sha.as_deref().unwrap_or("?")
                    );
                    Ok(m)
                }
                Err(_) => Err(err),
            };
        }
        Err(e) => {
            return Err(hub_error(
                e,
                repo,
                &format!("fetching the file list of {repo}@{revision}"),
            ))
        }
    };
    let commit = info
        .sha
        .filter(|s| is_commit_sha(s))
        .map(|s| s.to_ascii_lowercase())
        .ok_or_else(|| {
            Error::Hub(format!(
                "the hub returned no commit sha for {repo}@{revision}; retry later"
            ))
        })?;
    // The hub matches repo ids case-insensitively; use its spelling so that the cache folder is
    // the one later (offline) lookups with the canonical id find.
    let repo = if info.id.eq_ignore_ascii_case(repo) && info.id.contains('/') {
        info.id.as_str()
    } else {
        repo
    };
    let (owner, name) = hf_hub::split_id(repo);
    let handle = client.model(owner, name);
    let available: BTreeSet<String> = info
        .siblings
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.rfilename)
        .collect();

    let download = |file: &str| -> Result<PathBuf> {
        let req = handle
            .download_file()
            .filename(file.to_string())
            .revision(commit.clone());
        let adapter = opts.progress.as_ref().map(|p| {
            Arc::new(ProgressAdapter {
                inner: p.clone(),
                file: file.to_string(),
                started: AtomicBool::new(false),
            })
        });
        let result = match &adapter {
            Some(a) => req.progress(a.clone()).send(),
            None => req.send(),
        };
        if let Some(a) = &adapter {
            a.done();
        }
        result.map_err(|e| {
            hub_error(
                e,
                repo,
                &format!("downloading `{file}` from {repo} at {commit}"),
            )
        })
    };

    let place = format!("{repo} at commit {commit}");
    let sel = if opts.weights {
        select_files(&available, gguf, &place, "", &mut || {
            let p = download(SAFETENSORS_INDEX)?;
            std::fs::read_to_string(&p).map_err(|e| Error::file(&p, format!("cannot read: {e}")))
        })?
    } else {
        // The hub's list is complete, so a misspelt .gguf name is still caught.
        if let Some(g) = gguf.filter(|g| !available.contains(*g)) {
            return Err(missing_gguf(&available, g, &place, ""));
        }
        select_aux_only(&available, gguf)
    };
    for f in &sel.files {
        download(f)?;
    }
    // Downloads at a commit sha do not move `refs/<revision>`; record it so that offline runs
    // find the same commit.
    let folder = cache.join(repo_folder_name(repo));
    if !is_commit_sha(revision) {
        let ref_path = folder.join("refs").join(revision);
        if let Some(parent) = ref_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::file(parent, format!("cannot create: {e}")))?;
        }
        std::fs::write(&ref_path, &commit)
            .map_err(|e| Error::file(&ref_path, format!("cannot write: {e}")))?;
    }
    let snapshot = folder.join("snapshots").join(&commit);
    hub_resolved(
        r,
        repo,
        revision,
        commit,
        snapshot,
        sel,
        gguf.is_some(),
        opts,
    )
}

// ---------------------------------------------------------------------------------------------
// Test support

/// Helpers that lay out a hub cache exactly as hf-hub writes it, for tests here and in the CLI.
pub mod testing {
    use super::*;

    /// Write `files` of `repo` at `commit` into the hub cache `cache`, and point `refs/main` at
    /// `commit`. Files named in `lfs` get a blob named by the sha256 of their content (as the hub
    /// does for LFS files); the others get a 40-hex blob name (standing in for the git blob sha1,
    /// which is what the hub uses for small files). Snapshot entries are relative symlinks
    /// `../../blobs/<etag>` (with one more `../` per sub-directory level).
    pub fn write_fake_hub_repo(
        cache: &Path,
        repo: &str,
        commit: &str,
        files: &[(&str, &[u8])],
        lfs: &[&str],
    ) {
        let folder = cache.join(repo_folder_name(repo));
        let blobs = folder.join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        for (name, content) in files {
            let digest = hex::encode(Sha256::digest(content));
            let etag = if lfs.contains(name) {
                digest
            } else {
                let mut h = Sha256::new();
                h.update(format!("blob {}\0", content.len()));
                h.update(content);
                hex::encode(h.finalize())[..40].to_string()
            };
            std::fs::write(blobs.join(&etag), content).unwrap();
            let pointer = folder.join("snapshots").join(commit).join(name);
            std::fs::create_dir_all(pointer.parent().unwrap()).unwrap();
            let depth = name.matches('/').count();
            let target = format!("{}../../blobs/{etag}", "../".repeat(depth));
            let _ = std::fs::remove_file(&pointer);
            #[cfg(unix)]
            std::os::unix::fs::symlink(&target, &pointer).unwrap();
            #[cfg(not(unix))]
            {
                let _ = target;
                std::fs::copy(blobs.join(&etag), &pointer).unwrap();
            }
        }
        write_ref(cache, repo, "main", commit);
    }

    /// Point `refs/<name>` of `repo` at `commit`.
    pub fn write_ref(cache: &Path, repo: &str, name: &str, commit: &str) {
        let path = cache.join(repo_folder_name(repo)).join("refs").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, commit).unwrap();
    }

    /// Write the `.no_exist/<commit>/<file>` marker hf-hub leaves when the hub says a file is absent.
    pub fn write_no_exist(cache: &Path, repo: &str, commit: &str, file: &str) {
        let path = cache
            .join(repo_folder_name(repo))
            .join(".no_exist")
            .join(commit)
            .join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    /// The blob path a snapshot file points at.
    pub fn blob_of(cache: &Path, repo: &str, commit: &str, file: &str) -> PathBuf {
        let pointer = cache
            .join(repo_folder_name(repo))
            .join("snapshots")
            .join(commit)
            .join(file);
        std::fs::canonicalize(pointer).unwrap()
    }

    /// A tiny but well-formed file set for a safetensors repo: config.json, tokenizer.json,
    /// tokenizer_config.json and model.safetensors (LFS).
    pub fn small_model_files() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (
                "config.json",
                br#"{"architectures":["Qwen2ForCausalLM"]}"#.to_vec(),
            ),
            ("tokenizer.json", br#"{"version":"1.0"}"#.to_vec()),
            ("tokenizer_config.json", br#"{}"#.to_vec()),
            ("model.safetensors", vec![7u8; 4096]),
        ]
    }

    /// Sha256 of bytes, lower-case hex.
    pub fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use std::sync::Mutex;

    const REPO: &str = "org/tiny";
    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";

    fn offline(cache: &Path) -> ResolveOptions {
        ResolveOptions {
            offline: true,
            cache_dir: Some(cache.to_path_buf()),
            ..ResolveOptions::default()
        }
    }

    fn as_refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
        files.iter().map(|(n, c)| (*n, c.as_slice())).collect()
    }

    fn hub(repo: &str, rev: Option<&str>) -> ModelRef {
        ModelRef::Hub {
            repo: repo.into(),
            revision: rev.map(Into::into),
        }
    }

    fn names(m: &ResolvedModel) -> Vec<&str> {
        m.files.iter().map(|f| f.name.as_str()).collect()
    }

    /// A cache with two commits of REPO: C1 (older, pinned by sha) and C2 (main), and a
    /// `.no_exist` marker for chat_template.jinja at C2.
    type Files = Vec<(&'static str, Vec<u8>)>;

    fn two_commit_cache() -> (tempfile::TempDir, Files, Files) {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = small_model_files();
        let mut v2 = small_model_files();
        v2[3].1 = vec![9u8; 8192];
        v2.push((
            "generation_config.json",
            br#"{"eos_token_id":[1,2]}"#.to_vec(),
        ));
        v2.push(("README.md", b"# not picked".to_vec()));
        write_fake_hub_repo(tmp.path(), REPO, C1, &as_refs(&v1), &["model.safetensors"]);
        write_fake_hub_repo(tmp.path(), REPO, C2, &as_refs(&v2), &["model.safetensors"]);
        write_no_exist(tmp.path(), REPO, C2, "chat_template.jinja");
        (tmp, v1, v2)
    }

    #[test]
    fn offline_resolves_main_with_commit_and_sha256s() {
        let (tmp, _, v2) = two_commit_cache();
        let m = resolve(&hub(REPO, None), &offline(tmp.path())).unwrap();
        assert_eq!(m.kind, ModelKind::Hub);
        assert_eq!(m.format, WeightFormat::Safetensors);
        assert_eq!(m.repo.as_deref(), Some(REPO));
        assert_eq!(m.requested_revision.as_deref(), Some("main"));
        assert_eq!(m.commit_sha.as_deref(), Some(C2));
        assert_eq!(
            m.dir.as_deref(),
            Some(
                tmp.path()
                    .join("models--org--tiny/snapshots")
                    .join(C2)
                    .as_path()
            )
        );
        assert_eq!(
            names(&m),
            [
                "config.json",
                "generation_config.json",
                "model.safetensors",
                "tokenizer.json",
                "tokenizer_config.json"
            ]
        );
        for f in &m.files {
            let content = &v2.iter().find(|(n, _)| *n == f.name).unwrap().1;
            assert_eq!(f.sha256, sha256_hex(content), "{}", f.name);
            assert_eq!(f.size, content.len() as u64, "{}", f.name);
            assert_eq!(std::fs::read(&f.path).unwrap(), *content, "{}", f.name);
        }
        assert_eq!(
            m.config_path(),
            Some(m.dir.as_ref().unwrap().join("config.json").as_path())
        );
        assert_eq!(m.safetensors_paths().len(), 1);
        assert_eq!(
            m.total_size(),
            v2.iter()
                .filter(|(n, _)| *n != "README.md")
                .map(|(_, c)| c.len() as u64)
                .sum::<u64>()
        );
    }

    #[test]
    fn offline_resolves_a_pinned_sha_and_a_named_ref() {
        let (tmp, v1, _) = two_commit_cache();
        let m = resolve(&hub(REPO, Some(C1)), &offline(tmp.path())).unwrap();
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
        assert_eq!(m.requested_revision.as_deref(), Some(C1));
        assert_eq!(
            names(&m),
            [
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "tokenizer_config.json"
            ]
        );
        let weights = m.file("model.safetensors").unwrap();
        assert_eq!(weights.sha256, sha256_hex(&v1[3].1));
        // Upper-case sha is accepted and normalised.
        let m = resolve(&hub(REPO, Some(&C1.to_uppercase())), &offline(tmp.path())).unwrap();
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
        // A tag in refs/.
        write_ref(tmp.path(), REPO, "v1.0", C1);
        let m = resolve(&hub(REPO, Some("v1.0")), &offline(tmp.path())).unwrap();
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
        // refs/pr/N lives in refs/refs/pr/N, as hf-hub writes it.
        write_ref(tmp.path(), REPO, "refs/pr/3", C1);
        let m = resolve(&hub(REPO, Some("refs/pr/3")), &offline(tmp.path())).unwrap();
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
    }

    #[test]
    fn offline_sharded_weights_include_every_shard_once() {
        let tmp = tempfile::tempdir().unwrap();
        let index = br#"{"metadata":{"total_size":8},"weight_map":{
            "a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors",
            "c":"model-00001-of-00002.safetensors"}}"#;
        let files: Vec<(&str, &[u8])> = vec![
            ("config.json", b"{}"),
            ("tokenizer.json", b"{}"),
            ("model.safetensors.index.json", index),
            ("model-00001-of-00002.safetensors", b"1111"),
            ("model-00002-of-00002.safetensors", b"2222"),
        ];
        write_fake_hub_repo(
            tmp.path(),
            REPO,
            C1,
            &files,
            &[
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
            ],
        );
        let m = resolve(&hub(REPO, None), &offline(tmp.path())).unwrap();
        assert_eq!(
            names(&m),
            [
                "config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                "tokenizer.json"
            ]
        );
        assert_eq!(m.safetensors_paths().len(), 2);

        // A shard missing from the snapshot is named.
        std::fs::remove_file(
            tmp.path()
                .join("models--org--tiny/snapshots")
                .join(C1)
                .join("model-00002-of-00002.safetensors"),
        )
        .unwrap();
        let e = resolve(&hub(REPO, None), &offline(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model-00002-of-00002.safetensors") && e.contains("hakaru pull org/tiny"),
            "{e}"
        );
        assert!(!e.contains("model-00001-of-00002.safetensors"), "{e}");
    }

    #[test]
    fn offline_refuses_pickle_only_repo() {
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<(&str, &[u8])> = vec![
            ("config.json", b"{}"),
            ("tokenizer.json", b"{}"),
            ("pytorch_model.bin", b"PK\x03\x04"),
        ];
        write_fake_hub_repo(
            tmp.path(),
            "old/pickled",
            C1,
            &files,
            &["pytorch_model.bin"],
        );
        let e = resolve(&hub("old/pickled", None), &offline(tmp.path())).unwrap_err();
        assert!(matches!(e, Error::Hub(_)), "{e:?}");
        let e = e.to_string();
        for needle in [
            "only pickle weights",
            "pytorch_model.bin",
            "safetensors and GGUF",
            "GGUF repo",
            "refs/pr",
        ] {
            assert!(e.contains(needle), "`{e}` lacks `{needle}`");
        }
    }

    #[test]
    fn offline_errors_name_the_cache_and_what_is_missing() {
        let (tmp, _, _) = two_commit_cache();
        let o = offline(tmp.path());
        // Repo not cached at all.
        let e = resolve(&hub("org/absent", None), &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("models--org--absent")
                && e.contains("hakaru pull org/absent")
                && e.contains("network"),
            "{e}"
        );
        // Unknown branch: names the ref file and lists cached refs.
        let e = resolve(&hub(REPO, Some("dev")), &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refs/dev")
                && e.contains("cached refs: main")
                && e.contains("hakaru pull org/tiny@dev"),
            "{e}"
        );
        // A sha that was never fetched.
        let e = resolve(&hub(REPO, Some(&"3".repeat(40))), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("snapshots/{}", "3".repeat(40))), "{e}");
        // A required file missing from the snapshot.
        std::fs::remove_file(
            tmp.path()
                .join("models--org--tiny/snapshots")
                .join(C2)
                .join("tokenizer.json"),
        )
        .unwrap();
        let e = resolve(&hub(REPO, None), &o).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer.json missing")
                && e.contains("models--org--tiny")
                && e.contains(C2),
            "{e}"
        );
        // The same file, recorded by hf-hub as absent on the hub: pulling again will not help.
        write_no_exist(tmp.path(), REPO, C2, "tokenizer.json");
        let e = resolve(&hub(REPO, None), &o).unwrap_err().to_string();
        assert!(
            e.contains("has no tokenizer.json")
                && e.contains(".no_exist")
                && !e.contains("hakaru pull"),
            "{e}"
        );
        // No weights at all.
        std::fs::remove_file(
            tmp.path()
                .join("models--org--tiny/snapshots")
                .join(C1)
                .join("model.safetensors"),
        )
        .unwrap();
        let e = resolve(&hub(REPO, Some(C1)), &o).unwrap_err().to_string();
        assert!(e.contains("no weights") && e.contains("config.json"), "{e}");
        // A corrupt ref file.
        write_ref(tmp.path(), REPO, "bad", "not-a-sha");
        let e = resolve(&hub(REPO, Some("bad")), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("refs/bad") && e.contains("not-a-sha"), "{e}");
    }

    fn config_only(cache: &Path) -> ResolveOptions {
        ResolveOptions {
            weights: false,
            ..offline(cache)
        }
    }

    #[test]
    fn offline_without_weights_needs_only_the_config_files() {
        let tmp = tempfile::tempdir().unwrap();
        // What `hakaru template` leaves in the cache: config files, no model.safetensors, no
        // tokenizer.json.
        let files: Vec<(&str, &[u8])> = vec![
            ("config.json", b"{}"),
            ("tokenizer_config.json", br#"{"chat_template":"x"}"#),
            ("chat_template.jinja", b"{{ x }}"),
            ("README.md", b"x"),
        ];
        write_fake_hub_repo(tmp.path(), REPO, C1, &files, &[]);
        let m = resolve(&hub(REPO, None), &config_only(tmp.path())).unwrap();
        assert_eq!(
            names(&m),
            [
                "chat_template.jinja",
                "config.json",
                "tokenizer_config.json"
            ]
        );
        assert_eq!((m.kind, m.format), (ModelKind::Hub, WeightFormat::None));
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
        assert_eq!(
            m.file("tokenizer_config.json").unwrap().sha256,
            sha256_hex(br#"{"chat_template":"x"}"#)
        );
        // With weights, the same snapshot is an error.
        let e = resolve(&hub(REPO, None), &offline(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no weights"), "{e}");

        // A full snapshot: the weights are left out, but the format is known.
        let (full, _, _) = two_commit_cache();
        let m = resolve(&hub(REPO, None), &config_only(full.path())).unwrap();
        assert_eq!(m.format, WeightFormat::Safetensors);
        assert!(m.safetensors_paths().is_empty(), "{:?}", names(&m));
        assert_eq!(
            names(&m),
            [
                "config.json",
                "generation_config.json",
                "tokenizer.json",
                "tokenizer_config.json"
            ]
        );

        // A GGUF reference: the repo's config files only; the .gguf need not be cached.
        let r = ModelRef::parse("org/tiny:m-Q4_K_M.gguf").unwrap();
        let m = resolve(&r, &config_only(tmp.path())).unwrap();
        assert_eq!((m.kind, m.format), (ModelKind::Gguf, WeightFormat::Gguf));
        assert!(m.gguf_path().is_none());
        assert_eq!(names(&m).len(), 3);
    }

    #[test]
    fn pickle_only_repo_resolves_for_templates() {
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<(&str, &[u8])> = vec![
            ("config.json", b"{}"),
            ("tokenizer_config.json", b"{}"),
            ("pytorch_model.bin", b"PK\x03\x04"),
        ];
        write_fake_hub_repo(
            tmp.path(),
            "old/pickled",
            C1,
            &files,
            &["pytorch_model.bin"],
        );
        let m = resolve(&hub("old/pickled", None), &config_only(tmp.path())).unwrap();
        assert_eq!(names(&m), ["config.json", "tokenizer_config.json"]);
        assert_eq!(m.format, WeightFormat::None);
        // Local directories follow the same rule.
        let dir = tmp.path().join("models--old--pickled/snapshots").join(C1);
        let m = resolve(&ModelRef::LocalDir(dir), &config_only(tmp.path())).unwrap();
        assert_eq!(names(&m), ["config.json", "tokenizer_config.json"]);
    }

    #[test]
    fn verify_detects_a_corrupted_blob() {
        let (tmp, _, _) = two_commit_cache();
        let blob = blob_of(tmp.path(), REPO, C2, "model.safetensors");
        let recorded = blob.file_name().unwrap().to_str().unwrap().to_string();
        std::fs::write(&blob, b"bit rot").unwrap();
        // Without --verify the LFS blob name is trusted (no hashing of big files).
        let m = resolve(&hub(REPO, None), &offline(tmp.path())).unwrap();
        assert_eq!(m.file("model.safetensors").unwrap().sha256, recorded);
        // With it, the mismatch is an error naming the file and the blob.
        let o = ResolveOptions {
            verify: true,
            ..offline(tmp.path())
        };
        let e = resolve(&hub(REPO, None), &o).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors")
                && e.contains(&recorded)
                && e.contains(&sha256_hex(b"bit rot")),
            "{e}"
        );
        assert!(e.contains("hakaru pull"), "{e}");
        // Intact commit verifies.
        let m = resolve(&hub(REPO, Some(C1)), &o).unwrap();
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
    }

    #[test]
    fn offline_hub_gguf_picks_the_file_and_tokenizer() {
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<(&str, &[u8])> = vec![
            ("m-Q8_0.gguf", b"GGUF8"),
            ("sub/m-Q4_K_M.gguf", b"GGUF4"),
            ("tokenizer.json", b"{}"),
            ("README.md", b"x"),
        ];
        write_fake_hub_repo(
            tmp.path(),
            "org/m-GGUF",
            C1,
            &files,
            &["m-Q8_0.gguf", "sub/m-Q4_K_M.gguf"],
        );
        let r = ModelRef::parse("org/m-GGUF:sub/m-Q4_K_M.gguf").unwrap();
        let m = resolve(&r, &offline(tmp.path())).unwrap();
        assert_eq!(m.kind, ModelKind::Gguf);
        assert_eq!(m.format, WeightFormat::Gguf);
        assert_eq!(names(&m), ["sub/m-Q4_K_M.gguf", "tokenizer.json"]);
        assert_eq!(
            m.file("sub/m-Q4_K_M.gguf").unwrap().sha256,
            sha256_hex(b"GGUF4")
        );
        assert!(m.gguf_path().unwrap().ends_with("sub/m-Q4_K_M.gguf"));

        let r = ModelRef::parse("org/m-GGUF:m-Q5_K_M.gguf").unwrap();
        let e = resolve(&r, &offline(tmp.path())).unwrap_err().to_string();
        assert!(
            e.contains("m-Q5_K_M.gguf") && e.contains("m-Q8_0.gguf, sub/m-Q4_K_M.gguf"),
            "{e}"
        );
        // Asking for safetensors from a GGUF repo says how to pick a file.
        let e = resolve(&hub("org/m-GGUF", None), &offline(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("org/name:FILE.gguf") && e.contains("m-Q8_0.gguf"),
            "{e}"
        );
    }

    #[test]
    fn local_directory_safetensors_and_gguf() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("m");
        std::fs::create_dir_all(d.join(".git")).unwrap();
        for (n, c) in small_model_files() {
            std::fs::write(d.join(n), c).unwrap();
        }
        std::fs::write(d.join(".git/config"), b"x").unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        let m = resolve(&ModelRef::LocalDir(d.clone()), &ResolveOptions::default()).unwrap();
        assert_eq!(m.kind, ModelKind::Local);
        assert_eq!(m.format, WeightFormat::Safetensors);
        assert_eq!(m.dir, Some(std::fs::canonicalize(&d).unwrap()));
        assert_eq!(
            names(&m),
            [
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "tokenizer_config.json"
            ]
        );
        assert_eq!(
            m.file("model.safetensors").unwrap().sha256,
            sha256_hex(&[7u8; 4096])
        );
        assert_eq!(m.commit_sha, None);

        // A directory with one .gguf and a tokenizer.
        let g = tmp.path().join("g");
        std::fs::create_dir_all(&g).unwrap();
        std::fs::write(g.join("x.gguf"), b"GGUF").unwrap();
        std::fs::write(g.join("tokenizer.json"), b"{}").unwrap();
        let m = resolve(&ModelRef::LocalDir(g.clone()), &ResolveOptions::default()).unwrap();
        assert_eq!((m.kind, m.format), (ModelKind::Local, WeightFormat::Gguf));
        assert_eq!(names(&m), ["tokenizer.json", "x.gguf"]);
        // Two .gguf files are ambiguous.
        std::fs::write(g.join("y.gguf"), b"GGUF").unwrap();
        let e = resolve(&ModelRef::LocalDir(g.clone()), &ResolveOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.gguf, y.gguf") && e.contains("give the path"),
            "{e}"
        );
        // A local pickle-only directory is refused too.
        let p = tmp.path().join("p");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("pytorch_model.bin"), b"x").unwrap();
        let e = resolve(&ModelRef::LocalDir(p), &ResolveOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("only pickle weights"), "{e}");
    }

    #[test]
    fn local_gguf_file_takes_tokenizer_files_beside_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.gguf"), b"GGUF-a").unwrap();
        std::fs::write(tmp.path().join("tokenizer.json"), b"{}").unwrap();
        std::fs::write(tmp.path().join("other.gguf"), b"GGUF-b").unwrap();
        let m = resolve(
            &ModelRef::GgufFile(tmp.path().join("a.gguf")),
            &ResolveOptions::default(),
        )
        .unwrap();
        assert_eq!((m.kind, m.format), (ModelKind::Gguf, WeightFormat::Gguf));
        assert_eq!(names(&m), ["a.gguf", "tokenizer.json"]);
        assert_eq!(m.files[0].sha256, sha256_hex(b"GGUF-a"));
        assert_eq!(m.files[0].size, 6);
    }

    #[test]
    fn synthetic_has_no_files() {
        let m = resolve(
            &ModelRef::Synthetic("qwen2.5-0.5b".into()),
            &ResolveOptions::default(),
        )
        .unwrap();
        assert_eq!(m.kind, ModelKind::Synthetic);
        assert_eq!(m.format, WeightFormat::None);
        assert!(m.files.is_empty() && m.dir.is_none());
        assert_eq!(m.reference, "synthetic:qwen2.5-0.5b");
    }

    #[test]
    fn resolved_model_serde_round_trip_and_names() {
        let (tmp, _, _) = two_commit_cache();
        let m = resolve(&hub(REPO, None), &offline(tmp.path())).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["kind"], "hub");
        assert_eq!(json["format"], "safetensors");
        assert_eq!(json["commit_sha"], C2);
        let back: ResolvedModel = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn offline_env_values() {
        for (v, expected) in [
            (None, false),
            (Some(""), false),
            (Some("0"), false),
            (Some("false"), false),
            (Some("1"), true),
            (Some("true"), true),
            (Some("TRUE"), true),
            (Some(" yes "), true),
            (Some("on"), true),
        ] {
            assert_eq!(offline_from_env_value(v), expected, "{v:?}");
        }
    }

    #[test]
    fn repo_folder_names() {
        assert_eq!(
            repo_folder_name("Qwen/Qwen2.5-0.5B-Instruct"),
            "models--Qwen--Qwen2.5-0.5B-Instruct"
        );
        assert_eq!(repo_folder_name("gpt2"), "models--gpt2");
    }

    #[test]
    fn index_shard_errors() {
        assert!(index_shards("{").unwrap_err().contains("not valid JSON"));
        assert!(index_shards("{}").unwrap_err().contains("weight_map"));
        assert!(index_shards(r#"{"weight_map":{}}"#)
            .unwrap_err()
            .contains("empty"));
        assert!(index_shards(r#"{"weight_map":{"a":"../x.safetensors"}}"#)
            .unwrap_err()
            .contains("weight_map.a"));
        assert!(index_shards(r#"{"weight_map":{"a":"x.bin"}}"#)
            .unwrap_err()
            .contains("x.bin"));
    }

    #[test]
    fn hub_errors_say_what_to_do() {
        let e = hub_error(
            hf_hub::HFError::RepoNotFound {
                repo_id: "a/b".into(),
                context: None,
            },
            "a/b",
            "fetching the file list",
        )
        .to_string();
        assert!(
            e.contains("a/b was not found") && e.contains("HF_TOKEN"),
            "{e}"
        );
        let e = hub_error(
            hf_hub::HFError::RevisionNotFound {
                repo_id: "a/b".into(),
                revision: "nope".into(),
                context: None,
            },
            "a/b",
            "x",
        )
        .to_string();
        assert!(e.contains("revision `nope` does not exist in a/b"), "{e}");
    }

    /// Records progress calls.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);
    impl DownloadProgress for Recorder {
        fn start(&self, file: &str, phase: Phase, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {file} {phase:?} {total}"));
        }
        fn advance(&self, file: &str, done: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("advance {file} {done}"));
        }
        fn finish(&self, file: &str) {
            self.0.lock().unwrap().push(format!("finish {file}"));
        }
    }

    #[test]
    fn hashing_reports_progress() {
        let (tmp, _, _) = two_commit_cache();
        let rec = Arc::new(Recorder::default());
        let o = ResolveOptions {
            verify: true,
            progress: Some(rec.clone()),
            ..offline(tmp.path())
        };
        resolve(&hub(REPO, None), &o).unwrap();
        let log = rec.0.lock().unwrap().clone();
        assert!(
            log.contains(&"start model.safetensors Hash 8192".to_string()),
            "{log:?}"
        );
        assert!(
            log.contains(&"advance model.safetensors 8192".to_string()),
            "{log:?}"
        );
        assert!(
            log.contains(&"finish model.safetensors".to_string()),
            "{log:?}"
        );
    }

    /// A minimal stand-in for the hub's HTTP API on 127.0.0.1 (std only): repo info at a
    /// revision, and HEAD/GET of `/{repo}/resolve/{commit}/{file}` with the headers hf-hub reads
    /// (ETag, X-Repo-Commit, Content-Length). Records every request line.
    mod mock {
        use std::io::{BufRead, BufReader, Write};
        use std::net::TcpListener;
        use std::sync::{Arc, Mutex};

        pub struct Repo {
            pub id: &'static str,
            pub commit: String,
            /// (name, content, is LFS)
            pub files: Vec<(String, Vec<u8>, bool)>,
            /// Status of the info endpoint (401 for a gated repo).
            pub info_status: u16,
        }

        pub struct Hub {
            pub endpoint: String,
            pub requests: Arc<Mutex<Vec<String>>>,
        }

        impl Hub {
            pub fn requests(&self) -> Vec<String> {
                self.requests.lock().unwrap().clone()
            }
        }

        fn etag(content: &[u8], lfs: bool) -> String {
            let sha = super::sha256_hex(content);
            if lfs {
                sha
            } else {
                sha[..40].to_string()
            }
        }

        fn respond(
            repos: &[Repo],
            method: &str,
            path: &str,
        ) -> (u16, Vec<(String, String)>, Vec<u8>) {
            let not_found = (404, vec![], br#"{"error":"not found"}"#.to_vec());
            if let Some(rest) = path.strip_prefix("/api/models/") {
                let Some((id, rev)) = rest.split_once("/revision/") else {
                    return not_found;
                };
                let Some(repo) = repos.iter().find(|r| r.id == id) else {
                    return not_found;
                };
                if repo.info_status != 200 {
                    return (
                        repo.info_status,
                        vec![],
                        br#"{"error":"Access to this repo is restricted"}"#.to_vec(),
                    );
                }
                if rev != "main" && rev != repo.commit {
                    return not_found;
                }
                let siblings: Vec<serde_json::Value> = repo
                    .files
                    .iter()
                    .map(|(n, _, _)| serde_json::json!({ "rfilename": n }))
                    .collect();
                let body =
                    serde_json::json!({ "id": repo.id, "sha": repo.commit, "siblings": siblings });
                return (
                    200,
                    vec![("Content-Type".into(), "application/json".into())],
                    body.to_string().into_bytes(),
                );
            }
            for repo in repos {
                let prefix = format!("/{}/resolve/", repo.id);
                let Some(rest) = path.strip_prefix(&prefix) else {
                    continue;
                };
                let Some((rev, file)) = rest.split_once('/') else {
                    return not_found;
                };
                let Some((_, content, lfs)) = repo.files.iter().find(|(n, _, _)| n == file) else {
                    return not_found;
                };
                if rev != repo.commit && rev != "main" {
                    return not_found;
                }
                let headers = vec![
                    ("ETag".into(), format!("\"{}\"", etag(content, *lfs))),
                    ("X-Repo-Commit".into(), repo.commit.clone()),
                ];
                let body = if method == "HEAD" {
                    vec![]
                } else {
                    content.clone()
                };
                return (200, headers, body);
            }
            not_found
        }

        pub fn start(repos: Vec<Repo>) -> Hub {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let endpoint = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let repos = Arc::new(repos);
            let log = requests.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    let (repos, log) = (repos.clone(), log.clone());
                    std::thread::spawn(move || {
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let mut out = stream;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let mut header = String::new();
                            while reader.read_line(&mut header).unwrap_or(0) > 2 {
                                header.clear();
                            }
                            let mut parts = line.split_whitespace();
                            let (method, path) =
                                (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                            log.lock().unwrap().push(format!("{method} {path}"));
                            let (status, headers, body) = respond(&repos, method, path);
                            let len = if method == "HEAD" {
                                respond(&repos, "GET", path).2.len()
                            } else {
                                body.len()
                            };
                            let mut resp =
                                format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\n");
                            for (k, v) in headers {
                                resp.push_str(&format!("{k}: {v}\r\n"));
                            }
                            resp.push_str("\r\n");
                            if out
                                .write_all(resp.as_bytes())
                                .and_then(|_| out.write_all(&body))
                                .is_err()
                            {
                                return;
                            }
                        }
                    });
                }
            });
            Hub { endpoint, requests }
        }
    }

    fn online(cache: &Path, server: &mock::Hub) -> ResolveOptions {
        ResolveOptions {
            offline: false,
            cache_dir: Some(cache.to_path_buf()),
            endpoint: Some(server.endpoint.clone()),
            token: Some("hf_test".into()),
            ..ResolveOptions::default()
        }
    }

    fn mock_repo(
        id: &'static str,
        commit: &str,
        files: &[(&str, &[u8])],
        lfs: &[&str],
    ) -> mock::Repo {
        mock::Repo {
            id,
            commit: commit.into(),
            files: files
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_vec(), lfs.contains(n)))
                .collect(),
            info_status: 200,
        }
    }

    #[test]
    fn online_downloads_the_set_at_one_commit_then_works_offline() {
        let tmp = tempfile::tempdir().unwrap();
        let weights = vec![5u8; 100_000];
        let files: Vec<(&str, &[u8])> = vec![
            ("config.json", b"{}"),
            ("tokenizer.json", b"{\"v\":1}"),
            ("chat_template.jinja", b"{{ x }}"),
            ("model.safetensors", &weights),
            ("README.md", b"# skipped"),
            ("original/consolidated.pth", b"skipped"),
        ];
        let server = mock::start(vec![mock_repo(
            "org/tiny",
            C1,
            &files,
            &["model.safetensors"],
        )]);
        let rec = Arc::new(Recorder::default());
        let opts = ResolveOptions {
            progress: Some(rec.clone()),
            ..online(tmp.path(), &server)
        };
        let m = resolve(&hub(REPO, None), &opts).unwrap();
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
        assert_eq!(m.requested_revision.as_deref(), Some("main"));
        assert_eq!(
            names(&m),
            [
                "chat_template.jinja",
                "config.json",
                "model.safetensors",
                "tokenizer.json"
            ]
        );
        assert_eq!(
            m.file("model.safetensors").unwrap().sha256,
            sha256_hex(&weights)
        );
        assert_eq!(m.file("model.safetensors").unwrap().size, 100_000);
        assert_eq!(
            m.file("tokenizer.json").unwrap().sha256,
            sha256_hex(b"{\"v\":1}")
        );
        // The file list comes from `main`; every file is fetched at the commit it resolved to.
        let reqs = server.requests();
        assert!(
            reqs.contains(&"GET /api/models/org/tiny/revision/main".to_string()),
            "{reqs:?}"
        );
        assert!(
            reqs.iter()
                .filter(|r| r.contains("/resolve/"))
                .all(|r| r.contains(&format!("/resolve/{C1}/"))),
            "{reqs:?}"
        );
        assert!(
            !reqs
                .iter()
                .any(|r| r.contains("README.md") || r.contains(".pth")),
            "{reqs:?}"
        );
        // refs/main now points at the commit, so offline resolution finds the same set.
        let ref_main =
            std::fs::read_to_string(tmp.path().join("models--org--tiny/refs/main")).unwrap();
        assert_eq!(ref_main, C1);
        let off = resolve(&hub(REPO, None), &offline(tmp.path())).unwrap();
        assert_eq!(off.files, m.files);
        assert_eq!(off.commit_sha, m.commit_sha);
        // Progress came through hf-hub's events.
        let log = rec.0.lock().unwrap().clone();
        assert!(
            log.contains(&"start model.safetensors Download 100000".to_string()),
            "{log:?}"
        );
        assert!(
            log.contains(&"advance model.safetensors 100000".to_string()),
            "{log:?}"
        );
        assert!(
            log.contains(&"finish model.safetensors".to_string()),
            "{log:?}"
        );
        // A second online pull only asks for the file list.
        let before = server.requests().len();
        resolve(&hub(REPO, None), &online(tmp.path(), &server)).unwrap();
        let after = server.requests();
        assert_eq!(
            after[before..],
            ["GET /api/models/org/tiny/revision/main".to_string()],
            "{after:?}"
        );
    }

    #[test]
    fn online_sharded_gguf_pickle_and_gated() {
        let tmp = tempfile::tempdir().unwrap();
        let index = br#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#;
        let sharded: Vec<(&str, &[u8])> = vec![
            ("config.json", b"{}"),
            ("tokenizer.json", b"{}"),
            ("model.safetensors.index.json", index),
            ("model-00001-of-00002.safetensors", b"one"),
            ("model-00002-of-00002.safetensors", b"two"),
            (
                "pytorch_model.bin",
                b"old pickle beside safetensors is ignored",
            ),
        ];
        let gguf: Vec<(&str, &[u8])> = vec![("m-Q8_0.gguf", b"GGUF"), ("m-Q4_K_M.gguf", b"GGUF4")];
        let pickle: Vec<(&str, &[u8])> = vec![("config.json", b"{}"), ("pytorch_model.bin", b"PK")];
        let mut gated = mock_repo("org/gated", C2, &sharded, &[]);
        gated.info_status = 401;
        let server = mock::start(vec![
            mock_repo(
                "org/sharded",
                C2,
                &sharded,
                &["model-00001-of-00002.safetensors"],
            ),
            mock_repo("org/m-GGUF", C1, &gguf, &["m-Q8_0.gguf", "m-Q4_K_M.gguf"]),
            mock_repo("org/pickled", C1, &pickle, &["pytorch_model.bin"]),
            gated,
        ]);
        let o = online(tmp.path(), &server);

        let m = resolve(&ModelRef::parse("org/sharded@main").unwrap(), &o).unwrap();
        assert_eq!(m.safetensors_paths().len(), 2);
        assert!(m.file("pytorch_model.bin").is_none());
        assert_eq!(
            m.file("model-00002-of-00002.safetensors").unwrap().sha256,
            sha256_hex(b"two")
        );

        let m = resolve(&ModelRef::parse("org/m-GGUF:m-Q4_K_M.gguf").unwrap(), &o).unwrap();
        assert_eq!(
            (m.kind, names(&m)),
            (ModelKind::Gguf, vec!["m-Q4_K_M.gguf"])
        );
        assert!(!server.requests().iter().any(|r| r.contains("m-Q8_0.gguf")));

        let before = server.requests().len();
        let e = resolve(&hub("org/pickled", None), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("only pickle weights") && e.contains(C1), "{e}");
        assert!(
            !server.requests()[before..]
                .iter()
                .any(|r| r.contains("/resolve/")),
            "nothing downloaded"
        );

        // Without weights: the pickle-only repo resolves to its config, downloading nothing else,
        // and a GGUF reference fetches no .gguf but is still checked against the list.
        let cfg_only = ResolveOptions {
            weights: false,
            ..o.clone()
        };
        let before = server.requests().len();
        let m = resolve(&hub("org/pickled", None), &cfg_only).unwrap();
        assert_eq!(
            (names(&m), m.format),
            (vec!["config.json"], WeightFormat::None)
        );
        assert_eq!(m.commit_sha.as_deref(), Some(C1));
        // The ref is written as on the normal path, so the same resolution works offline.
        let ref_main =
            std::fs::read_to_string(tmp.path().join("models--org--pickled/refs/main")).unwrap();
        assert_eq!(ref_main, C1);
        let off = ResolveOptions {
            weights: false,
            ..offline(tmp.path())
        };
        assert_eq!(
            resolve(&hub("org/pickled", None), &off).unwrap().files,
            m.files
        );
        let m = resolve(&ModelRef::parse("org/sharded").unwrap(), &cfg_only).unwrap();
        assert_eq!(m.format, WeightFormat::Safetensors);
        assert_eq!(names(&m), ["config.json", "tokenizer.json"]);
        let m = resolve(
            &ModelRef::parse("org/m-GGUF:m-Q8_0.gguf").unwrap(),
            &cfg_only,
        )
        .unwrap();
        assert_eq!((m.kind, m.format), (ModelKind::Gguf, WeightFormat::Gguf));
        assert!(m.files.is_empty());
        let reqs = &server.requests()[before..];
        assert!(
            !reqs
                .iter()
                .any(|r| r.contains(".bin") || r.contains(".gguf") || r.contains(".safetensors")),
            "{reqs:?}"
        );
        let e = resolve(
            &ModelRef::parse("org/m-GGUF:m-Q2_K.gguf").unwrap(),
            &cfg_only,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("m-Q2_K.gguf") && e.contains("m-Q8_0.gguf"),
            "{e}"
        );

        let e = resolve(&hub("org/gated", None), &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HF_TOKEN") && e.contains("https://huggingface.co/org/gated"),
            "{e}"
        );

        let e = resolve(&hub("org/sharded", Some("nope")), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("org/sharded") && e.contains("nope"), "{e}");
    }

    #[test]
    fn unreachable_hub_falls_back_to_the_cache() {
        let (tmp, _, _) = two_commit_cache();
        // A port nothing listens on: connections are refused (hf-hub retries a few times first).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let o = ResolveOptions {
            offline: false,
            cache_dir: Some(tmp.path().to_path_buf()),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            ..ResolveOptions::default()
        };
        let m = resolve(&hub(REPO, None), &o).unwrap();
        assert_eq!(m.commit_sha.as_deref(), Some(C2));
        let e = resolve(&hub("org/absent", None), &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot reach the hub") && e.contains("HF_HUB_OFFLINE"),
            "{e}"
        );
    }
}
