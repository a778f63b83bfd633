//! [`TrackOutput`] → ROS 2 messages (the ROS-free [`crate::io::msgs`] model): one pure
//! function shared by the node and `imd replay`, so both publish exactly the same thing.
//! docs/ros.md documents every topic, field and frame these messages carry.
//!
//! Identity: every message of a frame carries the frame's stamp; the current camera is named
//! by its optical frame and the keyframe by its frame name
//! `<camera>/keyframe/<sec>.<nanosec>` ([`KeyframeId::frame_name`]).

use image::RgbImage;
use nalgebra::{Matrix3, Matrix6, UnitQuaternion, Vector3};

use super::contract::{FrameOutputs, FrameReport};
use super::topics::{Output, Published};
use super::{KeyframeId, PoseScale, TrackOutput, TrackState, TrackerCounters};
use crate::config::LostOutput;
use crate::geometry::{RelativePose, UNOBSERVABLE_TRANSLATION_VARIANCE};
use crate::io::msgs::diagnostic_msgs::{DiagnosticStatus, KeyValue};
use crate::io::msgs::geometry_msgs::{
    Point, Pose, PoseWithCovariance, Quaternion, Transform, TransformStamped, TwistWithCovariance,
    Vector3 as MsgVector3,
};
use crate::io::msgs::nav_msgs::Odometry;
use crate::io::msgs::sensor_msgs::{Image, PointCloud2, PointField};
use crate::io::msgs::std_msgs::Header;
use crate::io::msgs::tf2_msgs::TFMessage;

/// The node's name: outputs live under `/<NODE_NAME>/…` (see [`super::topics::OutputTopic::resolved`]).
pub const NODE_NAME: &str = "imd_matcher";

/// Variance published for quantities that are not known at all (lost pose, twist, the scale
/// of a monocular translation): large enough to mean "unknown" to any filter, finite so every
/// tool can parse it.
pub const UNKNOWN_VARIANCE: f64 = UNOBSERVABLE_TRANSLATION_VARIANCE;

/// Bytes per correspondence point: x0, y0, x1, y1, confidence (float32), inlier (uint8),
/// padded to a multiple of 4.
pub const POINT_STEP: u32 = 24;

/// What the messages need besides the tracker output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageContext {
    /// Build the TF message.
    pub publish_tf: bool,
    /// Draw the debug image.
    pub publish_debug_image: bool,
    /// Time from receiving the image to the end of processing, ms.
    pub latency_ms: f64,
    /// Frames of this camera dropped so far ("newest frame wins").
    pub dropped_frames: u64,
    /// Frames of this camera skipped so far to honour `node.max_rate_hz`.
    pub rate_skipped: u64,
    /// The tracker's counters after this frame.
    pub counters: TrackerCounters,
    /// What a frame without a verified pose publishes.
    pub lost_output: LostOutput,
    /// Lost frames in a row from which the status is an ERROR instead of a WARN (0 = never).
    pub lost_error_frames: u32,
}

/// Every message of one tracked frame; see docs/ros.md for when each is present.
pub fn track_messages(out: &TrackOutput, ctx: &MessageContext) -> FrameOutputs {
    // `integrity.lost_output: nothing`: a lost frame publishes no pose at all (isaac's way);
    // the default null pose with unknown covariance is rtabmap's.
    let silent = out.state == TrackState::Lost && ctx.lost_output == LostOutput::Nothing;
    // No frame to express a pose in (a blank first frame): nothing to publish.
    let has_parent = pose_parent(out).is_some();
    // TF carries no covariance: it is only published for a verified pose, or for a frame
    // that is its own new keyframe (the identity is then exact), never as a guess.
    let exact_tf = out.pose.is_some() || out.promoted.is_some();
    // Publishing order: the pose first (what a consumer waits for), the larger messages last.
    let messages = [
        (!silent && has_parent).then(|| Published::new(Output::Odometry, odometry(out))),
        (ctx.publish_tf && !silent && exact_tf).then(|| Published::new(Output::Tf, transform(out))),
        correspondences_cloud(out).map(|m| Published::new(Output::Correspondences, m)),
        ctx.publish_debug_image
            .then(|| debug_image(out))
            .flatten()
            .map(|m| Published::new(Output::DebugImage, m)),
    ];
    FrameOutputs {
        stamp: out.stamp,
        messages: messages.into_iter().flatten().collect(),
        diagnostics: vec![tracker_status(out, ctx)],
        report: Some(report(out, ctx)),
    }
}

