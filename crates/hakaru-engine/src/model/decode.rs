//! One decoding step (a single new token) on the CPU in f32, on plain slices.
//!
//! Why not the general forward pass: for one token every operation between the projections
//! (norms, rotary embedding, attention over the cache, SiLU, residual adds) works on a few
//! thousand values, and as candle operations each costs an allocation, a dispatch and often a
//! hand-off to the thread pool. Measured on Qwen2.5-0.5B's shape that was about a quarter of a
//! decoding step, and the pauses between parallel projections let the pool's threads fall asleep,
//! so each projection began by waking them (benches/README.md). Here the hidden state stays in one
//! buffer, those operations are loops over it with candle's own arithmetic (the same formulas in
//! the same order: RMS norm, `rope`/`rope_i`, soft-max, SiLU), and the projections run on
//! hakaru's quantized kernels ([`super::quant`]) or, for other weights, as the general path runs
//! them. The KV cache is the same [`KvCache`], so prefill and decoding mix freely.

use candle_core::{CpuStorage, Storage, Tensor};
use std::sync::Mutex;

use super::matvec::{dot_f32, one_row_tasks};
use super::quant::{self, QWeight};
use super::{KvCache, Linear, RmsNorm, Transformer};
use crate::error::{Error, Result};

/// Run `f` on the values of a contiguous f32 CPU tensor.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (s, l) = t.storage_and_layout();
    match (&*s, l.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(f(&v[a..b])),
        _ => Err(Error::Other(
            "decoding step: expected a contiguous f32 tensor on the CPU".into(),
        )),
    }
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

/// `out = x Wᵀ (+ b)` for one row.
fn project(l: &Linear, x: &[f32], out: &mut Vec<f32>) -> Result<()> {
    match l {
        Linear::Packed { w, b, .. } => {
            out.clear();
            out.resize(w.rows(), 0.0);
            w.matmul(x, out)?;
            if let Some(b) = b {
                add_bias(b, out)?;
            }
        }
        _ => {
            let t = Tensor::from_slice(x, (1, x.len()), &candle_core::Device::Cpu)?;
            *out = l.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
        }
    }
    Ok(())
}

/// Several projections of the same row; on hakaru's kernels all in one parallel region.
fn project_many<const N: usize>(
    ls: [&Linear; N],
    x: &[f32],
    outs: &mut [Vec<f32>; N],
) -> Result<()> {
    let ws: Vec<&QWeight> = ls
        .iter()
        .filter_map(|l| match l {
            Linear::Packed { w, .. } => Some(&**w),
            _ => None,
        })
        .collect();
    if ws.len() < N {
        for (l, o) in ls.iter().zip(outs.iter_mut()) {
            project(l, x, o)?;
        }
        return Ok(());
    }
    for (o, w) in outs.iter_mut().zip(&ws) {
        o.clear();
        o.resize(w.rows(), 0.0);
    }
    let mut slots: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
    quant::matvec_many(&ws, x, &mut slots)?;
    for (l, o) in ls.iter().zip(outs.iter_mut()) {
        if let Linear::Packed { b: Some(b), .. } = l {
            add_bias(b, o)?;
        }
    }
    Ok(())
}

/// From this many multiply-adds of attention on, the heads run in parallel.
const PARALLEL_ATTENTION: usize = 1 << 16;

/// One head's attention: `qh` against `len` cached positions, the keys at `k.0[k.1 + s·k.2..]`
/// and the values at `v.0[v.1 + s·v.2..]`, into `o`. The arithmetic is written out in a fixed
/// order (eight partial sums per dot product), so the compiled code's vector width does not
/// change the result.
#[inline(always)]
fn attend_head(
    qh: &[f32],
    (kd, k0, ks): (&[f32], usize, usize),
    (vd, v0, vs): (&[f32], usize, usize),
    len: usize,
    scale: f32,
    o: &mut [f32],
) {
    let d = qh.len();
    let mut p: Vec<f32> = (0..len)
        .map(|s| dot_f32(&kd[k0 + s * ks..][..d], qh) * scale)
        .collect();
    let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in p.iter_mut() {
        *x = (*x - max).exp();
    }
    let sum: f32 = p.iter().sum();
    for x in p.iter_mut() {
        *x /= sum;
    }
    o.fill(0.0);
    for (s, &ps) in p.iter().enumerate() {
        let vr = &vd[v0 + s * vs..][..d];
        for (oi, vi) in o.iter_mut().zip(vr) {
            *oi += ps * vi;
        }
    }
}

