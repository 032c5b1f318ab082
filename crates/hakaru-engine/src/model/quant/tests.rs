use super::*;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::Module;
use rand::{Rng, SeedableRng};

const KINDS: [(QKind, GgmlDType); 5] = [
    (QKind::Q8_0, GgmlDType::Q8_0),
    (QKind::Q4_0, GgmlDType::Q4_0),
    (QKind::Q5_0, GgmlDType::Q5_0),
    (QKind::Q4K, GgmlDType::Q4K),
    (QKind::Q6K, GgmlDType::Q6K),
];

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    // Mixed magnitudes, so sub-block scales differ.
    (0..n)
        .map(|i| rng.random_range(-1.0f32..1.0) * if i % 97 < 10 { 3.0 } else { 0.5 })
        .collect()
}

/// A candle-quantized matrix and the same bytes as a QWeight.
fn pair(kind: QKind, dt: GgmlDType, rows: usize, cols: usize) -> (QTensor, QWeight) {
    let t = Tensor::from_vec(random(rows * cols, 7), (rows, cols), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, dt).unwrap();
    let w = QWeight::from_bytes(kind, rows, cols, q.data().unwrap().into_owned()).unwrap();
    (q, w)
}

/// Every format with the AVX2 tiles, and again with the VNNI kernels where this CPU has them
/// (the 32-value formats' tiles, and every format's prepared prefill path).
fn variants() -> Vec<((QKind, GgmlDType), bool)> {
    let mut v: Vec<_> = KINDS.iter().map(|&k| (k, false)).collect();
    if vnni_available() {
        v.extend(KINDS.iter().map(|&k| (k, true)));
    } else {
        eprintln!("this CPU lacks AVX-512 VNNI: only the AVX2 tiles are tested");
    }
    v
}

fn skip() -> bool {
    if !kernels_available() {
        eprintln!("skipped: this CPU lacks AVX2/FMA/F16C, the kernels are not used here");
        return true;
    }
    false
}

#[test]
fn rows_dequantize_exactly_as_candle_does() {
    for (kind, dt) in KINDS {
        let (q, w) = pair(kind, dt, 5, 768);
        let want = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let mut row = vec![0f32; 768];
        for (r, want) in want.iter().enumerate() {
            w.dequantize_row(r, &mut row);
            assert_eq!(&row, want, "{kind:?} row {r}");
        }
    }
}

#[test]
fn activation_quantization_round_trips_within_half_a_step() {
    let x = random(2 * 512, 3);
    for kind in [ActKind::Q8_0, ActKind::Q8K] {
        let a = Act::quantize(kind, &x, 512);
        assert_eq!(a.rows, 2);
        for r in 0..2 {
            let back = a.dequantize_row(r);
            let d = a.row_d(r);
            for (i, (b, v)) in back.iter().zip(&x[r * 512..]).enumerate() {
                let step = d[i / kind.block_elems()].abs();
                assert!(step > 0.0);
                assert!(
                    (b - v).abs() <= 0.5 * step + 1e-6,
                    "{kind:?} {r} {i}: {b} vs {v}"
                );
            }
        }
    }
    for kind in [ActKind::Q8_0, ActKind::Q8K] {
        let a = Act::quantize(kind, &x, 512);
        for r in 0..2 {
            assert_eq!(a.row_bsums(r).len(), 32);
            for (s, q) in a.row_bsums(r).iter().zip(a.row_qs(r).chunks(16)) {
                assert_eq!(*s, q.iter().map(|&v| v as i16).sum::<i16>());
            }
        }
    }
    // The AVX2 quantizers give the same scales and the same quants but at exact halves.
    if kernels_available() {
        let mut x = random(3 * 512, 3);
        x[5] = 0.0;
        x[64..96].fill(0.0);
        // Q8_K: the first of two values of the largest magnitude sets the sign of the scale.
        x[300] = -4.0;
        x[310] = 4.0;
        // An all-zero 256-value block.
        x[1024..1280].fill(0.0);
        for kind in [ActKind::Q8_0, ActKind::Q8K] {
            let a = Act::quantize(kind, &x, 512);
            let b = Act::quantize_with(kind, &x, 512, true);
            assert_eq!(a.d, b.d, "{kind:?}");
            let differ = a.qs.iter().zip(&b.qs).filter(|(p, q)| p != q).count();
            assert!(a
                .qs
                .iter()
                .zip(&b.qs)
                .all(|(p, q)| (*p as i32 - *q as i32).abs() <= 1));
            assert!(differ <= 2, "{kind:?}: {differ} quants differ");
            assert!(b.row_qs(0)[64..96].iter().all(|&q| q == 0));
            assert!(b.row_qs(2)[..256].iter().all(|&q| q == 0));
            if kind == ActKind::Q8K {
                // −4 first: it maps to −127 (a positive scale), +4 to 127.
                assert!(b.d[1] > 0.0);
                assert_eq!((b.row_qs(0)[300], b.row_qs(0)[310]), (-127, 127));
                assert_eq!(b.d[4], 0.0);
            }
            assert_eq!(b.bsums.len(), b.qs.len() / 16, "{kind:?}");
            for (s, q) in b.bsums.iter().zip(b.qs.chunks(16)) {
                assert_eq!(*s, q.iter().map(|&v| v as i16).sum::<i16>(), "{kind:?}");
            }
        }
    }
    // An all-zero row quantizes to zeros with a zero scale, not NaN.
    let z = Act::quantize(ActKind::Q8K, &[0.0; 256], 256);
    assert_eq!(z.d, vec![0.0]);
    assert!(z.qs.iter().all(|&q| q == 0));
}

