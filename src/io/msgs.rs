//! A ROS-free model of the ROS 2 messages imd reads and writes.
//!
//! One module per ROS package, one struct per `.msg` file, field names and types exactly as in
//! the message definitions (`uint32` → `u32`, `float64[9]` → `[f64; 9]`, `T[]` → `Vec<T>`,
//! `byte` → `u8`). Both the MCAP replay ([`crate::io::bag`]) and the r2r node (`crate::ros`)
//! convert through these types, so logic that builds outputs is written once, here.

/// `builtin_interfaces`.
pub mod builtin_interfaces {
    use serde::{Deserialize, Serialize};

    /// `builtin_interfaces/msg/Time`: ROS time as seconds + nanoseconds.
    #[derive(
        Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
    )]
    pub struct Time {
        /// Seconds component (may be negative).
        pub sec: i32,
        /// Nanoseconds component, in `[0, 1e9)`.
        pub nanosec: u32,
    }

    impl Time {
        /// From nanoseconds since the epoch. Saturates outside the `i32` seconds range.
        pub fn from_nanos(ns: i64) -> Self {
            let sec = ns.div_euclid(1_000_000_000);
            let nanosec = ns.rem_euclid(1_000_000_000) as u32;
            let sec = sec.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            Time { sec, nanosec }
        }
        /// Nanoseconds since the epoch.
        pub fn as_nanos(&self) -> i64 {
            self.sec as i64 * 1_000_000_000 + self.nanosec as i64
        }
        /// Seconds since the epoch as a float.
        pub fn as_secs_f64(&self) -> f64 {
            self.sec as f64 + self.nanosec as f64 * 1e-9
        }
    }

    /// `<sec>.<nanosec>` with nanoseconds zero-padded to 9 digits (`1700000000.100000000`):
    /// exact, and how every log line, status value and keyframe frame name writes a stamp.
    impl std::fmt::Display for Time {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}.{:09}", self.sec, self.nanosec)
        }
    }
}

/// `std_msgs`.
pub mod std_msgs {
    use super::builtin_interfaces::Time;

    /// `std_msgs/msg/Header`.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Header {
        /// Acquisition time.
        pub stamp: Time,
        /// Coordinate frame of the data.
        pub frame_id: std::string::String,
    }

    /// `std_msgs/msg/String`.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct String {
        /// The text.
        pub data: std::string::String,
    }
}

/// `sensor_msgs`.
pub mod sensor_msgs {
    use super::std_msgs::Header;