fn header(out: &TrackOutput, frame_id: impl Into<String>) -> Header {
    Header {
        stamp: out.stamp,
        frame_id: frame_id.into(),
    }
}

/// The keyframe a frame's pose is expressed in: the keyframe it was matched against when the
/// pose is verified or tracking was lost, else (the camera's first frame) its own new one.
fn pose_parent(out: &TrackOutput) -> Option<&KeyframeId> {
    out.keyframe.as_ref().or(out.promoted.as_ref())
}

/// Correspondences as an unordered `PointCloud2` (height 1): per point `x0, y0` (keyframe
/// pixels), `x1, y1` (current-frame pixels), `confidence` (float32) and `inlier` (uint8, 1
/// when consistent with the published pose), little-endian, 24-byte points. Header: the
/// current frame's stamp and optical frame. `None` when the frame had no keyframe to match.
pub fn correspondences_cloud(out: &TrackOutput) -> Option<PointCloud2> {
    out.keyframe.as_ref()?;
    let field = |name: &str, offset: u32, datatype: u8| PointField {
        name: name.into(),
        offset,
        datatype,
        count: 1,
    };
    let n = out.correspondences.len();
    let mut data = Vec::with_capacity(n * POINT_STEP as usize);
    for c in &out.correspondences {
        let m = &c.pixels;
        for v in [
            m.p0.x as f32,
            m.p0.y as f32,
            m.p1.x as f32,
            m.p1.y as f32,
            m.confidence,
        ] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.push(c.inlier as u8);
        data.extend_from_slice(&[0, 0, 0]);
    }
    Some(PointCloud2 {
        header: header(out, &out.frame_id),
        height: 1,
        width: n as u32,
        fields: vec![
            field("x0", 0, PointField::FLOAT32),
            field("y0", 4, PointField::FLOAT32),
            field("x1", 8, PointField::FLOAT32),
            field("y1", 12, PointField::FLOAT32),
            field("confidence", 16, PointField::FLOAT32),
            field("inlier", 20, PointField::UINT8),
        ],
        is_bigendian: false,
        point_step: POINT_STEP,
        row_step: POINT_STEP * n as u32,
        data,
        is_dense: true,
    })
}

/// The pose of the current camera in the keyframe camera's frame, from the geometry's
/// keyframe → current transform `X_cur = R·X_kf + t`: orientation `Rᵀ`, position `−Rᵀ·t`.
pub fn pose_in_keyframe(pose: &RelativePose) -> (Matrix3<f64>, Vector3<f64>) {
    let rt = pose.rotation.matrix().transpose();
    (rt, -(rt * pose.translation))
}

/// The geometry's covariance of `(δt, δθ)` (perturbations of `t` and of `R` on the left,
/// `R = exp([δθ]×)·R̂`, both in the current camera's frame) as the covariance of the published
/// pose in ROS's order `(x, y, z, rot x, rot y, rot z)`, rotations about the fixed axes of the
/// keyframe frame (`R_pub = exp([φ]×)·R̂_pub`).
///
/// With `R_pub = Rᵀ`, `p = −Rᵀt`: `φ = −R̂ᵀδθ` and `δp = −R̂ᵀδt − R̂ᵀ[t̂]×δθ`, so
/// `Σ_pub = J·Σ·Jᵀ` with `J = [[−R̂ᵀ, −R̂ᵀ[t̂]×], [0, −R̂ᵀ]]`.
///
/// Monocular scale: the geometry normalizes `|t| = 1` and its δt has no component along `t̂`.
/// The published position is that unit direction, and its length is unknown, so
/// [`UNKNOWN_VARIANCE`] is added along `p̂` (when `t = 0`, pure rotation, the geometry already
/// reports the whole translation block as unknown). Metric scale (`scale.is_metric()`): `t` is
/// in metres and the PnP covariance already holds its length's uncertainty; nothing is added.
pub fn ros_pose_covariance(
    pose: &RelativePose,
    covariance: &Matrix6<f64>,
    scale: PoseScale,
) -> Matrix6<f64> {
    let rt = pose.rotation.matrix().transpose();
    let t = pose.translation;
    let mut j = Matrix6::zeros();
    j.fixed_view_mut::<3, 3>(0, 0).copy_from(&(-rt));
    j.fixed_view_mut::<3, 3>(0, 3)
        .copy_from(&(-rt * t.cross_matrix()));
    j.fixed_view_mut::<3, 3>(3, 3).copy_from(&(-rt));
    let mut out = j * covariance * j.transpose();
    let p = -(rt * t);
    if !scale.is_metric() && p.norm() > 1e-12 {
        let d = p.normalize();
        let scale = d * d.transpose() * UNKNOWN_VARIANCE;
        let mut block = out.fixed_view_mut::<3, 3>(0, 0);
        block += scale;
    }
    // Symmetrize: rounding in the products leaves tiny asymmetries consumers may reject.
    (out + out.transpose()) * 0.5
}

