//! Guided stereo: a keyframe pixel that no left–right match landed near gets its right-image
//! pixel by a short photometric search along its epipolar line.
//!
//! A learned matcher places keyframe pixels anew in every pair, so a later match of a stereo
//! keyframe seldom falls within [`super::StereoOptions::lookup_radius_px`] of one of the
//! keyframe's own left–right matches (the demo model: about a third do). Those matches then
//! had no depth, and the pose rested on the few that did. Their neighbours still say roughly
//! how far the surface is: the search spans the inverse depths of the stored points within
//! `guided_radius_px`, widened by [`SEARCH_MARGIN_PX`] of disparity, and takes the right-image
//! position whose patch correlates best (ZNCC, sub-sample by a parabola) with the keyframe's
//! patch. It is a measurement of its own, not an interpolation: the joint stereo refinement
//! then uses the found right pixel like a matched one.

use nalgebra::Vector3;

use super::depth::{DepthOptions, DepthRejection};
use super::patch::{zncc, GreyImage};
use super::points::{NormalizedPoint, PixelPoint};
use super::sparse_depth::InverseDepthPlane;
use super::stereo::StereoRig;
use super::structure::CameraPoint;

/// Disparity added on either side of the neighbours' span, pixels: the surface between the
/// neighbours may lean or bend.
pub const SEARCH_MARGIN_PX: f64 = 2.0;
/// Step of the search along the epipolar line, pixels.
const STEP_PX: f64 = 0.25;
/// Widest search, pixels of disparity: a wider span means the neighbours lie on different
/// surfaces (a depth edge), where a patch straddles both and correlates with neither.
const MAX_SPAN_PX: f64 = 24.0;
/// Smallest grey-level standard deviation of a patch that carries evidence (0–255).
const MIN_PATCH_STD: f64 = 3.0;
/// Steepest slant a neighbours' plane may give the patches, pixels of disparity per pixel:
/// steeper than a surface facing the camera at a grazing angle means the plane spans a depth
/// edge or a wrong match, and square patches are the safer guess.
const MAX_DISPARITY_GRADIENT: f64 = 1.0;
/// Largest scatter of the neighbours about their plane, pixels of disparity (their matcher
/// disparities are ~0.4 px off; more means a second surface or a wrong match among them).
const MAX_PLANE_RMS_PX: f64 = 1.0;

/// The highest of `scores`.
fn peak(scores: &[f64]) -> f64 {
    scores.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// What the search found for one keyframe pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuidedMatch {
    /// The point on the pixel's ray, metres, left camera frame.
    pub point: CameraPoint,
    /// Where the search found the pixel in the right image.
    pub right: PixelPoint,
    /// The correlation of the two patches there.
    pub correlation: f64,
}

/// The stereo pair of a keyframe in grey levels, with its rig, ready for guided searches.
#[derive(Debug, Clone)]
pub struct GuidedStereo<'a> {
    /// Left (keyframe) image.
    pub left: &'a GreyImage,
    /// Right image.
    pub right: &'a GreyImage,
    /// The rig (left = the keyframe's camera).
    pub rig: &'a StereoRig,
    /// Patch half-size, pixels.
    pub patch_radius: u32,
    /// Smallest ZNCC accepted.
    pub min_correlation: f64,
}

