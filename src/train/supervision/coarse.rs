//! Coarse ground truth: which coarse cell of image 1 each coarse cell of image 0 matches
//! (Efficient LoFTR's `spvs_coarse`), kept sparse as `(b, i, j)` triples.

use tch::{Device, Kind, Tensor};

use super::warp::WarpSource;
use super::FineGrid;
use crate::train::{check_shape, TrainError};

/// Layout of a batch at the coarse level, and how network-input pixels map to original pixels.
#[derive(Debug)]
pub struct CoarseLayout {
    /// Coarse grid of image 0, `(h_c, w_c)` = network-input size / stride.
    pub hw0: (i64, i64),
    /// Coarse grid of image 1.
    pub hw1: (i64, i64),
    /// `[N, 2]` `(sx, sy)`: original pixels of image 0 per network-input pixel.
    pub scale0: Tensor,
    /// `[N, 2]` the same for image 1.
    pub scale1: Tensor,
    /// `[N, h0, w0]` bool, false on coarse cells of zero padding (`None`: no padding).
    pub mask0: Option<Tensor>,
    /// `[N, h1, w1]` bool for image 1.
    pub mask1: Option<Tensor>,
}

impl CoarseLayout {
    /// Check shapes against batch size `n`.
    pub fn check(&self, n: i64) -> Result<(), TrainError> {
        for (name, hw) in [("hw0", self.hw0), ("hw1", self.hw1)] {
            if hw.0 <= 0 || hw.1 <= 0 {
                return Err(TrainError::input(
                    format!("coarse layout {name}"),
                    format!("{hw:?} is empty"),
                ));
            }
        }
        check_shape("scale0", &self.scale0, &[n, 2])?;
        check_shape("scale1", &self.scale1, &[n, 2])?;
        if let Some(m) = &self.mask0 {
            check_shape("mask0", m, &[n, self.hw0.0, self.hw0.1])?;
        }
        if let Some(m) = &self.mask1 {
            check_shape("mask1", m, &[n, self.hw1.0, self.hw1.1])?;
        }
        Ok(())
    }

    /// Number of coarse cells of image 0.
    pub fn len0(&self) -> i64 {
        self.hw0.0 * self.hw0.1
    }

    /// Number of coarse cells of image 1.
    pub fn len1(&self) -> i64 {
        self.hw1.0 * self.hw1.1
    }
}

/// Sparse coarse ground truth: `conf_gt[b, i, j] = 1` for each listed triple.
#[derive(Debug)]
pub struct CoarseGt {
    /// `[M]` i64 pair index in the batch.
    pub b_ids: Tensor,
    /// `[M]` i64 coarse cell index in image 0 (`y·w0 + x`).
    pub i_ids: Tensor,
    /// `[M]` i64 coarse cell index in image 1.
    pub j_ids: Tensor,
    /// `[M]` f32 overlap weight `∏(1 − 2|w − round(w)|)` of the 0→1 warp, in [0, 1].
    pub overlap_weight: Tensor,
    /// Batch size `N`.
    pub batch: i64,
    /// Coarse cells of image 0 and image 1 (`L0`, `L1`).
    pub cells: (i64, i64),
}

impl CoarseGt {
    /// Number of ground-truth matches.
    pub fn len(&self) -> i64 {
        self.b_ids.size()[0]
    }

    /// No ground-truth match at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dense `[N, L0, L1]` f32 0/1 matrix (memory grows as L0·L1: for tests and plots).
    pub fn dense(&self) -> Tensor {
        let device = self.b_ids.device();
        let dense = Tensor::zeros(
            [self.batch, self.cells.0, self.cells.1],
            (Kind::Float, device),
        );
        if self.is_empty() {
            return dense;
        }
        let ones = Tensor::ones([self.len()], (Kind::Float, device));
        dense.index_put(
            &[Some(&self.b_ids), Some(&self.i_ids), Some(&self.j_ids)],
            &ones,
            false,
        )
    }

    /// The triples on the CPU, for inspection: `(b, i, j, overlap_weight)`.
    pub fn to_vec(&self) -> Vec<(i64, i64, i64, f32)> {
        let b = Vec::<i64>::try_from(self.b_ids.to_device(Device::Cpu)).unwrap_or_default();
        let i = Vec::<i64>::try_from(self.i_ids.to_device(Device::Cpu)).unwrap_or_default();
        let j = Vec::<i64>::try_from(self.j_ids.to_device(Device::Cpu)).unwrap_or_default();
        let w =
            Vec::<f32>::try_from(self.overlap_weight.to_device(Device::Cpu)).unwrap_or_default();
        b.into_iter()
            .zip(i)
            .zip(j)
            .zip(w)
            .map(|(((b, i), j), w)| (b, i, j, w))
            .collect()
    }
}

