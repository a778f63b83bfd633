//! Fine ground truth for given coarse matches `(b, i, j)` (predicted + GT padding): the
//! stage-1 pixel index in image 1's 8×8 window for every image-0 window pixel, and the stage-2
//! sub-pixel target (Efficient LoFTR's `spvs_fine`).

use tch::{Device, Kind, Tensor};

use super::coarse::CoarseLayout;
use super::warp::WarpSource;
use super::FineGrid;
use crate::train::{check_shape, TrainError};

/// Pixel-level ground truth for `M` coarse matches.
#[derive(Debug)]
pub struct FineGt {
    /// `[K]` i64: which coarse match (row of the `[M, W², W²]` stage-1 matrix).
    pub m_ids: Tensor,
    /// `[K]` i64: image-0 window index (0..W², row-major).
    pub i_ids: Tensor,
    /// `[K]` i64: image-1 inner window index (0..W², row-major) nearest to the warped point.
    pub j_ids: Tensor,
    /// `[K]` f32: overlap weight `∏(1 − 2|δ − round(δ)|)` in [0, 1].
    pub overlap_weight: Tensor,
    /// `[K, 2]` f32 `(x, y)`: sub-pixel target `δ − round(δ)` in fine pixels, in [−0.5, 0.5].
    pub subpixel: Tensor,
    /// Number of coarse matches `M` the ground truth was computed for.
    pub num_matches: i64,
    /// Window area `W²`.
    pub window_area: i64,
}

impl FineGt {
    /// Number of pixel-level ground-truth correspondences `K`.
    pub fn len(&self) -> i64 {
        self.m_ids.size()[0]
    }

    /// No pixel-level ground truth.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dense `[M, W², W²]` bool stage-1 ground truth (for tests and plots).
    pub fn dense(&self) -> Tensor {
        let device = self.m_ids.device();
        let a = self.window_area;
        let dense = Tensor::zeros([self.num_matches, a, a], (Kind::Bool, device));
        if self.is_empty() {
            return dense;
        }
        let ones = Tensor::ones([self.len()], (Kind::Bool, device));
        dense.index_put(
            &[Some(&self.m_ids), Some(&self.i_ids), Some(&self.j_ids)],
            &ones,
            false,
        )
    }
}

/// Fine ground truth for the coarse matches `(b_ids, i_ids, j_ids)` (`[M]` i64 each):
/// 1. every image-0 window pixel of cell `i` sits at `stride·(x_i, y_i) + offset(k)`
///    ([`FineGrid::fine_point`]), times `scale0` in original pixels, and is warped to image 1
///    **with** the validity mask (depth: covisible and depth-consistent; H: inside image 1);
/// 2. `δ = (warped − stride·(x_j, y_j)·scale1) / scale1 + (W/2 − 0.5)` is its continuous
///    coordinate in image 1's window of cell `j` (cell `j`'s point is (0, 0) when `j` is a
///    padded cell, as in EL); `round(δ)` outside `0..W` makes the pixel invalid;
/// 3. valid pixels give `(m, k, round(δ_y)·W + round(δ_x))`, the target `δ − round(δ)` and
///    the weight `∏(1 − 2|δ − round(δ)|)`.
pub fn fine_gt(
    warp: &WarpSource,
    layout: &CoarseLayout,
    grid: &FineGrid,
    b_ids: &Tensor,
    i_ids: &Tensor,
    j_ids: &Tensor,
) -> Result<FineGt, TrainError> {
    let n = warp.batch_size()?;
    layout.check(n)?;
    let m = b_ids.size().first().copied().unwrap_or(0);
    for (name, t) in [("b_ids", b_ids), ("i_ids", i_ids), ("j_ids", j_ids)] {
        check_shape(name, t, &[m])?;
        if t.kind() != Kind::Int64 {
            return Err(TrainError::input(
                name,
                format!("has dtype {:?}, expected i64", t.kind()),
            ));
        }
    }
    let device = b_ids.device();
    let ww = grid.window_area();
    if m == 0 {
        return Ok(empty(device, ww));
    }
    check_id_ranges(layout, n, b_ids, i_ids, j_ids)?;

    let stride = grid.stride() as f64;
    let (_, w0) = layout.hw0;
    let (_, w1) = layout.hw1;
    let scale0 = layout.scale0.to_kind(Kind::Double).index_select(0, b_ids); // [M, 2]
    let scale1 = layout.scale1.to_kind(Kind::Double).index_select(0, b_ids);

    // 1. image-0 window pixels in original pixels, [M, WW, 2].
    let cell0 = Tensor::stack(
        &[i_ids.remainder(w0), i_ids.divide_scalar_mode(w0, "floor")],
        1,
    )
    .to_kind(Kind::Double);
    let offsets = grid.window_offsets(device).to_kind(Kind::Double); // [WW, 2]
    let pts0 = (cell0.unsqueeze(1) * stride + offsets.unsqueeze(0)) * scale0.unsqueeze(1);

    // Image 1's coarse point of cell j (zero on padded cells, as EL's masked grid).
    let cell1 = Tensor::stack(
        &[j_ids.remainder(w1), j_ids.divide_scalar_mode(w1, "floor")],
        1,
    )
    .to_kind(Kind::Double);
    let mut pt1 = cell1 * stride * &scale1; // [M, 2]
    if let Some(mask1) = &layout.mask1 {
        let keep = mask1
            .view([n, -1])
            .index(&[Some(b_ids), Some(j_ids)])
            .to_kind(Kind::Double);
        pt1 *= keep.unsqueeze(1);
    }

    let (warped, valid) = warp_pairwise(warp, &pts0, b_ids, n)?;

    // 2. continuous window coordinate in image 1 and its nearest index.
    let delta = (warped - pt1.unsqueeze(1)) / scale1.unsqueeze(1) + grid.half_extent();
    let rounded = delta.round();
    let rx = rounded.select(2, 0);
    let ry = rounded.select(2, 1);
    let wf = grid.window() as f64;
    let in_window = rx
        .ge(0.0)
        .logical_and(&rx.lt(wf))
        .logical_and(&ry.ge(0.0))
        .logical_and(&ry.lt(wf));
    let ok = valid.logical_and(&in_window);

    // 3. keep valid pixels.
    let nz = ok.nonzero();
    let m_ids = nz.select(1, 0).contiguous();
    let k_ids = nz.select(1, 1).contiguous();
    let r = rounded.index(&[Some(&m_ids), Some(&k_ids)]); // [K, 2]
    let d = delta.index(&[Some(&m_ids), Some(&k_ids)]);
    let j_fine =
        r.select(1, 0).to_kind(Kind::Int64) + r.select(1, 1).to_kind(Kind::Int64) * grid.window();
    let residual = &d - &r;
    let overlap_weight = (residual.abs() * (-2.0) + 1.0)
        .prod_dim_int(1, false, Kind::Double)
        .to_kind(Kind::Float);
    Ok(FineGt {
        m_ids,
        i_ids: k_ids,
        j_ids: j_fine,
        overlap_weight,
        subpixel: residual.to_kind(Kind::Float),
        num_matches: m,
        window_area: ww,
    })
}

