//! Throughput measurement, shared by `hakaru bench` and throughput suites in `hakaru run`.
//!
//! A plan is a list of tests in the manner of llama-bench: for each depth, one prompt-processing
//! test per prompt size (`pp512`) and one generation test per generation length (`tg128`). Each
//! test runs `warmup` untimed repetitions, then `repetitions` timed ones; every repetition's
//! tokens per second is kept, with the mean, the sample standard deviation (n − 1), the median
//! and the repetitions that lie more than 3 scaled median absolute deviations from the median
//! (flagged, never dropped). pp tests give the time to first token (the prompt's forward pass),
//! tg tests the inter-token latencies, both as p50/p90/p99. Each test records the CPU time other
//! processes used meanwhile and is marked `noisy` above [`provenance::CPU_LOAD_WARN_CORES`].
//!
//! The memory-bandwidth ceiling ([`memory_bandwidth`]) is a multi-threaded sequential read of a
//! buffer of gigabytes ([`bandwidth_buffer_bytes`]); a tg row's `bandwidth.fraction` is its median speed over
//! the speed the ceiling allows for the bytes one token reads (weights plus the KV cache at the
//! test's depth). Where the ceiling is measured rather than given, it is read again right after
//! each tg test, and the row is compared with the higher of the readings before and after it
//! (both kept in `bandwidth.readings_gb_s`): on a machine whose memory others share, one
//! reading taken minutes earlier could be a fifth higher or lower than the test's conditions.

use std::time::Instant;

use hakaru_engine::backend::Backend;
use hakaru_engine::bench::BenchTest;
use hakaru_types::{BandwidthUse, BenchRow, Cost, Energy, Latency};

use crate::provenance;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPlan {
    pub prompts: Vec<usize>,
    pub gens: Vec<usize>,
    pub depths: Vec<usize>,
    /// Prompt-then-generation tests: (prompt, gen).
    pub pgs: Vec<(usize, usize)>,
    pub repetitions: usize,
    pub warmup: usize,
    pub seed: u64,
    /// Requests at once, each test run at each (above 1: an endpoint's).
    pub concurrency: Vec<usize>,
}

impl Default for BenchPlan {
    fn default() -> Self {
        BenchPlan {
            prompts: vec![512],
            gens: vec![128],
            depths: vec![0],
            pgs: Vec::new(),
            repetitions: 5,
            warmup: 1,
            seed: 0,
            concurrency: vec![1],
        }
    }
}

/// An hourly price to turn speed into cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub name: String,
    pub provider: Option<String>,
    pub usd_per_hour: f64,
    pub source: Option<String>,
    pub date: Option<String>,
}

/// What every row shares: the machine, the model, and what turns speed into cost.
#[derive(Debug, Clone, Default)]
pub struct BenchContext {
    /// API prices recorded beside each cost.
    pub api_prices: Vec<hakaru_types::ApiPriceAnchor>,
    pub load_seconds: Option<f64>,
    /// Memory bandwidth, GB/s: measured (the latest reading) or given.
    pub ceiling_gb_s: Option<f64>,
    /// How the ceiling was measured, where it was: each generation test then reads it again
    /// right after its repetitions and is compared with the higher of that reading and the one
    /// before, which the new reading replaces for the next test. None where it was given.
    pub ceiling_probe: Option<BandwidthProbe>,
    pub price: Option<Price>,
    pub ja_chars_per_token: Option<f64>,
}

impl BenchPlan {
    /// The plan of a throughput suite.
    pub fn of_suite(t: &hakaru_types::ThroughputSpec, seed: u64) -> BenchPlan {
        BenchPlan {
            prompts: t.prompt.clone(),
            gens: t.gen.clone(),
            depths: t.depth.clone(),
            pgs: t.pg.iter().map(|&[p, n]| (p, n)).collect(),
            repetitions: t.repetitions,
            warmup: t.warmup,
            seed,
            concurrency: t.concurrency.clone(),
        }
    }
}

