//! One decoding step (a single new token) on the CPU, on plain slices of f32 activations, for
//! f32, bf16 and f16 weights (a bf16 or f16 model's norm weights, biases and KV cache keep their
//! dtype and are widened as they are read; its activations are not rounded between operations
//! as the general path rounds them, so the two agree within that rounding, not bit for bit).
//!
//! Why not the general forward pass: for one token every operation between the projections
//! (norms, rotary embedding, attention over the cache, SiLU, residual adds) works on a few
//! thousand values, and as candle operations each costs an allocation, a dispatch and often a
//! hand-off to the thread pool. Measured on Qwen2.5-0.5B's shape that was about a quarter of a
//! decoding step, and the pauses between parallel projections let the pool's threads fall asleep,
//! so each projection began by waking them (benches/README.md). Here the hidden state stays in one
//! buffer, those operations are loops over it with candle's own formulas (RMS norm,
//! `rope`/`rope_i`, soft-max, SiLU; `e^x` in the last two computed by [`exp_f32`]), and the
//! projections run on hakaru's quantized kernels ([`super::quant`]) or, for other weights, as
//! the general path runs them. While one thread does the work between two projections, and while
//! a projection's last task finishes, the others pull the next weight's first bytes into the
//! caches ([`Ahead`]). The KV cache is the same [`KvCache`], so prefill and decoding mix freely.

use candle_core::{CpuStorage, DType, Storage, Tensor};
use half::{bf16, f16};
use std::sync::Mutex;

use super::matvec::{avx2, dot_f32, matvec_f32, one_row_tasks, overlap, Ahead, Row};
use super::quant::{self, QWeight};
use super::{KvCache, Linear, RmsNorm, Transformer};
use crate::error::{Error, Result};

/// Run `f` on the values of a contiguous f32 CPU tensor.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (s, l) = t.storage_and_layout();
    match (&*s, l.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(f(&v[a..b])),
        // A bf16 or f16 model's norm weights and biases: a few thousand values, widened per
        // call.
        (Storage::Cpu(CpuStorage::BF16(v)), Some((a, b))) => Ok(f(&widened(&v[a..b]))),
        (Storage::Cpu(CpuStorage::F16(v)), Some((a, b))) => Ok(f(&widened(&v[a..b]))),
        _ => Err(Error::Other(
            "decoding step: expected a contiguous f32, bf16 or f16 tensor on the CPU".into(),
        )),
    }
}

fn widened<T: Row>(v: &[T]) -> Vec<f32> {
    v.iter().map(|x| x.widen()).collect()
}

/// RMS norm in place over each `weight.len()`-wide chunk of `x` (candle's `rms_norm`).
fn rms_norm(n: &RmsNorm, x: &mut [f32]) -> Result<()> {
    with_f32(&n.weight, |w| {
        let eps = n.eps as f32;
        for c in x.chunks_mut(w.len()) {
            let sum2: f32 = c.iter().map(|v| v * v).sum();
            let m = (sum2 / w.len() as f32 + eps).sqrt();
            for (v, a) in c.iter_mut().zip(w) {
                *v = *v / m * *a;
            }
        }
    })
}

fn add_bias(b: &Tensor, out: &mut [f32]) -> Result<()> {
    with_f32(b, |b| {
        for (o, b) in out.iter_mut().zip(b) {
            *o += b;
        }
    })
}

/// `out = x Wᵀ (+ b)` for one row; threads left without a task pull `ahead` into the caches.
fn project(l: &Linear, x: &[f32], out: &mut Vec<f32>, ahead: &Ahead) -> Result<()> {
    project_many([l], x, std::array::from_mut(out), ahead)
}

/// Several projections of the same row; on hakaru's kernels all in one parallel region.
fn project_many<const N: usize>(
    ls: [&Linear; N],
    x: &[f32],
    outs: &mut [Vec<f32>; N],
    ahead: &Ahead,
) -> Result<()> {
    let ws: Vec<&QWeight> = ls.iter().filter_map(|l| packed(l)).collect();
    if ws.len() < N {
        for (l, o) in ls.iter().zip(outs.iter_mut()) {
            // Unquantized weights of any dtype against the f32 activations.
            if let Linear::Dense { w, b } = l {
                if let Some(y) = matvec_f32(x, w)? {
                    *o = y;
                    if let Some(b) = b {
                        add_bias(b, o)?;
                    }
                    continue;
                }
            }
            let t = Tensor::from_slice(x, (1, x.len()), &candle_core::Device::Cpu)?;
            *o = l.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
        }
        return Ok(());
    }
    for (o, w) in outs.iter_mut().zip(&ws) {
        o.clear();
        o.resize(w.rows(), 0.0);
    }
    let mut slots: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
    quant::matvec_many_ahead(&ws, x, &mut slots, ahead)?;
    for (l, o) in ls.iter().zip(outs.iter_mut()) {
        if let Linear::Packed { b: Some(b), .. } = l {
            add_bias(b, o)?;
        }
    }
    Ok(())
}

