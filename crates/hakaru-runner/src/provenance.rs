//! Where a run happened: harness build, host, device, model; timestamps and run ids; the load
//! other processes put on the CPU while the run was timing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hakaru_engine::backend::BackendInfo;
use hakaru_types::{DeviceInfo, FileInfo, HarnessInfo, HostInfo, ModelInfo};
use sha2::{Digest, Sha256};

/// hakaru's version, the commit it was built from and whether the tree was dirty (from build.rs),
/// and the cargo features compiled in.
pub fn harness(features: &[String]) -> HarnessInfo {
    let sha = env!("HAKARU_GIT_SHA");
    let dirty = env!("HAKARU_GIT_DIRTY");
    HarnessInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_sha: (!sha.is_empty()).then(|| sha.to_string()),
        git_dirty: match dirty {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        features: features.to_vec(),
    }
}

/// OS, kernel, CPU model, logical cores and memory of this machine.
pub fn host() -> HostInfo {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    let cpu_model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty());
    let cores = if sys.cpus().is_empty() {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        sys.cpus().len()
    };
    HostInfo {
        os: System::long_os_version()
            .or_else(System::name)
            .unwrap_or_else(|| std::env::consts::OS.to_string()),
        kernel: System::kernel_version(),
        cpu_model,
        cpu_cores: cores,
        memory_bytes: sys.total_memory(),
    }
}

/// The CPU threads a model runs on: `RAYON_NUM_THREADS` (set by `--threads`, and by the CLI at
/// start-up), else the logical CPUs.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The device part of provenance, from the backend.
pub fn device(info: &BackendInfo) -> DeviceInfo {
    let threads = (info.device == "cpu").then(cpu_threads);
    DeviceInfo {
        name: info.device.clone(),
        gpu: info.gpu.as_ref().and_then(|g| g.name.clone()),
        memory_bytes: info.gpu.as_ref().and_then(|g| g.memory_bytes),
        driver_version: info.gpu.as_ref().and_then(|g| g.driver_version.clone()),
        cuda_version: info.gpu.as_ref().and_then(|g| g.cuda_version.clone()),
        threads,
        kernels: info.kernels.clone(),
    }
}

/// The model part of provenance, from the backend.
pub fn model(info: &BackendInfo) -> ModelInfo {
    ModelInfo {
        reference: info.reference.clone(),
        kind: info.kind.clone(),
        repo: info.repo.clone(),
        requested_revision: info.requested_revision.clone(),
        commit_sha: info.commit_sha.clone(),
        files: info
            .files
            .iter()
            .map(|f| FileInfo {
                name: f.name.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
            })
            .collect(),
        architecture: info.architecture.clone(),
        weights: info.weights.clone(),
        parameters: info.parameters,
        tokenizer_sha256: info.tokenizer_sha256.clone(),
        chat_template_sha256: info.chat_template_sha256.clone(),
    }
}

fn is_commit_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Warnings about how reproducible the run is, known before it starts.
pub fn start_warnings(harness: &HarnessInfo, model: &ModelInfo) -> Vec<String> {
    let mut w = Vec::new();
    if cfg!(debug_assertions) {
        w.push("this hakaru is a debug build: its timings are far slower than the machine can do; install it with `cargo install --path crates/hakaru-cli` for timings".into());
    }
    if let (Some(repo), Some(rev)) = (&model.repo, &model.requested_revision) {
        if !is_commit_sha(rev) {
            let pinned = model
                .commit_sha
                .as_deref()
                .map(|c| format!("; it resolved to {c}: pin it as `{repo}@{c}` to run this exact model again"))
                .unwrap_or_default();
            w.push(format!(
                "model revision `{rev}` of {repo} is a branch or tag, not a commit, and may move{pinned}"
            ));
        }
    }
    if harness.git_dirty == Some(true) {
        w.push(format!(
            "hakaru was built from a git tree with uncommitted changes, so git sha {} does not fully describe the code that ran; commit and rebuild for a reproducible run",
            harness.git_sha.as_deref().unwrap_or("?")
        ));
    }
    w
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    (
        y,
        mo,
        da,
        (s / 3600) as u32,
        (s / 60 % 60) as u32,
        (s % 60) as u32,
        d.subsec_millis(),
    )
}

