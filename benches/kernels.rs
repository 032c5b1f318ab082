//! Quantized projection kernels: hakaru's own (`model::quant`) beside candle's `QMatMul` on the
//! same bytes, for one activation row (a decoding step, reported as weight bytes read per second)
//! and for 64 rows (prefill, reported as rows per second). Shapes are Qwen2.5-0.5B's MLP: the
//! 896-wide gate projection for the 32-value formats, the 4864-wide down projection for K-quants.
//! The 32-value formats run one row on the file's layout and on the regrouped one (what a model
//! loaded with these kernels uses); `from memory` runs them, and f32 and bf16 weights through
//! `matvec`, on matrices over 1 GB; `dense prefill` runs unquantized weights against 512 rows.
//! Run with `cargo bench -p hakaru-benches --bench kernels`.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hakaru_engine::model::matvec::matvec;
use hakaru_engine::model::quant::{kernels_available, QKind, QWeight};
use hakaru_engine::model::Linear;

fn weights(dt: GgmlDType, rows: usize, cols: usize) -> QTensor {
    let vals: Vec<f32> = (0..rows * cols)
        .map(|i| ((i.wrapping_mul(2654435761) % 2001) as f32 - 1000.0) / 20000.0)
        .collect();
    let t = Tensor::from_vec(vals, (rows, cols), &Device::Cpu).unwrap();
    QTensor::quantize(&t, dt).unwrap()
}

fn kernels(c: &mut Criterion) {
    if !kernels_available() {
        eprintln!("this CPU lacks AVX2/FMA/F16C: hakaru's kernels are not used here");
        return;
    }
    let cases = [
        ("Q8_0", QKind::Q8_0, GgmlDType::Q8_0, 4864, 896),
        ("Q5_0", QKind::Q5_0, GgmlDType::Q5_0, 4864, 896),
        ("Q4_0", QKind::Q4_0, GgmlDType::Q4_0, 4864, 896),
        ("Q4_K", QKind::Q4K, GgmlDType::Q4K, 896, 4864),
        ("Q6_K", QKind::Q6K, GgmlDType::Q6K, 896, 4864),
    ];
    for (name, kind, dt, rows, cols) in cases {
        let q = weights(dt, rows, cols);
        let bytes = q.data().unwrap().into_owned();
        let ours = QWeight::from_bytes(kind, rows, cols, bytes.clone()).unwrap();
        let theirs = QMatMul::from_qtensor(q).unwrap();
        let mut g = c.benchmark_group(format!("{name} {rows}x{cols}"));
        for m in [1usize, 8, 64] {
            let x: Vec<f32> = (0..m * cols)
                .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
                .collect();
            let xt = Tensor::from_vec(x.clone(), (m, cols), &Device::Cpu).unwrap();
            if m == 1 {
                g.throughput(Throughput::Bytes(bytes.len() as u64));
            } else {
                g.throughput(Throughput::Elements(m as u64));
            }
            let mut out = vec![0f32; m * rows];
            g.bench_function(format!("hakaru m={m}"), |b| {
                b.iter(|| ours.matmul(&x, &mut out).unwrap())
            });
            if m == 1 {
                let mut grouped = QWeight::from_bytes(kind, rows, cols, bytes.clone()).unwrap();
                grouped.regroup();
                if grouped.is_grouped() {
                    g.bench_function("hakaru regrouped m=1", |b| {
                        b.iter(|| grouped.matmul(&x, &mut out).unwrap())
                    });
                }
            }
            g.bench_function(format!("candle m={m}"), |b| {
                b.iter(|| theirs.forward(&xt).unwrap())
            });
        }
        g.finish();
    }
}

