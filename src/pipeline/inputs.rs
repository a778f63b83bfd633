//! The input side of one camera, ROS-free: [`CameraInput`] assembles frames from the camera's
//! streams ([`CameraSync`]) and counts every message, [`camera_status`] turns the counters into
//! the `imd_matcher: input <camera>` diagnostics, and [`control_services`] names the control
//! services per camera. The ROS node feeds them from its subscriptions; tests and other
//! adapters can use them without a ROS installation.

use std::time::{Duration, Instant};

use super::contract::ControlCommand;
use super::messages::NODE_NAME;
use super::worker::WorkerCameraStats;
use super::CauseLog;
use crate::config::CameraConfig;
use crate::io::camera_sync::{CameraMessage, CameraSync};
use crate::io::frames::{CameraFrame, CameraImage, MetricSource};
use crate::io::msgs::diagnostic_msgs::{DiagnosticStatus, KeyValue};
use crate::io::msgs::sensor_msgs::CameraInfo;

/// An image or camera_info silent for longer than this makes the camera STALE.
const STALE_AFTER: Duration = Duration::from_secs(2);

/// Counters and state of one camera's inputs (processing counters live in the worker).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraStats {
    /// Images received.
    pub images: u64,
    /// camera_info messages received.
    pub infos: u64,
    /// Depth images or right-camera messages received (metric cameras).
    pub metric_messages: u64,
    /// Complete frames handed to the worker.
    pub paired: u64,
    /// Images replaced before they became a frame (no camera_info, or no depth / right view).
    pub unmatched: u64,
    /// Of those, images that had their camera_info but no depth / right view.
    pub metric_unmatched: u64,
    /// 1 while an image waits for its camera_info.
    pub waiting_for_info: u64,
    /// 1 while an image waits for its depth / right view.
    pub waiting_for_metric: u64,
    /// Messages that could not be converted (wrong array lengths, …).
    pub bad_messages: u64,
    /// Most recent input error, for diagnostics (`None` before the first).
    pub last_error: Option<String>,
    /// Bad messages per cause (the first of each is logged).
    pub bad_message_causes: CauseLog,
    /// When the last image arrived.
    pub last_image: Option<Instant>,
    /// When the last camera_info arrived.
    pub last_info: Option<Instant>,
    /// When the last depth image / right-camera message arrived.
    pub last_metric: Option<Instant>,
}

/// One camera's input side: assembles frames ([`CameraSync`]) and counts everything. ROS-free
/// so it can be tested without a ROS installation.
#[derive(Debug)]
pub struct CameraInput {
    /// Index in the configuration.
    pub index: usize,
    /// Configuration of the camera.
    pub camera: CameraConfig,
    sync: CameraSync,
    /// Counters.
    pub stats: CameraStats,
}

impl CameraInput {
    /// Input for camera `index` pairing within `tolerance_s`.
    pub fn new(index: usize, camera: CameraConfig, tolerance_s: f64) -> Self {
        CameraInput {
            index,
            sync: CameraSync::new(index, &camera, tolerance_s),
            camera,
            stats: CameraStats::default(),
        }
    }

    /// Change the pairing tolerance (parameter update).
    pub fn set_tolerance(&mut self, tolerance_s: f64) {
        self.sync.set_tolerance(tolerance_s);
    }

    /// A message of one of the camera's streams arrived; returns the frame it completes.
    pub fn on_message(&mut self, message: CameraMessage) -> Option<CameraFrame> {
        let now = Instant::now();
        match &message {
            CameraMessage::Image(_) => {
                self.stats.images += 1;
                self.stats.last_image = Some(now);
            }
            CameraMessage::Info(_) => {
                self.stats.infos += 1;
                self.stats.last_info = Some(now);
            }
            CameraMessage::Depth(_)
            | CameraMessage::RightImage(_)
            | CameraMessage::RightInfo(_) => {
                self.stats.metric_messages += 1;
                self.stats.last_metric = Some(now);
            }
        }
        let frame = self.sync.push(message, now);
        let s = self.sync.stats();
        self.stats.paired = s.frames;
        self.stats.unmatched = s.images_unmatched;
        self.stats.metric_unmatched = s.metric_unmatched;
        self.stats.waiting_for_info = s.waiting_for_info;
        self.stats.waiting_for_metric = s.waiting_for_metric;
        frame
    }

    /// An image arrived; returns the frame if it completes now.
    pub fn on_image(&mut self, image: CameraImage) -> Option<CameraFrame> {
        self.on_message(CameraMessage::Image(image))
    }

    /// A camera_info arrived; returns the frame if a waiting image completes with it.
    pub fn on_info(&mut self, info: CameraInfo) -> Option<CameraFrame> {
        self.on_message(CameraMessage::Info(info))
    }