/// The tests of a plan, in order: for each depth, pp tests, tg tests, then prompt-then-generation
/// tests (llama-bench's order), each at every concurrency in turn.
pub fn tests(plan: &BenchPlan) -> Vec<BenchTest> {
    let one = [1];
    let levels: &[usize] = if plan.concurrency.is_empty() {
        &one
    } else {
        &plan.concurrency
    };
    tests_at_one(plan)
        .into_iter()
        .flat_map(|t| {
            levels.iter().map(move |&c| BenchTest {
                concurrency: c,
                ..t
            })
        })
        .collect()
}

fn tests_at_one(plan: &BenchPlan) -> Vec<BenchTest> {
    let mut v = Vec::new();
    for &depth in &plan.depths {
        for &p in plan.prompts.iter().filter(|&&p| p > 0) {
            v.push(BenchTest {
                depth,
                n_prompt: p,
                n_gen: 0,
                seed: plan.seed,
                concurrency: 1,
            });
        }
        for &n in plan.gens.iter().filter(|&&n| n > 0) {
            v.push(BenchTest {
                depth,
                n_prompt: 0,
                n_gen: n,
                seed: plan.seed,
                concurrency: 1,
            });
        }
        for &(p, n) in plan.pgs.iter().filter(|&&(p, n)| p + n > 0) {
            v.push(BenchTest {
                depth,
                n_prompt: p,
                n_gen: n,
                seed: plan.seed,
                concurrency: 1,
            });
        }
    }
    v
}

/// `pp512`, `tg128`, `pp512+tg128`, `pp512@d4096`, `tg128@c8` (8 requests at once).
pub fn test_name(t: &BenchTest) -> String {
    let mut name = match (t.n_prompt, t.n_gen) {
        (p, 0) => format!("pp{p}"),
        (0, n) => format!("tg{n}"),
        (p, n) => format!("pp{p}+tg{n}"),
    };
    if t.depth > 0 {
        name.push_str(&format!("@d{}", t.depth));
    }
    if t.concurrency > 1 {
        name.push_str(&format!("@c{}", t.concurrency));
    }
    name
}