/// One row against a weight far larger than the caches (over 1 GB: some server CPUs have
/// last-level caches of hundreds of MiB), in the file's layout and then regrouped as a model
/// loads it, so the figures are the kernels' pace from memory; compare `hakaru bench --bandwidth`.
/// `QWeight::from_bytes` copies the bytes into huge pages where the system gives them, as a
/// loaded model's weights are (`hakaru_engine::pages`; `HAKARU_HUGE_PAGES=off` for 4 KiB pages).
/// The rows repeat the matrices above (the values do not change the speed): the 32-value formats'
/// 4864 × 896 in both layouts, the K-quants' 896 × 4864 in the file's (they are not regrouped),
/// and Q4_K at the widths of Qwen2.5-1.5B's and 7B's projections (1536, 3584, 8960), whose
/// pace from memory differs with the width (benches/README.md).
fn from_memory(c: &mut Criterion) {
    if !kernels_available() {
        return;
    }
    let mut g = c.benchmark_group("from memory");
    g.sample_size(10);
    // (format, rows and columns of the matrix repeated, copies): 1.1–1.6 GB each. The K-quants
    // keep the file's layout (four rows read side by side).
    for (name, kind, dt, block_rows, cols, copies) in [
        ("Q8_0", QKind::Q8_0, GgmlDType::Q8_0, 4864, 896, 360),
        ("Q5_0", QKind::Q5_0, GgmlDType::Q5_0, 4864, 896, 360),
        ("Q4_K", QKind::Q4K, GgmlDType::Q4K, 896, 4864, 490),
        ("Q4_K", QKind::Q4K, GgmlDType::Q4K, 8960, 1536, 155),
        ("Q4_K", QKind::Q4K, GgmlDType::Q4K, 18944, 3584, 32),
        ("Q4_K", QKind::Q4K, GgmlDType::Q4K, 1536, 8960, 155),
        ("Q6_K", QKind::Q6K, GgmlDType::Q6K, 896, 4864, 336),
    ] {
        let rows = block_rows * copies;
        let x: Vec<f32> = (0..cols).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
        let mut out = vec![0f32; rows];
        let bytes = weights(dt, block_rows, cols).data().unwrap().repeat(copies);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut w = QWeight::from_bytes(kind, rows, cols, bytes).unwrap();
        g.bench_function(format!("{name} {rows}x{cols} hakaru m=1"), |b| {
            b.iter(|| w.matmul(&x, &mut out).unwrap())
        });
        w.regroup();
        if w.is_grouped() {
            g.bench_function(format!("{name} {rows}x{cols} hakaru regrouped m=1"), |b| {
                b.iter(|| w.matmul(&x, &mut out).unwrap())
            });
        }
    }
    // Unquantized weights, one row through `matvec` as a model of that dtype decodes.
    for (name, dtype, copies) in [("f32", DType::F32, 64), ("bf16", DType::BF16, 128)] {
        let (rows, cols) = (4864 * copies, 896);
        let w = Tensor::from_vec(
            (0..rows * cols)
                .map(|i| ((i % 2001) as f32 - 1000.0) / 20000.0)
                .collect::<Vec<f32>>(),
            (rows, cols),
            &Device::Cpu,
        )
        .and_then(|t| t.to_dtype(dtype))
        .unwrap();
        let x = Tensor::ones((1, cols), dtype, &Device::Cpu).unwrap();
        g.throughput(Throughput::Bytes(
            (rows * cols * dtype.size_in_bytes()) as u64,
        ));
        g.bench_function(format!("{name} {rows}x{cols} hakaru m=1"), |b| {
            b.iter(|| matvec(&x, &w).unwrap().expect("a one-row product"))
        });
    }
    g.finish();
}

/// Prefill of unquantized weights: 512 rows of f32 activations against Qwen2.5-0.5B's gate
/// projection (4864 × 896) in f32, bf16 and f16, through `Linear::forward` as a model runs it
/// (hakaru's `model::matmul`: an AVX-512 tile where the CPU has one, else the gemm crate's f32
/// kernel on widened blocks; `HAKARU_QUANT_KERNELS=avx2` picks the latter), beside candle's
/// matmul in the weights' dtype. Throughput counts floating-point operations (two a
/// multiply-add).
fn dense_prefill(c: &mut Criterion) {
    let (t, n, k) = (512, 4864, 896);
    let mut g = c.benchmark_group(format!("dense prefill {t}x{n}x{k}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements((2 * t * n * k) as u64));
    let x = Tensor::from_vec(
        (0..t * k)
            .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
            .collect::<Vec<f32>>(),
        (t, k),
        &Device::Cpu,
    )
    .unwrap();
    for (name, dtype) in [
        ("f32", DType::F32),
        ("bf16", DType::BF16),
        ("f16", DType::F16),
    ] {
        let w = Tensor::from_vec(
            (0..n * k)
                .map(|i| ((i % 2001) as f32 - 1000.0) / 20000.0)
                .collect::<Vec<f32>>(),
            (n, k),
            &Device::Cpu,
        )
        .and_then(|t| t.to_dtype(dtype))
        .unwrap();
        let l = Linear::Dense {
            w: w.clone(),
            b: None,
        };
        g.bench_function(format!("{name} hakaru"), |b| {
            b.iter(|| l.forward(&x).unwrap())
        });
        let xd = x.to_dtype(dtype).unwrap();
        let wt = w.t().unwrap();
        g.bench_function(format!("{name} candle"), |b| {
            b.iter(|| xd.matmul(&wt).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, kernels, from_memory, dense_prefill);
criterion_main!(benches);
