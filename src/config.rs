//! The one configuration type that the YAML files, the ROS parameters and the CLI flags fill.
//!
//! `config/matcher.yaml` is a ROS 2 parameter file (`imd_matcher: ros__parameters: {...}`) so
//! that `ros2 launch` can pass it as is; [`ImdConfig::from_yaml_str`] also accepts the bare
//! mapping. ROS parameters are flat dotted names (`model.device`); [`ImdConfig::from_flat`]
//! rebuilds the nested form from them, so both paths share one serde schema.
//!
//! Configuration sits below the pipeline, the node and the binaries it configures: a section
//! whose layer is lower (model, geometry, io's camera streams) is defined there, the tracker's
//! section is defined here ([`TrackerConfig`]).

mod integrity;
mod tracker;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::io::frames::CameraConfig;
use crate::io::frames::{MetricSource, RigExtrinsic, StereoConfig};
pub use integrity::{IntegrityConfig, LostOutput};
pub use tracker::TrackerConfig;

/// Errors reading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("config: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// Everything a user can configure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImdConfig {
    /// Network, weights, device and matching thresholds.
    pub model: crate::model::ModelOptions,
    /// Relative-pose estimation (RANSAC, refinement, model selection).
    pub pose: crate::geometry::PoseOptions,
    /// Metric pose (PnP) of cameras with depth or a stereo partner: keyframe points in metres,
    /// current pixels.
    pub absolute_pose: crate::geometry::AbsolutePoseOptions,
    /// Which depths count as valid (depth cameras and triangulated stereo points).
    pub depth: crate::geometry::DepthOptions,
    /// Stereo triangulation thresholds.
    pub stereo: crate::geometry::StereoOptions,
    /// Keyframe policy, relocalization and the keyframe store.
    pub tracker: TrackerConfig,
    /// Pose checks that do not trust the matcher, covariance calibration, what a lost frame
    /// publishes.
    pub integrity: IntegrityConfig,
    /// The cameras to subscribe to (parallel lists, as ROS parameters must be flat).
    pub cameras: CamerasConfig,
    /// ROS node behaviour: QoS, sync, output frames and topics.
    pub node: NodeConfig,
    /// A saved keyframe map to build or to localize in.
    pub map: MapConfig,
}

impl ImdConfig {
    /// The cameras to process: the parallel lists lined up ([`CamerasConfig::resolve`]) and at
    /// least one camera. Resolved once at startup (node, replay); the list is then passed on.
    pub fn cameras(&self) -> Result<Vec<CameraConfig>, ConfigError> {
        let cameras = self.cameras.resolve()?;
        if cameras.is_empty() {
            return Err(ConfigError::Invalid {
                field: "cameras.image_topics".into(),
                reason: "is empty; expected at least one camera (and as many \
                         cameras.camera_info_topics)"
                    .into(),
            });
        }
        Ok(cameras)
    }
}

/// Cameras as parallel lists: entry `i` of every list describes camera `i`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CamerasConfig {
    /// Camera ids (used in outputs and as keyframe identity).
    pub names: Vec<String>,
    /// `sensor_msgs/Image` (or `CompressedImage` when it ends in `/compressed`) topics.
    pub image_topics: Vec<String>,
    /// `sensor_msgs/CameraInfo` topics.
    pub camera_info_topics: Vec<String>,
    /// Optical frame ids; empty entries mean "use the image header's frame_id".
    pub optical_frames: Vec<String>,
    /// Aligned depth topics (`sensor_msgs/Image`, 16UC1 mm or 32FC1 m, registered to the colour
    /// camera); empty entries: no depth for that camera.
    pub depth_topics: Vec<String>,
    /// Right-camera image topics of stereo rigs (the listed camera is the left one); empty
    /// entries: no stereo partner.
    pub right_image_topics: Vec<String>,
    /// Right-camera camera_info topics, one per right image topic.
    pub right_camera_info_topics: Vec<String>,
    /// Right-from-left extrinsics for stereo rigs with raw (unrectified) images, 7 numbers per
    /// camera: `x y z` (metres) `qx qy qz qw` with `X_right = R·X_left + t`. Empty, or all seven
    /// 0 for a camera: the baseline comes from the right camera_info's `P` (rectified images).
    pub right_from_left: Vec<f64>,
    /// Fallback camera mounts when TF has none, 7 numbers per camera: the optical frame's pose
    /// in `node.base_frame`, `x y z` (metres) `qx qy qz qw` with `X_base = R·X_optical + t`
    /// (REP 103: the optical frame looks along +z, x right, y down). Empty, or all seven 0 for
    /// a camera: TF only (`node.base_frame → <optical frame>`).
    pub mounts: Vec<f64>,
}