    /// Record a bad message on `topic`; the first of each cause is logged.
    pub fn bad_message(&mut self, topic: &str, reason: &str) {
        self.stats.bad_messages += 1;
        let error = format!("{topic}: {reason}");
        let first = self.stats.bad_message_causes.record(&error);
        self.stats.last_error = Some(error);
        if first {
            log::error!(
                "{topic}: dropping message: {reason} (further messages failing so are counted \
                 in /diagnostics)"
            );
        }
    }
}

/// The node's own diagnostics for one camera, from its input and scheduling counters at
/// time `now`.
pub fn camera_status(
    input: &CameraInput,
    work: &WorkerCameraStats,
    tolerance_s: f64,
    now: Instant,
) -> DiagnosticStatus {
    let s = &input.stats;
    let c = &input.camera;
    let age = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
    let (metric_what, metric_topic) = match &c.metric {
        MetricSource::Monocular => ("", None),
        MetricSource::Depth { topic } => ("depth image", Some(topic.as_str())),
        MetricSource::Stereo(st) => ("right image", Some(st.image_topic.as_str())),
    };
    let (level, message) = match (age(s.last_image), age(s.last_info)) {
        (None, _) => (
            DiagnosticStatus::STALE,
            format!("no image received on {}", c.image_topic),
        ),
        // Images but never a camera_info: that is the cause to report, stale or not.
        (Some(a), None) => (
            if a > STALE_AFTER {
                DiagnosticStatus::STALE
            } else {
                DiagnosticStatus::WARN
            },
            format!(
                "no camera_info received on {} ({} images waiting for one)",
                c.camera_info_topic, s.images
            ),
        ),
        (Some(a), _) if a > STALE_AFTER => (
            DiagnosticStatus::STALE,
            format!("no image on {} for {:.1} s", c.image_topic, a.as_secs_f64()),
        ),
        (_, Some(a)) if a > STALE_AFTER => (
            DiagnosticStatus::WARN,
            format!(
                "no camera_info on {} for {:.1} s",
                c.camera_info_topic,
                a.as_secs_f64()
            ),
        ),
        _ if metric_topic.is_some() && s.last_metric.is_none() => (
            DiagnosticStatus::WARN,
            format!(
                "no {} received on {} ({} images waiting for one)",
                metric_what,
                metric_topic.unwrap_or_default(),
                s.images
            ),
        ),
        _ if s.paired == 0 => (
            DiagnosticStatus::WARN,
            format!(
                "images and camera_info{} arrive but no stamps agree within \
                 node.sync_tolerance_s = {tolerance_s} s",
                if metric_topic.is_some() {
                    format!(" and {metric_what}s")
                } else {
                    String::new()
                }
            ),
        ),
        _ if work.failed > 0 && work.processed == 0 => (
            DiagnosticStatus::ERROR,
            format!(
                "every frame failed: {}",
                work.last_error.as_deref().unwrap_or_default()
            ),
        ),
        _ => (DiagnosticStatus::OK, "receiving and pairing frames".into()),
    };
    // A processing error says more than an input error; the message field wants a string, so
    // "none yet" is the empty string there.
    let last_error = work
        .last_error
        .as_deref()
        .or(s.last_error.as_deref())
        .unwrap_or_default();
    DiagnosticStatus {
        level,
        name: format!("{NODE_NAME}: input {}", c.name),
        message,
        hardware_id: c.name.clone(),
        values: vec![
            KeyValue::new("image_topic", &c.image_topic),
            KeyValue::new("camera_info_topic", &c.camera_info_topic),
            KeyValue::new("images_received", s.images),
            KeyValue::new("camera_infos_received", s.infos),
            KeyValue::new("pairs", s.paired),
            KeyValue::new("images_unmatched", s.unmatched),
            KeyValue::new("images_waiting_for_camera_info", s.waiting_for_info),
            KeyValue::new("metric_topic", metric_topic.unwrap_or_default()),
            KeyValue::new("metric_messages_received", s.metric_messages),
            KeyValue::new("images_unmatched_metric", s.metric_unmatched),
            KeyValue::new("images_waiting_for_metric", s.waiting_for_metric),
            KeyValue::new("frames_dropped_newest_wins", work.dropped),
            KeyValue::new("frames_skipped_max_rate", work.rate_skipped),
            KeyValue::new("frames_processed", work.processed),
            KeyValue::new("frames_waiting", work.waiting),
            KeyValue::new("frames_in_progress", work.in_progress),
            KeyValue::new("processing_errors", work.failed),
            KeyValue::new("bad_messages", s.bad_messages),
            KeyValue::new("last_error", last_error),
        ],
    }
}

