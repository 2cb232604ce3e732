//! Attention of one new token over the key/value state, the step that grows with the
//! context while a rationale is decoded.
//!
//! As two matrix products (the path for several tokens) it packs a copy of every cached
//! key and value for each token, scores every position and masks those outside a
//! sliding window afterwards. Here each query walks its key head's cached rows in place,
//! and only those its window reaches: dot products, a softmax, a weighted sum, in the
//! widest vector instructions the CPU has (`pulp` picks them at run time). Every query is
//! computed on its own, so a row's numbers do not depend on the rows it is batched with.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape};
use pulp::{Arch, Simd};

/// Scaled dot-product attention of `[key_heads, group, head_dim]` queries (the query
/// heads that share a key head stacked together, one position each) over
/// `[key_heads, positions, head_dim]` keys and values whose rows are contiguous: the
/// output has the queries' shape. The token is the last position; a `window` limits it
/// to the latest `window` positions (sliding-window layers).
#[derive(Debug, Clone, Copy)]
pub struct OneTokenAttention {
    pub scale: f32,
    pub window: Option<usize>,
}

impl OneTokenAttention {
    /// Whether `keys` and `values` (`[key_heads, positions, head_dim]`) keep each
    /// position's `head_dim` numbers side by side, as this kernel reads them.
    pub fn reads(keys: &candle_core::Tensor, values: &candle_core::Tensor) -> bool {
        rows_contiguous(keys.layout()) && rows_contiguous(values.layout())
    }
}

/// Whether a `[heads, positions, dim]` layout keeps each position's `dim` numbers side
/// by side.
fn rows_contiguous(layout: &Layout) -> bool {
    let (stride, dims) = (layout.stride(), layout.dims());
    dims.len() == 3 && stride[1..] == [dims[2], 1]
}

impl CustomOp3 for OneTokenAttention {
    fn name(&self) -> &'static str {
        "one-token-attention"
    }

    fn cpu_fwd(
        &self,
        queries: &CpuStorage,
        query_layout: &Layout,
        keys: &CpuStorage,
        key_layout: &Layout,
        values: &CpuStorage,
        value_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (heads, group, dim) = query_layout.shape().dims3()?;
        let (key_heads, positions, key_dim) = key_layout.shape().dims3()?;
        if key_layout.shape() != value_layout.shape() || key_heads != heads || key_dim != dim {
            candle_core::bail!(
                "one-token attention: queries {:?}, keys {:?}, values {:?}",
                query_layout.shape(),
                key_layout.shape(),
                value_layout.shape()
            );
        }
        if !rows_contiguous(key_layout) || !rows_contiguous(value_layout) {
            candle_core::bail!("one-token attention: key or value rows are not contiguous");
        }
        let Some((query_start, query_end)) = query_layout.contiguous_offsets() else {
            candle_core::bail!("one-token attention: the queries are not contiguous");
        };
        let queries = &queries.as_slice::<f32>()?[query_start..query_end];
        let keys = Rows::new(keys.as_slice::<f32>()?, key_layout);
        let values = Rows::new(values.as_slice::<f32>()?, value_layout);
        let first = self
            .window
            .map_or(0, |window| positions.saturating_sub(window));

        let mut out = vec![0f32; heads * group * dim];
        let arch = Arch::new();
        let mut weights = vec![0f32; positions - first];
        let mut query = vec![0f32; dim];
        for (index, target) in out.chunks_mut(dim).enumerate() {
            let head = index / group;
            for (scaled, &q) in query
                .iter_mut()
                .zip(&queries[index * dim..(index + 1) * dim])
            {
                *scaled = q * self.scale;
            }
            arch.dispatch(Scores {
                query: &query,
                keys: &keys,
                head,
                first,
                scores: &mut weights,
            });
            // Outside the vector code: `exp` is a library call, which wide registers
            // left in use would slow.
            softmax(&mut weights);
            arch.dispatch(WeightedSum {
                weights: &weights,
                values: &values,
                head,
                first,
                target,
            });
        }
        Ok((CpuStorage::F32(out), Shape::from((heads, group, dim))))
    }
}

/// The `[head, position]` rows of a `[heads, positions, dim]` tensor whose rows are
/// contiguous.
struct Rows<'a> {
    data: &'a [f32],
    start: usize,
    head_stride: usize,
    dim: usize,
}

impl<'a> Rows<'a> {
    fn new(data: &'a [f32], layout: &Layout) -> Self {
        Rows {
            data,
            start: layout.start_offset(),
            head_stride: layout.stride()[0],
            dim: layout.dims()[2],
        }
    }

    #[inline(always)]
    fn row(&self, head: usize, position: usize) -> &'a [f32] {
        let at = self.start + head * self.head_stride + position * self.dim;
        &self.data[at..at + self.dim]
    }
}

/// The dot products of one query with the keys of its head from `first` on.
struct Scores<'a> {
    query: &'a [f32],
    keys: &'a Rows<'a>,
    head: usize,
    first: usize,
    scores: &'a mut [f32],
}

