//! Warping pixel coordinates from one image of a pair to the other: by depth + intrinsics +
//! relative pose (exactly Efficient LoFTR's `warp_kpts`) or by a homography.
//!
//! All coordinates are **original-image pixels** (the frame of K, depth maps and H), with the
//! origin at the centre of the top-left pixel. Geometry is computed in f64 whatever the input
//! dtype, so rounding to cells does not depend on the device's float precision.

use tch::{Kind, Tensor};

use crate::train::{check_shape, TrainError};

/// Warped points and which of them are valid correspondences.
#[derive(Debug)]
pub struct Warped {
    /// `[N, L, 2]` f64 `(x, y)` in the other image's original pixels (may be non-finite where
    /// not valid).
    pub points: Tensor,
    /// `[N, L]` bool: a trustworthy correspondence (see the warp functions for the rule).
    pub valid: Tensor,
}

/// Depth maps, intrinsics and relative pose of a batch of pairs (original resolution).
#[derive(Debug)]
pub struct DepthWarp {
    /// `[N, H0, W0]` depth of image 0 (0 = unknown); may be zero-padded bottom-right.
    pub depth0: Tensor,
    /// `[N, H1, W1]` depth of image 1.
    pub depth1: Tensor,
    /// `[N, 3, 3]` intrinsics of image 0.
    pub k0: Tensor,
    /// `[N, 3, 3]` intrinsics of image 1.
    pub k1: Tensor,
    /// `[N, 4, 4]` (or `[N, 3, 4]`) pose taking camera-0 coordinates to camera-1 coordinates.
    pub t_0to1: Tensor,
}

/// Homographies of a batch of pairs and the image sizes that bound valid warps.
#[derive(Debug)]
pub struct HomographyWarp {
    /// `[N, 3, 3]` homography: image-0 original pixels → image-1 original pixels.
    pub h_0to1: Tensor,
    /// `[N, 2]` `(width, height)` of image 0 in original pixels.
    pub size0: Tensor,
    /// `[N, 2]` `(width, height)` of image 1 in original pixels.
    pub size1: Tensor,
}

/// Where ground-truth correspondences come from for a batch.
#[derive(Debug)]
pub enum WarpSource {
    /// Depth + intrinsics + relative pose (MegaDepth, ScanNet).
    Depth(DepthWarp),
    /// A known homography (HPatches, synthetic pairs).
    Homography(HomographyWarp),
}

impl WarpSource {
    /// Batch size, after checking every tensor's shape.
    pub fn batch_size(&self) -> Result<i64, TrainError> {
        match self {
            WarpSource::Depth(d) => {
                let n = d.depth0.size().first().copied().unwrap_or(0);
                check_shape("depth0", &d.depth0, &[n, -1, -1])?;
                check_shape("depth1", &d.depth1, &[n, -1, -1])?;
                check_shape("K0", &d.k0, &[n, 3, 3])?;
                check_shape("K1", &d.k1, &[n, 3, 3])?;
                let rows = d.t_0to1.size().get(1).copied().unwrap_or(0);
                if rows != 3 && rows != 4 {
                    return Err(TrainError::input(
                        "T_0to1",
                        format!(
                            "has shape {:?}, expected [N, 4, 4] or [N, 3, 4]",
                            d.t_0to1.size()
                        ),
                    ));
                }
                check_shape("T_0to1", &d.t_0to1, &[n, rows, 4])?;
                Ok(n)
            }
            WarpSource::Homography(h) => {
                let n = h.h_0to1.size().first().copied().unwrap_or(0);
                check_shape("H_0to1", &h.h_0to1, &[n, 3, 3])?;
                check_shape("size0", &h.size0, &[n, 2])?;
                check_shape("size1", &h.size1, &[n, 2])?;
                Ok(n)
            }
        }
    }

