//! AVX-512 VNNI tiles for the 32-value formats (Q8_0, Q4_0, Q5_0): two blocks per 512-bit
//! register, and `vpdpbusd` for the 8-bit products; for one activation row also Q4_K and Q6_K
//! ([`dot_q4k_one`], [`dot_q6k_one`]), and for prefill every format on prepared operands
//! ([`dot_prepared`]).
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
use super::x86::{
    f16_to_f32, hsum, load, nibbles, prefetch_distance, prefetch_grouped, ptrs, Block32, Q40, Q50,
    Q80,
};

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
                out[i][r] += d0 * *xd[r].add(b) * hsum(_mm256_cvtepi32_ps(s));
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

/// A 32-value format read as unsigned quants with a fixed offset (`w = d·(q − OFFSET)`), for
/// [`dot_unsigned`]: Q4_0 and Q5_0 store them so; Q8_0's signed quants become `q + 128`.
pub(super) trait Unsigned32: Block32 {
    const OFFSET: u8;
    /// The scales and quants of the two blocks at `p` and `p + BYTES`: both scales as halves of
    /// a 512-bit vector, the 64 quants `q` as unsigned bytes.
    ///
    /// # Safety
    /// `p` points at two whole blocks, on a CPU with the features of this module.
    unsafe fn unpack_pair(p: *const u8) -> (__m512, __m512i);
    /// (scale, the 32 quants `q` as unsigned bytes) of the block at `blk`.
    ///
    /// # Safety
    /// As [`Unsigned32::unpack_pair`], one block.
    unsafe fn unpack_unsigned(blk: *const u8) -> (f32, __m256i);
}

/// The f16 scales at `a` and `b` as the low and high halves of a 512-bit vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn scales_pair(a: *const u8, b: *const u8) -> __m512 {
    let h = u16::from_le_bytes([*a, *a.add(1)]) as u32
        | (u16::from_le_bytes([*b, *b.add(1)]) as u32) << 16;
    let f = _mm_cvtph_ps(_mm_cvtsi32_si128(h as i32));
    let idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f))
}

/// The nibbles of the 16 bytes at `a` and at `b`, as one block each (low nibbles first).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn nibbles_pair(a: *const u8, b: *const u8) -> __m512i {
    let y = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(a as *const __m128i)),
        _mm_loadu_si128(b as *const __m128i),
        1,
    );
    let z = _mm512_castsi256_si512(y);
    // 128-bit lanes [a, a, b, b], the second copy of each shifted down by 4.
    let z = _mm512_shuffle_i64x2::<0b01_01_00_00>(z, z);
    let f = 0x0004_0004_0004_0004;
    let z = _mm512_srlv_epi16(z, _mm512_set_epi64(f, f, 0, 0, f, f, 0, 0));
    _mm512_and_si512(z, _mm512_set1_epi8(0xF))
}

#[inline(always)]
unsafe fn read_u32(p: *const u8) -> u32 {
    u32::from_le_bytes([*p, *p.add(1), *p.add(2), *p.add(3)])
}

impl Unsigned32 for Q80 {
    const OFFSET: u8 = 128;
    #[inline(always)]
    unsafe fn unpack_pair(p: *const u8) -> (__m512, __m512i) {
        let q = p.add(<Self as Block32>::BYTES);
        let w = _mm512_inserti64x4(
            _mm512_castsi256_si512(load(p.add(2) as *const i8)),
            load(q.add(2) as *const i8),
            1,
        );
        (
            scales_pair(p, q),
            _mm512_xor_si512(w, _mm512_set1_epi8(0x80u8 as i8)),
        )
    }
    #[inline(always)]
    unsafe fn unpack_unsigned(blk: *const u8) -> (f32, __m256i) {
        (
            f16_to_f32(blk),
            _mm256_xor_si256(
                load(blk.add(2) as *const i8),
                _mm256_set1_epi8(0x80u8 as i8),
            ),
        )
    }
}

impl Unsigned32 for Q40 {
    const OFFSET: u8 = 8;
    #[inline(always)]
    unsafe fn unpack_pair(p: *const u8) -> (__m512, __m512i) {
        let q = p.add(<Self as Block32>::BYTES);
        (scales_pair(p, q), nibbles_pair(p.add(2), q.add(2)))
    }
    #[inline(always)]
    unsafe fn unpack_unsigned(blk: *const u8) -> (f32, __m256i) {
        (f16_to_f32(blk), nibbles(blk.add(2)))
    }
}

