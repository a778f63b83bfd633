//! [`MapSession`]: a run's relation to a saved map, beside the tracker.
//!
//! - **Mapping**: the map frame is the odometry chain's `odom`; every keyframe promoted while
//!   the chain has a verified pose (not holding) is kept for the map (pinned in the tracker's
//!   store, never evicted) with the chain's pose of it; [`MapSession::poses`] is the map to
//!   save.
//! - **Localization**: the map's keyframes are in the tracker, read-only, with their poses in
//!   the map frame. A frame whose verified metric pose is against a keyframe with a map pose
//!   is localized: `map_T_current = map_T_keyframe ∘ keyframe_T_current`. The map defines the
//!   map frame, so one of its own keyframes counts as exact there and the pose carries the
//!   registration's covariance only (as rtabmap reports it); the mapping run's chain
//!   covariance (its drift, its hold inflation) is not the error of a pose in that frame. A
//!   keyframe promoted from a localized frame gets that frame's map pose and covariance
//!   (transient: evicted as usual, its map pose forgotten with it; it is uncertain relative to
//!   the map, so poses against it compose both to first order), so a camera stays localized
//!   while it tracks away from the map's views. A camera whose reference has no map
//!   pose asks the tracker to relocalize against the map on its next frame.

use std::collections::HashMap;

use super::super::messages::{pose_in_keyframe, ros_pose_covariance};
use super::super::odom::{ChainState, ChainStep, PoseWithCov};
use super::super::{KeyframeId, TrackOutput, TrackState, TrackedPose};
use crate::io::msgs::builtin_interfaces::Time;
use nalgebra::{Isometry3, Translation3, UnitQuaternion};

pub use crate::config::MapMode;

/// A verified pose against a keyframe as the current optical frame's pose in the keyframe's
/// optical frame, with its covariance in ROS order.
pub fn pose_in_keyframe_with_cov(p: &TrackedPose) -> PoseWithCov {
    let (r, t) = pose_in_keyframe(&p.pose);
    PoseWithCov {
        pose: Isometry3::from_parts(Translation3::from(t), UnitQuaternion::from_matrix(&r)),
        covariance: ros_pose_covariance(&p.pose, &p.covariance, p.scale),
    }
}

/// A frame's pose in the map.
#[derive(Debug, Clone, PartialEq)]
pub struct Localized {
    /// The camera's index.
    pub camera: usize,
    /// The frame's stamp.
    pub stamp: Time,
    /// The camera's optical frame in the map frame.
    pub pose: PoseWithCov,
    /// The keyframe the pose was measured against.
    pub keyframe: KeyframeId,
    /// That keyframe is one of the map's (not a transient one promoted while localized).
    pub against_map_keyframe: bool,
    /// The frame relocalized (found its place without tracking into it).
    pub relocalized: bool,
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MapCounters {
    /// Frames seen.
    pub frames: u64,
    /// Frames with a pose in the map.
    pub localized: u64,
    /// Of those, relocalized against a map keyframe.
    pub relocalized: u64,
    /// Keyframes kept for the map (mapping).
    pub mapped_keyframes: u64,
}

/// A run's map state; see the module doc.
#[derive(Debug, Clone)]
pub struct MapSession {
    mode: MapMode,
    frame_id: String,
    /// Map poses of keyframes (the map's, and transient ones promoted while localized).
    poses: HashMap<KeyframeId, PoseWithCov>,
    /// The map's own keyframes (localization) or those kept for the map (mapping).
    map_keyframes: usize,
    counters: MapCounters,
}

impl MapSession {
    /// A session in `mode` whose poses are in `frame_id`.
    pub fn new(mode: MapMode, frame_id: impl Into<String>) -> Self {
        MapSession {
            mode,
            frame_id: frame_id.into(),
            poses: HashMap::new(),
            map_keyframes: 0,
            counters: MapCounters::default(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> MapMode {
        self.mode
    }

    /// The map frame.
    pub fn frame_id(&self) -> &str {
        &self.frame_id
    }

    /// Counters so far.
    pub fn counters(&self) -> MapCounters {
        self.counters
    }

    /// Map keyframes known (loaded, or kept while mapping).
    pub fn map_keyframes(&self) -> usize {
        self.map_keyframes
    }

    /// Record a map keyframe's pose (loading a map).
    pub fn add_map_keyframe(&mut self, id: KeyframeId, pose: PoseWithCov) {
        if self.poses.insert(id, pose).is_none() {
            self.map_keyframes += 1;
        }
    }

    /// The map pose of keyframe `id`, when it has one.
    pub fn pose(&self, id: &KeyframeId) -> Option<&PoseWithCov> {
        self.poses.get(id)
    }

    /// Map poses known.
    pub fn poses_known(&self) -> usize {
        self.poses.len()
    }

    /// Forget the map poses of transient keyframes for which `keep` is false.
    pub fn retain(&mut self, keep: impl Fn(&KeyframeId) -> bool) {
        self.poses.retain(|id, _| keep(id));
    }

    /// Take one tracked frame (and its chain step, mapping). Returns the frame's map pose
    /// when it has one, and, mapping, the keyframe to keep for the map (the caller pins it).
    pub fn observe(
        &mut self,
        out: &TrackOutput,
        step: Option<&ChainStep>,
        is_map_keyframe: impl Fn(&KeyframeId) -> bool,
    ) -> (Option<Localized>, Option<KeyframeId>) {
        self.counters.frames += 1;
        let relocalized = out.state == TrackState::Relocalized;
        let localized = match self.mode {
            MapMode::Mapping => step
                .filter(|s| !matches!(s.state, ChainState::Holding { .. }))
                .map(|s| Localized {
                    camera: out.camera.index,
                    stamp: out.stamp,
                    pose: s.camera,
                    keyframe: out
                        .keyframe
                        .clone()
                        .or_else(|| out.promoted.clone())
                        .unwrap_or_else(|| KeyframeId {
                            camera: out.camera.name.clone(),
                            stamp: out.stamp,
                        }),
                    against_map_keyframe: true,
                    relocalized,
                }),
            MapMode::Localization => {
                let metric = out.pose.as_ref().filter(|p| p.scale.is_metric());
                match (out.keyframe.as_ref(), metric) {
                    (Some(k), Some(p)) => self.poses.get(k).map(|kf| {
                        let relative = pose_in_keyframe_with_cov(p);
                        let against_map_keyframe = is_map_keyframe(k);
                        // See the module doc: a map keyframe is exact in its own frame.
                        let kf = if against_map_keyframe {
                            PoseWithCov::exact(kf.pose)
                        } else {
                            *kf
                        };
                        Localized {
                            camera: out.camera.index,
                            stamp: out.stamp,
                            pose: kf.compose(&relative),
                            keyframe: k.clone(),
                            against_map_keyframe,
                            relocalized,
                        }
                    }),
                    _ => None,
                }
            }
        };
        let mut keep = None;
        if let (Some(promoted), Some(l)) = (&out.promoted, &localized) {
            self.poses.insert(promoted.clone(), l.pose);
            if self.mode == MapMode::Mapping {
                self.map_keyframes += 1;
                self.counters.mapped_keyframes += 1;
                keep = Some(promoted.clone());
            }
        }
        if let Some(l) = &localized {
            self.counters.localized += 1;
            if l.relocalized && l.against_map_keyframe {
                self.counters.relocalized += 1;
            }
        }
        (localized, keep)
    }
}
