//! A ROS-free model of the ROS 2 messages imd reads and writes, defined once.
//!
//! [`for_each_message!`] is the one table of every message: package, type name, fields with
//! their Rust type and `.msg` type, constants and defaults. Each representation is generated
//! from it by a macro of its own module: the structs here (one module per ROS package, field
//! names exactly as in the definitions, `uint32` → `u32`, `float64[9]` → `[f64; 9]`, `T[]` →
//! `Vec<T>`, `byte` → `u8`), the CDR codec (`crate::io::bag` codec), the `.msg` schema text
//! (`crate::io::bag` schema) and the r2r conversions (`crate::ros::msgs`). Adding a message
//! type is one entry in the table. The MCAP/sqlite replay and the r2r node both convert
//! through these types, so logic that builds outputs is written once.

/// Calls `$generator!` with every message definition:
/// `package { $(#[doc] #[derive(extra)])* Name "pkg/msg/Name" [check(fn)] [consts { NAME: type =
/// value as ".msg type", … }] { $(#[doc])* field: RustType = ".msg type" [; default expr [=> ".msg default"]], … } }`.
/// Field types are written package-qualified (`std_msgs::Header`) so every generator's scope
/// resolves them.
macro_rules! for_each_message {
    ($generator:ident) => {
        $generator! {
            builtin_interfaces {
                /// ROS time as seconds + nanoseconds.
                #[derive(Copy, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
                Time "builtin_interfaces/msg/Time" check(builtin_interfaces::Time::check) {
                    /// Seconds component (may be negative).
                    sec: i32 = "int32",
                    /// Nanoseconds component, in `[0, 1e9)`.
                    nanosec: u32 = "uint32",
                }
            }
            std_msgs {
                /// Acquisition time and coordinate frame.
                Header "std_msgs/msg/Header" {
                    /// Acquisition time.
                    stamp: builtin_interfaces::Time = "builtin_interfaces/Time",
                    /// Coordinate frame of the data.
                    frame_id: std::string::String = "string",
                }
                /// A text.
                String "std_msgs/msg/String" {
                    /// The text.
                    data: std::string::String = "string",
                }
            }
            sensor_msgs {
                /// An uncompressed image.
                Image "sensor_msgs/msg/Image" {
                    /// Acquisition time and optical frame.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// Rows.
                    height: u32 = "uint32",
                    /// Columns.
                    width: u32 = "uint32",
                    /// Pixel encoding (`sensor_msgs/image_encodings.hpp` names).
                    encoding: std::string::String = "string",
                    /// Non-zero when multi-byte values are big-endian.
                    is_bigendian: u8 = "uint8",
                    /// Bytes per row, including padding.
                    step: u32 = "uint32",
                    /// `step × height` bytes.
                    data: Vec<u8> = "uint8[]",
                }
                /// A jpeg/png (or other) compressed image.
                CompressedImage "sensor_msgs/msg/CompressedImage" {
                    /// Acquisition time and optical frame.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// e.g. `jpeg`, `png`, `bgr8; jpeg compressed bgr8`.
                    format: std::string::String = "string",
                    /// The compressed bytes.
                    data: Vec<u8> = "uint8[]",
                }
                /// A region of interest of a camera image.
                #[derive(Copy, Eq)]
                RegionOfInterest "sensor_msgs/msg/RegionOfInterest" {
                    /// Leftmost pixel of the ROI.
                    x_offset: u32 = "uint32",
                    /// Topmost pixel of the ROI.
                    y_offset: u32 = "uint32",
                    /// Rows (0 = full resolution).
                    height: u32 = "uint32",
                    /// Columns (0 = full resolution).
                    width: u32 = "uint32",
                    /// True if a distinct rectified ROI should be calculated.
                    do_rectify: bool = "bool",
                }
                /// Calibration of a camera.
                CameraInfo "sensor_msgs/msg/CameraInfo" {
                    /// Acquisition time and optical frame.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// Calibrated image rows.
                    height: u32 = "uint32",
                    /// Calibrated image columns.
                    width: u32 = "uint32",
                    /// `plumb_bob`, `rational_polynomial`, `equidistant`, …
                    distortion_model: std::string::String = "string",
                    /// Distortion parameters (model dependent).
                    d: Vec<f64> = "float64[]",
                    /// 3×3 row-major intrinsic matrix.
                    k: [f64; 9] = "float64[9]",
                    /// 3×3 row-major rectification matrix.
                    r: [f64; 9] = "float64[9]",
                    /// 3×4 row-major projection matrix.
                    p: [f64; 12] = "float64[12]",
                    /// Horizontal binning (0 = 1).
                    binning_x: u32 = "uint32",
                    /// Vertical binning (0 = 1).
                    binning_y: u32 = "uint32",
                    /// Region of interest.
                    roi: sensor_msgs::RegionOfInterest = "RegionOfInterest",
                }
                /// One field of a [`PointCloud2`] point.
                #[derive(Eq)]
                PointField "sensor_msgs/msg/PointField" consts {
                    /// `int8`.
                    INT8: u8 = 1 as "uint8",
                    /// `uint8`.
                    UINT8: u8 = 2 as "uint8",
                    /// `int16`.
                    INT16: u8 = 3 as "uint8",
                    /// `uint16`.
                    UINT16: u8 = 4 as "uint8",
                    /// `int32`.
                    INT32: u8 = 5 as "uint8",
                    /// `uint32`.
                    UINT32: u8 = 6 as "uint8",
                    /// `float32`.
                    FLOAT32: u8 = 7 as "uint8",
                    /// `float64`.
                    FLOAT64: u8 = 8 as "uint8",
                } {
                    /// Field name.
                    name: std::string::String = "string",
                    /// Byte offset in the point.
                    offset: u32 = "uint32",
                    /// One of the datatype constants.
                    datatype: u8 = "uint8",
                    /// Number of elements.
                    count: u32 = "uint32",
                }
                /// Points with arbitrary fields.
                PointCloud2 "sensor_msgs/msg/PointCloud2" {
                    /// Time and frame.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// Rows (1 for unordered clouds).
                    height: u32 = "uint32",
                    /// Points per row.
                    width: u32 = "uint32",
                    /// Layout of one point.
                    fields: Vec<sensor_msgs::PointField> = "PointField[]",
                    /// Byte order of `data`.
                    is_bigendian: bool = "bool",
                    /// Bytes per point.
                    point_step: u32 = "uint32",
                    /// Bytes per row.
                    row_step: u32 = "uint32",
                    /// `row_step × height` bytes.
                    data: Vec<u8> = "uint8[]",
                    /// True if there are no invalid points.
                    is_dense: bool = "bool",
                }
            }
            geometry_msgs {
                /// A point.
                #[derive(Copy)]
                Point "geometry_msgs/msg/Point" {
                    /// x.
                    x: f64 = "float64",
                    /// y.
                    y: f64 = "float64",
                    /// z.
                    z: f64 = "float64",
                }
                /// An orientation (the `.msg` default is the identity, `w = 1`).
                #[derive(Copy)]
                Quaternion "geometry_msgs/msg/Quaternion" {
                    /// x.
                    x: f64 = "float64"; default 0.0 => "0",
                    /// y.
                    y: f64 = "float64"; default 0.0 => "0",
                    /// z.
                    z: f64 = "float64"; default 0.0 => "0",
                    /// w.
                    w: f64 = "float64"; default 1.0 => "1",
                }
                /// A vector.
                #[derive(Copy)]
                Vector3 "geometry_msgs/msg/Vector3" {
                    /// x.
                    x: f64 = "float64",
                    /// y.
                    y: f64 = "float64",
                    /// z.
                    z: f64 = "float64",
                }
                /// A position and orientation.
                #[derive(Copy)]
                Pose "geometry_msgs/msg/Pose" {
                    /// Position.
                    position: geometry_msgs::Point = "Point",
                    /// Orientation.
                    orientation: geometry_msgs::Quaternion = "Quaternion",
                }
                /// A pose with a time and frame.
                PoseStamped "geometry_msgs/msg/PoseStamped" {
                    /// Time and the frame of `pose`.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// The pose.
                    pose: geometry_msgs::Pose = "Pose",
                }
                /// A pose with its uncertainty.
                #[derive(Copy)]
                PoseWithCovariance "geometry_msgs/msg/PoseWithCovariance" {
                    /// The pose.
                    pose: geometry_msgs::Pose = "Pose",
                    /// Row-major 6×6 covariance of (x, y, z, rot x, rot y, rot z).
                    covariance: [f64; 36] = "float64[36]"; default [0.0; 36],
                }
                /// A pose with its uncertainty, a time and a frame.
                PoseWithCovarianceStamped "geometry_msgs/msg/PoseWithCovarianceStamped" {
                    /// Time and the frame of `pose`.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// The pose and its covariance.
                    pose: geometry_msgs::PoseWithCovariance = "PoseWithCovariance",
                }
                /// A velocity.
                #[derive(Copy)]
                Twist "geometry_msgs/msg/Twist" {
                    /// Linear velocity.
                    linear: geometry_msgs::Vector3 = "Vector3",
                    /// Angular velocity.
                    angular: geometry_msgs::Vector3 = "Vector3",
                }
                /// A velocity with its uncertainty.
                #[derive(Copy)]
                TwistWithCovariance "geometry_msgs/msg/TwistWithCovariance" {
                    /// The twist.
                    twist: geometry_msgs::Twist = "Twist",
                    /// Row-major 6×6 covariance.
                    covariance: [f64; 36] = "float64[36]"; default [0.0; 36],
                }
                /// A rigid transform.
                #[derive(Copy)]
                Transform "geometry_msgs/msg/Transform" {
                    /// Translation.
                    translation: geometry_msgs::Vector3 = "Vector3",
                    /// Rotation.
                    rotation: geometry_msgs::Quaternion = "Quaternion",
                }
                /// A transform between two frames at a time.
                TransformStamped "geometry_msgs/msg/TransformStamped" {
                    /// Time and parent frame.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// Child frame.
                    child_frame_id: std::string::String = "string",
                    /// Pose of the child frame in the parent frame.
                    transform: geometry_msgs::Transform = "Transform",
                }
            }
            nav_msgs {
                /// A trajectory.
                Path "nav_msgs/msg/Path" {
                    /// Time and the frame of every pose.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// The poses, oldest first.
                    poses: Vec<geometry_msgs::PoseStamped> = "geometry_msgs/PoseStamped[]",
                }
                /// A pose and velocity estimate.
                Odometry "nav_msgs/msg/Odometry" {
                    /// Time and the frame of `pose`.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// The frame of `twist`.
                    child_frame_id: std::string::String = "string",
                    /// Pose of `child_frame_id` in `header.frame_id`.
                    pose: geometry_msgs::PoseWithCovariance = "geometry_msgs/PoseWithCovariance",
                    /// Velocity in `child_frame_id`.
                    twist: geometry_msgs::TwistWithCovariance = "geometry_msgs/TwistWithCovariance",
                }
            }
            tf2_msgs {
                /// What `/tf` carries.
                TFMessage "tf2_msgs/msg/TFMessage" {
                    /// The transforms.
                    transforms: Vec<geometry_msgs::TransformStamped> = "geometry_msgs/TransformStamped[]",
                }
            }
            diagnostic_msgs {
                /// A key–value pair.
                #[derive(Eq)]
                KeyValue "diagnostic_msgs/msg/KeyValue" {
                    /// Key.
                    key: std::string::String = "string",
                    /// Value.
                    value: std::string::String = "string",
                }
                /// The state of one component.
                #[derive(Eq)]
                DiagnosticStatus "diagnostic_msgs/msg/DiagnosticStatus" consts {
                    /// Everything fine.
                    OK: u8 = 0 as "byte",
                    /// Degraded.
                    WARN: u8 = 1 as "byte",
                    /// Failing.
                    ERROR: u8 = 2 as "byte",
                    /// No recent data.
                    STALE: u8 = 3 as "byte",
                } {
                    /// One of [`Self::OK`], [`Self::WARN`], [`Self::ERROR`], [`Self::STALE`].
                    level: u8 = "byte",
                    /// What is being reported on.
                    name: std::string::String = "string",
                    /// Human-readable summary.
                    message: std::string::String = "string",
                    /// Hardware identity.
                    hardware_id: std::string::String = "string",
                    /// Details.
                    values: Vec<diagnostic_msgs::KeyValue> = "KeyValue[]",
                }
                /// What `/diagnostics` carries.
                DiagnosticArray "diagnostic_msgs/msg/DiagnosticArray" {
                    /// Time of the report.
                    header: std_msgs::Header = "std_msgs/Header",
                    /// One entry per component.
                    status: Vec<diagnostic_msgs::DiagnosticStatus> = "DiagnosticStatus[]",
                }
            }
        }
    };
}
pub(crate) use for_each_message;

