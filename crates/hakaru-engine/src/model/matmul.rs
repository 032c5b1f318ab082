//! Several rows' projections (prefill) for unquantized weights on the CPU: `Y = X Wᵀ` in f32,
//! whatever the weights' dtype (f32, bf16 or f16).
//!
//! Why not candle's matmul as it is: candle multiplies in the operands' dtype, so a bf16 or f16
//! model's prefill ran the gemm crate's 16-bit kernels, and a GGUF file's f16 weights against an
//! f32 model's activations had to round the activations to f16 first; both were slower than f32
//! (Qwen2.5-0.5B's shape, pp512: f32 164 t/s, bf16 124, f16 100; benches/README.md). And the
//! gemm crate's f32 kernels use AVX2/FMA unless built with a nightly compiler. Here tasks over
//! blocks of [`BLOCK`] rows of `W` run on rayon's pool; each widens its block into a reused f32
//! buffer (in the core's caches) and multiplies it, on an AVX-512 CPU with [`kernel`] (the
//! block packed in chunks, transposed, against `X` as it is), elsewhere with the gemm crate's
//! f32 kernel on one thread. Widening costs one pass over the block, shared by every row of `X`.

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
    matmul_on(x, t, w, avx512())
}

/// [`matmul_f32`] on the AVX-512 kernel (`wide`, which the caller has checked the CPU for) or
/// on the gemm crate's.
fn matmul_on(x: &[f32], t: usize, w: &Tensor, wide: bool) -> Result<Option<Vec<f32>>> {
    if t == 0 || !w.device().is_cpu() || w.rank() != 2 {
        return Ok(None);
    }
    let (n, k) = w.dims2()?;
    if k == 0 || x.len() != t * k {
        return Ok(None);
    }
    // The packing's gathers take 32-bit offsets of up to 15 rows.
    let wide = wide && k < 1 << 26;
    let (ws, wl) = w.storage_and_layout();
    let Some((wo, _)) = wl.contiguous_offsets() else {
        return Ok(None);
    };
    let mut out = vec![0f32; t * n];
    let o = Out(out.as_mut_ptr());
    match &*ws {
        Storage::Cpu(CpuStorage::F32(w)) => blocks(&w[wo..wo + n * k], x, t, k, o, wide),
        Storage::Cpu(CpuStorage::BF16(w)) => blocks(&w[wo..wo + n * k], x, t, k, o, wide),
        Storage::Cpu(CpuStorage::F16(w)) => blocks(&w[wo..wo + n * k], x, t, k, o, wide),
        _ => return Ok(None),
    }
    Ok(Some(out))
}