impl Unsigned32 for Q50 {
    const OFFSET: u8 = 16;
    #[inline(always)]
    unsafe fn unpack_pair(p: *const u8) -> (__m512, __m512i) {
        let q = p.add(<Self as Block32>::BYTES);
        let nib = nibbles_pair(p.add(6), q.add(6));
        // The fifth bit of quant j is bit j of its block's qh: +16 under that mask.
        let qh = read_u32(p.add(2)) as u64 | (read_u32(q.add(2)) as u64) << 32;
        (
            scales_pair(p, q),
            _mm512_mask_add_epi8(nib, qh, nib, _mm512_set1_epi8(0x10)),
        )
    }
    #[inline(always)]
    unsafe fn unpack_unsigned(blk: *const u8) -> (f32, __m256i) {
        let nib = nibbles(blk.add(6));
        (
            f16_to_f32(blk),
            _mm256_mask_add_epi8(nib, read_u32(blk.add(2)), nib, _mm256_set1_epi8(0x10)),
        )
    }
}

/// One activation row against `RW` weight rows of Q8_0, Q4_0 or Q5_0 (a decoding step). With the
/// quants unsigned before the offset, `vpdpbusd` takes them against the signed activation as it
/// is (no `x + 128` and no `128·Σw` per weight row), and the offset's share
/// `−OFFSET·Σx`, which depends only on the activation, is computed once per block pair for all
/// `RW` rows and used as the starting value of each row's product. Per weight row and block pair
/// that leaves the unpacking, one `vpdpbusd`, one conversion and two float operations.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn dot_unsigned<F: Unsigned32, const RW: usize>(
    w: [&[u8]; RW],
    a: &Act,
    row: usize,
) -> [f32; RW] {
    let bb = F::BYTES;
    let nb = w[0].len() / bb;
    let w = ptrs(w);
    let xq = a.row_qs(row).as_ptr();
    let xd = a.row_d(row).as_ptr();
    let off = _mm512_set1_epi8(F::OFFSET as i8);
    let zero = _mm512_setzero_si512();
    let ahead = prefetch_distance(RW * nb * bb);
    let mut acc = [_mm512_setzero_ps(); RW];
    let mut b = 0;
    while b + 2 <= nb {
        let x = _mm512_loadu_si512(xq.add(32 * b) as *const _);
        let start = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, off, x));
        let dx = halves(*xd.add(b), *xd.add(b + 1));
        for i in 0..RW {
            let p = w[i].add(bb * b);
            _mm_prefetch::<_MM_HINT_T0>(p.add(ahead) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.add(ahead + bb) as *const i8);
            let (dw, wv) = F::unpack_pair(p);
            let s = _mm512_dpbusd_epi32(start, wv, x);
            let scale = _mm512_mul_ps(dw, dx);
            acc[i] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(s), acc[i]);
        }
        b += 2;
    }
    let mut out: [f32; RW] = std::array::from_fn(|i| _mm512_reduce_add_ps(acc[i]));
    if b < nb {
        // An odd last block, in 256-bit registers.
        let x = load(xq.add(32 * b));
        let zero = _mm256_setzero_si256();
        let start = _mm256_sub_epi32(
            zero,
            _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(F::OFFSET as i8), x),
        );
        for (i, o) in out.iter_mut().enumerate() {
            let (d0, wv) = F::unpack_unsigned(w[i].add(bb * b));
            let v = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(start, wv, x));
            *o += d0 * *xd.add(b) * hsum(v);
        }
    }
    out
}

/// A 32-value format in the regrouped layout ([`super::regroup`]), for [`dot_grouped`].
pub(super) trait Grouped {
    const KIND: super::QKind;
    /// The offset of the unsigned quants: `w = d·(q − OFFSET)`.
    const OFFSET: u8;
    /// Row `i`'s 64 quants (blocks `2p`, `2p + 1`) of the `g`-row record at `rec`, as unsigned
    /// bytes (`g` a constant where it matters, so the offsets are too).
    ///
    /// # Safety
    /// `rec` points at a whole record of `g` rows, `i < g`, on a CPU with this module's features
    /// (and GFNI where `GFNI`, called from a function compiled for it).
    unsafe fn quants<const GFNI: bool>(rec: *const u8, g: usize, i: usize) -> __m512i;
}

/// The 64 nibbles of the 32 regrouped bytes at `p`: low nibbles first, then the high ones.
/// With `GFNI` (only inside a function compiled for it) one affine transformation per byte
/// does the masked shift and the `and`: its 8×8 bit matrix, one per 64-bit lane, keeps bits
/// 0–3 in the low half and moves bits 4–7 down in the high half (`GF2P8AFFINEQB`: result bit
/// `b` is the parity of the byte and the matrix's byte `7 − b`).
#[inline(always)]
unsafe fn grouped_nibbles<const GFNI: bool>(p: *const u8) -> __m512i {
    let z = _mm512_broadcast_i64x4(_mm256_loadu_si256(p as *const __m256i));
    if GFNI {
        const LOW: i64 = 0x0102_0408_0000_0000;
        const HIGH: i64 = 0x1020_4080_0000_0000;
        let m = _mm512_set_epi64(HIGH, HIGH, HIGH, HIGH, LOW, LOW, LOW, LOW);
        _mm512_gf2p8affine_epi64_epi8::<0>(z, m)
    } else {
        _mm512_and_si512(
            _mm512_mask_srli_epi16(z, 0xFFFF_0000, z, 4),
            _mm512_set1_epi8(0xF),
        )
    }
}

