//! The GGML block formats hakaru computes on, as they lie in a GGUF file (little-endian), their
//! dequantization, and the quantization of activations into the 8-bit formats the dot products
//! take (`Q8_0` blocks of 32 for the 32-wide weight types, `Q8_K` blocks of 256 for K-quants).
//!
//! Layouts (bytes), as in ggml's `block_*` structs:
//! - `Q8_0`: f16 `d`, 32 × i8 `qs`: 34 per 32 values, `x = d·q`.
//! - `Q4_0`: f16 `d`, 16 × u8 `qs` (value j in the low nibble of byte j, value j+16 in its high
//!   nibble): 18 per 32, `x = d·(q − 8)`.
//! - `Q5_0`: f16 `d`, u32 `qh` (the fifth bit of each value), 16 × u8 `qs` as Q4_0: 22 per 32,
//!   `x = d·(q − 16)`.
//! - `Q4_K`: f16 `d`, f16 `dmin`, 12 bytes of packed 6-bit scales and mins for 8 sub-blocks of
//!   32, 128 × u8 `qs`: 144 per 256, `x = d·sc·q − dmin·m`.
//! - `Q6_K`: 128 × u8 `ql` (low 4 bits), 64 × u8 `qh` (high 2 bits), 16 × i8 `scales`, f16 `d`:
//!   210 per 256, `x = d·sc·(q − 32)`.

use half::f16;

/// A weight format with its own kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QKind {
    Q8_0,
    Q4_0,
    Q5_0,
    Q4K,
    Q6K,
}

/// The activation format a weight format's dot product takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActKind {
    /// Blocks of 32 values, one scale each.
    Q8_0,
    /// Blocks of 256 values, one scale and 16 sums of 16 quants each.
    Q8K,
}

impl QKind {
    /// Values per block.
    pub const fn block_elems(self) -> usize {
        match self {
            QKind::Q8_0 | QKind::Q4_0 | QKind::Q5_0 => 32,
            QKind::Q4K | QKind::Q6K => 256,
        }
    }
    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            QKind::Q8_0 => 34,
            QKind::Q4_0 => 18,
            QKind::Q5_0 => 22,
            QKind::Q4K => 144,
            QKind::Q6K => 210,
        }
    }
    pub const fn act(self) -> ActKind {
        match self {
            QKind::Q8_0 | QKind::Q4_0 | QKind::Q5_0 => ActKind::Q8_0,
            QKind::Q4K | QKind::Q6K => ActKind::Q8K,
        }
    }
}

impl ActKind {
    pub const fn block_elems(self) -> usize {
        match self {
            ActKind::Q8_0 => 32,
            ActKind::Q8K => 256,
        }
    }
}