/// Every id inside its range: `b < N`, `i < L0`, `j < L1` (ids are not empty).
fn check_id_ranges(
    layout: &CoarseLayout,
    n: i64,
    b_ids: &Tensor,
    i_ids: &Tensor,
    j_ids: &Tensor,
) -> Result<(), TrainError> {
    let (bmin, bmax) = (b_ids.min().int64_value(&[]), b_ids.max().int64_value(&[]));
    let (imax, jmax) = (i_ids.max().int64_value(&[]), j_ids.max().int64_value(&[]));
    let (imin, jmin) = (i_ids.min().int64_value(&[]), j_ids.min().int64_value(&[]));
    if bmin < 0
        || bmax >= n
        || imin < 0
        || imax >= layout.len0()
        || jmin < 0
        || jmax >= layout.len1()
    {
        return Err(TrainError::input(
            "coarse matches",
            format!(
                "ids out of range: b in [{bmin}, {bmax}] (N = {n}), i in [{imin}, {imax}] \
                 (L0 = {}), j in [{jmin}, {jmax}] (L1 = {})",
                layout.len0(),
                layout.len1()
            ),
        ));
    }
    Ok(())
}

/// `pts0` (`[M, WW, 2]`, match `m` of pair `b_ids[m]`) warped into image 1, pair by pair
/// (matches of one pair share its depth maps / homography): the points and their validity.
fn warp_pairwise(
    warp: &WarpSource,
    pts0: &Tensor,
    b_ids: &Tensor,
    n: i64,
) -> Result<(Tensor, Tensor), TrainError> {
    let (m, ww) = (pts0.size()[0], pts0.size()[1]);
    let device = pts0.device();
    let mut warped = Tensor::zeros([m, ww, 2], (Kind::Double, device));
    let mut valid = Tensor::zeros([m, ww], (Kind::Bool, device));
    for b in 0..n {
        let sel = b_ids.eq(b).nonzero().select(1, 0);
        let k = sel.size()[0];
        if k == 0 {
            continue;
        }
        let pts = pts0.index_select(0, &sel).view([1, k * ww, 2]);
        let w = warp.select(b).warp_0to1(&pts)?;
        warped = warped.index_put(&[Some(&sel)], &w.points.view([k, ww, 2]), false);
        valid = valid.index_put(&[Some(&sel)], &w.valid.view([k, ww]), false);
    }
    Ok((warped, valid))
}

fn empty(device: Device, ww: i64) -> FineGt {
    let ids = || Tensor::zeros([0], (Kind::Int64, device));
    FineGt {
        m_ids: ids(),
        i_ids: ids(),
        j_ids: ids(),
        overlap_weight: Tensor::zeros([0], (Kind::Float, device)),
        subpixel: Tensor::zeros([0, 2], (Kind::Float, device)),
        num_matches: 0,
        window_area: ww,
    }
}