/// Mean, sample standard deviation (n − 1), median.
pub fn stats(xs: &[f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = if xs.len() > 1 {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd, quantile(xs, 0.5))
}

/// The `q` quantile by linear interpolation between closest ranks (numpy's default).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Indices of values more than 3 scaled MADs (1.4826 × median absolute deviation) from the
/// median. None when the MAD is 0.
pub fn outliers(xs: &[f64]) -> Vec<usize> {
    let med = quantile(xs, 0.5);
    let dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
    let mad = 1.4826 * quantile(&dev, 0.5);
    if mad <= 0.0 || !mad.is_finite() {
        return Vec::new();
    }
    dev.iter()
        .enumerate()
        .filter(|(_, d)| **d > 3.0 * mad)
        .map(|(i, _)| i)
        .collect()
}

/// p50/p90/p99 of latencies given in seconds, in milliseconds.
pub fn latency(secs: &[f64]) -> Option<Latency> {
    if secs.is_empty() {
        return None;
    }
    let ms: Vec<f64> = secs.iter().map(|s| s * 1e3).collect();
    Some(Latency {
        p50: quantile(&ms, 0.5),
        p90: quantile(&ms, 0.9),
        p99: quantile(&ms, 0.99),
        n: ms.len(),
    })
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes, leaving out the buffer of
/// [`memory_bandwidth`] (gigabytes, which would otherwise be every row's peak).
pub fn peak_rss() -> Option<u64> {
    let hwm = vm_hwm()?;
    Some(hwm.max(PEAK_BEFORE_RESET.load(std::sync::atomic::Ordering::Relaxed)))
}

/// The peak before [`memory_bandwidth`] last reset `VmHWM`.
static PEAK_BEFORE_RESET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn vm_hwm() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Run `f` (which allocates and frees a large buffer) without it counting in [`peak_rss`]:
/// the peak before is kept, and Linux's `VmHWM` is reset afterwards (`5` into
/// `/proc/self/clear_refs`) so that it tracks from there. Where the reset is not possible the
/// peak includes the buffer.
fn outside_peak<R>(f: impl FnOnce() -> R) -> R {
    let before = vm_hwm();
    let r = f();
    if let Some(b) = before {
        if std::fs::write("/proc/self/clear_refs", "5").is_ok() {
            PEAK_BEFORE_RESET.fetch_max(b, std::sync::atomic::Ordering::Relaxed);
        }
    }
    r
}

/// How many bytes [`memory_bandwidth`] should read for the ceiling: 4 GiB, or a quarter of the
/// memory available now where that is less, and never under 256 MiB; 64 MiB in debug builds
/// (whose figures mean nothing, and whose tests should not hold gigabytes). Far larger than any
/// cache is not enough: on the development machine (a 480 MiB last-level cache reported) a
/// 256 MiB buffer read about 25 or about 35 GB/s from one run to the next, back to back, while
/// 4 GiB read 32.3–33.5 GB/s each time (benches/README.md).
pub fn bandwidth_buffer_bytes() -> usize {
    const MIN: usize = 256 << 20;
    const MAX: usize = 4 << 30;
    if cfg!(debug_assertions) {
        return 64 << 20;
    }
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let available = usize::try_from(sys.available_memory()).unwrap_or(usize::MAX);
    (available / 4).clamp(MIN, MAX)
}

/// How to read the memory bandwidth: a buffer of `bytes`, `threads` threads, the best of
/// `passes` passes ([`memory_bandwidth`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandwidthProbe {
    pub bytes: usize,
    pub threads: usize,
    pub passes: usize,
}

impl BandwidthProbe {
    /// The buffer [`bandwidth_buffer_bytes`] chooses, on `threads` threads.
    pub fn new(threads: usize, passes: usize) -> BandwidthProbe {
        BandwidthProbe {
            bytes: bandwidth_buffer_bytes(),
            threads,
            passes,
        }
    }

    /// One reading, GB/s.
    pub fn read(&self) -> f64 {
        memory_bandwidth(self.bytes, self.threads, self.passes)
    }
}

/// The machine's memory read bandwidth in GB/s (10⁹ bytes per second): `threads` threads each
/// sum their share of a `bytes`-byte buffer; the best of `reps` passes. Written by hand (a few
/// lines of std threads) because the point is to measure plain loads, not a library's kernel.
/// The buffer does not count in [`peak_rss`].
pub fn memory_bandwidth(bytes: usize, threads: usize, reps: usize) -> f64 {
    outside_peak(|| read_bandwidth(bytes, threads, reps))
}

fn read_bandwidth(bytes: usize, threads: usize, reps: usize) -> f64 {
    let words = (bytes / 8).max(threads.max(1) * 1024);
    // In huge pages where the system gives them, as the weights the ceiling is compared with are
    // (hakaru_engine::pages): in 4 KiB pages the same loop reads slower, which is the pages'
    // cost, not the memory's (benches/README.md, "Huge pages").
    let mut buf = hakaru_engine::pages::zeroed_vec::<u64>(words);
    // Not zeros: a page of zeros may be the shared zero page, never read from memory.
    for (i, w) in buf.iter_mut().enumerate() {
        *w = (i as u64).wrapping_mul(0x9E37_79B9);
    }
    let buf = &buf;
    let threads = threads.max(1);
    let chunk = words.div_ceil(threads);
    let mut best = 0.0f64;
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(chunk)
                .map(|c| s.spawn(move || sum_words(c)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0, u64::wrapping_add)
        });
        let secs = t0.elapsed().as_secs_f64();
        std::hint::black_box(total);
        best = best.max((words * 8) as f64 / secs / 1e9);
    }
    best
}

/// Wrapping sum of `c`: eight accumulators keep the adds off one dependency chain so that the
/// loads, not the adds, set the pace.
#[inline(always)]
fn sum_portable(c: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    for q in c.chunks_exact(8) {
        for k in 0..8 {
            acc[k] = acc[k].wrapping_add(q[k]);
        }
    }
    acc.iter().fold(0u64, |a, b| a.wrapping_add(*b))
}

/// The same loop compiled for AVX2 (32-byte loads), which a single core needs to draw its share
/// of the bandwidth; chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_avx2(c: &[u64]) -> u64 {
    sum_portable(c)
}

fn sum_words(c: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { sum_avx2(c) };
    }
    sum_portable(c)
}

/// A RAPL energy counter (`/sys/class/powercap/intel-rapl:0`), when this machine exposes one
/// readable to this user.
pub struct Rapl {
    path: std::path::PathBuf,
    max_uj: u64,
}

