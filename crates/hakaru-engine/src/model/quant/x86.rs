//! AVX2 dot products of one quantized weight row with `R` quantized activation rows.
//!
//! The arithmetic is ggml's AVX2 arithmetic (integer products of 8-bit quants with
//! `maddubs`/`madd`, one float scale per block), and each weight block is unpacked once for all
//! `R` activation rows: `R = 1` when decoding, `R = 4` in prefill, where the unpacking (nibbles,
//! high bits, K-quant scales) is shared by four rows. Callers check for AVX2, FMA and F16C before
//! calling (`super::kernels_available`); every function here assumes them.
//!
//! Safety of the pointer arithmetic: `w` holds whole blocks of a row (`nb` of them), and each
//! activation row holds `nb · block_elems` quants and `nb` scales; `super::QWeight::matmul` checks
//! both before calling.

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

use super::formats::Act;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_to_f32(p: *const u8) -> f32 {
    let h = u16::from_le_bytes([*p, *p.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
}

/// The f16 at `p` as f32 in all eight lanes, for scales inside the kernels' loops. A broadcast
/// with every lane used: to convert a single lane ([`f16_to_f32`]) LLVM inserts the 16 bits into
/// whatever register it picks (`vpinsrw`), often one of the accumulators, which chains every
/// conversion to that accumulator's last `fma` ([`dot_offset`] for Q4_0 read 10.8 GiB/s so, 22.8
/// with this, in the `kernels` bench on a Zen 3 core pair). [`tile_32`] keeps the scalar form:
/// with the broadcast, Q8_0 decoding measured no faster (a few percent slower in alternating
/// pairs).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_splat(p: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi16((p as *const i16).read_unaligned()))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    hsum128(s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum128(s: __m128) -> f32 {
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load(p: *const i8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// 32 nibbles of 16 bytes: the low nibbles in bytes 0..16, the high ones in bytes 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles(p: *const u8) -> __m256i {
    let t = _mm_loadu_si128(p as *const __m128i);
    let b = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    _mm256_and_si256(b, _mm256_set1_epi8(0xF))
}

/// 0xFF in byte j where bit j of `x` is set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bits_to_bytes(x: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(
        0x0303030303030303,
        0x0202020202020202,
        0x0101010101010101,
        0x0000000000000000,
    );
    let b = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
    let b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1))
}

/// Sum of products of signed bytes in groups of 4, as 8 floats: `aw` = |w|, `w` gives the signs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn signed_dot(aw: __m256i, w: __m256i, x: __m256i) -> __m256 {
    let p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
    _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)))
}

/// Tiles of `RW` weight rows × `RX` activation rows for formats with one signed 8-bit vector and
/// one f16 scale per 32-value block (Q8_0, Q4_0, Q5_0): `block(w, b)` unpacks block `b` of the
/// weight row at `w` into (scale, 32 signed quants). Each accumulator is its own dependency
/// chain, and the `RW` weight rows are `RW` independent memory streams.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_32<const RW: usize, const RX: usize>(
    nb: usize,
    bb: usize,
    w: [*const u8; RW],
    a: &Act,
    rows: [usize; RX],
    block: impl Fn(*const u8, usize) -> (f32, __m256i),
) -> [[f32; RX]; RW] {
    let xq: [*const i8; RX] = std::array::from_fn(|r| a.row_qs(rows[r]).as_ptr());
    let xd: [*const f32; RX] = std::array::from_fn(|r| a.row_d(rows[r]).as_ptr());
    let ahead = prefetch_distance(RW * nb * bb);
    let mut acc = [[_mm256_setzero_ps(); RX]; RW];
    for b in 0..nb {
        let x: [__m256i; RX] = std::array::from_fn(|r| load(xq[r].add(32 * b)));
        for &p in &w {
            _mm_prefetch::<_MM_HINT_T0>(p.add(ahead + bb * b) as *const i8);
        }
        for i in 0..RW {
            let (dw, wv) = block(w[i], b);
            let aw = _mm256_sign_epi8(wv, wv);
            for r in 0..RX {
                let p = signed_dot(aw, wv, x[r]);
                let s = _mm256_set1_ps(dw * *xd[r].add(b));
                acc[i][r] = _mm256_fmadd_ps(s, p, acc[i][r]);
            }
        }
    }
    std::array::from_fn(|i| std::array::from_fn(|r| hsum(acc[i][r])))
}

/// How far ahead of the bytes being read to prefetch: the same place in the next tile's rows
/// (`tile_bytes` on), which the hardware prefetcher, following each row only to its end, would
/// otherwise fetch late.
/// Measured on Qwen2.5-0.5B's shapes (benches/README.md): one tile ahead lifts decoding from
/// 19.5 to 28.6 tokens/s at Q8_0; two tiles ahead is slightly slower.
#[inline]
pub(super) fn prefetch_distance(tile_bytes: usize) -> usize {
    tile_bytes
}

pub(super) fn ptrs<const RW: usize>(w: [&[u8]; RW]) -> [*const u8; RW] {
    std::array::from_fn(|i| w[i].as_ptr())
}

/// A 32-value weight format as the AVX2 and VNNI tiles read it: `unpack` turns the block at a
/// pointer into (scale, 32 signed quants).
pub(super) trait Block32 {
    const BYTES: usize;
    /// # Safety
    /// `blk` points at a whole block, on a CPU with AVX2/FMA/F16C.
    unsafe fn unpack(blk: *const u8) -> (f32, __m256i);
}

