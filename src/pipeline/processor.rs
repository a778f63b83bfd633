//! [`TrackerProcessor`]: the [`FrameProcessor`] the node and `imd replay` run — decode, track,
//! build messages.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::contract::{ControlCommand, FrameOutputs, FrameProcessor, ScheduleInfo};
use super::map::messages::{
    add_map_messages, base_in_map, map_from_odom, map_status, LastLocalized, MapFrame, MapState,
};
use super::map::session::pose_in_keyframe_with_cov;
use super::map::{
    KeyframeMap, Localized, MapDepth, MapError, MapKeyframe, MapMode, MapSession, Replace,
    StereoPoints,
};
use super::matcher::PairMatcher;
use super::messages::{track_messages, MessageContext};
use super::metric::KeyframeDepth;
use super::metric::{attach_metric, MetricOptions};
use super::odom::{ChainState, ChainStep, Mount, MountSource, OdomChain, PoseWithCov};
use super::odom_messages::add_odom_messages;
use super::topics::Output;
use super::transforms::SharedTransforms;
use super::{Frame, PipelineError, TrackOutput, Tracker};
use crate::config::{CameraConfig, ImdConfig, MapConfig, NodeConfig};
use crate::io::frames::{CameraFrame, MetricSource};
use crate::io::msgs::diagnostic_msgs::{DiagnosticStatus, KeyValue};
use crate::model::ImdMatcher;

/// Decodes each [`CameraFrame`], tracks it and turns the [`TrackOutput`] into messages.
#[derive(Debug)]
pub struct TrackerProcessor<M: PairMatcher> {
    tracker: Tracker<M>,
    cameras: Vec<CameraConfig>,
    node: NodeConfig,
    odom: OdomChain,
    transforms: SharedTransforms,
    /// The saved map this run builds or localizes in.
    map: Option<MapSession>,
    /// The last frame's pose in the map.
    localized: Option<Localized>,
    /// The last frame that had a pose in the map (the map's status).
    last_localized: Option<LastLocalized>,
    /// `map.*`: the map frame's name and whether `map → odom` goes on `/tf`.
    map_config: MapConfig,
    /// Where `save_map` writes the map.
    map_path: Option<std::path::PathBuf>,
    /// The folder and manifest sha256 of this run's last save: the one map `save_map` may
    /// replace without `map.overwrite`.
    map_saved: Option<(std::path::PathBuf, String)>,
    /// Localization: the map frame in odom, fixed when a camera first localizes (so the chain
    /// goes on from where it was); map keyframes get their odom poses through it.
    odom_from_map: Option<nalgebra::Isometry3<f64>>,
    /// Localization: the odom frame in the map, from the driving camera's last localized frame
    /// (`map_T_camera ∘ odom_T_camera⁻¹`): what `map → odom` is. Mapping: the identity.
    map_from_odom: Option<nalgebra::Isometry3<f64>>,
    /// The odometry chain's state for the last frame (metric cameras).
    chain: Option<ChainState>,
}

impl TrackerProcessor<ImdMatcher> {
    /// Load the IMD matcher from `config.model` and build the processor for `cameras`
    /// ([`ImdConfig::cameras`]).
    pub fn load(config: &ImdConfig, cameras: Vec<CameraConfig>) -> Result<Self, PipelineError> {
        let matcher = ImdMatcher::load(&config.model)?;
        Self::new(matcher, config, cameras)
    }
}

impl<M: PairMatcher> TrackerProcessor<M> {
    /// A processor tracking `cameras` (resolved once by the caller, [`ImdConfig::cameras`])
    /// with `matcher` under `config` (tracker, pose, node).
    pub fn new(
        matcher: M,
        config: &ImdConfig,
        cameras: Vec<CameraConfig>,
    ) -> Result<Self, PipelineError> {
        let mut tracker = Tracker::new(matcher, config.tracker.clone(), config.pose.clone())?;
        tracker.set_metric_options(MetricOptions::of(config)?);
        tracker.set_integrity(config.integrity.clone())?;
        let metric: Vec<bool> = cameras
            .iter()
            .map(|c| c.metric != MetricSource::Monocular)
            .collect();
        let wanted = config.node.odom_camera.trim();
        let driver = if wanted.is_empty() {
            metric.iter().position(|m| *m)
        } else {
            cameras.iter().position(|c| c.name == wanted)
        };
        if let Some(d) = driver.filter(|d| !metric[*d]) {
            return Err(PipelineError::InvalidConfig {
                field: "node.odom_camera".into(),
                reason: format!(
                    "camera `{}` is monocular; odometry needs metric scale",
                    cameras[d].name
                ),
            });
        }
        Ok(TrackerProcessor {
            tracker,
            odom: OdomChain::new(metric, driver, &config.node),
            cameras,
            node: config.node.clone(),
            transforms: SharedTransforms::default(),
            map: None,
            localized: None,
            last_localized: None,
            map_config: config.map.clone(),
            map_path: None,
            map_saved: None,
            odom_from_map: None,
            map_from_odom: None,
            chain: None,
        })
    }

