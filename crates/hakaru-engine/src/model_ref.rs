//! Model references: the one syntax every command accepts to name a model.
//!
//! | form | meaning |
//! |---|---|
//! | `org/name`, `org/name@revision` | a safetensors model on the Hugging Face hub (revision: branch, tag or commit sha; default `main`) |
//! | `org/name[@revision]:FILE.gguf` | one GGUF file inside a hub repo (`FILE` may contain `/`) |
//! | `./dir`, `/abs/dir`, or any existing directory | a local model directory (config.json, tokenizer.json, safetensors or one .gguf) |
//! | `path/to/model.gguf` | a local GGUF file |
//! | `synthetic:<registry-name or config.json path>` | random weights of a real shape, nothing downloaded |
//! | `http[s]://host:port/v1[#served-model]` | a model behind an OpenAI-compatible endpoint: not a [`ModelRef`] but [`crate::endpoint::EndpointRef`], taken by the commands that drive a [`crate::backend::Backend`]; [`parse`] refuses it with a message saying so |
//!
//! Ambiguity rules: a string that starts with `./`, `../`, `/` or `~/` is always a local path; any
//! other string that names an existing file or directory is local too (an existing path wins over
//! hub syntax); everything else must be hub syntax.
//!
//! `Display` writes the same syntax back, so `parse(r.to_string()) == r` (local paths are kept as
//! given, not canonicalised; [`crate::hub::resolve`] records the absolute path).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The accepted forms, quoted in every parse error.
pub const ACCEPTED_FORMS: &str = "accepted forms: `org/name`, `org/name@revision`, \
`org/name[@revision]:FILE.gguf`, a path to a model directory (e.g. `./models/my-model`), \
a path to a `.gguf` file, or `synthetic:<registry name or config.json path>`";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelRef {
    /// A safetensors model repo on the hub; `revision` None means `main`.
    Hub {
        repo: String,
        revision: Option<String>,
    },
    /// One GGUF file inside a hub repo.
    HubGguf {
        repo: String,
        revision: Option<String>,
        file: String,
    },
    /// A local directory holding a model.
    LocalDir(PathBuf),
    /// A local `.gguf` file.
    GgufFile(PathBuf),
    /// A random-weight model of a known shape: a registry name or a config.json path.
    Synthetic(String),
}

impl ModelRef {
    /// Parse a model reference; see the module docs for the accepted forms.
    pub fn parse(s: &str) -> Result<ModelRef> {
        parse(s)
    }

    /// The hub repo id, for hub references.
    pub fn repo(&self) -> Option<&str> {
        match self {
            ModelRef::Hub { repo, .. } | ModelRef::HubGguf { repo, .. } => Some(repo),
            _ => None,
        }
    }

    /// The requested revision, for hub references (None means `main`).
    pub fn revision(&self) -> Option<&str> {
        match self {
            ModelRef::Hub { revision, .. } | ModelRef::HubGguf { revision, .. } => {
                revision.as_deref()
            }
            _ => None,
        }
    }

    pub fn is_hub(&self) -> bool {
        matches!(self, ModelRef::Hub { .. } | ModelRef::HubGguf { .. })
    }
}

fn err(s: &str, msg: impl fmt::Display) -> Error {
    Error::reference(s, format!("{msg}; {ACCEPTED_FORMS}"))
}

/// True when the string is spelled as a filesystem path, whatever exists on disk.
fn looks_like_path(s: &str) -> bool {
    s == "."
        || s == ".."
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('/')
        || s.starts_with("~/")
        || s.starts_with(".\\")
        || s.starts_with("..\\")
        || Path::new(s).is_absolute()
}

fn has_gguf_ext(s: &str) -> bool {
    s.len() > 5 && s[s.len() - 5..].eq_ignore_ascii_case(".gguf")
}

fn expand_home(s: &str) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(s)
}

