//! The messages of the odometry chain ([`super::odom`]): `~/odom`, `~/odom_pose`,
//! `~/camera_odom`, `~/path`, `odom → base_link` on `/tf`, and the chain's values in the
//! frame's status.

use nalgebra::Isometry3;

use super::contract::FrameOutputs;
use super::messages::UNKNOWN_VARIANCE;
use super::odom::{ChainState, ChainStep, PoseWithCov};
use super::topics::{Output, OutputMessage, Published};
use super::transforms::transform;
use super::TrackOutput;
use crate::config::NodeConfig;
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::KeyValue;
use crate::io::msgs::geometry_msgs::{
    Point, Pose, PoseStamped, PoseWithCovariance, PoseWithCovarianceStamped, Quaternion,
    TransformStamped, TwistWithCovariance,
};
use crate::io::msgs::nav_msgs::{Odometry, Path};
use crate::io::msgs::std_msgs::Header;
use crate::io::msgs::tf2_msgs::TFMessage;

/// Add the chain's messages for `out` to `outputs`: `~/odom`, `~/odom_pose` (and
/// `odom → base_link` on `/tf`, `~/path`) when this camera drives the odometry,
/// `~/camera_odom` always, and the chain's state in the frame's status.
pub fn add_odom_messages<'a>(
    outputs: &mut FrameOutputs,
    out: &TrackOutput,
    step: &ChainStep,
    node: &NodeConfig,
    path: impl Iterator<Item = &'a (Time, Isometry3<f64>)>,
) {
    let header = |frame: &str| Header {
        stamp: out.stamp,
        frame_id: frame.to_string(),
    };
    let mut added = Vec::new();
    if step.drives {
        added.push(Published::new(
            Output::Odom,
            odometry(header(&node.odom_frame), &node.base_frame, &step.base),
        ));
        added.push(Published::new(
            Output::OdomPose,
            pose_with_covariance(header(&node.odom_frame), &step.base),
        ));
    }
    added.push(Published::new(
        Output::CameraOdom,
        odometry(header(&node.odom_frame), &out.frame_id, &step.camera),
    ));
    if step.drives && node.publish_odom_tf {
        let robot = TransformStamped {
            header: header(&node.odom_frame),
            child_frame_id: node.base_frame.clone(),
            transform: transform(&step.base.pose),
        };
        // One `/tf` message per frame: join the keyframe transforms when they are on.
        let tf = outputs
            .messages
            .iter_mut()
            .find_map(|p| match &mut p.message {
                OutputMessage::TFMessage(m) if p.output == Output::Tf => Some(m),
                _ => None,
            });
        match tf {
            Some(m) => m.transforms.insert(0, robot),
            None => added.push(Published::new(
                Output::Tf,
                TFMessage {
                    transforms: vec![robot],
                },
            )),
        }
    }
    // After the keyframe-relative pose (the first message, when there is one), before the
    // larger messages.
    let at = outputs
        .messages
        .iter()
        .position(|p| p.output != Output::Odometry && p.output != Output::Tf)
        .unwrap_or(outputs.messages.len());
    outputs.messages.splice(at..at, added);
    if step.drives && node.path_length > 0 {
        outputs.messages.push(Published::new(
            Output::Path,
            Path {
                header: header(&node.odom_frame),
                poses: path
                    .map(|(stamp, pose)| PoseStamped {
                        header: Header {
                            stamp: *stamp,
                            frame_id: node.odom_frame.clone(),
                        },
                        pose: pose_msg(pose),
                    })
                    .collect(),
            },
        ));
    }
    if let Some(status) = outputs.diagnostics.first_mut() {
        status.values.extend(chain_values(step));
    }
}