    /// Read camera mounts from `transforms` (the node's TF listener, a bag's `/tf_static`).
    pub fn with_transforms(mut self, transforms: SharedTransforms) -> Self {
        self.transforms = transforms;
        self
    }

    /// The odometry chain.
    pub fn odom(&self) -> &OdomChain {
        &self.odom
    }

    /// Build a map from this run (its frame is the odometry chain's `odom`, `frame_id`).
    /// `map → odom` is the identity from the start (the map frame is `odom` itself), so TF's
    /// `map → odom → base_link` is connected while mapping, as rtabmap's is.
    pub fn start_mapping(&mut self, frame_id: &str) {
        self.map = Some(MapSession::new(MapMode::Mapping, frame_id));
        self.map_from_odom = Some(nalgebra::Isometry3::identity());
        self.tracker.set_localize_in_map(false);
    }

    /// Localize in `map`: its embeddings must come from this processor's matcher
    /// ([`PairMatcher::identity`]); its keyframes are prepared and inserted read-only.
    /// Returns the number of map keyframes.
    pub fn localize_in(&mut self, map: &KeyframeMap) -> Result<usize, PipelineError> {
        let identity = self.tracker.matcher().identity()?;
        if map.model != identity {
            return Err(MapError::Model {
                path: "the map's manifest.json".into(),
                found: map.model.clone(),
                expected: identity,
            }
            .into());
        }
        let n = self.tracker.add_map_keyframes(&map.keyframes)?;
        let mut session = MapSession::new(MapMode::Localization, map.frame_id.clone());
        for k in &map.keyframes {
            session.add_map_keyframe(k.id.clone(), k.pose);
        }
        self.map = Some(session);
        self.tracker.set_localize_in_map(true);
        Ok(n)
    }

    /// Open the configured map (`map.*`). The rule for an unusable map: in localization mode it
    /// is an error (the node refuses to start: the user asked to localize in it); in mapping
    /// mode the run starts an empty map, which `~/save_map` writes to `map.path` — refusing to
    /// replace a map there that this run did not write unless `map.overwrite` (a WARN says so
    /// at start). No path: no map. Returns what was done, also logged.
    pub fn open_map(
        &mut self,
        map: &MapConfig,
        odom_frame: &str,
    ) -> Result<Option<String>, PipelineError> {
        self.map_config = map.clone();
        let path = map.path.trim();
        if path.is_empty() {
            return Ok(None);
        }
        let dir = Path::new(path);
        let what = match map.mode {
            MapMode::Localization => {
                let identity = self.tracker.matcher().identity()?;
                let loaded = super::map::load(dir, Some(&identity))?;
                let n = self.localize_in(&loaded)?;
                format!(
                    "map: localizing in {path} ({n} keyframes, frame {})",
                    loaded.frame_id
                )
            }
            MapMode::Mapping => {
                self.start_mapping(odom_frame);
                match super::map::check_replaceable(dir, &Replace::new(map.overwrite, None)) {
                    Ok(()) => match super::map::load_manifest(dir) {
                        Ok(m) => format!(
                            "map: mapping; ~/save_map will replace the map of {} keyframes at \
                             {path} (map.overwrite)",
                            m.keyframes.len()
                        ),
                        Err(MapError::Missing { .. }) => {
                            format!("map: mapping; ~/save_map will write {path}")
                        }
                        Err(e) => format!(
                            "map: mapping; ~/save_map will replace the unusable map at {path} \
                             (map.overwrite; {e})"
                        ),
                    },
                    Err(e) => {
                        log::warn!(
                            "{e}; mapping goes on, but ~/save_map will refuse until map.path or \
                             map.overwrite is changed"
                        );
                        format!("map: mapping; ~/save_map will not replace what is at {path}")
                    }
                }
            }
        };
        self.set_map_path(dir);
        log::info!("{what}");
        Ok(Some(what))
    }