/// [`attend_head`] compiled for AVX2 (eight lanes where the baseline build has four): the
/// same operations in the same order, so the same result.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_head_avx2(
    qh: &[f32],
    k: (&[f32], usize, usize),
    v: (&[f32], usize, usize),
    len: usize,
    scale: f32,
    o: &mut [f32],
) {
    attend_head(qh, k, v, len, scale, o)
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
    let (Storage::Cpu(CpuStorage::F32(kd)), Storage::Cpu(CpuStorage::F32(vd))) = (&*ks, &*vs)
    else {
        return Err(Error::Other(
            "decoding step: the KV cache is not f32 on the CPU".into(),
        ));
    };
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
    let head = |hh: usize, o: &mut [f32]| {
        let g = hh / n_rep;
        let qh = &q[hh * d..(hh + 1) * d];
        let k = (kd.as_slice(), ko + g * kst[1], kst[2]);
        let v = (vd.as_slice(), vo + g * vst[1], vst[2]);
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features just checked.
            return unsafe { attend_head_avx2(qh, k, v, len, scale, o) };
        }
        attend_head(qh, k, v, len, scale, o)
    };
    if len * n_head * d >= PARALLEL_ATTENTION {
        // On the barrier pool, like the projections around it: its threads are spinning between
        // them, while rayon's would have to be woken (and share the cores with the spinners).
        let heads: Vec<Mutex<&mut [f32]>> = out.chunks_mut(d).map(Mutex::new).collect();
        one_row_tasks(n_head, |hh| {
            let mut o = heads[hh].lock().unwrap_or_else(|e| e.into_inner());
            head(hh, &mut o);
        });
    } else {
        for (hh, o) in out.chunks_mut(d).enumerate() {
            head(hh, o);
        }
    }
    Ok(())
}

impl Transformer {
    /// Whether [`Transformer::decode_step`] applies: f32 activations on the CPU.
    pub(super) fn has_decode_step(&self) -> bool {
        self.dtype == candle_core::DType::F32 && self.device.is_cpu()
    }

    /// Token `id` at position `cache.len()`, appended to the cache; f32 logits `(1, vocab)`.
    pub(super) fn decode_step(&self, id: u32, cache: &mut KvCache) -> Result<Tensor> {
        let offset = cache.len();
        let ids = Tensor::new(&[id], &self.device)?;
        let mut x = self
            .embed
            .forward(&ids, self.dtype)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (cos, sin) = self.rope.tables_at(offset)?;
        let mut xn = vec![0f32; x.len()];
        let mut qkv: [Vec<f32>; 3] = Default::default();
        let mut gate_up: [Vec<f32>; 2] = Default::default();
        let (mut att, mut proj) = (Vec::new(), Vec::new());
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let a = &layer.attn;
            let (h, kvh, d) = (a.n_head, a.n_kv_head, a.head_dim);
            xn.copy_from_slice(&x);
            rms_norm(&layer.attn_norm, &mut xn)?;
            project_many([&a.q, &a.k, &a.v], &xn, &mut qkv)?;
            let [q, k, v] = &mut qkv;
            if let Some(n) = &a.q_norm {
                rms_norm(n, q)?;
            }
            if let Some(n) = &a.k_norm {
                rms_norm(n, k)?;
            }
            for head in q.chunks_mut(d).chain(k.chunks_mut(d)) {
                self.rope.rotate(head, &cos, &sin);
            }
            let kt = Tensor::from_slice(k, (1, kvh, 1, d), &self.device)?;
            let vt = Tensor::from_slice(v, (1, kvh, 1, d), &self.device)?;
            let (kc, vc) = lc.append(&kt, &vt)?;
            att.clear();
            att.resize(h * d, 0.0);
            attend(q, &kc, &vc, (h, kvh, d), &mut att)?;
            project(&a.o, &att, &mut proj)?;
            for (xi, p) in x.iter_mut().zip(&proj) {
                *xi += p;
            }
            xn.copy_from_slice(&x);
            rms_norm(&layer.mlp_norm, &mut xn)?;
            project_many([&layer.mlp.gate, &layer.mlp.up], &xn, &mut gate_up)?;
            let [g, u] = &mut gate_up;
            for (gi, ui) in g.iter_mut().zip(u.iter()) {
                // candle's SiLU: v / (1 + e^−v).
                *gi = *gi / ((-*gi).exp() + 1.0) * ui;
            }
            project(&layer.mlp.down, g, &mut proj)?;
            for (xi, p) in x.iter_mut().zip(&proj) {
                *xi += p;
            }
        }
        cache.advance(1);
        rms_norm(&self.norm, &mut x)?;
        let mut logits = Vec::new();
        project(&self.lm_head, &x, &mut logits)?;
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
        let t = &m.transformer;
        assert!(t.has_decode_step(), "{what}: expected the decoding step");
        let prompt = [5u32, 17, 42, 9, 300, 7];
        let next = [11u32, 250, 3, 99, 64, 1, 77, 8];
        let mut a = t.new_cache();
        t.forward_general(&prompt, &mut a, Logits::Last).unwrap();
        let mut b = a.clone();
        let mut worst = 0f32;
        for &id in &next {
            let ga = t
                .forward_general(&[id], &mut a, Logits::Last)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let gb = t.decode_step(id, &mut b).unwrap().to_vec2::<f32>().unwrap();
            assert_eq!(ga[0].len(), gb[0].len(), "{what}: vocabulary");
            for (x, y) in ga[0].iter().zip(&gb[0]) {
                worst = worst.max((x - y).abs() / x.abs().max(1.0));
            }
        }
        assert_eq!(a.len(), b.len());
        assert!(
            worst < 1e-4,
            "{what}: decoding step differs from the general path by {worst}"
        );
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
