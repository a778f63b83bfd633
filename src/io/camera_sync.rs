//! [`CameraSync`]: one camera's streams → complete [`CameraFrame`]s, the same for the ROS node
//! (messages as they arrive) and for bag replay (messages in log order).
//!
//! Stages, each a [`StampPairer`] (nearest stamp within the tolerance, either arrival order):
//! 1. image + camera_info;
//! 2. with a stereo partner configured, right image + right camera_info;
//! 3. with depth or stereo configured, the pair of stage 1 + the depth image or the right pair
//!    of stage 2: a frame waits for its metric companion as it waits for its camera_info (a
//!    camera configured for metric scale never silently falls back to monocular frames).
//!
//! Every image ends up in exactly one place: a frame, an unmatched count, or waiting.

use std::sync::Arc;
use std::time::Instant;

use crate::io::frames::{CameraConfig, CameraFrame, CameraImage, MetricMessages, MetricSource};
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::sensor_msgs::{CameraInfo, Image};
use crate::io::sync::StampPairer;

/// One message of a camera's streams.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraMessage {
    /// The (left) image.
    Image(CameraImage),
    /// Its camera_info.
    Info(CameraInfo),
    /// The aligned depth image.
    Depth(Image),
    /// The stereo partner's image.
    RightImage(CameraImage),
    /// The stereo partner's camera_info.
    RightInfo(CameraInfo),
}

/// Counters of a [`CameraSync`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Complete frames emitted.
    pub frames: u64,
    /// Images that never became a frame: no camera_info, or (metric cameras) no depth / right
    /// view, within the tolerance before a newer image replaced them.
    pub images_unmatched: u64,
    /// Of those, images whose camera_info paired but whose depth / right view never came.
    pub metric_unmatched: u64,
    /// Right images never paired with a right camera_info.
    pub right_unmatched: u64,
    /// 1 while an image waits for its camera_info.
    pub waiting_for_info: u64,
    /// 1 while an image with its camera_info waits for its depth / right view.
    pub waiting_for_metric: u64,
}

/// Stage 1's output on its way to stage 3.
#[derive(Debug)]
struct Paired {
    received: Instant,
    image: CameraImage,
    info: CameraInfo,
}

/// Assembles one camera's frames; see the module doc.
#[derive(Debug)]
pub struct CameraSync {
    index: usize,
    name: String,
    main: StampPairer<(Instant, CameraImage), CameraInfo>,
    right: Option<StampPairer<CameraImage, CameraInfo>>,
    metric: Option<StampPairer<Paired, Arc<MetricMessages>>>,
    frames: u64,
}

impl CameraSync {
    /// Synchronize camera `index` of the configuration, pairing within `tolerance_s`.
    pub fn new(index: usize, camera: &CameraConfig, tolerance_s: f64) -> Self {
        let (right, metric) = match camera.metric {
            MetricSource::Monocular => (None, None),
            MetricSource::Depth { .. } => (None, Some(StampPairer::new(tolerance_s))),
            MetricSource::Stereo(_) => (
                Some(StampPairer::new(tolerance_s)),
                Some(StampPairer::new(tolerance_s)),
            ),
        };
        CameraSync {
            index,
            name: camera.name.clone(),
            main: StampPairer::new(tolerance_s),
            right,
            metric,
            frames: 0,
        }
    }

    /// Change the tolerance of every stage.
    pub fn set_tolerance(&mut self, tolerance_s: f64) {
        self.main.set_tolerance(tolerance_s);
        if let Some(r) = &mut self.right {
            r.set_tolerance(tolerance_s);
        }
        if let Some(m) = &mut self.metric {
            m.set_tolerance(tolerance_s);
        }
    }

    /// Whether the camera takes depth images (else [`CameraMessage::Depth`] is ignored).
    pub fn wants_depth(&self) -> bool {
        self.metric.is_some() && self.right.is_none()
    }

