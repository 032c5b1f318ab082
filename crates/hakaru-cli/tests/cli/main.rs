//! CLI tests: one integration-test binary, one module per command.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod endpoint;
mod generate;
mod models;
mod pull;
mod run;
mod suites;
mod suites_run;
mod template;

/// The `hakaru` binary with a clean, colourless environment.
pub fn hakaru() -> Command {
    let mut cmd = Command::cargo_bin("hakaru").unwrap();
    cmd.env("NO_COLOR", "1")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("RUST_LOG")
        .env_remove("HAKARU_REGISTRY")
        .env_remove("HAKARU_PROMPTS")
        .env_remove("HAKARU_API_KEY")
        .env_remove("OPENAI_API_KEY");
    cmd
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A generated fixture model directory (fixtures/README.md).
pub fn model_dir(name: &str) -> PathBuf {
    let p = root().join("fixtures/models").join(name);
    assert!(
        p.is_dir(),
        "fixture {} is missing; run scripts/make-fixtures.py",
        p.display()
    );
    p
}

/// Write `text` to `path`, making its directories.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