/// RFC 3339 in UTC with milliseconds: `2025-01-31T08:15:02.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// Compact UTC timestamp for file names: `20250131T081502Z`.
pub fn compact(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = parts(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// A short, file-name-safe name for a model: the repo's name, a path's last component, or the
/// reference, with anything but `A-Za-z0-9._-` turned into `-`.
pub fn model_short_name(info: &BackendInfo) -> String {
    let base = if let Some(repo) = &info.repo {
        let name = repo.rsplit('/').next().unwrap_or(repo);
        match info.files.iter().find(|f| f.name.ends_with(".gguf")) {
            Some(g) if info.kind == "gguf" => {
                let stem = g.name.rsplit('/').next().unwrap_or(&g.name);
                stem.trim_end_matches(".gguf").to_string()
            }
            _ => name.to_string(),
        }
    } else if let Some(spec) = info.reference.strip_prefix("synthetic:") {
        let last = spec
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(spec);
        format!("synthetic-{}", last.trim_end_matches(".json"))
    } else {
        let r = info.reference.trim_end_matches(['/', '\\']);
        let last = r.rsplit(['/', '\\']).next().unwrap_or(r);
        last.trim_end_matches(".gguf").to_string()
    };
    let mut s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches(['-', '.']).to_string();
    s.truncate(48);
    if s.is_empty() {
        "model".into()
    } else {
        s
    }
}

/// `<UTC timestamp>-<model short name>-<6 hex>`; the hex comes from the clock, the process id
/// and `salt`, so two runs started in the same second get different ids.
pub fn run_id(t: SystemTime, short_name: &str, salt: u64) -> String {
    let mut h = Sha256::new();
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(salt.to_le_bytes());
    h.update(short_name.as_bytes());
    let d = h.finalize();
    format!("{}-{short_name}-{}", compact(t), hex::encode(&d[..3]))
}

/// CPU time other processes use while the run is timing.
///
/// On Linux: the whole machine's busy CPU time (`/proc/stat`) minus this process's own
/// (`/proc/self/stat`) between [`start`](Self::start) and [`finish`](Self::finish), so short-lived
/// processes (a compiler invoked by a build) count too. Elsewhere: every other process's
/// accumulated CPU time at both instants (sysinfo); processes that start during the run count in
/// full, processes that end during it are missed (an under-estimate).
pub struct CpuLoadMonitor {
    start: std::time::Instant,
    before: CpuSnapshot,
}

enum CpuSnapshot {
    /// Busy ticks of the machine and of this process (USER_HZ ticks).
    Ticks {
        machine: u64,
        own: u64,
    },
    PerProcess(std::collections::HashMap<sysinfo::Pid, u64>),
}

/// Linux's USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times on every architecture
/// Linux supports today.
const USER_HZ: f64 = 100.0;

fn proc_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| f.get(i).copied().unwrap_or(0))
        .sum();
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest: Vec<&str> = me[me.rfind(')')? + 1..].split_whitespace().collect();
    let own = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some((busy, own))
}

fn other_cpu_times() -> std::collections::HashMap<sysinfo::Pid, u64> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_cpu(),
    );
    let me = sysinfo::Pid::from_u32(std::process::id());
    sys.processes()
        .iter()
        .filter(|(pid, p)| **pid != me && p.thread_kind().is_none())
        .map(|(pid, p)| (*pid, p.accumulated_cpu_time()))
        .collect()
}

fn snapshot() -> CpuSnapshot {
    match proc_ticks() {
        Some((machine, own)) => CpuSnapshot::Ticks { machine, own },
        None => CpuSnapshot::PerProcess(other_cpu_times()),
    }
}

/// Other processes using more than this share of one core on average make timings suspect.
pub const CPU_LOAD_WARN_CORES: f64 = 0.10;

impl CpuLoadMonitor {
    pub fn start() -> Self {
        CpuLoadMonitor {
            start: std::time::Instant::now(),
            before: snapshot(),
        }
    }

    /// Average cores' worth of CPU other processes used since `start`, with the wall seconds.
    pub fn finish(&self) -> (f64, f64) {
        let wall = self.start.elapsed().as_secs_f64();
        let other_secs = match (&self.before, snapshot()) {
            (
                CpuSnapshot::Ticks { machine, own },
                CpuSnapshot::Ticks {
                    machine: m2,
                    own: o2,
                },
            ) => {
                m2.saturating_sub(*machine)
                    .saturating_sub(o2.saturating_sub(*own)) as f64
                    / USER_HZ
            }
            (CpuSnapshot::PerProcess(before), CpuSnapshot::PerProcess(after)) => {
                let ms: u64 = after
                    .iter()
                    .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
                    .sum();
                ms as f64 / 1000.0
            }
            _ => 0.0,
        };
        let cores = if wall > 0.0 { other_secs / wall } else { 0.0 };
        (cores, wall)
    }

