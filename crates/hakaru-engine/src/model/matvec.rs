//! One token's projections on the CPU: `y = x Wᵀ` for a single row `x`, split across threads by
//! rows of `W`.
//!
//! Why own code: candle's CPU matmul (the gemm crate) runs a `(1, k) × (k, n)` product on one
//! thread, so decoding (one row per step) used one core however many there were. Decoding is
//! bound by memory bandwidth, reading every weight once per token, and one core cannot draw the
//! machine's bandwidth. Here each thread takes a block of rows of `W` (contiguous in memory) and
//! computes their dot products with `x`, accumulating in f32 (bf16 and f16 weights are widened as
//! they are read; no weight-sized buffer is allocated per step), with 32 partial sums per row and
//! prefetching ahead of the rows; on AVX2 CPUs the same code compiled for AVX2. Prefill (many
//! rows) is [`super::matmul`]'s.

use candle_core::{CpuStorage, DType, Storage, Tensor};
use half::{bf16, f16};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::Result;

/// Rows of `W` per parallel task: a few KiB of weights each, enough to amortize scheduling.
const ROWS_PER_TASK: usize = 32;

/// Eight independent partial sums so the compiler vectorizes and pipelines the loop.
#[inline(always)]
pub(crate) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (wc, wr) = w.split_at(w.len() / 8 * 8);
    let (xc, xr) = x.split_at(wc.len());
    for (a, b) in wc.chunks_exact(8).zip(xc.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in wr.iter().zip(xr) {
        s += a * b;
    }
    s
}

/// A weight row of `T` (widened to f32 as it is read) against `x`, for the projections: 32
/// independent partial sums, so that four vectors of eight lanes each add in their own chain.
/// With eight (one chain), every vector of products waited for the previous addition: the
/// projections of bf16 weights read about 6.7 GB/s per thread so (benches/README.md).
/// `ahead` is called with each 32 values' first byte, to prefetch what comes after them.
#[inline(always)]
fn dot_widen<T: Copy>(
    w: &[T],
    x: &[f32],
    widen: impl Fn(T) -> f32,
    ahead: impl Fn(*const u8),
) -> f32 {
    let mut acc = [0f32; 32];
    let (wc, wr) = w.split_at(w.len() / 32 * 32);
    let (xc, xr) = x.split_at(wc.len());
    for (a, b) in wc.chunks_exact(32).zip(xc.chunks_exact(32)) {
        ahead(a.as_ptr() as *const u8);
        for i in 0..32 {
            acc[i] += widen(a[i]) * b[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in wr.iter().zip(xr) {
        s += widen(*a) * b;
    }
    s
}

/// Prefetches for [`dot_widen`] over `bytes`-long chunks, at the distances the regrouped
/// quantized kernels use (1 KiB ahead into L1, 4 KiB into L2). The rows of a task are
/// contiguous, so running past a row's end fetches the next row's start.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_dense(p: *const u8, bytes: usize) {
    // SAFETY: prefetching has no effect on memory, whatever the address.
    unsafe { super::quant::prefetch_grouped(p, bytes) }
}

/// bf16 widened to f32: its 16 bits are the upper half of the f32's. (`half`'s `to_f32` also
/// quiets a NaN's payload, a comparison and a select per value that kept the loop from
/// vectorizing well; a NaN stays a NaN either way.)
#[inline(always)]
fn widen_bf16(v: bf16) -> f32 {
    f32::from_bits((v.to_bits() as u32) << 16)
}

/// f16 widened to f32 exactly, with integer and float arithmetic only, so loops over it
/// vectorize (`half`'s `to_f32` checks for F16C at run time on every value). The exponent and
/// mantissa shifted into an f32's place and multiplied by 2¹¹² (the two formats' exponent bias
/// difference) give every finite value, subnormals included; infinities and NaNs take the
/// all-ones exponent.
#[inline(always)]
fn widen_f16(v: f16) -> f32 {
    let h = v.to_bits() as u32;
    let em = h & 0x7fff;
    let finite = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
    let bits = if em >= 0x7c00 {
        (em << 13) | 0x7f80_0000
    } else {
        finite.to_bits()
    };
    f32::from_bits(bits | ((h & 0x8000) << 16))
}

/// An f32 row against `x` ([`dot_widen`]) compiled for AVX2 (eight lanes where the baseline
/// build has four): the same operations in the same order, so the same result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f32_avx2(w: &[f32], x: &[f32]) -> f32 {
    dot_widen(w, x, |v| v, |p| prefetch_dense(p, 128))
}

/// A bf16 row against f32 values, compiled for AVX2 (see [`dot_f32_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_bf16_avx2(w: &[bf16], x: &[f32]) -> f32 {
    dot_widen(w, x, widen_bf16, |p| prefetch_dense(p, 64))
}