/// The control services: `~/relocalize` and `~/reset` act on every camera, `~/<camera>/…` on
/// one (cameras whose name is not a valid ROS name token get no service of their own).
pub fn control_services(cameras: &[CameraConfig]) -> Vec<(String, ControlCommand)> {
    let mut services = vec![
        ("~/relocalize".to_string(), ControlCommand::Relocalize(None)),
        ("~/reset".to_string(), ControlCommand::Reset(None)),
        ("~/save_map".to_string(), ControlCommand::SaveMap),
    ];
    for c in cameras {
        let token = !c.name.is_empty()
            && !c.name.starts_with(|ch: char| ch.is_ascii_digit())
            && c.name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if !token {
            log::warn!(
                "camera `{}`: not a valid ROS name token, so no ~/<camera>/relocalize or \
                 ~/<camera>/reset services (use ~/relocalize, ~/reset)",
                c.name
            );
            continue;
        }
        services.push((
            format!("~/{}/relocalize", c.name),
            ControlCommand::Relocalize(Some(c.name.clone())),
        ));
        services.push((
            format!("~/{}/reset", c.name),
            ControlCommand::Reset(Some(c.name.clone())),
        ));
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::msgs::builtin_interfaces::Time;
    use crate::io::msgs::sensor_msgs::Image;
    use crate::io::msgs::std_msgs::Header;

    fn camera() -> CameraConfig {
        CameraConfig {
            name: "front".into(),
            image_topic: "/front/image_raw".into(),
            camera_info_topic: "/front/camera_info".into(),
            optical_frame: None,
            metric: MetricSource::Monocular,
            mount: None,
        }
    }

    fn image(ms: i64) -> CameraImage {
        CameraImage::Raw(Image {
            header: Header {
                stamp: Time::from_nanos(ms * 1_000_000),
                frame_id: "front_optical".into(),
            },
            width: 1,
            height: 1,
            encoding: "mono8".into(),
            step: 1,
            data: vec![7],
            ..Default::default()
        })
    }

    fn info(ms: i64) -> CameraInfo {
        CameraInfo {
            header: Header {
                stamp: Time::from_nanos(ms * 1_000_000),
                frame_id: "front_optical".into(),
            },
            width: 1,
            height: 1,
            k: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            ..Default::default()
        }
    }

    #[test]
    fn camera_input_pairs_and_reports() {
        let mut input = CameraInput::new(2, camera(), 0.01);
        let t0 = Instant::now();
        let s = camera_status(&input, &WorkerCameraStats::default(), 0.01, t0);
        assert_eq!(s.level, DiagnosticStatus::STALE);
        assert!(s.message.contains("/front/image_raw"), "{}", s.message);

        assert!(input.on_image(image(1000)).is_none());
        let s = camera_status(&input, &WorkerCameraStats::default(), 0.01, Instant::now());
        assert_eq!(s.level, DiagnosticStatus::WARN);
        assert!(s.message.contains("/front/camera_info"), "{}", s.message);

        // Stamps 50 ms apart never pair with a 10 ms tolerance.
        assert!(input.on_info(info(1050)).is_none());
        let s = camera_status(&input, &WorkerCameraStats::default(), 0.01, Instant::now());
        assert!(
            s.message.contains("sync_tolerance_s = 0.01"),
            "{}",
            s.message
        );

        let f = input
            .on_image(image(1052))
            .expect("pairs with the 1050 ms info");
        assert_eq!((f.camera, f.camera_name.as_str()), (2, "front"));
        assert_eq!(f.info.header.stamp, Time::from_nanos(1_050_000_000));
        assert_eq!(input.stats.paired, 1);
        assert_eq!(input.stats.unmatched, 1); // the 1000 ms image was replaced
        let s = camera_status(
            &input,
            &WorkerCameraStats {
                dropped: 3,
                ..Default::default()
            },
            0.01,
            Instant::now(),
        );
        assert_eq!(s.level, DiagnosticStatus::OK, "{}", s.message);
        let value = |k: &str| {
            s.values
                .iter()
                .find(|kv| kv.key == k)
                .unwrap()
                .value
                .clone()
        };
        assert_eq!(value("frames_dropped_newest_wins"), "3");
        assert_eq!(value("images_received"), "2");

        // Silence for more than 2 s makes the input stale.
        let later = Instant::now() + Duration::from_secs(3);
        assert_eq!(
            camera_status(&input, &WorkerCameraStats::default(), 0.01, later).level,
            DiagnosticStatus::STALE
        );

        input.bad_message("/front/camera_info", "k: 8 elements, expected 9");
        assert_eq!(input.stats.bad_messages, 1);
        assert!(input
            .stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("k: 8 elements")));
    }

    #[test]
    fn control_services_cover_all_and_each_valid_camera() {
        let mut odd = camera();
        odd.name = "front-left".into();
        let names: Vec<(String, ControlCommand)> = control_services(&[camera(), odd]);
        let expect = [
            ("~/relocalize", ControlCommand::Relocalize(None)),
            ("~/reset", ControlCommand::Reset(None)),
            ("~/save_map", ControlCommand::SaveMap),
            (
                "~/front/relocalize",
                ControlCommand::Relocalize(Some("front".into())),
            ),
            ("~/front/reset", ControlCommand::Reset(Some("front".into()))),
        ];
        assert_eq!(
            names,
            expect
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect::<Vec<_>>()
        );
    }
}
