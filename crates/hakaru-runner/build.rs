//! Records the git commit and whether the tree was dirty when hakaru was built, for run
//! provenance (`HAKARU_GIT_SHA`, `HAKARU_GIT_DIRTY`; empty outside a git checkout or without git).
//!
//! Re-run when HEAD moves, the index changes, or any source the binary is built from changes
//! (so the dirty flag follows edits to the crates, the manifests and the model registry).

use std::path::Path;
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = Path::new(&manifest).join("../..");
    for p in [
        ".git/HEAD",
        ".git/index",
        ".git/refs",
        "crates",
        "Cargo.toml",
        "Cargo.lock",
        "models.toml",
    ] {
        let path = root.join(p);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let sha = git(&root, &["rev-parse", "HEAD"])
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() == 40);
    let dirty = sha
        .as_ref()
        .and_then(|_| git(&root, &["status", "--porcelain"]).map(|s| !s.trim().is_empty()));
    println!("cargo:rustc-env=HAKARU_GIT_SHA={}", sha.unwrap_or_default());
    println!(
        "cargo:rustc-env=HAKARU_GIT_DIRTY={}",
        dirty.map(|d| d.to_string()).unwrap_or_default()
    );
}
