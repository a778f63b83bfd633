//! Bag replay input: camera topics of a bag → [`CameraFrame`]s, paired exactly as the ROS node
//! pairs live messages ([`StampPairer`]), so replay and node feed the pipeline's
//! `FrameProcessor` the same frames.

use std::collections::HashMap;
use std::time::Instant;

use super::{Bag, BagError, BagPayload, BagStream, ReadReport};
use crate::io::frames::{CameraConfig, CameraFrame, CameraImage};
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::sensor_msgs::CameraInfo;
use crate::io::sync::{PairStats, StampPairer};

#[derive(Debug, Clone, Copy)]
enum Role {
    Image(usize),
    Info(usize),
}

/// Iterator over the frames of a bag; see [`BagFrames::new`].
#[derive(Debug)]
pub struct BagFrames {
    messages: BagStream,
    cameras: Vec<CameraConfig>,
    roles: HashMap<String, Role>,
    pairers: Vec<StampPairer<CameraImage, CameraInfo>>,
}

impl BagFrames {
    /// Frames of `cameras` (image topic raw or `…/compressed`, plus camera_info topic), in
    /// log-time order, each image paired with the camera_info nearest in stamp within
    /// `tolerance_s`. Messages that fail to decode come through as
    /// `Err(BagError::Message { .. })` and iteration goes on; images that never pair are
    /// counted in [`BagFrames::stats`].
    pub fn new(reader: &Bag, cameras: &[CameraConfig], tolerance_s: f64) -> Result<Self, BagError> {
        let mut roles = HashMap::new();
        let mut topics = Vec::new();
        let type_of = |topic: &str| {
            reader
                .topics()
                .iter()
                .find(|t| t.name == topic)
                .map(|t| t.message_type.as_str())
        };
        let wrong = |topic: &str, expected: &str| BagError::Topic {
            path: reader.path().display().to_string(),
            topic: topic.to_string(),
            reason: format!(
                "carries {}; a camera needs {expected} here",
                type_of(topic).unwrap_or("nothing (not in the bag)")
            ),
        };
        for (i, c) in cameras.iter().enumerate() {
            if !matches!(
                type_of(&c.image_topic),
                Some("sensor_msgs/msg/Image" | "sensor_msgs/msg/CompressedImage")
            ) {
                return Err(wrong(
                    &c.image_topic,
                    "sensor_msgs/msg/Image or CompressedImage",
                ));
            }
            if type_of(&c.camera_info_topic) != Some("sensor_msgs/msg/CameraInfo") {
                return Err(wrong(&c.camera_info_topic, "sensor_msgs/msg/CameraInfo"));
            }
            roles.insert(c.image_topic.clone(), Role::Image(i));
            roles.insert(c.camera_info_topic.clone(), Role::Info(i));
            topics.push(c.image_topic.as_str());
            topics.push(c.camera_info_topic.as_str());
        }
        Ok(BagFrames {
            messages: reader.messages(&topics)?,
            cameras: cameras.to_vec(),
            roles,
            pairers: cameras
                .iter()
                .map(|_| StampPairer::new(tolerance_s))
                .collect(),
        })
    }

    /// What reading the bag skipped so far (damaged chunks or records, missing files).
    pub fn report(&self) -> ReadReport {
        self.messages.report()
    }

    /// End of input: images still waiting for a camera_info are counted as unpaired (see
    /// [`BagFrames::stats`]) and returned as (camera, image stamp), each logged.
    pub fn finish_pairing(&mut self) -> Vec<(usize, Time)> {
        let mut out = Vec::new();
        for (i, p) in self.pairers.iter_mut().enumerate() {
            if let Some((stamp, _)) = p.take_pending() {
                log::warn!(
                    "{}: image {}.{:09} found no camera_info within the sync tolerance before \
                     the end of the bag",
                    self.cameras[i].image_topic,
                    stamp.sec,
                    stamp.nanosec
                );
                out.push((i, stamp));
            }
        }
        out
    }

    /// Pairing counters per camera.
    pub fn stats(&self) -> Vec<PairStats> {
        self.pairers.iter().map(|p| p.stats()).collect()
    }

    fn frame(&self, i: usize, image: CameraImage, info: CameraInfo) -> CameraFrame {
        CameraFrame {
            camera: i,
            camera_name: self.cameras[i].name.clone(),
            image,
            info,
            received: Instant::now(),
        }
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
            let pair = match (role, m.payload) {
                (Role::Image(i), BagPayload::Image(img)) => {
                    let stamp = img.header.stamp;
                    self.pairers[i]
                        .push_image(stamp, CameraImage::Raw(img))
                        .map(|p| (i, p))
                }
                (Role::Image(i), BagPayload::CompressedImage(img)) => {
                    let stamp = img.header.stamp;
                    self.pairers[i]
                        .push_image(stamp, CameraImage::Compressed(img))
                        .map(|p| (i, p))
                }
                (Role::Info(i), BagPayload::CameraInfo(info)) => {
                    let stamp = info.header.stamp;
                    self.pairers[i].push_info(stamp, info).map(|p| (i, p))
                }
                // Topic types were checked in `new`; nothing else reaches here.
                _ => None,
            };
            if let Some((i, (image, info))) = pair {
                return Some(Ok(self.frame(i, image, info)));
            }
        }
    }
}