    /// `sensor_msgs/msg/Image`: an uncompressed image.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Image {
        /// Acquisition time and optical frame.
        pub header: Header,
        /// Rows.
        pub height: u32,
        /// Columns.
        pub width: u32,
        /// Pixel encoding (`sensor_msgs/image_encodings.hpp` names).
        pub encoding: String,
        /// Non-zero when multi-byte values are big-endian.
        pub is_bigendian: u8,
        /// Bytes per row, including padding.
        pub step: u32,
        /// `step × height` bytes.
        pub data: Vec<u8>,
    }

    /// `sensor_msgs/msg/CompressedImage`: a jpeg/png (or other) compressed image.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct CompressedImage {
        /// Acquisition time and optical frame.
        pub header: Header,
        /// e.g. `jpeg`, `png`, `bgr8; jpeg compressed bgr8`.
        pub format: String,
        /// The compressed bytes.
        pub data: Vec<u8>,
    }

    /// `sensor_msgs/msg/RegionOfInterest`.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct RegionOfInterest {
        /// Leftmost pixel of the ROI.
        pub x_offset: u32,
        /// Topmost pixel of the ROI.
        pub y_offset: u32,
        /// Rows (0 = full resolution).
        pub height: u32,
        /// Columns (0 = full resolution).
        pub width: u32,
        /// True if a distinct rectified ROI should be calculated.
        pub do_rectify: bool,
    }

    /// `sensor_msgs/msg/CameraInfo`: calibration of a camera.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct CameraInfo {
        /// Acquisition time and optical frame.
        pub header: Header,
        /// Calibrated image rows.
        pub height: u32,
        /// Calibrated image columns.
        pub width: u32,
        /// `plumb_bob`, `rational_polynomial`, `equidistant`, …
        pub distortion_model: String,
        /// Distortion parameters (model dependent).
        pub d: Vec<f64>,
        /// 3×3 row-major intrinsic matrix.
        pub k: [f64; 9],
        /// 3×3 row-major rectification matrix.
        pub r: [f64; 9],
        /// 3×4 row-major projection matrix.
        pub p: [f64; 12],
        /// Horizontal binning (0 = 1).
        pub binning_x: u32,
        /// Vertical binning (0 = 1).
        pub binning_y: u32,
        /// Region of interest.
        pub roi: RegionOfInterest,
    }

    /// `sensor_msgs/msg/PointField`: one field of a [`PointCloud2`] point.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct PointField {
        /// Field name.
        pub name: String,
        /// Byte offset in the point.
        pub offset: u32,
        /// One of the datatype constants below.
        pub datatype: u8,
        /// Number of elements.
        pub count: u32,
    }

    impl PointField {
        /// `int8`.
        pub const INT8: u8 = 1;
        /// `uint8`.
        pub const UINT8: u8 = 2;
        /// `int16`.
        pub const INT16: u8 = 3;
        /// `uint16`.
        pub const UINT16: u8 = 4;
        /// `int32`.
        pub const INT32: u8 = 5;
        /// `uint32`.
        pub const UINT32: u8 = 6;
        /// `float32`.
        pub const FLOAT32: u8 = 7;
        /// `float64`.
        pub const FLOAT64: u8 = 8;
    }

    /// `sensor_msgs/msg/PointCloud2`: points with arbitrary fields.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct PointCloud2 {
        /// Time and frame.
        pub header: Header,
        /// Rows (1 for unordered clouds).
        pub height: u32,
        /// Points per row.
        pub width: u32,
        /// Layout of one point.
        pub fields: Vec<PointField>,
        /// Byte order of `data`.
        pub is_bigendian: bool,
        /// Bytes per point.
        pub point_step: u32,
        /// Bytes per row.
        pub row_step: u32,
        /// `row_step × height` bytes.
        pub data: Vec<u8>,
        /// True if there are no invalid points.
        pub is_dense: bool,
    }
}

/// `geometry_msgs`.
pub mod geometry_msgs {
    use super::std_msgs::Header;

    /// `geometry_msgs/msg/Point`.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    pub struct Point {
        /// x.
        pub x: f64,
        /// y.
        pub y: f64,
        /// z.
        pub z: f64,
    }

    /// `geometry_msgs/msg/Quaternion` (the `.msg` default is the identity, `w = 1`).
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Quaternion {
        /// x.
        pub x: f64,
        /// y.
        pub y: f64,
        /// z.
        pub z: f64,
        /// w.
        pub w: f64,
    }

    impl Default for Quaternion {
        fn default() -> Self {
            Quaternion {
                x: 0.0,
                y: 0.0,
                z: 0.0,
                w: 1.0,
            }
        }
    }

    /// `geometry_msgs/msg/Vector3`.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    pub struct Vector3 {
        /// x.
        pub x: f64,
        /// y.
        pub y: f64,
        /// z.
        pub z: f64,
    }

    /// `geometry_msgs/msg/Pose`.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    pub struct Pose {
        /// Position.
        pub position: Point,
        /// Orientation.
        pub orientation: Quaternion,
    }

    /// `geometry_msgs/msg/PoseStamped`.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct PoseStamped {
        /// Time and the frame of `pose`.
        pub header: Header,
        /// The pose.
        pub pose: Pose,
    }

    /// `geometry_msgs/msg/PoseWithCovariance`.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct PoseWithCovariance {
        /// The pose.
        pub pose: Pose,
        /// Row-major 6×6 covariance of (x, y, z, rot x, rot y, rot z).
        pub covariance: [f64; 36],
    }

    impl Default for PoseWithCovariance {
        fn default() -> Self {
            PoseWithCovariance {
                pose: Pose::default(),
                covariance: [0.0; 36],
            }
        }
    }

    /// `geometry_msgs/msg/Twist`.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    pub struct Twist {
        /// Linear velocity.
        pub linear: Vector3,
        /// Angular velocity.
        pub angular: Vector3,
    }

    /// `geometry_msgs/msg/TwistWithCovariance`.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct TwistWithCovariance {
        /// The twist.
        pub twist: Twist,
        /// Row-major 6×6 covariance.
        pub covariance: [f64; 36],
    }

    impl Default for TwistWithCovariance {
        fn default() -> Self {
            TwistWithCovariance {
                twist: Twist::default(),
                covariance: [0.0; 36],
            }
        }
    }

    /// `geometry_msgs/msg/Transform`.
    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    pub struct Transform {
        /// Translation.
        pub translation: Vector3,
        /// Rotation.
        pub rotation: Quaternion,
    }

    /// `geometry_msgs/msg/TransformStamped`.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct TransformStamped {
        /// Time and parent frame.
        pub header: Header,
        /// Child frame.
        pub child_frame_id: String,
        /// Pose of the child frame in the parent frame.
        pub transform: Transform,
    }
}