    /// Offer a message received at `received`; returns a frame when one completes. Messages of
    /// a stream the camera is not configured for are ignored.
    pub fn push(&mut self, message: CameraMessage, received: Instant) -> Option<CameraFrame> {
        match message {
            CameraMessage::Image(image) => {
                let stamp = image.header().stamp;
                let pair = self.main.push_image(stamp, (received, image))?;
                self.after_main(pair)
            }
            CameraMessage::Info(info) => {
                let stamp = info.header.stamp;
                let pair = self.main.push_info(stamp, info)?;
                self.after_main(pair)
            }
            CameraMessage::Depth(depth) => {
                if !self.wants_depth() {
                    return None;
                }
                let stamp = depth.header.stamp;
                self.companion(stamp, MetricMessages::Depth(depth))
            }
            CameraMessage::RightImage(image) => {
                let stamp = image.header().stamp;
                let (image, info) = self.right.as_mut()?.push_image(stamp, image)?;
                self.companion(
                    stamp,
                    MetricMessages::Stereo {
                        image,
                        info: Box::new(info),
                    },
                )
            }
            CameraMessage::RightInfo(info) => {
                let stamp = info.header.stamp;
                let (image, info) = self.right.as_mut()?.push_info(stamp, info)?;
                let stamp = image.header().stamp;
                self.companion(
                    stamp,
                    MetricMessages::Stereo {
                        image,
                        info: Box::new(info),
                    },
                )
            }
        }
    }

    fn after_main(
        &mut self,
        ((received, image), info): ((Instant, CameraImage), CameraInfo),
    ) -> Option<CameraFrame> {
        let Some(metric) = &mut self.metric else {
            return Some(self.frame(received, image, info, None));
        };
        let stamp = image.header().stamp;
        let (p, m) = metric.push_image(
            stamp,
            Paired {
                received,
                image,
                info,
            },
        )?;
        Some(self.frame(p.received, p.image, p.info, Some(m)))
    }

    fn companion(&mut self, stamp: Time, metric: MetricMessages) -> Option<CameraFrame> {
        let (p, m) = self.metric.as_mut()?.push_info(stamp, Arc::new(metric))?;
        Some(self.frame(p.received, p.image, p.info, Some(m)))
    }

    fn frame(
        &mut self,
        received: Instant,
        image: CameraImage,
        info: CameraInfo,
        metric: Option<Arc<MetricMessages>>,
    ) -> CameraFrame {
        self.frames += 1;
        CameraFrame {
            camera: self.index,
            camera_name: self.name.clone(),
            image,
            info,
            metric,
            received,
        }
    }

    /// End of input: the images still waiting (for a camera_info or a metric companion) are
    /// counted as unmatched; returns their stamps.
    pub fn take_pending(&mut self) -> Vec<Time> {
        let mut out = Vec::new();
        if let Some((stamp, _)) = self.main.take_pending() {
            out.push(stamp);
        }
        if let Some((stamp, _)) = self.metric.as_mut().and_then(|m| m.take_pending()) {
            out.push(stamp);
        }
        if let Some(r) = &mut self.right {
            r.take_pending();
        }
        out
    }