fn packed(l: &Linear) -> Option<&QWeight> {
    match l {
        Linear::Packed { w, .. } => Some(w),
        _ => None,
    }
}

/// What to pull into the caches before projection `l`: its first bytes, when hakaru's kernels
/// run it (other weights go through candle, whose order of reading is its own).
fn ahead_of(l: &Linear) -> Ahead<'_> {
    packed(l).map_or(Ahead::none(), |w| Ahead::new(w.data()))
}

/// From this many multiply-adds of attention on, the heads run in parallel.
const PARALLEL_ATTENTION: usize = 1 << 16;

/// `e^x` for the soft-max and SiLU of the decoding step, within 2 ulp of the exact value over
/// the range they use (clamped to about ±87, where `e^x` leaves f32's normal range).
///
/// Why not `f32::exp`: that is a libm call per value, which the compiler cannot vectorize; SiLU
/// over an MLP's intermediate width and the soft-max of every head took about 5% of a
/// Qwen2.5-0.5B decoding step so (benches/README.md). This is plain arithmetic (range reduction
/// by `ln 2` in two parts, a degree-6 polynomial of the remainder, the power of two put in the
/// exponent bits), so the loops calling it run eight or sixteen values at a time.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    // ln 2 = 0.693359375 − 2.12194440e-4, the first part exact in a few bits, so `n · LN2_HI`
    // has no rounding error.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = p * (r * r) + r + 1.0;
    // 2ⁿ from the bits of `n + 1.5·2²³`, whose low bits hold `n` (no float-to-integer
    // conversion, which the compiler would not vectorize, since Rust's saturates).
    let bits = (n + 12_582_912.0).to_bits().wrapping_sub(0x4b40_0000 - 127);
    y * f32::from_bits(bits << 23)
}

/// `g ← SiLU(g) · u`, candle's SiLU (`v / (1 + e^−v)`) with [`exp_f32`].
#[inline(always)]
fn silu_mul(g: &mut [f32], u: &[f32]) {
    for (gi, ui) in g.iter_mut().zip(u) {
        *gi = *gi / (exp_f32(-*gi) + 1.0) * ui;
    }
}

/// [`silu_mul`] compiled for AVX2 (the same operations, so the same result).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn silu_mul_avx2(g: &mut [f32], u: &[f32]) {
    silu_mul(g, u)
}

fn silu(g: &mut [f32], u: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { silu_mul_avx2(g, u) };
    }
    silu_mul(g, u)
}

/// Dot products of four rows with `x` ([`dot_f32`] each): the portable form of [`dot4_avx2`].
#[inline(always)]
fn dot4_f32(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    w.map(|r| dot_f32(&r[..x.len()], x))
}

/// [`dot4_f32`] with AVX2 vectors, the four rows' eight partial sums side by side: the same
/// multiplications and additions in the same order, so the same result. Written with
/// intrinsics because the compiler, given the four dot products interleaved in plain code,
/// vectorized across the rows instead, with a shuffle per product.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot4_avx2(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    use std::arch::x86_64::*;
    let n = x.len() / 8 * 8;
    let w = w.map(|r| &r[..x.len()]);
    let mut acc = [_mm256_setzero_ps(); 4];
    for c in (0..n).step_by(8) {
        let xv = _mm256_loadu_ps(x.as_ptr().add(c));
        for (a, r) in acc.iter_mut().zip(&w) {
            // SAFETY: `c + 8 <= n <= r.len()`.
            *a = _mm256_add_ps(*a, _mm256_mul_ps(_mm256_loadu_ps(r.as_ptr().add(c)), xv));
        }
    }
    let mut out = [0f32; 4];
    for ((o, a), r) in out.iter_mut().zip(acc).zip(&w) {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), a);
        let mut s: f32 = lanes.iter().sum();
        for (wi, xi) in r[n..].iter().zip(&x[n..]) {
            s += wi * xi;
        }
        *o = s;
    }
    out
}