/// The blocks of `w` (`n × k`, `n = w.len() / k`) in parallel, into `out` (`t × n`).
fn blocks<T: Row>(w: &[T], x: &[f32], t: usize, k: usize, out: Out, wide: bool) {
    #[cfg(target_arch = "x86_64")]
    if wide {
        return blocks_avx512(w, x, t, k, out);
    }
    let _ = wide;
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

/// The kernel prefill of unquantized weights runs on in this process, as provenance records it
/// (`dense-avx512` or `dense-gemm`, with the overrides [`super::quant::with_override`] names).
pub fn kernels_label() -> String {
    super::quant::with_override(if avx512() {
        "dense-avx512"
    } else {
        "dense-gemm"
    })
}

/// Whether the AVX-512 kernel below runs here (`HAKARU_QUANT_KERNELS=avx2` switches it off
/// with the quantized ones, for comparisons).
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && std::env::var("HAKARU_QUANT_KERNELS").map_or(true, |v| v != "avx2" && v != "candle")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Values of `k` per packed chunk: a block's chunk (`BLOCK × KC` f32, 128 KiB) stays in the
/// core's second-level cache while every row of `X` meets it (256 and 128 were a few percent
/// slower on Qwen2.5-0.5B's shapes).
#[cfg(target_arch = "x86_64")]
const KC: usize = 512;

/// Rows of `X` per tile of the AVX-512 kernel: 14 rows × 32 columns are 28 accumulators, with
/// the two panels' values and the broadcast 31 of the 32 vector registers.
#[cfg(target_arch = "x86_64")]
const MR: usize = 14;

/// [`blocks`] on AVX-512. Why not the gemm crate here: its AVX-512 kernels are built only with
/// a nightly compiler, and its AVX2/FMA one reaches well under half of what this CPU's two
/// 512-bit multiply-add ports do (benches/README.md, "Unquantized GGUF files").
///
/// Each task widens its block of `W` into a per-thread buffer, packs it one chunk of [`KC`]
/// values at a time into panels of 16 rows, transposed (`panel[kk][16]`: the 16 rows' value
/// `kk` side by side, zero past the block's last row; [`pack`]), then runs [`kernel`] over tiles of [`MR`] rows of `X` by two
/// panels (32 columns): per value of `k`, two loads of the panels, one broadcast per row of `X`
/// and 28 multiply-adds, all accumulated in registers and added to the output after the first
/// chunk. `X` is read in place: packing it too, so that the broadcasts read one stream, made
/// the kernel alone about 10% faster, but costs a scalar pass over `X` per call, and the
/// version that packed it was no faster as a whole.
#[cfg(target_arch = "x86_64")]
fn blocks_avx512<T: Row>(w: &[T], x: &[f32], t: usize, k: usize, out: Out) {
    let n = w.len() / k;
    (0..n.div_ceil(BLOCK)).into_par_iter().for_each(|b| {
        let j0 = b * BLOCK;
        let nb = BLOCK.min(n - j0);
        let panels = nb.div_ceil(16);
        WIDE.with(|buf| {
            let mut buf = buf.borrow_mut();
            // The block widened (one forward pass over its bytes, which lie together, so the
            // memory streams them: packing from the weight itself, 16 rows at a time, stalled
            // on each row's first bytes), then its packed panels.
            buf.resize(nb * k + panels * 16 * KC, 0.0);
            let (block, packed) = buf.split_at_mut(nb * k);
            // SAFETY: the CPU has AVX-512F (the caller checked).
            unsafe { widen_avx512(&w[j0 * k..(j0 + nb) * k], block) };
            for kc0 in (0..k).step_by(KC) {
                let kl = KC.min(k - kc0);
                for p in 0..panels {
                    let rows = (nb - p * 16).min(16);
                    // SAFETY: the CPU has AVX-512F; the block holds the panel's `rows` rows
                    // (`k` values apart) from value `kc0` on for `kl`, and the panel `16 × kl`.
                    unsafe {
                        pack(
                            &block[p * 16 * k + kc0..],
                            k,
                            rows,
                            kl,
                            &mut packed[p * 16 * kl..][..16 * kl],
                        )
                    };
                }
                let first = kc0 == 0;
                for i0 in (0..t).step_by(MR) {
                    let mr = MR.min(t - i0);
                    for p in (0..panels).step_by(2) {
                        let cols = (nb - p * 16).min(32);
                        // SAFETY: the CPU has AVX-512F; rows `i0..i0 + mr` of `x` hold `k`
                        // values, read from `kc0` on for `kl`; panels `p` (and `p + 1` when
                        // `cols > 16`) hold `kl × 16` values; the destination is rows
                        // `i0..i0 + mr`, columns `j0 + 16p..` (`cols` of them) of the `t × n`
                        // output, this task's.
                        unsafe {
                            tile(
                                mr,
                                x.as_ptr().add(i0 * k + kc0),
                                k,
                                packed.as_ptr().add(p * 16 * kl),
                                kl,
                                out.col(i0 * n + j0 + p * 16),
                                n,
                                cols,
                                first,
                            )
                        }
                    }
                }
            }
        });
    });
}

/// `src` widened into `dst`, in a build for AVX-512 (16 values at a time).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn widen_avx512<T: Row>(src: &[T], dst: &mut [f32]) {
    for (d, v) in dst.iter_mut().zip(src) {
        *d = v.widen();
    }
}

