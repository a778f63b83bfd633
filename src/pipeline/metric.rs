//! Metric scale for the tracker: a frame's depth image or stereo partner (decoded from the
//! input's [`MetricMessages`]), the metric depth a keyframe keeps ([`KeyframeDepth`]), and the
//! metric pose of a later frame against it (keyframe points in metres → PnP).
//!
//! The metric input has one name per stage: [`MetricSource`] (configured: where a camera's scale
//! comes from) → [`MetricMessages`] (received with a frame: its depth image, or the right image
//! and camera_info) → [`MetricImages`] (decoded: a depth map, or the right frame and the rig) →
//! [`KeyframeDepth`] (what a keyframe keeps). Their options ([`MetricOptions`]) are checked once,
//! where they enter ([`MetricOptions::of`] the configuration).
//!
//! - RGB-D: the keyframe keeps its depth image; a later match's keyframe pixel is lifted by it.
//! - Stereo: when a frame becomes a keyframe, its left image is matched against its right image
//!   and the matches are triangulated by the rig ([`StereoRig`]); the keyframe keeps the points
//!   by pixel ([`SparseDepth`]) and a later match takes the nearest one's depth, or, with no
//!   stored pixel near it, searches its right-image pixel along its epipolar line between its
//!   neighbours' depths ([`GuidedStereo`]).
//!
//! Either way the pose is [`estimate_absolute_pose`] on the lifted matches; when the keyframe has
//! no metric depth, or too few matches lift, the tracker keeps the monocular pose and says why.

use std::sync::Arc;

use nalgebra::{Quaternion, Rotation3, UnitQuaternion, Vector3};
use serde::Serialize;

use super::frame::{camera_model_for, CameraId, Frame, MetricImages, StereoView};
use super::PipelineError;
use crate::geometry::depth::{point_on_ray, DepthRejection, RejectionCounts};
use crate::geometry::patch::GreyImage;
use crate::geometry::sparse_depth::InverseDepthPlane;
use crate::geometry::stereo_guided::GuidedStereo;
use crate::geometry::{
    estimate_absolute_pose, estimate_stereo_pose, lift_matches, AbsolutePoseEstimate,
    AbsolutePoseOptions, CameraModel, CameraPoint, Checked, DepthOptions, PixelMatch, PixelPoint,
    RelativePose, SparseDepth, StereoOptions, StereoPointMatch, StereoRig,
};
use crate::io::frames::{CameraConfig, CameraFrame, MetricMessages, MetricSource, RigExtrinsic};
use crate::io::image::{decode_depth, DepthMap};
use crate::io::msgs::sensor_msgs::CameraInfo;

/// What scale a published pose has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoseScale {
    /// From matches alone: the translation is a unit direction, its length unknown.
    #[default]
    Monocular,
    /// Metres, from the keyframe's depth image.
    MetricDepth,
    /// Metres, from the keyframe's stereo triangulation.
    MetricStereo,
}

impl PoseScale {
    /// `monocular`, `metric_depth` or `metric_stereo`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PoseScale::Monocular => "monocular",
            PoseScale::MetricDepth => "metric_depth",
            PoseScale::MetricStereo => "metric_stereo",
        }
    }

    /// Metres (not a unit direction).
    pub fn is_metric(&self) -> bool {
        !matches!(self, PoseScale::Monocular)
    }
}

impl std::fmt::Display for PoseScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of the metric path (the `absolute_pose`, `depth` and `stereo` sections), checked
/// when built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricOptions {
    /// PnP.
    pub absolute_pose: Checked<AbsolutePoseOptions>,
    /// Valid depths.
    pub depth: Checked<DepthOptions>,
    /// Triangulation.
    pub stereo: Checked<StereoOptions>,
}

impl MetricOptions {
    /// The sections of a configuration, checked.
    pub fn of(config: &crate::config::ImdConfig) -> Result<Self, PipelineError> {
        Ok(MetricOptions {
            absolute_pose: Checked::new(config.absolute_pose.clone())?,
            depth: Checked::new(config.depth.clone())?,
            stereo: Checked::new(config.stereo.clone())?,
        })
    }
}

