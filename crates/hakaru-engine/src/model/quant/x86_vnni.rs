//! AVX-512 VNNI tiles for the 32-value formats (Q8_0, Q4_0, Q5_0): two blocks per 512-bit
//! register, and `vpdpbusd` for the 8-bit products.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes. ggml's AVX2 code makes the weight unsigned
//! with `|w|` and moves its sign onto the activation, once per weight row *and* activation row;
//! here the activation is made unsigned instead (`x + 128`, once per activation row, shared by
//! every weight row of the tile) and the excess `128·Σw` is subtracted in the same integer lanes:
//! it is computed once per weight row (`vpdpbusd` of 128s with `w`) and used as the starting value
//! of each product, so a block pair costs one `vpdpbusd`, one conversion and two float operations
//! per weight row × activation row. The lanes never saturate (32-bit sums of at most
//! 4 · 255 · 128 per step).
//!
//! Callers check AVX-512 F/BW/DQ/VL/VNNI besides AVX2/FMA/F16C (`super::vnni_available`).

use std::arch::x86_64::*;

use super::formats::Act;
use super::x86::{load, prefetch_distance, ptrs, Block32, Q40, Q50, Q80};

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn halves(a: f32, b: f32) -> __m512 {
    _mm512_insertf32x8(
        _mm512_castps256_ps512(_mm256_set1_ps(a)),
        _mm256_set1_ps(b),
        1,
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn tile<const RW: usize, const RX: usize>(
    nb: usize,
    bb: usize,
    w: [*const u8; RW],
    a: &Act,
    rows: [usize; RX],
    block: impl Fn(*const u8) -> (f32, __m256i),
) -> [[f32; RX]; RW] {
    let xq: [*const i8; RX] = std::array::from_fn(|r| a.row_qs(rows[r]).as_ptr());
    let xd: [*const f32; RX] = std::array::from_fn(|r| a.row_d(rows[r]).as_ptr());
    let bias = _mm512_set1_epi8(0x80u8 as i8);
    let ahead = prefetch_distance(RW * nb * bb);
    let mut acc = [[_mm512_setzero_ps(); RX]; RW];
    let mut b = 0;
    while b + 2 <= nb {
        // x + 128 as unsigned bytes, two blocks per register.
        let x: [__m512i; RX] = std::array::from_fn(|r| {
            _mm512_xor_si512(_mm512_loadu_si512(xq[r].add(32 * b) as *const _), bias)
        });
        let dx: [__m512; RX] = std::array::from_fn(|r| halves(*xd[r].add(b), *xd[r].add(b + 1)));
        for i in 0..RW {
            let p = w[i].add(bb * b);
            _mm_prefetch::<_MM_HINT_T0>(p.add(ahead) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.add(ahead + bb) as *const i8);
            let (d0, w0) = block(p);
            let (d1, w1) = block(p.add(bb));
            let wv = _mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1);
            let neg = _mm512_sub_epi32(
                _mm512_setzero_si512(),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, wv),
            );
            let dw = halves(d0, d1);
            for r in 0..RX {
                let s = _mm512_dpbusd_epi32(neg, x[r], wv);
                let scale = _mm512_mul_ps(dw, dx[r]);
                acc[i][r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(s), acc[i][r]);
            }
        }
        b += 2;
    }
    let mut out: [[f32; RX]; RW] =
        std::array::from_fn(|i| std::array::from_fn(|r| _mm512_reduce_add_ps(acc[i][r])));
    if b < nb {
        // An odd last block, in 256-bit registers.
        let bias = _mm256_set1_epi8(0x80u8 as i8);
        for i in 0..RW {
            let (d0, wv) = block(w[i].add(bb * b));
            let neg = _mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, wv),
            );
            for r in 0..RX {
                let x = _mm256_xor_si256(load(xq[r].add(32 * b)), bias);
                let s = _mm256_dpbusd_epi32(neg, x, wv);
                let v = _mm256_cvtepi32_ps(s);
                let t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let t = _mm_add_ps(t, _mm_movehl_ps(t, t));
                let t = _mm_add_ss(t, _mm_movehdup_ps(t));
                out[i][r] += d0 * *xd[r].add(b) * _mm_cvtss_f32(t);
            }
        }
    }
    out
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn dot_32<F: Block32, const RW: usize, const RX: usize>(
    w: [&[u8]; RW],
    x: &Act,
    rows: [usize; RX],
) -> [[f32; RX]; RW] {
    tile(w[0].len() / F::BYTES, F::BYTES, ptrs(w), x, rows, |blk| {
        F::unpack(blk)
    })
}