impl Grouped for Q80 {
    const KIND: super::QKind = super::QKind::Q8_0;
    const OFFSET: u8 = 128;
    #[inline(always)]
    unsafe fn quants<const GFNI: bool>(rec: *const u8, g: usize, i: usize) -> __m512i {
        _mm512_loadu_si512(rec.add(super::regroup::quants_at(Self::KIND, g, i)) as *const _)
    }
}

impl Grouped for Q40 {
    const KIND: super::QKind = super::QKind::Q4_0;
    const OFFSET: u8 = 8;
    #[inline(always)]
    unsafe fn quants<const GFNI: bool>(rec: *const u8, g: usize, i: usize) -> __m512i {
        grouped_nibbles::<GFNI>(rec.add(super::regroup::quants_at(Self::KIND, g, i)))
    }
}

impl Grouped for Q50 {
    const KIND: super::QKind = super::QKind::Q5_0;
    const OFFSET: u8 = 16;
    #[inline(always)]
    unsafe fn quants<const GFNI: bool>(rec: *const u8, g: usize, i: usize) -> __m512i {
        let q = grouped_nibbles::<GFNI>(rec.add(super::regroup::quants_at(Self::KIND, g, i)));
        // The fifth bits, bit k for quant k: +16 under that mask.
        let qh = (rec.add(super::regroup::qh_at(g, i)) as *const u64).read_unaligned();
        _mm512_mask_add_epi8(q, qh, q, _mm512_set1_epi8(0x10))
    }
}

/// One activation row (Q8_0) against the `G` rows of one regrouped group (a decoding step):
/// per block pair, the group's scales in one load and conversion, multiplied by the
/// activation's two scales once; per row, its quants ([`Grouped::quants`]), one `vpdpbusd`
/// starting from the offset's share `−OFFSET·Σx` (shared by the rows), a permutation that
/// spreads the row's two scales over their blocks' lanes, one conversion and one `fma`.
///
/// # Safety
/// `group` points at `npairs` whole records of `G` rows, `a` holds `64·npairs` quants a row.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn dot_grouped<F: Grouped, const G: usize>(
    group: *const u8,
    npairs: usize,
    a: &Act,
    row: usize,
) -> [f32; G] {
    grouped::<F, G, false>(group, npairs, a, row)
}

/// [`dot_grouped`] on a CPU with GFNI as well: Q4_0's and Q5_0's nibbles in one instruction a
/// row instead of two ([`grouped_nibbles`]), about a sixth faster from the caches and a few
/// percent from memory (benches/README.md, "Nibbles with GFNI").
///
/// # Safety
/// As [`dot_grouped`]'s, on a CPU with GFNI.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,gfni")]
pub unsafe fn dot_grouped_gfni<F: Grouped, const G: usize>(
    group: *const u8,
    npairs: usize,
    a: &Act,
    row: usize,
) -> [f32; G] {
    grouped::<F, G, true>(group, npairs, a, row)
}

/// The body of [`dot_grouped`] and [`dot_grouped_gfni`], inlined into each.
#[inline(always)]
unsafe fn grouped<F: Grouped, const G: usize, const GFNI: bool>(
    group: *const u8,
    npairs: usize,
    a: &Act,
    row: usize,
) -> [f32; G] {
    let rec = G * 2 * F::KIND.block_bytes();
    let xq = a.row_qs(row).as_ptr();
    let xd = a.row_d(row).as_ptr();
    let off = _mm512_set1_epi8(F::OFFSET as i8);
    let zero = _mm512_setzero_si512();
    // Row i's scales are elements 2i (block 2p, lanes 0..8) and 2i + 1 (block 2p + 1).
    let idx: [__m512i; G] = std::array::from_fn(|i| {
        let (a, b) = (2 * i as i32, 2 * i as i32 + 1);
        _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a)
    });
    let mut acc = [_mm512_setzero_ps(); G];
    for p in 0..npairs {
        let r = group.add(p * rec);
        prefetch_grouped(r, rec);
        let x = _mm512_loadu_si512(xq.add(64 * p) as *const _);
        let start = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, off, x));
        // [dx(2p), dx(2p + 1)] four times, against [row 0 block 2p, row 0 block 2p + 1, row 1 …].
        let dx = _mm256_castsi256_ps(_mm256_set1_epi64x(
            (xd.add(2 * p) as *const i64).read_unaligned(),
        ));
        // 16 bytes: all the scales of a full group (a smaller one reads into its own record).
        let sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(r as *const __m128i)), dx);
        let sc = _mm512_castps256_ps512(sc);
        for i in 0..G {
            let s = _mm512_dpbusd_epi32(start, F::quants::<GFNI>(r, G, i), x);
            acc[i] = _mm512_fmadd_ps(
                _mm512_permutexvar_ps(idx[i], sc),
                _mm512_cvtepi32_ps(s),
                acc[i],
            );
        }
    }
    std::array::from_fn(|i| _mm512_reduce_add_ps(acc[i]))
}

