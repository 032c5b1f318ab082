//! Rotary position embedding tables, computed as transformers computes them.
//!
//! `inv_freq` and the phases `position × inv_freq` are evaluated in f32 (transformers disables
//! autocast for this), then cos/sin are cast to the compute dtype. Computing the phases in bf16, as
//! candle-transformers' qwen2 does, rounds the positions themselves past 256 and drifts.

use candle_core::{DType, Device, Tensor};

use crate::config::{ModelConfig, RopeScaling};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    interleaved: bool,
    max_positions: usize,
}

/// transformers' default `inv_freq`, in f32 arithmetic.
pub fn default_inv_freq(head_dim: usize, theta: f64) -> Vec<f32> {
    let base = theta as f32;
    (0..head_dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            1.0f32 / base.powf(exponent)
        })
        .collect()
}

/// Apply a scaling rule to `inv_freq` exactly as transformers' `_compute_llama3_parameters` does.
pub fn scale_inv_freq(inv_freq: &[f32], scaling: &RopeScaling) -> Vec<f32> {
    match *scaling {
        RopeScaling::Linear { factor } => inv_freq.iter().map(|f| f / factor as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let (factor, low, high) = (
                factor as f32,
                low_freq_factor as f32,
                high_freq_factor as f32,
            );
            let old = original_max_position_embeddings as f32;
            let low_freq_wavelen = old / low;
            let high_freq_wavelen = old / high;
            inv_freq
                .iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        f
                    };
                    let smooth = (old / wavelen - low) / (high - low);
                    let smoothed = (1.0 - smooth) * scaled / factor + smooth * scaled;
                    let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
                    if medium {
                        smoothed
                    } else {
                        scaled
                    }
                })
                .collect()
        }
    }
}

impl Rope {
    /// `freq_factors` (from a GGUF `rope_freqs.weight`) divide the base frequencies and replace the
    /// config's scaling rule; `interleaved` selects GPT-J-style pairs (GGUF llama, whose q/k weights
    /// are permuted by the converter) instead of NeoX halves.
    pub fn new(
        cfg: &ModelConfig,
        freq_factors: Option<Vec<f32>>,
        interleaved: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let base = default_inv_freq(cfg.head_dim, cfg.rope_theta);
        let inv_freq = match (&freq_factors, &cfg.rope_scaling) {
            (Some(ff), _) => base.iter().zip(ff).map(|(f, s)| f / s).collect(),
            (None, Some(s)) => scale_inv_freq(&base, s),
            (None, None) => base,
        };
        let n = cfg.max_position_embeddings;
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in 0..n {
            let pf = p as f32;
            for &f in &inv_freq {
                let phase = pf * f;
                cos.push(phase.cos());
                sin.push(phase.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (n, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (n, half), device)?.to_dtype(dtype)?;
        Ok(Rope {
            cos,
            sin,
            interleaved,
            max_positions: n,
        })
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The cos and sin rows of position `pos` (`head_dim / 2` values each), in f32.
    pub fn tables_at(&self, pos: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let row = |t: &Tensor| -> Result<Vec<f32>> {
            Ok(t.get(pos)?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
        };
        Ok((row(&self.cos)?, row(&self.sin)?))
    }

    /// Rotate one head's `d` values in place with the tables of [`Rope::tables_at`], as
    /// [`Rope::apply`] rotates a position (candle's `rope` / `rope_i` arithmetic).
    pub fn rotate(&self, x: &mut [f32], cos: &[f32], sin: &[f32]) {
        let half = x.len() / 2;
        if self.interleaved {
            for i in 0..half {
                let (a, b) = (x[2 * i], x[2 * i + 1]);
                x[2 * i] = a * cos[i] - b * sin[i];
                x[2 * i + 1] = a * sin[i] + b * cos[i];
            }
        } else {
            for i in 0..half {
                let (a, b) = (x[i], x[i + half]);
                x[i] = a * cos[i] - b * sin[i];
                x[i + half] = a * sin[i] + b * cos[i];
            }
        }
    }

    /// Rotate `(1, heads, t, d)` queries or keys standing at positions `offset..offset+t`.
    pub fn apply(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, offset, t)?.contiguous()?;
        let sin = self.sin.narrow(0, offset, t)?.contiguous()?;
        Ok(if self.interleaved {
            candle_nn::rotary_emb::rope_i(x, &cos, &sin)?
        } else {
            candle_nn::rotary_emb::rope(x, &cos, &sin)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_uses_all_three_branches() {
        let base = default_inv_freq(16, 500000.0);
        let s = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 256,
        };
        let scaled = scale_inv_freq(&base, &s);
        // High frequencies (short wavelengths) unchanged, the lowest divided by the factor, and
        // at least one in between smoothly interpolated.
        assert_eq!(scaled[0], base[0]);
        assert!((scaled[7] - base[7] / 8.0).abs() < 1e-12);
        assert!(scaled
            .iter()
            .zip(&base)
            .any(|(s, b)| *s < *b && *s > *b / 8.0));
    }
}
