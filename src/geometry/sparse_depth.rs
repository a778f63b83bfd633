//! [`SparseDepth`]: metric points known at some pixels of a keyframe (triangulated from the
//! keyframe's stereo pair), found again from the pixels of later matches.
//!
//! A later match of the keyframe seldom lands on exactly the pixel a stereo match used, so the
//! lookup takes the nearest stored pixel within a radius and applies its depth along the new
//! pixel's own ray: the same nearest-sample rule as [`super::depth::lift_pixel`], and for the
//! same reason (a depth the rig measured, never a blend of two surfaces). Stored points within
//! the radius whose depths disagree by more than the edge threshold mark a depth edge: the pixel
//! is rejected.

use std::collections::HashMap;

use nalgebra::{Matrix2, Matrix3, Vector3};

use super::camera::CameraModel;
use super::depth::{point_on_ray, DepthLookup, DepthOptions, DepthRejection};
use super::points::PixelPoint;
use super::structure::CameraPoint;
use super::GeometryError;

/// Fewest stored points a plane is fitted to: three unknowns and some redundancy.
pub const MIN_PLANE_POINTS: usize = 5;

/// A plane through a keyframe's stored points near a pixel, in inverse depth:
/// ρ(p) ≈ `inverse_depth` + `gradient`·(p − pixel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseDepthPlane {
    /// At the pixel, 1/m.
    pub inverse_depth: f64,
    /// Change per pixel along x and y, 1/m per pixel.
    pub gradient: [f64; 2],
    /// The points' root-mean-square distance from the plane, 1/m.
    pub rms: f64,
}

impl InverseDepthPlane {
    fn is_finite(&self) -> bool {
        self.inverse_depth.is_finite()
            && self.gradient.iter().all(|g| g.is_finite())
            && self.rms.is_finite()
    }
}

/// Keyframe pixels with their metric points, indexed on a grid of `radius`-sized cells.
#[derive(Debug, Clone)]
pub struct SparseDepth {
    radius_px: f64,
    pixels: Vec<PixelPoint>,
    depths: Vec<f64>,
    /// For each stored point, its index in the arrays given to [`SparseDepth::new`].
    source: Vec<usize>,
    cells: HashMap<(i64, i64), Vec<u32>>,
}

impl SparseDepth {
    /// Index `points` (keyframe camera frame, metres) observed at `pixels`; a lookup accepts the
    /// nearest within `radius_px`. Points that are not finite or not in front of the camera are
    /// left out.
    pub fn new(
        pixels: &[PixelPoint],
        points: &[CameraPoint],
        radius_px: f64,
    ) -> Result<SparseDepth, GeometryError> {
        if pixels.len() != points.len() {
            return Err(GeometryError::InvalidInput {
                what: "sparse depth".into(),
                reason: format!("{} pixels for {} points", pixels.len(), points.len()),
            });
        }
        if !(radius_px.is_finite() && radius_px > 0.0) {
            return Err(GeometryError::InvalidOption {
                field: "stereo.lookup_radius_px".into(),
                reason: format!("{radius_px} is not a finite number > 0"),
            });
        }
        let mut out = SparseDepth {
            radius_px,
            pixels: Vec::new(),
            depths: Vec::new(),
            source: Vec::new(),
            cells: HashMap::new(),
        };
        for (k, (p, x)) in pixels.iter().zip(points).enumerate() {
            if !(p.is_finite() && x.is_finite() && x.z > 0.0) {
                continue;
            }
            let i = out.pixels.len() as u32;
            out.cells.entry(out.cell(p)).or_default().push(i);
            out.pixels.push(*p);
            out.depths.push(x.z);
            out.source.push(k);
        }
        Ok(out)
    }

    /// Stored points.
    pub fn len(&self) -> usize {
        self.pixels.len()
    }