/// One activation row (Q8_K) against `RW` Q4_K weight rows (a decoding step).
///
/// Per 256-value block and weight row: the 4-bit quants are unsigned, so each 64-value quarter
/// (low nibbles of 32 bytes, then their high nibbles: two 32-value sub-blocks) is one `vpdpbusd`
/// against the activation as it is. The quarter sums (at most 4 · 15 · 128 in magnitude) are
/// narrowed pairwise to 16 bits (`vpackssdw`, exact) and multiplied by their sub-blocks' 6-bit
/// scales with `vpdpwssd`: two packs and two `vpdpwssd` per block instead of a 32-bit multiply
/// per quarter. The sub-block offsets (`dmin · m`) meet the activation's 16-value sums, shared by
/// every row. Integer sums stay exact; floats enter once per block.
///
/// Two builds of one body (a macro, so that each function's target features reach the closure
/// inside it): [`dot_q4k_one`], and [`dot_q4k_one_gfni`] unpacking the nibbles with GFNI as the
/// regrouped kernels do ([`grouped_nibbles`]).
macro_rules! q4k_one {
    ($(#[$doc:meta])* $name:ident, $features:literal, $gfni:literal) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub unsafe fn $name<const RW: usize>(w: [&[u8]; RW], a: &Act, row: usize) -> [f32; RW] {
    // Which sub-block's scale meets each word of the packed quarter sums (SCALE_WORDS).
    let idx01 = _mm512_loadu_si512(SCALE_WORDS[0].as_ptr() as *const _);
    let idx23 = _mm512_loadu_si512(SCALE_WORDS[1].as_ptr() as *const _);
    // Mins: word t (a 16-value sum of the activation) meets the min of sub-block t / 2.
    let idxm = _mm256_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    let init = (_mm512_setzero_ps(), _mm256_setzero_ps());
    let acc = k_rows(w, 144, a, row, init, |p, x, bs, dx, (acc, accm)| {
        // Words 0..8: the sub-blocks' scales; 8..16: their mins.
        let sm = _mm256_cvtepu8_epi16(k4_scales_mins(p));
        let t = q4k_scaled_sums::<$gfni>(p, &x, (idx01, idx23), _mm512_castsi256_si512(sm));
        // d and dmin together: [d·dx, dmin·dx, …].
        let dd = _mm_mul_ps(
            _mm_cvtph_ps(_mm_cvtsi32_si128((p as *const i32).read_unaligned())),
            _mm_set1_ps(dx),
        );
        let mins = _mm256_madd_epi16(bs, _mm256_permutexvar_epi16(idxm, sm));
        (
            _mm512_fmadd_ps(_mm512_broadcastss_ps(dd), _mm512_cvtepi32_ps(t), acc),
            _mm256_fmadd_ps(
                _mm256_broadcastss_ps(_mm_movehdup_ps(dd)),
                _mm256_cvtepi32_ps(mins),
                accm,
            ),
        )
    });
    acc.map(|(acc, accm)| _mm512_reduce_add_ps(acc) - hsum(accm))
}
    };
}

q4k_one!(
    /// The AVX-512 VNNI build.
    ///
    /// # Safety
    /// Each row of `w` holds whole Q4_K blocks, `a` is a Q8_K activation of their width.
    dot_q4k_one,
    "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni",
    false
);
q4k_one!(
    /// The build for CPUs with GFNI as well.
    ///
    /// # Safety
    /// As [`dot_q4k_one`]'s, on a CPU with GFNI.
    dot_q4k_one_gfni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,gfni",
    true
);