    /// Warp image-0 points `[N, L, 2]` into image 1.
    pub fn warp_0to1(&self, points0: &Tensor) -> Result<Warped, TrainError> {
        let n = self.batch_size()?;
        check_shape("points0", points0, &[n, -1, 2])?;
        Ok(match self {
            WarpSource::Depth(d) => {
                warp_depth(points0, &d.depth0, &d.depth1, &d.t_0to1, &d.k0, &d.k1)
            }
            WarpSource::Homography(h) => warp_homography(points0, &h.h_0to1, &h.size1),
        })
    }

    /// Warp image-1 points `[N, L, 2]` into image 0 (inverse pose / inverse homography).
    pub fn warp_1to0(&self, points1: &Tensor) -> Result<Warped, TrainError> {
        let n = self.batch_size()?;
        check_shape("points1", points1, &[n, -1, 2])?;
        Ok(match self {
            WarpSource::Depth(d) => {
                let t = as_4x4(&d.t_0to1).to_kind(Kind::Double).inverse();
                warp_depth(points1, &d.depth1, &d.depth0, &t, &d.k1, &d.k0)
            }
            WarpSource::Homography(h) => {
                let inv = h.h_0to1.to_kind(Kind::Double).inverse();
                warp_homography(points1, &inv, &h.size0)
            }
        })
    }

    /// The same warp restricted to pair `b` of the batch (for per-pair fine supervision).
    pub fn select(&self, b: i64) -> WarpSource {
        let s = |t: &Tensor| t.narrow(0, b, 1);
        match self {
            WarpSource::Depth(d) => WarpSource::Depth(DepthWarp {
                depth0: s(&d.depth0),
                depth1: s(&d.depth1),
                k0: s(&d.k0),
                k1: s(&d.k1),
                t_0to1: s(&d.t_0to1),
            }),
            WarpSource::Homography(h) => WarpSource::Homography(HomographyWarp {
                h_0to1: s(&h.h_0to1),
                size0: s(&h.size0),
                size1: s(&h.size1),
            }),
        }
    }
}

fn as_4x4(t: &Tensor) -> Tensor {
    if t.size()[1] == 4 {
        return t.shallow_clone();
    }
    let n = t.size()[0];
    let bottom = Tensor::from_slice(&[0.0f64, 0.0, 0.0, 1.0])
        .to_device(t.device())
        .view([1, 1, 4])
        .expand([n, 1, 4], false);
    Tensor::cat(&[t.to_kind(Kind::Double), bottom], 1)
}

/// Look up `map[b, y, x]` for integer pixel coordinates `[N, L]`; positions outside the map
/// read 0 (the value of Efficient LoFTR's zero padding).
fn lookup(map: &Tensor, x: &Tensor, y: &Tensor) -> Tensor {
    let (n, h, w) = (map.size()[0], map.size()[1], map.size()[2]);
    let inside = x
        .ge(0)
        .logical_and(&x.lt(w))
        .logical_and(&y.ge(0))
        .logical_and(&y.lt(h));
    let flat = y.clamp(0, h - 1) * w + x.clamp(0, w - 1);
    let values = map
        .to_kind(Kind::Double)
        .view([n, h * w])
        .gather(1, &flat, false);
    values * inside.to_kind(Kind::Double)
}

