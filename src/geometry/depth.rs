//! Depth lifting: a keyframe pixel plus its aligned depth image (registered to the colour
//! camera, REP 118: each value is the depth along the optical axis) → a 3-D point in metres in
//! the keyframe camera's frame.
//!
//! Sampling checks the nearest pixel's 3×3 neighbourhood first: a jump by more than a relative
//! threshold there (or a hole) rejects the pixel, because at a depth discontinuity interpolation
//! invents a point between the foreground and the background that lies on no surface (a "flying
//! pixel") and interpolating across a hole mixes in zeros. Within a neighbourhood that passed,
//! the surface is smooth and the depth is interpolated bilinearly at the sub-pixel position: the
//! nearest pixel's value is up to half a pixel's depth change off, which on a floor seen at a
//! grazing angle is 1–2 % of the depth (2–4 % a pixel at 3–5 m from a camera 0.5 m up).

use serde::{Deserialize, Serialize};

use super::camera::CameraModel;
use super::checked::{Checked, Validate};
use super::points::{PixelMatch, PixelPoint};
use super::structure::{CameraPoint, PointMatch};
use super::GeometryError;

/// The samples of a depth image, in the two `sensor_msgs/Image` encodings depth cameras use.
#[derive(Debug, Clone, Copy)]
pub enum DepthSamples<'a> {
    /// `16UC1`: millimetres, 0 = no measurement.
    Millimetres(&'a [u16]),
    /// `32FC1`: metres; 0, NaN and ±∞ = no measurement.
    Metres(&'a [f32]),
}

/// A depth image borrowed from a buffer, row-major without padding.
#[derive(Debug, Clone, Copy)]
pub struct DepthImage<'a> {
    width: usize,
    height: usize,
    samples: DepthSamples<'a>,
}

impl<'a> DepthImage<'a> {
    /// Wrap `width × height` samples; errors when the buffer has another length.
    pub fn new(
        width: usize,
        height: usize,
        samples: DepthSamples<'a>,
    ) -> Result<Self, GeometryError> {
        let len = match samples {
            DepthSamples::Millimetres(s) => s.len(),
            DepthSamples::Metres(s) => s.len(),
        };
        if width == 0 || height == 0 || width.checked_mul(height) != Some(len) {
            return Err(GeometryError::InvalidInput {
                what: "depth image".into(),
                reason: format!("{len} samples for {width}×{height} (expected width·height > 0)"),
            });
        }
        Ok(DepthImage {
            width,
            height,
            samples,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Depth at integer pixel (col, row) in metres; `None` for no measurement (0, NaN, ±∞).
    #[inline]
    pub fn metres_at(&self, col: usize, row: usize) -> Option<f64> {
        let i = row * self.width + col;
        let d = match self.samples {
            DepthSamples::Millimetres(s) => s[i] as f64 * 1e-3,
            DepthSamples::Metres(s) => s[i] as f64,
        };
        (d.is_finite() && d > 0.0).then_some(d)
    }
}

/// Which depths count as valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DepthOptions {
    /// Nearest valid depth, metres (sensors' minimum range; closer values are noise).
    pub min_m: f64,
    /// Farthest valid depth, metres (depth noise grows with z²; far points carry little scale).
    pub max_m: f64,
    /// A pixel is on a depth edge when a 3×3 neighbour differs from it by more than this
    /// fraction of its depth (0.05: a 5 cm step at 1 m); it is then rejected.
    pub max_relative_jump: f64,
    /// Reject pixels with a hole (no measurement) among their 3×3 neighbours: holes sit at
    /// edges and shadows, where the neighbouring values are least reliable.
    pub reject_near_holes: bool,
}

impl Default for DepthOptions {
    fn default() -> Self {
        DepthOptions {
            min_m: 0.1,
            max_m: 10.0,
            max_relative_jump: 0.05,
            reject_near_holes: true,
        }
    }
}

impl Validate for DepthOptions {
    fn validate(&self) -> Result<(), GeometryError> {
        DepthOptions::validate(self)
    }
}

impl DepthOptions {
    /// Check ranges; errors name the field (`depth.…`).
    pub fn validate(&self) -> Result<(), GeometryError> {
        let bad = |field: &str, reason: String| GeometryError::InvalidOption {
            field: format!("depth.{field}"),
            reason,
        };
        if !(self.min_m.is_finite() && self.min_m >= 0.0) {
            return Err(bad(
                "min_m",
                format!("{} is not a finite number ≥ 0", self.min_m),
            ));
        }
        if !(self.max_m.is_finite() && self.max_m > self.min_m) {
            return Err(bad(
                "max_m",
                format!("{} is not finite and > min_m", self.max_m),
            ));
        }
        if !(self.max_relative_jump.is_finite() && self.max_relative_jump > 0.0) {
            return Err(bad(
                "max_relative_jump",
                format!("{} is not a finite number > 0", self.max_relative_jump),
            ));
        }
        Ok(())
    }
}

/// Why a pixel gave no point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepthRejection {
    /// The pixel is outside the depth image.
    OutsideImage,
    /// No measurement: 0, NaN or ±∞.
    Missing,
    /// Outside `[min_m, max_m]`.
    OutOfRange,
    /// On a depth edge or next to a hole.
    Edge,
    /// The pixel could not be undistorted.
    Undistortion,
    /// Stereo: no right-image position along the pixel's epipolar line correlates with its
    /// patch ([`super::stereo_guided`]).
    NoStereoMatch,
}

/// Counts of rejected pixels by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectionCounts {
    /// [`DepthRejection::OutsideImage`].
    pub outside_image: usize,
    /// [`DepthRejection::Missing`].
    pub missing: usize,
    /// [`DepthRejection::OutOfRange`].
    pub out_of_range: usize,
    /// [`DepthRejection::Edge`].
    pub edge: usize,
    /// [`DepthRejection::Undistortion`].
    pub undistortion: usize,
    /// [`DepthRejection::NoStereoMatch`].
    pub no_stereo_match: usize,
}

