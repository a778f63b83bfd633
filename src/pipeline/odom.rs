//! [`OdomChain`]: the robot's odometry from metric cameras. Each metric camera's pose is
//! chained `odom ← keyframe ← current`: every keyframe gets its pose in `odom` when it is
//! created, and every frame's verified pose against a keyframe is composed onto it, with the
//! covariance propagated to first order. The robot's pose (`base_frame` in `odom`) follows
//! through the camera's mount.
//!
//! Covariances here follow ROS `PoseWithCovariance`: `(x, y, z, rot x, rot y, rot z)` with the
//! true position `p̂ + δp` and the true rotation `exp([φ]×)·R̂`, both about the fixed axes of
//! the parent frame (what [`super::messages::ros_pose_covariance`] gives for a keyframe-relative
//! pose).
//!
//! While a camera has no verified pose the chain holds its last pose and grows its covariance
//! by the fastest motion the robot may make unseen (`node.hold_speed_mps`,
//! `node.hold_turn_rate_dps`); a frame that becomes a keyframe meanwhile is anchored at the held
//! pose with that covariance. A relocalization against a keyframe with a known pose re-anchors
//! the chain and reports the correction. The chain never restarts at identity: a camera's first
//! frame after a reset starts from its held pose, a camera that starts late from the driving
//! camera's current robot pose.

use std::collections::{HashMap, VecDeque};

use nalgebra::{Isometry3, Matrix3, Matrix6, Translation3, UnitQuaternion};

use super::messages::{pose_in_keyframe, ros_pose_covariance};
use super::{KeyframeId, TrackOutput};
use crate::config::NodeConfig;
use crate::io::frames::RigExtrinsic;
use crate::io::msgs::builtin_interfaces::Time;

/// A pose with its 6×6 covariance (ROS order and convention, see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoseWithCov {
    /// The child frame's pose in the parent frame (`X_parent = T·X_child`).
    pub pose: Isometry3<f64>,
    /// Covariance of `(δp, φ)` in the parent frame.
    pub covariance: Matrix6<f64>,
}

impl PoseWithCov {
    /// A pose known exactly.
    pub fn exact(pose: Isometry3<f64>) -> Self {
        PoseWithCov {
            pose,
            covariance: Matrix6::zeros(),
        }
    }

    /// `self ∘ child`: the pose of `child`'s child frame in `self`'s parent frame, the two
    /// errors independent. With `p = p_a + R_a·p_b`, `R = R_a·R_b`:
    /// `δp = δp_a − [R_a·p_b]×·φ_a + R_a·δp_b` and `φ = φ_a + R_a·φ_b`.
    pub fn compose(&self, child: &PoseWithCov) -> PoseWithCov {
        let ra = self.pose.rotation.to_rotation_matrix().into_inner();
        let lever = ra * child.pose.translation.vector;
        let mut ja = Matrix6::identity();
        ja.fixed_view_mut::<3, 3>(0, 3)
            .copy_from(&(-lever.cross_matrix()));
        let mut jb = Matrix6::zeros();
        jb.fixed_view_mut::<3, 3>(0, 0).copy_from(&ra);
        jb.fixed_view_mut::<3, 3>(3, 3).copy_from(&ra);
        let c = ja * self.covariance * ja.transpose() + jb * child.covariance * jb.transpose();
        PoseWithCov {
            pose: self.pose * child.pose,
            covariance: (c + c.transpose()) * 0.5,
        }
    }

    /// The same pose with `position_var` (m²) and `rotation_var` (rad²) added on the diagonal.
    pub fn inflated(&self, position_var: f64, rotation_var: f64) -> PoseWithCov {
        let mut out = *self;
        for i in 0..3 {
            out.covariance[(i, i)] += position_var;
            out.covariance[(3 + i, 3 + i)] += rotation_var;
        }
        out
    }

