//! The 32-value formats (Q8_0, Q4_0, Q5_0) regrouped for one-row products (decoding).
//!
//! In a GGUF file each row is a run of blocks, each block its f16 scale beside its quants. A
//! decoding step's kernel then spends most of its instructions gathering: two scales from two
//! places and a conversion per block pair and row, the 16-byte nibble runs of two blocks put
//! side by side, Q5_0's fifth bits read from two more places. Regrouped, the weight is the same
//! bytes in another order, so that what a 512-bit step of [`super::x86_vnni::dot_grouped`]
//! (or two 256-bit ones of `x86::dot_grouped`) needs lies together, and a task's rows
//! are read as one forward stream instead of four interleaved ones:
//!
//! - rows in groups of [`GROUP`] (the last group holds what is left), each group's bytes where
//!   the file has those rows' bytes, so a task's rows stay one contiguous stream;
//! - within a group, one record per block pair (blocks `2p` and `2p + 1` of every row of the
//!   group): first the `2·g` f16 scales (row 0's two blocks, row 1's, …), one load and one
//!   conversion for the whole group; then for Q5_0 each row's two `qh` words side by side (one
//!   64-bit mask register per row); then each row's quants as 64 unsigned values: Q8_0's as
//!   `q + 128` (64 bytes), Q4_0's and Q5_0's as 32 bytes whose low nibbles are block `2p`'s 32
//!   quants and whose high nibbles are block `2p + 1`'s, so one broadcast load, one masked shift
//!   and one `and` give the 64 quants in order.
//!
//! The regrouping is a permutation of the file's bits (same size, Q8_0's `q + 128` is `q ^ 0x80`),
//! so [`file_row`] gives back any row exactly as the file has it, for the paths that read
//! blocks (prefill, embedding lookups). Only rows of an even number of blocks are regrouped.
//!
//! Why hand-written: no crate lays GGML blocks out for these kernels; the layout is theirs.

use super::formats::QKind;

/// Rows per group: the one-row kernel's tile.
pub const GROUP: usize = 4;

/// Whether a `kind` weight of `cols` columns can be regrouped.
pub fn supported(kind: QKind, cols: usize) -> bool {
    matches!(kind, QKind::Q8_0 | QKind::Q4_0 | QKind::Q5_0) && cols.is_multiple_of(64)
}

/// Where row `i`'s quants start in a record of `g` rows of `kind`.
pub const fn quants_at(kind: QKind, g: usize, i: usize) -> usize {
    match kind {
        QKind::Q8_0 => 4 * g + 64 * i,
        QKind::Q4_0 => 4 * g + 32 * i,
        _ => 12 * g + 32 * i,
    }
}

/// Where row `i`'s two `qh` words start in a Q5_0 record of `g` rows.
pub const fn qh_at(g: usize, i: usize) -> usize {
    4 * g + 8 * i
}

/// The `(first row, rows)` of the group holding row `r`.
pub fn group_of(rows: usize, r: usize) -> (usize, usize) {
    let r0 = r / GROUP * GROUP;
    (r0, GROUP.min(rows - r0))
}

/// Q4_0/Q5_0's 16 nibble bytes of two blocks as the 32 regrouped bytes: byte `i` holds quant `i`
/// of the first block in its low nibble and quant `i` of the second in its high nibble.
fn pair_nibbles(a: &[u8], b: &[u8], out: &mut [u8]) {
    for j in 0..16 {
        out[j] = (a[j] & 0xF) | (b[j] << 4);
        out[j + 16] = (a[j] >> 4) | (b[j] & 0xF0);
    }
}

/// The inverse of [`pair_nibbles`].
fn split_nibbles(q: &[u8], a: &mut [u8], b: &mut [u8]) {
    for j in 0..16 {
        a[j] = (q[j] & 0xF) | (q[j + 16] << 4);
        b[j] = (q[j] >> 4) | (q[j + 16] & 0xF0);
    }
}

/// Regroup a `rows × cols` weight of `kind` from the file's layout. `supported(kind, cols)` and
/// `src.len()` equal to the weight's size are the caller's to check. Groups are independent and
/// each lies where the file has its rows, so they are regrouped in parallel (a model's load
/// regroups most of its weights).
pub fn regroup(kind: QKind, rows: usize, cols: usize, src: &[u8]) -> crate::pages::Buffer {
    use rayon::prelude::*;
    let rb = cols / 32 * kind.block_bytes();
    debug_assert_eq!(src.len(), rows * rb);
    // In huge pages where the system gives them (crate::pages).
    let mut out = crate::pages::Buffer::zeroed(src.len());
    out.par_chunks_mut(GROUP * rb)
        .zip(src.par_chunks(GROUP * rb))
        .for_each(|(o, s)| regroup_group(kind, s.len() / rb, cols, s, o));
    out
}