/// The attention of `q`'s heads (`q.len() / d` of them, sharing one KV head): each against
/// `len` cached positions, the keys at `k.0[k.1 + s·k.2..]` and the values at
/// `v.0[v.1 + s·v.2..]`, into `o` (`d` values a head). A bf16 or f16 cache (a model of that
/// dtype) is widened to f32 four positions at a time. The arithmetic is written out in a fixed
/// order (eight partial sums per dot product, the values added position by position), so the
/// compiled code's vector width does not change the result, nor does the number of heads taken
/// together: they only share each key's and value's reading (from memory once, then from the
/// first-level cache for the others), a head's own sums being those it has alone.
#[inline(always)]
fn attend_head<T: Row, const AVX2: bool>(
    q: &[f32],
    d: usize,
    (kd, k0, ks): (&[T], usize, usize),
    (vd, v0, vs): (&[T], usize, usize),
    len: usize,
    scale: f32,
    o: &mut [f32],
) {
    let n = q.len() / d;
    let mut wide = match T::as_f32(kd) {
        Some(_) => Vec::new(),
        None => vec![0f32; 4 * d],
    };
    // Positions `s..s + m` of `data` from `first` (`stride` apart), as f32 rows.
    fn rows<'a, T: Row>(
        (data, first, stride): (&'a [T], usize, usize),
        s: usize,
        m: usize,
        d: usize,
        wide: &'a mut [f32],
    ) -> [&'a [f32]; 4] {
        let row = |j: usize| &data[first + (s + j) * stride..][..d];
        match T::as_f32(data) {
            Some(f) => std::array::from_fn(|j| {
                let at = first + (s + j.min(m - 1)) * stride;
                &f[at..at + d]
            }),
            None => {
                for (j, w) in wide.chunks_exact_mut(d).take(m).enumerate() {
                    for (wi, v) in w.iter_mut().zip(row(j)) {
                        *wi = v.widen();
                    }
                }
                let wide = &*wide;
                std::array::from_fn(|j| &wide[j.min(m - 1) * d..][..d])
            }
        }
    }
    let mut p = vec![0f32; n * len];
    let done = len / 4 * 4;
    for s in (0..done).step_by(4) {
        let keys = rows((kd, k0, ks), s, 4, d, &mut wide);
        for (qh, ph) in q.chunks_exact(d).zip(p.chunks_exact_mut(len)) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `AVX2` is set only by `attend_head_avx2`, which runs where the CPU has it.
            let dots = if AVX2 {
                unsafe { dot4_avx2(keys, qh) }
            } else {
                dot4_f32(keys, qh)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let dots = dot4_f32(keys, qh);
            for (pi, dot) in ph[s..s + 4].iter_mut().zip(dots) {
                *pi = dot * scale;
            }
        }
    }
    for s in done..len {
        let key = rows((kd, k0, ks), s, 1, d, &mut wide)[0];
        for (qh, ph) in q.chunks_exact(d).zip(p.chunks_exact_mut(len)) {
            ph[s] = dot_f32(key, qh) * scale;
        }
    }
    for ph in p.chunks_exact_mut(len) {
        let max = ph.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for x in ph.iter_mut() {
            *x = exp_f32(*x - max);
        }
        let sum: f32 = ph.iter().sum();
        for x in ph.iter_mut() {
            *x /= sum;
        }
    }
    o.fill(0.0);
    // Four positions per pass over a head's output, each value still taking the four additions
    // in order.
    for s in (0..done).step_by(4) {
        let vals = rows((vd, v0, vs), s, 4, d, &mut wide);
        for (oh, ph) in o.chunks_exact_mut(d).zip(p.chunks_exact(len)) {
            let ps = &ph[s..s + 4];
            let v = (vals[0].iter().zip(vals[1]), vals[2].iter().zip(vals[3]));
            for (oi, ((a, b), (c, e))) in oh.iter_mut().zip(v.0.zip(v.1)) {
                let mut t = *oi;
                t += ps[0] * a;
                t += ps[1] * b;
                t += ps[2] * c;
                t += ps[3] * e;
                *oi = t;
            }
        }
    }
    for s in done..len {
        let val = rows((vd, v0, vs), s, 1, d, &mut wide)[0];
        for (oh, ph) in o.chunks_exact_mut(d).zip(p.chunks_exact(len)) {
            for (oi, vi) in oh.iter_mut().zip(val) {
                *oi += ph[s] * vi;
            }
        }
    }
}

/// [`attend_head`] compiled for AVX2 (eight lanes where the baseline build has four): the
/// same operations in the same order, so the same result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_head_avx2<T: Row>(
    q: &[f32],
    d: usize,
    k: (&[T], usize, usize),
    v: (&[T], usize, usize),
    len: usize,
    scale: f32,
    o: &mut [f32],
) {
    attend_head::<T, true>(q, d, k, v, len, scale, o)
}

