//! Transparent huge pages for the buffers a decoding step streams through.
//!
//! A decoding step reads every weight once, front to back. In 4 KiB pages that is a TLB miss
//! every 4 KiB, and the hardware prefetchers stop at each page's end. In 2 MiB pages a plain read
//! loop on the development machine went from 27.8–31.5 to 33.0–35.8 GB/s (benches/README.md,
//! "Huge pages"). Many Linux systems ship transparent huge pages in `madvise` mode, where only memory
//! asked for gets them. So hakaru asks: [`advise`] before a fresh buffer is first written (the
//! pages come huge as they are touched), [`collapse`] for memory already written (the kernel
//! copies it into huge pages in place, one to two seconds per GB on that machine).
//!
//! Weights candle holds as tensors are built in a `Vec` advised before it is written
//! ([`zeroed_vec`], [`copied_vec`]: GGUF files' unquantized tensors, safetensors tensors stored
//! in the model's dtype) and collapsed after the load where the allocator reused memory touched
//! before; weights candle built itself (K-quants and file-layout Q8_0 in its `QTensor`s, other
//! safetensors dtypes) are collapsed.
//!
//! Weights hakaru lays out itself (the regrouped 32-value formats) go into a [`Buffer`]: slices
//! of 2 MiB-aligned mappings of at least [`CHUNK`] bytes, advised before they are written, so a
//! model's many small projections (Qwen2.5-0.5B's are 0.1–3 MB each) lie in huge pages too, not
//! only the aligned middle of the larger ones. A mapping is returned to the system when the last
//! slice in it is dropped.
//!
//! Only the 2 MiB-aligned interior of a range is advised, so no page outside it changes. All are
//! hints: where the kernel declines (another OS, THP `never`, a kernel before 6.1 for
//! `collapse`) nothing changes but the speed. `HAKARU_HUGE_PAGES=off` leaves every buffer in the
//! system's default pages, for comparisons.
//!
//! Why `libc` directly: each hint is one `madvise` call and a mapping one `mmap` and `munmap`;
//! the wrappers around them (`nix`, `rustix`) add nothing these few calls need.

/// The huge page size these hints align to.
pub const HUGE: usize = 2 << 20;

/// Whether hakaru asks for huge pages (not switched off with `HAKARU_HUGE_PAGES=off`).
pub fn enabled() -> bool {
    !std::env::var("HAKARU_HUGE_PAGES").is_ok_and(|v| v == "off" || v == "0")
}

/// The 2 MiB-aligned part of `len` bytes at `ptr`: `(start, len)`, or `None` when it is empty.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn interior(ptr: *const u8, len: usize) -> Option<(usize, usize)> {
    let start = (ptr as usize).checked_add(HUGE - 1)? & !(HUGE - 1);
    let end = (ptr as usize).checked_add(len)? & !(HUGE - 1);
    (end > start).then(|| (start, end - start))
}

#[cfg(target_os = "linux")]
fn madvise(ptr: *const u8, len: usize, advice: libc::c_int) -> bool {
    if !enabled() {
        return false;
    }
    let Some((start, n)) = interior(ptr, len) else {
        return false;
    };
    // SAFETY: the range lies inside memory the caller holds (a live allocation of `len` bytes at
    // `ptr`), and both advices change only how it is backed, never what it holds.
    unsafe { libc::madvise(start as *mut libc::c_void, n, advice) == 0 }
}

/// Ask for huge pages under the `len` bytes at `ptr`, memory not yet written (a fresh
/// allocation's capacity): they are then faulted in huge as they are first touched. Whether the
/// kernel took the hint.
pub fn advise(ptr: *const u8, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        madvise(ptr, len, libc::MADV_HUGEPAGE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ptr, len);
        false
    }
}

/// Put the written bytes `buf` into huge pages now (`MADV_COLLAPSE`, Linux 6.1 and later).
/// Whether the kernel did.
pub fn collapse(buf: &[u8]) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        madvise(buf.as_ptr(), buf.len(), libc::MADV_COLLAPSE)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = buf;
        false
    }
}