/// Bytes of one prepared block pair of a weight row: 64 signed quants, 16 f32 scales (one per
/// 4-value lane: a block's scale over its 8 lanes, or Q6_K's 16-value sub-block scales over 4),
/// 16 i32 lanes of `−128·Σw` (the starting value of the `vpdpbusd` with `x + 128`), and for Q4_K
/// 16 f32 lanes of its sub-block offsets (`dmin·m`, subtracted times the activation's block sum).
pub const fn prep_pair(kind: super::QKind) -> usize {
    match kind {
        super::QKind::Q4K => 256,
        _ => 192,
    }
}

/// Unpack one 256-value K-quant block into 8 blocks of 32 signed quants, a scale per 4-value
/// lane (64) and an offset per block (8): `w = scale·q − offset`.
fn unpack_k(
    kind: super::QKind,
    blk: &[u8],
    q: &mut [i8; 256],
    sc: &mut [f32; 64],
    off: &mut [f32; 8],
) {
    use super::formats::{f16_at, scale_min_k4};
    match kind {
        super::QKind::Q4K => {
            let (d, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
            let (scales, qs) = (&blk[4..16], &blk[16..144]);
            for j in 0..4 {
                for h in 0..2 {
                    let (s, m) = scale_min_k4(2 * j + h, scales);
                    let b = 2 * j + h;
                    sc[8 * b..8 * b + 8].fill(d * s as f32);
                    off[b] = dmin * m as f32;
                    for l in 0..32 {
                        let v = qs[32 * j + l];
                        q[32 * b + l] = (if h == 0 { v & 0xF } else { v >> 4 }) as i8;
                    }
                }
            }
        }
        _ => {
            // Q6_K: values in 16-value sub-blocks, each with its own signed scale.
            let d = f16_at(blk, 208);
            for n in 0..2 {
                let ql = &blk[64 * n..64 * n + 64];
                let qh = &blk[128 + 32 * n..128 + 32 * n + 32];
                for l in 0..32 {
                    let v = [
                        (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                        (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                        (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                        (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                    ];
                    for (t, v) in v.into_iter().enumerate() {
                        q[128 * n + 32 * t + l] = v as i8 - 32;
                    }
                }
            }
            for (g, lanes) in sc.chunks_exact_mut(4).enumerate() {
                lanes.fill(d * (blk[192 + g] as i8) as f32);
            }
            off.fill(0.0);
        }
    }
}

/// Unpack weight rows into prepared block pairs (`out` holds `rows.len() × npairs ×
/// prep_pair(kind)` bytes; an odd last block is paired with zeros). In prefill each weight row
/// meets hundreds of activation rows, so it is unpacked once per task here rather than once per
/// tile.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn prepare(kind: super::QKind, rows: &[&[u8]], npairs: usize, out: &mut [u8]) {
    let bias = _mm512_set1_epi8(0x80u8 as i8);
    let rec = prep_pair(kind);
    let store = |o: *mut u8, wv: __m512i, dw: __m512| {
        let neg = _mm512_sub_epi32(
            _mm512_setzero_si512(),
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, wv),
        );
        _mm512_storeu_si512(o as *mut _, wv);
        _mm512_storeu_ps(o.add(64) as *mut f32, dw);
        _mm512_storeu_si512(o.add(128) as *mut _, neg);
    };
    if matches!(kind, super::QKind::Q4K | super::QKind::Q6K) {
        let (mut q, mut sc, mut off) = ([0i8; 256], [0f32; 64], [0f32; 8]);
        for (r, row) in rows.iter().enumerate() {
            for (s, blk) in row.chunks_exact(kind.block_bytes()).enumerate() {
                unpack_k(kind, blk, &mut q, &mut sc, &mut off);
                for p in 0..4 {
                    let o = out.as_mut_ptr().add((r * npairs + 4 * s + p) * rec);
                    let wv = _mm512_loadu_si512(q.as_ptr().add(64 * p) as *const _);
                    store(o, wv, _mm512_loadu_ps(sc.as_ptr().add(16 * p)));
                    if rec == 256 {
                        _mm512_storeu_ps(
                            o.add(192) as *mut f32,
                            halves(off[2 * p], off[2 * p + 1]),
                        );
                    }
                }
            }
        }
        return;
    }
    match kind {
        super::QKind::Q8_0 => prepare_32::<Q80>(rows, npairs, out, store),
        super::QKind::Q4_0 => prepare_32::<Q40>(rows, npairs, out, store),
        _ => prepare_32::<Q50>(rows, npairs, out, store),
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn prepare_32<F: Block32>(
    rows: &[&[u8]],
    npairs: usize,
    out: &mut [u8],
    store: impl Fn(*mut u8, __m512i, __m512),
) {
    for (r, row) in rows.iter().enumerate() {
        let nb = row.len() / F::BYTES;
        for p in 0..npairs {
            let (d0, w0) = F::unpack(row.as_ptr().add(F::BYTES * 2 * p));
            let (d1, w1) = if 2 * p + 1 < nb {
                F::unpack(row.as_ptr().add(F::BYTES * (2 * p + 1)))
            } else {
                (0.0, _mm256_setzero_si256())
            };
            let wv = _mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1);
            store(
                out.as_mut_ptr().add((r * npairs + p) * 192),
                wv,
                halves(d0, d1),
            );
        }
    }
}

/// `RW` prepared weight rows × `RX` prepared activation rows (`xu`: `x + 128` as bytes, `dx`:
/// 16 scales per block pair laid out as the weights', `cx`: per pair 16 lanes of a block's
/// `scale · Σq / 8`, read only when `MIN`, for Q4_K's offsets).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn dot_prepared<const RW: usize, const RX: usize, const MIN: bool>(
    w: [*const u8; RW],
    xu: [*const u8; RX],
    dx: [*const f32; RX],
    cx: [*const f32; RX],
    npairs: usize,
) -> [[f32; RX]; RW] {
    let rec = if MIN { 256 } else { 192 };
    let mut acc = [[_mm512_setzero_ps(); RX]; RW];
    for p in 0..npairs {
        let x: [__m512i; RX] =
            std::array::from_fn(|r| _mm512_loadu_si512(xu[r].add(64 * p) as *const _));
        let d: [__m512; RX] = std::array::from_fn(|r| _mm512_loadu_ps(dx[r].add(16 * p)));
        for i in 0..RW {
            let o = w[i].add(rec * p);
            let wv = _mm512_loadu_si512(o as *const _);
            let dw = _mm512_loadu_ps(o.add(64) as *const f32);
            let neg = _mm512_loadu_si512(o.add(128) as *const _);
            for r in 0..RX {
                let s = _mm512_dpbusd_epi32(neg, x[r], wv);
                acc[i][r] =
                    _mm512_fmadd_ps(_mm512_mul_ps(dw, d[r]), _mm512_cvtepi32_ps(s), acc[i][r]);
            }
            if MIN {
                let off = _mm512_loadu_ps(o.add(192) as *const f32);
                for r in 0..RX {
                    let c = _mm512_loadu_ps(cx[r].add(16 * p));
                    acc[i][r] = _mm512_fnmadd_ps(off, c, acc[i][r]);
                }
            }
        }
    }
    std::array::from_fn(|i| std::array::from_fn(|r| _mm512_reduce_add_ps(acc[i][r])))
}