/// `nav_msgs`.
pub mod nav_msgs {
    use super::geometry_msgs::{PoseWithCovariance, TwistWithCovariance};
    use super::std_msgs::Header;

    /// `nav_msgs/msg/Path`.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Path {
        /// Time and the frame of every pose.
        pub header: Header,
        /// The poses, oldest first.
        pub poses: Vec<super::geometry_msgs::PoseStamped>,
    }

    /// `nav_msgs/msg/Odometry`.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Odometry {
        /// Time and the frame of `pose`.
        pub header: Header,
        /// The frame of `twist`.
        pub child_frame_id: String,
        /// Pose of `child_frame_id` in `header.frame_id`.
        pub pose: PoseWithCovariance,
        /// Velocity in `child_frame_id`.
        pub twist: TwistWithCovariance,
    }
}

/// `tf2_msgs`.
pub mod tf2_msgs {
    use super::geometry_msgs::TransformStamped;

    /// `tf2_msgs/msg/TFMessage`: what `/tf` carries.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct TFMessage {
        /// The transforms.
        pub transforms: Vec<TransformStamped>,
    }
}

/// `diagnostic_msgs`.
pub mod diagnostic_msgs {
    use super::std_msgs::Header;

    /// `diagnostic_msgs/msg/KeyValue`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct KeyValue {
        /// Key.
        pub key: String,
        /// Value.
        pub value: String,
    }

    impl KeyValue {
        /// A key–value pair from anything printable.
        pub fn new(key: impl Into<String>, value: impl ToString) -> Self {
            KeyValue {
                key: key.into(),
                value: value.to_string(),
            }
        }
    }

    /// `diagnostic_msgs/msg/DiagnosticStatus`.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DiagnosticStatus {
        /// One of [`Self::OK`], [`Self::WARN`], [`Self::ERROR`], [`Self::STALE`].
        pub level: u8,
        /// What is being reported on.
        pub name: String,
        /// Human-readable summary.
        pub message: String,
        /// Hardware identity.
        pub hardware_id: String,
        /// Details.
        pub values: Vec<KeyValue>,
    }

    impl DiagnosticStatus {
        /// Everything fine.
        pub const OK: u8 = 0;
        /// Degraded.
        pub const WARN: u8 = 1;
        /// Failing.
        pub const ERROR: u8 = 2;
        /// No recent data.
        pub const STALE: u8 = 3;
    }

    /// `diagnostic_msgs/msg/DiagnosticArray`: what `/diagnostics` carries.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct DiagnosticArray {
        /// Time of the report.
        pub header: Header,
        /// One entry per component.
        pub status: Vec<DiagnosticStatus>,
    }
}

#[cfg(test)]
mod tests {
    use super::builtin_interfaces::Time;

    #[test]
    fn time_round_trips_through_nanoseconds() {
        let t = Time::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(
            t,
            Time {
                sec: 1_700_000_000,
                nanosec: 123_456_789
            }
        );
        assert_eq!(t.as_nanos(), 1_700_000_000_123_456_789);
        // Negative times keep nanosec in [0, 1e9): -1.7 s = {-2, 3e8}.
        let n = Time::from_nanos(-1_700_000_000);
        assert_eq!(
            n,
            Time {
                sec: -2,
                nanosec: 300_000_000
            }
        );
        assert_eq!(n.as_nanos(), -1_700_000_000);
        assert!((n.as_secs_f64() + 1.7).abs() < 1e-12);
    }
}