#[inline]
pub fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K block's 12 packed bytes
/// (ggml's `get_scale_min_k4`).
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Dequantize one row (`out.len()` values) stored as `kind` blocks in `b`, with the arithmetic
/// ggml's reference dequantizers use (so the result equals theirs bit for bit).
pub fn dequantize_row(kind: QKind, b: &[u8], out: &mut [f32]) {
    let (be, bb) = (kind.block_elems(), kind.block_bytes());
    debug_assert_eq!(b.len(), out.len() / be * bb);
    for (blk, y) in b.chunks_exact(bb).zip(out.chunks_exact_mut(be)) {
        match kind {
            QKind::Q8_0 => {
                let d = f16_at(blk, 0);
                for (y, &q) in y.iter_mut().zip(&blk[2..34]) {
                    *y = (q as i8) as f32 * d;
                }
            }
            QKind::Q4_0 => {
                let d = f16_at(blk, 0);
                let qs = &blk[2..18];
                for j in 0..16 {
                    y[j] = ((qs[j] & 0xF) as i32 - 8) as f32 * d;
                    y[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
                }
            }
            QKind::Q5_0 => {
                let d = f16_at(blk, 0);
                let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
                let qs = &blk[6..22];
                for j in 0..16 {
                    let h0 = (((qh >> j) << 4) & 0x10) as u8;
                    let h1 = ((qh >> (j + 12)) & 0x10) as u8;
                    y[j] = (((qs[j] & 0xF) | h0) as i32 - 16) as f32 * d;
                    y[j + 16] = (((qs[j] >> 4) | h1) as i32 - 16) as f32 * d;
                }
            }
            QKind::Q4K => {
                let d = f16_at(blk, 0);
                let dmin = f16_at(blk, 2);
                let scales = &blk[4..16];
                let qs = &blk[16..144];
                for j in 0..4 {
                    let (sc1, m1) = scale_min_k4(2 * j, scales);
                    let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
                    let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
                    let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
                    let q = &qs[32 * j..32 * j + 32];
                    for l in 0..32 {
                        y[64 * j + l] = d1 * (q[l] & 0xF) as f32 - m1;
                        y[64 * j + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
                    }
                }
            }
            QKind::Q6K => {
                let d = f16_at(blk, 208);
                for n in 0..2 {
                    let ql = &blk[64 * n..64 * n + 64];
                    let qh = &blk[128 + 32 * n..128 + 32 * n + 32];
                    let sc = &blk[192 + 8 * n..192 + 8 * n + 8];
                    let y = &mut y[128 * n..128 * n + 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                        y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                        y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                        y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
                    }
                }
            }
        }
    }
}

/// Activations quantized to 8 bits, `rows` rows of `k` values: quants contiguous per row, one f32
/// scale per block, and the sum of each 16 quants (which the K-quant kernels need for the mins
/// and offsets, and the Q4_0/Q5_0 ones for the offset of their unsigned quants). Kept as
/// separate arrays so the kernels load whole vectors of quants.
#[derive(Debug, Clone)]
pub struct Act {
    pub kind: ActKind,
    pub k: usize,
    pub rows: usize,
    pub qs: Vec<i8>,
    pub d: Vec<f32>,
    pub bsums: Vec<i16>,
}

impl Act {
    /// Quantize `x` (`rows × k`, row-major); `k` must be a multiple of the block size.
    pub fn quantize(kind: ActKind, x: &[f32], k: usize) -> Act {
        Self::quantize_with(kind, x, k, false)
    }

    /// As [`Act::quantize`]; `simd`: use the AVX2 code (the caller has checked the CPU). It
    /// rounds halves to even where the portable code rounds them away from zero.
    pub fn quantize_with(kind: ActKind, x: &[f32], k: usize, simd: bool) -> Act {
        let rows = x.len() / k;
        let be = kind.block_elems();
        let mut a = Act {
            kind,
            k,
            rows,
            qs: vec![0; rows * k],
            d: vec![0.0; rows * k / be],
            bsums: vec![0; rows * k / 16],
        };
        match kind {
            ActKind::Q8_0 if simd => {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `simd` is only set by callers that checked AVX2/FMA/F16C.
                unsafe {
                    super::x86::quantize_q8_0(x, &mut a.qs, &mut a.d)
                };
            }
            ActKind::Q8_0 => {
                for ((x, q), d) in x
                    .chunks_exact(32)
                    .zip(a.qs.chunks_exact_mut(32))
                    .zip(a.d.iter_mut())
                {
                    quantize_block_q8_0(x, q, d);
                }
            }
            ActKind::Q8K if simd => {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                unsafe {
                    super::x86::quantize_q8k(x, &mut a.qs, &mut a.d, &mut a.bsums)
                };
            }
            ActKind::Q8K => {
                for (((x, q), d), s) in x
                    .chunks_exact(256)
                    .zip(a.qs.chunks_exact_mut(256))
                    .zip(a.d.iter_mut())
                    .zip(a.bsums.chunks_exact_mut(16))
                {
                    quantize_block_q8k(x, q, d, s);
                }
            }
        }
        if kind == ActKind::Q8_0 {
            for (s, q) in a.bsums.iter_mut().zip(a.qs.chunks_exact(16)) {
                *s = q.iter().map(|&v| v as i16).sum();
            }
        }
        a
    }
    pub fn row_qs(&self, r: usize) -> &[i8] {
        &self.qs[r * self.k..(r + 1) * self.k]
    }
    pub fn row_d(&self, r: usize) -> &[f32] {
        let nb = self.k / self.kind.block_elems();
        &self.d[r * nb..(r + 1) * nb]
    }
    pub fn row_bsums(&self, r: usize) -> &[i16] {
        &self.bsums[r * self.k / 16..(r + 1) * self.k / 16]
    }
    /// The values the quantized row stands for (for tests).
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let be = self.kind.block_elems();
        let d = self.row_d(r);
        self.row_qs(r)
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * d[i / be])
            .collect()
    }
}

/// ggml's `quantize_row_q8_0`, with the scale kept in f32.
fn quantize_block_q8_0(x: &[f32], q: &mut [i8], d: &mut f32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    *d = amax / 127.0;
    let id = if amax > 0.0 { 127.0 / amax } else { 0.0 };
    for (q, v) in q.iter_mut().zip(x) {
        *q = (v * id).round().clamp(-127.0, 127.0) as i8;
    }
}

/// ggml's `quantize_row_q8_K`: the scale maps the value of largest magnitude to −127 exactly.
fn quantize_block_q8k(x: &[f32], q: &mut [i8], d: &mut f32, bsums: &mut [i16]) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        *d = 0.0;
        q.fill(0);
        bsums.fill(0);
        return;
    }
    let iscale = -127.0 / max;
    for (q, v) in q.iter_mut().zip(x) {
        *q = (iscale * v).round().clamp(-128.0, 127.0) as i8;
    }
    for (s, q) in bsums.iter_mut().zip(q.chunks_exact(16)) {
        *s = q.iter().map(|&v| v as i16).sum();
    }
    *d = 1.0 / iscale;
}