    /// A warning when other processes used more than [`CPU_LOAD_WARN_CORES`].
    pub fn warning(&self) -> Option<String> {
        let (cores, wall) = self.finish();
        (cores > CPU_LOAD_WARN_CORES).then(|| {
            format!(
                "other processes used {:.0}% of a CPU core on average during {:.1} s of measurement; timings may be slower than this machine can do; rerun on an idle machine for timings",
                cores * 100.0,
                wall
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_738_311_302_123);
        assert_eq!(rfc3339(t), "2025-01-31T08:15:02.123Z");
        assert_eq!(compact(t), "20250131T081502Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }

    fn info(reference: &str, kind: &str, repo: Option<&str>, files: &[&str]) -> BackendInfo {
        BackendInfo {
            reference: reference.into(),
            kind: kind.into(),
            repo: repo.map(str::to_string),
            requested_revision: None,
            commit_sha: None,
            files: files
                .iter()
                .map(|n| hakaru_engine::backend::BackendFile {
                    name: n.to_string(),
                    size: 0,
                    sha256: String::new(),
                })
                .collect(),
            architecture: String::new(),
            weights: String::new(),
            parameters: 0,
            tokenizer_sha256: None,
            chat_template_sha256: None,
            max_positions: 0,
            device: "cpu".into(),
            gpu: None,
            features: vec![],
            notes: vec![],
            weight_bytes_per_token: 0,
            kv_bytes_per_position: 0,
            kernels: None,
        }
    }

    #[test]
    fn short_names_are_file_name_safe() {
        for (i, want) in [
            (
                info(
                    "Qwen/Qwen2.5-0.5B-Instruct",
                    "hub",
                    Some("Qwen/Qwen2.5-0.5B-Instruct"),
                    &[],
                ),
                "Qwen2.5-0.5B-Instruct",
            ),
            (
                info(
                    "q:x",
                    "gguf",
                    Some("Qwen/Qwen2.5-7B-Instruct-GGUF"),
                    &["qwen2.5-7b-instruct-q4_k_m.gguf"],
                ),
                "qwen2.5-7b-instruct-q4_k_m",
            ),
            (
                info("synthetic:qwen2.5-0.5b", "synthetic", None, &[]),
                "synthetic-qwen2.5-0.5b",
            ),
            (info("/tmp/x/tiny-qwen2/", "local", None, &[]), "tiny-qwen2"),
            (
                info("./m/my model:v1.gguf", "gguf", None, &[]),
                "my-model-v1",
            ),
            (info("???", "local", None, &[]), "model"),
        ] {
            assert_eq!(model_short_name(&i), want);
        }
        let t = UNIX_EPOCH + Duration::from_secs(1_738_311_302);
        let id = run_id(t, "tiny-qwen2", 1);
        assert!(id.starts_with("20250131T081502Z-tiny-qwen2-"), "{id}");
        assert_eq!(id.len(), "20250131T081502Z-tiny-qwen2-".len() + 6);
        assert_ne!(id, run_id(t, "tiny-qwen2", 2));
    }

    #[test]
    fn unpinned_revision_and_dirty_tree_warn() {
        let h = HarnessInfo {
            version: "0".into(),
            git_sha: Some("a".repeat(40)),
            git_dirty: Some(true),
            features: vec![],
        };
        let mut m = model(&info("Qwen/X", "hub", Some("Qwen/X"), &[]));
        m.requested_revision = Some("main".into());
        m.commit_sha = Some("b".repeat(40));
        let mut w = start_warnings(&h, &m);
        // A debug build (the test command's) is warned about first.
        if cfg!(debug_assertions) {
            assert!(w.remove(0).contains("debug build"), "{w:?}");
        }
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("`main`") && w[0].contains(&format!("Qwen/X@{}", "b".repeat(40))),
            "{}",
            w[0]
        );
        assert!(w[1].contains("uncommitted"), "{}", w[1]);
        m.requested_revision = Some("b".repeat(40));
        let clean = HarnessInfo {
            git_dirty: Some(false),
            ..h
        };
        assert_eq!(
            start_warnings(&clean, &m).len(),
            usize::from(cfg!(debug_assertions))
        );
    }

    #[test]
    fn cpu_load_of_another_process_is_seen() {
        let m = CpuLoadMonitor::start();
        // Another process burning one core for 0.6 s.
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "end=$(($(date +%s%N) + 600000000)); while [ $(date +%s%N) -lt $end ]; do :; done",
            ])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            return; // no POSIX shell here
        }
        let (cores, wall) = m.finish();
        assert!(wall >= 0.6);
        assert!(cores > 0.3, "{cores} cores over {wall} s");
        assert!(m.warning().unwrap().starts_with("other processes used"));
    }

    #[test]
    fn host_is_described() {
        let h = host();
        assert!(h.cpu_cores >= 1);
        assert!(h.memory_bytes > 0);
        assert!(!h.os.is_empty());
    }
}