/// One group of `g` rows (`src`, in the file's layout) into `out`.
fn regroup_group(kind: QKind, g: usize, cols: usize, src: &[u8], out: &mut [u8]) {
    let bb = kind.block_bytes();
    let rb = cols / 32 * bb;
    let rec = 2 * bb * g;
    for p in 0..cols / 64 {
        let o = &mut out[p * rec..(p + 1) * rec];
        for i in 0..g {
            let b0 = &src[i * rb + 2 * p * bb..][..bb];
            let b1 = &src[i * rb + (2 * p + 1) * bb..][..bb];
            o[4 * i..4 * i + 2].copy_from_slice(&b0[..2]);
            o[4 * i + 2..4 * i + 4].copy_from_slice(&b1[..2]);
            let q = quants_at(kind, g, i);
            match kind {
                QKind::Q8_0 => {
                    for (d, &s) in o[q..q + 32].iter_mut().zip(&b0[2..34]) {
                        *d = s ^ 0x80;
                    }
                    for (d, &s) in o[q + 32..q + 64].iter_mut().zip(&b1[2..34]) {
                        *d = s ^ 0x80;
                    }
                }
                QKind::Q4_0 => pair_nibbles(&b0[2..18], &b1[2..18], &mut o[q..q + 32]),
                _ => {
                    let h = qh_at(g, i);
                    o[h..h + 4].copy_from_slice(&b0[2..6]);
                    o[h + 4..h + 8].copy_from_slice(&b1[2..6]);
                    pair_nibbles(&b0[6..22], &b1[6..22], &mut o[q..q + 32]);
                }
            }
        }
    }
}

/// Row `r` of a regrouped `rows × cols` weight of `kind`, in the file's layout, into `out`
/// (one row's bytes).
pub fn file_row(kind: QKind, rows: usize, cols: usize, data: &[u8], r: usize, out: &mut [u8]) {
    let bb = kind.block_bytes();
    let rb = cols / 32 * bb;
    let (r0, g) = group_of(rows, r);
    let i = r - r0;
    let rec = 2 * bb * g;
    for p in 0..cols / 64 {
        let o = &data[r0 * rb + p * rec..r0 * rb + (p + 1) * rec];
        let (b0, b1) = out[2 * p * bb..(2 * p + 2) * bb].split_at_mut(bb);
        b0[..2].copy_from_slice(&o[4 * i..4 * i + 2]);
        b1[..2].copy_from_slice(&o[4 * i + 2..4 * i + 4]);
        let q = quants_at(kind, g, i);
        match kind {
            QKind::Q8_0 => {
                for (d, &s) in b0[2..34].iter_mut().zip(&o[q..q + 32]) {
                    *d = s ^ 0x80;
                }
                for (d, &s) in b1[2..34].iter_mut().zip(&o[q + 32..q + 64]) {
                    *d = s ^ 0x80;
                }
            }
            QKind::Q4_0 => split_nibbles(&o[q..q + 32], &mut b0[2..18], &mut b1[2..18]),
            _ => {
                let h = qh_at(g, i);
                b0[2..6].copy_from_slice(&o[h..h + 4]);
                b1[2..6].copy_from_slice(&o[h + 4..h + 8]);
                split_nibbles(&o[q..q + 32], &mut b0[6..22], &mut b1[6..22]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every row comes back byte for byte, for every format and a last group of each size.
    #[test]
    fn regrouping_is_undone_row_by_row() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        for kind in [QKind::Q8_0, QKind::Q4_0, QKind::Q5_0] {
            for rows in [1, 2, 3, 4, 5, 6, 7, 9] {
                let cols = 192;
                let rb = cols / 32 * kind.block_bytes();
                let src: Vec<u8> = (0..rows * rb).map(|_| rng.random()).collect();
                let g = regroup(kind, rows, cols, &src);
                assert_eq!(g.len(), src.len());
                assert_ne!(&g[..], &src[..], "{kind:?} {rows}: the layout changed");
                let mut row = vec![0u8; rb];
                for r in 0..rows {
                    file_row(kind, rows, cols, &g, r, &mut row);
                    assert_eq!(row, src[r * rb..(r + 1) * rb], "{kind:?} rows={rows} r={r}");
                }
            }
        }
    }

    #[test]
    fn records_hold_what_the_kernels_read() {
        // One Q5_0 row of two blocks: scale, qh and nibbles where the record says.
        let mut blocks = vec![0u8; 44];
        blocks[0..2].copy_from_slice(&[0x11, 0x22]);
        blocks[2..6].copy_from_slice(&[1, 2, 3, 4]);
        blocks[6..22].copy_from_slice(&[0x21; 16]); // quants 0..16 = 1, 16..32 = 2
        blocks[22..24].copy_from_slice(&[0x33, 0x44]);
        blocks[24..28].copy_from_slice(&[5, 6, 7, 8]);
        blocks[28..44].copy_from_slice(&[0x43; 16]); // 3 and 4
        let g = regroup(QKind::Q5_0, 1, 64, &blocks);
        assert_eq!(&g[..4], &[0x11, 0x22, 0x33, 0x44]);
        assert_eq!(&g[qh_at(1, 0)..qh_at(1, 0) + 8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let q = quants_at(QKind::Q5_0, 1, 0);
        assert_eq!(&g[q..q + 16], &[0x31; 16]);
        assert_eq!(&g[q + 16..q + 32], &[0x42; 16]);
        // Q8_0: q + 128.
        let mut b8 = vec![0u8; 68];
        b8[2] = 0xFF; // q = −1
        let g = regroup(QKind::Q8_0, 1, 64, &b8);
        assert_eq!(g[quants_at(QKind::Q8_0, 1, 0)], 0x7F);
        assert_eq!(group_of(10, 9), (8, 2));
        assert_eq!(group_of(10, 3), (0, 4));
        assert!(supported(QKind::Q5_0, 896) && !supported(QKind::Q5_0, 800));
        assert!(!supported(QKind::Q4K, 1024));
    }
}