fn metric_error(input: &str, reason: impl Into<String>) -> PipelineError {
    PipelineError::Metric {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// Decode the metric companion of `input` into `frame` (already decoded from it). A depth image
/// must have the colour image's size (registered); a stereo pair gets its rig from the two `P`
/// matrices (rectified images: the frame's camera model becomes the rectified one, `P`'s) or from
/// the configured extrinsic (raw images, each camera's own K and distortion).
pub fn attach_metric(
    frame: &mut Frame,
    input: &CameraFrame,
    camera: &CameraConfig,
) -> Result<(), PipelineError> {
    let Some(metric) = &input.metric else {
        return Ok(());
    };
    match (metric.as_ref(), &camera.metric) {
        (MetricMessages::Depth(msg), MetricSource::Depth { topic }) => {
            let depth = decode_depth(msg).map_err(|e| metric_error(topic, e.to_string()))?;
            if (depth.width(), depth.height()) != (frame.width(), frame.height()) {
                return Err(metric_error(
                    topic,
                    format!(
                        "depth image is {}×{} but the colour image is {}×{}; expected depth \
                         registered to the colour camera (same size)",
                        depth.width(),
                        depth.height(),
                        frame.width(),
                        frame.height()
                    ),
                ));
            }
            frame.metric = Some(MetricImages::Depth(Arc::new(depth)));
        }
        (MetricMessages::Stereo { image, info }, MetricSource::Stereo(stereo)) => {
            let topic = &stereo.image_topic;
            let decoded = image
                .decode()
                .map_err(|e| metric_error(topic, e.to_string()))?
                .into_rgb8();
            let (w, h) = decoded.dimensions();
            if (w, h) != (frame.width(), frame.height()) {
                return Err(metric_error(
                    topic,
                    format!(
                        "right image is {w}×{h} but the left image is {}×{}; expected a rig of \
                         equal cameras",
                        frame.width(),
                        frame.height()
                    ),
                ));
            }
            let rig = match stereo.right_from_left {
                Some(extrinsic) => {
                    let right = camera_model_for(info, w, h)
                        .map_err(|e| metric_error(&stereo.camera_info_topic, e.to_string()))?;
                    StereoRig::from_extrinsics(frame.model, right, rig_pose(&extrinsic))?
                }
                None => {
                    let rig = rectified_rig(&input.info, info, w, h)
                        .map_err(|reason| metric_error(&stereo.camera_info_topic, reason))?;
                    // Rectified pixels: the camera is P's, not K's (K and D describe the raw
                    // sensor image).
                    frame.model = rig.left;
                    rig
                }
            };
            let right = Frame::new(
                CameraId {
                    index: frame.camera.index,
                    name: format!("{}/right", frame.camera.name),
                },
                image.header().stamp,
                image.header().frame_id.clone(),
                decoded,
                rig.right,
            );
            frame.metric = Some(MetricImages::Stereo(Box::new(StereoView {
                right: Box::new(right),
                rig,
            })));
        }
        // The input layer only attaches what the camera is configured for.
        _ => {}
    }
    Ok(())
}

fn rectified_rig(
    left: &CameraInfo,
    right: &CameraInfo,
    w: u32,
    h: u32,
) -> Result<StereoRig, String> {
    if right.p[3] == 0.0 {
        return Err(format!(
            "P[3] (Tx = −fx·baseline) is 0, so P gives no baseline; publish rectified camera_infos \
             (P of the right camera carries Tx) or set cameras.right_from_left for raw images \
             (P = {:?})",
            right.p
        ));
    }
    StereoRig::from_projections(&left.p, &right.p, w, h).map_err(|e| e.to_string())
}

fn rig_pose(e: &RigExtrinsic) -> RelativePose {
    let [x, y, z, w] = e.rotation_xyzw;
    let q = UnitQuaternion::from_quaternion(Quaternion::new(w, x, y, z));
    let [tx, ty, tz] = e.translation_m;
    RelativePose::new(Rotation3::from(q), Vector3::new(tx, ty, tz))
}

/// The metric depth a keyframe keeps.
#[derive(Debug, Clone)]
pub enum KeyframeDepth {
    /// Its depth image.
    Dense(Arc<DepthMap>),
    /// Points triangulated from its stereo pair, found by keyframe pixel.
    Stereo(Box<StereoDepth>),
}

/// A stereo keyframe's triangulated points with what the pose refinement needs of them.
#[derive(Debug, Clone)]
pub struct StereoDepth {
    /// Lookup by keyframe pixel, into `points` / `right`.
    pub index: SparseDepth,
    /// The points, metres, left camera frame.
    pub points: Vec<CameraPoint>,
    /// Each point's pixel in the (left) keyframe image.
    pub left: Vec<PixelPoint>,
    /// Each point's pixel in the right image.
    pub right: Vec<PixelPoint>,
    /// The rig that triangulated them.
    pub rig: StereoRig,
    /// The pair's grey levels, for the guided search of matches no stereo match landed near
    /// (`None`: nearest-point lookup only).
    pub images: Option<StereoImages>,
}

/// A stereo keyframe's two images in grey levels.
#[derive(Debug, Clone)]
pub struct StereoImages {
    /// The left (keyframe) image.
    pub left: Arc<GreyImage>,
    /// The right image.
    pub right: Arc<GreyImage>,
}

impl StereoDepth {
    /// A keyframe's stereo points (left camera frame, metres) with their left and right
    /// pixels, indexed for lookup within `lookup_radius_px` (a saved map's keyframe gets the
    /// radius of the run that loads it); without images (no guided search: a saved map keeps
    /// the left image only).
    pub fn new(
        points: Vec<CameraPoint>,
        left: Vec<PixelPoint>,
        right: Vec<PixelPoint>,
        rig: StereoRig,
        lookup_radius_px: f64,
    ) -> Result<StereoDepth, PipelineError> {
        if right.len() != points.len() {
            return Err(crate::geometry::GeometryError::InvalidInput {
                what: "stereo keyframe".into(),
                reason: format!("{} right pixels for {} points", right.len(), points.len()),
            }
            .into());
        }
        let index = SparseDepth::new(&left, &points, lookup_radius_px)?;
        Ok(StereoDepth {
            index,
            points,
            left,
            right,
            rig,
            images: None,
        })
    }
}

impl KeyframeDepth {
    /// The scale poses against this keyframe get.
    pub fn scale(&self) -> PoseScale {
        match self {
            KeyframeDepth::Dense(_) => PoseScale::MetricDepth,
            KeyframeDepth::Stereo(_) => PoseScale::MetricStereo,
        }
    }

    /// Stereo keyframe depth from left–right matches (`p0` left, `p1` right), keeping the
    /// pair's `images` for guided searches; with images, each match's right pixel is first
    /// re-found by its patches within `stereo.refine_radius_px` ([`GuidedStereo::refine`]),
    /// sheared by the slant of the matches around it (`stereo.slant_radius_px`).
    pub fn triangulate(
        rig: &StereoRig,
        matches: &[PixelMatch],
        opts: &MetricOptions,
        images: Option<StereoImages>,
    ) -> Result<(KeyframeDepth, usize), PipelineError> {
        let stereo = &opts.stereo;
        let mut tri = rig.triangulate_matches(matches, stereo)?;
        let left: Vec<PixelPoint> = tri.source.iter().map(|&i| matches[i].p0).collect();
        let mut right: Vec<PixelPoint> = tri.source.iter().map(|&i| matches[i].p1).collect();
        if let (Some(images), true) = (&images, stereo.refine_radius_px > 0.0) {
            let guided = guided(images, rig, stereo);
            // The slant from the matches as triangulated (all planes before any match is
            // refined, so the order does not matter). Measured: planes from points refined once
            // with square patches first gave the same (odometry oracle test, worst segment end
            // 1.16 vs 1.12 %) for twice the work.
            let slants = (stereo.slant_radius_px > 0.0)
                .then(|| SparseDepth::new(&left, &tri.points, stereo.slant_radius_px))
                .transpose()?;
            let planes: Vec<_> = left
                .iter()
                .map(|p| slant(slants.as_ref()?, p, opts))
                .collect();
            for (((pixel, point), right), plane) in left
                .iter()
                .zip(&mut tri.points)
                .zip(&mut right)
                .zip(&planes)
            {
                if let Some(found) =
                    guided.refine(pixel, point, plane.as_ref(), stereo.refine_radius_px)
                {
                    *point = found.point;
                    *right = found.right;
                }
            }
        }
        let mut depth = StereoDepth::new(
            tri.points,
            left,
            right,
            rig.clone(),
            stereo.lookup_radius_px,
        )?;
        depth.images = images;
        Ok((KeyframeDepth::Stereo(Box::new(depth)), tri.rejected))
    }
}

/// What the metric path did for one frame (reported in diagnostics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricReport {
    /// The scale of the published pose.
    pub scale: PoseScale,
    /// Matches whose keyframe pixel got a metric point.
    pub lifted: usize,
    /// Matches that got none, by cause.
    pub rejected: RejectionCounts,
    /// PnP inliers (0 without a metric pose).
    pub inliers: usize,
    /// Metric points the keyframe holds (stereo: triangulated points; depth: 0, dense).
    pub keyframe_points: usize,
    /// Why the pose is not metric although the camera is configured for it.
    pub failure: Option<String>,
}

/// A metric pose with its report.
#[derive(Debug, Clone)]
pub struct MetricPose {
    /// PnP result, `t` in metres.
    pub estimate: AbsolutePoseEstimate,
    /// Its scale source.
    pub scale: PoseScale,
}

/// Lift `matches` (keyframe `p0`) with the keyframe's depth and estimate the current camera's
/// metric pose. Returns the pose when PnP verifies one, and the report either way.
pub fn metric_pose(
    depth: &KeyframeDepth,
    keyframe_camera: &CameraModel,
    matches: &[PixelMatch],
    camera: &CameraModel,
    opts: &MetricOptions,
) -> (Option<MetricPose>, MetricReport) {
    match depth {
        KeyframeDepth::Dense(map) => {
            let lifted = lift_matches(matches, &map.view(), keyframe_camera, &opts.depth);
            let mut report = MetricReport::default();
            let lifted = match lifted {
                Ok(l) => l,
                Err(e) => {
                    report.failure = Some(format!("keyframe depth unusable: {e}"));
                    return (None, report);
                }
            };
            report.lifted = lifted.matches.len();
            report.rejected = lifted.rejected;
            let estimate = estimate_absolute_pose(&lifted.matches, camera, &opts.absolute_pose);
            finish(estimate, PoseScale::MetricDepth, report)
        }
        KeyframeDepth::Stereo(stereo) => {
            let mut report = MetricReport {
                keyframe_points: stereo.points.len(),
                ..Default::default()
            };
            let mut found = Vec::new();
            for m in matches {
                match lift_stereo(stereo, keyframe_camera, m, opts) {
                    Ok(found_point) => found.push(found_point),
                    Err(r) => report.rejected.add(r),
                }
            }
            report.lifted = found.len();
            let estimate = estimate_stereo_pose(
                &found,
                &stereo.rig,
                camera,
                &opts.absolute_pose,
                opts.stereo.right_pixel_sigma_px,
            );
            finish(estimate, PoseScale::MetricStereo, report)
        }
    }
}

/// A stereo keyframe's point for match `m`: the nearest triangulated keyframe pixel's, else
/// (none within the lookup radius, or those within it disagree; when the keyframe kept its
/// images and `stereo.guided_radius_px` > 0) a guided search along the match's epipolar line
/// between its neighbours' depths.
fn lift_stereo(
    stereo: &StereoDepth,
    keyframe_camera: &CameraModel,
    m: &PixelMatch,
    opts: &MetricOptions,
) -> Result<StereoPointMatch, DepthRejection> {
    match stereo.index.nearest(&m.p0, &opts.depth) {
        Ok((k, z)) => {
            // The nearest stored point lies up to the lookup radius away from this match's
            // keyframe pixel (the matcher places keyframe pixels differently in every pair).
            // Its depth goes along this match's own ray, and its right pixel moves by the
            // same offset (disparity locally constant): the stored point as it is would put
            // that offset, up to the radius in pixels, into every observation of the pose.
            let point = point_on_ray(keyframe_camera, &m.p0, z)?;
            let (left, right) = (&stereo.left[k], &stereo.right[k]);
            let right = PixelPoint::new(right.x + m.p0.x - left.x, right.y + m.p0.y - left.y);
            // Disparity is only locally constant on a surface facing the camera: on a floor
            // seen at a grazing angle it changes by ~0.2 px a pixel, so the stored point's
            // depth, moved up to the lookup radius, is several per cent off. With the pair's
            // images the patches re-find this pixel's own right pixel near that guess.
            let refined = match (&stereo.images, opts.stereo.refine_radius_px) {
                (Some(images), radius) if radius > 0.0 => guided(images, &stereo.rig, &opts.stereo)
                    .refine(
                        &m.p0,
                        &point,
                        slant(&stereo.index, &m.p0, opts).as_ref(),
                        radius,
                    ),
                _ => None,
            };
            let right_measured = refined.is_some();
            let (point, right) = refined.map_or((point, right), |f| (f.point, f.right));
            Ok(StereoPointMatch {
                point,
                right,
                pixel: m.p1,
                right_measured,
            })
        }
        // No stored pixel that near, or stored pixels that disagree (a depth edge, or a wrong
        // left–right match among them): the patches decide.
        Err(rejection @ (DepthRejection::Missing | DepthRejection::Edge)) => {
            let (Some(images), radius) = (&stereo.images, opts.stereo.guided_radius_px) else {
                return Err(rejection);
            };
            if radius <= 0.0 {
                return Err(rejection);
            }
            let span = stereo
                .index
                .inverse_depth_span(&m.p0, radius, &opts.depth)?;
            let guided = guided(images, &stereo.rig, &opts.stereo).search(
                &m.p0,
                span,
                slant(&stereo.index, &m.p0, opts).as_ref(),
                &opts.depth,
            )?;
            Ok(StereoPointMatch {
                point: guided.point,
                right: guided.right,
                pixel: m.p1,
                right_measured: true,
            })
        }
        Err(r) => Err(r),
    }
}

/// The plane of a stereo keyframe's points (`index`) around `pixel` that shears the patches
/// (`stereo.slant_radius_px`; `None` when 0 or the points give none).
fn slant(
    index: &SparseDepth,
    pixel: &PixelPoint,
    opts: &MetricOptions,
) -> Option<InverseDepthPlane> {
    let radius = opts.stereo.slant_radius_px;
    (radius > 0.0)
        .then(|| index.inverse_depth_plane(pixel, radius, &opts.depth))
        .flatten()
}

/// The patch search over a stereo pair's images with the configured patches (keyframe
/// refinement, lookup refinement and guided search alike).
fn guided<'a>(
    images: &'a StereoImages,
    rig: &'a StereoRig,
    opts: &StereoOptions,
) -> GuidedStereo<'a> {
    GuidedStereo {
        left: &images.left,
        right: &images.right,
        rig,
        patch_radius: opts.guided_patch_radius,
        min_correlation: opts.guided_min_correlation,
    }
}

