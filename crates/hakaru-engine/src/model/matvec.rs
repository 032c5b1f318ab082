//! One token's projections on the CPU: `y = x Wᵀ` for a single row `x`, split across threads by
//! rows of `W`.
//!
//! Why own code: candle's CPU matmul (the gemm crate) runs a `(1, k) × (k, n)` product on one
//! thread, so decoding (one row per step) used one core however many there were. Decoding is
//! bound by memory bandwidth, reading every weight once per token, and one core cannot draw the
//! machine's bandwidth. Here each thread takes a block of rows of `W` (contiguous in memory) and
//! computes their dot products with `x`, accumulating in f32 (bf16 and f16 weights are widened as
//! they are read; no weight-sized buffer is allocated per step). Prefill (many rows) stays on
//! candle's gemm, which is multi-threaded and blocked for cache reuse.

use candle_core::{CpuStorage, DType, Storage, Tensor};
use half::{bf16, f16};
use std::sync::Mutex;

use crate::error::Result;

/// Rows of `W` per parallel task: a few KiB of weights each, enough to amortize scheduling.
const ROWS_PER_TASK: usize = 32;

/// Eight independent partial sums so the compiler vectorizes and pipelines the loop.
#[inline]
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

#[inline]
fn dot_widen<T: Copy>(w: &[T], x: &[f32], widen: impl Fn(T) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let (wc, wr) = w.split_at(w.len() / 8 * 8);
    let (xc, xr) = x.split_at(wc.len());
    for (a, b) in wc.chunks_exact(8).zip(xc.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += widen(a[i]) * b[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in wr.iter().zip(xr) {
        s += widen(*a) * b;
    }
    s
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
    candle_core::utils::barrier_pool().execute_chunked(n, |r| r.for_each(&f));
}

/// `x Wᵀ` for `x` of shape `(1, k)` and `w` of shape `(n, k)` (contiguous, same dtype, f32,
/// bf16 or f16) on the CPU, as a `(1, n)` tensor of `x`'s dtype. `None` when these conditions
/// do not hold (the caller falls back to candle's matmul).
pub fn matvec(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.rank() != 2 || w.rank() != 2 || x.dtype() != w.dtype() {
        return Ok(None);
    }
    let (m, k) = x.dims2()?;
    let (n, wk) = w.dims2()?;
    if m != 1 || wk != k || !matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let (ws, wl) = w.storage_and_layout();
    let Some((wo, _)) = wl.contiguous_offsets() else {
        return Ok(None);
    };
    let (xs, xl) = x.storage_and_layout();
    let Some((xo, _)) = xl.contiguous_offsets() else {
        return Ok(None);
    };
    let mut out = vec![0f32; n];
    match (&*ws, &*xs) {
        (Storage::Cpu(CpuStorage::F32(w)), Storage::Cpu(CpuStorage::F32(x))) => {
            let (w, x) = (&w[wo..wo + n * k], &x[xo..xo + k]);
            rows(w, k, &mut out, |r| dot_f32(r, x));
        }
        (Storage::Cpu(CpuStorage::BF16(w)), Storage::Cpu(CpuStorage::BF16(x))) => {
            let (w, x) = (&w[wo..wo + n * k], &x[xo..xo + k]);
            let xf: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
            rows(w, k, &mut out, |r| dot_widen(r, &xf, bf16::to_f32));
        }
        (Storage::Cpu(CpuStorage::F16(w)), Storage::Cpu(CpuStorage::F16(x))) => {
            let (w, x) = (&w[wo..wo + n * k], &x[xo..xo + k]);
            let xf: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
            rows(w, k, &mut out, |r| dot_widen(r, &xf, f16::to_f32));
        }
        _ => return Ok(None),
    }
    drop((ws, xs));
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
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, k), &dev)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let got = matvec(&x, &w).unwrap().expect("applies");
        assert_eq!(got.dims(), &[1, n]);
        assert_eq!(got.dtype(), dtype);
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

    #[test]
    fn declines_what_it_does_not_cover() {
        let dev = Device::Cpu;
        let w = Tensor::zeros((4, 3), DType::F32, &dev).unwrap();
        let two_rows = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        assert!(matvec(&two_rows, &w).unwrap().is_none());
        let other = Tensor::zeros((1, 3), DType::BF16, &dev).unwrap();
        assert!(matvec(&other, &w).unwrap().is_none());
        // A transposed (non-contiguous) weight.
        let wt = Tensor::zeros((3, 4), DType::F32, &dev)
            .unwrap()
            .t()
            .unwrap();
        let x = Tensor::zeros((1, 3), DType::F32, &dev).unwrap();
        assert!(matvec(&x, &wt).unwrap().is_none());
    }
}