/// `rows` (≤ 16) rows of `kl` f32 values, `stride` apart in `src`, transposed into `panel`
/// (`panel[kk][16]`, zero past the last row): one gather per value of `k`.
///
/// # Safety
/// The CPU has AVX-512F; `src` holds `(rows − 1)·stride + kl` values, `panel` `16·kl`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack(src: &[f32], stride: usize, rows: usize, kl: usize, panel: &mut [f32]) {
    use std::arch::x86_64::*;
    debug_assert!((1..=16).contains(&rows) && src.len() >= (rows - 1) * stride + kl);
    debug_assert!(panel.len() >= 16 * kl);
    let idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(stride as i32),
    );
    let m: __mmask16 = if rows == 16 { 0xFFFF } else { (1 << rows) - 1 };
    for kk in 0..kl {
        let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, idx, src.as_ptr().add(kk));
        _mm512_storeu_ps(panel.as_mut_ptr().add(16 * kk), v);
    }
}

/// One tile: `mr` (1..=[`MR`]) rows of `X` by `cols` (1..=32) columns.
///
/// # Safety
/// As [`kernel`]'s.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    mr: usize,
    x: *const f32,
    ldx: usize,
    a: *const f32,
    kl: usize,
    o: *mut f32,
    ldo: usize,
    cols: usize,
    first: bool,
) {
    macro_rules! go {
        ($($m:literal)*) => {
            match (mr, cols > 16) {
                $(($m, true) => kernel::<$m, true>(x, ldx, a, kl, o, ldo, cols, first),
                  ($m, false) => kernel::<$m, false>(x, ldx, a, kl, o, ldo, cols, first),)*
                _ => unreachable!("tile of {mr} rows"),
            }
        };
    }
    go!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
}

/// `M` rows of `X` (row stride `ldx`, `kl` values from `x`) against one or (`TWO`) two packed
/// panels (`a`, and `a + 16·kl`), into `M` rows of the output (row stride `ldo`) at `o`: `cols`
/// columns stored (masked), added to what is there unless `first`.
///
/// # Safety
/// The CPU has AVX-512F; the pointers hold what is described above.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<const M: usize, const TWO: bool>(
    x: *const f32,
    ldx: usize,
    a: *const f32,
    kl: usize,
    o: *mut f32,
    ldo: usize,
    cols: usize,
    first: bool,
) {
    use std::arch::x86_64::*;
    let mut c0 = [_mm512_setzero_ps(); M];
    let mut c1 = [_mm512_setzero_ps(); M];
    let a1 = a.add(16 * kl);
    for kk in 0..kl {
        let w0 = _mm512_loadu_ps(a.add(16 * kk));
        let w1 = if TWO {
            _mm512_loadu_ps(a1.add(16 * kk))
        } else {
            w0
        };
        for r in 0..M {
            let xv = _mm512_set1_ps(*x.add(r * ldx + kk));
            c0[r] = _mm512_fmadd_ps(xv, w0, c0[r]);
            if TWO {
                c1[r] = _mm512_fmadd_ps(xv, w1, c1[r]);
            }
        }
    }
    let m0: __mmask16 = if cols >= 16 { 0xFFFF } else { (1 << cols) - 1 };
    let m1: __mmask16 = if cols >= 32 {
        0xFFFF
    } else {
        (1u32 << cols.saturating_sub(16)) as u16 - 1
    };
    for r in 0..M {
        let p = o.add(r * ldo);
        let mut v0 = c0[r];
        if !first {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, p));
        }
        _mm512_mask_storeu_ps(p, m0, v0);
        if TWO {
            let p = p.add(16);
            let mut v1 = c1[r];
            if !first {
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, p));
            }
            _mm512_mask_storeu_ps(p, m1, v1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Against candle's f32 matmul of the same (widened) values, for every weight dtype, on both
    /// kernels (the AVX-512 one where the CPU has it), with shapes that leave partial tiles,
    /// panels and blocks, one row, and `k` over several chunks.
    #[test]
    fn matches_the_f32_product_of_the_widened_weights() {
        let dev = Device::Cpu;
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            for (t, n, k) in [(1, 70, 33), (7, 64, 96), (19, 200, 130), (15, 40, 1100)] {
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
                for wide in [false, avx512()] {
                    let got = matmul_on(&xv, t, &w, wide).unwrap().expect("applies");
                    assert_eq!(got.len(), t * n);
                    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - e).abs() <= 1e-4 * (k as f32).sqrt() * (1.0 + e.abs()),
                            "{dtype:?} {t}x{n}x{k} [{i}], AVX-512 {wide}: {g} vs {e}"
                        );
                    }
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