pub(super) struct Q80;
pub(super) struct Q40;
pub(super) struct Q50;

impl Block32 for Q80 {
    const BYTES: usize = 34;
    #[inline(always)]
    unsafe fn unpack(blk: *const u8) -> (f32, __m256i) {
        unpack_q8_0(blk)
    }
}

impl Block32 for Q40 {
    const BYTES: usize = 18;
    #[inline(always)]
    unsafe fn unpack(blk: *const u8) -> (f32, __m256i) {
        unpack_q4_0(blk)
    }
}

impl Block32 for Q50 {
    const BYTES: usize = 22;
    #[inline(always)]
    unsafe fn unpack(blk: *const u8) -> (f32, __m256i) {
        unpack_q5_0(blk)
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_q8_0(blk: *const u8) -> (f32, __m256i) {
    (f16_to_f32(blk), load(blk.add(2) as *const i8))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_q4_0(blk: *const u8) -> (f32, __m256i) {
    (
        f16_to_f32(blk),
        _mm256_sub_epi8(nibbles(blk.add(2)), _mm256_set1_epi8(8)),
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_q5_0(blk: *const u8) -> (f32, __m256i) {
    let qh = u32::from_le_bytes([*blk.add(2), *blk.add(3), *blk.add(4), *blk.add(5)]);
    // q − 16: where the fifth bit is clear the nibble minus 16 is the nibble with 0xF0 set.
    let hi = _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8(0xF0u8 as i8));
    (f16_to_f32(blk), _mm256_or_si256(nibbles(blk.add(6)), hi))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_32<F: Block32, const RW: usize, const RX: usize>(
    w: [&[u8]; RW],
    x: &Act,
    rows: [usize; RX],
) -> [[f32; RX]; RW] {
    tile_32(w[0].len() / F::BYTES, F::BYTES, ptrs(w), x, rows, |p, b| {
        F::unpack(p.add(F::BYTES * b))
    })
}

/// ggml's AVX2 `quantize_row_q8_0` (scale kept in f32): 32 values per block, each rounded to
/// the nearest of `d·q`, `d = max|x| / 127`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_q8_0(x: &[f32], qs: &mut [i8], d: &mut [f32]) {
    let sign = _mm256_set1_ps(-0.0);
    for ((x, q), d) in x
        .chunks_exact(32)
        .zip(qs.chunks_exact_mut(32))
        .zip(d.iter_mut())
    {
        let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(x.as_ptr().add(8 * i)));
        let mut m = _mm256_andnot_ps(sign, v[0]);
        for vi in &v[1..] {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *vi));
        }
        let m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        let amax = _mm_cvtss_f32(m4);
        *d = amax / 127.0;
        let id = _mm256_set1_ps(if amax > 0.0 { 127.0 / amax } else { 0.0 });
        _mm256_storeu_si256(
            q.as_mut_ptr() as *mut __m256i,
            round_to_bytes(x.as_ptr(), id),
        );
    }
}

/// 32 floats times `scale`, rounded to the nearest integer (halves to even) and saturated to
/// bytes, in order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round_to_bytes(x: *const f32, scale: __m256) -> __m256i {
    let i: [__m256i; 4] = std::array::from_fn(|k| {
        _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(_mm256_mul_ps(
            _mm256_loadu_ps(x.add(8 * k)),
            scale,
        )))
    });
    let p = _mm256_packs_epi16(
        _mm256_packs_epi32(i[0], i[1]),
        _mm256_packs_epi32(i[2], i[3]),
    );
    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// ggml's `quantize_row_q8_K` (the value of largest magnitude, the first of equals, maps to −127
/// exactly; the 16-value sums beside), vectorized as [`quantize_q8_0`] is: halves round to even.
/// A decoding step quantizes every K-quant projection's input with it; the portable loop's
/// `round` was about 1% of a step.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_q8k(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i16]) {
    let sign = _mm256_set1_ps(-0.0);
    for (((x, q), d), s) in x
        .chunks_exact(256)
        .zip(qs.chunks_exact_mut(256))
        .zip(d.iter_mut())
        .zip(bsums.chunks_exact_mut(16))
    {
        let mut m = _mm256_setzero_ps();
        for c in x.chunks_exact(8) {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(c.as_ptr())));
        }
        let m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        let Some(&max) = x.iter().find(|v| v.abs() == amax).filter(|_| amax > 0.0) else {
            *d = 0.0;
            q.fill(0);
            s.fill(0);
            continue;
        };
        let iscale = -127.0 / max;
        let scale = _mm256_set1_ps(iscale);
        for (j, q) in q.chunks_exact_mut(32).enumerate() {
            let b = round_to_bytes(x.as_ptr().add(32 * j), scale);
            _mm256_storeu_si256(q.as_mut_ptr() as *mut __m256i, b);
            // Two 16-value sums: widen each half to 16 bits and add the words pairwise.
            let w = _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)),
                _mm256_set1_epi16(1),
            );
            let w2 = _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1)),
                _mm256_set1_epi16(1),
            );
            // Eight 32-bit pair sums each; two horizontal adds (within 128-bit lanes) leave
            // their quarter sums in lanes 0, 4 (first half) and 1, 5 (second).
            let t = _mm256_hadd_epi32(w, w2);
            let t = _mm256_hadd_epi32(t, t);
            s[2 * j] = (_mm256_extract_epi32(t, 0) + _mm256_extract_epi32(t, 4)) as i16;
            s[2 * j + 1] = (_mm256_extract_epi32(t, 1) + _mm256_extract_epi32(t, 5)) as i16;
        }
        *d = 1.0 / iscale;
    }
}

