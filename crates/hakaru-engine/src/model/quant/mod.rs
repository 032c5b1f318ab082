//! hakaru's own CPU kernels for GGML-quantized projections: `y = x Wᵀ` with `W` in Q8_0, Q4_0,
//! Q5_0, Q4_K or Q6_K blocks, as in a GGUF file.
//!
//! Why own code, and where: candle-core 0.11.1's quantized CPU matmul repacks weights into
//! x86 tiles (`repack_x86`, AVX2 / AVX-VNNI / AVX-512 VNNI chosen at run time) only for Q4_K,
//! Q6_K and, with VNNI, Q8_0, and only when the input width is a multiple of 256 and the output
//! count of 16. Elsewhere it computes each activation row against every weight row with one
//! `vec_dot` per pair, so a prefill of `m` tokens reads the weights `m` times: Qwen2.5-0.5B's
//! 896-wide projections, and every Q4_0/Q5_0 tensor (Q4_K_M files of 896-wide models store most
//! tensors as Q5_0), ran 3–25× slower than llama.cpp. So one row (a decoding step) always runs
//! on these kernels, which are the faster for one row everywhere measured (benches/README.md),
//! and several rows go to whichever is faster ([`use_own_kernels`]): candle's `QMatMul` of the
//! same bytes where its repacked kernels apply, these kernels otherwise.
//!
//! Here the kernels are chosen at run time (`is_x86_feature_detected!`), the activations are
//! quantized once per call (to Q8_0 or Q8_K, as ggml does), the weight rows are split across
//! threads in blocks with prefetching one tile ahead, and in prefill each weight row is unpacked
//! once per task for hundreds of activation rows. Weights keep the file's byte layout in the
//! candle tensor they were loaded into (no second copy; candle's repacked prefill keeps its own
//! repacked copy of the weights it takes), except Q8_0/Q4_0/Q5_0 weights that only these kernels
//! read: those are regrouped ([`regroup`]) into a layout of the same size, in place of the
//! file's, which a one-row kernel reads as one memory stream per task with fewer instructions
//! (`x86_vnni::dot_grouped` on AVX-512 VNNI, `dot_grouped_gfni` where GFNI is present too,
//! `x86::dot_grouped` on AVX2). An
//! embedding table in these formats is dequantized row by row from the same bytes, so a tied
//! output projection shares them.
//!
//! Where AVX-512 VNNI is present the kernels use it ([`x86_vnni`]); elsewhere the AVX2 ones
//! ([`x86`]), whose prefill also unpacks each task's weight rows once (`prepare_32`), whose
//! one-row kernel reads regrouped weights (`dot_grouped`), and whose one-row Q4_0/Q5_0 kernel
//! for widths that cannot be regrouped reads the quants unsigned (`dot_offset`). CPUs without
//! AVX2/FMA/F16C, other formats and CUDA use candle's `QMatMul`. `HAKARU_QUANT_KERNELS`
//! overrides the choice for comparisons: `candle` (candle everywhere), `hakaru` (these kernels wherever they apply),
//! `avx2` (these kernels without the VNNI ones).

pub mod formats;
pub mod regroup;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_vnni;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::prefetch_grouped;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::Arc;

use crate::error::{Error, Result};
use formats::{dequantize_row, Act};
pub use formats::{ActKind, QKind};