impl CamerasConfig {
    /// The cameras, checking that the lists line up.
    pub fn resolve(&self) -> Result<Vec<CameraConfig>, ConfigError> {
        let n = self.image_topics.len();
        let check = |field: &str, len: usize, allow_empty: bool| {
            if len == n || (allow_empty && len == 0) {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    field: format!("cameras.{field}"),
                    reason: format!("has {len} entries, expected {n} (one per image topic)"),
                })
            }
        };
        check("names", self.names.len(), true)?;
        check("camera_info_topics", self.camera_info_topics.len(), false)?;
        check("optical_frames", self.optical_frames.len(), true)?;
        check("depth_topics", self.depth_topics.len(), true)?;
        check("right_image_topics", self.right_image_topics.len(), true)?;
        check(
            "right_camera_info_topics",
            self.right_camera_info_topics.len(),
            self.right_image_topics.is_empty(),
        )?;
        for (field, list) in [
            ("right_from_left", &self.right_from_left),
            ("mounts", &self.mounts),
        ] {
            if !list.is_empty() && list.len() != 7 * n {
                return Err(ConfigError::Invalid {
                    field: format!("cameras.{field}"),
                    reason: format!(
                        "has {} numbers, expected 7 per camera ({}: x y z qx qy qz qw)",
                        list.len(),
                        7 * n
                    ),
                });
            }
        }
        (0..n).map(|i| self.camera(i)).collect()
    }

    fn camera(&self, i: usize) -> Result<CameraConfig, ConfigError> {
        let entry = |list: &[String]| list.get(i).filter(|s| !s.is_empty()).cloned();
        let name = entry(&self.names).unwrap_or_else(|| format!("cam{i}"));
        let depth = entry(&self.depth_topics);
        let right_image = entry(&self.right_image_topics);
        let right_info = entry(&self.right_camera_info_topics);
        let metric = match (depth, right_image, right_info) {
            (None, None, None) => MetricSource::Monocular,
            (Some(topic), None, None) => MetricSource::Depth { topic },
            (None, Some(image_topic), Some(camera_info_topic)) => {
                MetricSource::Stereo(StereoConfig {
                    image_topic,
                    camera_info_topic,
                    right_from_left: extrinsic("right_from_left", &self.right_from_left, i)?,
                })
            }
            (Some(_), Some(_), _) => {
                return Err(ConfigError::Invalid {
                    field: format!("cameras.depth_topics[{i}]"),
                    reason: format!(
                        "camera {name} has both a depth topic and a right camera; expected one \
                         source of metric scale"
                    ),
                })
            }
            (_, image, _) => {
                let (field, other) = if image.is_some() {
                    ("right_camera_info_topics", "right_image_topics")
                } else {
                    ("right_image_topics", "right_camera_info_topics")
                };
                return Err(ConfigError::Invalid {
                    field: format!("cameras.{field}[{i}]"),
                    reason: format!(
                        "is empty for camera {name} while cameras.{other}[{i}] is set; a stereo \
                         partner needs both its image and its camera_info topic"
                    ),
                });
            }
        };
        Ok(CameraConfig {
            name,
            image_topic: self.image_topics[i].clone(),
            camera_info_topic: self.camera_info_topics[i].clone(),
            optical_frame: entry(&self.optical_frames),
            metric,
            mount: extrinsic("mounts", &self.mounts, i)?,
        })
    }
}

/// Camera `i`'s 7 numbers of the list `cameras.<name>`; `None` when absent or all zero.
fn extrinsic(name: &str, list: &[f64], i: usize) -> Result<Option<RigExtrinsic>, ConfigError> {
    let Some(v) = list.get(7 * i..7 * i + 7) else {
        return Ok(None);
    };
    if v.iter().all(|x| *x == 0.0) {
        return Ok(None);
    }
    let field = || format!("cameras.{name}[{}..{}]", 7 * i, 7 * i + 7);
    if !v.iter().all(|x| x.is_finite()) {
        return Err(ConfigError::Invalid {
            field: field(),
            reason: format!("{v:?} is not finite"),
        });
    }
    let q_norm = v[3..].iter().map(|x| x * x).sum::<f64>().sqrt();
    if (q_norm - 1.0).abs() > 1e-3 {
        return Err(ConfigError::Invalid {
            field: field(),
            reason: format!(
                "quaternion ({}, {}, {}, {}) has norm {q_norm:.6}; expected a unit quaternion",
                v[3], v[4], v[5], v[6]
            ),
        });
    }
    Ok(Some(RigExtrinsic {
        translation_m: [v[0], v[1], v[2]],
        rotation_xyzw: [v[3] / q_norm, v[4] / q_norm, v[5] / q_norm, v[6] / q_norm],
    }))
}