    /// The 36 numbers of a ROS covariance field, row-major.
    pub fn covariance_array(&self) -> [f64; 36] {
        let mut c = [0.0; 36];
        for (i, v) in c.iter_mut().enumerate() {
            *v = self.covariance[(i / 6, i % 6)];
        }
        c
    }
}

/// Where a camera's mount (its optical frame's pose in the base frame) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountSource {
    /// Looked up in TF (`/tf_static`, `/tf`, or a bag's `/tf_static`).
    Tf,
    /// `cameras.mounts`.
    Parameter,
    /// Neither: the optical frame is taken as the base frame (with one WARN).
    Identity,
}

impl MountSource {
    /// `tf`, `parameter` or `identity`.
    pub fn as_str(self) -> &'static str {
        match self {
            MountSource::Tf => "tf",
            MountSource::Parameter => "parameter",
            MountSource::Identity => "identity",
        }
    }
}

/// A camera's mount on the robot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mount {
    /// The optical frame's pose in the base frame (`X_base = T·X_optical`).
    pub base_from_optical: Isometry3<f64>,
    /// Where it came from.
    pub source: MountSource,
}

impl Mount {
    /// A mount from `cameras.mounts`' seven numbers.
    pub fn from_extrinsic(e: &RigExtrinsic) -> Mount {
        let [x, y, z] = e.translation_m;
        let [qx, qy, qz, qw] = e.rotation_xyzw;
        Mount {
            base_from_optical: Isometry3::from_parts(
                Translation3::new(x, y, z),
                UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(qw, qx, qy, qz)),
            ),
            source: MountSource::Parameter,
        }
    }
}

/// What the chain did with a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChainState {
    /// The camera's first frame: the chain starts here (at its held pose after a reset, at the
    /// driving camera's robot pose for a camera that starts late, else at the odom origin).
    Started,
    /// A verified metric pose composed onto its keyframe's.
    Tracking,
    /// No verified metric pose: the last pose held, its covariance growing.
    Holding {
        /// Seconds since the last verified pose.
        for_s: f64,
    },
    /// Relocalized against a keyframe with a known pose: the chain moved by this much from
    /// where it was held.
    Reanchored {
        /// Position change, metres.
        correction_m: f64,
        /// Rotation change, degrees.
        correction_deg: f64,
    },
}

impl ChainState {
    /// `started`, `tracking`, `holding` or `reanchored`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChainState::Started => "started",
            ChainState::Tracking => "tracking",
            ChainState::Holding { .. } => "holding",
            ChainState::Reanchored { .. } => "reanchored",
        }
    }
}

/// The chain's result for one frame of a metric camera.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStep {
    /// The camera's optical frame in `odom`.
    pub camera: PoseWithCov,
    /// The robot's base frame in `odom`, through this camera's mount.
    pub base: PoseWithCov,
    /// What happened.
    pub state: ChainState,
    /// This camera drives `~/odom`, `~/path` and the odometry TF.
    pub drives: bool,
    /// Where the mount came from.
    pub mount: MountSource,
}

#[derive(Debug, Clone, Default)]
struct CameraChain {
    mount: Option<Mount>,
    /// The last verified pose (optical frame in odom) and its stamp.
    last: Option<(PoseWithCov, Time)>,
}

/// The chains of every metric camera; see the module doc.
#[derive(Debug, Clone)]
pub struct OdomChain {
    /// Per camera index: chained (metric) or not.
    metric: Vec<bool>,
    /// The camera that drives `~/odom`.
    driver: Option<usize>,
    cameras: Vec<CameraChain>,
    /// Optical frame of each keyframe in odom.
    keyframes: HashMap<KeyframeId, PoseWithCov>,
    /// The driving camera's robot poses, oldest first.
    path: VecDeque<(Time, Isometry3<f64>)>,
    path_length: usize,
    hold_speed_mps: f64,
    hold_turn_rate_rad_s: f64,
}