/// Prefetch the cache lines of `len` bytes at `p` (a K-quant block spans three or four).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn prefetch_block(p: *const u8, len: usize) {
    let mut o = 0;
    while o < len {
        _mm_prefetch::<_MM_HINT_T0>(p.add(o) as *const i8);
        o += 64;
    }
}

/// The 8 scales and 8 mins of a Q4_K block's 12 packed bytes, as 16 bytes.
#[inline]
fn unpack_k4_scales(s: &[u8]) -> [u32; 4] {
    const KMASK1: u32 = 0x3f3f3f3f;
    const KMASK2: u32 = 0x0f0f0f0f;
    const KMASK3: u32 = 0x03030303;
    let u = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (u0, u1, u2) = (u(0), u(1), u(2));
    [
        u0 & KMASK1,
        (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4),
        u1 & KMASK1,
        ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4),
    ]
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4k<const RW: usize, const R: usize>(
    w: [&[u8]; RW],
    x: &Act,
    rows: [usize; R],
) -> [[f32; R]; RW] {
    let ahead = prefetch_distance(RW * w[0].len());
    std::array::from_fn(|i| dot_q4k_row(w[i], x, rows, ahead))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4k_row<const R: usize>(
    w: &[u8],
    x: &Act,
    rows: [usize; R],
    ahead: usize,
) -> [f32; R] {
    let nb = w.len() / 144;
    let xq: [*const i8; R] = std::array::from_fn(|r| x.row_qs(rows[r]).as_ptr());
    let xd: [*const f32; R] = std::array::from_fn(|r| x.row_d(rows[r]).as_ptr());
    let xs: [*const i16; R] = std::array::from_fn(|r| x.row_bsums(rows[r]).as_ptr());
    let m4 = _mm256_set1_epi8(0xF);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut acc_m = [_mm_setzero_ps(); R];
    for i in 0..nb {
        prefetch_block(w.as_ptr().add(ahead + 144 * i), 144);
        let blk = &w[144 * i..144 * i + 144];
        let d = f16_to_f32(blk.as_ptr());
        let dmin = f16_to_f32(blk.as_ptr().add(2));
        let u = unpack_k4_scales(&blk[4..16]);
        let mins_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
            u[3] as i32,
            u[2] as i32,
            u[1] as i32,
            u[0] as i32,
        ));
        let mins = _mm256_extracti128_si256(mins_scales, 1);
        let sc = _mm256_extracti128_si256(mins_scales, 0);
        let scales = _mm256_set_m128i(sc, sc);
        for r in 0..R {
            let bs = _mm256_loadu_si256(xs[r].add(16 * i) as *const __m256i);
            let q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            let prod = _mm_madd_epi16(mins, q8s);
            let dm = _mm_set1_ps(-dmin * *xd[r].add(i));
            acc_m[r] = _mm_fmadd_ps(dm, _mm_cvtepi32_ps(prod), acc_m[r]);
        }
        let mut sumi = [_mm256_setzero_si256(); R];
        let qs = blk.as_ptr().add(16);
        for j in 0..4 {
            let sl = _mm256_shuffle_epi8(
                scales,
                _mm256_set1_epi16((((4 * j + 1) << 8) | (4 * j)) as i16),
            );
            let sh = _mm256_shuffle_epi8(
                scales,
                _mm256_set1_epi16((((4 * j + 3) << 8) | (4 * j + 2)) as i16),
            );
            let q4 = _mm256_loadu_si256(qs.add(32 * j) as *const __m256i);
            let q4l = _mm256_and_si256(q4, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            for r in 0..R {
                let q8 = xq[r].add(256 * i + 64 * j);
                let pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(q4l, load(q8)));
                let ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(q4h, load(q8.add(32))));
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pl, ph));
            }
        }
        for r in 0..R {
            let dd = _mm256_set1_ps(d * *xd[r].add(i));
            acc[r] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    std::array::from_fn(|r| hsum(acc[r]) + hsum128(acc_m[r]))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q6k<const RW: usize, const R: usize>(
    w: [&[u8]; RW],
    x: &Act,
    rows: [usize; R],
) -> [[f32; R]; RW] {
    let ahead = prefetch_distance(RW * w[0].len());
    std::array::from_fn(|i| dot_q6k_row(w[i], x, rows, ahead))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q6k_row<const R: usize>(
    w: &[u8],
    x: &Act,
    rows: [usize; R],
    ahead: usize,
) -> [f32; R] {
    let nb = w.len() / 210;
    let xq: [*const i8; R] = std::array::from_fn(|r| x.row_qs(rows[r]).as_ptr());
    let xd: [*const f32; R] = std::array::from_fn(|r| x.row_d(rows[r]).as_ptr());
    let m4 = _mm256_set1_epi8(0xF);
    let m2 = _mm256_set1_epi8(3);
    let m32s = _mm256_set1_epi8(32);
    let mut acc = [_mm256_setzero_ps(); R];
    for i in 0..nb {
        prefetch_block(w.as_ptr().add(ahead + 210 * i), 210);
        let blk = w.as_ptr().add(210 * i);
        let d = f16_to_f32(blk.add(208));
        let scales = _mm_loadu_si128(blk.add(192) as *const __m128i);
        let mut sumi = [_mm256_setzero_si256(); R];
        for j in 0..2 {
            let ql = blk.add(64 * j);
            let qh = _mm256_loadu_si256(blk.add(128 + 32 * j) as *const __m256i);
            let h0 = _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4);
            let h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4);
            let h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4);
            let h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4);
            let l1 = _mm256_loadu_si256(ql as *const __m256i);
            let l2 = _mm256_loadu_si256(ql.add(32) as *const __m256i);
            let q = [
                _mm256_or_si256(_mm256_and_si256(l1, m4), h0),
                _mm256_or_si256(_mm256_and_si256(l2, m4), h1),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h2),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l2, 4), m4), h3),
            ];
            // Scales 8j+2k and 8j+2k+1 for the two halves of quarter k, widened to 16 bits.
            let sc: [__m256i; 4] = std::array::from_fn(|k| {
                let lo = (8 * j + 2 * k) as u64 * 0x0101010101010101;
                let hi = (8 * j + 2 * k + 1) as u64 * 0x0101010101010101;
                let m = _mm_set_epi64x(hi as i64, lo as i64);
                _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, m))
            });
            for r in 0..R {
                let q8 = xq[r].add(256 * i + 128 * j);
                for k in 0..4 {
                    let x = load(q8.add(32 * k));
                    let offs = _mm256_maddubs_epi16(m32s, x);
                    let p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], x), offs);
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(sc[k], p));
                }
            }
        }
        for r in 0..R {
            let dd = _mm256_set1_ps(d * *xd[r].add(i));
            acc[r] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    std::array::from_fn(|r| hsum(acc[r]))
}