/// What the node does with its saved map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapMode {
    /// Build a map from this run's keyframes; `~/save_map` writes it to `map.path`.
    #[default]
    Mapping,
    /// Localize in the map at `map.path`, read-only.
    Localization,
}

impl MapMode {
    /// `mapping` or `localization`.
    pub fn as_str(self) -> &'static str {
        match self {
            MapMode::Mapping => "mapping",
            MapMode::Localization => "localization",
        }
    }
}

/// A saved keyframe map (`imd::pipeline::map`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapConfig {
    /// The map folder (empty: no map).
    pub path: String,
    /// `mapping` or `localization`.
    pub mode: MapMode,
    /// The map frame (REP 105 `map`): the parent of `map → odom` on `/tf` and the frame of
    /// `~/map_pose`.
    pub frame_id: String,
    /// Broadcast `map → odom` on `/tf` (localizing: the correction; mapping: the identity; off
    /// when another node owns it).
    pub publish_tf: bool,
    /// Mapping: `~/save_map` may replace a map at `path` that this run did not write (off: it
    /// refuses, and the map there stays).
    pub overwrite: bool,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            path: String::new(),
            mode: MapMode::Mapping,
            frame_id: "map".into(),
            publish_tf: true,
            overwrite: false,
        }
    }
}

/// QoS reliability for the camera subscriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QosPreset {
    /// Best effort, keep last 5 (`rmw_qos_profile_sensor_data`).
    #[default]
    SensorData,
    /// Reliable, keep last 10.
    Reliable,
}

/// ROS node behaviour that does not belong to the tracker itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// QoS of image and camera_info subscriptions.
    pub qos: QosPreset,
    /// Largest |stamp(image) − stamp(camera_info)| accepted as a pair, seconds.
    pub sync_tolerance_s: f64,
    /// Debug: broadcast each keyframe → current camera transform on `/tf` (one new TF root per
    /// keyframe, so TF grows with the run; the robot's transform is `publish_odom_tf`).
    pub publish_tf: bool,
    /// Publish the debug image with matches drawn.
    pub publish_debug_image: bool,
    /// Upper bound on processed frames per second per camera (0 = as fast as possible).
    pub max_rate_hz: f64,
    /// The fixed frame metric odometry is expressed in (REP 105 `odom`).
    pub odom_frame: String,
    /// The robot's body frame (REP 105 `base_link`): camera mounts are looked up from it.
    pub base_frame: String,
    /// Broadcast `odom_frame → base_frame` on `/tf` (off when another node owns it).
    pub publish_odom_tf: bool,
    /// The camera (by name) whose chain drives `~/odom`, `~/path` and the odometry TF; empty:
    /// the first metric camera.
    pub odom_camera: String,
    /// Poses kept in `~/path` (0 = no `~/path`).
    pub path_length: u32,
    /// While no pose is verified, the held pose's position standard deviation grows at this
    /// speed (m/s): the fastest the robot may move unseen.
    pub hold_speed_mps: f64,
    /// Likewise for its rotation, degrees per second.
    pub hold_turn_rate_dps: f64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            qos: QosPreset::SensorData,
            sync_tolerance_s: 0.02,
            publish_tf: false,
            publish_debug_image: true,
            max_rate_hz: 0.0,
            odom_frame: "odom".into(),
            base_frame: "base_link".into(),
            publish_odom_tf: true,
            odom_camera: String::new(),
            path_length: 1000,
            hold_speed_mps: 1.0,
            hold_turn_rate_dps: 90.0,
        }
    }
}