    /// Where [`ControlCommand::SaveMap`] writes the map.
    pub fn set_map_path(&mut self, path: impl Into<std::path::PathBuf>) {
        self.map_path = Some(path.into());
    }

    /// [`ControlCommand::SaveMap`]: export and save atomically (replacing only this run's own
    /// earlier save unless `map.overwrite`); the status level and message.
    fn save_map(&mut self) -> (u8, String) {
        let mode = self.map.as_ref().map(|s| s.mode());
        let path = match (&self.map_path, mode) {
            (_, None) => {
                return (
                    DiagnosticStatus::WARN,
                    "save_map: no map is being built (map.mode mapping starts one)".into(),
                )
            }
            (_, Some(MapMode::Localization)) => {
                return (
                    DiagnosticStatus::WARN,
                    "save_map: the map is read-only in localization mode; nothing saved".into(),
                )
            }
            (None, _) => {
                return (
                    DiagnosticStatus::WARN,
                    "save_map: no map path set (map.path)".into(),
                )
            }
            (Some(path), Some(MapMode::Mapping)) => path.clone(),
        };
        let own = match &self.map_saved {
            Some((dir, sha)) if *dir == path => Some(sha.clone()),
            _ => None,
        };
        let replace = Replace::new(self.map_config.overwrite, own);
        let saved = self
            .export_map()
            .and_then(|m| m.ok_or_else(|| MapError::invalid(&path, "no map session").into()))
            .and_then(|m| Ok(super::map::save(&m, &path, &replace)?));
        if let Ok(r) = &saved {
            self.map_saved = Some((path.clone(), r.manifest_sha256.clone()));
        }
        match saved {
            Ok(r) => (
                DiagnosticStatus::OK,
                format!(
                    "save_map: {} keyframe(s), {} bytes to {} ({} written, {} removed)",
                    r.keyframes,
                    r.bytes,
                    path.display(),
                    r.written,
                    r.removed
                ),
            ),
            Err(e) => (
                DiagnosticStatus::ERROR,
                format!("save_map: {e} (the previous map, if any, is intact)"),
            ),
        }
    }

    /// The map session, when mapping or localizing.
    pub fn map_session(&self) -> Option<&MapSession> {
        self.map.as_ref()
    }

    /// The odom frame's pose in the map frame (`map → odom`): localizing, from the driving
    /// camera's last localized frame (`None` before it localized); mapping, the identity.
    pub fn map_from_odom(&self) -> Option<nalgebra::Isometry3<f64>> {
        self.map_from_odom
    }

    /// The odometry chain's state for the last frame (`None`: monocular camera).
    pub fn chain_state(&self) -> Option<ChainState> {
        self.chain
    }

    /// The last tracked frame's pose in the map (`None`: not localized, or no map).
    pub fn localized(&self) -> Option<&Localized> {
        self.localized.as_ref()
    }

    /// The map to save: the keyframes kept for the map with their poses, images, embeddings
    /// and metric depth, a depth image or a stereo keyframe's points and rig (`None` without a
    /// session).
    pub fn export_map(&self) -> Result<Option<KeyframeMap>, PipelineError> {
        let Some(session) = &self.map else {
            return Ok(None);
        };
        let matcher = self.tracker.matcher();
        let keyframes = self
            .tracker
            .keyframes()
            .filter(|k| k.map)
            .filter_map(|k| {
                let pose = *session.pose(&k.id)?;
                let depth = k.depth.as_deref().map(|d| match d {
                    KeyframeDepth::Dense(d) => MapDepth::Dense(d.clone()),
                    KeyframeDepth::Stereo(s) => MapDepth::Stereo(Arc::new(StereoPoints::of(s))),
                });
                Some(MapKeyframe {
                    id: k.id.clone(),
                    frame_id: k.frame_id.clone(),
                    model: k.model,
                    image: k.image.clone(),
                    embedding: matcher.embedding(&k.prepared).to_vec(),
                    depth,
                    pose,
                })
            })
            .collect();
        Ok(Some(KeyframeMap {
            model: matcher.identity()?,
            frame_id: session.frame_id().to_string(),
            keyframes,
        }))
    }