fn quaternion(r: &Matrix3<f64>) -> Quaternion {
    let q = UnitQuaternion::from_matrix(r);
    Quaternion {
        x: q.i,
        y: q.j,
        z: q.k,
        w: q.w,
    }
}

fn diagonal(value: f64) -> [f64; 36] {
    let mut c = [0.0; 36];
    for i in 0..6 {
        c[i * 7] = value;
    }
    c
}

/// `nav_msgs/Odometry` for every tracked frame. `header.stamp` = the current frame's stamp,
/// `header.frame_id` = the keyframe's frame name, `child_frame_id` = the current camera's
/// optical frame; `pose` = the current camera in the keyframe camera's frame (position in
/// metres with depth or stereo, else the unit translation direction, monocular scale unknown)
/// with [`ros_pose_covariance`].
///
/// Without a verified pose (tracking lost) the pose is the identity with [`UNKNOWN_VARIANCE`]
/// on the whole diagonal; for a camera's first frame the keyframe is the frame itself, so
/// the identity is exact (covariance 0). The twist is not estimated: zero with
/// [`UNKNOWN_VARIANCE`] on its diagonal.
pub fn odometry(out: &TrackOutput) -> Odometry {
    let parent = pose_parent(out)
        .map(KeyframeId::frame_name)
        .unwrap_or_default();
    let (pose, covariance) = match (&out.pose, out.state, &out.keyframe) {
        (Some(p), _, _) => {
            let (r, position) = pose_in_keyframe(&p.pose);
            let cov = ros_pose_covariance(&p.pose, &p.covariance, p.scale);
            let mut c = [0.0; 36];
            for (i, v) in c.iter_mut().enumerate() {
                *v = cov[(i / 6, i % 6)];
            }
            (
                Pose {
                    position: Point {
                        x: position.x,
                        y: position.y,
                        z: position.z,
                    },
                    orientation: quaternion(&r),
                },
                c,
            )
        }
        // The frame is its own keyframe: exact identity.
        (None, TrackState::NewKeyframe, None) => (Pose::default(), [0.0; 36]),
        _ => (Pose::default(), diagonal(UNKNOWN_VARIANCE)),
    };
    Odometry {
        header: header(out, parent),
        child_frame_id: out.frame_id.clone(),
        pose: PoseWithCovariance { pose, covariance },
        twist: TwistWithCovariance {
            covariance: diagonal(UNKNOWN_VARIANCE),
            ..Default::default()
        },
    }
}

/// The TF child frame of a camera's current pose: `<camera>/current` (a frame of its own, so
/// it never gives the camera's optical frame a second parent in the robot's TF tree).
pub fn current_frame_name(camera: &str) -> String {
    format!("{camera}/current")
}

/// `/tf` for every tracked frame: keyframe frame → `<camera>/current`. With a verified pose
/// its parent is the matched keyframe; otherwise (lost, first frame) the frame's own new
/// keyframe, with the identity.
pub fn transform(out: &TrackOutput) -> TFMessage {
    let (parent, r, p) = match (&out.pose, &out.keyframe) {
        (Some(pose), Some(kf)) => {
            let (r, p) = pose_in_keyframe(&pose.pose);
            (kf.frame_name(), r, p)
        }
        _ => (
            out.promoted
                .as_ref()
                .or(out.keyframe.as_ref())
                .map(KeyframeId::frame_name)
                .unwrap_or_default(),
            Matrix3::identity(),
            Vector3::zeros(),
        ),
    };
    TFMessage {
        transforms: vec![TransformStamped {
            header: header(out, parent),
            child_frame_id: current_frame_name(&out.camera.name),
            transform: Transform {
                translation: MsgVector3 {
                    x: p.x,
                    y: p.y,
                    z: p.z,
                },
                rotation: quaternion(&r),
            },
        }],
    }
}