fn finish(
    estimate: Result<AbsolutePoseEstimate, crate::geometry::GeometryError>,
    scale: PoseScale,
    mut report: MetricReport,
) -> (Option<MetricPose>, MetricReport) {
    match estimate {
        Ok(estimate) => {
            report.scale = scale;
            report.inliers = estimate.num_inliers;
            (Some(MetricPose { estimate, scale }), report)
        }
        Err(e) => {
            report.failure = Some(format!(
                "no metric pose from {} lifted matches ({} without depth): {e}",
                report.lifted,
                report.rejected.total()
            ));
            (None, report)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extrinsic_quaternions_become_rotations() {
        // 90° about z: x → y.
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let pose = rig_pose(&RigExtrinsic {
            translation_m: [-0.1, 0.0, 0.0],
            rotation_xyzw: [0.0, 0.0, s, s],
        });
        let x = pose.rotation * Vector3::x();
        assert!((x - Vector3::y()).norm() < 1e-12);
        assert_eq!(pose.translation, Vector3::new(-0.1, 0.0, 0.0));
        assert_eq!(PoseScale::MetricStereo.as_str(), "metric_stereo");
        assert!(!PoseScale::Monocular.is_metric());
    }

    /// Bad metric companions fail the frame with the topic named and what was expected.
    #[test]
    fn bad_depth_and_stereo_companions_are_refused_naming_the_topic() {
        use crate::io::frames::{CameraImage, StereoConfig};
        use crate::io::msgs::sensor_msgs::Image;
        use std::time::Instant;
        let info = CameraInfo {
            width: 4,
            height: 2,
            k: [10.0, 0.0, 1.5, 0.0, 10.0, 0.5, 0.0, 0.0, 1.0],
            p: [10.0, 0.0, 1.5, 0.0, 0.0, 10.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0],
            ..Default::default()
        };
        let rgb = |w: u32, h: u32| Image {
            width: w,
            height: h,
            encoding: "rgb8".into(),
            step: 3 * w,
            data: vec![7; (3 * w * h) as usize],
            ..Default::default()
        };
        let depth = |w: u32, h: u32, encoding: &str, bytes: usize| Image {
            width: w,
            height: h,
            encoding: encoding.into(),
            step: 2 * w,
            data: vec![0; bytes],
            ..Default::default()
        };
        let depth_cam = CameraConfig {
            name: "c".into(),
            image_topic: "/c/image".into(),
            camera_info_topic: "/c/info".into(),
            optical_frame: None,
            metric: MetricSource::Depth {
                topic: "/c/depth".into(),
            },
            mount: None,
        };
        let try_frame = |cam: &CameraConfig, metric: MetricMessages| {
            let input = CameraFrame {
                camera: 0,
                camera_name: "c".into(),
                image: CameraImage::Raw(rgb(4, 2)),
                info: info.clone(),
                metric: Some(Arc::new(metric)),
                received: Instant::now(),
            };
            let mut frame = Frame::from_camera_frame(&input, None).unwrap();
            attach_metric(&mut frame, &input, cam).map(|_| frame)
        };
        let err =
            |cam: &CameraConfig, m: MetricMessages| try_frame(cam, m).unwrap_err().to_string();
        // Wrong size (not registered), wrong encoding, truncated data.
        let e = err(&depth_cam, MetricMessages::Depth(depth(8, 4, "16UC1", 64)));
        assert!(
            e.contains("/c/depth") && e.contains("8×4") && e.contains("4×2"),
            "{e}"
        );
        let e = err(&depth_cam, MetricMessages::Depth(depth(4, 2, "rgb8", 16)));
        assert!(e.contains("/c/depth") && e.contains("32FC1"), "{e}");
        let e = err(&depth_cam, MetricMessages::Depth(depth(4, 2, "16UC1", 15)));
        assert!(e.contains("/c/depth") && e.contains("15 bytes"), "{e}");
        assert!(try_frame(&depth_cam, MetricMessages::Depth(depth(4, 2, "16UC1", 16))).is_ok());
        // Stereo: P without a baseline and no extrinsic; NaN in P; an empty right image.
        let stereo_cam = CameraConfig {
            metric: MetricSource::Stereo(StereoConfig {
                image_topic: "/c/right".into(),
                camera_info_topic: "/c/right/info".into(),
                right_from_left: None,
            }),
            ..depth_cam.clone()
        };
        let right = |p3: f64, image: Image| MetricMessages::Stereo {
            image: CameraImage::Raw(image),
            info: Box::new(CameraInfo {
                p: {
                    let mut p = info.p;
                    p[3] = p3;
                    p
                },
                ..info.clone()
            }),
        };
        let e = err(&stereo_cam, right(0.0, rgb(4, 2)));
        assert!(
            e.contains("/c/right/info") && e.contains("right_from_left"),
            "{e}"
        );
        let e = err(&stereo_cam, right(f64::NAN, rgb(4, 2)));
        assert!(e.contains("/c/right/info"), "{e}");
        let e = err(&stereo_cam, right(-1.2, rgb(0, 0)));
        assert!(e.contains("/c/right"), "{e}");
        let ok = try_frame(&stereo_cam, right(-1.2, rgb(4, 2))).unwrap();
        let Some(MetricImages::Stereo(view)) = &ok.metric else {
            panic!("no stereo view")
        };
        assert!((view.rig.baseline_m() - 0.12).abs() < 1e-12);
    }
}