impl RejectionCounts {
    pub(crate) fn add(&mut self, r: DepthRejection) {
        match r {
            DepthRejection::OutsideImage => self.outside_image += 1,
            DepthRejection::Missing => self.missing += 1,
            DepthRejection::OutOfRange => self.out_of_range += 1,
            DepthRejection::Edge => self.edge += 1,
            DepthRejection::Undistortion => self.undistortion += 1,
            DepthRejection::NoStereoMatch => self.no_stereo_match += 1,
        }
    }

    /// All rejections.
    pub fn total(&self) -> usize {
        self.outside_image
            + self.missing
            + self.out_of_range
            + self.edge
            + self.undistortion
            + self.no_stereo_match
    }
}

/// Lift one pixel (x right, y down, origin at the centre of the top-left pixel) of the image
/// `depth` is registered to; `camera` is that image's camera. The point is `z·(x̂, ŷ, 1)`, with
/// (x̂, ŷ) the undistorted normalized coordinates of the sub-pixel position and z the depth
/// interpolated there (the nearest pixel's where a hole is allowed nearby).
pub fn lift_pixel(
    depth: &DepthImage,
    camera: &CameraModel,
    pixel: &PixelPoint,
    opts: &DepthOptions,
) -> Result<CameraPoint, DepthRejection> {
    if !pixel.is_finite() {
        return Err(DepthRejection::OutsideImage);
    }
    let (col, row) = (pixel.x.round(), pixel.y.round());
    if col < 0.0 || row < 0.0 || col >= depth.width as f64 || row >= depth.height as f64 {
        return Err(DepthRejection::OutsideImage);
    }
    let (col, row) = (col as usize, row as usize);
    let z = depth.metres_at(col, row).ok_or(DepthRejection::Missing)?;
    if z < opts.min_m || z > opts.max_m {
        return Err(DepthRejection::OutOfRange);
    }
    let jump = opts.max_relative_jump * z;
    for r in row.saturating_sub(1)..(row + 2).min(depth.height) {
        for c in col.saturating_sub(1)..(col + 2).min(depth.width) {
            match depth.metres_at(c, r) {
                Some(d) if (d - z).abs() > jump => return Err(DepthRejection::Edge),
                None if opts.reject_near_holes => return Err(DepthRejection::Edge),
                _ => {}
            }
        }
    }
    point_on_ray(camera, pixel, bilinear(depth, pixel).unwrap_or(z))
}

/// The depth at `pixel` interpolated between its four surrounding pixels, all of which lie in the
/// nearest pixel's checked 3×3 neighbourhood; `None` at the image border or next to a hole.
fn bilinear(depth: &DepthImage, pixel: &PixelPoint) -> Option<f64> {
    let (x0, y0) = (pixel.x.floor(), pixel.y.floor());
    if x0 < 0.0 || y0 < 0.0 {
        return None;
    }
    let (c, r) = (x0 as usize, y0 as usize);
    if c + 1 >= depth.width || r + 1 >= depth.height {
        return None;
    }
    let (ax, ay) = (pixel.x - x0, pixel.y - y0);
    let top = depth.metres_at(c, r)? * (1.0 - ax) + depth.metres_at(c + 1, r)? * ax;
    let bottom = depth.metres_at(c, r + 1)? * (1.0 - ax) + depth.metres_at(c + 1, r + 1)? * ax;
    Some(top * (1.0 - ay) + bottom * ay)
}

