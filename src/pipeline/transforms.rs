//! [`TransformTree`]: the latest transform of every TF frame, from `/tf_static` and `/tf`
//! (live) or a bag's `/tf_static` (replay), and lookups between any two connected frames —
//! what the odometry needs to find each camera's mount on the robot.
//!
//! It keeps one transform per child frame (the latest): mounts are static or slow, and the
//! odometry looks a mount up once per camera, so no time interpolation is needed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};

use crate::io::msgs::geometry_msgs::Transform;
use crate::io::msgs::tf2_msgs::TFMessage;

/// The latched topic robots publish their fixed transforms (camera mounts) on.
pub const TF_STATIC_TOPIC: &str = "/tf_static";
/// The topic of moving transforms.
pub const TF_TOPIC: &str = "/tf";

/// Longest parent chain followed (a robot's TF tree is a few levels deep; a longer chain is a
/// loop in malformed input).
const MAX_DEPTH: usize = 64;

/// The TF tree: each child frame's parent and its pose in that parent.
#[derive(Debug, Clone, Default)]
pub struct TransformTree {
    parents: HashMap<String, (String, Isometry3<f64>)>,
}

/// A tree shared between the adapter that receives TF and the processor that reads it.
pub type SharedTransforms = Arc<RwLock<TransformTree>>;

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// A frame no transform mentions.
    #[error("no transform names frame `{0}`")]
    UnknownFrame(String),
    /// Both frames are known but in separate trees.
    #[error("frames `{0}` and `{1}` are not connected in TF")]
    NotConnected(String, String),
    /// The parent chain loops or is absurdly deep.
    #[error("TF chain above `{0}` is longer than {MAX_DEPTH} frames (a loop?)")]
    TooDeep(String),
}

impl TransformTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take every transform of `message`; a child's newer transform replaces its older one.
    /// Transforms with empty frame names or non-finite / zero-norm values are skipped (counted
    /// in the return value) so one bad entry cannot poison a lookup.
    pub fn insert(&mut self, message: &TFMessage) -> usize {
        let mut skipped = 0;
        for t in &message.transforms {
            let parent = t.header.frame_id.trim_start_matches('/');
            let child = t.child_frame_id.trim_start_matches('/');
            match isometry(&t.transform) {
                Some(pose) if !parent.is_empty() && !child.is_empty() && parent != child => {
                    self.parents
                        .insert(child.to_string(), (parent.to_string(), pose));
                }
                _ => skipped += 1,
            }
        }
        skipped
    }

    /// Number of frames that have a parent.
    pub fn len(&self) -> usize {
        self.parents.len()
    }

    /// True when no transform was inserted.
    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    /// The pose of `child` in `parent` (`X_parent = T·X_child`), through any chain of frames.
    pub fn lookup(&self, parent: &str, child: &str) -> Result<Isometry3<f64>, LookupError> {
        let parent = parent.trim_start_matches('/');
        let child = child.trim_start_matches('/');
        if parent == child {
            return Ok(Isometry3::identity());
        }
        for frame in [parent, child] {
            if !self.knows(frame) {
                return Err(LookupError::UnknownFrame(frame.into()));
            }
        }
        let (root_p, root_from_parent) = self.to_root(parent)?;
        let (root_c, root_from_child) = self.to_root(child)?;
        if root_p != root_c {
            return Err(LookupError::NotConnected(parent.into(), child.into()));
        }
        Ok(root_from_parent.inverse() * root_from_child)
    }

    /// A transform names `frame` (as child or parent).
    fn knows(&self, frame: &str) -> bool {
        self.parents.contains_key(frame) || self.parents.values().any(|(p, _)| p == frame)
    }

    /// The root above `frame` and `frame`'s pose in it.
    fn to_root<'a>(&'a self, frame: &'a str) -> Result<(&'a str, Isometry3<f64>), LookupError> {
        let mut pose = Isometry3::identity();
        let mut current = frame;
        for _ in 0..MAX_DEPTH {
            match self.parents.get(current) {
                Some((parent, parent_from_current)) => {
                    pose = parent_from_current * pose;
                    current = parent;
                }
                None => return Ok((current, pose)),
            }
        }
        Err(LookupError::TooDeep(frame.into()))
    }
}

