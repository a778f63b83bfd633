//! The messages of a run with a saved map ([`super::session`]): `~/map_pose` (the robot's base
//! in the map, with covariance), `map → odom` on `/tf` (REP 105: the localizer owns `map →
//! odom`, the odometry `odom → base_link`) and the map's status on `/diagnostics`.
//!
//! The map frame's name is `map.frame_id` (default `map`): the poses are those of the map's
//! keyframes, whatever the frame was called in the run that built it.

use std::path::Path;

use nalgebra::Isometry3;

use super::super::contract::FrameOutputs;
use super::super::odom::PoseWithCov;
use super::super::odom_messages::pose_msg;
use super::super::topics::{Output, OutputMessage, Published};
use super::super::transforms::transform;
use super::super::KeyframeId;
use super::{MapCounters, MapMode};
use crate::config::{MapConfig, NodeConfig};
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::{DiagnosticStatus, KeyValue};
use crate::io::msgs::geometry_msgs::{
    PoseWithCovariance, PoseWithCovarianceStamped, TransformStamped,
};
use crate::io::msgs::std_msgs::Header;
use crate::io::msgs::tf2_msgs::TFMessage;

/// The name of the map's status on `/diagnostics`.
pub const MAP_STATUS_NAME: &str = "imd_matcher: map";

/// The robot's base in the map from its camera's optical frame in the map and the camera's
/// mount (`base_T_optical`): `map_T_base = map_T_optical ∘ base_T_optical⁻¹`. The mount is
/// taken as exact, so the covariance is the camera's moved to the base (the lever arm turns
/// rotation uncertainty into position uncertainty).
pub fn base_in_map(camera_in_map: &PoseWithCov, base_from_optical: &Isometry3<f64>) -> PoseWithCov {
    camera_in_map.compose(&PoseWithCov::exact(base_from_optical.inverse()))
}

/// `map → odom`: the odom frame's pose in the map from one camera's pose in both,
/// `map_T_odom = map_T_camera ∘ odom_T_camera⁻¹`.
pub fn map_from_odom(
    camera_in_map: &Isometry3<f64>,
    camera_in_odom: &Isometry3<f64>,
) -> Isometry3<f64> {
    camera_in_map * camera_in_odom.inverse()
}

/// `~/map_pose`: the robot's base in `map_frame` with its covariance (ROS order).
pub fn map_pose_message(
    stamp: Time,
    map_frame: &str,
    base: &PoseWithCov,
) -> PoseWithCovarianceStamped {
    PoseWithCovarianceStamped {
        header: Header {
            stamp,
            frame_id: map_frame.to_string(),
        },
        pose: PoseWithCovariance {
            pose: pose_msg(&base.pose),
            covariance: base.covariance_array(),
        },
    }
}

/// `map_frame → odom_frame` at `stamp`.
pub fn map_to_odom_transform(
    stamp: Time,
    map_frame: &str,
    odom_frame: &str,
    map_from_odom: &Isometry3<f64>,
) -> TransformStamped {
    TransformStamped {
        header: Header {
            stamp,
            frame_id: map_frame.to_string(),
        },
        child_frame_id: odom_frame.to_string(),
        transform: transform(map_from_odom),
    }
}

/// What a frame contributes to the map's messages.
#[derive(Debug, Clone, Copy)]
pub struct MapFrame<'a> {
    /// The frame's stamp.
    pub stamp: Time,
    /// The robot's base in the map when this frame is localized in it (localization mode).
    pub base_in_map: Option<&'a PoseWithCov>,
    /// `map → odom` when this frame drives `~/odom` and the odometry camera has localized (or
    /// the identity, mapping).
    pub map_from_odom: Option<&'a Isometry3<f64>>,
}

