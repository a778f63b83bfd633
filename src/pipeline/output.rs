//! [`TrackOutput`]: what tracking one frame produced.

use std::sync::Arc;

use image::RgbImage;
use nalgebra::Matrix6;
use serde::Serialize;

use super::metric::{MetricReport, PoseScale};
use super::CameraId;
use crate::geometry::{PixelMatch, PoseModel, RelativePose};
use crate::io::msgs::builtin_interfaces::Time;
use crate::model::StageTimings;

/// A keyframe's identity: the camera that took it and the stamp of its image. Unique within a
/// run (a camera produces one image per stamp).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyframeId {
    /// The camera's configured name.
    pub camera: String,
    /// The keyframe image's stamp.
    pub stamp: Time,
}

impl KeyframeId {
    /// The frame name outputs use for this keyframe: `<camera>/keyframe/<sec>.<nanosec>` with
    /// nanoseconds zero-padded to 9 digits, e.g. `cam0/keyframe/1700000000.100000000`.
    pub fn frame_name(&self) -> String {
        format!("{}/keyframe/{}", self.camera, self.stamp)
    }

    /// Parse [`KeyframeId::frame_name`]'s format back.
    pub fn parse_frame_name(name: &str) -> Option<KeyframeId> {
        let (camera, stamp) = name.rsplit_once("/keyframe/")?;
        let (sec, nanosec) = stamp.split_once('.')?;
        if nanosec.len() != 9 {
            return None;
        }
        let nanosec: u32 = nanosec.parse().ok()?;
        (nanosec < 1_000_000_000).then_some(())?;
        Some(KeyframeId {
            camera: camera.to_string(),
            stamp: Time {
                sec: sec.parse().ok()?,
                nanosec,
            },
        })
    }
}

impl std::fmt::Display for KeyframeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.frame_name())
    }
}

/// What happened to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackState {
    /// Matched against the camera's keyframe with a verified pose.
    Tracking,
    /// Became a keyframe: the camera's first frame (or the first after a reset), or a tracked
    /// frame whose overlap with its keyframe dropped past the configured limits (its pose is
    /// relative to the keyframe it was tracked against).
    NewKeyframe,
    /// No verified pose against the keyframe, and relocalization found none either. The frame
    /// becomes the camera's keyframe so tracking restarts from it.
    Lost,
    /// Tracking was lost (or relocalization was requested) and a stored keyframe, possibly of
    /// another camera, gave a verified pose; that keyframe is now the camera's reference.
    Relocalized,
}

// Ordered, compared and looked up by name, so maps keyed by state (the replay summary) keep
// the alphabetical order their JSON always had and answer `states.get("lost")`.
impl Ord for TrackState {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for TrackState {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::borrow::Borrow<str> for TrackState {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for TrackState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for TrackState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TrackState {
    /// `tracking`, `new_keyframe`, `lost` or `relocalized`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TrackState::Tracking => "tracking",
            TrackState::NewKeyframe => "new_keyframe",
            TrackState::Lost => "lost",
            TrackState::Relocalized => "relocalized",
        }
    }
}

/// One correspondence between the keyframe (`p0`) and the current frame (`p1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correspondence {
    /// The match in original-image pixels, with the matcher's confidence.
    pub pixels: PixelMatch,
    /// Consistent with the estimated pose.
    pub inlier: bool,
}

/// The relative pose of the current frame with respect to its keyframe.
#[derive(Debug, Clone)]
pub struct TrackedPose {
    /// Keyframe camera → current camera: `X_cur = R·X_kf + t`. Monocular: `|t| = 1` when
    /// observable (the scale is unknown), `t = 0` otherwise; metric: `t` in metres.
    pub pose: RelativePose,
    /// The geometry's 6×6 covariance of `(δt, δθ)` (see [`crate::geometry::PoseEstimate`] and,
    /// metric, [`crate::geometry::AbsolutePoseEstimate`]: the same convention, δt in metres).
    pub covariance: Matrix6<f64>,
    /// Which model won the selection.
    pub model: PoseModel,
    /// False under (near-)pure rotation: `t` is meaningless.
    pub translation_observable: bool,
    /// Inlier noise σ̂, pixels.
    pub noise_sigma_px: f64,
    /// Monocular (`|t| = 1`, the covariance above is the relative pose's) or metric (`t` in
    /// metres, the covariance is the PnP estimate's).
    pub scale: PoseScale,
}

/// Tracking quality against the keyframe (what the keyframe policy looks at).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TrackQuality {
    /// Matches returned by the matcher.
    pub matches: usize,
    /// Matches consistent with the pose (0 without a pose).
    pub inliers: usize,
    /// `inliers / matches` (0 without matches).
    pub inlier_ratio: f64,
    /// Fraction of keyframe-image grid cells holding an inlier.
    pub coverage: f64,
    /// Median inlier displacement `|p1 − p0|`, pixels (0 without inliers).
    pub median_flow_px: f64,
    /// Seconds between the keyframe and this frame.
    pub keyframe_age_s: f64,
    /// Frames tracked against the keyframe, this one included.
    pub keyframe_age_frames: u32,
}