/// One activation row (Q8_K) against four Q4_K weight rows: [`dot_q4k_one`]'s arithmetic, with
/// what the four rows share done once for all of them. Their 12 packed scale bytes are read
/// into one 512-bit register (a row per 128-bit lane) and unpacked together, their `d` and `dmin`
/// converted together, and their sub-block offsets met with the activation's 32-value sums in one
/// `vpmaddwd` (row `r` in lanes `4r..4r + 4`). Per row and block what remains is the nibbles, four
/// `vpdpbusd`, the two packs and `vpdpwssd` against that row's scale words, and one multiply-add:
/// about a third fewer instructions per block than four calls of the one-row kernel: faster
/// from the caches, the same pace from memory, which the order the rows are read in sets
/// (`QWeight::tiles_rows`, benches/README.md).
///
/// Two builds, as for [`dot_q4k_one`]: [`dot_q4k_four`] and [`dot_q4k_four_gfni`].
macro_rules! q4k_four {
    ($(#[$doc:meta])* $name:ident, $features:literal, $gfni:literal) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub unsafe fn $name(w: [&[u8]; 4], a: &Act, row: usize) -> [f32; 4] {
    const BB: usize = 144;
    // Scale words of an even row (words 0..8 of its half of `u01` / `u23`) and of an odd one
    // (words 16..24).
    let idx01 = _mm512_loadu_si512(SCALE_WORDS[0].as_ptr() as *const _);
    let idx23 = _mm512_loadu_si512(SCALE_WORDS[1].as_ptr() as *const _);
    let idx = [
        (idx01, idx23),
        (
            _mm512_add_epi16(idx01, _mm512_set1_epi16(16)),
            _mm512_add_epi16(idx23, _mm512_set1_epi16(16)),
        ),
    ];
    // Word w of the four rows' mins: row w / 8's min w % 8 (`u01` words 8..16 and 24..32, then
    // `u23`'s, indexed from 32).
    let idxm = _mm512_loadu_si512(FOUR_MINS.as_ptr() as *const _);
    // Lanes 4r..4r + 4: row r's dmin, at 2r + 1 of the converted [d0, dmin0, d1, dmin1, …].
    let idx_dmin = _mm512_set_epi32(7, 7, 7, 7, 5, 5, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1);
    let ones = _mm256_set1_epi16(1);
    let nb = w[0].len() / BB;
    let w = ptrs(w);
    let xq = a.row_qs(row).as_ptr();
    let xd = a.row_d(row).as_ptr();
    let xs = a.row_bsums(row).as_ptr();
    let ahead = prefetch_distance(4 * nb * BB);
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut accm = _mm512_setzero_ps();
    for b in 0..nb {
        let x: [__m512i; 4] =
            std::array::from_fn(|j| _mm512_loadu_si512(xq.add(256 * b + 64 * j) as *const _));
        // The activation's 32-value sums as 8 words, in each 128-bit lane.
        let bs = _mm256_loadu_si256(xs.add(16 * b) as *const __m256i);
        let xs32 = _mm512_broadcast_i32x4(_mm256_cvtepi32_epi16(_mm256_madd_epi16(bs, ones)));
        let dx = _mm256_set1_ps(*xd.add(b));
        let p: [*const u8; 4] = std::array::from_fn(|i| w[i].add(BB * b));
        for &p in &p {
            prefetch_k(p, BB, ahead);
        }
        // [d0·dx, dmin0·dx, d1·dx, …] from each row's first four bytes.
        let head = |i: usize| (p[i] as *const i32).read_unaligned();
        let dd = _mm256_mul_ps(
            _mm256_cvtph_ps(_mm_setr_epi32(head(0), head(1), head(2), head(3))),
            dx,
        );
        let dd = _mm512_castps256_ps512(dd);
        // Row r's 8 scales then 8 mins in lane r, as words: rows 0, 1 in u01, rows 2, 3 in u23.
        let packed = |i: usize| _mm_loadu_si128(p[i].add(4) as *const __m128i);
        let raw = _mm512_inserti32x4::<3>(
            _mm512_inserti32x4::<2>(
                _mm512_inserti32x4::<1>(_mm512_castsi128_si512(packed(0)), packed(1)),
                packed(2),
            ),
            packed(3),
        );
        let u = k4_scales_mins_four(raw);
        let u01 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(u));
        let u23 = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64::<1>(u));
        let mins = _mm512_madd_epi16(_mm512_permutex2var_epi16(u01, idxm, u23), xs32);
        accm = _mm512_fmadd_ps(
            _mm512_permutexvar_ps(idx_dmin, dd),
            _mm512_cvtepi32_ps(mins),
            accm,
        );
        for i in 0..4 {
            let u = if i < 2 { u01 } else { u23 };
            let (ia, ib) = idx[i % 2];
            let t = q4k_scaled_sums::<$gfni>(p[i], &x, (ia, ib), u);
            let d = _mm512_permutexvar_ps(_mm512_set1_epi32(2 * i as i32), dd);
            acc[i] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(t), acc[i]);
        }
    }
    let mut m = [0f32; 16];
    _mm512_storeu_ps(m.as_mut_ptr(), accm);
    std::array::from_fn(|i| _mm512_reduce_add_ps(acc[i]) - m[4 * i..4 * i + 4].iter().sum::<f32>())
}
    };
}

q4k_four!(
    /// The AVX-512 VNNI build.
    ///
    /// # Safety
    /// Each row of `w` holds the same number of whole Q4_K blocks, `a` is a Q8_K activation of
    /// their width.
    dot_q4k_four,
    "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni",
    false
);
q4k_four!(
    /// The build for CPUs with GFNI as well.
    ///
    /// # Safety
    /// As [`dot_q4k_four`]'s, on a CPU with GFNI.
    dot_q4k_four_gfni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,gfni",
    true
);

