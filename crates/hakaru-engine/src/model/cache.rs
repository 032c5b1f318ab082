//! A KV cache that grows in place and can be truncated, so a shared prefix (a multiple-choice
//! context, a few-shot preamble) is computed once and each continuation scored after it.

use candle_core::Tensor;

use crate::error::Result;

/// Per-layer key/value buffers of shape `(1, kv_heads, capacity, head_dim)`.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
}

impl LayerCache {
    fn capacity(&self) -> usize {
        self.k.as_ref().map(|k| k.dims()[2]).unwrap_or(0)
    }

    /// Append `(1, kv_heads, t, d)` keys and values; return views of all valid positions.
    pub(crate) fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let need = self.len + t;
        if need > self.capacity() {
            // Grow geometrically so a long generation copies the cache O(log n) times, not per token.
            let cap = need.max(self.capacity() * 2).max(256);
            let grow = |old: &Option<Tensor>, new: &Tensor| -> Result<Tensor> {
                let (b, h, _, d) = new.dims4()?;
                let buf = Tensor::zeros((b, h, cap, d), new.dtype(), new.device())?;
                if let Some(old) = old {
                    if self.len > 0 {
                        buf.slice_set(&old.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                    }
                }
                Ok(buf)
            };
            let nk = grow(&self.k, k)?;
            let nv = grow(&self.v, v)?;
            self.k = Some(nk);
            self.v = Some(nv);
        }
        let (kb, vb) = (self.k.as_ref().unwrap(), self.v.as_ref().unwrap());
        kb.slice_set(&k.contiguous()?, 2, self.len)?;
        vb.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len = need;
        Ok((kb.narrow(2, 0, need)?, vb.narrow(2, 0, need)?))
    }
}

/// The cache of a whole model: one [`LayerCache`] per layer and the number of cached positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) layers: Vec<LayerCache>,
    len: usize,
}

impl KvCache {
    pub fn new(n_layers: usize) -> Self {
        KvCache {
            layers: vec![LayerCache::default(); n_layers],
            len: 0,
        }
    }
    /// Number of positions held.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }
    /// Forget every position from `len` on; the buffers are kept and overwritten by later appends.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            for l in &mut self.layers {
                l.len = len;
            }
        }
    }
    pub fn clear(&mut self) {
        self.truncate(0)
    }
}