/// Q4_0 and Q5_0, whose quants are unsigned before the offset (`w = d·(q − OFFSET)`), for
/// [`dot_offset`].
pub(super) trait Offset32: Block32 {
    const OFFSET: u8;
    /// The 32 quants `q` (0..16 or 0..32) of the block at `blk`, as unsigned bytes.
    ///
    /// # Safety
    /// `blk` points at a whole block, on a CPU with AVX2/FMA/F16C.
    unsafe fn unsigned(blk: *const u8) -> __m256i;
}

/// The 32 nibbles of 16 bytes as [`nibbles`] orders them, from one broadcast load: the upper
/// half's 32-bit lanes shifted right by 4 (what crosses a byte boundary is masked off).
#[inline(always)]
unsafe fn nibbles_broadcast(p: *const u8) -> __m256i {
    let t = _mm256_broadcastsi128_si256(_mm_loadu_si128(p as *const __m128i));
    _mm256_and_si256(
        _mm256_srlv_epi32(t, _mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0)),
        _mm256_set1_epi8(0xF),
    )
}

impl Offset32 for Q40 {
    const OFFSET: u8 = 8;
    #[inline(always)]
    unsafe fn unsigned(blk: *const u8) -> __m256i {
        nibbles_broadcast(blk.add(2))
    }
}

impl Offset32 for Q50 {
    const OFFSET: u8 = 16;
    #[inline(always)]
    unsafe fn unsigned(blk: *const u8) -> __m256i {
        let qh = u32::from_le_bytes([*blk.add(2), *blk.add(3), *blk.add(4), *blk.add(5)]);
        // The fifth bit of quant j is bit j of qh: 16 where it is set.
        let hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles_broadcast(blk.add(6)), hi)
    }
}

/// One activation row against `RW` weight rows of Q4_0 or Q5_0 (a decoding step). The quants
/// are taken unsigned, as the file stores them, so `vpmaddubsw` multiplies them with the
/// activation as it is ([`tile_32`] first subtracts the offset, then needs `|w|` and the
/// activation with `w`'s signs: two more operations per block and row); the offset's share
/// `OFFSET·Σx`, pairwise as `vpmaddwd` leaves it, depends only on the activation and is
/// computed once per block for all `RW` rows, then subtracted in the integer lanes. The sums
/// never saturate: `2 · 31 · 127` in 16 bits.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_offset<F: Offset32, const RW: usize>(
    w: [&[u8]; RW],
    a: &Act,
    row: usize,
) -> [f32; RW] {
    let bb = F::BYTES;
    let nb = w[0].len() / bb;
    let w = ptrs(w);
    let xq = a.row_qs(row).as_ptr();
    let xd = a.row_d(row).as_ptr();
    let (ones, off) = (_mm256_set1_epi16(1), _mm256_set1_epi8(F::OFFSET as i8));
    let ahead = prefetch_distance(RW * nb * bb);
    let mut acc = [_mm256_setzero_ps(); RW];
    for b in 0..nb {
        let x = load(xq.add(32 * b));
        let start = _mm256_madd_epi16(_mm256_maddubs_epi16(off, x), ones);
        let dx = _mm256_broadcast_ss(&*xd.add(b));
        for i in 0..RW {
            let p = w[i].add(bb * b);
            _mm_prefetch::<_MM_HINT_T0>(p.add(ahead) as *const i8);
            let q = F::unsigned(p);
            let s = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(q, x), ones), start);
            let scale = _mm256_mul_ps(f16_splat(p), dx);
            acc[i] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(s), acc[i]);
        }
    }
    acc.map(|a| hsum(a))
}