/// Attention of one query position: `q` holds `n_head × d` values, `k` and `v` are the cached
/// `(1, n_kv, len, d)` views; `out` gets `n_head × d` values. Query heads sharing a KV head are
/// adjacent, as in the general path.
fn attend(
    q: &[f32],
    k: &Tensor,
    v: &Tensor,
    (n_head, n_kv, d): (usize, usize, usize),
    out: &mut [f32],
) -> Result<()> {
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let len = kl.dims()[2];
    let (kst, vst) = (kl.stride(), vl.stride());
    if kst[3] != 1 || vst[3] != 1 || vl.dims()[2] != len {
        return Err(Error::Other(
            "decoding step: unexpected KV cache layout".into(),
        ));
    }
    let (ko, vo) = (kl.start_offset(), vl.start_offset());
    let n_rep = n_head / n_kv;
    let scale = (1.0 / (d as f64).sqrt()) as f32;
    let heads = Heads {
        q,
        d,
        len,
        scale,
        n_rep,
        k: (ko, kst[1], kst[2]),
        v: (vo, vst[1], vst[2]),
        parallel: len * n_head * d >= PARALLEL_ATTENTION,
    };
    #[cfg(target_arch = "x86_64")]
    let (f32_fast, bf16_fast, f16_fast): (Head<f32>, Head<bf16>, Head<f16>) =
        (attend_head_avx2, attend_head_avx2, attend_head_avx2);
    #[cfg(not(target_arch = "x86_64"))]
    let (f32_fast, bf16_fast, f16_fast): (Head<f32>, Head<bf16>, Head<f16>) = (
        attend_head::<f32, false>,
        attend_head::<bf16, false>,
        attend_head::<f16, false>,
    );
    match (&*ks, &*vs) {
        (Storage::Cpu(CpuStorage::F32(kd)), Storage::Cpu(CpuStorage::F32(vd))) => {
            heads.run(out, kd, vd, f32_fast, attend_head::<f32, false>)
        }
        // A bf16 or f16 model's cache.
        (Storage::Cpu(CpuStorage::BF16(kd)), Storage::Cpu(CpuStorage::BF16(vd))) => {
            heads.run(out, kd, vd, bf16_fast, attend_head::<bf16, false>)
        }
        (Storage::Cpu(CpuStorage::F16(kd)), Storage::Cpu(CpuStorage::F16(vd))) => {
            heads.run(out, kd, vd, f16_fast, attend_head::<f16, false>)
        }
        _ => {
            return Err(Error::Other(
                "decoding step: the KV cache is not f32, bf16 or f16 on the CPU".into(),
            ))
        }
    }
    Ok(())
}

/// The heads of one query position's attention: where each reads the cache, and how.
struct Heads<'a> {
    q: &'a [f32],
    d: usize,
    len: usize,
    scale: f32,
    /// Query heads per KV head.
    n_rep: usize,
    /// Keys and values: first offset, stride per KV head, stride per position.
    k: (usize, usize, usize),
    v: (usize, usize, usize),
    parallel: bool,
}

impl Heads<'_> {
    /// Every head into its `d` values of `out`, with `fast` (an AVX2 build) where the CPU has
    /// AVX2 and FMA, else `portable`. The query heads sharing a KV head go together (they share
    /// its reading), split into as many parts as the threads need; the parts run on the barrier
    /// pool when `parallel` (its threads are spinning between the projections, while rayon's
    /// would have to be woken and share the cores with the spinners).
    fn run<T: Sync>(&self, out: &mut [f32], kd: &[T], vd: &[T], fast: Head<T>, portable: Head<T>) {
        let head = if avx2() { fast } else { portable };
        let d = self.d;
        let n_head = self.q.len() / d;
        let groups = n_head / self.n_rep;
        let parts = match self.parallel {
            true => super::matvec::pool_threads()
                .div_ceil(groups)
                .clamp(1, self.n_rep),
            false => 1,
        };
        // Task `t`: group `t / parts`, its heads `first..last`.
        let heads_of = |t: usize| {
            let (g, p) = (t / parts, t % parts);
            let first = g * self.n_rep + p * self.n_rep / parts;
            (g, first, g * self.n_rep + (p + 1) * self.n_rep / parts)
        };
        let one = |t: usize, o: &mut [f32]| {
            let (g, first, last) = heads_of(t);
            let k = (kd, self.k.0 + g * self.k.1, self.k.2);
            let v = (vd, self.v.0 + g * self.v.1, self.v.2);
            let q = &self.q[first * d..last * d];
            // SAFETY: `fast` (an AVX2 build) is taken only where the CPU has AVX2 and FMA.
            unsafe { head(q, d, k, v, self.len, self.scale, o) }
        };
        let mut outs: Vec<&mut [f32]> = Vec::with_capacity(groups * parts);
        let mut rest = out;
        for t in 0..groups * parts {
            let (_, first, last) = heads_of(t);
            let (o, r) = rest.split_at_mut((last - first) * d);
            outs.push(o);
            rest = r;
        }
        if self.parallel {
            let outs: Vec<Mutex<&mut [f32]>> = outs.into_iter().map(Mutex::new).collect();
            one_row_tasks(outs.len(), |t| {
                one(t, &mut outs[t].lock().unwrap_or_else(|e| e.into_inner()));
            });
        } else {
            for (t, o) in outs.into_iter().enumerate() {
                one(t, o);
            }
        }
    }
}