/// `w`'s products against the same arithmetic done plainly: dequantized weights times
/// dequantized activations, summed in f64, for `m` activation rows of each count in `ms`.
fn assert_equals_dequantized_product(w: &QWeight, ms: &[usize], what: &str) {
    let (n, k) = (w.rows(), w.cols());
    let wf: Vec<Vec<f32>> = (0..n)
        .map(|j| {
            let mut r = vec![0f32; k];
            w.dequantize_row(j, &mut r);
            r
        })
        .collect();
    for &m in ms {
        let x = random(m * k, 11 + m as u64);
        let mut y = vec![0f32; m * n];
        w.matmul(&x, &mut y).unwrap();
        // The prepared (prefill) path quantizes activations to Q8_0 for every format.
        let act_kind = if w.prepared(m) {
            ActKind::Q8_0
        } else {
            w.kind.act()
        };
        let a = quantize_rows(act_kind, &x, k);
        for i in 0..m {
            let xa = a.dequantize_row(i);
            for j in 0..n {
                let want: f64 = wf[j]
                    .iter()
                    .zip(&xa)
                    .map(|(&p, &q)| p as f64 * q as f64)
                    .sum();
                let mag: f64 = wf[j]
                    .iter()
                    .zip(&xa)
                    .map(|(&p, &q)| (p as f64 * q as f64).abs())
                    .sum();
                let got = y[i * n + j] as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * mag + 1e-6,
                    "{what} m={m} ({i},{j}): {got} vs {want} (scale {mag})"
                );
            }
        }
    }
}

/// The kernels against the dequantized product. Several row counts, so both the four-row and
/// one-row paths and the remainder run; the VNNI kernels with and without GFNI where this CPU
/// has it (Q4_K's one-row kernel has a build for each).
#[test]
fn kernels_equal_the_dequantized_product() {
    if skip() {
        return;
    }
    for ((kind, dt), vnni) in variants() {
        for gfni in [false, true] {
            if gfni && !(vnni && gfni_available()) {
                continue;
            }
            // An odd number of 32-value blocks, so the VNNI tiles' single-block tail runs too.
            let k = if kind.block_elems() == 32 { 800 } else { 768 };
            let (_, mut w) = pair(kind, dt, 37, k);
            w.vnni = vnni;
            w.gfni = gfni;
            let what = format!("{kind:?} vnni={vnni} gfni={gfni}");
            assert_equals_dequantized_product(&w, &[1, 3, 4, 9, 16], &what);
            // Enough rows that a task holds more than four of them on up to 16 threads, so a
            // decoding step reads Q4_K a quarter of each task at a time, with a row left over
            // (the last task here on two threads: 13 rows).
            let (_, mut w) = pair(kind, dt, 1101, k);
            w.vnni = vnni;
            w.gfni = gfni;
            assert_equals_dequantized_product(&w, &[1], &format!("{what} n=1101"));
        }
    }
}