/// One Q4_K block at `p` against the activation's four 64-value quarters `x`: per quarter one
/// `vpdpbusd` of its 32 bytes' nibbles (low, then high: two sub-blocks), the four sums narrowed
/// pairwise to 16 bits and multiplied by their sub-blocks' scales with `vpdpwssd`, the scales
/// being the words of `words` that `idx` picks (`SCALE_WORDS`). The kernels' shared inner step
/// ([`dot_q4k_one`], [`dot_q4k_four`]); inlined into each build.
#[inline(always)]
unsafe fn q4k_scaled_sums<const GFNI: bool>(
    p: *const u8,
    x: &[__m512i; 4],
    idx: (__m512i, __m512i),
    words: __m512i,
) -> __m512i {
    let zero = _mm512_setzero_si512();
    let s: [__m512i; 4] = std::array::from_fn(|j| {
        _mm512_dpbusd_epi32(zero, grouped_nibbles::<GFNI>(p.add(16 + 32 * j)), x[j])
    });
    _mm512_dpwssd_epi32(
        _mm512_dpwssd_epi32(
            zero,
            _mm512_packs_epi32(s[0], s[1]),
            _mm512_permutexvar_epi16(idx.0, words),
        ),
        _mm512_packs_epi32(s[2], s[3]),
        _mm512_permutexvar_epi16(idx.1, words),
    )
}

/// [`dot_q4k_four`]'s mins: word `w` takes row `w / 8`'s min `w % 8` from the scale and min words
/// of rows 0, 1 (indices 0..32: row 1 from 16) and rows 2, 3 (from 32), each row's 8 scales
/// before its 8 mins.
const FOUR_MINS: [i16; 32] = {
    let mut out = [0i16; 32];
    let mut w = 0;
    while w < 32 {
        let r = w / 8;
        out[w] = (32 * (r / 2) + 16 * (r % 2) + 8 + w % 8) as i16;
        w += 1;
    }
    out
};

/// [`k4_scales_mins`] for four Q4_K blocks at once: lane `r` of `raw` holds a block's 12 packed
/// bytes (then 4 unused), lane `r` of the result its 8 scales then 8 mins.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn k4_scales_mins_four(raw: __m512i) -> __m512i {
    let lanes = |v: __m128i| _mm512_broadcast_i32x4(v);
    let low = _mm512_shuffle_epi8(
        raw,
        lanes(_mm_setr_epi8(
            0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11,
        )),
    );
    let top = _mm512_shuffle_epi8(
        raw,
        lanes(_mm_setr_epi8(
            -1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7,
        )),
    );
    let keep = lanes(_mm_setr_epi8(
        63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0,
    ));
    let high_nibble = lanes(_mm_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15,
    ));
    let v = _mm512_or_si512(
        _mm512_and_si512(low, keep),
        _mm512_and_si512(_mm512_srli_epi16(low, 4), high_nibble),
    );
    _mm512_or_si512(
        v,
        _mm512_and_si512(_mm512_srli_epi16(top, 2), _mm512_set1_epi8(0x30)),
    )
}

/// The 8 six-bit scales, then the 8 mins, of the Q4_K block at `p` (12 packed bytes at `p + 4`)
/// as 16 bytes: ggml's `get_scale_min_k4` for every sub-block at once, in vector registers
/// instead of the scalar shifts and masks (which took a third of the one-row kernel's
/// instructions). Sub-blocks 0..4 keep the low 6 bits of bytes 0..4 (scales) and 4..8 (mins);
/// 4..8 take the nibbles of bytes 8..12 and, as bits 4–5, the top two bits of bytes 0..4
/// (scales) and 4..8 (mins).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn k4_scales_mins(p: *const u8) -> __m128i {
    // 16 bytes from p + 4: the 12 packed bytes and 4 quant bytes, unused.
    let q = _mm_loadu_si128(p.add(4) as *const __m128i);
    let low = _mm_shuffle_epi8(
        q,
        _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11),
    );
    let top = _mm_shuffle_epi8(
        q,
        _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7),
    );
    let keep = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
    let high_nibble = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
    let v = _mm_or_si128(
        _mm_and_si128(low, keep),
        _mm_and_si128(_mm_srli_epi16(low, 4), high_nibble),
    );
    // (b >> 6) << 4 = (b >> 2) & 0x30; the 16-bit shift brings nothing into bits 4–5.
    _mm_or_si128(
        v,
        _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30)),
    )
}