    /// The tracker.
    pub fn tracker(&self) -> &Tracker<M> {
        &self.tracker
    }

    /// The tracker, mutably.
    pub fn tracker_mut(&mut self) -> &mut Tracker<M> {
        &mut self.tracker
    }

    /// Decode and track one frame; returns the tracker output and the messages.
    pub fn track_frame(
        &mut self,
        frame: &CameraFrame,
        schedule: &ScheduleInfo,
    ) -> Result<(TrackOutput, FrameOutputs), PipelineError> {
        let camera = self.cameras.get(frame.camera);
        let optical = camera.and_then(|c| c.optical_frame.as_deref());
        let mut decoded = Frame::from_camera_frame(frame, optical)?;
        if let Some(camera) = camera {
            attach_metric(&mut decoded, frame, camera)?;
        }
        let out = self.tracker.track(decoded)?;
        let ctx = MessageContext {
            // The keyframe transforms only; the robot's comes with the odometry chain.
            publish_tf: self.node.publish_tf,
            publish_debug_image: Output::DebugImage
                .topic()
                .enabled_by
                .enabled(&self.node, &self.map_config),
            latency_ms: frame.received.elapsed().as_secs_f64() * 1e3,
            dropped_frames: schedule.dropped,
            rate_skipped: schedule.rate_skipped,
            counters: self.tracker.counters(),
            lost_output: self.tracker.integrity().lost_output,
            lost_error_frames: self.tracker.integrity().lost_error_frames,
        };
        let mut messages = track_messages(&out, &ctx);
        self.anchor_map_keyframe(&out);
        let camera = self.cameras.get(frame.camera);
        let (transforms, node) = (&self.transforms, &self.node);
        let step = self
            .odom
            .step(&out, || mount_of(camera, &out.frame_id, node, transforms));
        if let Some(step) = &step {
            add_odom_messages(&mut messages, &out, step, &self.node, self.odom.path());
        }
        self.chain = step.as_ref().map(|s| s.state);
        self.observe_map(&out, step.as_ref());
        self.add_map_outputs(&mut messages, &out, step.as_ref());
        // Keyframe poses live as long as the tracker keeps the keyframe.
        if self.odom.keyframes_known() > 2 * self.tracker.config().max_keyframes as usize + 8 {
            let kept: std::collections::HashSet<_> =
                self.tracker.keyframes().map(|k| k.id.clone()).collect();
            self.odom.retain_keyframes(|id| kept.contains(id));
        }
        Ok((out, messages))
    }
}

impl<M: PairMatcher> TrackerProcessor<M> {
    /// Localization: a frame measured against a map keyframe the odometry chain has no pose
    /// for gets that keyframe an odom pose through the map frame's pose in odom, so the chain
    /// composes onto it instead of holding. That pose is fixed by the first localized frame:
    /// where the camera's chain last was (continuity), else the map frame is odom.
    fn anchor_map_keyframe(&mut self, out: &TrackOutput) {
        let Some(session) = self.map.as_ref() else {
            return;
        };
        let Some(k) = out.keyframe.as_ref() else {
            return;
        };
        if session.mode() != MapMode::Localization || self.odom.keyframe_pose(k).is_some() {
            return;
        }
        let Some(kf_map) = session.pose(k) else {
            return;
        };
        let odom_from_map = match self.odom_from_map {
            Some(t) => t,
            None => {
                let Some(p) = out.pose.as_ref().filter(|p| p.scale.is_metric()) else {
                    return;
                };
                let map_camera = kf_map.compose(&pose_in_keyframe_with_cov(p));
                let t = match self.odom.camera_pose(out.camera.index) {
                    Some(odom_camera) => odom_camera.pose * map_camera.pose.inverse(),
                    None => nalgebra::Isometry3::identity(),
                };
                self.odom_from_map = Some(t);
                t
            }
        };
        let pose = PoseWithCov::exact(odom_from_map).compose(kf_map);
        self.odom.set_keyframe_pose(k.clone(), pose);
    }