/// `n` zeroed values in a `Vec` whose memory was advised before it was written, for weights
/// candle will hold as tensors. Allocations from 32 MiB on are fresh mappings here
/// (`device::tune_allocator`), so they come in huge pages; smaller ones may reuse memory
/// touched before, which [`collapse`] can move afterwards.
pub fn zeroed_vec<T: bytemuck::Pod>(n: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise(v.as_ptr() as *const u8, n * std::mem::size_of::<T>());
    v.resize(n, T::zeroed());
    v
}

/// The values in `bytes` (a `T` slice's bytes at any alignment) as a [`zeroed_vec`] written
/// once; `None` when the length is not a whole number of values.
pub fn copied_vec<T: bytemuck::Pod>(bytes: &[u8]) -> Option<Vec<T>> {
    let size = std::mem::size_of::<T>();
    if size == 0 || !bytes.len().is_multiple_of(size) {
        return None;
    }
    let mut v = zeroed_vec::<T>(bytes.len() / size);
    bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
    Some(v)
}

/// Bytes mapped at a time for [`Buffer`]s; a larger buffer gets a mapping of its own.
pub const CHUNK: usize = 64 << 20;

/// One anonymous mapping, 2 MiB-aligned, unmapped when dropped.
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; which bytes of it a thread may touch is decided by the
// `Buffer`s that own disjoint ranges of it.
#[cfg(target_os = "linux")]
unsafe impl Send for Mapping {}
#[cfg(target_os = "linux")]
unsafe impl Sync for Mapping {}

#[cfg(target_os = "linux")]
impl Mapping {
    /// `len` (a multiple of [`HUGE`]) zeroed bytes at a 2 MiB-aligned address, advised huge.
    fn new(len: usize) -> Option<Mapping> {
        let over = len.checked_add(HUGE)?;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                over,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let base = p as usize;
        let start = (base + HUGE - 1) & !(HUGE - 1);
        // SAFETY: the head and tail trimmed off lie inside the mapping just made, page-aligned
        // (mmap returns page-aligned addresses, and HUGE and len are multiples of the page).
        unsafe {
            if start > base {
                libc::munmap(p, start - base);
            }
            let end = start + len;
            if base + over > end {
                libc::munmap(end as *mut libc::c_void, base + over - end);
            }
        }
        advise(start as *const u8, len);
        Some(Mapping {
            ptr: start as *mut u8,
            len,
        })
    }
}

#[cfg(target_os = "linux")]
impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range is this mapping's, and no Buffer into it is left (each holds an Arc).
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// The mapping [`Buffer::zeroed`] is filling and how much of it is handed out. Weak, so that
/// the mapping goes when the buffers in it do.
#[cfg(target_os = "linux")]
static CURRENT: std::sync::Mutex<(std::sync::Weak<Mapping>, usize)> =
    std::sync::Mutex::new((std::sync::Weak::new(), 0));

/// Zeroed bytes for a weight, in huge pages where the system gives them (see the module
/// documentation); an ordinary `Vec` elsewhere.
#[derive(Debug)]
pub struct Buffer(Inner);

#[derive(Debug)]
enum Inner {
    #[cfg(target_os = "linux")]
    Mapped {
        map: std::sync::Arc<Mapping>,
        at: usize,
        len: usize,
    },
    Heap(Vec<u8>),
}

impl Buffer {
    /// `len` zeroed bytes, 64-byte aligned when mapped.
    pub fn zeroed(len: usize) -> Buffer {
        #[cfg(target_os = "linux")]
        if enabled() && len > 0 {
            if let Some(b) = Self::mapped(len) {
                return b;
            }
        }
        Buffer(Inner::Heap(vec![0u8; len]))
    }

    #[cfg(target_os = "linux")]
    fn mapped(len: usize) -> Option<Buffer> {
        use std::sync::Arc;
        let need = len.checked_add(63)? & !63;
        let own = |len: usize| {
            let size = len.checked_add(HUGE - 1)? & !(HUGE - 1);
            Mapping::new(size).map(Arc::new)
        };
        if need > CHUNK / 2 {
            let map = own(need)?;
            return Some(Buffer(Inner::Mapped { map, at: 0, len }));
        }
        let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        let map = match cur.0.upgrade() {
            Some(m) if m.len - cur.1 >= need => m,
            _ => {
                let m = own(CHUNK)?;
                *cur = (Arc::downgrade(&m), 0);
                m
            }
        };
        let at = cur.1;
        cur.1 += need;
        Some(Buffer(Inner::Mapped { map, at, len }))
    }