    /// True when no point is stored.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    fn cell(&self, p: &PixelPoint) -> (i64, i64) {
        (
            (p.x / self.radius_px).floor() as i64,
            (p.y / self.radius_px).floor() as i64,
        )
    }

    /// The stored point whose pixel is nearest `pixel` within the radius, as its index in the
    /// arrays given to [`SparseDepth::new`], with its depth; rejected when there is none, its
    /// depth is out of range, or the points within the radius disagree (a depth edge).
    pub fn nearest(
        &self,
        pixel: &PixelPoint,
        opts: &DepthOptions,
    ) -> Result<(usize, f64), DepthRejection> {
        if !pixel.is_finite() {
            return Err(DepthRejection::OutsideImage);
        }
        let near = self.neighbours(pixel);
        let Some(&(_, z, i)) = near.first() else {
            return Err(DepthRejection::Missing);
        };
        if z < opts.min_m || z > opts.max_m {
            return Err(DepthRejection::OutOfRange);
        }
        if near
            .iter()
            .any(|(_, d, _)| (d - z).abs() > opts.max_relative_jump * z)
        {
            return Err(DepthRejection::Edge);
        }
        Ok((self.source[i], z))
    }

    /// The span of inverse depths (1/m, smallest first) of the stored points within `radius_px`
    /// of `pixel` whose depths lie in `opts`' range: where a guided stereo search
    /// ([`super::stereo_guided`]) looks for the pixel's own depth. [`DepthRejection::Missing`]
    /// when there is none.
    pub fn inverse_depth_span(
        &self,
        pixel: &PixelPoint,
        radius_px: f64,
        opts: &DepthOptions,
    ) -> Result<(f64, f64), DepthRejection> {
        if !pixel.is_finite() {
            return Err(DepthRejection::OutsideImage);
        }
        self.within(pixel, radius_px, opts)
            .map(|(_, z)| 1.0 / z)
            .fold(None, |span, rho| {
                Some(match span {
                    None => (rho, rho),
                    Some((lo, hi)) => (f64::min(lo, rho), f64::max(hi, rho)),
                })
            })
            .ok_or(DepthRejection::Missing)
    }

    /// The plane in inverse depth through the stored points within `radius_px` of `pixel`
    /// (depths in `opts`' range), least squares: a plane in space has an inverse depth affine
    /// in the pixel (exactly, for a pinhole camera), so its gradient says how the surface
    /// slants across the image. `None` with fewer than [`MIN_PLANE_POINTS`] points or points
    /// that do not span both image directions.
    pub fn inverse_depth_plane(
        &self,
        pixel: &PixelPoint,
        radius_px: f64,
        opts: &DepthOptions,
    ) -> Option<InverseDepthPlane> {
        if !pixel.is_finite() {
            return None;
        }
        let near: Vec<(f64, f64, f64)> = self
            .within(pixel, radius_px, opts)
            .map(|(q, z)| (q.x - pixel.x, q.y - pixel.y, 1.0 / z))
            .collect();
        let plane = fit_plane(&near, radius_px)?;
        // One robust pass: a wrong match or a second surface among the neighbours pulls a least
        // squares plane; points beyond 2.5 robust σ (MAD) of the first fit are left out.
        let residual = |&(dx, dy, rho): &(f64, f64, f64)| {
            (rho - plane.inverse_depth - plane.gradient[0] * dx - plane.gradient[1] * dy).abs()
        };
        let mut residuals: Vec<f64> = near.iter().map(residual).collect();
        residuals.sort_by(f64::total_cmp);
        let cut = 2.5 * 1.4826 * residuals[residuals.len() / 2];
        let kept: Vec<(f64, f64, f64)> = near
            .iter()
            .copied()
            .filter(|p| residual(p) <= cut)
            .collect();
        if kept.len() == near.len() || kept.len() < MIN_PLANE_POINTS {
            return Some(plane);
        }
        fit_plane(&kept, radius_px)
    }

    /// (pixel, depth) of the stored points within `radius_px` of `pixel` whose depths lie in
    /// `opts`' range.
    fn within<'a>(
        &'a self,
        pixel: &'a PixelPoint,
        radius_px: f64,
        opts: &'a DepthOptions,
    ) -> impl Iterator<Item = (&'a PixelPoint, f64)> + 'a {
        let (cx, cy) = self.cell(pixel);
        let reach = (radius_px / self.radius_px).ceil() as i64;
        let r2 = radius_px * radius_px;
        (-reach..=reach)
            .flat_map(move |dy| (-reach..=reach).map(move |dx| (cx + dx, cy + dy)))
            .filter_map(|cell| self.cells.get(&cell))
            .flatten()
            .map(|&i| (&self.pixels[i as usize], self.depths[i as usize]))
            .filter(move |(q, z)| {
                (q.x - pixel.x).powi(2) + (q.y - pixel.y).powi(2) <= r2
                    && *z >= opts.min_m
                    && *z <= opts.max_m
            })
    }

    /// (squared pixel distance, depth, stored index) of the points within the radius of
    /// `pixel`, nearest first.
    fn neighbours(&self, pixel: &PixelPoint) -> Vec<(f64, f64, usize)> {
        let (cx, cy) = self.cell(pixel);
        let r2 = self.radius_px * self.radius_px;
        let mut found = Vec::new();
        for dy in -1..=1 {
            for dx in -1..=1 {
                let Some(ids) = self.cells.get(&(cx + dx, cy + dy)) else {
                    continue;
                };
                for &i in ids {
                    let q = &self.pixels[i as usize];
                    let d2 = (q.x - pixel.x).powi(2) + (q.y - pixel.y).powi(2);
                    if d2 <= r2 {
                        found.push((d2, self.depths[i as usize], i as usize));
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.total_cmp(&b.0));
        found
    }
}

/// Least-squares plane ρ = a + gx·dx + gy·dy through `near` (offsets from the pixel, inverse
/// depth); `None` with fewer than [`MIN_PLANE_POINTS`] or points that do not span both image
/// directions within `radius_px`.
fn fit_plane(near: &[(f64, f64, f64)], radius_px: f64) -> Option<InverseDepthPlane> {
    if near.len() < MIN_PLANE_POINTS {
        return None;
    }
    // Normal equations of ρ = a + gx·dx + gy·dy.
    let mut normal = Matrix3::zeros();
    let mut rhs = Vector3::zeros();
    for &(dx, dy, rho) in near {
        let row = Vector3::new(1.0, dx, dy);
        normal += row * row.transpose();
        rhs += row * rho;
    }
    // The offsets' covariance must be well spread (not a line of points): its smaller
    // eigenvalue at least (radius/5)², a disc's being radius²/4.
    let n = near.len() as f64;
    let (mx, my) = (normal[(0, 1)] / n, normal[(0, 2)] / n);
    let spread = Matrix2::new(
        normal[(1, 1)] / n - mx * mx,
        normal[(1, 2)] / n - mx * my,
        normal[(1, 2)] / n - mx * my,
        normal[(2, 2)] / n - my * my,
    );
    if spread.symmetric_eigenvalues().min() < (radius_px / 5.0).powi(2) {
        return None;
    }
    let fit = normal.cholesky()?.solve(&rhs);
    let squares: f64 = near
        .iter()
        .map(|&(dx, dy, rho)| (rho - fit[0] - fit[1] * dx - fit[2] * dy).powi(2))
        .sum();
    let plane = InverseDepthPlane {
        inverse_depth: fit[0],
        gradient: [fit[1], fit[2]],
        rms: (squares / (n - 3.0)).sqrt(),
    };
    plane.is_finite().then_some(plane)
}

impl DepthLookup for SparseDepth {
    fn lift(
        &self,
        camera: &CameraModel,
        pixel: &PixelPoint,
        opts: &DepthOptions,
    ) -> Result<CameraPoint, DepthRejection> {
        let (_, z) = self.nearest(pixel, opts)?;
        point_on_ray(camera, pixel, z)
    }

    fn registered_size(&self) -> Option<(usize, usize)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_point_within_the_radius_lends_its_depth_to_the_ray() {
        let camera = CameraModel::pinhole(100.0, 100.0, 50.0, 40.0, 100, 80);
        let pixels = [PixelPoint::new(10.0, 10.0), PixelPoint::new(30.0, 10.0)];
        let points = [
            CameraPoint::new(-0.8, -0.6, 2.0),
            CameraPoint::new(-0.4, -0.6, 2.0),
        ];
        let sparse = SparseDepth::new(&pixels, &points, 2.0).unwrap();
        let opts = DepthOptions::default();
        // 1.5 px from the first point: its depth along the query's own ray.
        let p = sparse
            .lift(&camera, &PixelPoint::new(11.5, 10.0), &opts)
            .unwrap();
        assert!((p.z - 2.0).abs() < 1e-12);
        assert!((p.x - (11.5 - 50.0) / 100.0 * 2.0).abs() < 1e-12);
        // Beyond the radius of every point.
        let e = sparse.lift(&camera, &PixelPoint::new(20.0, 10.0), &opts);
        assert_eq!(e.unwrap_err(), DepthRejection::Missing);
        // Two points 1 px apart at 2 m and 3 m: a depth edge.
        let pixels = [PixelPoint::new(10.0, 10.0), PixelPoint::new(11.0, 10.0)];
        let points = [
            CameraPoint::new(0.0, 0.0, 2.0),
            CameraPoint::new(0.0, 0.0, 3.0),
        ];
        let sparse = SparseDepth::new(&pixels, &points, 2.0).unwrap();
        let e = sparse.lift(&camera, &PixelPoint::new(10.2, 10.0), &opts);
        assert_eq!(e.unwrap_err(), DepthRejection::Edge);
        // The inverse-depth span of the points within a wider radius.
        let (lo, hi) = sparse
            .inverse_depth_span(&PixelPoint::new(14.0, 10.0), 5.0, &opts)
            .unwrap();
        assert!((lo - 1.0 / 3.0).abs() < 1e-12 && (hi - 0.5).abs() < 1e-12);
        let e = sparse.inverse_depth_span(&PixelPoint::new(20.0, 10.0), 5.0, &opts);
        assert_eq!(e.unwrap_err(), DepthRejection::Missing);
        assert!(SparseDepth::new(&pixels, &points[..1], 2.0).is_err());
        assert!(SparseDepth::new(&pixels, &points, 0.0).is_err());
    }

    #[test]
    fn plane_through_the_neighbours_gives_the_surfaces_slant() {
        let opts = DepthOptions::default();
        // A floor: inverse depth 0.3 + 0.002·(y − 50) 1/m (exact for a plane in space).
        let rho = |x: f64, y: f64| 0.3 + 0.0005 * (x - 60.0) + 0.002 * (y - 50.0);
        let pixels: Vec<PixelPoint> = (0..40)
            .map(|k| PixelPoint::new(45.0 + (k * 7 % 31) as f64, 35.0 + (k * 11 % 29) as f64))
            .collect();
        let points: Vec<CameraPoint> = pixels
            .iter()
            .map(|p| CameraPoint::new(0.0, 0.0, 1.0 / rho(p.x, p.y)))
            .collect();
        let index = SparseDepth::new(&pixels, &points, 2.0).unwrap();
        let at = PixelPoint::new(60.0, 50.0);
        let plane = index.inverse_depth_plane(&at, 16.0, &opts).unwrap();
        assert!((plane.inverse_depth - 0.3).abs() < 1e-12, "{plane:?}");
        assert!((plane.gradient[0] - 0.0005).abs() < 1e-12, "{plane:?}");
        assert!((plane.gradient[1] - 0.002).abs() < 1e-12, "{plane:?}");
        assert!(plane.rms < 1e-12);
        // Too few points within the radius, a line of points, a non-finite pixel: no plane.
        assert!(index.inverse_depth_plane(&at, 3.0, &opts).is_none());
        let line: Vec<PixelPoint> = (0..10)
            .map(|k| PixelPoint::new(50.0 + k as f64, 50.0))
            .collect();
        let line_points = vec![CameraPoint::new(0.0, 0.0, 2.0); 10];
        let line = SparseDepth::new(&line, &line_points, 2.0).unwrap();
        assert!(line
            .inverse_depth_plane(&PixelPoint::new(55.0, 50.0), 16.0, &opts)
            .is_none());
        assert!(index
            .inverse_depth_plane(&PixelPoint::new(f64::NAN, 50.0), 16.0, &opts)
            .is_none());
        // Two surfaces (a depth edge through the neighbours): the scatter says so.
        let edge: Vec<CameraPoint> = pixels
            .iter()
            .map(|p| CameraPoint::new(0.0, 0.0, if p.x < 60.0 { 2.0 } else { 4.0 }))
            .collect();
        let edge = SparseDepth::new(&pixels, &edge, 2.0).unwrap();
        let split = edge.inverse_depth_plane(&at, 16.0, &opts).unwrap();
        assert!(split.rms > 0.05, "{split:?}");
        // Span and plane read the same neighbours.
        let (lo, hi) = index.inverse_depth_span(&at, 16.0, &opts).unwrap();
        assert!(lo < plane.inverse_depth && plane.inverse_depth < hi);
    }
}