/// How far ahead of a regrouped record to prefetch, in bytes: into the first-level cache
/// (`NEAR`) and, further on, into the second only (`FAR`). A task's groups are one stream,
/// which the hardware prefetcher follows, but not far enough ahead to keep the memory busy.
/// With one distance into L1 (2 KiB was best of none, 512 B, 1, 2, 4 and 8 KiB) the kernels
/// read at about 85% of the bandwidth loop's pace from memory; with these two, at its pace
/// (benches/README.md, "Prefetching into L2 as well").
pub(super) const GROUPED_NEAR: usize = 1024;
pub(super) const GROUPED_FAR: usize = 4096;

/// Prefetch the `len` bytes at `r + GROUPED_NEAR` into L1 and those at `r + GROUPED_FAR` into
/// L2, a line at a time (prefetches never fault, so addresses past the end are harmless).
#[inline(always)]
pub(crate) unsafe fn prefetch_grouped(r: *const u8, len: usize) {
    let mut line = 0;
    while line < len {
        _mm_prefetch::<_MM_HINT_T0>(r.wrapping_add(GROUPED_NEAR + line) as *const i8);
        _mm_prefetch::<_MM_HINT_T1>(r.wrapping_add(GROUPED_FAR + line) as *const i8);
        line += 64;
    }
}

/// A 32-value format in the regrouped layout ([`super::regroup`]), for [`dot_grouped`].
pub(super) trait GroupedPair {
    const KIND: super::QKind;
    /// The offset of the unsigned quants (`w = d·(q − OFFSET)`) that [`GroupedPair::sums`]
    /// leaves in; 0 where it gives the signed products.
    const OFFSET: u8;
    /// Row `i`'s sums against `x` (blocks `2p`, `2p + 1` of the `g`-row record at `rec`),
    /// in groups of four products per 32-bit lane.
    ///
    /// # Safety
    /// `rec` points at a whole record of `g` rows, `i < g`, on a CPU with AVX2/FMA/F16C.
    unsafe fn sums(rec: *const u8, g: usize, i: usize, x: [__m256i; 2]) -> [__m256i; 2];
}

/// The 64 nibbles of the 32 regrouped bytes at `p`: block `2p`'s quants (low nibbles), then
/// block `2p + 1`'s (high nibbles).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn grouped_nibbles(p: *const u8) -> [__m256i; 2] {
    let z = _mm256_loadu_si256(p as *const __m256i);
    let m = _mm256_set1_epi8(0xF);
    [
        _mm256_and_si256(z, m),
        _mm256_and_si256(_mm256_srli_epi16(z, 4), m),
    ]
}

/// Unsigned quants (at most 31) times the activation, four products per lane: no saturation.
/// (No closures in these helpers: a closure outside a `target_feature` function does not
/// inherit the features, and its intrinsics became calls.)
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unsigned_sums(q: [__m256i; 2], x: [__m256i; 2]) -> [__m256i; 2] {
    let ones = _mm256_set1_epi16(1);
    [
        _mm256_madd_epi16(_mm256_maddubs_epi16(q[0], x[0]), ones),
        _mm256_madd_epi16(_mm256_maddubs_epi16(q[1], x[1]), ones),
    ]
}

/// Signed quants stored as `q + 128` times the activation, four products per lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn offset_signed_sums(q: *const i8, x: [__m256i; 2]) -> [__m256i; 2] {
    let ones = _mm256_set1_epi16(1);
    let (w0, w1) = (flip(load(q)), flip(load(q.add(32))));
    [
        _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(x[0], w0)),
            ones,
        ),
        _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x[1], w1)),
            ones,
        ),
    ]
}

/// `q + 128` back to `q`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn flip(u: __m256i) -> __m256i {
    _mm256_xor_si256(u, _mm256_set1_epi8(-128))
}

/// The fifth bits of a Q5_0 block's quants added to its nibbles `q`: `qh` holds a block pair's
/// two 32-bit words in every 64-bit lane, and `SEL` picks the word (0 or 4, its first byte), so
/// quant j's bit is bit j of that word. One shuffle spreads byte j / 8 to byte j; its bit
/// `1 << (j % 8)` tested and widened to 16 (four operations; [`bits_to_bytes`] from a
/// general register takes six).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn with_fifth_bits<const SEL: i64>(q: __m256i, qh: __m256i) -> __m256i {
    let byte = 0x0101_0101_0101_0101i64;
    let spread = _mm256_shuffle_epi8(
        qh,
        _mm256_set_epi64x(
            byte * (SEL + 3),
            byte * (SEL + 2),
            byte * (SEL + 1),
            byte * SEL,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(0x10)))
}

impl GroupedPair for Q80 {
    const KIND: super::QKind = super::QKind::Q8_0;
    const OFFSET: u8 = 0;
    #[inline(always)]
    unsafe fn sums(rec: *const u8, g: usize, i: usize, x: [__m256i; 2]) -> [__m256i; 2] {
        // Stored as q + 128 (for the VNNI kernels' unsigned operand).
        offset_signed_sums(
            rec.add(super::regroup::quants_at(Self::KIND, g, i)) as *const i8,
            x,
        )
    }
}

impl GroupedPair for Q40 {
    const KIND: super::QKind = super::QKind::Q4_0;
    const OFFSET: u8 = 8;
    #[inline(always)]
    unsafe fn sums(rec: *const u8, g: usize, i: usize, x: [__m256i; 2]) -> [__m256i; 2] {
        let q = grouped_nibbles(rec.add(super::regroup::quants_at(Self::KIND, g, i)));
        unsigned_sums(q, x)
    }
}