    /// Counters so far.
    pub fn stats(&self) -> SyncStats {
        let main = self.main.stats();
        let metric = self.metric.as_ref().map(|m| m.stats()).unwrap_or_default();
        SyncStats {
            frames: self.frames,
            images_unmatched: main.images_unmatched + metric.images_unmatched,
            metric_unmatched: metric.images_unmatched,
            right_unmatched: self
                .right
                .as_ref()
                .map_or(0, |r| r.stats().images_unmatched),
            waiting_for_info: self.main.has_pending() as u64,
            waiting_for_metric: self.metric.as_ref().is_some_and(|m| m.has_pending()) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::frames::StereoConfig;
    use crate::io::msgs::std_msgs::Header;

    fn t(ms: i64) -> Time {
        Time::from_nanos(ms * 1_000_000)
    }

    fn header(ms: i64) -> Header {
        Header {
            stamp: t(ms),
            frame_id: "f".into(),
        }
    }

    fn image(ms: i64) -> CameraImage {
        CameraImage::Raw(Image {
            header: header(ms),
            ..Default::default()
        })
    }

    fn info(ms: i64) -> CameraInfo {
        CameraInfo {
            header: header(ms),
            ..Default::default()
        }
    }

    fn depth(ms: i64) -> Image {
        Image {
            header: header(ms),
            encoding: "16UC1".into(),
            ..Default::default()
        }
    }

    fn camera(metric: MetricSource) -> CameraConfig {
        CameraConfig {
            name: "c".into(),
            image_topic: "/c/image".into(),
            camera_info_topic: "/c/info".into(),
            optical_frame: None,
            metric,
            mount: None,
        }
    }

    fn stamp_of(f: &CameraFrame) -> i64 {
        f.image.header().stamp.as_nanos() / 1_000_000
    }

    #[test]
    fn depth_frames_wait_for_their_depth_in_either_order() {
        let cam = camera(MetricSource::Depth {
            topic: "/c/depth".into(),
        });
        let mut s = CameraSync::new(0, &cam, 0.005);
        let now = Instant::now();
        // Depth first, then info and image: complete on the image.
        assert!(s.push(CameraMessage::Depth(depth(100)), now).is_none());
        assert!(s.push(CameraMessage::Info(info(100)), now).is_none());
        let f = s.push(CameraMessage::Image(image(101)), now).unwrap();
        assert_eq!(stamp_of(&f), 101);
        assert!(matches!(
            f.metric.as_deref(),
            Some(MetricMessages::Depth(_))
        ));
        // Image and info first: waits for its depth, then completes on it.
        assert!(s.push(CameraMessage::Image(image(200)), now).is_none());
        assert!(s.push(CameraMessage::Info(info(200)), now).is_none());
        assert_eq!(s.stats().waiting_for_metric, 1);
        let f = s.push(CameraMessage::Depth(depth(203)), now).unwrap();
        assert_eq!(stamp_of(&f), 200);
        // No depth within 5 ms: the next frame supersedes it, counted as metric-unmatched.
        s.push(CameraMessage::Info(info(300)), now);
        assert!(s.push(CameraMessage::Image(image(300)), now).is_none());
        s.push(CameraMessage::Depth(depth(397)), now);
        s.push(CameraMessage::Info(info(400)), now);
        let f = s.push(CameraMessage::Image(image(399)), now).unwrap();
        assert_eq!(stamp_of(&f), 399);
        let st = s.stats();
        assert_eq!(
            (st.frames, st.images_unmatched, st.metric_unmatched),
            (3, 1, 1)
        );
        // Right-camera messages are ignored by a depth camera.
        assert!(s.push(CameraMessage::RightImage(image(500)), now).is_none());
        assert_eq!(s.take_pending(), Vec::<Time>::new());
    }

    #[test]
    fn stereo_frames_need_the_right_image_and_its_camera_info() {
        let cam = camera(MetricSource::Stereo(StereoConfig {
            image_topic: "/r/image".into(),
            camera_info_topic: "/r/info".into(),
            right_from_left: None,
        }));
        let mut s = CameraSync::new(2, &cam, 0.0);
        let now = Instant::now();
        assert!(!s.wants_depth());
        assert!(s.push(CameraMessage::Depth(depth(100)), now).is_none());
        assert!(s.push(CameraMessage::Image(image(100)), now).is_none());
        assert!(s.push(CameraMessage::Info(info(100)), now).is_none());
        assert!(s.push(CameraMessage::RightImage(image(100)), now).is_none());
        let f = s.push(CameraMessage::RightInfo(info(100)), now).unwrap();
        assert_eq!((f.camera, stamp_of(&f)), (2, 100));
        assert!(matches!(
            f.metric.as_deref(),
            Some(MetricMessages::Stereo { .. })
        ));
        // A frame whose right view never comes: counted at the end.
        s.push(CameraMessage::Image(image(200)), now);
        s.push(CameraMessage::Info(info(200)), now);
        assert_eq!(s.take_pending(), vec![t(200)]);
        let st = s.stats();
        assert_eq!(
            (st.frames, st.images_unmatched, st.metric_unmatched),
            (1, 1, 1)
        );
    }

    #[test]
    fn monocular_cameras_pair_image_and_info_only() {
        let mut s = CameraSync::new(0, &camera(MetricSource::Monocular), 0.0);
        let now = Instant::now();
        assert!(s.push(CameraMessage::Depth(depth(1)), now).is_none());
        assert!(s.push(CameraMessage::Image(image(1)), now).is_none());
        let f = s.push(CameraMessage::Info(info(1)), now).unwrap();
        assert!(f.metric.is_none());
        assert_eq!(s.stats().frames, 1);
    }
}