/// Keyframe (left) and current frame (right) side by side with the matches drawn
/// ([`crate::io::viz::draw_matches`]: every match a dot, inliers coloured by confidence,
/// outliers grey, lines for at most [`crate::io::viz::DEFAULT_MAX_LINES`] spread over the
/// keyframe), `rgb8`.
/// Header: the current frame's stamp and optical frame. `None` without a keyframe.
pub fn debug_image(out: &TrackOutput) -> Option<Image> {
    let kf = out.keyframe_image.as_ref()?;
    out.keyframe.as_ref()?;
    let matches: Vec<_> = out.correspondences.iter().map(|c| c.pixels).collect();
    let flags: Vec<bool> = out.correspondences.iter().map(|c| c.inlier).collect();
    let canvas: RgbImage = crate::io::viz::draw_matches(
        kf,
        &out.image,
        &matches,
        Some(&flags),
        &crate::io::viz::VizOptions::default(),
    );
    let (width, height) = canvas.dimensions();
    Some(Image {
        header: header(out, &out.frame_id),
        height,
        width,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: width * 3,
        data: canvas.into_raw(),
    })
}

/// The metric path's keys (empty values for a monocular camera): how many matches got a
/// keyframe point, why the others did not, the PnP inliers and why a metric camera's pose fell
/// back to monocular.
fn metric_values(out: &TrackOutput) -> Vec<KeyValue> {
    let m = out.metric.clone().unwrap_or_default();
    let known = out.metric.is_some();
    let count = |v: usize| if known { v.to_string() } else { String::new() };
    let r = &m.rejected;
    vec![
        KeyValue::new("metric_lifted", count(m.lifted)),
        KeyValue::new("metric_inliers", count(m.inliers)),
        KeyValue::new("metric_keyframe_points", count(m.keyframe_points)),
        KeyValue::new(
            "metric_rejected",
            if known {
                format!(
                    "missing {}, out_of_range {}, edge {}, outside_image {}, undistortion {}, \
                     no_stereo_match {}",
                    r.missing,
                    r.out_of_range,
                    r.edge,
                    r.outside_image,
                    r.undistortion,
                    r.no_stereo_match
                )
            } else {
                String::new()
            },
        ),
        KeyValue::new("metric_failure", m.failure.unwrap_or_default()),
    ]
}