/// Regrouped weights (one-row kernels on the regrouped layout, AVX2 and, where this CPU has it,
/// AVX-512 VNNI with and without GFNI; prefill on rows rebuilt in the file's layout) give the
/// dequantized product and dequantize to the same rows, with a last group of every size.
#[test]
fn regrouped_kernels_equal_the_dequantized_product() {
    if skip() {
        return;
    }
    if vnni_available() && !gfni_available() {
        eprintln!("this CPU lacks GFNI: the VNNI one-row kernel is tested without it");
    }
    let with_gfni = variants()
        .into_iter()
        .filter(|((k, _), _)| k.block_elems() == 32)
        .flat_map(|(k, vnni)| {
            let gfni = [false, true].into_iter();
            gfni.filter(move |&g| !g || (vnni && gfni_available()))
                .map(move |g| (k, vnni, g))
        });
    for ((kind, dt), vnni, gfni) in with_gfni {
        for n in [36, 37, 38, 39] {
            let (_, plain) = pair(kind, dt, n, 832);
            let (_, mut w) = pair(kind, dt, n, 832);
            w.vnni = vnni;
            w.gfni = gfni;
            w.regroup();
            assert!(w.is_grouped(), "{kind:?}");
            assert_ne!(w.data(), plain.data());
            let (mut a, mut b) = (vec![0f32; 832], vec![0f32; 832]);
            for j in 0..n {
                w.dequantize_row(j, &mut a);
                plain.dequantize_row(j, &mut b);
                assert_eq!(a, b, "{kind:?} row {j}");
            }
            let what = format!("{kind:?} vnni={vnni} gfni={gfni} regrouped n={n}");
            assert_equals_dequantized_product(&w, &[1, 2, 9], &what);
            // One row, fused with another weight's rows (as q/k/v are).
            let x = random(832, 4);
            let (mut y1, mut y2) = (vec![0f32; n], vec![0f32; 40]);
            let (_, mut v) = pair(kind, dt, 40, 832);
            v.vnni = vnni;
            v.gfni = gfni;
            matvec_many(&[&w, &v], &x, &mut [&mut y1, &mut y2]).unwrap();
            let mut alone = vec![0f32; n];
            w.matmul(&x, &mut alone).unwrap();
            assert_eq!(y1, alone, "{kind:?} fused");
        }
    }
    // Widths of an odd number of blocks and the K-quants keep the file's layout.
    let (_, mut odd) = pair(QKind::Q5_0, GgmlDType::Q5_0, 4, 800);
    odd.regroup();
    assert!(!odd.is_grouped());
    let (_, mut k) = pair(QKind::Q4K, GgmlDType::Q4K, 4, 768);
    k.regroup();
    assert!(!k.is_grouped());
}

/// The whole projection (activation quantization included) against the unquantized product and
/// against candle's own quantized matmul of the same bytes.
#[test]
fn forward_matches_candle_and_the_float_product() {
    if skip() {
        return;
    }
    let (n, k, m) = (19, 512, 10);
    let x = Tensor::from_vec(random(m * k, 5), (m, k), &Device::Cpu).unwrap();
    for ((kind, dt), vnni) in variants() {
        let (q, mut w) = pair(kind, dt, n, k);
        w.vnni = vnni;
        let ours = w.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let wf = q.dequantize(&Device::Cpu).unwrap();
        let exact = x
            .matmul(&wf.t().unwrap())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let theirs = QMatMul::from_qtensor(q)
            .unwrap()
            .forward(&x)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let xs = x.to_vec2::<f32>().unwrap();
        let wr = wf.to_vec2::<f32>().unwrap();
        for i in 0..m {
            for j in 0..n {
                let mag: f32 = xs[i].iter().zip(&wr[j]).map(|(a, b)| (a * b).abs()).sum();
                // 8-bit activations: well under 1% of the sum of |products|.
                assert!(
                    (ours[i][j] - exact[i][j]).abs() <= 0.005 * mag,
                    "{kind:?} ({i},{j}): {} vs exact {}",
                    ours[i][j],
                    exact[i][j]
                );
                assert!(
                    (ours[i][j] - theirs[i][j]).abs() <= 0.005 * mag,
                    "{kind:?} ({i},{j}): {} vs candle {}",
                    ours[i][j],
                    theirs[i][j]
                );
            }
        }
    }
}

#[test]
fn embedding_rows_and_shape_errors() {
    let (q, w) = pair(QKind::Q8_0, GgmlDType::Q8_0, 4, 64);
    let t = w.rows_tensor(&[3, 0], DType::F32, &Device::Cpu).unwrap();
    let want = q.dequantize(&Device::Cpu).unwrap();
    assert_eq!(
        t.to_vec2::<f32>().unwrap(),
        vec![
            want.get(3).unwrap().to_vec1::<f32>().unwrap(),
            want.get(0).unwrap().to_vec1::<f32>().unwrap()
        ]
    );
    assert!(w.rows_tensor(&[4], DType::F32, &Device::Cpu).is_err());
    assert!(QWeight::from_bytes(QKind::Q8_0, 4, 64, vec![0; 10]).is_err());
    assert!(QWeight::from_bytes(QKind::Q4K, 1, 100, vec![0; 144]).is_err());
    let mut out = vec![0f32; 3];
    assert!(w.matmul(&[0.0; 65], &mut out).is_err());
}