/// Coarse grid points of a `(h, w)` grid in original pixels: `stride·(x, y)·scale`, `[N, h·w, 2]`
/// f64; cells where `mask` is false are set to (0, 0) as Efficient LoFTR does.
pub fn coarse_grid_points(
    hw: (i64, i64),
    stride: i64,
    scale: &Tensor,
    mask: Option<&Tensor>,
) -> Tensor {
    let device = scale.device();
    let n = scale.size()[0];
    let (h, w) = hw;
    let opts = (Kind::Double, device);
    let xs = Tensor::arange(w, opts)
        .view([1, w])
        .expand([h, w], false)
        .reshape([-1]);
    let ys = Tensor::arange(h, opts)
        .view([h, 1])
        .expand([h, w], false)
        .reshape([-1]);
    let grid = Tensor::stack(&[xs, ys], 1).unsqueeze(0) * stride as f64; // [1, hw, 2]
    let points = grid * scale.to_kind(Kind::Double).view([n, 1, 2]);
    match mask {
        Some(m) => {
            let keep = m.to_kind(Kind::Double).view([n, h * w, 1]);
            points * keep
        }
        None => points,
    }
}

/// Round warped coarse coordinates `[N, L, 2]` to cell indices of a `(h, w)` grid; out-of-grid
/// (or non-finite) points get index 0, as Efficient LoFTR does.
fn nearest_cells(warped_c: &Tensor, hw: (i64, i64)) -> Tensor {
    let (h, w) = hw;
    let r = warped_c.round();
    let x = r.select(2, 0);
    let y = r.select(2, 1);
    let inside = x
        .ge(0.0)
        .logical_and(&x.lt(w as f64))
        .logical_and(&y.ge(0.0))
        .logical_and(&y.lt(h as f64));
    let zero = x.zeros_like();
    let xi = x.where_self(&inside, &zero).to_kind(Kind::Int64);
    let yi = y.where_self(&inside, &zero).to_kind(Kind::Int64);
    xi + yi * w
}

/// Coarse ground truth exactly as Efficient LoFTR's `spvs_coarse`:
/// 1. coarse grid points `stride·(x_c, y_c)·scale` (padded cells at (0, 0)) are warped 0→1
///    and 1→0, **ignoring the validity mask** (EL: it "leads to worse results");
/// 2. warped points are divided by `stride·scale` of the other image and rounded to cells;
///    out-of-grid points go to cell 0;
/// 3. `i` matches `j = idx1(i)` when the loop-back `idx0(idx1(i)) == i`; cell 0 is never a
///    match (it collects all out-of-grid points);
/// 4. the overlap weight is `∏(1 − 2|w − round(w)|)` of the 0→1 warp in coarse units.
pub fn coarse_gt(
    warp: &WarpSource,
    layout: &CoarseLayout,
    grid: &FineGrid,
) -> Result<CoarseGt, TrainError> {
    let n = warp.batch_size()?;
    layout.check(n)?;
    let stride = grid.stride() as f64;
    let pt0 = coarse_grid_points(
        layout.hw0,
        grid.stride(),
        &layout.scale0,
        layout.mask0.as_ref(),
    );
    let pt1 = coarse_grid_points(
        layout.hw1,
        grid.stride(),
        &layout.scale1,
        layout.mask1.as_ref(),
    );
    let w0 = warp.warp_0to1(&pt0)?.points;
    let w1 = warp.warp_1to0(&pt1)?.points;
    let w0_c = w0 / (layout.scale1.to_kind(Kind::Double).view([n, 1, 2]) * stride);
    let w1_c = w1 / (layout.scale0.to_kind(Kind::Double).view([n, 1, 2]) * stride);

    let overlap =
        ((&w0_c - w0_c.round()).abs() * (-2.0) + 1.0).prod_dim_int(2, false, Kind::Double);
    let nearest1 = nearest_cells(&w0_c, layout.hw1); // [N, L0] → cell in image 1
    let nearest0 = nearest_cells(&w1_c, layout.hw0); // [N, L1] → cell in image 0
    let loop_back = nearest0.gather(1, &nearest1, false);
    let l0 = layout.len0();
    let device = nearest1.device();
    let arange = Tensor::arange(l0, (Kind::Int64, device)).unsqueeze(0);
    let correct = loop_back.eq_tensor(&arange);
    // Cell 0 collects every out-of-grid point: never a match.
    let _ = correct.narrow(1, 0, 1).fill_(0);

    let nz = correct.nonzero(); // [M, 2]
    let b_ids = nz.select(1, 0).contiguous();
    let i_ids = nz.select(1, 1).contiguous();
    let j_ids = nearest1.index(&[Some(&b_ids), Some(&i_ids)]);
    let overlap_weight = overlap
        .index(&[Some(&b_ids), Some(&i_ids)])
        .to_kind(Kind::Float);
    Ok(CoarseGt {
        b_ids,
        i_ids,
        j_ids,
        overlap_weight,
        batch: n,
        cells: (l0, layout.len1()),
    })
}