/// The loop of the one-row K-quant kernels: for each 256-value block, the activation's four
/// 64-value quarters, its 16-value sums and its scale; then, for each of the `RW` weight rows,
/// a prefetch of the same block one tile ahead and `block(block bytes, quarters, sums, scale,
/// state)`, which folds the block into that row's state.
///
/// # Safety
/// Each row of `w` holds whole blocks of `bb` bytes, `a` is a Q8_K activation of their width.
///
/// Inlined into each caller without target features of its own, so that a caller's (GFNI in
/// [`dot_q4k_one_gfni`]) reach the `block` closure inlined with it.
#[inline(always)]
unsafe fn k_rows<const RW: usize, S: Copy>(
    w: [&[u8]; RW],
    bb: usize,
    a: &Act,
    row: usize,
    init: S,
    block: impl Fn(*const u8, &[__m512i; 4], __m256i, f32, S) -> S,
) -> [S; RW] {
    let nb = w[0].len() / bb;
    let w = ptrs(w);
    let xq = a.row_qs(row).as_ptr();
    let xd = a.row_d(row).as_ptr();
    let xs = a.row_bsums(row).as_ptr();
    let ahead = prefetch_distance(RW * nb * bb);
    let mut state = [init; RW];
    for b in 0..nb {
        let x: [__m512i; 4] =
            std::array::from_fn(|j| _mm512_loadu_si512(xq.add(256 * b + 64 * j) as *const _));
        let bs = _mm256_loadu_si256(xs.add(16 * b) as *const __m256i);
        let dx = *xd.add(b);
        for i in 0..RW {
            let p = w[i].add(bb * b);
            prefetch_k(p, bb, ahead);
            state[i] = block(p, &x, bs, dx, state[i]);
        }
    }
    state
}

/// The K-quant block of `bb` bytes at `p`, `ahead` bytes on (one tile) into L1 and twice that
/// into L2 only: Q4_K/Q6_K read a few percent faster from memory than with the first alone
/// (benches/README.md).
#[inline(always)]
unsafe fn prefetch_k(p: *const u8, bb: usize, ahead: usize) {
    let mut line = 0;
    while line < bb {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(ahead + line) as *const i8);
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(2 * ahead + line) as *const i8);
        line += 64;
    }
}

/// [`dot_q4k_one`]'s scale words for the packed quarters (0, 1) and (2, 3): `vpackssdw` takes,
/// in each 128-bit lane `c`, four 32-bit sums of its first operand then four of its second. A
/// quarter's lanes 0..8 are its low nibbles (sub-block `2q`), lanes 8..16 its high nibbles
/// (`2q + 1`), so lane `c` holds sub-block `2q + c / 2` of each quarter `q`.
const SCALE_WORDS: [[i16; 32]; 2] = {
    let mut out = [[0i16; 32]; 2];
    let mut pair = 0;
    while pair < 2 {
        let mut w = 0;
        while w < 32 {
            let (c, second) = (w / 8, (w % 8) >= 4);
            let quarter = 2 * pair + second as usize;
            out[pair][w] = (2 * quarter + c / 2) as i16;
            w += 1;
        }
        pair += 1;
    }
    out
};