impl GroupedPair for Q50 {
    const KIND: super::QKind = super::QKind::Q5_0;
    const OFFSET: u8 = 16;
    #[inline(always)]
    unsafe fn sums(rec: *const u8, g: usize, i: usize, x: [__m256i; 2]) -> [__m256i; 2] {
        let [lo, hi] = grouped_nibbles(rec.add(super::regroup::quants_at(Self::KIND, g, i)));
        let h = rec.add(super::regroup::qh_at(g, i)) as *const i64;
        let qh = _mm256_set1_epi64x(h.read_unaligned());
        unsigned_sums(
            [with_fifth_bits::<0>(lo, qh), with_fifth_bits::<4>(hi, qh)],
            x,
        )
    }
}

/// One activation row (Q8_0) against the `G` rows (at most [`super::regroup::GROUP`], four) of
/// one regrouped group (a decoding step). Per block pair: the activation's 64 quants, the
/// group's scales in one load and conversion times the activation's two scales, the offset's
/// share once for every row (from the activation's sums of 16 quants); per row, its two blocks'
/// sums ([`GroupedPair::sums`]); then [`fold_rows`] folds the eight sum vectors of the group
/// into two, one per row pair, each lane a partial sum of one (row, block), with unpacks and
/// adds (`vphaddd`, several micro-ops on Zen 3, was 3–4% slower in a one-thread comparison of
/// the Q5_0 kernel), so that two conversions and two `fma`s against the
/// scales as loaded (each half of them in both 128-bit lanes) finish the record, without a
/// broadcast per block and row. A task's groups are one memory stream, which the hardware
/// prefetcher follows (the file's layout read four rows as four interleaved streams).
///
/// # Safety
/// `group` points at `npairs` whole records of `G` rows (`1 ≤ G ≤ 4`), `a` holds `64·npairs`
/// quants a row.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_grouped<F: GroupedPair, const G: usize>(
    group: *const u8,
    npairs: usize,
    a: &Act,
    row: usize,
) -> [f32; G] {
    let rec = G * 2 * F::KIND.block_bytes();
    let xq = a.row_qs(row).as_ptr();
    let xd = a.row_d(row).as_ptr();
    let xs = a.row_bsums(row).as_ptr();
    // OFFSET is 8 or 16: a shift.
    let shift = _mm_cvtsi32_si128(F::OFFSET.trailing_zeros() as i32);
    let spread = _mm256_setr_epi32(0, 2, 0, 2, 1, 3, 1, 3);
    let zero = _mm256_setzero_si256();
    // Lanes [row 0 block 2p, row 0 block 2p + 1, row 1 …, row 1 …] in both 128-bit halves
    // (rows 0 and 1), and the same for rows 2 and 3.
    let mut acc = [_mm256_setzero_ps(); 2];
    for p in 0..npairs {
        let r = group.add(p * rec);
        prefetch_grouped(r, rec);
        let x = [load(xq.add(64 * p)), load(xq.add(64 * p + 32))];
        // [dx(2p), dx(2p + 1)] four times, against [row 0 block 2p, row 0 block 2p + 1, row 1 …].
        let dx = _mm256_castsi256_ps(_mm256_set1_epi64x(
            (xd.add(2 * p) as *const i64).read_unaligned(),
        ));
        // 16 bytes: all the scales of a full group (a smaller one reads into its own record;
        // those lanes meet no row).
        let sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(r as *const __m128i)), dx);
        let s: [[__m256i; 2]; 4] = std::array::from_fn(|i| {
            if i < G {
                F::sums(r, G, i, x)
            } else {
                [zero; 2]
            }
        });
        let mut h = [
            fold_rows(s[0][0], s[0][1], s[1][0], s[1][1]),
            fold_rows(s[2][0], s[2][1], s[3][0], s[3][1]),
        ];
        if F::OFFSET != 0 {
            // OFFSET·Σx over each half block, from the activation's sums of 16 quants
            // ([b0 first half, b0 second, b1 first, b1 second]) spread as the rows' sums are.
            let b = _mm256_cvtepi16_epi32(_mm_loadl_epi64(xs.add(4 * p) as *const __m128i));
            let start = _mm256_sll_epi32(_mm256_permutevar8x32_epi32(b, spread), shift);
            h = h.map(|v| _mm256_sub_epi32(v, start));
        }
        let scales = [
            _mm256_permute2f128_ps(sc, sc, 0x00),
            _mm256_permute2f128_ps(sc, sc, 0x11),
        ];
        for k in 0..G.div_ceil(2) {
            acc[k] = _mm256_fmadd_ps(scales[k], _mm256_cvtepi32_ps(h[k]), acc[k]);
        }
    }
    // Row 2k's lanes are 0, 1, 4, 5 of acc[k]; row 2k + 1's 2, 3, 6, 7.
    std::array::from_fn(|i| {
        let v = acc[i / 2];
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = if i % 2 == 0 { s } else { _mm_movehl_ps(s, s) };
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    })
}

/// Bytes of one Q8_0 weight block prepared for [`dot_prepared`]: its 32 quants as `|q|`
/// (unsigned), then as `q` (whose signs `vpsignb` moves onto the activation).
pub const PREP_BLOCK: usize = 64;