/// The attention of heads sharing one KV head: their queries, the head size, the keys and
/// values (data, first offset, stride per position), the number of positions, the scale, the
/// outputs.
type Head<T> =
    unsafe fn(&[f32], usize, (&[T], usize, usize), (&[T], usize, usize), usize, f32, &mut [f32]);

impl Transformer {
    /// Whether [`Transformer::decode_step`] applies: f32, bf16 or f16 weights on the CPU (the
    /// step's activations are f32 whatever the weights').
    pub(super) fn has_decode_step(&self) -> bool {
        matches!(self.dtype, DType::F32 | DType::BF16 | DType::F16) && self.device.is_cpu()
    }

    /// Token `id` at position `cache.len()`, appended to the cache; f32 logits `(1, vocab)`.
    pub(super) fn decode_step(&self, id: u32, cache: &mut KvCache) -> Result<Tensor> {
        let offset = cache.len();
        let ids = Tensor::new(&[id], &self.device)?;
        let mut x = self
            .embed
            .forward(&ids, self.dtype)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (cos, sin) = self.rope.tables_at(offset)?;
        let mut xn = vec![0f32; x.len()];
        let mut qkv: [Vec<f32>; 3] = Default::default();
        let mut gate_up: [Vec<f32>; 2] = Default::default();
        let (mut att, mut proj) = (Vec::new(), Vec::new());
        for (i, (layer, lc)) in self.layers.iter().zip(cache.layers.iter_mut()).enumerate() {
            let a = &layer.attn;
            let (h, kvh, d) = (a.n_head, a.n_kv_head, a.head_dim);
            xn.copy_from_slice(&x);
            rms_norm(&layer.attn_norm, &mut xn)?;
            let to_o = ahead_of(&a.o);
            project_many([&a.q, &a.k, &a.v], &xn, &mut qkv, &to_o)?;
            let [q, k, v] = &mut qkv;
            let len = offset + 1;
            // Attention long enough to run in parallel has the pool's threads to itself.
            let fetching = if len * h * d >= PARALLEL_ATTENTION {
                &Ahead::none()
            } else {
                &to_o
            };
            overlap(fetching, || -> Result<()> {
                if let Some(n) = &a.q_norm {
                    rms_norm(n, q)?;
                }
                if let Some(n) = &a.k_norm {
                    rms_norm(n, k)?;
                }
                for head in q.chunks_mut(d).chain(k.chunks_mut(d)) {
                    self.rope.rotate(head, &cos, &sin);
                }
                // The cache holds the model's dtype (a bf16 model's keys and values are
                // rounded to bf16 as the general path rounds them).
                let kt =
                    Tensor::from_slice(k, (1, kvh, 1, d), &self.device)?.to_dtype(self.dtype)?;
                let vt =
                    Tensor::from_slice(v, (1, kvh, 1, d), &self.device)?.to_dtype(self.dtype)?;
                let (kc, vc) = lc.append(&kt, &vt)?;
                att.clear();
                att.resize(h * d, 0.0);
                attend(q, &kc, &vc, (h, kvh, d), &mut att)
            })?;
            project(&a.o, &att, &mut proj, &ahead_of(&layer.mlp.gate))?;
            for (xi, p) in x.iter_mut().zip(&proj) {
                *xi += p;
            }
            xn.copy_from_slice(&x);
            rms_norm(&layer.mlp_norm, &mut xn)?;
            let to_down = ahead_of(&layer.mlp.down);
            project_many(
                [&layer.mlp.gate, &layer.mlp.up],
                &xn,
                &mut gate_up,
                &to_down,
            )?;
            let [g, u] = &mut gate_up;
            overlap(&to_down, || {
                silu(g, u);
            });
            let next = match self.layers.get(i + 1) {
                Some(l) => ahead_of(&l.attn.q),
                None => ahead_of(&self.lm_head),
            };
            project(&layer.mlp.down, g, &mut proj, &next)?;
            for (xi, p) in x.iter_mut().zip(&proj) {
                *xi += p;
            }
        }
        cache.advance(1);
        rms_norm(&self.norm, &mut x)?;
        let mut logits = Vec::new();
        project(&self.lm_head, &x, &mut logits, &Ahead::none())?;
        let n = logits.len();
        Ok(Tensor::from_vec(logits, (1, n), &self.device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Logits;
    use crate::load::{load_dir, load_gguf, LoadOptions, LoadedModel};
    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
    }

    /// Decode tokens one at a time with the step and with the general path, each from its own
    /// copy of the same prefilled cache; every step's logits must agree, which also checks what
    /// each path appended to its cache (the next step reads it).
    fn step_matches_general_path(m: &LoadedModel, what: &str) {
        let (general, step) = general_and_step(m, &m.transformer, what);
        let mut worst = 0f32;
        for (x, y) in general.iter().zip(&step) {
            worst = worst.max((x - y).abs() / x.abs().max(1.0));
        }
        assert!(
            worst < 1e-4,
            "{what}: decoding step differs from the general path by {worst}"
        );
    }

    /// The logits of eight tokens after a six-token prompt, through `reference`'s general path
    /// and through `m`'s decoding step, each from its own cache (which also checks what each
    /// path appended to its cache: the next step reads it).
    fn general_and_step(
        m: &LoadedModel,
        reference: &crate::model::Transformer,
        what: &str,
    ) -> (Vec<f32>, Vec<f32>) {
        let t = &m.transformer;
        assert!(t.has_decode_step(), "{what}: expected the decoding step");
        let prompt = [5u32, 17, 42, 9, 300, 7];
        let next = [11u32, 250, 3, 99, 64, 1, 77, 8];
        let mut a = reference.new_cache();
        reference
            .forward_general(&prompt, &mut a, Logits::Last)
            .unwrap();
        let mut b = t.new_cache();
        t.forward_general(&prompt, &mut b, Logits::Last).unwrap();
        let (mut general, mut step) = (Vec::new(), Vec::new());
        for &id in &next {
            let ga = reference
                .forward_general(&[id], &mut a, Logits::Last)
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let gb = t.decode_step(id, &mut b).unwrap().to_vec2::<f32>().unwrap();
            assert_eq!(ga[0].len(), gb[0].len(), "{what}: vocabulary");
            general.extend(&ga[0]);
            step.extend(&gb[0]);
        }
        assert_eq!(a.len(), b.len());
        (general, step)
    }

    /// A bf16 or f16 model's decoding step (weights and cache in that dtype, f32 activations)
    /// against its general path (that dtype throughout) and against the f32 model's, within the
    /// bounds tests/golden.rs holds those dtypes to against transformers: 0.2 (bf16) and 0.04
    /// (f16) standard deviations of the logits.
    #[test]
    fn half_decode_step_is_within_half_rounding() {
        use candle_core::DType;
        for name in ["tiny-qwen2", "tiny-qwen3", "tiny-llama"] {
            let dir = root().join("models").join(name);
            let load = |dtype| {
                let opts = LoadOptions {
                    dtype: Some(dtype),
                    ..Default::default()
                };
                load_dir(&dir, &opts).unwrap()
            };
            let f32m = load(DType::F32);
            for (dtype, bound) in [(DType::BF16, 0.2f32), (DType::F16, 0.04)] {
                let half = load(dtype);
                for (reference, against) in [(&half, "its own"), (&f32m, "the f32")] {
                    let what = format!("{name} {dtype:?} step vs {against} general path");
                    let (general, step) = general_and_step(&half, &reference.transformer, &what);
                    let mean = general.iter().sum::<f32>() / general.len() as f32;
                    let var = general.iter().map(|x| (x - mean).powi(2)).sum::<f32>();
                    let sigma = (var / general.len() as f32).sqrt();
                    let worst = general
                        .iter()
                        .zip(&step)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0f32, f32::max);
                    eprintln!("{what}: max |Δ| {worst:.4}, σ {sigma:.4}");
                    assert!(
                        worst <= bound * sigma,
                        "{what}: max |Δ| {worst} > {bound}σ = {}",
                        bound * sigma
                    );
                }
            }
        }
    }

    /// Attention of one query against a cache, on both sides of the size from which heads run
    /// in parallel, against the same formula in f64.
    #[test]
    fn attention_matches_the_formula_serial_and_parallel() {
        use candle_core::{Device, Tensor};
        let (n_head, n_kv, d) = (4, 2, 64);
        for len in [5, 300] {
            let parallel = len * n_head * d >= super::PARALLEL_ATTENTION;
            assert_eq!(parallel, len == 300);
            let val = |i: usize, salt: usize| {
                (((i * 7919 + salt * 104729) % 1000) as f32 - 500.0) / 400.0
            };
            let q: Vec<f32> = (0..n_head * d).map(|i| val(i, 1)).collect();
            let kv = |salt| {
                let v: Vec<f32> = (0..n_kv * len * d).map(|i| val(i, salt)).collect();
                Tensor::from_vec(v, (1, n_kv, len, d), &Device::Cpu).unwrap()
            };
            let (k, v) = (kv(2), kv(3));
            let mut out = vec![0f32; n_head * d];
            super::attend(&q, &k, &v, (n_head, n_kv, d), &mut out).unwrap();
            let (kf, vf) = (
                k.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                v.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            for h in 0..n_head {
                let g = h / (n_head / n_kv);
                let qh = &q[h * d..(h + 1) * d];
                let at = |s: usize| (g * len + s) * d;
                let scores: Vec<f64> = (0..len)
                    .map(|s| {
                        let dot: f64 = (0..d).map(|i| qh[i] as f64 * kf[at(s) + i] as f64).sum();
                        dot / (d as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for i in 0..d {
                    let want: f64 = (0..len).map(|s| e[s] / sum * vf[at(s) + i] as f64).sum();
                    let got = out[h * d + i] as f64;
                    assert!(
                        (got - want).abs() < 1e-5,
                        "len {len} head {h} [{i}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Values with no pattern the arithmetic could lean on, in about [-1.25, 1.25].
    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + salt * 104_729) % 1000) as f32 - 500.0) / 400.0)
            .collect()
    }

    /// The four-at-a-time dot products (portable and AVX2) give exactly what one at a time does,
    /// for widths with and without a remainder past the eight lanes.
    #[test]
    fn four_dot_products_are_four_single_ones() {
        for d in [8, 64, 67, 128, 5] {
            let x = values(d, 1);
            let rows: Vec<Vec<f32>> = (2..6).map(|salt| values(d, salt)).collect();
            let w = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            let want = w.map(|r| super::dot_f32(r, &x).to_bits());
            assert_eq!(
                super::dot4_f32(w, &x).map(f32::to_bits),
                want,
                "portable, {d}"
            );
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let got = unsafe { super::dot4_avx2(w, &x) };
                assert_eq!(got.map(f32::to_bits), want, "AVX2, {d}");
            }
        }
    }

    /// `exp_f32` against f64's `exp` over the range the soft-max and SiLU use, within 2 units in
    /// the last place, and its clamped ends.
    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0i64;
        for i in 0..350_000 {
            let x = (-87.0 + i as f64 * (175.0 / 350_000.0)) as f32;
            let want = (x as f64).exp() as f32;
            let got = super::exp_f32(x);
            let ulp = (got.to_bits() as i64 - want.to_bits() as i64).abs();
            worst = worst.max(ulp);
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(super::exp_f32(0.0), 1.0);
        let small = super::exp_f32(-1000.0);
        assert!(small > 0.0 && small < 1e-37, "{small}");
        let big = super::exp_f32(1000.0);
        assert!(big.is_finite() && big > 1e38, "{big}");
    }

    /// SiLU times the up projection against the formula in f64, and the AVX2 build of the loop
    /// against the portable one, bit for bit.
    #[test]
    fn silu_is_the_formula() {
        let g: Vec<f32> = values(4864, 7).iter().map(|v| v * 16.0).collect();
        let u = values(4864, 8);
        let mut got = g.clone();
        super::silu_mul(&mut got, &u);
        for ((gi, ui), r) in g.iter().zip(&u).zip(&got) {
            let (gi, ui) = (*gi as f64, *ui as f64);
            let want = gi / (1.0 + (-gi).exp()) * ui;
            assert!(
                (*r as f64 - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{gi}: {r} vs {want}"
            );
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            let mut avx = g.clone();
            // SAFETY: the CPU has the features just checked.
            unsafe { super::silu_mul_avx2(&mut avx, &u) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&avx), bits(&got));
        }
    }

    /// One head's attention compiled for AVX2 gives the portable build's result bit for bit,
    /// at lengths with and without a remainder past the groups of four positions.
    /// Attention over a bf16 or f16 cache is attention over the same values widened to f32 (the
    /// widening is exact), bit for bit, with the odd positions past the last four.
    #[test]
    fn half_caches_are_their_widened_values() {
        use half::{bf16, f16};
        let d = 64;
        for len in [1, 6, 131] {
            let q = values(3 * d, 1);
            let (k, v) = (values(len * d, 2), values(len * d, 3));
            let (kb, vb): (Vec<bf16>, Vec<bf16>) = (
                k.iter().map(|&x| bf16::from_f32(x)).collect(),
                v.iter().map(|&x| bf16::from_f32(x)).collect(),
            );
            let (kh, vh): (Vec<f16>, Vec<f16>) = (
                k.iter().map(|&x| f16::from_f32(x)).collect(),
                v.iter().map(|&x| f16::from_f32(x)).collect(),
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let f32_of = |kw: Vec<f32>, vw: Vec<f32>| {
                let mut o = vec![0f32; 3 * d];
                super::attend_head::<f32, false>(
                    &q,
                    d,
                    (&kw, 0, d),
                    (&vw, 0, d),
                    len,
                    0.125,
                    &mut o,
                );
                o
            };
            let mut o = vec![0f32; 3 * d];
            super::attend_head::<bf16, false>(&q, d, (&kb, 0, d), (&vb, 0, d), len, 0.125, &mut o);
            let want = f32_of(
                kb.iter().map(|x| x.to_f32()).collect(),
                vb.iter().map(|x| x.to_f32()).collect(),
            );
            assert_eq!(bits(&o), bits(&want), "bf16, len {len}");
            super::attend_head::<f16, false>(&q, d, (&kh, 0, d), (&vh, 0, d), len, 0.125, &mut o);
            let want = f32_of(
                kh.iter().map(|x| x.to_f32()).collect(),
                vh.iter().map(|x| x.to_f32()).collect(),
            );
            assert_eq!(bits(&o), bits(&want), "f16, len {len}");
        }
    }

    /// Query heads sharing a KV head computed together give each head's result alone.
    #[test]
    fn heads_together_are_heads_alone() {
        let d = 64;
        for (n, len) in [(7, 130), (2, 5), (3, 1)] {
            let q = values(n * d, 1);
            let (k, v) = (values(len * d, 2), values(len * d, 3));
            let mut together = vec![0f32; n * d];
            super::attend_head::<f32, false>(
                &q,
                d,
                (&k, 0, d),
                (&v, 0, d),
                len,
                0.125,
                &mut together,
            );
            let mut alone = vec![0f32; n * d];
            for (qh, oh) in q.chunks(d).zip(alone.chunks_mut(d)) {
                super::attend_head::<f32, false>(qh, d, (&k, 0, d), (&v, 0, d), len, 0.125, oh);
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&together), bits(&alone), "{n} heads, len {len}");
            // Each head is its own: the last differs from the first (with one position,
            // every head's output is that position's value).
            if len > 1 {
                assert_ne!(bits(&together[..d]), bits(&together[(n - 1) * d..]));
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn attention_head_is_the_same_on_avx2() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let d = 64;
        for len in [1, 4, 7, 64, 130] {
            let q = values(d, 1);
            let (k, v) = (values(len * d, 2), values(len * d, 3));
            let (mut a, mut b) = (vec![0f32; d], vec![0f32; d]);
            super::attend_head::<f32, false>(&q, d, (&k, 0, d), (&v, 0, d), len, 0.125, &mut a);
            // SAFETY: the CPU has the features just checked.
            unsafe { super::attend_head_avx2(&q, d, (&k, 0, d), (&v, 0, d), len, 0.125, &mut b) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "len {len}");
            assert!(a.iter().any(|x| *x != 0.0));
        }
    }

    #[test]
    fn decode_step_matches_the_general_path() {
        for name in ["tiny-qwen2", "tiny-qwen3", "tiny-llama"] {
            let opts = LoadOptions {
                dtype: Some(candle_core::DType::F32),
                ..Default::default()
            };
            let m = load_dir(&root().join("models").join(name), &opts).unwrap();
            step_matches_general_path(&m, name);
            let gguf = root().join("gguf").join(format!("{name}-q8_0.gguf"));
            let m = load_gguf(&gguf, None, &LoadOptions::default()).unwrap();
            step_matches_general_path(&m, &format!("{name} Q8_0"));
        }
    }
}