/// The point at depth `z` (along the optical axis) on the ray through `pixel`.
pub(crate) fn point_on_ray(
    camera: &CameraModel,
    pixel: &PixelPoint,
    z: f64,
) -> Result<CameraPoint, DepthRejection> {
    let x = camera
        .normalize(pixel)
        .map_err(|_| DepthRejection::Undistortion)?;
    Ok(CameraPoint::new(x.x * z, x.y * z, z))
}

/// Correspondences lifted from keyframe–current pixel matches.
#[derive(Debug, Clone, Default)]
pub struct LiftedMatches {
    /// Keyframe point (metres) and current pixel, for [`super::estimate_absolute_pose`].
    pub matches: Vec<PointMatch>,
    /// For each entry of `matches`, the index of the pixel match it came from.
    pub source: Vec<usize>,
    /// Matches that gave no point, by cause.
    pub rejected: RejectionCounts,
}

/// Where a keyframe's metric depth comes from: a dense depth image ([`DepthImage`]) or points
/// triangulated at some of its pixels ([`super::sparse_depth::SparseDepth`]).
pub trait DepthLookup {
    /// The pixel's 3-D point in the keyframe camera's frame, or why there is none.
    fn lift(
        &self,
        camera: &CameraModel,
        pixel: &PixelPoint,
        opts: &DepthOptions,
    ) -> Result<CameraPoint, DepthRejection>;

    /// `(width, height)` of the image the depth is registered to, when it has one.
    fn registered_size(&self) -> Option<(usize, usize)>;
}

impl DepthLookup for DepthImage<'_> {
    fn lift(
        &self,
        camera: &CameraModel,
        pixel: &PixelPoint,
        opts: &DepthOptions,
    ) -> Result<CameraPoint, DepthRejection> {
        lift_pixel(self, camera, pixel, opts)
    }

    fn registered_size(&self) -> Option<(usize, usize)> {
        Some((self.width, self.height))
    }
}