/// Whether this CPU runs the kernels (AVX2, FMA and F16C) and they are not switched off.
pub fn kernels_available() -> bool {
    if std::env::var("HAKARU_QUANT_KERNELS").is_ok_and(|v| v == "candle") {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether prefill (several rows) of a `rows × cols` weight of `kind` should run on these kernels
/// rather than candle's:
/// not where candle 0.11.1 repacks it for this CPU (`repack_x86::select`: Q4_K always, Q8_0 with
/// AVX-VNNI or AVX-512 VNNI, `cols % 256 == 0`, `rows % 16 == 0`) or keeps Q6_K compact and fast
/// for one row; measured faster than these kernels there (benches/README.md).
pub fn use_own_kernels(kind: QKind, rows: usize, cols: usize) -> bool {
    if !kernels_available() {
        return false;
    }
    match std::env::var("HAKARU_QUANT_KERNELS").as_deref() {
        Ok("hakaru") | Ok("avx2") => return true,
        _ => {}
    }
    #[cfg(target_arch = "x86_64")]
    {
        let tiles = cols.is_multiple_of(256) && rows.is_multiple_of(16);
        let vnni = is_x86_feature_detected!("avxvnni")
            || (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"));
        !match kind {
            QKind::Q4K | QKind::Q6K => tiles,
            QKind::Q8_0 => tiles && vnni,
            QKind::Q4_0 | QKind::Q5_0 => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (kind, rows, cols);
        false
    }
}

/// Bytes of the repacked copies candle 0.11.1 keeps of a `rows × cols` weight of `kind` whose
/// prefill [`use_own_kernels`] leaves to candle on this CPU. Its x86 tiles (`repack_x86`'s
/// `TileQ4K`, `TileQ6K`, `TileQ8_0`: 16 rows per tile, Q4_K's scales and mins and Q6_K's scales
/// unpacked to f32) take 0.75 bytes per value for Q4_K, 1.25 for Q6_K and 1.0625 for Q8_0; where
/// candle runs Q4_K prefills of 32 rows or more on AMX ([`candle_amx_q4k`]) those build a
/// second copy, `TileQ4KAmx` (quants as bytes, f32 scales and mins: 1.25 bytes per value), kept
/// beside the first, so a Q4_K weight that meets both short and long passes holds 2 bytes per
/// value more. Each copy is built the first time a pass of its kind reaches the weight and is
/// kept beside the file's bytes. 0 where hakaru's kernels run the prefill.
pub fn prefill_copy_bytes(kind: QKind, rows: usize, cols: usize) -> u64 {
    if !kernels_available() || use_own_kernels(kind, rows, cols) {
        return 0;
    }
    let values = rows as u64 * cols as u64;
    match kind {
        QKind::Q4K if candle_amx_q4k() => values * 3 / 4 + values * 5 / 4,
        QKind::Q4K => values * 3 / 4,
        QKind::Q6K => values * 5 / 4,
        QKind::Q8_0 => values * 17 / 16,
        QKind::Q4_0 | QKind::Q5_0 => 0,
    }
}

/// Whether candle 0.11.1 runs Q4_K prefills of 32 rows or more on AMX here
/// (`repack::matmul` → `repack_x86::matmul_amx_q4k`), checked as its `amx_available` checks:
/// its AVX-512 VNNI level (AVX-512F and VNNI, neither `MISTRALRS_FORCE_AVX2=1` nor
/// `MISTRALRS_FORCE_AVXVNNI=1` set), AMX-TILE and AMX-INT8 in CPUID leaf 7 (EDX bits 24 and
/// 25), and on Linux the kernel granting this process the AMX tile state
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, the request candle makes itself
/// before its first AMX pass; granting it twice is harmless). Such passes run about 2.5× faster
/// than the AVX-512 tiles and keep a copy of their own ([`prefill_copy_bytes`]).
pub fn candle_amx_q4k() -> bool {
    static AMX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMX.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let forced = |v: &str| std::env::var(v).is_ok_and(|v| v == "1");
            if forced("MISTRALRS_FORCE_AVX2")
                || forced("MISTRALRS_FORCE_AVXVNNI")
                || !is_x86_feature_detected!("avx512f")
                || !is_x86_feature_detected!("avx512vnni")
            {
                return false;
            }
            // `is_x86_feature_detected!("amx-int8")` is not stable Rust; CPUID as candle reads it.
            let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
            if edx & (1 << 24) == 0 || edx & (1 << 25) == 0 {
                return false;
            }
            #[cfg(target_os = "linux")]
            {
                const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
                const XFEATURE_XTILEDATA: libc::c_long = 18;
                // SAFETY: a request for a permission, reading and writing no memory of ours.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_arch_prctl,
                        ARCH_REQ_XCOMP_PERM,
                        XFEATURE_XTILEDATA,
                    )
                };
                r == 0
            }
            #[cfg(not(target_os = "linux"))]
            false
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// Whether the AVX-512 VNNI tiles run here (and are not switched off with
/// `HAKARU_QUANT_KERNELS=avx2`).
pub fn vnni_available() -> bool {
    if !kernels_available() || std::env::var("HAKARU_QUANT_KERNELS").is_ok_and(|v| v == "avx2") {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the VNNI kernels run here ([`vnni_available`]) on a CPU with GFNI as well, which
/// the regrouped Q4_0/Q5_0 one-row kernel uses to unpack nibbles (`x86_vnni::dot_grouped_gfni`).
pub fn gfni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        vnni_available() && is_x86_feature_detected!("gfni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The CPU kernels quantized projections run on in this process, as provenance records them
/// (the same weights run at different speeds on each): hakaru's `avx512-vnni+gfni`,
/// `avx512-vnni` or `avx2` where `packed` (the weights are [`QWeight`]s), else `candle`; then
/// `, candle-amx` where `amx_q4k_prefill` (some Q4_K weight's prefill is candle's and runs on
/// AMX here, [`candle_amx_q4k`]), and `HAKARU_QUANT_KERNELS=…` when that is set.
pub fn kernels_label(packed: bool, amx_q4k_prefill: bool) -> String {
    let path = if !packed || !kernels_available() {
        "candle"
    } else if gfni_available() {
        "avx512-vnni+gfni"
    } else if vnni_available() {
        "avx512-vnni"
    } else {
        "avx2"
    };
    match amx_q4k_prefill && candle_amx_q4k() {
        true => with_override(&format!("{path}, candle-amx")),
        false => with_override(path),
    }
}

/// A kernels label (`path`) with `, HAKARU_QUANT_KERNELS=…` appended when that is set, and
/// `, HAKARU_HUGE_PAGES=off` when the weights are kept out of huge pages ([`crate::pages`]).
pub(crate) fn with_override(path: &str) -> String {
    let mut label = match std::env::var("HAKARU_QUANT_KERNELS") {
        Ok(v) => format!("{path}, HAKARU_QUANT_KERNELS={v}"),
        Err(_) => path.to_string(),
    };
    if !crate::pages::enabled() {
        label += ", HAKARU_HUGE_PAGES=off";
    }
    label
}

fn kind_of(d: GgmlDType) -> Option<QKind> {
    Some(match d {
        GgmlDType::Q8_0 => QKind::Q8_0,
        GgmlDType::Q4_0 => QKind::Q4_0,
        GgmlDType::Q5_0 => QKind::Q5_0,
        GgmlDType::Q4K => QKind::Q4K,
        GgmlDType::Q6K => QKind::Q6K,
        _ => return None,
    })
}

/// A quantized `(rows, cols)` matrix in GGML blocks, row-major, in memory.
#[derive(Debug)]
pub struct QWeight {
    kind: QKind,
    rows: usize,
    cols: usize,
    bytes: Bytes,
    /// AVX-512 VNNI tiles for the 32-value formats (decided once, when the weight is built).
    vnni: bool,
    /// GFNI as well, for the regrouped one-row kernel (only with `vnni`).
    gfni: bool,
    /// The bytes are in [`regroup`]'s layout (only with `vnni`), not the file's.
    grouped: bool,
}

/// Where a weight's bytes live: in the candle `QTensor` it was built from (shared, so that
/// candle's `QMatMul` can run the same weight's prefill without a second copy), or in a buffer of
/// its own ([`crate::pages::Buffer`]: regrouped weights, and those built from bytes).
#[derive(Debug)]
enum Bytes {
    /// In huge pages where the system gives them.
    Pages(crate::pages::Buffer),
    Tensor(Arc<QTensor>),
}

/// From this many activation rows on, the VNNI path unpacks each task's weight rows once
/// ([`QWeight::matmul_prepared`]) instead of once per tile.
const PREPARED_MIN_ROWS: usize = 8;

/// Activation rows laid out for [`x86_vnni::dot_prepared`].
#[cfg(target_arch = "x86_64")]
struct Prepared<'a> {
    xu: &'a [u8],
    dx: &'a [f32],
    cx: &'a [f32],
    npairs: usize,
}

/// A raw pointer the worker threads write disjoint elements through.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes a distinct set of indices (its own weight rows' columns).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// `at` is inside the output, and no other thread writes it.
    #[inline]
    unsafe fn write(self, at: usize, v: f32) {
        *self.0.add(at) = v
    }
}

impl QWeight {
    /// Take a CPU `QTensor` of a supported format and shape `(rows, cols)`, sharing its bytes;
    /// `None` when only candle's `QMatMul` can run it (another device or format, a CPU without
    /// AVX2). Whether candle should still run its prefill is [`use_own_kernels`].
    pub fn from_qtensor(q: &Arc<QTensor>) -> Result<Option<QWeight>> {
        if !matches!(q.device(), Device::Cpu) || !kernels_available() {
            return Ok(None);
        }
        let Some(kind) = kind_of(q.dtype()) else {
            return Ok(None);
        };
        let Ok((rows, cols)) = q.shape().dims2() else {
            return Ok(None);
        };
        let expected = rows * cols / kind.block_elems() * kind.block_bytes();
        if cols % kind.block_elems() != 0
            || !matches!(q.data()?, Cow::Borrowed(b) if b.len() == expected)
        {
            return Ok(None);
        }
        let mut w = QWeight {
            kind,
            rows,
            cols,
            bytes: Bytes::Tensor(q.clone()),
            vnni: vnni_available(),
            gfni: gfni_available(),
            grouped: false,
        };
        // Regrouped where only these kernels read the weight: candle's prefill needs the file's
        // layout, and keeping both would double the weight's memory.
        if w.own_prefill() {
            w.regroup();
        } else {
            // The file's bytes, read into memory by candle: into huge pages (crate::pages).
            crate::pages::collapse(w.data());
        }
        Ok(Some(w))
    }

    /// A weight of the file's layout in `data`, copied into a [`crate::pages::Buffer`] (huge
    /// pages where the system gives them, as a loaded model's weights are).
    pub fn from_bytes(kind: QKind, rows: usize, cols: usize, data: Vec<u8>) -> Result<QWeight> {
        if !cols.is_multiple_of(kind.block_elems())
            || data.len() != rows * cols / kind.block_elems() * kind.block_bytes()
        {
            return Err(Error::Other(format!(
                "{kind:?} matrix of {rows}×{cols} cannot be held in {} bytes",
                data.len()
            )));
        }
        Ok(QWeight {
            kind,
            rows,
            cols,
            bytes: Bytes::Pages({
                let mut b = crate::pages::Buffer::zeroed(data.len());
                b.copy_from_slice(&data);
                b
            }),
            vnni: vnni_available(),
            gfni: gfni_available(),
            grouped: false,
        })
    }

    /// Put the bytes in [`regroup`]'s layout for the one-row kernels, where the format and
    /// width allow it; the weight then owns its bytes (a shared
    /// candle tensor is let go). Prefill and embedding lookups read rows back in the file's
    /// layout ([`regroup::file_row`]).
    pub fn regroup(&mut self) {
        if self.grouped || !regroup::supported(self.kind, self.cols) {
            return;
        }
        let g = regroup::regroup(self.kind, self.rows, self.cols, self.data());
        self.bytes = Bytes::Pages(g);
        self.grouped = true;
    }

    /// Whether the bytes are regrouped ([`QWeight::regroup`]).
    pub fn is_grouped(&self) -> bool {
        self.grouped
    }

    pub fn kind(&self) -> QKind {
        self.kind
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn storage_bytes(&self) -> usize {
        self.data().len()
    }
    /// Whether prefill (several activation rows) should run on these kernels rather than on
    /// candle's `QMatMul` of the same bytes ([`use_own_kernels`]); one row always runs here.
    pub fn own_prefill(&self) -> bool {
        use_own_kernels(self.kind, self.rows, self.cols)
    }
    /// The candle tensor holding the bytes, when the weight was built from one.
    pub fn qtensor(&self) -> Option<&Arc<QTensor>> {
        match &self.bytes {
            Bytes::Tensor(q) => Some(q),
            Bytes::Pages(_) => None,
        }
    }
    /// The weight's bytes as the kernels read them (the file's layout or [`regroup`]'s).
    pub(crate) fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Pages(b) => b,
            Bytes::Tensor(q) => match q.data() {
                Ok(Cow::Borrowed(b)) => b,
                // from_qtensor takes only tensors whose bytes candle lends without a copy.
                _ => &[],
            },
        }
    }
    fn row_bytes(&self) -> usize {
        self.cols / self.kind.block_elems() * self.kind.block_bytes()
    }
    /// Row `r` in the file's layout: borrowed, or rebuilt into `buf` when regrouped.
    fn file_row<'a>(&'a self, r: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
        let rb = self.row_bytes();
        if !self.grouped {
            return &self.data()[r * rb..(r + 1) * rb];
        }
        buf.resize(rb, 0);
        regroup::file_row(self.kind, self.rows, self.cols, self.data(), r, buf);
        buf
    }

    /// Row `r` as f32 values.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let mut buf = Vec::new();
        dequantize_row(self.kind, self.file_row(r, &mut buf), out)
    }

    /// Rows `ids` as a `(ids.len(), cols)` tensor of `dtype` (an embedding lookup).
    pub fn rows_tensor(&self, ids: &[u32], dtype: DType, device: &Device) -> Result<Tensor> {
        let mut out = vec![0f32; ids.len() * self.cols];
        for (&id, o) in ids.iter().zip(out.chunks_exact_mut(self.cols)) {
            let id = id as usize;
            if id >= self.rows {
                return Err(Error::Other(format!(
                    "token id {id} is outside the embedding table of {} rows",
                    self.rows
                )));
            }
            self.dequantize_row(id, o);
        }
        let t = Tensor::from_vec(out, (ids.len(), self.cols), device)?;
        Ok(if dtype == DType::F32 {
            t
        } else {
            t.to_dtype(dtype)?
        })
    }

    /// Whether `m` activation rows go to a prepared (prefill) path, which quantizes them to Q8_0
    /// whatever the weight's format: from [`PREPARED_MIN_ROWS`] rows, or from two for a
    /// regrouped weight (whose rows the tiles cannot read); without VNNI only for the 32-value
    /// formats.
    fn prepared(&self, m: usize) -> bool {
        (self.vnni || self.kind.block_elems() == 32)
            && (m >= PREPARED_MIN_ROWS || (self.grouped && m > 1))
    }

    /// `x Wᵀ` for `x` of `m × cols` values (row-major) into `out` (`m × rows`).
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) -> Result<()> {
        let (k, n) = (self.cols, self.rows);
        if !x.len().is_multiple_of(k) || out.len() != x.len() / k * n {
            return Err(Error::Other(format!(
                "quantized matmul: input of {} values is not a whole number of {k}-wide rows, or the output ({}) does not fit",
                x.len(),
                out.len()
            )));
        }
        let m = x.len() / k;
        // Decoding: enough tasks to balance the barrier pool's threads, whole groups of a
        // regrouped weight each. Prefill: small blocks of weight rows, each used against every
        // activation row while it is in the cache.
        let per_task = if m == 1 { one_row_task_rows(n) } else { 8 };
        let ptr = OutPtr(out.as_mut_ptr());
        #[cfg(target_arch = "x86_64")]
        if self.prepared(m) {
            if self.vnni {
                self.matmul_prepared(x, per_task, ptr);
            } else {
                self.matmul_prepared_avx2(x, per_task, ptr);
            }
            return Ok(());
        }
        let act = quantize_rows(self.kind.act(), x, k);
        if m == 1 {
            super::matvec::one_row_tasks(n.div_ceil(per_task), |c| {
                let j0 = c * per_task;
                self.tiles::<4, 1>(j0..(j0 + per_task).min(n), 0..1, &act, ptr);
            });
            return Ok(());
        }
        (0..n.div_ceil(per_task)).into_par_iter().for_each(|c| {
            let j0 = c * per_task;
            let j1 = (j0 + per_task).min(n);
            {
                match self.kind {
                    // 4 × 4: sixteen 512-bit accumulators of the 32 registers (measured best
                    // of 2×4, 4×4, 2×8, 4×8 on the gate projection of Qwen2.5-0.5B).
                    QKind::Q8_0 | QKind::Q4_0 | QKind::Q5_0 if self.vnni => {
                        self.tiles::<4, 4>(j0..j1, 0..m, &act, ptr)
                    }
                    QKind::Q8_0 | QKind::Q4_0 | QKind::Q5_0 => {
                        self.tiles::<2, 4>(j0..j1, 0..m, &act, ptr)
                    }
                    QKind::Q4K | QKind::Q6K => self.tiles::<1, 4>(j0..j1, 0..m, &act, ptr),
                }
            }
        });
        Ok(())
    }

    /// Prefill with the VNNI kernels on prepared operands: the activations (quantized to Q8_0
    /// whatever the weight format) laid out once as `x + 128` bytes and per-pair scales, each
    /// task's weight rows unpacked once into [`x86_vnni::prep_pair`] records, then 4 × 4 tiles
    /// of plain loads and `vpdpbusd`.
    #[cfg(target_arch = "x86_64")]
    fn matmul_prepared(&self, x: &[f32], per_task: usize, out: OutPtr) {
        let act = quantize_rows(ActKind::Q8_0, x, self.cols);
        let m = act.rows;
        let nb = self.cols / 32;
        let npairs = nb.div_ceil(2);
        let min = self.kind == QKind::Q4K;
        let mut xu = vec![0x80u8; m * npairs * 64];
        let mut dx = vec![0f32; m * npairs * 16];
        let mut cx = vec![0f32; if min { m * npairs * 16 } else { 0 }];
        for r in 0..m {
            let xr = &mut xu[r * npairs * 64..r * npairs * 64 + nb * 32];
            for (u, &q) in xr.iter_mut().zip(act.row_qs(r)) {
                *u = (q as u8) ^ 0x80;
            }
            for (b, &d) in act.row_d(r).iter().enumerate() {
                let at = r * npairs * 16 + b * 8;
                dx[at..at + 8].fill(d);
                if min {
                    let sum: i32 = act.row_qs(r)[32 * b..32 * b + 32]
                        .iter()
                        .map(|&q| q as i32)
                        .sum();
                    cx[at..at + 8].fill(d * sum as f32 / 8.0);
                }
            }
        }
        let ops = Prepared {
            xu: &xu,
            dx: &dx,
            cx: &cx,
            npairs,
        };
        if min {
            self.run_prepared::<true>(&ops, m, per_task, out)
        } else {
            self.run_prepared::<false>(&ops, m, per_task, out)
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn run_prepared<const MIN: bool>(
        &self,
        ops: &Prepared,
        m: usize,
        per_task: usize,
        out: OutPtr,
    ) {
        let n = self.rows;
        let npairs = ops.npairs;
        let rec = x86_vnni::prep_pair(self.kind);
        (0..n.div_ceil(per_task)).into_par_iter().for_each(|c| {
            let j0 = c * per_task;
            let j1 = (j0 + per_task).min(n);
            let mut prep = vec![0u8; (j1 - j0) * npairs * rec];
            if self.grouped {
                let (data, rb) = (self.data(), self.row_bytes());
                let rows: Vec<(*const u8, usize, usize)> = (j0..j1)
                    .map(|j| {
                        let (r0, g) = regroup::group_of(n, j);
                        (data[r0 * rb..(r0 + g) * rb].as_ptr(), g, j - r0)
                    })
                    .collect();
                // SAFETY: `grouped` implies `vnni`; each pointer starts a group of `g` rows
                // holding `npairs` records, and `prep` holds every pair of every row.
                unsafe { x86_vnni::prepare_grouped(self.kind, &rows, npairs, &mut prep) };
            } else {
                let rb = self.row_bytes();
                let rows: Vec<&[u8]> = self.data()[j0 * rb..j1 * rb].chunks_exact(rb).collect();
                // SAFETY: `vnni` is set only when vnni_available(); `prep` holds every pair of
                // every row, and the activation arrays every pair of every activation row.
                unsafe { x86_vnni::prepare(self.kind, &rows, npairs, &mut prep) };
            }
            let w = |u: usize| prep[u * npairs * rec..].as_ptr();
            let x = |i: usize| {
                let c = if MIN {
                    ops.cx[i * npairs * 16..].as_ptr()
                } else {
                    ops.dx.as_ptr()
                };
                (
                    ops.xu[i * npairs * 64..].as_ptr(),
                    ops.dx[i * npairs * 16..].as_ptr(),
                    c,
                )
            };
            let store = |i: usize, j: usize, v: f32| {
                // SAFETY: (i, j) is inside the m × n output; only this task writes column j.
                unsafe { out.write(i * n + j, v) }
            };
            let nr = j1 - j0;
            let mut i = 0;
            while i < m {
                let rx = if i + 4 <= m { 4 } else { 1 };
                let mut u = 0;
                while u < nr {
                    let rw = if u + 4 <= nr { 4 } else { 1 };
                    // SAFETY: as for `prepare`.
                    unsafe {
                        if rx == 4 {
                            let xs: [_; 4] = std::array::from_fn(|t| x(i + t));
                            let (xq, xd, xc) = (xs.map(|p| p.0), xs.map(|p| p.1), xs.map(|p| p.2));
                            if rw == 4 {
                                let y = x86_vnni::dot_prepared::<4, 4, MIN>(
                                    std::array::from_fn(|a| w(u + a)),
                                    xq,
                                    xd,
                                    xc,
                                    npairs,
                                );
                                for (a, y) in y.iter().enumerate() {
                                    for (t, &v) in y.iter().enumerate() {
                                        store(i + t, j0 + u + a, v);
                                    }
                                }
                            } else {
                                let [y] =
                                    x86_vnni::dot_prepared::<1, 4, MIN>([w(u)], xq, xd, xc, npairs);
                                for (t, &v) in y.iter().enumerate() {
                                    store(i + t, j0 + u, v);
                                }
                            }
                        } else {
                            let (xq, xd, xc) = x(i);
                            if rw == 4 {
                                let y = x86_vnni::dot_prepared::<4, 1, MIN>(
                                    std::array::from_fn(|a| w(u + a)),
                                    [xq],
                                    [xd],
                                    [xc],
                                    npairs,
                                );
                                for (a, y) in y.iter().enumerate() {
                                    store(i, j0 + u + a, y[0]);
                                }
                            } else {
                                let [[v]] = x86_vnni::dot_prepared::<1, 1, MIN>(
                                    [w(u)],
                                    [xq],
                                    [xd],
                                    [xc],
                                    npairs,
                                );
                                store(i, j0 + u, v);
                            }
                        }
                    }
                    u += rw;
                }
                i += rx;
            }
        });
    }

    /// Prefill of a 32-value format without VNNI: the activation rows interleaved by block in
    /// groups of [`x86::PREP_ROWS`], each task's weight rows unpacked once
    /// ([`x86::prepare_32`]), then each prepared weight row against each group
    /// ([`x86::dot_prepared`], or [`x86::dot_prepared_unsigned`] for Q4_0 and Q5_0), groups
    /// outermost so the task's prepared rows stay in the first-level cache.
    #[cfg(target_arch = "x86_64")]
    fn matmul_prepared_avx2(&self, x: &[f32], per_task: usize, out: OutPtr) {
        const G: usize = x86::PREP_ROWS;
        let act = quantize_rows(ActKind::Q8_0, x, self.cols);
        let (m, n, nb, rb) = (act.rows, self.rows, self.cols / 32, self.row_bytes());
        let groups = m / G;
        let (offset, pb) = (x86::prep_offset(self.kind), x86::prep_block(self.kind));
        let mut xq = vec![0i8; groups * G * nb * 32];
        let mut xd = vec![0f32; groups * G * nb];
        for g in 0..groups {
            for r in 0..G {
                let (q, d) = (act.row_qs(g * G + r), act.row_d(g * G + r));
                for b in 0..nb {
                    let at = (g * nb + b) * G + r;
                    xq[at * 32..at * 32 + 32].copy_from_slice(&q[32 * b..32 * b + 32]);
                    xd[at] = d[b];
                }
            }
        }
        // The offset's share per block and half block, for weights prepared unsigned.
        let mut xs = vec![0i32; if offset > 0 { groups * nb * 16 } else { 0 }];
        for (gb, s) in xs.chunks_exact_mut(16).enumerate() {
            let (g, b) = (gb / nb, gb % nb);
            let halves = std::array::from_fn(|r| {
                let h = act.row_bsums(g * G + r);
                [h[2 * b], h[2 * b + 1]]
            });
            s.copy_from_slice(&x86::prep_offset_sums(halves, offset));
        }
        let data = self.data();
        (0..n.div_ceil(per_task)).into_par_iter().for_each(|c| {
            let j0 = c * per_task;
            let j1 = (j0 + per_task).min(n);
            // A regrouped weight's rows rebuilt in the file's layout.
            let mut rebuilt = Vec::new();
            let bytes = if self.grouped {
                rebuilt.resize((j1 - j0) * rb, 0);
                for (j, o) in (j0..j1).zip(rebuilt.chunks_exact_mut(rb)) {
                    regroup::file_row(self.kind, n, self.cols, data, j, o);
                }
                &rebuilt[..]
            } else {
                &data[j0 * rb..j1 * rb]
            };
            let rows: Vec<&[u8]> = bytes.chunks_exact(rb).collect();
            let mut qs = vec![0u8; rows.len() * nb * pb];
            let mut ds = vec![0f32; rows.len() * nb];
            // SAFETY: QWeight exists only with AVX2/FMA/F16C; the rows are whole blocks of this
            // 32-value format and `qs`, `ds` hold every block of every row.
            unsafe { x86::prepare_32(self.kind, &rows, &mut qs, &mut ds) };
            let w = |u: usize| (qs[u * nb * pb..].as_ptr(), ds[u * nb..].as_ptr());
            // SAFETY (the writes): each (row, column) is inside the m × n output, and only this
            // task writes columns j0..j1.
            for g in 0..groups {
                let (gq, gd) = (xq[g * G * nb * 32..].as_ptr(), xd[g * G * nb..].as_ptr());
                for u in 0..j1 - j0 {
                    let (wq, wd) = w(u);
                    // SAFETY: the prepared row and the group hold `nb` blocks each (and
                    // their offset sums where the weight is prepared unsigned).
                    let y = unsafe {
                        if offset == 0 {
                            x86::dot_prepared(wq, wd, gq, gd, nb)
                        } else {
                            let gs = xs[g * nb * 16..].as_ptr();
                            x86::dot_prepared_unsigned(wq, wd, gq, gd, gs, nb)
                        }
                    };
                    for (t, &v) in y.iter().enumerate() {
                        unsafe { out.write((g * G + t) * n + j0 + u, v) };
                    }
                }
            }
            for i in groups * G..m {
                let (q, d) = (act.row_qs(i).as_ptr(), act.row_d(i).as_ptr());
                for u in 0..j1 - j0 {
                    let (wq, wd) = w(u);
                    // SAFETY: as above, for one activation row in its own layout.
                    let v = unsafe { x86::dot_prepared_one(wq, wd, q, d, offset, nb) };
                    unsafe { out.write(i * n + j0 + u, v) };
                }
            }
        });
    }

    /// Weight rows `js` against activation rows `is` in tiles of `RW × RX`, the edges in
    /// narrower tiles; activation-row groups outermost, so a task's weight rows stay in the cache
    /// while every group passes over them.
    fn tiles<const RW: usize, const RX: usize>(
        &self,
        js: std::ops::Range<usize>,
        is: std::ops::Range<usize>,
        act: &Act,
        out: OutPtr,
    ) {
        let n = self.rows;
        // The bytes once per call: reaching them through the candle tensor for every tile took
        // about 1% of a decoding step.
        let data = self.data();
        #[cfg(target_arch = "x86_64")]
        if self.grouped {
            // Regrouped weights are read here for one row only (`matmul` sends more to the
            // prepared path).
            for i in is {
                self.grouped_rows(data, js.clone(), act, i, out);
            }
            return;
        }
        let mut i = is.start;
        while i < is.end {
            if i + RX <= is.end {
                let rows = std::array::from_fn(|t| i + t);
                self.tiles_rows::<RW, RX>(data, js.clone(), rows, act, out, n);
                i += RX;
            } else {
                self.tiles_rows::<RW, 1>(data, js.clone(), [i], act, out, n);
                i += 1;
            }
        }
    }

    /// Weight rows `js` (whole groups: `js.start` a multiple of [`regroup::GROUP`]) of a
    /// regrouped weight against activation row `i`.
    #[cfg(target_arch = "x86_64")]
    fn grouped_rows(
        &self,
        data: &[u8],
        js: std::ops::Range<usize>,
        act: &Act,
        i: usize,
        out: OutPtr,
    ) {
        /// One group of `g` rows at `p`: `put(t, y)` for each of its rows, on the VNNI kernel
        /// (with GFNI or without) or the AVX2 one.
        ///
        /// # Safety
        /// As `dot_grouped`'s; `vnni` only where vnni_available(), `gfni` only where
        /// gfni_available().
        #[inline]
        unsafe fn group<F: x86_vnni::Grouped + x86::GroupedPair>(
            (vnni, gfni): (bool, bool),
            p: *const u8,
            g: usize,
            npairs: usize,
            act: &Act,
            i: usize,
            mut put: impl FnMut(usize, f32),
        ) {
            let mut each = |y: &[f32]| y.iter().enumerate().for_each(|(t, &v)| put(t, v));
            // The group's size as a constant, for either kernel.
            macro_rules! by_size {
                ($($kernel:ident)::+) => {
                    match g {
                        4 => each(&$($kernel)::+::<F, 4>(p, npairs, act, i)),
                        3 => each(&$($kernel)::+::<F, 3>(p, npairs, act, i)),
                        2 => each(&$($kernel)::+::<F, 2>(p, npairs, act, i)),
                        _ => each(&$($kernel)::+::<F, 1>(p, npairs, act, i)),
                    }
                };
            }
            if vnni && gfni {
                by_size!(x86_vnni::dot_grouped_gfni)
            } else if vnni {
                by_size!(x86_vnni::dot_grouped)
            } else {
                by_size!(x86::dot_grouped)
            }
        }
        debug_assert!(js.start.is_multiple_of(regroup::GROUP));
        let (n, rb, npairs) = (self.rows, self.row_bytes(), self.cols / 64);
        let mut j = js.start;
        while j < js.end {
            let g = regroup::GROUP.min(n - j);
            let p = data[j * rb..(j + g) * rb].as_ptr();
            // SAFETY: (i, j + t) is inside the output, and only this task writes column j + t.
            let put = |t: usize, v: f32| unsafe { out.write(i * n + j + t, v) };
            // SAFETY: QWeight exists only with AVX2/FMA/F16C, `vnni` only where
            // vnni_available(), `gfni` only where gfni_available(); the group's bytes are its
            // `npairs` records, and the activation row holds `cols` quants.
            unsafe {
                let v = (self.vnni, self.gfni);
                match self.kind {
                    QKind::Q8_0 => group::<x86::Q80>(v, p, g, npairs, act, i, put),
                    QKind::Q4_0 => group::<x86::Q40>(v, p, g, npairs, act, i, put),
                    _ => group::<x86::Q50>(v, p, g, npairs, act, i, put),
                }
            }
            j += g;
        }
    }

    /// Weight rows `js` against activation rows `rows`, `RW` weight rows a tile.
    ///
    /// One activation row against Q4_K weights in the file's layout (a decoding step) takes
    /// each tile's four rows one from each quarter of `js`, so that the four streams the tile
    /// reads side by side each run on through a quarter instead of ending after one row: from
    /// memory 3–12% faster at every width measured (1536 to 8960) with the VNNI kernel and up
    /// to a third with the AVX2 one (benches/README.md, "Q4_K by quarters").
    #[inline]
    fn tiles_rows<const RW: usize, const RX: usize>(
        &self,
        data: &[u8],
        js: std::ops::Range<usize>,
        rows: [usize; RX],
        act: &Act,
        out: OutPtr,
        n: usize,
    ) {
        let put = |js: [usize; RW], y: [[f32; RX]; RW]| {
            for (&j, y) in js.iter().zip(&y) {
                for (t, &v) in y.iter().enumerate() {
                    // SAFETY: (rows[t], j) is inside the m × n output, and only the task owning
                    // weight row j writes that column.
                    unsafe { *out.0.add(rows[t] * n + j) = v };
                }
            }
        };
        let mut j = js.start;
        if RW == 4 && RX == 1 && self.kind == QKind::Q4K {
            let quarter = js.len() / 4;
            for u in 0..quarter {
                let js4 = std::array::from_fn(|q| js.start + q * quarter + u);
                put(js4, self.dot::<RW, RX>(data, js4, act, rows));
            }
            j += 4 * quarter;
        }
        while j < js.end {
            if j + RW <= js.end {
                let tile = std::array::from_fn(|u| j + u);
                put(tile, self.dot::<RW, RX>(data, tile, act, rows));
                j += RW;
            } else {
                let [y] = self.dot::<1, RX>(data, [j], act, rows);
                for (t, &v) in y.iter().enumerate() {
                    // SAFETY: as above.
                    unsafe { *out.0.add(rows[t] * n + j) = v };
                }
                j += 1;
            }
        }
    }

    #[inline]
    fn dot<const RW: usize, const RX: usize>(
        &self,
        data: &[u8],
        js: [usize; RW],
        act: &Act,
        rows: [usize; RX],
    ) -> [[f32; RX]; RW] {
        let rb = self.row_bytes();
        let w: [&[u8]; RW] = std::array::from_fn(|u| &data[js[u] * rb..(js[u] + 1) * rb]);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: QWeight is only built when kernels_available() (AVX2, FMA, F16C), and `vnni` is
        // set only when vnni_available(); each row
        // holds cols/block_elems whole blocks and each activation row cols quants.
        unsafe {
            match self.kind {
                QKind::Q8_0 if self.vnni && RX == 1 => {
                    let y = x86_vnni::dot_unsigned::<x86::Q80, RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q4_0 if self.vnni && RX == 1 => {
                    let y = x86_vnni::dot_unsigned::<x86::Q40, RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q5_0 if self.vnni && RX == 1 => {
                    let y = x86_vnni::dot_unsigned::<x86::Q50, RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                // Four rows share their scale unpacking (`dot_q4k_four`).
                QKind::Q4K if self.vnni && RX == 1 && RW == 4 => {
                    let w4: [&[u8]; 4] = std::array::from_fn(|i| w[i]);
                    let y = if self.gfni {
                        x86_vnni::dot_q4k_four_gfni(w4, act, rows[0])
                    } else {
                        x86_vnni::dot_q4k_four(w4, act, rows[0])
                    };
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q4K if self.vnni && self.gfni && RX == 1 => {
                    let y = x86_vnni::dot_q4k_one_gfni::<RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q4K if self.vnni && RX == 1 => {
                    let y = x86_vnni::dot_q4k_one::<RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q6K if self.vnni && RX == 1 => {
                    let y = x86_vnni::dot_q6k_one::<RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q4_0 if RX == 1 => {
                    let y = x86::dot_offset::<x86::Q40, RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q5_0 if RX == 1 => {
                    let y = x86::dot_offset::<x86::Q50, RW>(w, act, rows[0]);
                    std::array::from_fn(|i| [y[i]; RX])
                }
                QKind::Q8_0 if self.vnni => x86_vnni::dot_32::<x86::Q80, RW, RX>(w, act, rows),
                QKind::Q4_0 if self.vnni => x86_vnni::dot_32::<x86::Q40, RW, RX>(w, act, rows),
                QKind::Q5_0 if self.vnni => x86_vnni::dot_32::<x86::Q50, RW, RX>(w, act, rows),
                QKind::Q8_0 => x86::dot_32::<x86::Q80, RW, RX>(w, act, rows),
                QKind::Q4_0 => x86::dot_32::<x86::Q40, RW, RX>(w, act, rows),
                QKind::Q5_0 => x86::dot_32::<x86::Q50, RW, RX>(w, act, rows),
                QKind::Q4K => x86::dot_q4k::<RW, RX>(w, act, rows),
                QKind::Q6K => x86::dot_q6k::<RW, RX>(w, act, rows),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (w, act, rows);
            unreachable!("QWeight is only built on x86_64")
        }
    }

    /// `x Wᵀ` for `x` of shape `(m, cols)` in any float dtype; the result is `(m, rows)` in
    /// `x`'s dtype.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.cols {
            return Err(Error::Other(format!(
                "quantized projection takes {} inputs, got {k}",
                self.cols
            )));
        }
        let xf = x.to_dtype(DType::F32)?.contiguous()?;
        let mut out = vec![0f32; m * self.rows];
        {
            let (s, l) = xf.storage_and_layout();
            let (Storage::Cpu(CpuStorage::F32(v)), Some((o, _))) = (&*s, l.contiguous_offsets())
            else {
                return Err(Error::Other(
                    "quantized projection needs a contiguous f32 input on the CPU".into(),
                ));
            };
            self.matmul(&v[o..o + m * k], &mut out)?;
        }
        let y = Tensor::from_vec(out, (m, self.rows), x.device())?;
        Ok(if x.dtype() == DType::F32 {
            y
        } else {
            y.to_dtype(x.dtype())?
        })
    }
}

/// `x Wᵢᵀ` for several weights taking the same input (q/k/v, gate/up), each as
/// [`QWeight::forward`] would give it. For one row (decoding) see [`matvec_many`]; otherwise
/// each weight runs on its own.
pub fn forward_many(ws: &[&QWeight], x: &Tensor) -> Result<Vec<Tensor>> {
    let (m, k) = x.dims2()?;
    if m != 1 || ws.iter().any(|w| w.cols != k) {
        return ws.iter().map(|w| w.forward(x)).collect();
    }
    let xf = x.to_dtype(DType::F32)?.contiguous()?;
    let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![0f32; w.rows]).collect();
    {
        let (s, l) = xf.storage_and_layout();
        let (Storage::Cpu(CpuStorage::F32(v)), Some((o, _))) = (&*s, l.contiguous_offsets()) else {
            return Err(Error::Other(
                "quantized projection needs a contiguous f32 input on the CPU".into(),
            ));
        };
        let mut slots: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        matvec_many(ws, &v[o..o + k], &mut slots)?;
    }
    outs.into_iter()
        .zip(ws)
        .map(|(o, w)| {
            let y = Tensor::from_vec(o, (1, w.rows), x.device())?;
            Ok(if x.dtype() == DType::F32 {
                y
            } else {
                y.to_dtype(x.dtype())?
            })
        })
        .collect()
}

/// One row `x` against several weights of the same width: `outs[i] = x Wᵢᵀ`. The input is
/// quantized once per activation format and all the weights' row blocks run in one parallel
/// region, so the threads meet once instead of once per weight.
pub fn matvec_many(ws: &[&QWeight], x: &[f32], outs: &mut [&mut [f32]]) -> Result<()> {
    matvec_many_ahead(ws, x, outs, &super::matvec::Ahead::none())
}

/// [`matvec_many`], threads left without a task pulling `ahead` into the caches meanwhile.
pub(crate) fn matvec_many_ahead(
    ws: &[&QWeight],
    x: &[f32],
    outs: &mut [&mut [f32]],
    ahead: &super::matvec::Ahead,
) -> Result<()> {
    let k = x.len();
    if ws.len() != outs.len()
        || ws
            .iter()
            .zip(outs.iter())
            .any(|(w, o)| w.cols != k || o.len() != w.rows)
    {
        return Err(Error::Other(format!(
            "quantized projections: a {k}-value input or an output does not fit the weights"
        )));
    }
    let acts: Vec<(ActKind, Act)> = [ActKind::Q8_0, ActKind::Q8K]
        .into_iter()
        .filter(|a| ws.iter().any(|w| w.kind.act() == *a))
        .map(|a| (a, quantize_rows(a, x, k)))
        .collect();
    let total: usize = ws.iter().map(|w| w.rows).sum();
    let per_task = one_row_task_rows(total);
    // (weight, first row, last row) for every task of every weight.
    let tasks: Vec<(usize, usize, usize)> = ws
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            (0..w.rows)
                .step_by(per_task)
                .map(move |j| (i, j, (j + per_task).min(w.rows)))
        })
        .collect();
    let ptrs: Vec<OutPtr> = outs.iter_mut().map(|o| OutPtr(o.as_mut_ptr())).collect();
    super::matvec::one_row_tasks_ahead(
        tasks.len(),
        |t| {
            let (i, j0, j1) = tasks[t];
            let w = ws[i];
            let act = &acts
                .iter()
                .find(|a| a.0 == w.kind.act())
                .expect("quantized above")
                .1;
            w.tiles::<4, 1>(j0..j1, 0..1, act, ptrs[i]);
        },
        ahead,
    );
    Ok(())
}

/// Weight rows per task of a one-row product over `n` rows: about two tasks per thread of the
/// barrier pool the tasks run on (its workers and the caller), at most 1,024 rows, a whole
/// number of [`regroup::GROUP`]s. Each task's streams start cold, so long tasks read faster;
/// two a thread still let one thread take over the other's second when that one is held up
/// (2–4% faster decoding than eight tasks a thread of at most 256 rows, benches/README.md,
/// "Two tasks a thread"). The pool's own count, not `candle_core::utils::get_num_threads()`:
/// without `RAYON_NUM_THREADS` that parses /proc/cpuinfo on every call (about 3% of a
/// decoding step).
fn one_row_task_rows(n: usize) -> usize {
    (n / (super::matvec::pool_threads() * 2)).clamp(4, 1024) / regroup::GROUP * regroup::GROUP
}

/// Quantize activation rows, in parallel when there are many.
fn quantize_rows(kind: ActKind, x: &[f32], k: usize) -> Act {
    let m = x.len() / k;
    // QWeight exists only where the kernels (and so AVX2) are available.
    let simd = cfg!(target_arch = "x86_64");
    if m < 16 {
        return Act::quantize_with(kind, x, k, simd);
    }
    let parts: Vec<Act> = x
        .par_chunks(k * 8)
        .map(|c| Act::quantize_with(kind, c, k, simd))
        .collect();
    let mut a = Act {
        kind,
        k,
        rows: m,
        qs: Vec::with_capacity(m * k),
        d: Vec::with_capacity(m * k / kind.block_elems()),
        bsums: Vec::new(),
    };
    for p in parts {
        a.qs.extend_from_slice(&p.qs);
        a.d.extend_from_slice(&p.d);
        a.bsums.extend_from_slice(&p.bsums);
    }
    a
}

#[cfg(test)]
mod tests;