/// The default of a field: the table's, else the type's.
macro_rules! field_default {
    () => {
        Default::default()
    };
    ($value:expr) => {
        $value
    };
}

/// The structs: one module per package.
macro_rules! define_structs {
    ($(
        $package:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[derive($($derive:ident),*)])?
                $name:ident $type_name:literal $(check($check:path))? $(consts {
                    $(
                        $(#[doc = $const_doc:literal])*
                        $const:ident : $const_ty:ty = $value:literal as $const_msg:literal
                    ),* $(,)?
                })? {
                    $(
                        $(#[doc = $field_doc:literal])*
                        $field:ident : $ty:ty = $msg:literal
                            $(; default $default:expr $(=> $msg_default:literal)?)?
                    ),* $(,)?
                }
            )*
        }
    )*) => {
        $(
            #[doc = concat!("`", stringify!($package), "`.")]
            pub mod $package {
                #[allow(unused_imports)]
                use super::*;
                #[allow(unused_imports)]
                use serde::{Deserialize, Serialize};

                $(
                    #[doc = concat!("`", $type_name, "`", $(": ", $doc)*)]
                    #[derive(Debug, Clone, PartialEq $($(, $derive)*)?)]
                    pub struct $name {
                        $(
                            $(#[doc = $field_doc])*
                            pub $field: $ty,
                        )*
                    }

                    impl Default for $name {
                        fn default() -> Self {
                            $name {
                                $($field: field_default!($($default)?),)*
                            }
                        }
                    }

                    $(
                        impl $name {
                            $(
                                $(#[doc = $const_doc])*
                                pub const $const: $const_ty = $value;
                            )*
                        }
                    )?
                )*
            }
        )*
    };
}

for_each_message!(define_structs);

impl builtin_interfaces::Time {
    /// From nanoseconds since the epoch. Saturates outside the `i32` seconds range.
    pub fn from_nanos(ns: i64) -> Self {
        let sec = ns.div_euclid(1_000_000_000);
        let nanosec = ns.rem_euclid(1_000_000_000) as u32;
        let sec = sec.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        builtin_interfaces::Time { sec, nanosec }
    }
    /// Nanoseconds since the epoch.
    pub fn as_nanos(&self) -> i64 {
        self.sec as i64 * 1_000_000_000 + self.nanosec as i64
    }
    /// Seconds since the epoch as a float.
    pub fn as_secs_f64(&self) -> f64 {
        self.sec as f64 + self.nanosec as f64 * 1e-9
    }
    /// `builtin_interfaces/Time` keeps `nanosec` in `[0, 1e9)`; a larger value is not a time.
    /// `Err((field, reason))` otherwise (the decoders' check).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.nanosec >= 1_000_000_000 {
            return Err(("nanosec", format!("{} is not below 10⁹", self.nanosec)));
        }
        Ok(())
    }
}

/// `<sec>.<nanosec>` with nanoseconds zero-padded to 9 digits (`1700000000.100000000`):
/// exact, and how every log line, status value and keyframe frame name writes a stamp.
impl std::fmt::Display for builtin_interfaces::Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:09}", self.sec, self.nanosec)
    }
}

impl diagnostic_msgs::KeyValue {
    /// A key–value pair from anything printable.
    pub fn new(key: impl Into<String>, value: impl ToString) -> Self {
        diagnostic_msgs::KeyValue {
            key: key.into(),
            value: value.to_string(),
        }
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