/// Projections run together give what each gives alone, for one row (the fused path, formats
/// with both activation kinds mixed) and for several (one at a time).
#[test]
fn forward_many_equals_each_forward() {
    if skip() {
        return;
    }
    let (_, a) = pair(QKind::Q8_0, GgmlDType::Q8_0, 40, 512);
    let (_, b) = pair(QKind::Q4K, GgmlDType::Q4K, 9, 512);
    let (_, c) = pair(QKind::Q5_0, GgmlDType::Q5_0, 130, 512);
    for m in [1, 3] {
        let x = Tensor::from_vec(random(m * 512, 9), (m, 512), &Device::Cpu).unwrap();
        let ys = forward_many(&[&a, &b, &c], &x).unwrap();
        assert_eq!(ys.len(), 3);
        for (y, w) in ys.iter().zip([&a, &b, &c]) {
            assert_eq!(y.dims(), &[m, w.rows()]);
            assert_eq!(
                y.to_vec2::<f32>().unwrap(),
                w.forward(&x).unwrap().to_vec2::<f32>().unwrap()
            );
        }
    }
}

/// The split between these kernels and candle's repacked ones follows candle's own rule.
#[test]
fn own_kernels_take_what_candle_does_not_repack() {
    if skip() || std::env::var("HAKARU_QUANT_KERNELS").is_ok() {
        return;
    }
    // candle repacks none of these: Q5_0/Q4_0 at all, K-quants and Q8_0 not at 896 columns.
    assert!(use_own_kernels(QKind::Q5_0, 4864, 4096));
    assert!(use_own_kernels(QKind::Q4_0, 4864, 4096));
    assert!(use_own_kernels(QKind::Q8_0, 4864, 896));
    // Output counts that are not a multiple of 16 are not repacked either.
    assert!(use_own_kernels(QKind::Q4K, 100, 4096));
    // K-quants of tile-friendly shapes go to candle on every AVX2 CPU.
    assert!(!use_own_kernels(QKind::Q4K, 896, 4864));
    assert!(!use_own_kernels(QKind::Q6K, 4096, 4096));
    let vnni = is_x86_feature_detected!("avxvnni")
        || (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"));
    assert_eq!(use_own_kernels(QKind::Q8_0, 1536, 1536), !vnni);
}

/// A weight built from a candle tensor shares its bytes (unless regrouped), and a projection on it runs one row on
/// these kernels and several on candle's `QMatMul` where candle's repacked tiles apply (Q4_K at a
/// 256-multiple width and a 16-multiple row count), both close to the float product.
#[test]
fn shared_weight_runs_one_row_here_and_prefill_where_faster() {
    if skip() {
        return;
    }
    let (n, k) = (32, 512);
    for (kind, dt) in [(QKind::Q4K, GgmlDType::Q4K), (QKind::Q5_0, GgmlDType::Q5_0)] {
        let (q, _) = pair(kind, dt, n, k);
        let wf = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let q = std::sync::Arc::new(q);
        let w = QWeight::from_qtensor(&q)
            .unwrap()
            .expect("a CPU tensor of a supported format");
        assert_eq!(w.storage_bytes(), q.storage_size_in_bytes());
        let own = w.own_prefill();
        // Regrouped exactly where only these kernels read the weight; otherwise shared.
        assert_eq!(
            w.is_grouped(),
            own && regroup::supported(kind, k),
            "{kind:?}"
        );
        if !w.is_grouped() {
            assert_eq!(
                w.data().as_ptr(),
                q.data().unwrap().as_ptr(),
                "{kind:?}: the bytes are shared, not copied"
            );
        }
        assert_eq!(own, use_own_kernels(kind, n, k));
        let l = crate::model::Linear::packed(std::sync::Arc::new(w), None).unwrap();
        let crate::model::Linear::Packed { prefill, .. } = &l else {
            panic!("{kind:?}: expected a packed projection");
        };
        assert_eq!(
            prefill.is_some(),
            !own,
            "{kind:?}: candle runs prefill iff faster"
        );
        for m in [1, 4] {
            let xs = random(m * k, 21 + m as u64);
            let x = Tensor::from_vec(xs.clone(), (m, k), &Device::Cpu).unwrap();
            let y = l.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            for i in 0..m {
                for j in 0..n {
                    let xr = &xs[i * k..(i + 1) * k];
                    let exact: f32 = xr.iter().zip(&wf[j]).map(|(a, b)| a * b).sum();
                    let mag: f32 = xr.iter().zip(&wf[j]).map(|(a, b)| (a * b).abs()).sum();
                    assert!(
                        (y[i][j] - exact).abs() <= 0.005 * mag,
                        "{kind:?} m={m} ({i},{j}): {} vs {exact}",
                        y[i][j]
                    );
                }
            }
        }
    }
}