/// The per-frame `diagnostic_msgs/DiagnosticStatus` (name `imd_matcher: tracker <camera>`,
/// hardware_id = camera): level OK while tracking / promoting / relocalized, WARN when lost,
/// ERROR when lost for `lost_error_frames` frames in a row; the message says the state and
/// why; the key–value list is documented in docs/ros.md.
pub fn tracker_status(out: &TrackOutput, ctx: &MessageContext) -> DiagnosticStatus {
    let level = match out.state {
        TrackState::Lost
            if ctx.lost_error_frames > 0 && out.lost_streak >= ctx.lost_error_frames =>
        {
            DiagnosticStatus::ERROR
        }
        TrackState::Lost => DiagnosticStatus::WARN,
        _ => DiagnosticStatus::OK,
    };
    let message = match &out.reason {
        None => out.state.as_str().to_string(),
        Some(reason) => format!("{}: {reason}", out.state.as_str()),
    };
    let mut values = frame_values(out);
    values.extend(quality_values(out));
    values.extend(timing_values(out, ctx));
    values.extend(integrity_values(out));
    for (key, v) in model_stages(out) {
        values.push(KeyValue::new(key, format!("{v:.1}")));
    }
    values.extend(metric_values(out));
    values.extend([
        KeyValue::new(
            "relocalization_candidates",
            out.relocalization
                .iter()
                .map(|c| {
                    format!(
                        "{} (similarity {:.3}, {} inliers)",
                        c.keyframe, c.similarity, c.inliers
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        KeyValue::new("keyframes_stored", out.keyframes_stored),
        KeyValue::new("frames_tracked", ctx.counters.frames),
        KeyValue::new("keyframes_created", ctx.counters.keyframes),
        KeyValue::new("frames_lost", ctx.counters.lost),
        KeyValue::new("relocalizations", ctx.counters.relocalized),
    ]);
    DiagnosticStatus {
        level,
        name: format!("imd_matcher: tracker {}", out.camera.name),
        message,
        hardware_id: out.camera.name.clone(),
        values,
    }
}

/// Which frame, against which keyframe, and what became a keyframe.
fn frame_values(out: &TrackOutput) -> Vec<KeyValue> {
    let name = |k: Option<&KeyframeId>| k.map(KeyframeId::frame_name).unwrap_or_default();
    vec![
        KeyValue::new("state", out.state.as_str()),
        KeyValue::new("camera", &out.camera.name),
        KeyValue::new("frame_stamp", out.stamp),
        KeyValue::new("frame_id", &out.frame_id),
        KeyValue::new("keyframe", name(out.keyframe.as_ref())),
        KeyValue::new(
            "keyframe_camera",
            out.keyframe
                .as_ref()
                .map(|k| k.camera.clone())
                .unwrap_or_default(),
        ),
        KeyValue::new(
            "keyframe_stamp",
            out.keyframe
                .as_ref()
                .map(|k| k.stamp.to_string())
                .unwrap_or_default(),
        ),
        KeyValue::new("new_keyframe", name(out.promoted.as_ref())),
    ]
}

/// Tracking quality against the keyframe and the pose's model.
fn quality_values(out: &TrackOutput) -> Vec<KeyValue> {
    let q = &out.quality;
    let pose = out.pose.as_ref();
    vec![
        KeyValue::new("matches", q.matches),
        KeyValue::new("inliers", q.inliers),
        KeyValue::new("inlier_ratio", format!("{:.3}", q.inlier_ratio)),
        KeyValue::new("coverage", format!("{:.3}", q.coverage)),
        KeyValue::new("median_flow_px", format!("{:.2}", q.median_flow_px)),
        KeyValue::new("keyframe_age_s", format!("{:.3}", q.keyframe_age_s)),
        KeyValue::new("keyframe_age_frames", q.keyframe_age_frames),
        KeyValue::new("model", pose.map(|p| p.model.as_str()).unwrap_or("")),
        KeyValue::new(
            "translation_observable",
            pose.is_some_and(|p| p.translation_observable),
        ),
        KeyValue::new("scale", pose.map(|p| p.scale.as_str()).unwrap_or_default()),
        KeyValue::new(
            "noise_sigma_px",
            pose.map(|p| format!("{:.3}", p.noise_sigma_px))
                .unwrap_or_default(),
        ),
    ]
}

/// Latency, scheduling and the stage timings of the tracker.
fn timing_values(out: &TrackOutput, ctx: &MessageContext) -> Vec<KeyValue> {
    let t = &out.timings;
    let ms = |v: f64| format!("{v:.1}");
    vec![
        KeyValue::new("latency_ms", ms(ctx.latency_ms)),
        KeyValue::new("frames_dropped", ctx.dropped_frames),
        KeyValue::new("frames_skipped_max_rate", ctx.rate_skipped),
        KeyValue::new("prepare_ms", ms(t.prepare_ms)),
        KeyValue::new("match_ms", ms(t.match_ms)),
        KeyValue::new("pose_ms", ms(t.pose_ms)),
        KeyValue::new("metric_ms", ms(t.metric_ms)),
        KeyValue::new("relocalization_ms", ms(t.relocalization_ms)),
        KeyValue::new("integrity_ms", ms(t.integrity_ms)),
        KeyValue::new("track_ms", ms(t.total_ms)),
    ]
}

/// What the integrity checks measured (empty strings when they did not run).
fn integrity_values(out: &TrackOutput) -> Vec<KeyValue> {
    let i = out.integrity.as_ref();
    let num = |f: &dyn Fn(&super::IntegrityReport) -> Option<f64>, digits: usize| {
        i.and_then(f)
            .map(|v| format!("{v:.digits$}"))
            .unwrap_or_default()
    };
    vec![
        KeyValue::new(
            "photometric_support",
            num(&|r| Some(r.photometric_support), 3),
        ),
        KeyValue::new(
            "photometric_samples",
            i.map(|r| r.photometric_samples.to_string())
                .unwrap_or_default(),
        ),
        KeyValue::new(
            "photometric_informative",
            i.map(|r| r.photometric_informative.to_string())
                .unwrap_or_default(),
        ),
        KeyValue::new("inlier_spread", num(&|r| Some(r.inlier_spread), 3)),
        KeyValue::new(
            "translation_parallax_px",
            num(&|r| Some(r.translation_parallax_px), 2),
        ),
        KeyValue::new("frame_contrast", num(&|r| Some(r.frame_contrast), 1)),
        KeyValue::new(
            "rotation_surprise_deg",
            num(&|r| r.rotation_surprise_deg, 2),
        ),
        KeyValue::new(
            "integrity_rejected",
            i.and_then(|r| r.rejected.clone()).unwrap_or_default(),
        ),
        KeyValue::new("lost_streak", out.lost_streak),
    ]
}

/// The matcher's own stages, ms (keys `model_<stage>_ms`).
fn model_stages(out: &TrackOutput) -> [(&'static str, f64); 8] {
    let m = &out.timings.model;
    [
        ("model_preprocess_ms", m.preprocess_ms),
        ("model_vae_ms", m.vae_ms),
        ("model_clip_ms", m.clip_ms),
        ("model_fine_encoder_ms", m.fine_encoder_ms),
        ("model_cipm_ms", m.cipm_ms),
        ("model_unet_ms", m.unet_ms),
        ("model_coarse_ms", m.coarse_ms),
        ("model_fine_ms", m.fine_ms),
    ]
}

/// The typed summary adapters aggregate (replay statistics).
pub fn report(out: &TrackOutput, ctx: &MessageContext) -> FrameReport {
    let t = &out.timings;
    let mut stage_ms = vec![
        ("prepare_ms".to_string(), t.prepare_ms),
        ("match_ms".to_string(), t.match_ms),
        ("pose_ms".to_string(), t.pose_ms),
        ("metric_ms".to_string(), t.metric_ms),
        ("relocalization_ms".to_string(), t.relocalization_ms),
        ("track_ms".to_string(), t.total_ms),
    ];
    stage_ms.extend(model_stages(out).map(|(k, v)| (k.to_string(), v)));
    FrameReport {
        state: out.state,
        new_keyframe: out.promoted.is_some(),
        matches: out.quality.matches,
        inliers: out.quality.inliers,
        scale: out.pose.as_ref().map(|p| p.scale),
        latency_ms: ctx.latency_ms,
        stage_ms,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nalgebra::{Rotation3, Vector6};

    use super::*;
    use crate::geometry::{PixelMatch, PixelPoint, PoseModel};
    use crate::io::msgs::builtin_interfaces::Time;
    use crate::pipeline::{CameraId, Correspondence, TrackQuality, TrackTimings, TrackedPose};

    fn pose() -> RelativePose {
        RelativePose::new(
            Rotation3::from_euler_angles(0.1, -0.3, 0.2),
            Vector3::new(0.3, -0.2, 0.9).normalize(),
        )
    }

    fn kf(camera: &str, sec: i32) -> KeyframeId {
        KeyframeId {
            camera: camera.into(),
            stamp: Time { sec, nanosec: 5 },
        }
    }

    fn output(state: TrackState, keyframe: Option<KeyframeId>, with_pose: bool) -> TrackOutput {
        TrackOutput {
            camera: CameraId {
                index: 1,
                name: "cam1".into(),
            },
            stamp: Time { sec: 7, nanosec: 9 },
            frame_id: "cam1_optical".into(),
            state,
            promoted: (state != TrackState::Tracking).then(|| kf("cam1", 7)),
            keyframe_frame_id: "cam0_optical".into(),
            keyframe_image: keyframe.is_some().then(|| Arc::new(RgbImage::new(30, 20))),
            keyframe,
            correspondences: vec![
                Correspondence {
                    pixels: PixelMatch {
                        p0: PixelPoint::new(1.5, 2.0),
                        p1: PixelPoint::new(3.25, 4.0),
                        confidence: 0.75,
                    },
                    inlier: true,
                },
                Correspondence {
                    pixels: PixelMatch {
                        p0: PixelPoint::new(10.0, 11.0),
                        p1: PixelPoint::new(12.0, 13.0),
                        confidence: 0.25,
                    },
                    inlier: false,
                },
            ],
            pose: with_pose.then(|| TrackedPose {
                pose: pose(),
                covariance: Matrix6::identity() * 1e-4,
                model: PoseModel::Essential,
                translation_observable: true,
                noise_sigma_px: 0.4,
                scale: PoseScale::Monocular,
            }),
            quality: TrackQuality::default(),
            reason: None,
            integrity: None,
            lost_streak: 0,
            relocalization: Vec::new(),
            metric: None,
            keyframes_stored: 3,
            image: Arc::new(RgbImage::new(40, 20)),
            timings: TrackTimings::default(),
        }
    }

    /// Published (position, orientation) after perturbing the geometry's pose by
    /// `(δt, δθ)` with the geometry's conventions.
    fn published(p: &RelativePose, d: &Vector6<f64>) -> (Vector3<f64>, Matrix3<f64>) {
        let dt = Vector3::new(d[0], d[1], d[2]);
        let dth = Vector3::new(d[3], d[4], d[5]);
        let r = Rotation3::new(dth) * p.rotation;
        let (rot, pos) = pose_in_keyframe(&RelativePose::new(r, p.translation + dt));
        (pos, rot)
    }

    #[test]
    fn covariance_maps_through_the_pose_inverse_in_ros_order() {
        // Finite differences of the published pose against the analytic Jacobian: for a
        // covariance concentrated on one perturbation direction v, the published covariance
        // must be (J·v)(J·v)ᵀ plus the unknown-scale term along the position.
        let p = pose();
        let (p0, r0) = published(&p, &Vector6::zeros());
        let scale = {
            let d = p0.normalize();
            d * d.transpose() * UNKNOWN_VARIANCE
        };
        for k in 0..6 {
            let mut v = Vector6::zeros();
            v[k] = 1.0;
            // Central differences; the small rotation's vector from the skew part of
            // R₁·R₀ᵀ (sin θ·axis, exact to θ²/6), which acos-based logs lose near θ = 0.
            let h = 1e-5;
            let (pp, rp) = published(&p, &(v * h));
            let (pm, rm) = published(&p, &(-v * h));
            let dp = (pp - pm) / (2.0 * h);
            let vee = |m: Matrix3<f64>| {
                let s = (m - m.transpose()) * 0.5;
                Vector3::new(s[(2, 1)], s[(0, 2)], s[(1, 0)])
            };
            let phi = (vee(rp * r0.transpose()) - vee(rm * r0.transpose())) / (2.0 * h);
            let jv = Vector6::new(dp.x, dp.y, dp.z, phi.x, phi.y, phi.z);
            let mut expected = jv * jv.transpose();
            let mut block = expected.fixed_view_mut::<3, 3>(0, 0);
            block += scale;
            let got = ros_pose_covariance(&p, &(v * v.transpose()), PoseScale::Monocular);
            assert!(
                (got - expected).abs().max() < 1e-6,
                "direction {k}: {}",
                got - expected
            );
            // Metric: the same map without the unknown-scale term.
            let got = ros_pose_covariance(&p, &(v * v.transpose()), PoseScale::MetricDepth);
            let mut metric = expected;
            let mut block = metric.fixed_view_mut::<3, 3>(0, 0);
            block -= scale;
            assert!((got - metric).abs().max() < 1e-6, "metric direction {k}");
        }
    }

    #[test]
    fn odometry_names_both_frames_and_is_honest_about_what_is_unknown() {
        let tracked = output(TrackState::Tracking, Some(kf("cam0", 3)), true);
        let o = odometry(&tracked);
        assert_eq!(o.header.frame_id, "cam0/keyframe/3.000000005");
        assert_eq!(o.header.stamp, Time { sec: 7, nanosec: 9 });
        assert_eq!(o.child_frame_id, "cam1_optical");
        let (_, position) = pose_in_keyframe(&pose());
        assert!((o.pose.pose.position.x - position.x).abs() < 1e-12);
        assert!((position.norm() - 1.0).abs() < 1e-12);
        let q = o.pose.pose.orientation;
        let r = UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(q.w, q.x, q.y, q.z));
        let want = pose().rotation.inverse();
        assert!(r.to_rotation_matrix().angle_to(&want) < 1e-12);
        // Rotation block: the geometry's 1e-4 rad² (the inverse only rotates the axes).
        let trace: f64 = (3..6).map(|i| o.pose.covariance[i * 7]).sum();
        assert!((trace - 3e-4).abs() < 1e-12);
        assert_eq!(o.twist.covariance[0], UNKNOWN_VARIANCE);

        // The camera's first frame: its own keyframe, exact.
        let first = output(TrackState::NewKeyframe, None, false);
        let o = odometry(&first);
        assert_eq!(o.header.frame_id, "cam1/keyframe/7.000000005");
        assert!(o.pose.covariance.iter().all(|c| *c == 0.0));
        assert_eq!(o.pose.pose.orientation.w, 1.0);
        // Lost: relative to the keyframe it failed against, everything unknown.
        let lost = output(TrackState::Lost, Some(kf("cam1", 2)), false);
        let o = odometry(&lost);
        assert_eq!(o.header.frame_id, "cam1/keyframe/2.000000005");
        assert_eq!(o.pose.covariance[0], UNKNOWN_VARIANCE);
        assert_eq!(o.pose.covariance[35], UNKNOWN_VARIANCE);
        // TF: with a pose, keyframe → <camera>/current; lost, the frame's own new keyframe.
        let t = &transform(&tracked).transforms[0];
        assert_eq!(
            (t.header.frame_id.as_str(), t.child_frame_id.as_str()),
            ("cam0/keyframe/3.000000005", "cam1/current")
        );
        let t = &transform(&lost).transforms[0];
        assert_eq!(t.header.frame_id, "cam1/keyframe/7.000000005");
        assert_eq!(t.transform.rotation.w, 1.0);
    }

    #[test]
    fn correspondences_debug_image_and_status() {
        let out = output(TrackState::Tracking, Some(kf("cam0", 3)), true);
        let cloud = correspondences_cloud(&out).unwrap();
        assert_eq!((cloud.width, cloud.height, cloud.row_step), (2, 1, 48));
        assert_eq!(cloud.header.frame_id, "cam1_optical");
        let f32_at = |point: usize, offset: usize| {
            let i = point * 24 + offset;
            f32::from_le_bytes(cloud.data[i..i + 4].try_into().unwrap())
        };
        assert_eq!(
            [
                f32_at(0, 0),
                f32_at(0, 4),
                f32_at(0, 8),
                f32_at(0, 12),
                f32_at(0, 16)
            ],
            [1.5, 2.0, 3.25, 4.0, 0.75]
        );
        assert_eq!((cloud.data[20], cloud.data[44]), (1, 0));
        assert!(correspondences_cloud(&output(TrackState::NewKeyframe, None, false)).is_none());

        let img = debug_image(&out).unwrap();
        assert_eq!((img.width, img.height, img.step), (70, 20, 210));
        assert_eq!(img.data.len(), 70 * 20 * 3);

        let ctx = MessageContext {
            latency_ms: 12.5,
            dropped_frames: 4,
            ..Default::default()
        };
        let s = tracker_status(&out, &ctx);
        assert_eq!(s.level, DiagnosticStatus::OK);
        let v = |k: &str| {
            s.values
                .iter()
                .find(|kv| kv.key == k)
                .unwrap()
                .value
                .clone()
        };
        assert_eq!(v("state"), "tracking");
        assert_eq!(v("keyframe"), "cam0/keyframe/3.000000005");
        assert_eq!(v("frames_dropped"), "4");
        assert_eq!(v("latency_ms"), "12.5");
        let lost = tracker_status(&output(TrackState::Lost, Some(kf("cam1", 2)), false), &ctx);
        assert_eq!(lost.level, DiagnosticStatus::WARN);
        // Everything together, honouring the publish flags.
        let all = track_messages(&out, &ctx);
        let outputs: Vec<Output> = all.messages.iter().map(|p| p.output).collect();
        assert_eq!(outputs, [Output::Odometry, Output::Correspondences]);
        assert!(all.message(Output::Tf).is_none());
        assert_eq!(all.report.unwrap().state, "tracking");
    }
}