/// An f16 row against f32 values with AVX2 and F16C: [`dot_widen`]'s 32 partial sums as four
/// vectors of eight, each eight weights widened by one `vcvtph2ps` (exact, as `half`'s
/// conversion is), so the same result as the portable build. Written with intrinsics because
/// `half`'s `to_f32` checks for F16C at run time on every value, which no loop vectorizes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_f16c(w: &[f16], x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let x = &x[..w.len()];
    let n = w.len() / 32 * 32;
    let mut acc = [_mm256_setzero_ps(); 4];
    for c in (0..n).step_by(32) {
        prefetch_dense(w.as_ptr().add(c) as *const u8, 64);
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c + 32 <= n <= w.len() == x.len()`.
            let h = _mm_loadu_si128(w.as_ptr().add(c + 8 * j) as *const __m128i);
            let xv = _mm256_loadu_ps(x.as_ptr().add(c + 8 * j));
            *a = _mm256_add_ps(*a, _mm256_mul_ps(_mm256_cvtph_ps(h), xv));
        }
    }
    let mut lanes = [0f32; 32];
    for (j, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(lanes.as_mut_ptr().add(8 * j), *a);
    }
    let mut s: f32 = lanes.iter().sum();
    for (a, b) in w[n..].iter().zip(&x[n..]) {
        s += widen_f16(*a) * b;
    }
    s
}

/// Whether this CPU runs [`dot_f16_f16c`].
fn f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2() && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs the AVX2 builds of the dot products (and of the decoding step's
/// loops).
pub(crate) fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn rows<T: Sync>(w: &[T], k: usize, out: &mut [f32], dot: impl Fn(&[T]) -> f32 + Sync) {
    // One uncontended lock per task hands each its own slice of the output.
    let chunks: Vec<Mutex<&mut [f32]>> = out.chunks_mut(ROWS_PER_TASK).map(Mutex::new).collect();
    one_row_tasks(chunks.len(), |c| {
        let mut o = chunks[c].lock().unwrap_or_else(|e| e.into_inner());
        let first = c * ROWS_PER_TASK;
        for (j, y) in o.iter_mut().enumerate() {
            let r = first + j;
            *y = dot(&w[r * k..(r + 1) * k]);
        }
    });
}

/// Run `f(0)..f(n)` on every thread for one row's projections (a decoding step): on candle's
/// barrier pool (`candle_core::utils::barrier_pool`, sized like rayon's from
/// `RAYON_NUM_THREADS`), whose threads spin for a while after each call before parking and whose
/// caller takes a share. Between a decoding step's projections there are only microseconds of
/// other work; rayon's idle threads fall asleep in such gaps, and each projection began by
/// waking them (a futex call and a context switch per thread: Qwen2.5-0.5B at Q8_0 decoded 29
/// tokens/s that way and 35 on this pool, benches/README.md).
pub(crate) fn one_row_tasks(n: usize, f: impl Fn(usize) + Sync) {
    one_row_tasks_ahead(n, f, &Ahead::none())
}

/// Threads that run [`one_row_tasks`]: the barrier pool's workers and the caller.
pub(crate) fn pool_threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Bytes pulled toward the caches at a time by a thread with nothing else to do.
const AHEAD_STEP: usize = 4096;

/// At most this much of the next weight is pulled ahead: about what the memory delivers while
/// the gaps between a decoding step's projections last, and well within a core's second-level
/// cache.
const AHEAD_MAX: usize = 512 << 10;

thread_local! {
    /// Set while this thread runs work of [`one_row_tasks_ahead`] or [`overlap`], so that a
    /// nested call runs inline instead of waiting on the pool it is part of.
    static IN_POOL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with this thread marked as inside the pool's work.
fn in_pool<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_POOL.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(IN_POOL.with(|c| c.replace(true)));
    f()
}

/// The first bytes of the weight a decoding step reads next, to be pulled into the caches by
/// threads that would otherwise wait: one that has run out of tasks while another finishes its
/// last, and the pool's workers while the calling thread does the serial work between two
/// projections (norms, rotary embedding, attention, SiLU). The memory would idle during those
/// gaps; the next projection then starts on bytes already fetched. Shared by the calls between
/// two projections, so each byte is asked for once.
pub(crate) struct Ahead<'a> {
    bytes: &'a [u8],
    next: AtomicUsize,
}

impl<'a> Ahead<'a> {
    /// Nothing to fetch.
    pub(crate) fn none() -> Ahead<'static> {
        Ahead::new(&[])
    }

    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Ahead {
            bytes: &bytes[..bytes.len().min(AHEAD_MAX)],
            next: AtomicUsize::new(0),
        }
    }

    /// Pull steps of the bytes into the caches while `go()` holds and some are left.
    fn fetch_while(&self, go: impl Fn() -> bool) {
        while go() {
            let at = self.next.fetch_add(AHEAD_STEP, Ordering::Relaxed);
            if at >= self.bytes.len() {
                return;
            }
            prefetch(&self.bytes[at..(at + AHEAD_STEP).min(self.bytes.len())]);
        }
    }
}

/// Ask for every cache line of `b` to be brought into the second-level cache.
#[inline]
fn prefetch(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for o in (0..b.len()).step_by(64) {
        // SAFETY: prefetching has no effect on memory and the address is inside `b`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                b.as_ptr().add(o) as *const i8
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

/// [`one_row_tasks`], a thread that finds no task left pulling `ahead` into the caches until
/// every thread has finished. Tasks are taken from a shared cursor in chunks of half an even
/// share of what is left (guided scheduling), so the chunks shrink toward the end and the
/// threads finish close together: fixed chunks of an eighth of a thread's share left one
/// thread waiting up to a chunk's time at the end of every projection (a decoding step of
/// Qwen2.5-0.5B runs about a hundred), and the output projection's chunks were megabytes.
pub(crate) fn one_row_tasks_ahead(n: usize, f: impl Fn(usize) + Sync, ahead: &Ahead) {
    if n == 0 {
        return;
    }
    if IN_POOL.with(|c| c.get()) {
        (0..n).for_each(f);
        return;
    }
    let pool = candle_core::utils::barrier_pool();
    let threads = pool_threads();
    let cursor = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    pool.execute(|_| {
        in_pool(|| loop {
            let seen = cursor.load(Ordering::Relaxed);
            if seen >= n {
                break;
            }
            let chunk = ((n - seen) / (2 * threads)).max(1);
            let start = cursor.fetch_add(chunk, Ordering::Relaxed);
            if start >= n {
                break;
            }
            (start..n.min(start + chunk)).for_each(&f);
        });
        finished.fetch_add(1, Ordering::AcqRel);
        ahead.fetch_while(|| finished.load(Ordering::Acquire) < threads);
    });
}

/// Run `work` on this thread while the barrier pool's workers pull `ahead` into the caches. The
/// work must not be a parallel projection itself (one inside would run on this thread alone).
pub(crate) fn overlap<R>(ahead: &Ahead, work: impl FnOnce() -> R) -> R {
    let pool = candle_core::utils::barrier_pool();
    if pool.n_workers() == 0 || ahead.bytes.is_empty() || IN_POOL.with(|c| c.get()) {
        return work();
    }
    /// Tells the workers to stop even if `work` panics (they would wait for it forever).
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    /// Touched only by the calling thread (the pool hands it the index `n_workers`), so
    /// neither `work` nor its result has to be `Send`.
    struct CallerOnly<T>(Mutex<T>);
    // SAFETY: see above; the other threads never lock it.
    unsafe impl<T> Sync for CallerOnly<T> {}
    impl<T> CallerOnly<T> {
        // A method, so that the closure below captures the whole wrapper, not its field.
        fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
    let caller = pool.n_workers();
    let done = AtomicBool::new(false);
    let work = CallerOnly(Mutex::new((Some(work), None)));
    pool.execute(|tid| {
        if tid == caller {
            let _done = Done(&done);
            let mut w = work.lock();
            if let Some(f) = w.0.take() {
                w.1 = Some(in_pool(f));
            }
        } else {
            ahead.fetch_while(|| !done.load(Ordering::Acquire));
        }
    });
    let (_, out) = work.0.into_inner().unwrap_or_else(|e| e.into_inner());
    out.expect("the pool runs the caller's share")
}

/// `x Wᵀ` for the f32 values `x` and a contiguous `(n, x.len())` weight of f32, bf16 or f16 on
/// the CPU, for the decoding step (whose activations stay f32 whatever the weights' dtype):
/// `None` when these conditions do not hold.
pub(crate) fn matvec_f32(x: &[f32], w: &Tensor) -> Result<Option<Vec<f32>>> {
    let k = x.len();
    if !w.device().is_cpu() || w.rank() != 2 || w.dims2()?.1 != k {
        return Ok(None);
    }
    let n = w.dims2()?.0;
    let (ws, wl) = w.storage_and_layout();
    let Some((wo, _)) = wl.contiguous_offsets() else {
        return Ok(None);
    };
    let mut out = vec![0f32; n];
    match &*ws {
        Storage::Cpu(CpuStorage::F32(w)) => project_rows(&w[wo..wo + n * k], x, &mut out),
        Storage::Cpu(CpuStorage::BF16(w)) => project_rows(&w[wo..wo + n * k], x, &mut out),
        Storage::Cpu(CpuStorage::F16(w)) => project_rows(&w[wo..wo + n * k], x, &mut out),
        _ => return Ok(None),
    }
    Ok(Some(out))
}

/// The weight (and KV cache) types read against f32 values: each widened to f32, and each
/// with its fastest dot product here.
pub(crate) trait Row: Copy + Sync + Sized {
    fn widen(self) -> f32;
    fn dot(w: &[Self], x: &[f32]) -> f32;
    /// The values as they are when they are f32 already (nothing to widen).
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
}

impl Row for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    fn as_f32(v: &[f32]) -> Option<&[f32]> {
        Some(v)
    }
    fn dot(w: &[f32], x: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { dot_f32_avx2(w, x) };
        }
        dot_widen(w, x, |v| v, |_| ())
    }
}

impl Row for bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        widen_bf16(self)
    }
    fn dot(w: &[bf16], x: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { dot_bf16_avx2(w, x) };
        }
        dot_widen(w, x, widen_bf16, |_| ())
    }
}

impl Row for f16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        widen_f16(self)
    }
    fn dot(w: &[f16], x: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if f16c() {
            // SAFETY: the CPU has AVX2, FMA and F16C.
            return unsafe { dot_f16_f16c(w, x) };
        }
        dot_widen(w, x, widen_f16, |_| ())
    }
}

/// `out = x Wᵀ` over the rows of `w` (`out.len()` of them, `x.len()` wide), on every thread.
fn project_rows<T: Row>(w: &[T], x: &[f32], out: &mut [f32]) {
    rows(w, x.len(), out, |r| T::dot(r, x));
}

/// `x Wᵀ` for `x` of shape `(1, k)` and `w` of shape `(n, k)` (contiguous; each f32, bf16 or
/// f16, not necessarily the same: a GGUF file's f16 weights meet f32 activations) on the CPU, as
/// a `(1, n)` tensor of `x`'s dtype. `None` when these conditions
/// do not hold (the caller falls back to candle's matmul).
pub fn matvec(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    if !x.device().is_cpu()
        || x.rank() != 2
        || x.dim(0)? != 1
        || !matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16)
    {
        return Ok(None);
    }
    let xf = x.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let Some(out) = matvec_f32(&xf, w)? else {
        return Ok(None);
    };
    let n = out.len();
    let y = Tensor::from_vec(out, (1, n), x.device())?;
    Ok(Some(if x.dtype() == DType::F32 {
        y
    } else {
        y.to_dtype(x.dtype())?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn check(dtype: DType, n: usize, k: usize, tol: f32) {
        check_mixed(dtype, dtype, n, k, tol)
    }

    /// Weights of `dtype` against activations of `x_dtype`.
    fn check_mixed(dtype: DType, x_dtype: DType, n: usize, k: usize, tol: f32) {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, k), &dev)
            .unwrap()
            .to_dtype(x_dtype)
            .unwrap();
        let got = matvec(&x, &w).unwrap().expect("applies");
        assert_eq!(got.dims(), &[1, n]);
        assert_eq!(got.dtype(), x_dtype);
        // Reference: the f32 product of the same (rounded) values.
        let want = x
            .to_dtype(DType::F32)
            .unwrap()
            .matmul(&w.to_dtype(DType::F32).unwrap().t().unwrap())
            .unwrap();
        let d = (got.to_dtype(DType::F32).unwrap() - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d <= tol, "{dtype:?} {n}x{k}: max |Δ| {d}");
    }

    #[test]
    fn equals_the_f32_product() {
        // Sizes not multiples of the chunking, and one row fewer than a task.
        check(DType::F32, 131, 67, 1e-4);
        check(DType::F32, 31, 8, 1e-5);
        // Accumulated in f32, rounded once: within bf16/f16 rounding of the f32 result (values
        // up to ~30 here, so bf16's 2⁻⁸ relative step is ~0.12).
        check(DType::BF16, 131, 67, 0.25);
        check(DType::F16, 131, 67, 0.03);
    }

    /// Every task runs once, with next weight's bytes handed to the threads that finish early;
    /// a parallel call from inside a task runs its tasks too (inline, not waiting on the pool
    /// it is part of).
    #[test]
    fn tasks_run_once_each_with_bytes_ahead() {
        let bytes = vec![7u8; 3 * AHEAD_MAX];
        for n in [1, 5, 64, 1000] {
            let ahead = Ahead::new(&bytes);
            let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            let inner = AtomicUsize::new(0);
            one_row_tasks_ahead(
                n,
                |t| {
                    runs[t].fetch_add(1, Ordering::Relaxed);
                    if t == 0 {
                        one_row_tasks(3, |_| {
                            inner.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                },
                &ahead,
            );
            assert!(
                runs.iter().all(|r| r.load(Ordering::Relaxed) == 1),
                "{n} tasks"
            );
            assert_eq!(inner.load(Ordering::Relaxed), 3);
            // No more than the first AHEAD_MAX bytes are ever asked for.
            assert_eq!(ahead.bytes.len(), AHEAD_MAX);
        }
    }

    /// The work runs on the calling thread and its result comes back, whether or not there are
    /// bytes to fetch meanwhile; work that itself runs tasks gets them all done.
    #[test]
    fn overlapped_work_runs_on_the_caller() {
        let bytes = vec![1u8; 1 << 20];
        for ahead in [Ahead::new(&bytes), Ahead::none()] {
            let me = std::thread::current().id();
            let mut state = vec![1, 2, 3];
            let (id, sum) = overlap(&ahead, || {
                state.push(4);
                let done = AtomicUsize::new(0);
                one_row_tasks(10, |_| {
                    done.fetch_add(1, Ordering::Relaxed);
                });
                (std::thread::current().id(), done.into_inner())
            });
            assert_eq!(id, me);
            assert_eq!(sum, 10);
            assert_eq!(state, [1, 2, 3, 4]);
        }
    }

    /// The AVX2 builds of the projections' dot products give the portable build's bits, for
    /// widths with and without a remainder past the 32 partial sums.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_dot_products_are_the_portable_ones() {
        if !avx2() {
            return;
        }
        for k in [8, 67, 896, 4864] {
            let x: Vec<f32> = (0..k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let w: Vec<f32> = (0..k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 9.0)
                .collect();
            let wb: Vec<bf16> = w.iter().map(|v| bf16::from_f32(*v)).collect();
            let wh: Vec<f16> = w.iter().map(|v| f16::from_f32(*v)).collect();
            let f = dot_widen(&w, &x, |v| v, |_| ());
            let b = dot_widen(&wb, &x, widen_bf16, |_| ());
            let h = dot_widen(&wh, &x, widen_f16, |_| ());
            if f16c() {
                // SAFETY: the CPU has AVX2, FMA and F16C.
                let ha = unsafe { dot_f16_f16c(&wh, &x) };
                assert_eq!(ha.to_bits(), h.to_bits(), "f16, {k}");
            }
            // SAFETY: the CPU has AVX2 and FMA.
            let (fa, ba) = unsafe { (dot_f32_avx2(&w, &x), dot_bf16_avx2(&wb, &x)) };
            assert_eq!(fa.to_bits(), f.to_bits(), "f32, {k}");
            assert_eq!(ba.to_bits(), b.to_bits(), "bf16, {k}");
            // And the widening is bf16's own.
            assert!(wb.iter().all(|v| widen_bf16(*v) == v.to_f32()));
        }
    }

    /// The f16 widening is `half`'s exact conversion for every one of the 65,536 bit patterns.
    #[test]
    fn f16_widens_exactly() {
        for b in 0..=u16::MAX {
            let v = f16::from_bits(b);
            let (got, want) = (widen_f16(v), v.to_f32());
            if want.is_nan() {
                assert!(got.is_nan(), "{b:#06x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{b:#06x}");
            }
        }
    }

    /// A GGUF file's f16 (or bf16) weights against an f32 model's activations: the result has
    /// the activations' dtype and is the f32 product of the widened weights.
    #[test]
    fn mixed_dtypes_widen_the_weights() {
        check_mixed(DType::F16, DType::F32, 37, 70, 1e-4);
        check_mixed(DType::BF16, DType::F32, 37, 70, 1e-4);
    }

    #[test]
    fn declines_what_it_does_not_cover() {
        let dev = Device::Cpu;
        let w = Tensor::zeros((4, 3), DType::F32, &dev).unwrap();
        let two_rows = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        assert!(matvec(&two_rows, &w).unwrap().is_none());
        let ints = Tensor::zeros((1, 3), DType::U32, &dev).unwrap();
        assert!(matvec(&ints, &w).unwrap().is_none());
        // A transposed (non-contiguous) weight.
        let wt = Tensor::zeros((3, 4), DType::F32, &dev)
            .unwrap()
            .t()
            .unwrap();
        let x = Tensor::zeros((1, 3), DType::F32, &dev).unwrap();
        assert!(matvec(&x, &wt).unwrap().is_none());
    }
}
