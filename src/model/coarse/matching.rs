//! Coarse matching exactly as Efficient LoFTR (`coarse_matching.py`):
//!
//! 1. each feature is divided by √C, `S = <f0, f1> / τ` (so `S = <f0, f1> / (C·τ)`, τ = 0.1);
//! 2. pairs involving a padded cell are set to −1e9; `P = softmax_rows(S) · softmax_cols(S)`;
//! 3. keep `P > θ`, drop cells within `border` cells of each image's *valid* region edge;
//! 4. keep mutual nearest neighbours (`P` is the maximum of its row and of its column);
//! 5. one match per row: `(b, i, j)` with confidence `P[b, i, j]`.
//!
//! [`confidence_matrix`] is differentiable (training takes `P` from it); [`extract_matches`]
//! is not. Zero matches is a normal result: all tensors then have length 0.

use tch::{Kind, Tensor};

use super::transformer::MATCH_KIND;
use super::{CoarseGrid, ValidRegion};

/// Fill value of the similarity of pairs that involve a padded cell (EL's `-INF`).
const PADDING_FILL: f64 = -1e9;

/// Thresholds of coarse match extraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoarseMatchParams {
    /// Keep `P > threshold` (paper 0.2; Efficient LoFTR's scripts use 0.1).
    pub threshold: f64,
    /// Cells removed at each valid-region edge (Efficient LoFTR: 2).
    pub border: i64,
}

impl Default for CoarseMatchParams {
    fn default() -> Self {
        CoarseMatchParams {
            threshold: 0.2,
            border: 2,
        }
    }
}

/// Coarse matches: cell `i_ids[k]` of image 0 ↔ cell `j_ids[k]` of image 1 in batch item
/// `b_ids[k]`. All tensors are int64 / float32 of length M (M may be 0).
#[derive(Debug)]
pub struct CoarseMatches {
    /// Batch item of each match.
    pub b_ids: Tensor,
    /// Flat cell index in image 0's grid.
    pub i_ids: Tensor,
    /// Flat cell index in image 1's grid.
    pub j_ids: Tensor,
    /// `P[b, i, j]`.
    pub confidence: Tensor,
}

impl CoarseMatches {
    /// Number of matches.
    pub fn len(&self) -> i64 {
        self.b_ids.size()[0]
    }
    /// True when no match was found.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `f0 [B, L, C]`, `f1 [B, S, C]`, optional padding masks `[B, L]`, `[B, S]` (true = valid)
/// → the dual-softmax confidence matrix `P [B, L, S]` (float32).
pub fn confidence_matrix(
    f0: &Tensor,
    f1: &Tensor,
    mask0: Option<&Tensor>,
    mask1: Option<&Tensor>,
    temperature: f64,
) -> Tensor {
    let c = f0.size()[2] as f64;
    let f0 = f0.to_kind(MATCH_KIND) / c.sqrt();
    let f1 = f1.to_kind(MATCH_KIND) / c.sqrt();
    let mut sim = f0.matmul(&f1.transpose(1, 2)) / temperature;
    if let (Some(m0), Some(m1)) = (mask0, mask1) {
        let valid = m0.unsqueeze(2).logical_and(&m1.unsqueeze(1));
        sim = sim.masked_fill(&valid.logical_not(), PADDING_FILL);
    }
    sim.softmax(1, MATCH_KIND) * sim.softmax(2, MATCH_KIND)
}

/// Steps 3–5 on `P [B, L, S]`: threshold, border (measured from each item's valid region),
/// mutual nearest neighbour, one match per row. Runs without gradients.
pub fn extract_matches(
    conf: &Tensor,
    grid0: CoarseGrid,
    grid1: CoarseGrid,
    valid0: &[ValidRegion],
    valid1: &[ValidRegion],
    params: CoarseMatchParams,
) -> CoarseMatches {
    let _guard = tch::no_grad_guard();
    let device = conf.device();
    let keep0 = grid0
        .region_mask(valid0, params.border, device)
        .unsqueeze(2);
    let keep1 = grid1
        .region_mask(valid1, params.border, device)
        .unsqueeze(1);
    let row_max = conf.amax(2, true);
    let col_max = conf.amax(1, true);
    let mask = conf
        .gt(params.threshold)
        .logical_and(&keep0)
        .logical_and(&keep1)
        .logical_and(&conf.eq_tensor(&row_max))
        .logical_and(&conf.eq_tensor(&col_max));
    // At most one true per row except for exact ties; like EL, take the first.
    let (row_has, all_j) = mask.to_kind(Kind::Uint8).max_dim(2, false);
    let nz = row_has.nonzero();
    let b_ids = nz.select(1, 0);
    let i_ids = nz.select(1, 1);
    let j_ids = all_j.index(&[Some(&b_ids), Some(&i_ids)]);
    let confidence = conf.index(&[Some(&b_ids), Some(&i_ids), Some(&j_ids)]);
    CoarseMatches {
        b_ids,
        i_ids,
        j_ids,
        confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn dual_softmax_matches_the_formula() {
        tch::manual_seed(3);
        let f0 = Tensor::randn([1, 3, 4], (Kind::Float, Device::Cpu));
        let f1 = Tensor::randn([1, 5, 4], (Kind::Float, Device::Cpu));
        let p = confidence_matrix(&f0, &f1, None, None, 0.1);
        let s = f0.matmul(&f1.transpose(1, 2)) / (4.0 * 0.1);
        let expected = s.softmax(1, Kind::Float) * s.softmax(2, Kind::Float);
        assert!(p.allclose(&expected, 1e-6, 1e-6, false));
        // Row sums of a dual softmax are ≤ 1 (product of two distributions).
        let max_row = p
            .sum_dim_intlist(2, false, Kind::Float)
            .max()
            .double_value(&[]);
        assert!(max_row <= 1.0 + 1e-6);
    }
}