/// Lift the keyframe side (`p0`) of every match with the keyframe's depth and camera; `p1`
/// (the current image's pixel) is kept as observed. Errors when a depth image's size differs
/// from a camera that states its size (the depth is not registered to it).
pub fn lift_matches<D: DepthLookup + ?Sized>(
    matches: &[PixelMatch],
    depth: &D,
    keyframe_camera: &CameraModel,
    opts: &Checked<DepthOptions>,
) -> Result<LiftedMatches, GeometryError> {
    let (w, h) = (keyframe_camera.width, keyframe_camera.height);
    if let Some((dw, dh)) = depth.registered_size() {
        if w > 0 && h > 0 && (w as usize != dw || h as usize != dh) {
            return Err(GeometryError::InvalidInput {
                what: "depth image".into(),
                reason: format!(
                    "{dw}×{dh} but the keyframe camera is {w}×{h}: depth must be registered \
                     to the colour camera"
                ),
            });
        }
    }
    let mut out = LiftedMatches::default();
    for (i, m) in matches.iter().enumerate() {
        match depth.lift(keyframe_camera, &m.p0, opts) {
            Ok(point) => {
                out.matches.push(PointMatch { point, pixel: m.p1 });
                out.source.push(i);
            }
            Err(r) => out.rejected.add(r),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera() -> CameraModel {
        CameraModel::pinhole(100.0, 100.0, 4.5, 3.5, 10, 8)
    }

    #[test]
    fn smooth_surfaces_are_interpolated_at_the_sub_pixel_position() {
        // A slanted surface: depth grows 2 % a pixel to the right (under the 5 % edge threshold),
        // like a floor seen at a grazing angle. Bilinear interpolation of a linear ramp is exact;
        // the nearest pixel's depth would be 0.45 px × 0.04 m = 18 mm (0.7 %) off here.
        let m: Vec<f32> = (0..80).map(|i| 2.0 + 0.04 * (i % 10) as f32).collect();
        let d = DepthImage::new(10, 8, DepthSamples::Metres(&m)).unwrap();
        let opts = DepthOptions::default();
        let p = lift_pixel(&d, &camera(), &PixelPoint::new(5.45, 3.3), &opts).unwrap();
        let z = 2.0 + 0.04 * 5.45;
        assert!((p.z - z).abs() < 1e-6, "z {} vs {z}", p.z);
        assert!((p.x - z * 0.95 / 100.0).abs() < 1e-6);
        // At the last column there is no right neighbour to interpolate with: the nearest
        // pixel's depth.
        let p = lift_pixel(&d, &camera(), &PixelPoint::new(9.2, 3.0), &opts).unwrap();
        assert!((p.z - (2.0 + 0.04 * 9.0)).abs() < 1e-6, "z {}", p.z);
    }

    #[test]
    fn lifts_exact_points_in_both_encodings() {
        let mm = vec![2000u16; 80];
        let m = vec![2.0f32; 80];
        let opts = DepthOptions::default();
        for samples in [DepthSamples::Millimetres(&mm), DepthSamples::Metres(&m)] {
            let d = DepthImage::new(10, 8, samples).unwrap();
            let p = lift_pixel(&d, &camera(), &PixelPoint::new(6.5, 1.25), &opts).unwrap();
            // z·(x − cx)/f with the sub-pixel position, depth of pixel (7, 1).
            assert!((p.x - 2.0 * 2.0 / 100.0).abs() < 1e-12);
            assert!((p.y - 2.0 * -2.25 / 100.0).abs() < 1e-12);
            assert!((p.z - 2.0).abs() < 1e-12);
        }
    }

    #[test]
    fn rejects_invalid_depths_and_edges() {
        let opts = DepthOptions::default();
        let mut m = vec![2.0f32; 80];
        m[3 * 10 + 3] = 0.0;
        m[3 * 10 + 7] = f32::NAN;
        m[6 * 10 + 1] = f32::INFINITY;
        m[10 + 8] = 50.0; // out of range
        m[6 * 10 + 6] = 2.3; // a 15 % step: an edge for its neighbours too
        let d = DepthImage::new(10, 8, DepthSamples::Metres(&m)).unwrap();
        let cam = camera();
        let at = |x: f64, y: f64| lift_pixel(&d, &cam, &PixelPoint::new(x, y), &opts);
        assert_eq!(at(3.0, 3.0), Err(DepthRejection::Missing));
        assert_eq!(at(7.2, 2.8), Err(DepthRejection::Missing));
        assert_eq!(at(1.0, 6.0), Err(DepthRejection::Missing));
        assert_eq!(at(8.0, 1.0), Err(DepthRejection::OutOfRange));
        assert_eq!(at(6.0, 6.0), Err(DepthRejection::Edge));
        assert_eq!(at(5.0, 5.0), Err(DepthRejection::Edge));
        assert_eq!(at(4.0, 3.0), Err(DepthRejection::Edge)); // next to the hole
        assert_eq!(at(-0.6, 2.0), Err(DepthRejection::OutsideImage));
        assert_eq!(at(9.6, 2.0), Err(DepthRejection::OutsideImage));
        assert_eq!(at(f64::NAN, 2.0), Err(DepthRejection::OutsideImage));
        assert!(at(1.0, 1.0).is_ok());
        // A gentle slope (1 % per pixel) is not an edge.
        let slope: Vec<f32> = (0..80)
            .map(|i| 2.0 * (1.0 + 0.01 * (i % 10) as f32))
            .collect();
        let d = DepthImage::new(10, 8, DepthSamples::Metres(&slope)).unwrap();
        assert!(lift_pixel(&d, &cam, &PixelPoint::new(5.0, 4.0), &opts).is_ok());
        let near = DepthOptions {
            reject_near_holes: false,
            ..opts.clone()
        };
        let d = DepthImage::new(10, 8, DepthSamples::Metres(&m)).unwrap();
        assert!(lift_pixel(&d, &cam, &PixelPoint::new(4.0, 3.0), &near).is_ok());
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let m = vec![1u16; 79];
        assert!(DepthImage::new(10, 8, DepthSamples::Millimetres(&m)).is_err());
        assert!(DepthImage::new(0, 0, DepthSamples::Millimetres(&[])).is_err());
        let m = vec![1000u16; 12];
        let d = DepthImage::new(4, 3, DepthSamples::Millimetres(&m)).unwrap();
        let err = lift_matches(&[], &d, &camera(), &Checked::default()).unwrap_err();
        assert!(err.to_string().contains("registered"), "{err}");
    }
}