impl GuidedStereo<'_> {
    /// Search `pixel`'s right-image position between inverse depths `inverse_depths` (1/m, the
    /// span of its neighbours' points). Rejected as [`DepthRejection::Edge`] when the span is
    /// wider than [`MAX_SPAN_PX`] of disparity, [`DepthRejection::NoStereoMatch`] when no
    /// position correlates at least `min_correlation`, the best lies at the end of the span (the
    /// true one may lie beyond), or the patches have no texture, and by `depth`'s range.
    /// `slant`: the neighbours' plane, which shears the right patch (see [`GuidedStereo::refine`]).
    pub fn search(
        &self,
        pixel: &PixelPoint,
        inverse_depths: (f64, f64),
        slant: Option<&InverseDepthPlane>,
        depth: &DepthOptions,
    ) -> Result<GuidedMatch, DepthRejection> {
        let found = self.search_span(pixel, inverse_depths, slant, SEARCH_MARGIN_PX)?;
        if found.point.z < depth.min_m || found.point.z > depth.max_m {
            return Err(DepthRejection::OutOfRange);
        }
        Ok(found)
    }

    /// Re-find the right-image pixel of a left–right match whose left pixel is `pixel` and
    /// triangulated point `point`, within `margin_px` of disparity of it. A matcher's
    /// correspondences are a few tenths of a pixel off (the demo model: 0.4 px median) and that
    /// error is the disparity's, so depth error Z²/(f·B)·σ_d; the patches of a rectified pair
    /// differ far less than those of two frames and pin it to ~0.13 px. `None` where the patches
    /// do not decide (no texture, correlation below the minimum, best at the window's end): the
    /// match keeps its right pixel.
    ///
    /// `slant`, the plane of the keyframe's stereo points around the pixel, shears the right
    /// patch so that each of its rows sits at that row's own disparity: a floor seen at a
    /// grazing angle changes disparity by ~0.2 px a row, and square patches then re-find its
    /// pixels to 0.42 px instead of the walls' 0.16 px (sheared by the true slant: 0.16 px;
    /// `scripts/bench/measure_stereo_patches.py`). A plane steeper than
    /// [`MAX_DISPARITY_GRADIENT`] or scattered more than [`MAX_PLANE_RMS_PX`] is not used, and
    /// the sheared patches replace the square ones only where they correlate better (a plane
    /// from a wrong match or a second surface shears the patch off the pixel's own surface).
    pub fn refine(
        &self,
        pixel: &PixelPoint,
        point: &CameraPoint,
        slant: Option<&InverseDepthPlane>,
        margin_px: f64,
    ) -> Option<GuidedMatch> {
        if !(point.z.is_finite() && point.z > 0.0) {
            return None;
        }
        let rho = 1.0 / point.z;
        self.search_span(pixel, (rho, rho), slant, margin_px).ok()
    }

    /// The search itself: between inverse depths `inverse_depths` widened by `margin_px` of
    /// disparity on either side.
    fn search_span(
        &self,
        pixel: &PixelPoint,
        inverse_depths: (f64, f64),
        slant: Option<&InverseDepthPlane>,
        margin_px: f64,
    ) -> Result<GuidedMatch, DepthRejection> {
        let n = self
            .rig
            .left
            .normalize(pixel)
            .map_err(|_| DepthRejection::Undistortion)?;
        let ray = Vector3::new(n.x, n.y, 1.0);
        let (lo, hi) = inverse_depths;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi >= lo) {
            return Err(DepthRejection::Missing);
        }
        // Pixels of disparity per unit of inverse depth, from the span's two ends (the
        // projection is close to linear in inverse depth over a few pixels).
        let at = |rho: f64| self.right_pixel(&ray, rho);
        let (Some(a), Some(b)) = (at(lo), at(hi.max(lo * 1.001))) else {
            return Err(DepthRejection::Missing);
        };
        let px_per_rho = ((b.x - a.x).hypot(b.y - a.y) / (hi.max(lo * 1.001) - lo)).max(1e-9);
        let margin = margin_px / px_per_rho;
        let (lo, hi) = ((lo - margin).max(1e-6), hi + margin);
        let span_px = (hi - lo) * px_per_rho;
        if span_px > MAX_SPAN_PX {
            return Err(DepthRejection::Edge);
        }
        let steps = (span_px / STEP_PX).ceil().max(2.0) as usize;
        let left = self
            .patch(self.left, pixel)
            .ok_or(DepthRejection::OutsideImage)?;
        // The window is a few pixels: one shear, at its middle, serves all of it.
        let shear = slant
            .filter(|p| {
                p.rms * px_per_rho <= MAX_PLANE_RMS_PX
                    && p.gradient[0].hypot(p.gradient[1]) * px_per_rho <= MAX_DISPARITY_GRADIENT
            })
            .and_then(|p| self.right_jacobian(pixel, 0.5 * (lo + hi), p.gradient));
        // A plane from wrong neighbours shears the patch off the surface: the sheared patches
        // are used only where they correlate better than the square ones.
        let scores = self.scores(&left, steps, &at, (lo, hi), None);
        let scores = match shear.map(|j| self.scores(&left, steps, &at, (lo, hi), Some(j))) {
            Some(sheared) if peak(&sheared) > peak(&scores) => sheared,
            _ => scores,
        };
        let (best, &score) = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .ok_or(DepthRejection::NoStereoMatch)?;
        if score < self.min_correlation || best == 0 || best == steps {
            return Err(DepthRejection::NoStereoMatch);
        }
        // Parabola through the best sample and its two neighbours.
        let (s0, s2) = (scores[best - 1], scores[best + 1]);
        let curvature = s0 - 2.0 * score + s2;
        let offset = if curvature < 0.0 {
            (0.5 * (s0 - s2) / curvature).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let rho = lo + (hi - lo) * (best as f64 + offset) / steps as f64;
        let z = 1.0 / rho;
        let right = at(rho).ok_or(DepthRejection::NoStereoMatch)?;
        Ok(GuidedMatch {
            point: CameraPoint::new(ray.x * z, ray.y * z, z),
            right,
            correlation: score,
        })
    }

    /// The right-image pixel of the point at inverse depth `rho` on the left ray `ray`
    /// (`X = ray/ρ`, so `R·X + t ∝ R·ray + ρ·t`).
    fn right_pixel(&self, ray: &Vector3<f64>, rho: f64) -> Option<PixelPoint> {
        let pose = &self.rig.right_from_left;
        let x = pose.rotation * ray + pose.translation * rho;
        if x.z <= 1e-9 {
            return None;
        }
        let q = self
            .rig
            .right
            .project(&NormalizedPoint::new(x.x / x.z, x.y / x.z));
        q.is_finite().then_some(q)
    }

    /// ZNCC of the `left` patch with the right image's at `steps + 1` inverse depths evenly
    /// over `span` (`at`: the right pixel of an inverse depth), its patches mapped by `shear`
    /// (square when `None`); −∞ where a patch cannot be compared.
    fn scores(
        &self,
        left: &[f64],
        steps: usize,
        at: &impl Fn(f64) -> Option<PixelPoint>,
        (lo, hi): (f64, f64),
        shear: Option<[[f64; 2]; 2]>,
    ) -> Vec<f64> {
        let mut right = Vec::with_capacity(left.len());
        (0..=steps)
            .map(|k| {
                let rho = lo + (hi - lo) * k as f64 / steps as f64;
                at(rho)
                    .and_then(|q| {
                        right.clear();
                        match shear {
                            Some(j) => self.right.patch_affine_into(
                                q.x,
                                q.y,
                                self.patch_radius as usize,
                                j,
                                &mut right,
                            )?,
                            None => self.patch_into(self.right, &q, &mut right)?,
                        }
                        zncc(left, &right, MIN_PATCH_STD)
                    })
                    .unwrap_or(f64::NEG_INFINITY)
            })
            .collect()
    }

    /// Right-image pixels per left-image pixel around `pixel` on the surface whose inverse
    /// depth is `rho` there and changes by `gradient` (1/m per pixel): where the left patch's
    /// samples land in the right image (central differences of the exact mapping).
    fn right_jacobian(
        &self,
        pixel: &PixelPoint,
        rho: f64,
        gradient: [f64; 2],
    ) -> Option<[[f64; 2]; 2]> {
        let at = |dx: f64, dy: f64| {
            let n = self
                .rig
                .left
                .normalize(&PixelPoint::new(pixel.x + dx, pixel.y + dy))
                .ok()?;
            let ray = Vector3::new(n.x, n.y, 1.0);
            self.right_pixel(&ray, rho + gradient[0] * dx + gradient[1] * dy)
        };
        let (xp, xm, yp, ym) = (at(1.0, 0.0)?, at(-1.0, 0.0)?, at(0.0, 1.0)?, at(0.0, -1.0)?);
        let j = [
            [0.5 * (xp.x - xm.x), 0.5 * (yp.x - ym.x)],
            [0.5 * (xp.y - xm.y), 0.5 * (yp.y - ym.y)],
        ];
        j.iter().flatten().all(|v| v.is_finite()).then_some(j)
    }

    fn patch(&self, image: &GreyImage, centre: &PixelPoint) -> Option<Vec<f64>> {
        let mut out = Vec::new();
        self.patch_into(image, centre, &mut out)?;
        Some(out)
    }

    /// The `(2r+1)²` bilinear samples around `centre`; `None` when any falls outside.
    fn patch_into(&self, image: &GreyImage, centre: &PixelPoint, out: &mut Vec<f64>) -> Option<()> {
        image.patch_into(centre.x, centre.y, self.patch_radius as usize, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{CameraModel, RelativePose};
    use image::RgbImage;
    use nalgebra::Rotation3;

    /// A textured fronto-parallel wall at `z` m seen by a rectified rig with baseline `b`: the
    /// right image is the left one shifted by the disparity f·b/z.
    fn wall(f: f64, b: f64, z: f64) -> (RgbImage, RgbImage) {
        let tex = |x: f64, y: f64| {
            let v = 128.0
                + 60.0 * (0.31 * x).sin() * (0.23 * y).cos()
                + 40.0 * (0.071 * x + 0.13 * y).sin();
            [v.clamp(0.0, 255.0) as u8; 3]
        };
        let d = f * b / z;
        let left = RgbImage::from_fn(160, 120, |x, y| image::Rgb(tex(x as f64, y as f64)));
        let right = RgbImage::from_fn(160, 120, |x, y| image::Rgb(tex(x as f64 + d, y as f64)));
        (left, right)
    }

    /// Focal length (px), baseline (m) and wall depth (m) of the test rig and scene.
    const F: f64 = 120.0;
    const B: f64 = 0.12;
    const Z: f64 = 2.5;

    /// A rectified 160×120 rig with focal `F` and baseline `B`.
    fn rig() -> StereoRig {
        let camera = CameraModel::pinhole(F, F, 80.0, 60.0, 160, 120);
        StereoRig::from_extrinsics(
            camera,
            camera,
            RelativePose::new(Rotation3::identity(), Vector3::new(-B, 0.0, 0.0)),
        )
        .unwrap()
    }

    /// The wall at `Z` through [`rig`], as grey images.
    fn wall_images() -> (GreyImage, GreyImage) {
        let (l, r) = wall(F, B, Z);
        (GreyImage::of(&l), GreyImage::of(&r))
    }

    fn over<'a>(
        left: &'a GreyImage,
        right: &'a GreyImage,
        rig: &'a StereoRig,
        patch_radius: u32,
    ) -> GuidedStereo<'a> {
        GuidedStereo {
            left,
            right,
            rig,
            patch_radius,
            min_correlation: 0.8,
        }
    }

    #[test]
    fn finds_the_depth_of_a_wall_within_the_neighbours_span() {
        let (f, b, z) = (F, B, Z);
        let (rig, (gl, gr)) = (rig(), wall_images());
        let guided = over(&gl, &gr, &rig, 3);
        let opts = DepthOptions::default();
        // Neighbours said 2.2–2.8 m; the wall is at 2.5 m (disparity 5.76 px).
        let m = guided
            .search(
                &PixelPoint::new(70.3, 55.0),
                (1.0 / 2.8, 1.0 / 2.2),
                None,
                &opts,
            )
            .unwrap();
        assert!((m.point.z - z).abs() < 0.02 * z, "z {}", m.point.z);
        assert!(
            (m.right.x - (70.3 - f * b / z)).abs() < 0.1,
            "{:?}",
            m.right
        );
        assert!((m.right.y - 55.0).abs() < 1e-9);
        assert!(m.correlation > 0.95);
        // Neighbours all far beyond (5–6 m): the best lies at the span's end, refused.
        let e = guided.search(
            &PixelPoint::new(70.3, 55.0),
            (1.0 / 6.0, 1.0 / 5.0),
            None,
            &opts,
        );
        assert_eq!(e.unwrap_err(), DepthRejection::NoStereoMatch);
        // A span of 0.5–5 m is 26 px of disparity: neighbours on different surfaces.
        let e = guided.search(&PixelPoint::new(70.3, 55.0), (0.2, 2.0), None, &opts);
        assert_eq!(e.unwrap_err(), DepthRejection::Edge);
        // A flat image has nothing to correlate.
        let flat = GreyImage::of(&RgbImage::from_pixel(160, 120, image::Rgb([90, 90, 90])));
        let guided = GuidedStereo {
            left: &flat,
            right: &flat,
            ..guided
        };
        let e = guided.search(
            &PixelPoint::new(70.3, 55.0),
            (1.0 / 2.8, 1.0 / 2.2),
            None,
            &opts,
        );
        assert_eq!(e.unwrap_err(), DepthRejection::NoStereoMatch);
    }

    #[test]
    fn refine_pins_a_match_that_is_a_fraction_of_a_pixel_off() {
        let (f, b, z) = (F, B, Z);
        let (rig, (gl, gr)) = (rig(), wall_images());
        let guided = over(&gl, &gr, &rig, 4);
        let pixel = PixelPoint::new(70.3, 55.0);
        let true_d = f * b / z;
        // A matcher's right pixel 0.6 px off in disparity puts the point 10 % off in depth; the
        // refinement brings the disparity within 0.1 px (1.7 % of depth).
        for off in [-0.6, -0.3, 0.4, 0.6] {
            let z_matched = f * b / (true_d + off);
            let point = CameraPoint::new(
                (pixel.x - 80.0) / f * z_matched,
                (pixel.y - 60.0) / f * z_matched,
                z_matched,
            );
            let m = guided.refine(&pixel, &point, None, 1.5).unwrap();
            assert!(
                (m.right.x - (pixel.x - true_d)).abs() < 0.1,
                "{off}: {:?}",
                m.right
            );
            assert!((m.point.z - z).abs() < 0.017 * z, "{off}: z {}", m.point.z);
        }
        // 3 px off: the true disparity lies beyond the 1.5 px window, so the window's best is at
        // its end and nothing is claimed.
        let z_far = f * b / (true_d - 3.0);
        let point = CameraPoint::new(
            (pixel.x - 80.0) / f * z_far,
            (pixel.y - 60.0) / f * z_far,
            z_far,
        );
        assert!(guided.refine(&pixel, &point, None, 1.5).is_none());
        assert!(guided
            .refine(&pixel, &CameraPoint::new(0.0, 0.0, f64::NAN), None, 1.5)
            .is_none());
    }

    /// A floor seen at a grazing angle: disparity grows by `G` px a row. Square patches mix
    /// rows at different disparities and follow whichever rows carry the texture; the patches
    /// sheared by the neighbours' plane sit on each row's own disparity.
    #[test]
    fn a_slanted_surfaces_plane_shears_the_patches_onto_its_rows() {
        const G: f64 = 0.3;
        let disparity = |y: f64| 4.0 + G * (y - 20.0);
        // Texture mostly in the upper half of every 12-row band: square patches lean on it.
        let tex = |x: f64, y: f64| {
            let band = (y / 12.0).fract() < 0.5;
            let a = if band { 70.0 } else { 8.0 };
            128.0 + a * (0.37 * x + 0.11 * y).sin() + 0.4 * a * (0.19 * x).cos()
        };
        let left = RgbImage::from_fn(160, 120, |x, y| {
            image::Rgb([tex(x as f64, y as f64).clamp(0.0, 255.0) as u8; 3])
        });
        let right = RgbImage::from_fn(160, 120, |x, y| {
            let (x, y) = (x as f64, y as f64);
            image::Rgb([tex(x + disparity(y), y).clamp(0.0, 255.0) as u8; 3])
        });
        let (gl, gr) = (GreyImage::of(&left), GreyImage::of(&right));
        let rig = rig();
        let guided = over(&gl, &gr, &rig, 4);
        let fb = F * B;
        let plane = |rho: f64| InverseDepthPlane {
            inverse_depth: rho,
            gradient: [0.0, G / fb],
            rms: 0.0,
        };
        let (mut square, mut sheared) = (Vec::new(), Vec::new());
        for k in 0..24 {
            let pixel = PixelPoint::new(40.0 + 3.3 * k as f64, 30.0 + 2.9 * k as f64);
            let d = disparity(pixel.y);
            // The matcher's disparity 0.3 px off.
            let z = fb / (d + 0.3);
            let point = CameraPoint::new((pixel.x - 80.0) / F * z, (pixel.y - 60.0) / F * z, z);
            let error = |m: Option<GuidedMatch>| m.map(|m| (pixel.x - m.right.x - d).abs());
            if let (Some(a), Some(b)) = (
                error(guided.refine(&pixel, &point, None, 1.5)),
                error(guided.refine(&pixel, &point, Some(&plane(1.0 / z)), 1.5)),
            ) {
                square.push(a);
                sheared.push(b);
            }
        }
        let rms = |e: &[f64]| (e.iter().map(|v| v * v).sum::<f64>() / e.len() as f64).sqrt();
        assert!(square.len() >= 20, "{} of 24 decided", square.len());
        // Measured: sheared 0.018 px, square 0.63 px.
        assert!(rms(&sheared) < 0.05, "sheared rms {:.3} px", rms(&sheared));
        assert!(
            rms(&square) > 0.3 && rms(&sheared) < 0.2 * rms(&square),
            "sheared rms {:.3} px, square {:.3} px",
            rms(&sheared),
            rms(&square)
        );
        // A plane steeper than the limit, or scattered, is not used: the square patches' answer.
        let pixel = PixelPoint::new(70.3, 55.0);
        let z = fb / (disparity(pixel.y) + 0.3);
        let point = CameraPoint::new((pixel.x - 80.0) / F * z, (pixel.y - 60.0) / F * z, z);
        let unsheared = guided.refine(&pixel, &point, None, 1.5);
        for bad in [
            InverseDepthPlane {
                gradient: [0.0, 1.2 / fb],
                ..plane(1.0 / z)
            },
            InverseDepthPlane {
                rms: 1.5 / fb,
                ..plane(1.0 / z)
            },
        ] {
            assert_eq!(guided.refine(&pixel, &point, Some(&bad), 1.5), unsheared);
        }
        // A wrong plane within the limits (this slant on a wall facing the camera): the square
        // patches correlate better, and their answer stands.
        let (gl, gr) = wall_images();
        let guided = over(&gl, &gr, &rig, 4);
        let z = fb / (fb / Z + 0.3);
        let point = CameraPoint::new((pixel.x - 80.0) / F * z, (pixel.y - 60.0) / F * z, z);
        let square = guided.refine(&pixel, &point, None, 1.5).unwrap();
        let wrong = guided
            .refine(&pixel, &point, Some(&plane(1.0 / z)), 1.5)
            .unwrap();
        assert_eq!(wrong, square);
        assert!(
            (pixel.x - square.right.x - fb / Z).abs() < 0.1,
            "{square:?}"
        );
    }
}