/// A TF transform as an isometry (`None` for non-finite values or a zero quaternion).
pub fn isometry(t: &Transform) -> Option<Isometry3<f64>> {
    let v = [
        t.translation.x,
        t.translation.y,
        t.translation.z,
        t.rotation.x,
        t.rotation.y,
        t.rotation.z,
        t.rotation.w,
    ];
    if !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    let q = Quaternion::new(t.rotation.w, t.rotation.x, t.rotation.y, t.rotation.z);
    if q.norm() < 1e-9 {
        return None;
    }
    Some(Isometry3::from_parts(
        Translation3::new(t.translation.x, t.translation.y, t.translation.z),
        UnitQuaternion::from_quaternion(q),
    ))
}

/// An isometry as a TF transform.
pub fn transform(pose: &Isometry3<f64>) -> Transform {
    use crate::io::msgs::geometry_msgs::{Quaternion as Q, Vector3};
    let q = pose.rotation;
    Transform {
        translation: Vector3 {
            x: pose.translation.x,
            y: pose.translation.y,
            z: pose.translation.z,
        },
        rotation: Q {
            x: q.i,
            y: q.j,
            z: q.k,
            w: q.w,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::msgs::geometry_msgs::TransformStamped;
    use crate::io::msgs::std_msgs::Header;
    use nalgebra::Vector3;

    fn stamped(parent: &str, child: &str, pose: &Isometry3<f64>) -> TransformStamped {
        TransformStamped {
            header: Header {
                frame_id: parent.into(),
                ..Default::default()
            },
            child_frame_id: child.into(),
            transform: transform(pose),
        }
    }

    #[test]
    fn lookups_follow_chains_in_both_directions() {
        let base_cam = Isometry3::new(Vector3::new(0.2, 0.0, 0.5), Vector3::new(0.0, 0.17, 0.0));
        let cam_opt = Isometry3::new(
            Vector3::zeros(),
            Vector3::new(
                -std::f64::consts::FRAC_PI_2,
                0.0,
                -std::f64::consts::FRAC_PI_2,
            ),
        );
        let base_imu = Isometry3::new(Vector3::new(0.0, 0.1, 0.1), Vector3::zeros());
        let mut tree = TransformTree::new();
        let skipped = tree.insert(&TFMessage {
            transforms: vec![
                stamped("base_link", "camera_link", &base_cam),
                stamped("/camera_link", "camera_optical", &cam_opt),
                stamped("base_link", "imu", &base_imu),
                stamped("a", "b", &Isometry3::identity()),
            ],
        });
        assert_eq!(skipped, 0);
        let want = base_cam * cam_opt;
        let got = tree.lookup("base_link", "camera_optical").unwrap();
        assert!((got.to_homogeneous() - want.to_homogeneous()).norm() < 1e-12);
        // Across a branch: the optical frame seen from the IMU.
        let got = tree.lookup("imu", "camera_optical").unwrap();
        let want = base_imu.inverse() * base_cam * cam_opt;
        assert!((got.to_homogeneous() - want.to_homogeneous()).norm() < 1e-12);
        let back = tree.lookup("camera_optical", "base_link").unwrap();
        assert!(
            (back.to_homogeneous() - (base_cam * cam_opt).inverse().to_homogeneous()).norm()
                < 1e-12
        );
        assert_eq!(
            tree.lookup("base_link", "b"),
            Err(LookupError::NotConnected("base_link".into(), "b".into()))
        );
        assert_eq!(
            tree.lookup("base_link", "nowhere"),
            Err(LookupError::UnknownFrame("nowhere".into()))
        );
    }

    #[test]
    fn bad_transforms_are_skipped_and_loops_refused() {
        let mut tree = TransformTree::new();
        let mut bad = stamped("base_link", "cam", &Isometry3::identity());
        bad.transform.rotation.w = 0.0;
        let mut nan = stamped("base_link", "cam2", &Isometry3::identity());
        nan.transform.translation.x = f64::NAN;
        let empty = stamped("", "cam3", &Isometry3::identity());
        assert_eq!(
            tree.insert(&TFMessage {
                transforms: vec![bad, nan, empty],
            }),
            3
        );
        assert!(tree.is_empty());
        tree.insert(&TFMessage {
            transforms: vec![
                stamped("x", "y", &Isometry3::identity()),
                stamped("y", "x", &Isometry3::identity()),
            ],
        });
        assert!(matches!(
            tree.lookup("x", "z"),
            Err(LookupError::UnknownFrame(_))
        ));
        assert!(matches!(
            tree.lookup("base", "y"),
            Err(LookupError::UnknownFrame(_))
        ));
        tree.insert(&TFMessage {
            transforms: vec![stamped("q", "w", &Isometry3::identity())],
        });
        assert!(matches!(
            tree.lookup("q", "x"),
            Err(LookupError::TooDeep(_))
        ));
    }
}