/// Efficient LoFTR's `warp_kpts`: unproject `points0` with `depth0` sampled at the **rounded**
/// pixel and `K0⁻¹`, move by `T_0to1`, project with `K1` dividing by `z + 1e-4`.
/// Valid where the sampled depth ≠ 0, the point lands strictly inside
/// `(0, w−1) × (0, h−1)` of `depth1`'s shape, and `|d1 − z| / d1 < 0.2` with `d1` sampled at
/// the **truncated** warped pixel.
///
/// Shapes: points `[N, L, 2]`, depths `[N, H, W]`, `t_0to1` `[N, 3|4, 4]`, K `[N, 3, 3]`;
/// the caller checks them ([`WarpSource`] does).
pub fn warp_depth(
    points0: &Tensor,
    depth0: &Tensor,
    depth1: &Tensor,
    t_0to1: &Tensor,
    k0: &Tensor,
    k1: &Tensor,
) -> Warped {
    let p = points0.to_kind(Kind::Double);
    let rounded = p.round().to_kind(Kind::Int64);
    let d0 = lookup(depth0, &rounded.select(2, 0), &rounded.select(2, 1));
    let nonzero = d0.ne(0.0);

    let ones = p.narrow(2, 0, 1).ones_like();
    let homogeneous = Tensor::cat(&[&p, &ones], 2) * d0.unsqueeze(-1); // [N, L, 3]
    let cam0 = k0
        .to_kind(Kind::Double)
        .inverse()
        .matmul(&homogeneous.transpose(1, 2)); // [N, 3, L]
    let t = t_0to1.to_kind(Kind::Double);
    let rot = t.narrow(1, 0, 3).narrow(2, 0, 3);
    let trans = t.narrow(1, 0, 3).narrow(2, 3, 1);
    let cam1 = rot.matmul(&cam0) + trans; // [N, 3, L]
    let z_computed = cam1.select(1, 2); // [N, L]
    let proj = k1.to_kind(Kind::Double).matmul(&cam1).transpose(1, 2); // [N, L, 3]
    let warped = proj.narrow(2, 0, 2) / (proj.narrow(2, 2, 1) + 1e-4);

    let (h1, w1) = (depth1.size()[1] as f64, depth1.size()[2] as f64);
    let wx = warped.select(2, 0);
    let wy = warped.select(2, 1);
    let covisible = wx
        .gt(0.0)
        .logical_and(&wx.lt(w1 - 1.0))
        .logical_and(&wy.gt(0.0))
        .logical_and(&wy.lt(h1 - 1.0));
    // Truncation toward zero as `.long()`; only covisible points (where it equals floor) count.
    let zero = wx.zeros_like();
    let tx = wx.where_self(&covisible, &zero).to_kind(Kind::Int64);
    let ty = wy.where_self(&covisible, &zero).to_kind(Kind::Int64);
    let d1 = lookup(depth1, &tx, &ty);
    // d1 = 0 gives ±inf or NaN, both failing the test, as in the reference.
    let consistent = ((&d1 - &z_computed) / &d1).abs().lt(0.2);
    let valid = nonzero.logical_and(&covisible).logical_and(&consistent);
    Warped {
        points: warped,
        valid,
    }
}

/// Map `points0` `[N, L, 2]` through `h` `[N, 3, 3]`. Valid where the projective denominator
/// is positive (after flipping `h`'s sign so that `h[2,2] ≥ 0`) and the point lands strictly
/// inside `(0, w−1) × (0, h−1)` of `size1` `[N, 2]` `(w, h)`. Points with a non-positive
/// denominator come back as NaN.
pub fn warp_homography(points0: &Tensor, h: &Tensor, size1: &Tensor) -> Warped {
    let p = points0.to_kind(Kind::Double);
    let h = h.to_kind(Kind::Double);
    let sign = h.select(1, 2).select(1, 2).sign().where_self(
        &h.select(1, 2).select(1, 2).ne(0.0),
        &h.select(1, 2).select(1, 2).ones_like(),
    );
    let h = h * sign.view([-1, 1, 1]);
    let ones = p.narrow(2, 0, 1).ones_like();
    let mapped = Tensor::cat(&[&p, &ones], 2).matmul(&h.transpose(1, 2)); // [N, L, 3]
    let denom = mapped.select(2, 2);
    let in_front = denom.gt(1e-12);
    let nan = denom.full_like(f64::NAN);
    let safe = denom.where_self(&in_front, &nan).unsqueeze(-1);
    let warped = mapped.narrow(2, 0, 2) / safe;
    let size = size1.to_kind(Kind::Double);
    let w = size.select(1, 0).unsqueeze(1);
    let hh = size.select(1, 1).unsqueeze(1);
    let wx = warped.select(2, 0);
    let wy = warped.select(2, 1);
    let inside = wx
        .gt(0.0)
        .logical_and(&wx.lt_tensor(&(&w - 1.0)))
        .logical_and(&wy.gt(0.0))
        .logical_and(&wy.lt_tensor(&(&hh - 1.0)));
    Warped {
        points: warped,
        valid: in_front.logical_and(&inside),
    }
}
