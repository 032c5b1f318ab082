//! Several rows' projections (prefill) for unquantized weights on the CPU: `Y = X Wᵀ` in f32,
//! whatever the weights' dtype (f32, bf16 or f16).
//!
//! Why not candle's matmul as it is: candle multiplies in the operands' dtype, so a bf16 or f16
//! model's prefill ran the gemm crate's 16-bit kernels, and a GGUF file's f16 weights against an
//! f32 model's activations had to round the activations to f16 first; both were slower than f32
//! (Qwen2.5-0.5B's shape, pp512: f32 164 t/s, bf16 124, f16 100; benches/README.md). Here each
//! task widens a block of `W`'s rows into a reused f32 buffer (a few hundred KiB, in the core's
//! caches) and multiplies it with the gemm crate's f32 kernel, on one thread; the tasks (blocks)
//! run on rayon's pool. Widening costs one pass over the block, shared by every row of `X`.

use candle_core::{CpuStorage, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;
use std::cell::RefCell;

use super::matvec::Row;
use crate::error::Result;

/// Rows of `W` per task: the widened block (`BLOCK × k` f32 values, 224 KiB for `k` = 896)
/// stays in a core's second-level cache while every row of `X` meets it.
const BLOCK: usize = 64;

thread_local! {
    /// Each thread's widened block, kept between calls (no weight-sized buffer per call).
    static WIDE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The output's base address, shared by the tasks; each writes only its own columns.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: the tasks write disjoint columns of the output, which outlives them.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// Column `j` of the output's first row. A method, so that closures capture the whole
    /// `Out` (which is `Send`), not its raw pointer.
    fn col(self, j: usize) -> *mut f32 {
        self.0.wrapping_add(j)
    }
}

/// `X Wᵀ` for the `t × k` f32 values `x` (row-major) and a contiguous `(n, k)` weight of f32,
/// bf16 or f16 on the CPU, as `t × n` f32 values. `None` when these conditions do not hold (the
/// caller falls back to candle's matmul).
pub(crate) fn matmul_f32(x: &[f32], t: usize, w: &Tensor) -> Result<Option<Vec<f32>>> {
    if t == 0 || !w.device().is_cpu() || w.rank() != 2 {
        return Ok(None);
    }
    let (n, k) = w.dims2()?;
    if x.len() != t * k {
        return Ok(None);
    }
    let (ws, wl) = w.storage_and_layout();
    let Some((wo, _)) = wl.contiguous_offsets() else {
        return Ok(None);
    };
    let mut out = vec![0f32; t * n];
    let o = Out(out.as_mut_ptr());
    match &*ws {
        Storage::Cpu(CpuStorage::F32(w)) => blocks(&w[wo..wo + n * k], x, t, k, o),
        Storage::Cpu(CpuStorage::BF16(w)) => blocks(&w[wo..wo + n * k], x, t, k, o),
        Storage::Cpu(CpuStorage::F16(w)) => blocks(&w[wo..wo + n * k], x, t, k, o),
        _ => return Ok(None),
    }
    Ok(Some(out))
}

/// The blocks of `w` (`n × k`, `n = w.len() / k`) in parallel, into `out` (`t × n`).
fn blocks<T: Row>(w: &[T], x: &[f32], t: usize, k: usize, out: Out) {
    let n = w.len() / k;
    (0..n.div_ceil(BLOCK)).into_par_iter().for_each(|b| {
        let j0 = b * BLOCK;
        let nb = BLOCK.min(n - j0);
        let rows = &w[j0 * k..(j0 + nb) * k];
        WIDE.with(|buf| {
            let mut buf = buf.borrow_mut();
            let wf: &[f32] = match T::as_f32(rows) {
                Some(f) => f,
                None => {
                    buf.clear();
                    buf.extend(rows.iter().map(|v| v.widen()));
                    &buf
                }
            };
            // SAFETY: `x` holds `t × k` values and `wf` `nb × k`, read with the strides given
            // (`x` row-major; `wf`'s rows are the product's columns); the destination is columns
            // `j0..j0 + nb` of the `t × n` output, which only this task writes.
            unsafe {
                gemm::gemm(
                    t,
                    nb,
                    k,
                    out.col(j0),
                    1,
                    n as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k as isize,
                    wf.as_ptr(),
                    k as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                )
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Against candle's f32 matmul of the same (widened) values, for every weight dtype, shapes
    /// that leave a partial block, and one row.
    #[test]
    fn matches_the_f32_product_of_the_widened_weights() {
        let dev = Device::Cpu;
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            for (t, n, k) in [(1, 70, 33), (7, 64, 96), (19, 200, 130)] {
                let w = Tensor::randn(0f32, 1.0, (n, k), &dev)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                let x = Tensor::randn(0f32, 1.0, (t, k), &dev).unwrap();
                let want = x
                    .matmul(&w.to_dtype(DType::F32).unwrap().t().unwrap())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let xv = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let got = matmul_f32(&xv, t, &w).unwrap().expect("applies");
                assert_eq!(got.len(), t * n);
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - e).abs() <= 1e-4 * (k as f32).sqrt() * (1.0 + e.abs()),
                        "{dtype:?} {t}x{n}x{k} [{i}]: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn declines_what_it_cannot_compute() {
        let dev = Device::Cpu;
        let w = Tensor::zeros((4, 8), DType::F32, &dev).unwrap();
        assert!(matmul_f32(&[0.0; 16], 2, &w.t().unwrap())
            .unwrap()
            .is_none());
        assert!(matmul_f32(&[0.0; 15], 2, &w).unwrap().is_none());
        let wi = Tensor::zeros((4, 8), DType::U32, &dev).unwrap();
        assert!(matmul_f32(&[0.0; 16], 2, &wi).unwrap().is_none());
    }
}