    /// The map session's part of a frame: its map pose, the keyframe kept for the map
    /// (mapping), a relocalization request for a camera that is not localized (localization).
    fn observe_map(&mut self, out: &TrackOutput, step: Option<&ChainStep>) {
        self.localized = None;
        let Some(session) = &mut self.map else {
            return;
        };
        let tracker = &self.tracker;
        let (localized, keep) =
            session.observe(out, step, |id| tracker.keyframe(id).is_some_and(|k| k.map));
        if let Some(id) = keep {
            self.tracker.pin_keyframe(&id);
        }
        if session.mode() == MapMode::Localization {
            let camera = out.camera.index;
            let on_map = self
                .tracker
                .reference(camera)
                .is_some_and(|r| session.pose(r).is_some());
            if !on_map {
                self.tracker.request_relocalization(Some(&out.camera.name));
            }
            if session.poses_known()
                > session.map_keyframes() + 2 * self.tracker.config().max_keyframes as usize + 8
            {
                let kept: std::collections::HashSet<_> =
                    self.tracker.keyframes().map(|k| k.id.clone()).collect();
                session.retain(|id| kept.contains(id));
            }
        }
        if let (Some(l), Some(s)) = (&localized, step) {
            if s.drives && session.mode() == MapMode::Localization {
                self.map_from_odom = Some(map_from_odom(&l.pose.pose, &s.camera.pose));
            }
        }
        self.localized = localized;
    }

    /// The map's part of a frame's outputs: `map → odom` with every frame of the odometry
    /// camera (the latest correction: TF needs `map → odom` at the stamps `odom → base_link`
    /// has) once it localized, or from the start while mapping (the identity); localizing,
    /// `~/map_pose` when the frame is localized; the map's status in either mode.
    fn add_map_outputs(
        &mut self,
        outputs: &mut FrameOutputs,
        out: &TrackOutput,
        step: Option<&ChainStep>,
    ) {
        let Some(session) = &self.map else {
            return;
        };
        let mount = self.odom.mount(out.camera.index);
        let base = self
            .localized
            .as_ref()
            .zip(mount)
            .map(|(l, m)| base_in_map(&l.pose, &m.base_from_optical));
        if let Some(l) = &self.localized {
            self.last_localized = Some(LastLocalized {
                camera: out.camera.name.clone(),
                stamp: l.stamp,
                keyframe: l.keyframe.clone(),
                against_map_keyframe: l.against_map_keyframe,
                base_in_map: base,
            });
        }
        let drives = step.is_some_and(|s| s.drives);
        let frame = MapFrame {
            stamp: out.stamp,
            // While mapping the map frame is odom: the robot's pose in it is `~/odom`'s.
            base_in_map: base
                .as_ref()
                .filter(|_| session.mode() == MapMode::Localization),
            map_from_odom: self.map_from_odom.as_ref().filter(|_| drives),
        };
        add_map_messages(outputs, &frame, &self.map_config, &self.node);
        outputs.diagnostics.push(map_status(&MapState {
            mode: session.mode(),
            path: self.map_path.as_deref(),
            frame_id: &self.map_config.frame_id,
            map_keyframes: session.map_keyframes(),
            counters: session.counters(),
            camera: &out.camera.name,
            localized: self.localized.is_some(),
            last: self.last_localized.as_ref(),
            map_from_odom: self.map_from_odom.as_ref(),
        }));
    }
}

