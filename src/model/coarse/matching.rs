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

use tch::Tensor;

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
    // EL divides each side by √C and the product by τ; folding τ into one side saves a pass.
    let f0 = f0.to_kind(MATCH_KIND) / (c.sqrt() * temperature);
    let f1 = f1.to_kind(MATCH_KIND) / c.sqrt();
    let mut sim = f0.matmul(&f1.transpose(1, 2));
    if let (Some(m0), Some(m1)) = (mask0, mask1) {
        let valid = m0.unsqueeze(2).logical_and(&m1.unsqueeze(1));
        sim = sim.masked_fill(&valid.logical_not(), PADDING_FILL);
    }
    sim.softmax(1, MATCH_KIND) * sim.softmax(2, MATCH_KIND)
}

/// Steps 3–5 on `P [B, L, S]`: threshold, border (measured from each item's valid region),
/// mutual nearest neighbour, one match per row. Runs without gradients.
///
/// Computed from the row maxima (value and column), the column maxima and O(L) gathers
/// instead of EL's chain of full `[B, L, S]` boolean masks: a row matches its maximising
/// column `j*` when `P[i, j*] > θ`, `P[i, j*]` is also its column's maximum, and both cells
/// are inside the border. This selects exactly EL's matches except when a row's maximum is
/// attained by two columns with bit-identical probabilities (EL then takes the first one
/// that passes the border test, this the first one).
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
    let keep0 = grid0.region_mask(valid0, params.border, device); // [B, L]
    let keep1 = grid1.region_mask(valid1, params.border, device); // [B, S]
    let (row_max, j_star) = conf.max_dim(2, false); // [B, L]
    let col_max = conf.amax(1, false); // [B, S]
    let mutual = row_max.eq_tensor(&col_max.gather(1, &j_star, false));
    let ok = mutual
        .logical_and(&row_max.gt(params.threshold))
        .logical_and(&keep0)
        .logical_and(&keep1.gather(1, &j_star, false));
    let nz = ok.nonzero();
    let b_ids = nz.select(1, 0);
    let i_ids = nz.select(1, 1);
    let j_ids = j_star.index(&[Some(&b_ids), Some(&i_ids)]);
    let confidence = row_max.index(&[Some(&b_ids), Some(&i_ids)]);
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
    use tch::{Device, Kind};

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

    /// EL's formulation, written out: full boolean masks, border rows/columns cleared at the
    /// valid-region edges, mutual-max masks, first true column per row.
    fn reference(
        conf: &Tensor,
        grid0: CoarseGrid,
        grid1: CoarseGrid,
        valid0: &[ValidRegion],
        valid1: &[ValidRegion],
        params: CoarseMatchParams,
    ) -> Vec<(i64, i64, i64)> {
        let (b, l, s) = conf.size3().unwrap();
        let mut mask = conf.gt(params.threshold).view([
            b,
            grid0.height,
            grid0.width,
            grid1.height,
            grid1.width,
        ]);
        let bd = params.border;
        for k in 0..b as usize {
            let kk = k as i64;
            let (v0, v1) = (valid0[k], valid1[k]);
            let m = mask.get(kk);
            let _ = m.narrow(0, 0, bd).fill_(0);
            let _ = m.narrow(1, 0, bd).fill_(0);
            let _ = m.narrow(2, 0, bd).fill_(0);
            let _ = m.narrow(3, 0, bd).fill_(0);
            let _ = m
                .narrow(0, v0.height - bd, grid0.height - v0.height + bd)
                .fill_(0);
            let _ = m
                .narrow(1, v0.width - bd, grid0.width - v0.width + bd)
                .fill_(0);
            let _ = m
                .narrow(2, v1.height - bd, grid1.height - v1.height + bd)
                .fill_(0);
            let _ = m
                .narrow(3, v1.width - bd, grid1.width - v1.width + bd)
                .fill_(0);
        }
        mask = mask
            .view([b, l, s])
            .logical_and(&conf.eq_tensor(&conf.amax(2, true)))
            .logical_and(&conf.eq_tensor(&conf.amax(1, true)));
        let (has, j) = mask.to_kind(Kind::Uint8).max_dim(2, false);
        let mut out = vec![];
        for bb in 0..b {
            for i in 0..l {
                if has.int64_value(&[bb, i]) != 0 {
                    out.push((bb, i, j.int64_value(&[bb, i])));
                }
            }
        }
        out
    }

    #[test]
    fn extraction_equals_the_mask_formulation() {
        tch::manual_seed(4);
        let (g0, g1) = (CoarseGrid::new(7, 9), CoarseGrid::new(7, 9));
        // Correlated features so that many pairs pass the threshold.
        let base = Tensor::randn([2, 63, 32], (Kind::Float, Device::Cpu));
        let f0 = &base + Tensor::randn([2, 63, 32], (Kind::Float, Device::Cpu)) * 0.3;
        let perm = Tensor::randperm(63, (Kind::Int64, Device::Cpu));
        let f1 = base.index_select(1, &perm)
            + Tensor::randn([2, 63, 32], (Kind::Float, Device::Cpu)) * 0.3;
        let valid0 = [
            g0.full(),
            ValidRegion {
                height: 6,
                width: 7,
            },
        ];
        let valid1 = [
            ValidRegion {
                height: 5,
                width: 9,
            },
            g1.full(),
        ];
        let m0 = g0.padding_mask(&valid0, Device::Cpu);
        let m1 = g1.padding_mask(&valid1, Device::Cpu);
        let conf = confidence_matrix(&f0, &f1, Some(&m0), Some(&m1), 0.1);
        for (threshold, border) in [(0.2, 2), (0.05, 1), (0.0, 0), (0.5, 3)] {
            let params = CoarseMatchParams { threshold, border };
            let got = extract_matches(&conf, g0, g1, &valid0, &valid1, params);
            let b: Vec<i64> = Vec::try_from(&got.b_ids).unwrap();
            let i: Vec<i64> = Vec::try_from(&got.i_ids).unwrap();
            let j: Vec<i64> = Vec::try_from(&got.j_ids).unwrap();
            let got: Vec<_> = b
                .into_iter()
                .zip(i)
                .zip(j)
                .map(|((b, i), j)| (b, i, j))
                .collect();
            let want = reference(&conf, g0, g1, &valid0, &valid1, params);
            assert_eq!(got, want, "θ {threshold}, border {border}");
            if threshold <= 0.05 {
                assert!(got.len() > 10, "too few matches to compare: {}", got.len());
            }
        }
    }
}
