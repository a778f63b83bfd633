//! What every bag storage (MCAP and sqlite3) yields: topics, the message types we decode and
//! how a payload becomes one of them, bounded by per-type size limits.

use std::sync::Arc;

use super::cdr::{from_cdr, CdrMessage};
use crate::io::msgs::sensor_msgs::{CameraInfo, CompressedImage, Image};
use crate::io::msgs::tf2_msgs::TFMessage;

/// One topic of a bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// ROS 2 type, e.g. `sensor_msgs/msg/Image` (empty when the channel has no schema).
    pub message_type: String,
    /// Serialization (`cdr` for rosbag2).
    pub message_encoding: String,
    /// Messages on the topic, from the bag's statistics (0 when it has none).
    pub message_count: u64,
}

/// The message types [`BagReader::messages`] decodes.
// CameraInfo's fixed arrays make it ~300 bytes on the stack; each message is moved a couple of
// times per iteration, so boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum BagPayload {
    /// `sensor_msgs/msg/Image`.
    Image(Image),
    /// `sensor_msgs/msg/CompressedImage`.
    CompressedImage(CompressedImage),
    /// `sensor_msgs/msg/CameraInfo`.
    CameraInfo(CameraInfo),
    /// `tf2_msgs/msg/TFMessage` (`/tf_static`: the camera mounts).
    Tf(TFMessage),
}

/// A decoded message with where and when it was logged.
#[derive(Debug, Clone, PartialEq)]
pub struct BagMessage {
    /// Topic.
    pub topic: Arc<str>,
    /// 0-based position among the messages of this topic, in reading order.
    pub index: u64,
    /// Log (receive) time, ns since the epoch.
    pub log_time_ns: u64,
    /// Publish time, ns since the epoch.
    pub publish_time_ns: u64,
    /// The message.
    pub payload: BagPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Image,
    CompressedImage,
    CameraInfo,
    Tf,
}

impl Kind {
    pub(super) const READABLE: &'static [&'static str] = &[
        Image::TYPE_NAME,
        CompressedImage::TYPE_NAME,
        CameraInfo::TYPE_NAME,
        TFMessage::TYPE_NAME,
    ];

    fn short_name(self) -> &'static str {
        match self {
            Kind::Image => "Image",
            Kind::CompressedImage => "CompressedImage",
            Kind::CameraInfo => "CameraInfo",
            Kind::Tf => "TFMessage",
        }
    }

    pub(super) fn of(message_type: &str) -> Option<Kind> {
        match normalize_type(message_type).as_str() {
            t if t == Image::TYPE_NAME => Some(Kind::Image),
            t if t == CompressedImage::TYPE_NAME => Some(Kind::CompressedImage),
            t if t == CameraInfo::TYPE_NAME => Some(Kind::CameraInfo),
            t if t == TFMessage::TYPE_NAME => Some(Kind::Tf),
            _ => None,
        }
    }

    /// Largest payload a message of this type may have, bytes: a raw image of
    /// [`crate::io::image::max_image_pixels`] at 8 bytes a pixel (plus its header), others
    /// [`Kind::max_other_payload`].
    pub(super) fn max_payload(self) -> u64 {
        match self {
            Kind::Image => crate::io::image::max_image_pixels()
                .saturating_mul(8)
                .saturating_add(1 << 20),
            Kind::CompressedImage => max_message_bytes(128 << 20),
            Kind::CameraInfo | Kind::Tf => max_message_bytes(16 << 20),
        }
    }

    /// The cap for a type without its own (a topic that is not decoded).
    pub(super) fn max_other_payload() -> u64 {
        max_message_bytes(16 << 20)
    }

    pub(super) fn decode(self, data: &[u8]) -> Result<BagPayload, super::cdr::CdrError> {
        let name = self.short_name();
        let max = self.max_payload();
        if data.len() as u64 > max {
            return Err(super::cdr::CdrError::Invalid {
                field: name.into(),
                reason: format!(
                    "{} bytes, more than the {max} the largest {name} may have; not decoded \
                     ({RAISE_LIMITS})",
                    data.len()
                ),
            });
        }
        if self == Kind::Image {
            // The size fields come before the pixels: refuse a huge image before copying it.
            let mut r = super::cdr::CdrReader::new(data)?;
            let _: crate::io::msgs::std_msgs::Header =
                r.nested("header").map_err(|e| e.within(name))?;
            let height = r.u32("height").map_err(|e| e.within(name))?;
            let width = r.u32("width").map_err(|e| e.within(name))?;
            let pixels = u64::from(height) * u64::from(width);
            let max = crate::io::image::max_image_pixels();
            if pixels > max {
                return Err(super::cdr::CdrError::Invalid {
                    field: format!("{name}.width"),
                    reason: format!(
                        "{width}×{height} = {pixels} pixels, more than the limit of {max} \
                         ({RAISE_LIMITS})"
                    ),
                });
            }
        }
        Ok(match self {
            Kind::Image => BagPayload::Image(from_cdr(data)?),
            Kind::CompressedImage => BagPayload::CompressedImage(from_cdr(data)?),
            Kind::CameraInfo => BagPayload::CameraInfo(from_cdr(data)?),
            Kind::Tf => BagPayload::Tf(from_cdr(data)?),
        })
    }
}

/// How to raise the per-message limits, for their errors.
pub(super) const RAISE_LIMITS: &str = "set IMD_MAX_IMAGE_PIXELS (raw images, pixels) or \
     IMD_MAX_MESSAGE_MIB (other messages, MiB) in the environment to raise the limit";

/// `IMD_MAX_MESSAGE_MIB` when set (MiB), else `default` bytes.
fn max_message_bytes(default: u64) -> u64 {
    static SET: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        std::env::var("IMD_MAX_MESSAGE_MIB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|m| m.saturating_mul(1 << 20))
    })
    .unwrap_or(default)
}

/// `sensor_msgs/Image` → `sensor_msgs/msg/Image` (some writers omit the `msg` part).
fn normalize_type(t: &str) -> String {
    match t.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, ty] => format!("{pkg}/msg/{ty}"),
        _ => t.to_string(),
    }
}