impl OdomChain {
    /// Chains for the cameras whose `metric` entry is true; `driver` (an index into it) drives
    /// `~/odom` (`None`: no metric camera, nothing is chained).
    pub fn new(metric: Vec<bool>, driver: Option<usize>, node: &NodeConfig) -> Self {
        let n = metric.len();
        OdomChain {
            metric,
            driver,
            cameras: vec![CameraChain::default(); n],
            keyframes: HashMap::new(),
            path: VecDeque::new(),
            path_length: node.path_length as usize,
            hold_speed_mps: node.hold_speed_mps,
            hold_turn_rate_rad_s: node.hold_turn_rate_dps.to_radians(),
        }
    }

    /// Take new hold rates and path length (live parameter changes).
    pub fn reconfigure(&mut self, node: &NodeConfig) {
        self.path_length = node.path_length as usize;
        self.hold_speed_mps = node.hold_speed_mps;
        self.hold_turn_rate_rad_s = node.hold_turn_rate_dps.to_radians();
        while self.path.len() > self.path_length {
            self.path.pop_front();
        }
    }

    /// The driving camera's index.
    pub fn driver(&self) -> Option<usize> {
        self.driver
    }

    /// The driving camera's recent robot poses, oldest first (at most `node.path_length`).
    pub fn path(&self) -> impl Iterator<Item = &(Time, Isometry3<f64>)> {
        self.path.iter()
    }

    /// Keyframe poses kept (pruned with [`OdomChain::retain_keyframes`]).
    pub fn keyframes_known(&self) -> usize {
        self.keyframes.len()
    }

    /// The optical frame's pose in odom of keyframe `id`, when the chain knows it.
    pub fn keyframe_pose(&self, id: &KeyframeId) -> Option<&PoseWithCov> {
        self.keyframes.get(id)
    }

    /// Give keyframe `id` a pose in odom (a saved map's keyframe, anchored by the caller).
    pub fn set_keyframe_pose(&mut self, id: KeyframeId, pose: PoseWithCov) {
        self.keyframes.insert(id, pose);
    }

    /// Camera `camera`'s mount, once its first frame asked for it.
    pub fn mount(&self, camera: usize) -> Option<Mount> {
        self.cameras.get(camera).and_then(|c| c.mount)
    }

    /// Camera `camera`'s last verified optical-frame pose in odom.
    pub fn camera_pose(&self, camera: usize) -> Option<PoseWithCov> {
        self.cameras.get(camera)?.last.map(|(p, _)| p)
    }

    /// Forget the poses of keyframes for which `keep` is false (evicted by the tracker).
    pub fn retain_keyframes(&mut self, keep: impl Fn(&KeyframeId) -> bool) {
        self.keyframes.retain(|id, _| keep(id));
    }