impl pulp::WithSimd for Scores<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (query_lanes, query_tail) = S::as_simd_f32s(self.query);
        for (offset, score) in self.scores.iter_mut().enumerate() {
            let key = self.keys.row(self.head, self.first + offset);
            let (key_lanes, key_tail) = S::as_simd_f32s(key);
            let mut sum = simd.splat_f32s(0.0);
            for (&q, &k) in query_lanes.iter().zip(key_lanes) {
                sum = simd.mul_add_e_f32s(q, k, sum);
            }
            let mut tail = 0f32;
            for (q, k) in query_tail.iter().zip(key_tail) {
                tail += q * k;
            }
            *score = simd.reduce_sum_f32s(sum) + tail;
        }
    }
}

/// `target` = the values of a head from `first` on, summed with these weights.
struct WeightedSum<'a> {
    weights: &'a [f32],
    values: &'a Rows<'a>,
    head: usize,
    first: usize,
    target: &'a mut [f32],
}

impl pulp::WithSimd for WeightedSum<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (target_lanes, target_tail) = S::as_mut_simd_f32s(self.target);
        for (offset, &weight) in self.weights.iter().enumerate() {
            let row = self.values.row(self.head, self.first + offset);
            let (row_lanes, row_tail) = S::as_simd_f32s(row);
            let splat = simd.splat_f32s(weight);
            for (t, &r) in target_lanes.iter_mut().zip(row_lanes) {
                *t = simd.mul_add_e_f32s(splat, r, *t);
            }
            for (t, &r) in target_tail.iter_mut().zip(row_tail) {
                *t += weight * r;
            }
        }
    }
}

/// In place, as candle's `softmax_last_dim` computes it: exponentials of the
/// differences to the largest, divided by their sum.
#[inline(always)]
fn softmax(scores: &mut [f32]) {
    let largest = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for score in scores.iter_mut() {
        *score = (*score - largest).exp();
        sum += *score;
    }
    for score in scores.iter_mut() {
        *score /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The attention as two matrix products and a masked softmax, the way the model
    /// computes it for several tokens.
    fn by_matrix_products(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: f64,
        window: Option<usize>,
    ) -> Tensor {
        let positions = k.dims()[1];
        let mask: Vec<f32> = (0..positions)
            .map(|j| {
                let outside = window.is_some_and(|w| positions - 1 - j >= w);
                if outside { f32::NEG_INFINITY } else { 0.0 }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (1, positions), &Device::Cpu).unwrap();
        let scores = (q * scale).unwrap().matmul(&k.t().unwrap()).unwrap();
        let weights =
            candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap()).unwrap();
        weights.matmul(v).unwrap()
    }

    fn random(shape: (usize, usize, usize), seed: u64) -> Tensor {
        let mut state = seed;
        let count = shape.0 * shape.1 * shape.2;
        let values: Vec<f32> = (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn matches_the_matrix_products_over_a_narrowed_state() {
        // Storage with room to grow, of which the first 37 positions are filled, and a
        // head size with a tail past the widest vector.
        for (dim, window) in [(64, None), (72, None), (64, Some(16)), (20, Some(100))] {
            let storage_k = random((3, 48, dim), 1);
            let storage_v = random((3, 48, dim), 2);
            let k = storage_k.narrow(1, 0, 37).unwrap();
            let v = storage_v.narrow(1, 0, 37).unwrap();
            let q = random((3, 2, dim), 3);
            let scale = 1.0 / (dim as f64).sqrt();
            let op = OneTokenAttention {
                scale: scale as f32,
                window,
            };
            assert!(OneTokenAttention::reads(&k, &v));
            let ours = q.apply_op3_no_bwd(&k, &v, &op).unwrap();
            let theirs = by_matrix_products(&q, &k, &v, scale, window);
            assert_eq!(ours.dims(), theirs.dims());
            let gap = largest_difference(&ours, &theirs);
            assert!(gap < 1e-5, "head size {dim}, window {window:?}: gap {gap}");
        }
    }

    #[test]
    fn a_window_ignores_the_positions_before_it() {
        let k = random((1, 10, 32), 4);
        let v = random((1, 10, 32), 5);
        let q = random((1, 1, 32), 6);
        let op = OneTokenAttention {
            scale: 0.2,
            window: Some(3),
        };
        let whole = q.apply_op3_no_bwd(&k, &v, &op).unwrap();
        let recent = q
            .apply_op3_no_bwd(
                &k.narrow(1, 7, 3).unwrap(),
                &v.narrow(1, 7, 3).unwrap(),
                &OneTokenAttention { window: None, ..op },
            )
            .unwrap();
        assert_eq!(
            whole.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            recent.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn transposed_state_is_not_read() {
        let k = random((2, 8, 16), 7);
        let transposed = k.transpose(1, 2).unwrap();
        assert!(!OneTokenAttention::reads(&transposed, &k));
        let q = random((2, 1, 8), 8);
        let op = OneTokenAttention {
            scale: 1.0,
            window: None,
        };
        let refused = q.apply_op3_no_bwd(&transposed, &transposed, &op);
        assert!(refused.is_err(), "strided rows are refused, not misread");
    }
}