/// Add `~/map_pose` (when the frame is localized) and `map → odom` (when it drives `~/odom`,
/// the map has placed odom, `map.publish_tf`, and `map.frame_id` is not `node.odom_frame`) to
/// `outputs`. `map → odom` joins the frame's
/// `/tf` message when it has one (one `/tf` message per frame); the new messages go after the
/// poses, before the larger messages.
pub fn add_map_messages(
    outputs: &mut FrameOutputs,
    frame: &MapFrame<'_>,
    map: &MapConfig,
    node: &NodeConfig,
) {
    let mut added = Vec::new();
    if let Some(base) = frame.base_in_map {
        added.push(Published::new(
            Output::MapPose,
            map_pose_message(frame.stamp, &map.frame_id, base),
        ));
    }
    // A map frame named like odom would be a transform of a frame to itself, which TF refuses.
    let publish_tf = map.publish_tf && map.frame_id != node.odom_frame;
    if let Some(t) = frame.map_from_odom.filter(|_| publish_tf) {
        let tf = map_to_odom_transform(frame.stamp, &map.frame_id, &node.odom_frame, t);
        let existing = outputs
            .messages
            .iter_mut()
            .find_map(|p| match &mut p.message {
                OutputMessage::TFMessage(m) if p.output == Output::Tf => Some(m),
                _ => None,
            });
        match existing {
            Some(m) => m.transforms.push(tf),
            None => added.push(Published::new(
                Output::Tf,
                TFMessage {
                    transforms: vec![tf],
                },
            )),
        }
    }
    let at = outputs
        .messages
        .iter()
        .position(|p| {
            matches!(
                p.output,
                Output::Correspondences | Output::DebugImage | Output::Path
            )
        })
        .unwrap_or(outputs.messages.len());
    outputs.messages.splice(at..at, added);
}

/// The last frame localized in the map.
#[derive(Debug, Clone, PartialEq)]
pub struct LastLocalized {
    /// Its camera's name.
    pub camera: String,
    /// Its stamp.
    pub stamp: Time,
    /// The keyframe it was measured against.
    pub keyframe: KeyframeId,
    /// That keyframe is one of the map's (not a transient one).
    pub against_map_keyframe: bool,
    /// The robot's base in the map (`None` before the camera's mount is known).
    pub base_in_map: Option<PoseWithCov>,
}

/// The map's state after a frame, for [`map_status`].
#[derive(Debug, Clone, Copy)]
pub struct MapState<'a> {
    /// Mapping or localization.
    pub mode: MapMode,
    /// `map.path` (`None`: a map without a path, `imd map build` before `--out` is written).
    pub path: Option<&'a Path>,
    /// The map frame's name (`map.frame_id`).
    pub frame_id: &'a str,
    /// Keyframes in the map (loaded, or kept while mapping).
    pub map_keyframes: usize,
    /// The session's counters.
    pub counters: MapCounters,
    /// The frame's camera.
    pub camera: &'a str,
    /// This frame has a pose in the map.
    pub localized: bool,
    /// The last frame that had one.
    pub last: Option<&'a LastLocalized>,
    /// `map → odom` (localization, once the odometry camera localized).
    pub map_from_odom: Option<&'a Isometry3<f64>>,
}