/// `nav_msgs/Odometry` of `pose` (child frame `child` in `header.frame_id`); the twist is
/// not estimated (unknown covariance).
fn odometry(header: Header, child: &str, pose: &PoseWithCov) -> Odometry {
    Odometry {
        header,
        child_frame_id: child.to_string(),
        pose: PoseWithCovariance {
            pose: pose_msg(&pose.pose),
            covariance: pose.covariance_array(),
        },
        twist: TwistWithCovariance {
            covariance: {
                let mut c = [0.0; 36];
                for i in 0..6 {
                    c[i * 7] = UNKNOWN_VARIANCE;
                }
                c
            },
            ..Default::default()
        },
    }
}

/// `geometry_msgs/PoseWithCovarianceStamped` of `pose` in `header.frame_id`.
fn pose_with_covariance(header: Header, pose: &PoseWithCov) -> PoseWithCovarianceStamped {
    PoseWithCovarianceStamped {
        header,
        pose: PoseWithCovariance {
            pose: pose_msg(&pose.pose),
            covariance: pose.covariance_array(),
        },
    }
}

/// `geometry_msgs/Pose` of `pose`.
pub(crate) fn pose_msg(pose: &Isometry3<f64>) -> Pose {
    let t = transform(pose);
    Pose {
        position: Point {
            x: t.translation.x,
            y: t.translation.y,
            z: t.translation.z,
        },
        orientation: Quaternion {
            x: t.rotation.x,
            y: t.rotation.y,
            z: t.rotation.z,
            w: t.rotation.w,
        },
    }
}

/// The chain's state for the status: what it did, the robot's position and its standard
/// deviation, the correction of a re-anchoring, the mount's source.
fn chain_values(step: &ChainStep) -> Vec<KeyValue> {
    let p = step.base.pose.translation.vector;
    let sigma = |range: std::ops::Range<usize>| {
        range
            .map(|i| step.base.covariance[(i, i)].max(0.0))
            .sum::<f64>()
            .sqrt()
    };
    let mut values = vec![
        KeyValue::new("odom_state", step.state.as_str()),
        KeyValue::new("odom_drives", if step.drives { "true" } else { "false" }),
        KeyValue::new(
            "odom_base_position_m",
            format!("{:.4} {:.4} {:.4}", p.x, p.y, p.z),
        ),
        KeyValue::new("odom_position_sigma_m", format!("{:.4}", sigma(0..3))),
        KeyValue::new(
            "odom_rotation_sigma_deg",
            format!("{:.4}", sigma(3..6).to_degrees()),
        ),
        KeyValue::new("odom_mount", step.mount.as_str()),
    ];
    match step.state {
        ChainState::Holding { for_s } => {
            values.push(KeyValue::new("odom_holding_s", format!("{for_s:.3}")));
        }
        ChainState::Reanchored {
            correction_m,
            correction_deg,
        } => {
            values.push(KeyValue::new(
                "odom_correction_m",
                format!("{correction_m:.4}"),
            ));
            values.push(KeyValue::new(
                "odom_correction_deg",
                format!("{correction_deg:.3}"),
            ));
        }
        _ => {}
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix6, Vector3};

    #[test]
    fn odom_pose_carries_odoms_header_pose_and_covariance() {
        let mut covariance = Matrix6::from_fn(|i, j| 0.01 * (i + 1) as f64 + 0.001 * j as f64);
        covariance = (covariance + covariance.transpose()) / 2.0;
        let base = PoseWithCov {
            pose: Isometry3::new(Vector3::new(1.0, -2.0, 0.5), Vector3::new(0.1, 0.2, -0.3)),
            covariance,
        };
        let header = Header {
            stamp: Time { sec: 7, nanosec: 5 },
            frame_id: "odom".into(),
        };
        let odom = odometry(header.clone(), "base_link", &base);
        let pose = pose_with_covariance(header, &base);
        assert_eq!(pose.header, odom.header);
        assert_eq!(pose.pose, odom.pose);
        // ROS order: row-major 6×6 of (x, y, z, rotation about x, y, z).
        assert_eq!(pose.pose.covariance[6 + 2], covariance[(1, 2)]);
        assert_eq!(pose.pose.pose.position.y, -2.0);
    }
}
