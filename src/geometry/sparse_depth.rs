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

use super::camera::CameraModel;
use super::depth::{point_on_ray, DepthLookup, DepthOptions, DepthRejection};
use super::points::PixelPoint;
use super::structure::CameraPoint;
use super::GeometryError;

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
        let (cx, cy) = self.cell(pixel);
        let reach = (radius_px / self.radius_px).ceil() as i64;
        let r2 = radius_px * radius_px;
        let mut span: Option<(f64, f64)> = None;
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let Some(ids) = self.cells.get(&(cx + dx, cy + dy)) else {
                    continue;
                };
                for &i in ids {
                    let (q, z) = (&self.pixels[i as usize], self.depths[i as usize]);
                    let d2 = (q.x - pixel.x).powi(2) + (q.y - pixel.y).powi(2);
                    if d2 <= r2 && z >= opts.min_m && z <= opts.max_m {
                        let rho = 1.0 / z;
                        span = Some(match span {
                            None => (rho, rho),
                            Some((lo, hi)) => (lo.min(rho), hi.max(rho)),
                        });
                    }
                }
            }
        }
        span.ok_or(DepthRejection::Missing)
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
}