impl Rapl {
    /// The package-0 counter, or why there is none.
    pub fn open() -> Result<Rapl, String> {
        let dir = std::path::Path::new("/sys/class/powercap/intel-rapl:0");
        let path = dir.join("energy_uj");
        let read = |p: &std::path::Path| -> Result<u64, String> {
            std::fs::read_to_string(p)
                .map_err(|e| format!("RAPL not readable ({}: {e})", p.display()))?
                .trim()
                .parse()
                .map_err(|e| format!("RAPL counter {} unreadable: {e}", p.display()))
        };
        read(&path)?;
        let max_uj = read(&dir.join("max_energy_range_uj")).unwrap_or(u64::MAX);
        Ok(Rapl { path, max_uj })
    }

    pub fn read_uj(&self) -> Option<u64> {
        std::fs::read_to_string(&self.path)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Joules between two readings, across one wrap of the counter.
    pub fn joules(&self, before: u64, after: u64) -> f64 {
        let uj = if after >= before {
            after - before
        } else {
            self.max_uj - before + after
        };
        uj as f64 / 1e6
    }
}

/// Characters per token of the backend's tokenizer over the Japanese text of `suites` (every
/// case with `lang = "ja"`: its input and its reference), with the characters counted. `None`
/// when there is no such text or the backend has no tokenizer.
pub fn ja_chars_per_token(
    backend: &dyn Backend,
    suites: &[hakaru_suites::Suite],
) -> Option<(f64, usize)> {
    let (mut chars, mut tokens) = (0usize, 0usize);
    for case in suites.iter().flat_map(|s| &s.cases) {
        if case.lang.as_deref() != Some("ja") {
            continue;
        }
        for text in [&case.input, &case.reference].into_iter().flatten() {
            tokens += backend.count_tokens(text).ok()?;
            chars += text.chars().count();
        }
    }
    (tokens > 0).then(|| (chars as f64 / tokens as f64, chars))
}

/// A GPU's energy counter and this process's memory on it, through NVML (the driver's
/// management library, loaded at run time by nvml-wrapper, so a machine without it only loses
/// these figures). NVML numbers GPUs in PCI order over every GPU, CUDA fastest first within
/// `CUDA_VISIBLE_DEVICES`: the GPU is found by the UUID CUDA gives where there is one.
pub struct GpuMeter {
    nvml: nvml_wrapper::Nvml,
    index: u32,
}

impl GpuMeter {
    /// The meter of device `cuda` or `cuda:N`, found by `uuid` (`GPU-…`) when given, else by
    /// number; or why there is none.
    pub fn open(device: &str, uuid: Option<&str>) -> Result<GpuMeter, String> {
        let index = match device.strip_prefix("cuda") {
            Some("") => 0,
            Some(rest) => rest
                .trim_start_matches(':')
                .parse()
                .map_err(|_| format!("device `{device}` is not cuda:N"))?,
            None => return Err(format!("device `{device}` is not a GPU")),
        };
        let nvml = nvml_wrapper::Nvml::init().map_err(|e| format!("NVML unavailable: {e}"))?;
        let index = match uuid {
            Some(u) => nvml
                .device_by_uuid(u)
                .and_then(|d| d.index())
                .map_err(|e| format!("NVML has no GPU {u}: {e}"))?,
            None => {
                nvml.device_by_index(index)
                    .map_err(|e| format!("NVML has no GPU {index}: {e}"))?;
                index
            }
        };
        Ok(GpuMeter { nvml, index })
    }

    /// The GPU's energy counter, in millijoules since the driver loaded (Volta and newer).
    pub fn energy_mj(&self) -> Result<u64, String> {
        self.nvml
            .device_by_index(self.index)
            .and_then(|d| d.total_energy_consumption())
            .map_err(|e| format!("NVML energy counter: {e}"))
    }