/// One activation row (Q8_K) against `RW` Q6_K weight rows (a decoding step), as
/// [`dot_q4k_one`] does Q4_K: the 6-bit quants are unsigned (`q − 32` is the value), so each
/// 64-value group is one `vpdpbusd`, the group sums (at most 4 · 63 · 128) are packed pairwise to
/// 16 bits and meet their 16-value sub-blocks' signed scales in `vpdpwssd`, and the offset's share
/// `−32 · Σ scale · (the activation's 16-value sums)` is the starting value. A half-block's 64
/// low-bit bytes give two groups (low nibbles, then high nibbles); the two high bits of each come
/// from its 32 `qh` bytes, shifted into place per 256-bit half.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn dot_q6k_one<const RW: usize>(w: [&[u8]; RW], a: &Act, row: usize) -> [f32; RW] {
    let zero = _mm512_setzero_si512();
    let m0f = _mm512_set1_epi8(0x0F);
    // Group "lo" of a half (values 0..64): qh bits 0–1 (lower 256 bits) and 2–3 (upper), moved
    // to bits 4–5; group "hi" (values 64..128): bits 4–5 and 6–7.
    let halves8 = |lo: u8, hi: u8| {
        _mm512_inserti64x4(_mm512_set1_epi8(lo as i8), _mm256_set1_epi8(hi as i8), 1)
    };
    let halves16 =
        |lo: i16, hi: i16| _mm512_inserti64x4(_mm512_set1_epi16(lo), _mm256_set1_epi16(hi), 1);
    let (mask_lo, shl_lo) = (halves8(0x03, 0x0C), halves16(4, 2));
    let (mask_hi, shr_hi) = (halves8(0x30, 0xC0), halves16(0, 2));
    let idx0 = _mm512_loadu_si512(Q6K_SCALE_WORDS[0].as_ptr() as *const _);
    let idx1 = _mm512_loadu_si512(Q6K_SCALE_WORDS[1].as_ptr() as *const _);
    let acc = k_rows(w, 210, a, row, _mm512_setzero_ps(), |p, x, bs, dx, acc| {
        let sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i));
        // −32 · Σ scale · 16-value sum, in the lower eight lanes.
        let mut t = _mm512_zextsi256_si512(_mm256_sub_epi32(
            _mm256_setzero_si256(),
            _mm256_slli_epi32(_mm256_madd_epi16(bs, sc), 5),
        ));
        let sc = _mm512_castsi256_si512(sc);
        for (n, idx) in [idx0, idx1].into_iter().enumerate() {
            let ql = _mm512_loadu_si512(p.add(64 * n) as *const _);
            let qh =
                _mm512_broadcast_i64x4(_mm256_loadu_si256(p.add(128 + 32 * n) as *const __m256i));
            // (A & C) | B: the low nibbles under the mask, the high bits beside them.
            let lo = _mm512_ternarylogic_epi32::<0xEC>(
                ql,
                _mm512_sllv_epi16(_mm512_and_si512(qh, mask_lo), shl_lo),
                m0f,
            );
            let hi = _mm512_ternarylogic_epi32::<0xEC>(
                _mm512_srli_epi16(ql, 4),
                _mm512_srlv_epi16(_mm512_and_si512(qh, mask_hi), shr_hi),
                m0f,
            );
            let s_lo = _mm512_dpbusd_epi32(zero, lo, x[2 * n]);
            let s_hi = _mm512_dpbusd_epi32(zero, hi, x[2 * n + 1]);
            t = _mm512_dpwssd_epi32(
                t,
                _mm512_packs_epi32(s_lo, s_hi),
                _mm512_permutexvar_epi16(idx, sc),
            );
        }
        let d = f16_to_f32(p.add(208)) * dx;
        _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(t), acc)
    });
    acc.map(|acc| _mm512_reduce_add_ps(acc))
}

/// [`dot_q6k_one`]'s scale words for half `n`: in each 128-bit lane `c` the packed sums are four
/// of group "lo" (values `16c..16c + 16` of the half: sub-block `8n + c`) then four of group
/// "hi" (sub-block `8n + 4 + c`).
const Q6K_SCALE_WORDS: [[i16; 32]; 2] = {
    let mut out = [[0i16; 32]; 2];
    let mut n = 0;
    while n < 2 {
        let mut w = 0;
        while w < 32 {
            let (c, hi) = (w / 8, (w % 8) >= 4);
            out[n][w] = (8 * n + 4 * hi as usize + c) as i16;
            w += 1;
        }
        n += 1;
    }
    out
};

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
    let rec = prep_pair(kind);
    let store = |o: *mut u8, wv: __m512i, dw: __m512| store_prepared(o, wv, dw);
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

/// Write one prepared block pair at `o`: the 64 signed quants `wv`, their scales per lane `dw`,
/// and `−128·Σw` per lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn store_prepared(o: *mut u8, wv: __m512i, dw: __m512) {
    let neg = _mm512_sub_epi32(
        _mm512_setzero_si512(),
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(0x80u8 as i8), wv),
    );
    _mm512_storeu_si512(o as *mut _, wv);
    _mm512_storeu_ps(o.add(64) as *mut f32, dw);
    _mm512_storeu_si512(o.add(128) as *mut _, neg);
}

/// [`prepare`] for rows of a regrouped weight ([`super::regroup`]), read in that layout: `rows`
/// holds, per row, its group's first record, the group's row count and the row's place in it.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
pub unsafe fn prepare_grouped(
    kind: super::QKind,
    rows: &[(*const u8, usize, usize)],
    npairs: usize,
    out: &mut [u8],
) {
    match kind {
        super::QKind::Q8_0 => prepare_grouped_as::<Q80>(rows, npairs, out),
        super::QKind::Q4_0 => prepare_grouped_as::<Q40>(rows, npairs, out),
        _ => prepare_grouped_as::<Q50>(rows, npairs, out),
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn prepare_grouped_as<F: Grouped>(
    rows: &[(*const u8, usize, usize)],
    npairs: usize,
    out: &mut [u8],
) {
    let off = _mm512_set1_epi8(F::OFFSET as i8);
    for (r, &(group, g, i)) in rows.iter().enumerate() {
        let rec = g * 2 * F::KIND.block_bytes();
        for p in 0..npairs {
            let base = group.add(p * rec);
            let wv = _mm512_sub_epi8(F::quants::<false>(base, g, i), off);
            let (d0, d1) = (f16_to_f32(base.add(4 * i)), f16_to_f32(base.add(4 * i + 2)));
            store_prepared(
                out.as_mut_ptr().add((r * npairs + p) * 192),
                wv,
                halves(d0, d1),
            );
        }
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