/// The offset of a 32-value format's prepared quants: 0 for Q8_0 (signed, [`PREP_BLOCK`] bytes
/// a block), 8 for Q4_0 and 16 for Q5_0, whose quants are prepared unsigned as the file stores
/// them (`w = d·(q − offset)`, 32 bytes a block, [`dot_prepared_unsigned`]).
pub fn prep_offset(kind: super::QKind) -> u8 {
    match kind {
        super::QKind::Q4_0 => <Q40 as Offset32>::OFFSET,
        super::QKind::Q5_0 => <Q50 as Offset32>::OFFSET,
        _ => 0,
    }
}

/// Bytes of one prepared weight block of `kind`.
pub fn prep_block(kind: super::QKind) -> usize {
    if prep_offset(kind) == 0 {
        PREP_BLOCK
    } else {
        32
    }
}

/// Unpack rows of a 32-value format (Q8_0, Q4_0, Q5_0) for prefill, once per task: block `b` of
/// row `r` becomes [`prep_block`] bytes at `qs[(r·nb + b)·prep_block..]` and its scale
/// `ds[r·nb + b]`, where `nb` is a row's block count. [`tile_32`] unpacked each weight block
/// (nibbles, fifth bits, an f16 scale, `|q|`) once per tile of four activation rows, and in
/// prefill a weight row meets hundreds.
///
/// # Safety
/// Each row holds whole blocks of `kind` (a 32-value format), `qs` and `ds` hold every block.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn prepare_32(kind: super::QKind, rows: &[&[u8]], qs: &mut [u8], ds: &mut [f32]) {
    #[inline(always)]
    unsafe fn signed<F: Block32>(rows: &[&[u8]], qs: &mut [u8], ds: &mut [f32]) {
        let mut at = 0;
        for row in rows {
            for blk in row.chunks_exact(F::BYTES) {
                let (d, w) = F::unpack(blk.as_ptr());
                let o = qs.as_mut_ptr().add(at * PREP_BLOCK) as *mut __m256i;
                _mm256_storeu_si256(o, _mm256_sign_epi8(w, w));
                _mm256_storeu_si256(o.add(1), w);
                ds[at] = d;
                at += 1;
            }
        }
    }
    #[inline(always)]
    unsafe fn unsigned<F: Offset32>(rows: &[&[u8]], qs: &mut [u8], ds: &mut [f32]) {
        let mut at = 0;
        for row in rows {
            for blk in row.chunks_exact(F::BYTES) {
                let o = qs.as_mut_ptr().add(at * 32) as *mut __m256i;
                _mm256_storeu_si256(o, F::unsigned(blk.as_ptr()));
                ds[at] = f16_to_f32(blk.as_ptr());
                at += 1;
            }
        }
    }
    match kind {
        super::QKind::Q8_0 => signed::<Q80>(rows, qs, ds),
        super::QKind::Q4_0 => unsigned::<Q40>(rows, qs, ds),
        _ => unsigned::<Q50>(rows, qs, ds),
    }
}

/// Activation rows per group of [`dot_prepared`]: eight accumulators of the sixteen registers.
pub const PREP_ROWS: usize = 8;

/// One prepared weight row ([`prepare_32`]: `w` its blocks, `dw` their scales) against a group
/// of [`PREP_ROWS`] Q8_0 activation rows interleaved by block (`xq`: block `b` of the group's
/// rows at `xq[256·b..]`, 32 quants a row; `xd`: their scales at `xd[8·b..]`), `nb` blocks. Per
/// block and activation row: `vpsignb`, `vpmaddubsw` and `vpmaddwd` give eight 32-bit partial
/// sums; [`fold_rows`] then adds the eight rows' vectors into two (four rows each, the two
/// 128-bit halves still apart), and per block two conversions and two `fma`s with the weight's
/// scale times four rows' activation scales (one 128-bit broadcast load each) finish the
/// block. Converting and scaling each row's vector instead (a conversion, a multiplication
/// and an `fma` per block and row) kept the multiply units busiest: on Zen 3 the fold ran this
/// loop 14–26% faster (benches/README.md). The weight block stays in registers and each
/// activation block is read once, at constant offsets from one pointer.
///
/// # Safety
/// `w` holds `nb` blocks of [`PREP_BLOCK`] bytes and `dw` their scales; `xq` and `xd` hold `nb`
/// interleaved blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_prepared(
    w: *const u8,
    dw: *const f32,
    xq: *const i8,
    xd: *const f32,
    nb: usize,
) -> [f32; PREP_ROWS] {
    let ones = _mm256_set1_epi16(1);
    // Lane `l` of `acc[0]` holds row `l % 4`'s sum over half `l / 4` of each block; `acc[1]`
    // rows 4..8 alike.
    let mut acc = [_mm256_setzero_ps(); 2];
    for b in 0..nb {
        let o = w.add(PREP_BLOCK * b);
        let aw = load(o as *const i8);
        let sw = load(o.add(32) as *const i8);
        let x = xq.add(32 * PREP_ROWS * b);
        let p: [__m256i; PREP_ROWS] = std::array::from_fn(|r| {
            let s = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(load(x.add(32 * r)), sw));
            _mm256_madd_epi16(s, ones)
        });
        let d = _mm256_broadcast_ss(&*dw.add(b));
        for (h, acc) in acc.iter_mut().enumerate() {
            let q = fold_rows(p[4 * h], p[4 * h + 1], p[4 * h + 2], p[4 * h + 3]);
            let dx = _mm256_broadcast_ps(&*(xd.add(PREP_ROWS * b + 4 * h) as *const __m128));
            *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_mul_ps(dx, d), *acc);
        }
    }
    fold_halves(acc)
}