impl ImdConfig {
    /// Read a YAML file: a ROS 2 parameter file or the bare mapping.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::io::paths::read_text_capped(path, "a configuration file", 16 << 20)
            .map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.reason,
            })?;
        Self::from_yaml_str(&text).map_err(|e| match e {
            ConfigError::File { reason, .. } => ConfigError::File {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parse YAML text: `{node_name: {ros__parameters: {...}}}`, `{/**: {ros__parameters: ...}}`
    /// or the bare mapping.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        let err = |reason: String| ConfigError::File {
            path: "<yaml>".into(),
            reason,
        };
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| err(e.to_string()))?;
        let body = ros_parameters_body(&value).unwrap_or(value);
        let config: ImdConfig = serde_yaml::from_value(body).map_err(|e| err(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Build from flat dotted parameter names (as ROS 2 parameters are stored).
    pub fn from_flat<I>(params: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, serde_json::Value)>,
    {
        let mut root = serde_json::Map::new();
        for (name, value) in params {
            if name == "use_sim_time" {
                continue; // ROS-level parameter, not ours
            }
            insert_dotted(&mut root, &name, value)?;
        }
        let config: ImdConfig =
            serde_json::from_value(serde_json::Value::Object(root)).map_err(|e| {
                ConfigError::Invalid {
                    field: "parameters".into(),
                    reason: e.to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Flatten to dotted names (the ROS parameters the node declares).
    pub fn to_flat(&self) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        // Serializing a plain config cannot fail: every field is a number, string, bool or list.
        if let Ok(value) = serde_json::to_value(self) {
            flatten("", &value, &mut out);
        }
        out
    }

    /// Cross-field checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.cameras.resolve()?;
        self.pose.validate().map_err(|e| ConfigError::Invalid {
            field: "pose".into(),
            reason: e.to_string(),
        })?;
        self.model
            .validate_ranges()
            .map_err(|e| ConfigError::Invalid {
                field: "model".into(),
                reason: e.to_string(),
            })?;
        self.tracker.validate()?;
        self.integrity.validate()?;
        for (field, result) in [
            ("absolute_pose", self.absolute_pose.validate()),
            ("depth", self.depth.validate()),
            ("stereo", self.stereo.validate()),
        ] {
            result.map_err(|e| ConfigError::Invalid {
                field: field.into(),
                reason: e.to_string(),
            })?;
        }
        self.node.validate()?;
        self.validate_odometry_camera()
    }

    /// `node.odom_camera` names a metric camera (the chain needs metric scale).
    fn validate_odometry_camera(&self) -> Result<(), ConfigError> {
        let wanted = self.node.odom_camera.trim();
        if wanted.is_empty() {
            return Ok(());
        }
        let cameras = self.cameras.resolve()?;
        match cameras.iter().find(|c| c.name == wanted) {
            Some(c) if c.metric != MetricSource::Monocular => Ok(()),
            Some(_) => Err(ConfigError::Invalid {
                field: "node.odom_camera".into(),
                reason: format!(
                    "camera `{wanted}` is monocular; odometry needs metric scale (give it \
                     cameras.depth_topics or a stereo partner)"
                ),
            }),
            None => Err(ConfigError::Invalid {
                field: "node.odom_camera".into(),
                reason: format!(
                    "no camera named `{wanted}`; expected one of [{}] or empty for the first \
                     metric camera",
                    cameras
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
}

impl NodeConfig {
    /// Finite tolerances and rates, usable frame names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            field: format!("node.{field}"),
            reason,
        };
        for (field, value) in [
            ("sync_tolerance_s", self.sync_tolerance_s),
            ("hold_speed_mps", self.hold_speed_mps),
            ("hold_turn_rate_dps", self.hold_turn_rate_dps),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(invalid(
                    field,
                    format!("{value} is not a finite number ≥ 0"),
                ));
            }
        }
        for (field, name) in [
            ("odom_frame", &self.odom_frame),
            ("base_frame", &self.base_frame),
        ] {
            if name.trim_start_matches('/').is_empty() || name.contains(char::is_whitespace) {
                return Err(invalid(
                    field,
                    format!("`{name}` is not a frame name (non-empty, no spaces)"),
                ));
            }
        }
        if self.odom_frame.trim_start_matches('/') == self.base_frame.trim_start_matches('/') {
            return Err(invalid(
                "base_frame",
                format!("equals node.odom_frame (`{}`)", self.odom_frame),
            ));
        }
        if self.path_length > MAX_PATH_LENGTH {
            return Err(invalid(
                "path_length",
                format!(
                    "{} poses would make every ~/path message megabytes; expected ≤ \
                     {MAX_PATH_LENGTH}",
                    self.path_length
                ),
            ));
        }
        Ok(())
    }
}

/// Upper bound on `node.path_length` (100 000 poses are a 6 MB message).
pub const MAX_PATH_LENGTH: u32 = 100_000;

fn ros_parameters_body(value: &serde_yaml::Value) -> Option<serde_yaml::Value> {
    let map = value.as_mapping()?;
    if map.len() != 1 {
        return None;
    }
    let (_, node) = map.iter().next()?;
    node.as_mapping()?.get("ros__parameters").cloned()
}

fn insert_dotted(
    root: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    value: serde_json::Value,
) -> Result<(), ConfigError> {
    let mut parts = name.split('.').peekable();
    let mut map = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = map
            .entry(part.to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        map = entry.as_object_mut().ok_or_else(|| ConfigError::Invalid {
            field: name.to_string(),
            reason: format!("`{part}` is both a value and a group"),
        })?;
    }
    Ok(())
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cameras(yaml: &str) -> Result<Vec<CameraConfig>, ConfigError> {
        ImdConfig::from_yaml_str(yaml).and_then(|c| c.cameras())
    }

    #[test]
    fn metric_sources_come_from_the_parallel_lists() {
        let c = cameras(
            "cameras:
               image_topics: [/a/image, /b/image, /c/image]
               camera_info_topics: [/a/info, /b/info, /c/info]
               depth_topics: ['', /b/depth, '']
               right_image_topics: ['', '', /c/right/image]
               right_camera_info_topics: ['', '', /c/right/info]
               right_from_left: [0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0, 0, 0, 0,
                                 -0.1, 0, 0, 0, 0, 0.6, 0.8]",
        )
        .unwrap();
        assert_eq!(c[0].metric, MetricSource::Monocular);
        assert_eq!(
            c[1].metric,
            MetricSource::Depth {
                topic: "/b/depth".into()
            }
        );
        let MetricSource::Stereo(s) = &c[2].metric else {
            panic!("{:?}", c[2].metric)
        };
        assert_eq!(s.camera_info_topic, "/c/right/info");
        assert_eq!(
            c[2].topics(),
            ["/c/image", "/c/info", "/c/right/image", "/c/right/info"]
        );
        let e = s.right_from_left.unwrap();
        assert_eq!(e.translation_m, [-0.1, 0.0, 0.0]);
        assert_eq!(e.rotation_xyzw, [0.0, 0.0, 0.6, 0.8]);
        // All-zero slices: no extrinsic for those cameras (their P gives the baseline).
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn inconsistent_metric_lists_are_refused_with_the_field_named() {
        let base = "cameras:
               image_topics: [/a/image]
               camera_info_topics: [/a/info]\n";
        let cases = [
            ("               depth_topics: [/a/depth]\n               right_image_topics: [/a/r]\n               right_camera_info_topics: [/a/ri]", "depth_topics[0]"),
            ("               right_image_topics: [/a/r]", "right_camera_info_topics"),
            ("               right_image_topics: [/a/r]\n               right_camera_info_topics: ['']", "right_camera_info_topics[0]"),
            ("               depth_topics: [/a/d, /b/d]", "depth_topics"),
            ("               right_image_topics: [/a/r]\n               right_camera_info_topics: [/a/ri]\n               right_from_left: [0.1, 0, 0]", "right_from_left"),
            ("               right_image_topics: [/a/r]\n               right_camera_info_topics: [/a/ri]\n               right_from_left: [0.1, 0, 0, 0, 0, 0, 2]", "unit quaternion"),
            ("               right_image_topics: [/a/r]\n               right_camera_info_topics: [/a/ri]\n               right_from_left: [.nan, 0, 0, 0, 0, 0, 1]", "not finite"),
        ];
        for (extra, expected) in cases {
            let e = cameras(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(e.contains(expected), "{extra}: {e}");
        }
        let e = ImdConfig::from_yaml_str("depth:\n  max_m: 0.05")
            .unwrap_err()
            .to_string();
        assert!(e.contains("depth.max_m"), "{e}");
        let e = ImdConfig::from_yaml_str("stereo:\n  lookup_radius_px: 0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stereo.lookup_radius_px"), "{e}");
        for (yaml, field) in [
            ("guided_radius_px: -1", "stereo.guided_radius_px"),
            ("refine_radius_px: -0.5", "stereo.refine_radius_px"),
            ("refine_radius_px: .nan", "stereo.refine_radius_px"),
            ("slant_radius_px: -1", "stereo.slant_radius_px"),
            ("slant_radius_px: .nan", "stereo.slant_radius_px"),
            ("right_pixel_sigma_px: -0.1", "stereo.right_pixel_sigma_px"),
            ("right_pixel_sigma_px: .inf", "stereo.right_pixel_sigma_px"),
            ("guided_patch_radius: 0", "stereo.guided_patch_radius"),
            ("guided_patch_radius: 9", "stereo.guided_patch_radius"),
            (
                "guided_min_correlation: 1.5",
                "stereo.guided_min_correlation",
            ),
        ] {
            let e = ImdConfig::from_yaml_str(&format!("stereo:\n  {yaml}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{yaml}: {e}");
        }
        // 0 turns the guided search and the refinement off.
        assert!(ImdConfig::from_yaml_str("stereo:\n  guided_radius_px: 0").is_ok());
        assert!(ImdConfig::from_yaml_str("stereo:\n  refine_radius_px: 0").is_ok());
    }
}