    /// GPU memory this process uses now, in bytes.
    pub fn process_memory(&self) -> Option<u64> {
        let me = std::process::id();
        let procs = self
            .nvml
            .device_by_index(self.index)
            .ok()?
            .running_compute_processes()
            .ok()?;
        procs
            .iter()
            .find(|p| p.pid == me)
            .and_then(|p| match p.used_gpu_memory {
                nvml_wrapper::enums::device::UsedGpuMemory::Used(b) => Some(b),
                _ => None,
            })
    }
}

/// The shortest metered time NVML's energy counter is read over. The driver updates the counter
/// in steps (on an H200, three 15 ms pp512 repetitions read 0 J once and 14–17 J other times), so
/// a shorter test's joules are mostly the step it happened to cross.
pub const NVML_MIN_SECONDS: f64 = 1.0;

/// A GPU row's energy from NVML's `joules` over `seconds` of `tokens`, or why there is none.
pub fn nvml_energy(
    joules: Result<f64, String>,
    seconds: f64,
    tokens: f64,
) -> (Option<Energy>, Option<String>) {
    match joules {
        Ok(j) if seconds < NVML_MIN_SECONDS => (
            None,
            Some(format!(
                "the timed repetitions took {:.0} ms, too short for NVML's energy counter (it moved {j:.1} J); more repetitions (-r) or a longer test give energy",
                seconds * 1e3
            )),
        ),
        Ok(j) => (Some(energy("nvml", j, tokens)), None),
        Err(e) => (None, Some(e)),
    }
}

/// `joules` from `source` over `tokens`, with its Wh per million tokens.
fn energy(source: &str, joules: f64, tokens: f64) -> Energy {
    Energy {
        source: source.into(),
        joules,
        wh_per_million_tokens: joules / 3600.0 / tokens * 1e6,
    }
}

/// A tg row's use of the bandwidth: `median` tokens per second of `bytes` each against the
/// ceiling, the higher of the reading `before` the test and the one `after` it where there is
/// one (both kept), else `before` alone (a given ceiling).
pub fn bandwidth_use(bytes: u64, median: f64, before: f64, after: Option<f64>) -> BandwidthUse {
    let readings: Vec<f64> = after.map_or(Vec::new(), |a| vec![before, a]);
    let ceiling = readings.iter().copied().fold(before, f64::max);
    let ceiling_tps = ceiling * 1e9 / bytes as f64;
    BandwidthUse {
        bytes_per_token: bytes,
        ceiling_gb_s: ceiling,
        readings_gb_s: readings,
        ceiling_tokens_per_s: ceiling_tps,
        fraction: median / ceiling_tps,
    }
}

/// One repetition: one request's timings, or (`concurrency` above 1) every request's and the
/// seconds from the first start to the last end.
fn repetition(
    backend: &mut dyn Backend,
    t: &BenchTest,
) -> hakaru_engine::Result<(Vec<hakaru_engine::bench::BenchTiming>, Option<f64>)> {
    if t.concurrency > 1 {
        let (timings, wall) = backend.bench_concurrent(t)?;
        Ok((timings, Some(wall)))
    } else {
        Ok((vec![backend.bench(t)?], None))
    }
}

/// Run one test with its warm-up and repetitions and make its row.
pub fn run_test(
    backend: &mut dyn Backend,
    test: &BenchTest,
    plan: &BenchPlan,
    cx: &mut BenchContext,
) -> Result<BenchRow, String> {
    let name = test_name(test);
    for w in 0..plan.warmup {
        let mut t = *test;
        t.seed = test.seed.wrapping_add(1000 + w as u64);
        repetition(backend, &t).map_err(|e| format!("{name}: {e}"))?;
    }
    let info = backend.describe();
    // An endpoint's server: its energy, memory and neighbours are not this machine's (a server
    // on this machine would even count as another process's load).
    let remote = info.kind == "endpoint";
    let on_gpu = info.device.starts_with("cuda");
    let gpu = if on_gpu {
        Some(GpuMeter::open(
            &info.device,
            info.gpu.as_ref().and_then(|g| g.uuid.as_deref()),
        ))
    } else {
        None
    };
    let gpu_energy_before = gpu
        .as_ref()
        .and_then(|g| g.as_ref().ok())
        .map(GpuMeter::energy_mj);
    let metered = Instant::now();
    let mut peak_gpu: Option<u64> = None;
    let rapl = Rapl::open();
    let energy_before = rapl.as_ref().ok().and_then(Rapl::read_uj);
    let monitor = provenance::CpuLoadMonitor::start();
    let started_at = provenance::now();
    let mut samples = Vec::new();
    let mut first_token = Vec::new();
    let mut steps = Vec::new();
    for r in 0..plan.repetitions.max(1) {
        let mut t = *test;
        t.seed = test.seed.wrapping_add(r as u64);
        let (timings, wall) = repetition(backend, &t).map_err(|e| format!("{name}: {e}"))?;
        if let Some(m) = gpu
            .as_ref()
            .and_then(|g| g.as_ref().ok())
            .and_then(GpuMeter::process_memory)
        {
            peak_gpu = Some(peak_gpu.map_or(m, |p| p.max(m)));
        }
        // Tokens over the time of the prompt's pass and the steps: pp, tg, or both (pp+tg,
        // as llama-bench counts it). Concurrent requests: all their tokens over the time from
        // the first start to the last end, which holds each request's first token too (after a
        // one-token prompt in a tg test, so that token is counted there).
        let first = usize::from(wall.is_some() && test.n_prompt == 0);
        let tokens: usize = timings
            .iter()
            .map(|x| test.n_prompt + x.step_seconds.len() + first)
            .sum();
        let seconds = wall.unwrap_or_else(|| {
            let x = &timings[0];
            x.prompt_seconds.unwrap_or(0.0) + x.step_seconds.iter().sum::<f64>()
        });
        samples.push(tokens as f64 / seconds.max(1e-12));
        for x in timings {
            first_token.extend(x.prompt_seconds);
            steps.extend(x.step_seconds);
        }
    }
    let (cores, _) = monitor.finish();
    let energy_after = rapl.as_ref().ok().and_then(Rapl::read_uj);
    let (mean, sd, median) = stats(&samples);
    let tokens =
        (test.n_prompt + test.n_gen) as f64 * test.concurrency.max(1) as f64 * samples.len() as f64;
    let metered = metered.elapsed().as_secs_f64();
    let gpu_energy = match (&gpu, gpu_energy_before) {
        (Some(Ok(g)), Some(Ok(before))) => g
            .energy_mj()
            .map(|after| after.saturating_sub(before) as f64 / 1e3),
        (Some(Ok(_)), Some(Err(e))) => Err(e),
        (Some(Err(e)), _) => Err(e.clone()),
        _ => Err("no GPU".into()),
    };
    let (energy, energy_note) = match (&rapl, energy_before, energy_after) {
        _ if remote => (
            None,
            Some("the endpoint's hardware cannot be read from here".into()),
        ),
        _ if on_gpu => nvml_energy(gpu_energy, metered, tokens),
        (Ok(r), Some(a), Some(b)) => (Some(energy("rapl", r.joules(a, b), tokens)), None),
        (Err(e), _, _) => (None, Some(e.clone())),
        _ => (None, Some("the RAPL counter could not be read".into())),
    };
    let bandwidth = match cx.ceiling_gb_s {
        // Generation alone: a pp+tg row's speed mixes in the prompt's pass.
        Some(before) if test.n_gen > 0 && test.n_prompt == 0 && info.weight_bytes_per_token > 0 => {
            let bytes = info.weight_bytes_per_token
                + info.kv_bytes_per_position * (test.depth as u64 + test.n_gen as u64 / 2);
            // Read again now that the test is over (after the CPU-load monitor and the energy
            // counters stopped): the higher reading is the ceiling.
            let after = cx.ceiling_probe.map(|p| p.read());
            if after.is_some() {
                cx.ceiling_gb_s = after;
            }
            Some(bandwidth_use(bytes, median, before, after))
        }
        _ => None,
    };
    let cost = cx.price.as_ref().map(|p| {
        let usd_per_token = p.usd_per_hour / 3600.0 / median;
        Cost {
            price_name: p.name.clone(),
            provider: p.provider.clone(),
            usd_per_hour: p.usd_per_hour,
            source: p.source.clone(),
            date: p.date.clone(),
            usd_per_million_tokens: usd_per_token * 1e6,
            tokens_per_usd: 1.0 / usd_per_token,
            ja_chars_per_token: cx.ja_chars_per_token,
            usd_per_million_ja_chars: cx.ja_chars_per_token.map(|c| usd_per_token / c * 1e6),
            api_prices: cx.api_prices.clone(),
        }
    });
    Ok(BenchRow {
        suite: None,
        test: name,
        n_prompt: test.n_prompt,
        n_gen: test.n_gen,
        depth: test.depth,
        concurrency: test.concurrency.max(1),
        warmup: plan.warmup,
        outliers: outliers(&samples),
        samples,
        mean,
        sd,
        median,
        ttft_ms: latency(&first_token),
        itl_ms: latency(&steps),
        load_seconds: cx.load_seconds,
        peak_rss_bytes: if remote { None } else { peak_rss() },
        peak_gpu_bytes: peak_gpu,
        other_cpu_percent: (!remote).then_some(cores * 100.0),
        noisy: !remote && cores > provenance::CPU_LOAD_WARN_CORES,
        bandwidth,
        energy,
        energy_note,
        cost,
        harness: provenance::harness(&info.features),
        host: provenance::host(),
        device: provenance::device(&info),
        model: provenance::model(&info),
        seed: test.seed,
        started_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let (mean, sd, median) = stats(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!((mean, median), (5.0, 4.5));
        // Sample sd (n − 1): sqrt(32 / 7).
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(stats(&[3.0]), (3.0, 0.0, 3.0));
        // numpy.percentile([1, 2, 3, 4], 90) = 3.7
        assert!((quantile(&[4.0, 1.0, 3.0, 2.0], 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(outliers(&[10.0, 10.1, 9.9, 10.0, 30.0]), vec![4]);
        assert!(outliers(&[1.0, 1.0, 1.0]).is_empty());
        let l = latency(&[0.001, 0.002, 0.003]).unwrap();
        assert_eq!((l.p50, l.n), (2.0, 3));
        assert!(latency(&[]).is_none());
    }

    #[test]
    fn bandwidth_share_is_against_the_higher_reading() {
        // 1 GB a token: 20 GB/s allows 20 tokens/s.
        for (before, after) in [(16.0, 20.0), (20.0, 16.0)] {
            let b = bandwidth_use(1_000_000_000, 15.0, before, Some(after));
            assert_eq!(b.readings_gb_s, vec![before, after]);
            assert_eq!((b.ceiling_gb_s, b.ceiling_tokens_per_s), (20.0, 20.0));
            assert!((b.fraction - 0.75).abs() < 1e-12);
            assert!(b.unsteady(), "20% apart");
        }
        let given = bandwidth_use(1_000_000_000, 15.0, 30.0, None);
        assert!(given.readings_gb_s.is_empty() && given.ceiling_gb_s == 30.0);
        assert!((given.fraction - 0.5).abs() < 1e-12);
    }

    /// On a machine with an NVIDIA GPU: NVML's energy counter over two idle seconds, as a
    /// bench row reads it. `cargo test -p hakaru-runner --lib -- --ignored nvml --nocapture`.
    #[test]
    #[ignore = "needs an NVIDIA GPU and its driver"]
    fn nvml_energy_counter_reads_on_a_gpu() {
        let g = GpuMeter::open("cuda:0", None).unwrap();
        let name = g.nvml.device_by_index(0).and_then(|d| d.name()).unwrap();
        let before = g.energy_mj().unwrap();
        let t0 = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let after = g.energy_mj().unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let joules = after.saturating_sub(before) as f64 / 1e3;
        println!(
            "{name}: {joules:.1} J in {secs:.2} s ({:.1} W); this process's GPU memory: {:?}",
            joules / secs,
            g.process_memory()
        );
        // An idle GPU still draws tens of watts: the counter moves.
        assert!(after > before, "{before} → {after} mJ");
        match GpuMeter::open("cuda:99", None) {
            Err(e) => assert!(e.contains("NVML has no GPU 99"), "{e}"),
            Ok(_) => panic!("a 100th GPU"),
        }
        // Found by UUID whatever number CUDA gave it.
        let uuid = g.nvml.device_by_index(0).and_then(|d| d.uuid()).unwrap();
        println!("GPU 0 is {uuid}");
        assert_eq!(GpuMeter::open("cuda:7", Some(&uuid)).unwrap().index, 0);
        let none = "GPU-00000000-0000-0000-0000-000000000000";
        match GpuMeter::open("cuda:0", Some(none)) {
            Err(e) => assert!(e.contains(none), "{e}"),
            Ok(_) => panic!("a GPU of UUID {none}"),
        }
    }

    #[test]
    fn nvml_energy_needs_a_second_of_metering() {
        let (e, note) = nvml_energy(Ok(16.7), 0.045, 1536.0);
        assert!(e.is_none());
        let note = note.unwrap();
        assert!(note.contains("45 ms") && note.contains("16.7 J"), "{note}");
        let (e, note) = nvml_energy(Ok(618.3), 4.5, 384.0);
        let e = e.unwrap();
        assert_eq!(note, None);
        assert_eq!(e.source, "nvml");
        // 618.3 J over 384 tokens: 1.61 J a token, 447.3 Wh per million.
        assert!((e.wh_per_million_tokens - 618.3 / 3600.0 / 384.0 * 1e6).abs() < 1e-9);
        assert!((e.wh_per_million_tokens - 447.27).abs() < 0.01);
        let (e, note) = nvml_energy(Err("NVML unavailable".into()), 9.0, 1.0);
        assert!(e.is_none());
        assert_eq!(note.as_deref(), Some("NVML unavailable"));
    }

    #[test]
    fn tests_follow_llama_bench() {
        let plan = BenchPlan {
            prompts: vec![512, 0],
            gens: vec![128, 32],
            depths: vec![0, 4096],
            pgs: vec![(512, 128)],
            ..Default::default()
        };
        let names: Vec<String> = tests(&plan).iter().map(test_name).collect();
        assert_eq!(
            names,
            [
                "pp512",
                "tg128",
                "tg32",
                "pp512+tg128",
                "pp512@d4096",
                "tg128@d4096",
                "tg32@d4096",
                "pp512+tg128@d4096"
            ]
        );
        let pg = tests(&plan)[3];
        assert_eq!((pg.n_prompt, pg.n_gen, pg.depth), (512, 128, 0));
        // A suite's `pg = [[512, 128]]` is the same plan.
        let spec: hakaru_types::ThroughputSpec = toml::from_str(
            "prompt = [512, 0]\ngen = [128, 32]\ndepth = [0, 4096]\npg = [[512, 128]]",
        )
        .unwrap();
        assert_eq!(
            BenchPlan::of_suite(&spec, 0),
            BenchPlan {
                repetitions: 5,
                ..plan.clone()
            }
        );
        // Each test at each concurrency in turn.
        let plan = BenchPlan {
            prompts: vec![512],
            gens: vec![128],
            concurrency: vec![1, 8],
            ..Default::default()
        };
        let names: Vec<String> = tests(&plan).iter().map(test_name).collect();
        assert_eq!(names, ["pp512", "pp512@c8", "tg128", "tg128@c8"]);
        assert_eq!(tests(&plan)[3].concurrency, 8);
        // A suite's `concurrency = [1, 8]` is the same plan.
        let spec: hakaru_types::ThroughputSpec =
            toml::from_str("prompt = [512]\ngen = [128]\nconcurrency = [1, 8]").unwrap();
        assert_eq!(BenchPlan::of_suite(&spec, 0), plan);
    }

    #[test]
    fn bandwidth_is_positive_and_rapl_reports_why_it_is_absent() {
        let gb = memory_bandwidth(8 << 20, 2, 2);
        assert!(gb.is_finite() && gb > 0.0, "{gb}");
        match Rapl::open() {
            Ok(r) => assert!(r.read_uj().is_some()),
            Err(e) => assert!(e.contains("RAPL"), "{e}"),
        }
        assert!(GpuMeter::open("cpu", None)
            .err()
            .unwrap()
            .contains("not a GPU"));
        assert!(GpuMeter::open("cuda:x", None)
            .err()
            .unwrap()
            .contains("not cuda:N"));
        match GpuMeter::open("cuda:0", None) {
            Ok(g) => assert!(g.energy_mj().is_ok() || g.energy_mj().unwrap_err().contains("NVML")),
            Err(e) => assert!(e.contains("NVML"), "{e}"),
        }
        let r = Rapl {
            path: "/nonexistent".into(),
            max_uj: 1000,
        };
        assert_eq!(r.joules(900, 100), 200.0 / 1e6);
        assert_eq!(r.joules(100, 300), 200.0 / 1e6);
    }
}