/// Four rows' sums from [`fold_rows`]'s lanes (row `l % 4`, half `l / 4`) in each of two
/// accumulators: the halves added, rows 0..4 from the first, 4..8 from the second.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fold_halves(acc: [__m256; 2]) -> [f32; PREP_ROWS] {
    let mut out = [0f32; PREP_ROWS];
    for (h, a) in acc.iter().enumerate() {
        let s = _mm_add_ps(_mm256_castps256_ps128(*a), _mm256_extractf128_ps(*a, 1));
        _mm_storeu_ps(out.as_mut_ptr().add(4 * h), s);
    }
    out
}

/// Four rows' vectors of eight 32-bit sums into one: lane `l` is row `l % 4`'s sum over the
/// four lanes of half `l / 4`. Unpacks and adds rather than `vphaddd`, which is several
/// micro-ops on Zen 3 (measured slower here).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fold_rows(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    // [a0+a2, b0+b2, a1+a3, b1+b3] in each half, then the same for c, d.
    let ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    let cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd))
}

/// [`dot_prepared`] for Q4_0 and Q5_0 weights prepared unsigned (`w`: 32 quants `q` a block,
/// `w = d·(q − offset)`): `vpmaddubsw` takes `q` as its unsigned operand and the activation as
/// it is (at most 31 · 127 · 2 a pair, no saturation), so there is no `vpsignb`, and the offset
/// comes off the folded sums: `xs` holds, per block, `offset · Σx` over each half block of the
/// group's rows in [`fold_rows`]'s order (rows 0..4 first half, rows 0..4 second half, then
/// rows 4..8 alike; [`prep_offset_sums`]). A third fewer operations per block and row than the
/// signed path; the prepared weights take half the bytes.
///
/// # Safety
/// `w` holds `nb` blocks of 32 bytes and `dw` their scales; `xq`, `xd` hold `nb` interleaved
/// blocks and `xs` their 16 sums each.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_prepared_unsigned(
    w: *const u8,
    dw: *const f32,
    xq: *const i8,
    xd: *const f32,
    xs: *const i32,
    nb: usize,
) -> [f32; PREP_ROWS] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); 2];
    for b in 0..nb {
        let q = load(w.add(32 * b) as *const i8);
        let x = xq.add(32 * PREP_ROWS * b);
        let p: [__m256i; PREP_ROWS] = std::array::from_fn(|r| {
            _mm256_madd_epi16(_mm256_maddubs_epi16(q, load(x.add(32 * r))), ones)
        });
        let d = _mm256_broadcast_ss(&*dw.add(b));
        for (h, acc) in acc.iter_mut().enumerate() {
            let f = fold_rows(p[4 * h], p[4 * h + 1], p[4 * h + 2], p[4 * h + 3]);
            let off = _mm256_loadu_si256(xs.add(16 * b + 8 * h) as *const __m256i);
            let dx = _mm256_broadcast_ps(&*(xd.add(PREP_ROWS * b + 4 * h) as *const __m128));
            let t = _mm256_cvtepi32_ps(_mm256_sub_epi32(f, off));
            *acc = _mm256_fmadd_ps(t, _mm256_mul_ps(dx, d), *acc);
        }
    }
    fold_halves(acc)
}

/// The offset sums [`dot_prepared_unsigned`] reads for one block of a group: `offset · Σx` over
/// each 16-quant half of each row's block (`halves[r]`, the activation's sums of 16 quants), in
/// [`fold_rows`]'s lane order.
pub fn prep_offset_sums(halves: [[i16; 2]; PREP_ROWS], offset: u8) -> [i32; 16] {
    let mut s = [0i32; 16];
    for (r, h) in halves.iter().enumerate() {
        for (half, &sum) in h.iter().enumerate() {
            s[(r / 4) * 8 + half * 4 + r % 4] = offset as i32 * sum as i32;
        }
    }
    s
}

/// [`dot_prepared`] or [`dot_prepared_unsigned`] (by `offset`, [`prep_offset`]) for a single
/// activation row in its own layout (`xq`: `32·nb` quants, `xd`: `nb` scales): the rows left
/// over after the groups.
///
/// # Safety
/// As [`dot_prepared`], with `xq` and `xd` one row's and `w` in `offset`'s layout.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_prepared_one(
    w: *const u8,
    dw: *const f32,
    xq: *const i8,
    xd: *const f32,
    offset: u8,
    nb: usize,
) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for b in 0..nb {
        let p = if offset == 0 {
            let o = w.add(PREP_BLOCK * b);
            signed_dot(
                load(o as *const i8),
                load(o.add(32) as *const i8),
                load(xq.add(32 * b)),
            )
        } else {
            // Unsigned quants made signed again: these rows are few.
            let q = _mm256_sub_epi8(
                load(w.add(32 * b) as *const i8),
                _mm256_set1_epi8(offset as i8),
            );
            signed_dot(_mm256_sign_epi8(q, q), q, load(xq.add(32 * b)))
        };
        let t = _mm256_mul_ps(p, _mm256_broadcast_ss(&*xd.add(b)));
        acc = _mm256_fmadd_ps(t, _mm256_broadcast_ss(&*dw.add(b)), acc);
    }
    hsum(acc)
}