/// Classify a local path that must exist; relative paths are looked up under `base` but kept as
/// written.
fn local(s: &str, path: PathBuf, base: &Path) -> Result<ModelRef> {
    match std::fs::metadata(base.join(&path)) {
        Ok(m) if m.is_dir() => Ok(ModelRef::LocalDir(path)),
        Ok(m) if m.is_file() && has_gguf_ext(s) => Ok(ModelRef::GgufFile(path)),
        Ok(_) => Err(Error::reference(
            s,
            format!(
                "{} is a file but not a .gguf file; give the directory that holds config.json and the \
                 safetensors weights, or a .gguf file",
                path.display()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = if has_gguf_ext(s) { "GGUF file" } else { "model directory" };
            Err(Error::reference(
                s,
                format!("{what} {} does not exist; check the path (relative paths start from the current directory)", path.display()),
            ))
        }
        Err(e) => Err(Error::reference(s, format!("cannot read {}: {e}", path.display()))),
    }
}

/// Check a hub repo id `org/name` (the hub's rules: letters, digits, `-`, `_`, `.`; no leading or
/// trailing `-`/`.`, no `--` or `..`, at most 96 characters). Returns a message on failure.
pub fn check_repo_id(repo: &str) -> std::result::Result<(), String> {
    let Some((org, name)) = repo.split_once('/') else {
        return Err(format!(
            "`{repo}` is not a hub repo id: expected `org/name` with exactly one `/`"
        ));
    };
    if name.contains('/') {
        return Err(format!(
            "`{repo}` is not a hub repo id: expected `org/name` with exactly one `/`"
        ));
    }
    for (part, what) in [(org, "organisation"), (name, "name")] {
        if part.is_empty() {
            return Err(format!(
                "the {what} part of `{repo}` is empty; expected `org/name`"
            ));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "the {what} `{part}` contains `{c}`; hub repo ids use only letters, digits, `-`, `_` and `.`"
            ));
        }
        if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return Err(format!(
                "the {what} `{part}` must not start or end with `-` or `.`"
            ));
        }
        if part.contains("--") || part.contains("..") {
            return Err(format!("the {what} `{part}` must not contain `--` or `..`"));
        }
    }
    if repo.len() > 96 {
        return Err(format!(
            "`{repo}` is longer than the hub's limit of 96 characters"
        ));
    }
    Ok(())
}

/// Check a git revision: a branch, tag, `refs/pr/N` or commit sha.
fn check_revision(rev: &str) -> std::result::Result<(), String> {
    if rev.is_empty() {
        return Err("`@` must be followed by a revision (a branch, tag or commit sha), e.g. `org/name@main`".into());
    }
    if let Some(c) = rev
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
    {
        return Err(format!("revision `{rev}` contains `{c}`; a revision is a branch, tag, `refs/pr/N` or commit sha"));
    }
    if rev.starts_with('/') || rev.ends_with('/') || rev.contains("//") || rev.contains("..") {
        return Err(format!("revision `{rev}` is not a valid git ref name"));
    }
    Ok(())
}

/// Check the file part of `org/name:FILE.gguf`.
fn check_repo_file(file: &str) -> std::result::Result<(), String> {
    if file.is_empty() {
        return Err("`:` must be followed by a .gguf file name inside the repo, e.g. `org/name:model-Q4_K_M.gguf`".into());
    }
    if !has_gguf_ext(file) {
        return Err(format!(
            "`{file}` does not end in .gguf; the `:FILE` part names a GGUF file inside the repo (for safetensors repos leave it out)"
        ));
    }
    if file.starts_with('/')
        || file.contains('\\')
        || file
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!(
            "`{file}` must be a plain path inside the repo (no leading `/`, `.` or `..` parts)"
        ));
    }
    Ok(())
}

/// Parse a model reference; see the module docs for the accepted forms and ambiguity rules.
pub fn parse(input: &str) -> Result<ModelRef> {
    parse_in(input, Path::new(""))
}

/// [`parse`], with relative paths taken from `base` instead of the current directory.
fn parse_in(input: &str, base: &Path) -> Result<ModelRef> {
    let s = input.trim();
    if s.is_empty() {
        return Err(err(input, "the model reference is empty"));
    }
    if crate::endpoint::EndpointRef::is_endpoint(s) {
        return Err(Error::reference(
            s,
            "this is an OpenAI-compatible endpoint, which `hakaru run`, `hakaru bench` and `hakaru generate` take; this command needs a model on this machine (a hub repo, a directory, a .gguf file or synthetic:…)",
        ));
    }
    if let Some(rest) = s.strip_prefix("synthetic:") {
        if rest.trim().is_empty() {
            return Err(err(s, "`synthetic:` must be followed by a registry name (see `hakaru models`) or a config.json path"));
        }
        return Ok(ModelRef::Synthetic(rest.trim().to_string()));
    }
    if looks_like_path(s) {
        return local(s, expand_home(s), base);
    }
    // An existing path wins over hub syntax.
    if base.join(s).exists() {
        return local(s, PathBuf::from(s), base);
    }
    // Hub syntax: org/name[@revision][:FILE.gguf]. Git refs cannot contain `:`, so the first `:`
    // separates the file.
    let (head, file) = match s.split_once(':') {
        Some((h, f)) => (h, Some(f)),
        None => (s, None),
    };
    if file.is_none() && has_gguf_ext(s) {
        return local(s, PathBuf::from(s), base);
    }
    let (repo, revision) = match head.split_once('@') {
        Some((r, rev)) => (r, Some(rev)),
        None => (head, None),
    };
    if !repo.contains('/') {
        return Err(err(
            s,
            format!(
                "`{repo}` is neither an existing path nor a hub repo id `org/name` (for a registry name such as \
                 `qwen2.5-7b`, see `hakaru models`)"
            ),
        ));
    }
    check_repo_id(repo).map_err(|m| err(s, m))?;
    if let Some(rev) = revision {
        check_revision(rev).map_err(|m| err(s, m))?;
    }
    let revision = revision.map(str::to_string);
    let repo = repo.to_string();
    match file {
        Some(f) => {
            check_repo_file(f).map_err(|m| err(s, m))?;
            Ok(ModelRef::HubGguf {
                repo,
                revision,
                file: f.to_string(),
            })
        }
        None => Ok(ModelRef::Hub { repo, revision }),
    }
}