/// A camera's mount: TF's `base_frame → optical frame`, else `cameras.mounts`, else the
/// identity with a WARN (once per camera: the chain asks once).
fn mount_of(
    camera: Option<&CameraConfig>,
    optical_frame: &str,
    node: &NodeConfig,
    transforms: &SharedTransforms,
) -> Mount {
    let name = camera.map(|c| c.name.as_str()).unwrap_or("?");
    let looked_up = match transforms.read() {
        Ok(tree) => tree.lookup(&node.base_frame, optical_frame),
        // A panicked writer leaves the last complete tree: still usable.
        Err(poisoned) => poisoned
            .into_inner()
            .lookup(&node.base_frame, optical_frame),
    };
    let tf_error = match looked_up {
        Ok(pose) => {
            log::info!(
                "camera {name}: mount {} → {optical_frame} from TF",
                node.base_frame
            );
            return Mount {
                base_from_optical: pose,
                source: MountSource::Tf,
            };
        }
        Err(e) => e,
    };
    if let Some(e) = camera.and_then(|c| c.mount.as_ref()) {
        log::info!(
            "camera {name}: mount from cameras.mounts (TF has no {} → {optical_frame}: {tf_error})",
            node.base_frame
        );
        return Mount::from_extrinsic(e);
    }
    log::warn!(
        "camera {name}: no mount: TF has no {} → {optical_frame} ({tf_error}) and \
         cameras.mounts has none for it; using the identity (the robot's pose is the camera's, \
         optical axes: z forward)",
        node.base_frame
    );
    Mount {
        base_from_optical: nalgebra::Isometry3::identity(),
        source: MountSource::Identity,
    }
}

impl<M: PairMatcher> FrameProcessor for TrackerProcessor<M> {
    fn process(
        &mut self,
        frame: CameraFrame,
        schedule: &ScheduleInfo,
    ) -> Result<FrameOutputs, PipelineError> {
        let (_, messages) = self.track_frame(&frame, schedule)?;
        Ok(messages)
    }

    fn control(&mut self, command: ControlCommand) -> Vec<DiagnosticStatus> {
        let start = Instant::now();
        let what = command.name();
        let camera = command.camera().map(str::trim);
        let payload = camera.unwrap_or("");
        let known = camera.is_none_or(|c| self.cameras.iter().any(|k| k.name == c));
        let (level, message) = if !known {
            (
                DiagnosticStatus::WARN,
                format!(
                    "{what}: no camera named `{payload}`; expected one of [{}] or an empty \
                     string for all cameras",
                    self.cameras
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else {
            match command {
                ControlCommand::Relocalize(_) => {
                    let n = self.tracker.request_relocalization(camera);
                    (
                        DiagnosticStatus::OK,
                        format!("relocalize: requested for {n} camera(s) on their next frame"),
                    )
                }
                ControlCommand::Reset(_) => {
                    let n = self.tracker.reset(camera);
                    (
                        DiagnosticStatus::OK,
                        format!("reset: {n} keyframe(s) forgotten"),
                    )
                }
                ControlCommand::SaveMap => self.save_map(),
            }
        };
        if level == DiagnosticStatus::OK {
            log::info!("{message}");
        } else {
            log::warn!("{message}");
        }
        vec![DiagnosticStatus {
            level,
            name: "imd_matcher: control".into(),
            message,
            hardware_id: String::new(),
            values: vec![
                KeyValue::new("request", what),
                KeyValue::new("camera", payload),
                KeyValue::new(
                    "handled_ms",
                    format!("{:.3}", start.elapsed().as_secs_f64() * 1e3),
                ),
            ],
        }]
    }

    fn reconfigure(&mut self, config: &ImdConfig) {
        if let Err(e) = self
            .tracker
            .set_config(config.tracker.clone(), config.pose.clone())
        {
            log::error!("new tracker/pose parameters rejected: {e}");
        }
        match MetricOptions::of(config) {
            Ok(metric) => self.tracker.set_metric_options(metric),
            Err(e) => log::error!("new absolute_pose/depth/stereo parameters rejected: {e}"),
        }
        if let Err(e) = self.tracker.set_integrity(config.integrity.clone()) {
            log::error!("new integrity parameters rejected: {e}");
        }
        self.odom.reconfigure(&config.node);
        self.node = config.node.clone();
        // The map's mode and a localization map are fixed at start; its frame name, TF switch,
        // and, mapping, where and whether `save_map` may write follow.
        self.map_config.frame_id = config.map.frame_id.clone();
        self.map_config.publish_tf = config.map.publish_tf;
        self.map_config.overwrite = config.map.overwrite;
        let path = config.map.path.trim();
        let mapping = self.map.as_ref().map(|m| m.mode()) == Some(MapMode::Mapping);
        if mapping && !path.is_empty() && self.map_path.as_deref() != Some(Path::new(path)) {
            log::info!("map: ~/save_map now writes {path}");
            self.set_map_path(path);
        }
    }
}