    /// Chain one tracked frame. `mount` is asked once per camera, on its first frame. `None`
    /// for cameras that are not chained (monocular).
    pub fn step(&mut self, out: &TrackOutput, mount: impl FnOnce() -> Mount) -> Option<ChainStep> {
        let c = out.camera.index;
        if !self.metric.get(c).copied().unwrap_or(false) {
            return None;
        }
        let mount = *self.cameras[c].mount.get_or_insert_with(mount);
        let held = self.held(c, out.stamp);
        let metric_pose = out.pose.as_ref().filter(|p| p.scale.is_metric());
        let keyframe_pose = out.keyframe.as_ref().and_then(|k| self.keyframes.get(k));
        let (camera, state) = match (metric_pose, keyframe_pose, out.keyframe.as_ref()) {
            (Some(p), Some(kf), Some(_)) => {
                let (r, t) = pose_in_keyframe(&p.pose);
                let relative = PoseWithCov {
                    pose: isometry(&r, &t),
                    covariance: ros_pose_covariance(&p.pose, &p.covariance, p.scale),
                };
                let camera = kf.compose(&relative);
                let state = match (&held, out.state) {
                    (Some(h), super::TrackState::Relocalized) => ChainState::Reanchored {
                        correction_m: (camera.pose.translation.vector - h.pose.translation.vector)
                            .norm(),
                        correction_deg: camera
                            .pose
                            .rotation
                            .angle_to(&h.pose.rotation)
                            .to_degrees(),
                    },
                    _ => ChainState::Tracking,
                };
                (camera, state)
            }
            // The camera's first frame (or first after a reset): its own new keyframe.
            (_, _, None) => (self.start(c, &mount, held), ChainState::Started),
            _ => match held {
                Some(h) => {
                    let for_s = self.cameras[c]
                        .last
                        .map(|(_, t)| seconds(t, out.stamp))
                        .unwrap_or(0.0);
                    (h, ChainState::Holding { for_s })
                }
                None => (self.start(c, &mount, None), ChainState::Started),
            },
        };
        if !matches!(state, ChainState::Holding { .. }) {
            self.cameras[c].last = Some((camera, out.stamp));
        }
        if let Some(promoted) = &out.promoted {
            self.keyframes.insert(promoted.clone(), camera);
        }
        let base = camera.compose(&PoseWithCov::exact(mount.base_from_optical.inverse()));
        let drives = self.driver == Some(c);
        if drives && self.path_length > 0 && !matches!(state, ChainState::Holding { .. }) {
            self.path.push_back((out.stamp, base.pose));
            while self.path.len() > self.path_length {
                self.path.pop_front();
            }
        }
        Some(ChainStep {
            camera,
            base,
            state,
            drives,
            mount: mount.source,
        })
    }

    /// Camera `c`'s last verified pose with the covariance grown to `stamp`.
    fn held(&self, c: usize, stamp: Time) -> Option<PoseWithCov> {
        let (pose, at) = self.cameras[c].last?;
        let dt = seconds(at, stamp).max(0.0);
        Some(pose.inflated(
            (self.hold_speed_mps * dt).powi(2),
            (self.hold_turn_rate_rad_s * dt).powi(2),
        ))
    }

    /// Where camera `c`'s chain starts: its held pose, else the driving camera's robot pose
    /// through `c`'s mount, else `c`'s mount with the robot at the odom origin.
    fn start(&self, c: usize, mount: &Mount, held: Option<PoseWithCov>) -> PoseWithCov {
        if let Some(h) = held {
            return h;
        }
        let exact_mount = PoseWithCov::exact(mount.base_from_optical);
        if let Some(d) = self.driver.filter(|d| *d != c) {
            if let (Some((pose, _)), Some(dm)) = (self.cameras[d].last, self.cameras[d].mount) {
                let robot = pose.compose(&PoseWithCov::exact(dm.base_from_optical.inverse()));
                return robot.compose(&exact_mount);
            }
        }
        exact_mount
    }
}

fn isometry(r: &Matrix3<f64>, t: &nalgebra::Vector3<f64>) -> Isometry3<f64> {
    Isometry3::from_parts(Translation3::from(*t), UnitQuaternion::from_matrix(r))
}