/// What the integrity checks (`super::integrity`) measured on one pose.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntegrityReport {
    /// Fraction of the informative sampled inliers whose patches agree in both images.
    pub photometric_support: f64,
    /// Inliers sampled for the photometric check.
    pub photometric_samples: usize,
    /// Of those, the ones where both patches have contrast.
    pub photometric_informative: usize,
    /// Fraction of 4×4 grid cells holding an inlier, the smaller of the two images.
    pub inlier_spread: f64,
    /// Median translation parallax of the inliers, pixels (what the rotation does not explain).
    pub translation_parallax_px: f64,
    /// Grey-level standard deviation of the frame (0–255).
    pub frame_contrast: f64,
    /// Degrees between the rotation and the constant-velocity prediction (`None` without one).
    pub rotation_surprise_deg: Option<f64>,
    /// Why the checks rejected the pose (`None`: accepted).
    pub rejected: Option<String>,
}

/// One keyframe tried during a relocalization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelocalizationCandidate {
    /// Which keyframe (its frame name).
    pub keyframe: String,
    /// Cosine similarity of the embeddings (NaN without embeddings).
    pub similarity: f64,
    /// Inliers of the verified pose (0 when none).
    pub inliers: usize,
}

/// Milliseconds per stage of tracking one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TrackTimings {
    /// Per-image matcher work on this frame (IMD: VAE, CLIP, fine encoder).
    pub prepare_ms: f64,
    /// Matching against the keyframe (IMD: CIPM, UNet, coarse, fine).
    pub match_ms: f64,
    /// Relative pose estimation against the keyframe.
    pub pose_ms: f64,
    /// Metric scale: stereo matching and triangulation of a new keyframe, depth lifting and PnP.
    pub metric_ms: f64,
    /// Relocalization (matching + poses against candidates).
    pub relocalization_ms: f64,
    /// Integrity checks (grey image, photometric support, spread, continuity).
    pub integrity_ms: f64,
    /// The whole [`super::Tracker::track`] call.
    pub total_ms: f64,
    /// The matcher's own stage breakdown, summed over this frame's calls.
    pub model: StageTimings,
}

/// The result of tracking one frame.
#[derive(Debug, Clone)]
pub struct TrackOutput {
    /// The frame's camera.
    pub camera: CameraId,
    /// The frame's stamp.
    pub stamp: Time,
    /// The frame's optical frame id.
    pub frame_id: String,
    /// What happened.
    pub state: TrackState,
    /// The keyframe `correspondences` and `pose` refer to; `None` when the frame had nothing
    /// to be matched against (its camera's first frame).
    pub keyframe: Option<KeyframeId>,
    /// The keyframe's optical frame id (of its camera).
    pub keyframe_frame_id: String,
    /// Set when this frame became a keyframe.
    pub promoted: Option<KeyframeId>,
    /// Matches against `keyframe` (image 0 = keyframe) with inlier flags.
    pub correspondences: Vec<Correspondence>,
    /// Verified pose relative to `keyframe` (`None` when lost or without a keyframe).
    pub pose: Option<TrackedPose>,
    /// Quality against `keyframe`.
    pub quality: TrackQuality,
    /// Why tracking failed, a keyframe was promoted or a relocalization was accepted (`None`
    /// when tracking normally).
    pub reason: Option<String>,
    /// What the integrity checks measured on the pose reported (`None` when they did not run:
    /// no pose with enough inliers, or `integrity.enabled` false).
    pub integrity: Option<IntegrityReport>,
    /// Frames of this camera in a row without a verified pose, this one included.
    pub lost_streak: u32,
    /// Keyframes tried by a relocalization, in the order they were matched.
    pub relocalization: Vec<RelocalizationCandidate>,
    /// What the metric path did (`None` for a monocular camera matched against a keyframe
    /// without metric depth, or without a keyframe to match).
    pub metric: Option<MetricReport>,
    /// Keyframes stored (all cameras) after this frame.
    pub keyframes_stored: usize,
    /// The frame's pixels.
    pub image: Arc<RgbImage>,
    /// The keyframe's pixels (with `keyframe`).
    pub keyframe_image: Option<Arc<RgbImage>>,
    /// Stage timings.
    pub timings: TrackTimings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_frame_names_round_trip() {
        let id = KeyframeId {
            camera: "front/left".into(),
            stamp: Time {
                sec: 1_700_000_000,
                nanosec: 5,
            },
        };
        assert_eq!(id.frame_name(), "front/left/keyframe/1700000000.000000005");
        assert_eq!(KeyframeId::parse_frame_name(&id.frame_name()), Some(id));
        assert_eq!(KeyframeId::parse_frame_name("cam0/keyframe/1.5"), None);
        assert_eq!(KeyframeId::parse_frame_name("cam0_optical"), None);
    }
}