    /// Whether the bytes lie in a mapping advised huge (not a fallback `Vec`).
    pub fn is_mapped(&self) -> bool {
        !matches!(self.0, Inner::Heap(_))
    }
}

impl std::ops::Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            #[cfg(target_os = "linux")]
            // SAFETY: `at..at + len` lies inside the mapping, which the Arc keeps alive, and no
            // other Buffer is handed that range.
            Inner::Mapped { map, at, len } => unsafe {
                std::slice::from_raw_parts(map.ptr.add(*at), *len)
            },
            Inner::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            #[cfg(target_os = "linux")]
            // SAFETY: as in `deref`; `&mut self` makes this the only reference to the range.
            Inner::Mapped { map, at, len } => unsafe {
                std::slice::from_raw_parts_mut(map.ptr.add(*at), *len)
            },
            Inner::Heap(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_aligned_interior_is_advised() {
        let h = HUGE;
        assert_eq!(interior((3 * h) as *const u8, 2 * h), Some((3 * h, 2 * h)));
        assert_eq!(interior((3 * h + 1) as *const u8, 2 * h), Some((4 * h, h)));
        assert_eq!(interior((3 * h + 1) as *const u8, 2 * h - 2), None);
        assert_eq!(interior((3 * h - 1) as *const u8, 1), None);
        assert_eq!(interior(usize::MAX as *const u8, 10), None);
    }

    /// Where the system has transparent huge pages at all, the kernel takes the advice; and the
    /// bytes stay what they were through a collapse (whose success depends on the kernel's
    /// version and free memory, so it is not asserted).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_kernel_takes_the_advice_and_collapsing_keeps_the_bytes() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let mut fresh: Vec<u8> = Vec::with_capacity(3 * HUGE);
        let advised = advise(fresh.as_ptr(), fresh.capacity());
        fresh.extend((0..3 * HUGE).map(|i| (i * 7 % 251) as u8));
        collapse(&fresh);
        assert!(fresh
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i * 7 % 251) as u8));
        if enabled() && (thp.contains("[always]") || thp.contains("[madvise]")) {
            assert!(advised, "MADV_HUGEPAGE refused under THP {thp:?}");
        }
    }

    #[test]
    fn buffers_are_zeroed_disjoint_and_outlive_their_neighbours() {
        let sizes = [1usize, 100, 4096, 3 << 20, CHUNK / 2 + 1, 7];
        let mut bufs: Vec<Buffer> = sizes.iter().map(|&n| Buffer::zeroed(n)).collect();
        for (b, &n) in bufs.iter().zip(&sizes) {
            assert_eq!(b.len(), n);
            assert!(b.iter().all(|&x| x == 0));
            if b.is_mapped() {
                assert_eq!(b.as_ptr() as usize % 64, 0);
            }
        }
        for (i, b) in bufs.iter_mut().enumerate() {
            b.fill(i as u8 + 1);
        }
        // Dropping some leaves the others' bytes (and mappings) in place.
        let kept: Vec<Buffer> = bufs.into_iter().skip(2).collect();
        for (i, b) in kept.iter().enumerate() {
            assert!(b.iter().all(|&x| x == i as u8 + 3), "buffer {i}");
        }
        assert_eq!(Buffer::zeroed(0).len(), 0);
    }

    #[test]
    fn copied_values_are_the_bytes() {
        let vals: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        // At an odd offset too: the source need not be aligned.
        let mut odd = vec![0u8; 1];
        odd.extend_from_slice(&bytes);
        assert_eq!(copied_vec::<f32>(&bytes).unwrap(), vals);
        assert_eq!(copied_vec::<f32>(&odd[1..]).unwrap(), vals);
        assert!(copied_vec::<f32>(&bytes[1..]).is_none());
        assert_eq!(zeroed_vec::<half::bf16>(5), vec![half::bf16::ZERO; 5]);
    }
}