fn seconds(from: Time, to: Time) -> f64 {
    (to.as_nanos() - from.as_nanos()) as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Vector3, Vector6};

    /// Deterministic standard normals (Box–Muller over a xorshift stream).
    struct Normals(u64);
    impl Normals {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn next(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
        fn sample(&mut self, cov: &Matrix6<f64>) -> Vector6<f64> {
            let l = cov.cholesky().unwrap().l();
            l * Vector6::from_fn(|_, _| self.next())
        }
    }

    fn perturb(p: &Isometry3<f64>, e: &Vector6<f64>) -> Isometry3<f64> {
        let dp = Vector3::new(e[0], e[1], e[2]);
        let phi = Vector3::new(e[3], e[4], e[5]);
        Isometry3::from_parts(
            Translation3::from(p.translation.vector + dp),
            UnitQuaternion::from_scaled_axis(phi) * p.rotation,
        )
    }

    fn error(truth: &Isometry3<f64>, est: &Isometry3<f64>) -> Vector6<f64> {
        let dp = est.translation.vector - truth.translation.vector;
        let phi = (est.rotation * truth.rotation.inverse()).scaled_axis();
        Vector6::new(dp.x, dp.y, dp.z, phi.x, phi.y, phi.z)
    }

    fn spd(scale: f64, seed: u64) -> Matrix6<f64> {
        let mut n = Normals(seed);
        let a = Matrix6::from_fn(|_, _| n.next());
        (a * a.transpose() + Matrix6::identity()) * scale
    }

    #[test]
    fn composed_covariance_matches_monte_carlo() {
        // A keyframe 3 m out and turned, a relative pose of half a metre with a turn: the lever
        // arm term matters.
        let a = PoseWithCov {
            pose: Isometry3::new(Vector3::new(3.0, -1.0, 0.2), Vector3::new(0.1, -0.3, 1.2)),
            covariance: spd(1e-4, 7),
        };
        let b = PoseWithCov {
            pose: Isometry3::new(Vector3::new(0.5, 0.1, -0.2), Vector3::new(-0.2, 0.4, 0.1)),
            covariance: spd(4e-5, 11),
        };
        let want = a.compose(&b);
        let mut n = Normals(0x9e37_79b9_7f4a_7c15);
        let samples = 40_000;
        let mut cov = Matrix6::zeros();
        for _ in 0..samples {
            let pa = perturb(&a.pose, &n.sample(&a.covariance));
            let pb = perturb(&b.pose, &n.sample(&b.covariance));
            let e = error(&want.pose, &(pa * pb));
            cov += e * e.transpose();
        }
        cov /= samples as f64;
        // Sampling error of a covariance entry with 40 000 samples is ≈ 1 % of the diagonal
        // scale; the first-order terms left out are ~|φ|² ≈ 1e-4 relative.
        let scale = want.covariance.diagonal().max();
        let worst = (cov - want.covariance).abs().max();
        assert!(worst < 0.03 * scale, "worst {worst:e} of scale {scale:e}");
    }

    fn kf(camera: &str, sec: i32) -> KeyframeId {
        KeyframeId {
            camera: camera.into(),
            stamp: Time { sec, nanosec: 0 },
        }
    }

    /// A frame of camera 0 at `sec`: `pose` = its metric pose against `keyframe` (the camera
    /// moved `forward` metres along its optical axis), `promoted` = it became a keyframe.
    fn frame(
        sec: i32,
        state: super::super::TrackState,
        keyframe: Option<KeyframeId>,
        forward: Option<f64>,
        promoted: bool,
    ) -> TrackOutput {
        use super::super::{CameraId, PoseScale, TrackQuality, TrackTimings, TrackedPose};
        use crate::geometry::{PoseModel, RelativePose};
        TrackOutput {
            camera: CameraId {
                index: 0,
                name: "cam0".into(),
            },
            stamp: Time { sec, nanosec: 0 },
            frame_id: "cam0_optical".into(),
            state,
            keyframe,
            keyframe_frame_id: "cam0_optical".into(),
            promoted: promoted.then(|| kf("cam0", sec)),
            correspondences: Vec::new(),
            // X_cur = X_kf − (0, 0, d): the camera moved d along its +z.
            pose: forward.map(|d| TrackedPose {
                pose: RelativePose::new(
                    nalgebra::Rotation3::identity(),
                    Vector3::new(0.0, 0.0, -d),
                ),
                covariance: Matrix6::identity() * 1e-6,
                model: PoseModel::Essential,
                translation_observable: true,
                noise_sigma_px: 0.3,
                scale: PoseScale::MetricDepth,
            }),
            quality: TrackQuality::default(),
            reason: None,
            integrity: None,
            lost_streak: 0,
            relocalization: Vec::new(),
            metric: None,
            keyframes_stored: 1,
            image: std::sync::Arc::new(image::RgbImage::new(4, 4)),
            keyframe_image: None,
            timings: TrackTimings::default(),
        }
    }

    #[test]
    fn lost_frames_hold_the_pose_and_a_relocalization_reanchors_it() {
        use super::super::TrackState::*;
        let node = NodeConfig::default();
        let mut chain = OdomChain::new(vec![true], Some(0), &node);
        let identity = || Mount {
            base_from_optical: Isometry3::identity(),
            source: MountSource::Identity,
        };
        let z = |s: &ChainStep| s.base.pose.translation.z;
        // Start, then 1 m forward and promote: keyframe 2 sits at z = 1.
        let s = chain
            .step(&frame(1, NewKeyframe, None, None, true), identity)
            .unwrap();
        assert_eq!((s.state, z(&s)), (ChainState::Started, 0.0));
        let s = chain
            .step(
                &frame(2, NewKeyframe, Some(kf("cam0", 1)), Some(1.0), true),
                identity,
            )
            .unwrap();
        assert_eq!(s.state, ChainState::Tracking);
        assert!((z(&s) - 1.0).abs() < 1e-12);
        let verified_sigma = s.base.covariance[(0, 0)];
        // Lost at t = 4 (2 s after the last verified pose): held at z = 1, σ grown by 2 m; the
        // frame becomes a keyframe anchored there.
        let s = chain
            .step(&frame(4, Lost, Some(kf("cam0", 2)), None, true), identity)
            .unwrap();
        assert_eq!(s.state, ChainState::Holding { for_s: 2.0 });
        assert!((z(&s) - 1.0).abs() < 1e-12);
        assert!((s.base.covariance[(0, 0)] - verified_sigma - 4.0).abs() < 1e-9);
        // Tracking resumes against the lost keyframe: continuous, still uncertain.
        let s = chain
            .step(
                &frame(5, Tracking, Some(kf("cam0", 4)), Some(0.5), false),
                identity,
            )
            .unwrap();
        assert_eq!(s.state, ChainState::Tracking);
        assert!((z(&s) - 1.5).abs() < 1e-12);
        assert!(s.base.covariance[(0, 0)] > 4.0);
        // Relocalized against keyframe 2 (z = 1, well known): the truth was 2.2 m along, so
        // the chain jumps by 0.7 m from its held 1.5 m and says so; the covariance is
        // keyframe 2's again.
        let s = chain
            .step(
                &frame(6, Relocalized, Some(kf("cam0", 2)), Some(1.2), false),
                identity,
            )
            .unwrap();
        match s.state {
            ChainState::Reanchored {
                correction_m,
                correction_deg,
            } => {
                assert!((correction_m - 0.7).abs() < 1e-9, "{correction_m}");
                assert!(correction_deg.abs() < 1e-9);
            }
            other => panic!("expected a re-anchoring, got {other:?}"),
        }
        assert!((z(&s) - 2.2).abs() < 1e-12);
        assert!(s.base.covariance[(0, 0)] < 1e-3);
        // The path holds only verified poses: 0, 1, 1.5, 2.2.
        let path: Vec<f64> = chain.path().map(|(_, p)| p.translation.z).collect();
        assert_eq!(path.len(), 4);
        assert!((path[3] - 2.2).abs() < 1e-12);
    }

    #[test]
    fn a_camera_that_starts_late_starts_from_the_driving_cameras_robot_pose() {
        let node = NodeConfig::default();
        let mut chain = OdomChain::new(vec![true, true], Some(0), &node);
        let ahead = || Mount {
            base_from_optical: Isometry3::translation(0.5, 0.0, 0.0),
            source: MountSource::Parameter,
        };
        chain.step(
            &frame(1, super::super::TrackState::NewKeyframe, None, None, true),
            ahead,
        );
        chain.step(
            &frame(
                2,
                super::super::TrackState::Tracking,
                Some(kf("cam0", 1)),
                Some(2.0),
                false,
            ),
            ahead,
        );
        // Camera 1 (mounted 0.3 m to the left) starts now: the robot is at z = 2 (the optical
        // axis of camera 0 is the robot's z here), camera 1 at robot ∘ its mount.
        let mut late = frame(2, super::super::TrackState::NewKeyframe, None, None, true);
        late.camera.index = 1;
        late.camera.name = "cam1".into();
        late.promoted = Some(kf("cam1", 2));
        let left = || Mount {
            base_from_optical: Isometry3::translation(0.0, 0.3, 0.0),
            source: MountSource::Parameter,
        };
        let s = chain.step(&late, left).unwrap();
        assert_eq!(s.state, ChainState::Started);
        assert!(!s.drives);
        let want = Vector3::new(0.0, 0.3, 2.0);
        assert!((s.camera.pose.translation.vector - want).norm() < 1e-12);
        assert!((s.base.pose.translation.vector - Vector3::new(0.0, 0.0, 2.0)).norm() < 1e-12);
    }

    #[test]
    fn a_thousand_frames_publish_one_transform_and_a_bounded_path() {
        use super::super::contract::FrameOutputs;
        use super::super::odom_messages::add_odom_messages;
        use super::super::topics::{Output, OutputMessage};
        use super::super::TrackState::*;
        let node = NodeConfig {
            path_length: 100,
            ..Default::default()
        };
        let mut chain = OdomChain::new(vec![true], Some(0), &node);
        let mount = || Mount {
            base_from_optical: Isometry3::identity(),
            source: MountSource::Identity,
        };
        let mut transforms = std::collections::BTreeSet::new();
        let mut keyframe = None;
        for k in 0..1000 {
            // A new keyframe every 10 frames, a lost frame every 97th.
            let state = match k {
                0 => NewKeyframe,
                k if k % 97 == 0 => Lost,
                k if k % 10 == 0 => NewKeyframe,
                _ => Tracking,
            };
            let forward = (k > 0 && state != Lost).then_some(0.01);
            let promoted = state != Tracking;
            let out = frame(k + 1, state, keyframe.clone(), forward, promoted);
            let step = chain.step(&out, mount).unwrap();
            let mut outputs = FrameOutputs::default();
            add_odom_messages(&mut outputs, &out, &step, &node, chain.path());
            for p in &outputs.messages {
                match &p.message {
                    OutputMessage::TFMessage(m) => {
                        for t in &m.transforms {
                            transforms
                                .insert((t.header.frame_id.clone(), t.child_frame_id.clone()));
                        }
                    }
                    OutputMessage::Path(m) => assert!(m.poses.len() <= 100),
                    _ => {}
                }
            }
            assert!(outputs.message(Output::Odom).is_some());
            if promoted {
                keyframe = out.promoted.clone();
            }
        }
        assert_eq!(
            transforms.into_iter().collect::<Vec<_>>(),
            [("odom".to_string(), "base_link".to_string())]
        );
        assert_eq!(chain.path().count(), 100);
    }

    #[test]
    fn holding_grows_with_the_fastest_unseen_motion() {
        let node = NodeConfig {
            hold_speed_mps: 0.5,
            hold_turn_rate_dps: 30.0,
            ..Default::default()
        };
        let mut chain = OdomChain::new(vec![true], Some(0), &node);
        let pose = PoseWithCov::exact(Isometry3::new(
            Vector3::new(1.0, 2.0, 0.0),
            Vector3::zeros(),
        ));
        chain.cameras[0].last = Some((
            pose,
            Time {
                sec: 10,
                nanosec: 0,
            },
        ));
        let held = chain
            .held(
                0,
                Time {
                    sec: 12,
                    nanosec: 0,
                },
            )
            .unwrap();
        assert_eq!(held.pose, pose.pose);
        assert!((held.covariance[(0, 0)] - 1.0).abs() < 1e-12); // (0.5 m/s · 2 s)²
        let rot = (30f64.to_radians() * 2.0).powi(2);
        assert!((held.covariance[(5, 5)] - rot).abs() < 1e-12);
    }
}