/// `imd_matcher: map`: OK while mapping or when the frame is localized, WARN when a
/// localizing camera's frame is not (yet) in the map. Keys are documented in docs/ros.md
/// ("Saved maps").
pub fn map_status(s: &MapState<'_>) -> DiagnosticStatus {
    let (level, message) = match (s.mode, s.localized) {
        (MapMode::Mapping, _) => (
            DiagnosticStatus::OK,
            format!("mapping: {} keyframe(s) kept for the map", s.map_keyframes),
        ),
        (MapMode::Localization, true) => (
            DiagnosticStatus::OK,
            format!("localized: {} in the map", s.camera),
        ),
        (MapMode::Localization, false) => (
            DiagnosticStatus::WARN,
            format!("not localized: {} has no pose in the map", s.camera),
        ),
    };
    let last = s.last;
    let xyz = |v: &nalgebra::Vector3<f64>| format!("{:.4} {:.4} {:.4}", v.x, v.y, v.z);
    let base = last.and_then(|l| l.base_in_map.as_ref());
    let values = vec![
        KeyValue::new("map_mode", s.mode.as_str()),
        KeyValue::new(
            "map_path",
            s.path.map(|p| p.display().to_string()).unwrap_or_default(),
        ),
        KeyValue::new("map_frame", s.frame_id),
        KeyValue::new("map_keyframes", s.map_keyframes),
        KeyValue::new("map_localized", s.localized),
        KeyValue::new(
            "map_last_localized_camera",
            last.map(|l| l.camera.as_str()).unwrap_or_default(),
        ),
        KeyValue::new(
            "map_last_localized_stamp",
            last.map(|l| l.stamp.to_string()).unwrap_or_default(),
        ),
        KeyValue::new(
            "map_last_localized_keyframe",
            last.map(|l| l.keyframe.frame_name()).unwrap_or_default(),
        ),
        KeyValue::new(
            "map_last_against_map_keyframe",
            last.is_some_and(|l| l.against_map_keyframe),
        ),
        KeyValue::new(
            "map_base_position_m",
            base.map(|b| xyz(&b.pose.translation.vector))
                .unwrap_or_default(),
        ),
        KeyValue::new(
            "map_position_sigma_m",
            base.map(|b| {
                let var: f64 = (0..3).map(|i| b.covariance[(i, i)].max(0.0)).sum();
                format!("{:.4}", var.sqrt())
            })
            .unwrap_or_default(),
        ),
        KeyValue::new(
            "map_to_odom_m",
            s.map_from_odom
                .map(|t| xyz(&t.translation.vector))
                .unwrap_or_default(),
        ),
        KeyValue::new(
            "map_to_odom_deg",
            s.map_from_odom
                .map(|t| format!("{:.3}", t.rotation.angle().to_degrees()))
                .unwrap_or_default(),
        ),
        KeyValue::new("map_frames", s.counters.frames),
        KeyValue::new("map_localized_frames", s.counters.localized),
        KeyValue::new("map_relocalizations", s.counters.relocalized),
        KeyValue::new("map_mapped_keyframes", s.counters.mapped_keyframes),
    ];
    DiagnosticStatus {
        level,
        name: MAP_STATUS_NAME.into(),
        message,
        hardware_id: String::new(),
        values,
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::{Matrix6, Translation3, UnitQuaternion, Vector3};

    use super::*;

    fn yaw(deg: f64) -> UnitQuaternion<f64> {
        UnitQuaternion::from_axis_angle(&Vector3::z_axis(), deg.to_radians())
    }

    fn iso(x: f64, y: f64, z: f64, yaw_deg: f64) -> Isometry3<f64> {
        Isometry3::from_parts(Translation3::new(x, y, z), yaw(yaw_deg))
    }

    /// Position variance 1e-4 m², rotation variance 1e-6 rad², no correlation.
    fn camera_in_map() -> PoseWithCov {
        let mut covariance = Matrix6::zeros();
        for i in 0..3 {
            covariance[(i, i)] = 1e-4;
            covariance[(3 + i, 3 + i)] = 1e-6;
        }
        PoseWithCov {
            pose: iso(1.0, 2.0, 0.0, 90.0),
            covariance,
        }
    }

    fn value<'a>(s: &'a DiagnosticStatus, key: &str) -> &'a str {
        s.values
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
            .unwrap_or_else(|| panic!("no key {key}"))
    }

    #[test]
    fn base_in_map_moves_the_pose_and_its_covariance_through_the_mount() {
        // Camera 0.2 m ahead of the base and 0.5 m up, axes as the base's; the camera at
        // (1, 2, 0) in the map, turned 90° left. By hand: the base is 0.2 m behind the
        // camera along the camera's x (the map's y after the turn) and 0.5 m below:
        // (1, 1.8, −0.5), turned 90° left too.
        let mount = iso(0.2, 0.0, 0.5, 0.0);
        let base = base_in_map(&camera_in_map(), &mount);
        let p = base.pose.translation.vector;
        assert!((p - Vector3::new(1.0, 1.8, -0.5)).norm() < 1e-12, "{p}");
        assert!(base.pose.rotation.angle_to(&yaw(90.0)) < 1e-12);
        // Lever arm l = R·(−0.2, 0, −0.5) = (0, −0.2, −0.5): the position covariance gains
        // σφ²·(|l|²·I − l·lᵀ) and the position–rotation block is −σφ²·[l]×.
        let c = &base.covariance;
        let s = 1e-6;
        for (i, lever_term) in [(0, 0.29), (1, 0.25), (2, 0.04)] {
            assert!((c[(i, i)] - (1e-4 + s * lever_term)).abs() < 1e-15, "{c}");
        }
        assert!((c[(1, 2)] - (-s * 0.1)).abs() < 1e-15, "{c}");
        assert!((c[(0, 4)] - (-s * 0.5)).abs() < 1e-15, "{c}");
        assert!((c[(0, 5)] - (s * 0.2)).abs() < 1e-15, "{c}");
        assert!((c[(4, 0)] - c[(0, 4)]).abs() < 1e-18, "symmetric");
        for i in 3..6 {
            assert!((c[(i, i)] - s).abs() < 1e-18, "rotation unchanged");
        }
    }

    #[test]
    fn map_from_odom_closes_the_loop_map_odom_base() {
        // A camera at (1, 0, 0) in odom, at (3, 1, 0) turned 90° left in the map: odom is at
        // (3, 1, 0) + R·(−1, 0, 0) = (3, 0, 0) in the map, turned 90° left.
        let t = map_from_odom(&iso(3.0, 1.0, 0.0, 90.0), &iso(1.0, 0.0, 0.0, 0.0));
        assert!((t.translation.vector - Vector3::new(3.0, 0.0, 0.0)).norm() < 1e-12);
        assert!(t.rotation.angle_to(&yaw(90.0)) < 1e-12);
        // Any base pose in odom maps through it onto the base pose in the map.
        let mount = iso(0.2, 0.0, 0.5, 0.0);
        let camera_odom = iso(1.0, 0.0, 0.0, 0.0);
        let base_odom = camera_odom * mount.inverse();
        let camera_map = PoseWithCov::exact(iso(3.0, 1.0, 0.0, 90.0));
        let base_map = base_in_map(&camera_map, &mount).pose;
        let via_odom = t * base_odom;
        assert!((via_odom.translation.vector - base_map.translation.vector).norm() < 1e-12);
        assert!(via_odom.rotation.angle_to(&base_map.rotation) < 1e-12);
    }

    #[test]
    fn messages_carry_the_map_frame_and_join_the_frames_tf() {
        let stamp = Time {
            sec: 1_700_000_000,
            nanosec: 5,
        };
        let base = base_in_map(&camera_in_map(), &iso(0.2, 0.0, 0.5, 0.0));
        let m = map_pose_message(stamp, "map", &base);
        assert_eq!(m.header.frame_id, "map");
        assert_eq!(m.header.stamp, stamp);
        let p = m.pose.pose.position;
        assert_eq!(
            [p.x, p.y, p.z].map(|v| (v * 1e9).round() / 1e9),
            [1.0, 1.8, -0.5]
        );
        let q = m.pose.pose.orientation;
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!((q.z - h).abs() < 1e-12 && (q.w - h).abs() < 1e-12 && q.x.abs() < 1e-12);
        assert_eq!(m.pose.covariance[0], base.covariance[(0, 0)]);
        assert_eq!(m.pose.covariance[4], base.covariance[(0, 4)]);

        let t = iso(3.0, 0.0, 0.0, 90.0);
        let node = NodeConfig::default();
        let map = MapConfig {
            frame_id: "world_map".into(),
            ..Default::default()
        };
        // The frame already has `odom → base_link`: `map → odom` joins that message, after it;
        // `~/map_pose` goes after the poses, before the correspondences.
        let robot = TransformStamped {
            header: Header {
                stamp,
                frame_id: "odom".into(),
            },
            child_frame_id: "base_link".into(),
            transform: transform(&Isometry3::identity()),
        };
        let mut outputs = FrameOutputs {
            stamp,
            messages: vec![
                Published::new(
                    Output::Tf,
                    TFMessage {
                        transforms: vec![robot],
                    },
                ),
                Published::new(
                    Output::Correspondences,
                    crate::io::msgs::sensor_msgs::PointCloud2::default(),
                ),
            ],
            ..Default::default()
        };
        let frame = MapFrame {
            stamp,
            base_in_map: Some(&base),
            map_from_odom: Some(&t),
        };
        add_map_messages(&mut outputs, &frame, &map, &node);
        let order: Vec<Output> = outputs.messages.iter().map(|p| p.output).collect();
        assert_eq!(
            order,
            [Output::Tf, Output::MapPose, Output::Correspondences]
        );
        let Some(OutputMessage::TFMessage(tf)) = outputs.message(Output::Tf) else {
            panic!("no /tf");
        };
        assert_eq!(tf.transforms.len(), 2);
        let m2o = &tf.transforms[1];
        assert_eq!(
            (m2o.header.frame_id.as_str(), m2o.child_frame_id.as_str()),
            ("world_map", "odom")
        );
        assert_eq!(
            [m2o.transform.translation.x, m2o.transform.translation.y],
            [3.0, 0.0]
        );
        let Some(OutputMessage::PoseWithCovarianceStamped(pose)) = outputs.message(Output::MapPose)
        else {
            panic!("no ~/map_pose");
        };
        assert_eq!(pose.header.frame_id, "world_map");

        // Without a /tf message of its own, and with `map.publish_tf` off.
        let mut alone = FrameOutputs::default();
        add_map_messages(&mut alone, &frame, &map, &node);
        assert_eq!(
            alone.messages.iter().map(|p| p.output).collect::<Vec<_>>(),
            [Output::MapPose, Output::Tf]
        );
        let off = MapConfig {
            publish_tf: false,
            ..map.clone()
        };
        let mut quiet = FrameOutputs::default();
        add_map_messages(&mut quiet, &frame, &off, &node);
        assert!(quiet.message(Output::Tf).is_none());
        assert!(quiet.message(Output::MapPose).is_some());
        // Not localized, odometry camera not placed: nothing.
        let mut none = FrameOutputs::default();
        let nothing = MapFrame {
            stamp,
            base_in_map: None,
            map_from_odom: None,
        };
        add_map_messages(&mut none, &nothing, &map, &node);
        assert!(none.messages.is_empty());
    }

    #[test]
    fn status_says_the_mode_the_last_localized_frame_and_the_counts() {
        let base = base_in_map(&camera_in_map(), &iso(0.2, 0.0, 0.5, 0.0));
        let last = LastLocalized {
            camera: "camB".into(),
            stamp: Time {
                sec: 1_700_000_030,
                nanosec: 100_000_000,
            },
            keyframe: KeyframeId {
                camera: "cam0".into(),
                stamp: Time {
                    sec: 1_700_000_000,
                    nanosec: 0,
                },
            },
            against_map_keyframe: true,
            base_in_map: Some(base),
        };
        let t = iso(3.0, 0.0, 0.0, 90.0);
        let path = Path::new("/maps/lab");
        let state = MapState {
            mode: MapMode::Localization,
            path: Some(path),
            frame_id: "map",
            map_keyframes: 5,
            counters: MapCounters {
                frames: 12,
                localized: 10,
                relocalized: 1,
                mapped_keyframes: 0,
            },
            camera: "camB",
            localized: true,
            last: Some(&last),
            map_from_odom: Some(&t),
        };
        let s = map_status(&state);
        assert_eq!(s.name, MAP_STATUS_NAME);
        assert_eq!(s.level, DiagnosticStatus::OK);
        assert_eq!(value(&s, "map_mode"), "localization");
        assert_eq!(value(&s, "map_path"), "/maps/lab");
        assert_eq!(value(&s, "map_keyframes"), "5");
        assert_eq!(value(&s, "map_localized"), "true");
        assert_eq!(value(&s, "map_last_localized_camera"), "camB");
        assert_eq!(
            value(&s, "map_last_localized_stamp"),
            "1700000030.100000000"
        );
        assert_eq!(
            value(&s, "map_last_localized_keyframe"),
            "cam0/keyframe/1700000000.000000000"
        );
        assert_eq!(value(&s, "map_base_position_m"), "1.0000 1.8000 -0.5000");
        // √(3·1e-4 + 1e-6·(0.29 + 0.25 + 0.04)) = 0.017337…
        assert_eq!(value(&s, "map_position_sigma_m"), "0.0173");
        assert_eq!(value(&s, "map_to_odom_m"), "3.0000 0.0000 0.0000");
        assert_eq!(value(&s, "map_to_odom_deg"), "90.000");
        assert_eq!(value(&s, "map_localized_frames"), "10");
        assert_eq!(value(&s, "map_relocalizations"), "1");

        let lost = map_status(&MapState {
            localized: false,
            ..state
        });
        assert_eq!(lost.level, DiagnosticStatus::WARN);
        assert_eq!(value(&lost, "map_localized"), "false");
        // The last localized frame is still reported.
        assert_eq!(value(&lost, "map_last_localized_camera"), "camB");
        let mapping = map_status(&MapState {
            mode: MapMode::Mapping,
            localized: false,
            last: None,
            map_from_odom: None,
            ..state
        });
        assert_eq!(mapping.level, DiagnosticStatus::OK);
        assert_eq!(value(&mapping, "map_mode"), "mapping");
        assert_eq!(value(&mapping, "map_to_odom_m"), "");
        assert_eq!(value(&mapping, "map_last_localized_camera"), "");
    }
}