impl FromStr for ModelRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        parse(s)
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Hub { repo, revision } => {
                write!(f, "{repo}")?;
                if let Some(r) = revision {
                    write!(f, "@{r}")?;
                }
                Ok(())
            }
            ModelRef::HubGguf {
                repo,
                revision,
                file,
            } => {
                write!(f, "{repo}")?;
                if let Some(r) = revision {
                    write!(f, "@{r}")?;
                }
                write!(f, ":{file}")
            }
            ModelRef::LocalDir(p) | ModelRef::GgufFile(p) => write!(f, "{}", p.display()),
            ModelRef::Synthetic(s) => write!(f, "synthetic:{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(repo: &str, rev: Option<&str>) -> ModelRef {
        ModelRef::Hub {
            repo: repo.into(),
            revision: rev.map(Into::into),
        }
    }
    fn hub_gguf(repo: &str, rev: Option<&str>, file: &str) -> ModelRef {
        ModelRef::HubGguf {
            repo: repo.into(),
            revision: rev.map(Into::into),
            file: file.into(),
        }
    }

    /// Parse `input`, expect `expected`, and check that Display round-trips.
    #[track_caller]
    fn check(input: &str, expected: ModelRef) {
        let got = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(got, expected, "{input}");
        let again =
            parse(&got.to_string()).unwrap_or_else(|e| panic!("round trip of {input}: {e}"));
        assert_eq!(again, got, "round trip of {input} via `{got}`");
    }

    /// Parse `input`, expect an error whose message contains every one of `needles`.
    #[track_caller]
    fn check_err(input: &str, needles: &[&str]) {
        let e = match parse(input) {
            Ok(r) => panic!("{input}: expected an error, got {r:?}"),
            Err(e) => e,
        };
        assert!(
            matches!(e, Error::Ref { .. }),
            "{input}: not a Ref error: {e:?}"
        );
        let msg = e.to_string();
        for n in needles {
            assert!(msg.contains(n), "{input}: `{msg}` does not mention `{n}`");
        }
    }

    #[test]
    fn hub_forms() {
        check(
            "Qwen/Qwen2.5-0.5B-Instruct",
            hub("Qwen/Qwen2.5-0.5B-Instruct", None),
        );
        check(
            "  Qwen/Qwen2.5-0.5B-Instruct ",
            hub("Qwen/Qwen2.5-0.5B-Instruct", None),
        );
        check(
            "Qwen/Qwen2.5-0.5B-Instruct@main",
            hub("Qwen/Qwen2.5-0.5B-Instruct", Some("main")),
        );
        check(
            "meta-llama/Llama-3.1-8B-Instruct@0e9e39f249a16976918f6564b8830bc894c89659",
            hub(
                "meta-llama/Llama-3.1-8B-Instruct",
                Some("0e9e39f249a16976918f6564b8830bc894c89659"),
            ),
        );
        check("org/name@refs/pr/12", hub("org/name", Some("refs/pr/12")));
        check("org/name@v1.0_rc-2", hub("org/name", Some("v1.0_rc-2")));
        check(
            "tokyotech-llm/Llama-3.1-Swallow-8B-Instruct-v0.3",
            hub("tokyotech-llm/Llama-3.1-Swallow-8B-Instruct-v0.3", None),
        );
    }

    #[test]
    fn hub_gguf_forms() {
        check(
            "Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q8_0.gguf",
            hub_gguf(
                "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                None,
                "qwen2.5-0.5b-instruct-q8_0.gguf",
            ),
        );
        check(
            "bartowski/X-GGUF@abc:sub/dir/X-Q4_K_M.GGUF",
            hub_gguf("bartowski/X-GGUF", Some("abc"), "sub/dir/X-Q4_K_M.GGUF"),
        );
    }

    #[test]
    fn synthetic_forms() {
        check(
            "synthetic:qwen2.5-0.5b",
            ModelRef::Synthetic("qwen2.5-0.5b".into()),
        );
        check(
            "synthetic:./configs/tiny.json",
            ModelRef::Synthetic("./configs/tiny.json".into()),
        );
    }

    #[test]
    fn local_forms_and_existing_paths_win() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("org").join("name");
        std::fs::create_dir_all(&dir).unwrap();
        let gguf = tmp.path().join("m.gguf");
        std::fs::write(&gguf, b"GGUF").unwrap();
        check(dir.to_str().unwrap(), ModelRef::LocalDir(dir.clone()));
        check(gguf.to_str().unwrap(), ModelRef::GgufFile(gguf.clone()));
        // A relative path that also looks like `org/name` is local when it exists (under the
        // directory relative paths start from), and hub syntax when it does not.
        assert_eq!(
            parse_in("org/name", tmp.path()).unwrap(),
            ModelRef::LocalDir(PathBuf::from("org/name"))
        );
        assert!(parse_in("org/name.gguf", tmp.path())
            .unwrap_err()
            .to_string()
            .contains("org/name.gguf"));
        std::fs::write(tmp.path().join("org/x.gguf"), b"GGUF").unwrap();
        assert_eq!(
            parse_in("org/x.gguf", tmp.path()).unwrap(),
            ModelRef::GgufFile(PathBuf::from("org/x.gguf"))
        );
        assert_eq!(
            parse_in("org/other", tmp.path()).unwrap(),
            ModelRef::Hub {
                repo: "org/other".into(),
                revision: None
            }
        );
        // `./` forces a local path even when nothing exists.
        assert!(parse_in("./org/other", tmp.path())
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        check(".", ModelRef::LocalDir(PathBuf::from(".")));
    }

    #[test]
    fn errors() {
        check_err("", &["empty", "accepted forms"]);
        check_err("   ", &["empty"]);
        check_err("/org/name", &["does not exist", "/org/name"]);
        check_err(
            "./no/such/dir",
            &["model directory", "./no/such/dir", "does not exist"],
        );
        check_err(
            "./no/such/model.gguf",
            &["GGUF file", "./no/such/model.gguf", "does not exist"],
        );
        check_err("models/missing.gguf", &["GGUF file", "models/missing.gguf"]);
        check_err("/org", &["does not exist"]);
        check_err("gpt2", &["`gpt2`", "org/name", "hakaru models"]);
        check_err("/name", &["does not exist"]);
        check_err("org/", &["name part", "empty", "accepted forms"]);
        check_err("a/b/c", &["exactly one `/`"]);
        check_err("org/na me", &["contains ` `"]);
        check_err("org/na#me", &["contains `#`"]);
        check_err("org/-name", &["must not start or end"]);
        check_err("org/na--me", &["`--`"]);
        check_err("org/name@", &["`@` must be followed by a revision"]);
        check_err("org/name@feat..x", &["not a valid git ref"]);
        check_err("org/name@a b", &["revision `a b`"]);
        check_err("org/name:", &["`:` must be followed by a .gguf"]);
        check_err("org/name:model.safetensors", &["does not end in .gguf"]);
        check_err("org/name@main:../x.gguf", &["plain path"]);
        check_err("org/name@:x.gguf", &["`@` must be followed"]);
        check_err("synthetic:", &["registry name"]);
        check_err(&format!("org/{}", "a".repeat(100)), &["96"]);
    }

    #[test]
    fn a_file_that_is_not_gguf_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("pytorch_model.bin");
        std::fs::write(&f, b"x").unwrap();
        let e = parse(f.to_str().unwrap()).unwrap_err().to_string();
        assert!(
            e.contains("not a .gguf file") && e.contains("pytorch_model.bin"),
            "{e}"
        );
    }

    #[test]
    fn accessors() {
        let r = parse("org/name@dev:x.gguf").unwrap();
        assert_eq!(r.repo(), Some("org/name"));
        assert_eq!(r.revision(), Some("dev"));
        assert!(r.is_hub());
        let r: ModelRef = "synthetic:x".parse().unwrap();
        assert_eq!(r.repo(), None);
        assert!(!r.is_hub());
    }
}
