//! Bag replay input: camera topics of a bag → [`CameraFrame`]s, assembled exactly as the ROS
//! node assembles live messages ([`CameraSync`]), so replay and node feed the pipeline's
//! `FrameProcessor` the same frames.

use std::collections::HashMap;
use std::time::Instant;

use super::{Bag, BagError, BagPayload, BagStream, ReadReport};
use crate::io::camera_sync::{CameraMessage, CameraSync, SyncStats};
use crate::io::frames::{CameraConfig, CameraFrame, CameraImage, MetricSource};
use crate::io::msgs::builtin_interfaces::Time;

#[derive(Debug, Clone, Copy)]
enum Role {
    Image(usize),
    Info(usize),
    Depth(usize),
    RightImage(usize),
    RightInfo(usize),
}

/// Iterator over the frames of a bag; see [`BagFrames::new`].
#[derive(Debug)]
pub struct BagFrames {
    messages: BagStream,
    cameras: Vec<CameraConfig>,
    roles: HashMap<String, Role>,
    syncs: Vec<CameraSync>,
}

const IMAGE_TYPES: &str = "sensor_msgs/msg/Image or CompressedImage";
const INFO_TYPE: &str = "sensor_msgs/msg/CameraInfo";

impl BagFrames {
    /// Frames of `cameras` (image topic raw or `…/compressed`, camera_info topic, and the depth
    /// or stereo topics of metric cameras), in log-time order, assembled by [`CameraSync`] with
    /// stamps within `tolerance_s`, exactly as the node assembles live messages. Messages that
    /// fail to decode come through as `Err(BagError::Message { .. })` and iteration goes on;
    /// images that never complete are counted in [`BagFrames::stats`].
    pub fn new(reader: &Bag, cameras: &[CameraConfig], tolerance_s: f64) -> Result<Self, BagError> {
        let mut roles = HashMap::new();
        let type_of = |topic: &str| {
            reader
                .topics()
                .iter()
                .find(|t| t.name == topic)
                .map(|t| t.message_type.as_str())
        };
        let check = |topic: &str, expected: &str| -> Result<(), BagError> {
            let found = type_of(topic);
            let ok = match expected {
                IMAGE_TYPES => matches!(
                    found,
                    Some("sensor_msgs/msg/Image" | "sensor_msgs/msg/CompressedImage")
                ),
                other => found == Some(other),
            };
            if ok {
                return Ok(());
            }
            let reason = match found {
                Some(found) => format!("carries {found}; a camera needs {expected} here"),
                // The whole list: a misspelt topic is then one look away.
                None => format!(
                    "is not in the bag (a camera needs {expected} here); it has {}",
                    reader
                        .topics()
                        .iter()
                        .map(|t| format!("{} ({})", t.name, t.message_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            Err(BagError::Topic {
                path: reader.path().display().to_string(),
                topic: topic.to_string(),
                reason,
            })
        };
        for (i, c) in cameras.iter().enumerate() {
            check(&c.image_topic, IMAGE_TYPES)?;
            check(&c.camera_info_topic, INFO_TYPE)?;
            roles.insert(c.image_topic.clone(), Role::Image(i));
            roles.insert(c.camera_info_topic.clone(), Role::Info(i));
            match &c.metric {
                MetricSource::Monocular => {}
                MetricSource::Depth { topic } => {
                    check(topic, "sensor_msgs/msg/Image")?;
                    roles.insert(topic.clone(), Role::Depth(i));
                }
                MetricSource::Stereo(s) => {
                    check(&s.image_topic, IMAGE_TYPES)?;
                    check(&s.camera_info_topic, INFO_TYPE)?;
                    roles.insert(s.image_topic.clone(), Role::RightImage(i));
                    roles.insert(s.camera_info_topic.clone(), Role::RightInfo(i));
                }
            }
        }
        let topics: Vec<&str> = cameras.iter().flat_map(|c| c.topics()).collect();
        Ok(BagFrames {
            messages: reader.messages(&topics)?,
            cameras: cameras.to_vec(),
            roles,
            syncs: cameras
                .iter()
                .enumerate()
                .map(|(i, c)| CameraSync::new(i, c, tolerance_s))
                .collect(),
        })
    }

    /// What reading the bag skipped so far (damaged chunks or records, missing files).
    pub fn report(&self) -> ReadReport {
        self.messages.report()
    }

    /// End of input: images still waiting for a camera_info (or a metric camera's depth or
    /// right view) are counted as unpaired (see [`BagFrames::stats`]) and returned as (camera,
    /// image stamp), each logged.
    pub fn finish_pairing(&mut self) -> Vec<(usize, Time)> {
        let mut out = Vec::new();
        for (i, s) in self.syncs.iter_mut().enumerate() {
            for stamp in s.take_pending() {
                log::warn!(
                    "{}: image {stamp} found no camera_info{} within the sync tolerance before \
                     the end of the bag",
                    self.cameras[i].image_topic,
                    match self.cameras[i].metric {
                        MetricSource::Monocular => "",
                        MetricSource::Depth { .. } => " or depth image",
                        MetricSource::Stereo(_) => " or right view",
                    }
                );
                out.push((i, stamp));
            }
        }
        out
    }

    /// Pairing counters per camera.
    pub fn stats(&self) -> Vec<SyncStats> {
        self.syncs.iter().map(|s| s.stats()).collect()
    }
}

impl Iterator for BagFrames {
    type Item = Result<CameraFrame, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let m = match self.messages.next()? {
                Ok(m) => m,
                Err(e) => return Some(Err(e)),
            };
            let Some(&role) = self.roles.get(&*m.topic) else {
                continue;
            };
            let image = |payload: BagPayload| match payload {
                BagPayload::Image(img) => Some(CameraImage::Raw(img)),
                BagPayload::CompressedImage(img) => Some(CameraImage::Compressed(img)),
                _ => None,
            };
            // Topic types were checked in `new`; other payloads do not reach here.
            let (i, message) = match (role, m.payload) {
                (Role::Image(i), p) => (i, image(p).map(CameraMessage::Image)),
                (Role::RightImage(i), p) => (i, image(p).map(CameraMessage::RightImage)),
                (Role::Info(i), BagPayload::CameraInfo(info)) => {
                    (i, Some(CameraMessage::Info(info)))
                }
                (Role::RightInfo(i), BagPayload::CameraInfo(info)) => {
                    (i, Some(CameraMessage::RightInfo(info)))
                }
                (Role::Depth(i), BagPayload::Image(img)) => (i, Some(CameraMessage::Depth(img))),
                _ => continue,
            };
            let Some(message) = message else { continue };
            if let Some(frame) = self.syncs[i].push(message, Instant::now()) {
                return Some(Ok(frame));
            }
        }
    }
}
