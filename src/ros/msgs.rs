//! Conversions between r2r's generated message structs and [`crate::io::msgs`].
//!
//! `From` moves vectors and strings (no copies) where the shapes agree. r2r represents
//! fixed-size arrays (`float64[9]`, `float64[36]`) as `Vec`, so r2r → ours is `TryFrom` for the
//! types that hold them and fails with [`ConversionError`] naming the field when a length is
//! wrong (rcl always delivers the right length; only hand-built structs can be wrong).

use crate::io::msgs::{
    builtin_interfaces as b, diagnostic_msgs as d, geometry_msgs as g, nav_msgs as n,
    sensor_msgs as s, std_msgs as sm, tf2_msgs as t,
};
use r2r::{
    builtin_interfaces::msg as rb, diagnostic_msgs::msg as rd, geometry_msgs::msg as rg,
    nav_msgs::msg as rn, sensor_msgs::msg as rs, std_msgs::msg as rsm, tf2_msgs::msg as rt,
};

/// A fixed-size array field of an r2r message has the wrong length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {len} elements, expected {expected}")]
pub struct ConversionError {
    /// Message type and field, e.g. `sensor_msgs/CameraInfo.k`.
    pub field: String,
    /// Elements found.
    pub len: usize,
    /// Elements the message definition fixes.
    pub expected: usize,
}

fn fixed<const N: usize>(v: Vec<f64>, field: &str) -> Result<[f64; N], ConversionError> {
    let len = v.len();
    v.try_into().map_err(|_| ConversionError {
        field: field.to_string(),
        len,
        expected: N,
    })
}

fn vec_into<A, B: From<A>>(v: Vec<A>) -> Vec<B> {
    v.into_iter().map(B::from).collect()
}

// builtin_interfaces / std_msgs

impl From<rb::Time> for b::Time {
    fn from(m: rb::Time) -> Self {
        b::Time {
            sec: m.sec,
            nanosec: m.nanosec,
        }
    }
}
impl From<b::Time> for rb::Time {
    fn from(m: b::Time) -> Self {
        rb::Time {
            sec: m.sec,
            nanosec: m.nanosec,
        }
    }
}

impl From<rsm::Header> for sm::Header {
    fn from(m: rsm::Header) -> Self {
        sm::Header {
            stamp: m.stamp.into(),
            frame_id: m.frame_id,
        }
    }
}
impl From<sm::Header> for rsm::Header {
    fn from(m: sm::Header) -> Self {
        rsm::Header {
            stamp: m.stamp.into(),
            frame_id: m.frame_id,
        }
    }
}

impl From<rsm::String> for sm::String {
    fn from(m: rsm::String) -> Self {
        sm::String { data: m.data }
    }
}
impl From<sm::String> for rsm::String {
    fn from(m: sm::String) -> Self {
        rsm::String { data: m.data }
    }
}

// sensor_msgs

impl From<rs::Image> for s::Image {
    fn from(m: rs::Image) -> Self {
        s::Image {
            header: m.header.into(),
            height: m.height,
            width: m.width,
            encoding: m.encoding,
            is_bigendian: m.is_bigendian,
            step: m.step,
            data: m.data,
        }
    }
}
impl From<s::Image> for rs::Image {
    fn from(m: s::Image) -> Self {
        rs::Image {
            header: m.header.into(),
            height: m.height,
            width: m.width,
            encoding: m.encoding,
            is_bigendian: m.is_bigendian,
            step: m.step,
            data: m.data,
        }
    }
}

impl From<rs::CompressedImage> for s::CompressedImage {
    fn from(m: rs::CompressedImage) -> Self {
        s::CompressedImage {
            header: m.header.into(),
            format: m.format,
            data: m.data,
        }
    }
}
impl From<s::CompressedImage> for rs::CompressedImage {
    fn from(m: s::CompressedImage) -> Self {
        rs::CompressedImage {
            header: m.header.into(),
            format: m.format,
            data: m.data,
        }
    }
}

impl From<rs::RegionOfInterest> for s::RegionOfInterest {
    fn from(m: rs::RegionOfInterest) -> Self {
        s::RegionOfInterest {
            x_offset: m.x_offset,
            y_offset: m.y_offset,
            height: m.height,
            width: m.width,
            do_rectify: m.do_rectify,
        }
    }
}
impl From<s::RegionOfInterest> for rs::RegionOfInterest {
    fn from(m: s::RegionOfInterest) -> Self {
        rs::RegionOfInterest {
            x_offset: m.x_offset,
            y_offset: m.y_offset,
            height: m.height,
            width: m.width,
            do_rectify: m.do_rectify,
        }
    }
}

impl TryFrom<rs::CameraInfo> for s::CameraInfo {
    type Error = ConversionError;
    fn try_from(m: rs::CameraInfo) -> Result<Self, ConversionError> {
        Ok(s::CameraInfo {
            header: m.header.into(),
            height: m.height,
            width: m.width,
            distortion_model: m.distortion_model,
            d: m.d,
            k: fixed(m.k, "sensor_msgs/CameraInfo.k")?,
            r: fixed(m.r, "sensor_msgs/CameraInfo.r")?,
            p: fixed(m.p, "sensor_msgs/CameraInfo.p")?,
            binning_x: m.binning_x,
            binning_y: m.binning_y,
            roi: m.roi.into(),
        })
    }
}
impl From<s::CameraInfo> for rs::CameraInfo {
    fn from(m: s::CameraInfo) -> Self {
        rs::CameraInfo {
            header: m.header.into(),
            height: m.height,
            width: m.width,
            distortion_model: m.distortion_model,
            d: m.d,
            k: m.k.to_vec(),
            r: m.r.to_vec(),
            p: m.p.to_vec(),
            binning_x: m.binning_x,
            binning_y: m.binning_y,
            roi: m.roi.into(),
        }
    }
}

impl From<rs::PointField> for s::PointField {
    fn from(m: rs::PointField) -> Self {
        s::PointField {
            name: m.name,
            offset: m.offset,
            datatype: m.datatype,
            count: m.count,
        }
    }
}
impl From<s::PointField> for rs::PointField {
    fn from(m: s::PointField) -> Self {
        rs::PointField {
            name: m.name,
            offset: m.offset,
            datatype: m.datatype,
            count: m.count,
        }
    }
}

impl From<rs::PointCloud2> for s::PointCloud2 {
    fn from(m: rs::PointCloud2) -> Self {
        s::PointCloud2 {
            header: m.header.into(),
            height: m.height,
            width: m.width,
            fields: vec_into(m.fields),
            is_bigendian: m.is_bigendian,
            point_step: m.point_step,
            row_step: m.row_step,
            data: m.data,
            is_dense: m.is_dense,
        }
    }
}
impl From<s::PointCloud2> for rs::PointCloud2 {
    fn from(m: s::PointCloud2) -> Self {
        rs::PointCloud2 {
            header: m.header.into(),
            height: m.height,
            width: m.width,
            fields: vec_into(m.fields),
            is_bigendian: m.is_bigendian,
            point_step: m.point_step,
            row_step: m.row_step,
            data: m.data,
            is_dense: m.is_dense,
        }
    }
}

// geometry_msgs

/// Both directions for messages whose fields are plain copies.
macro_rules! both_ways {
    ($ours:ty, $theirs:ty, $($f:ident),+) => {
        impl From<$theirs> for $ours {
            fn from(m: $theirs) -> Self {
                Self { $( $f: m.$f.into(), )+ }
            }
        }
        impl From<$ours> for $theirs {
            fn from(m: $ours) -> Self {
                Self { $( $f: m.$f.into(), )+ }
            }
        }
    };
}

both_ways!(g::Point, rg::Point, x, y, z);
both_ways!(g::Vector3, rg::Vector3, x, y, z);
both_ways!(g::Quaternion, rg::Quaternion, x, y, z, w);
both_ways!(g::Pose, rg::Pose, position, orientation);
both_ways!(g::PoseStamped, rg::PoseStamped, header, pose);
both_ways!(g::Twist, rg::Twist, linear, angular);
both_ways!(g::Transform, rg::Transform, translation, rotation);
both_ways!(
    g::TransformStamped,
    rg::TransformStamped,
    header,
    child_frame_id,
    transform
);
both_ways!(d::KeyValue, rd::KeyValue, key, value);

impl TryFrom<rg::PoseWithCovariance> for g::PoseWithCovariance {
    type Error = ConversionError;
    fn try_from(m: rg::PoseWithCovariance) -> Result<Self, ConversionError> {
        Ok(g::PoseWithCovariance {
            pose: m.pose.into(),
            covariance: fixed(m.covariance, "geometry_msgs/PoseWithCovariance.covariance")?,
        })
    }
}
impl From<g::PoseWithCovariance> for rg::PoseWithCovariance {
    fn from(m: g::PoseWithCovariance) -> Self {
        rg::PoseWithCovariance {
            pose: m.pose.into(),
            covariance: m.covariance.to_vec(),
        }
    }
}

impl TryFrom<rg::TwistWithCovariance> for g::TwistWithCovariance {
    type Error = ConversionError;
    fn try_from(m: rg::TwistWithCovariance) -> Result<Self, ConversionError> {
        Ok(g::TwistWithCovariance {
            twist: m.twist.into(),
            covariance: fixed(m.covariance, "geometry_msgs/TwistWithCovariance.covariance")?,
        })
    }
}
impl From<g::TwistWithCovariance> for rg::TwistWithCovariance {
    fn from(m: g::TwistWithCovariance) -> Self {
        rg::TwistWithCovariance {
            twist: m.twist.into(),
            covariance: m.covariance.to_vec(),
        }
    }
}

// nav_msgs / tf2_msgs / diagnostic_msgs

impl TryFrom<rn::Odometry> for n::Odometry {
    type Error = ConversionError;
    fn try_from(m: rn::Odometry) -> Result<Self, ConversionError> {
        Ok(n::Odometry {
            header: m.header.into(),
            child_frame_id: m.child_frame_id,
            pose: m.pose.try_into()?,
            twist: m.twist.try_into()?,
        })
    }
}
impl From<n::Odometry> for rn::Odometry {
    fn from(m: n::Odometry) -> Self {
        rn::Odometry {
            header: m.header.into(),
            child_frame_id: m.child_frame_id,
            pose: m.pose.into(),
            twist: m.twist.into(),
        }
    }
}

impl From<rn::Path> for n::Path {
    fn from(m: rn::Path) -> Self {
        n::Path {
            header: m.header.into(),
            poses: vec_into(m.poses),
        }
    }
}
impl From<n::Path> for rn::Path {
    fn from(m: n::Path) -> Self {
        rn::Path {
            header: m.header.into(),
            poses: vec_into(m.poses),
        }
    }
}

impl From<rt::TFMessage> for t::TFMessage {
    fn from(m: rt::TFMessage) -> Self {
        t::TFMessage {
            transforms: vec_into(m.transforms),
        }
    }
}
impl From<t::TFMessage> for rt::TFMessage {
    fn from(m: t::TFMessage) -> Self {
        rt::TFMessage {
            transforms: vec_into(m.transforms),
        }
    }
}

impl From<rd::DiagnosticStatus> for d::DiagnosticStatus {
    fn from(m: rd::DiagnosticStatus) -> Self {
        d::DiagnosticStatus {
            level: m.level,
            name: m.name,
            message: m.message,
            hardware_id: m.hardware_id,
            values: vec_into(m.values),
        }
    }
}
impl From<d::DiagnosticStatus> for rd::DiagnosticStatus {
    fn from(m: d::DiagnosticStatus) -> Self {
        rd::DiagnosticStatus {
            level: m.level,
            name: m.name,
            message: m.message,
            hardware_id: m.hardware_id,
            values: vec_into(m.values),
        }
    }
}

impl From<rd::DiagnosticArray> for d::DiagnosticArray {
    fn from(m: rd::DiagnosticArray) -> Self {
        d::DiagnosticArray {
            header: m.header.into(),
            status: vec_into(m.status),
        }
    }
}
impl From<d::DiagnosticArray> for rd::DiagnosticArray {
    fn from(m: d::DiagnosticArray) -> Self {
        rd::DiagnosticArray {
            header: m.header.into(),
            status: vec_into(m.status),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every r2r struct is spelled out as a literal, so each field's conversion is visible.
    use super::*;

    fn r_header(frame: &str) -> rsm::Header {
        rsm::Header {
            stamp: rb::Time {
                sec: 1_700_000_000,
                nanosec: 5,
            },
            frame_id: frame.into(),
        }
    }

    fn r_transform(child: &str) -> rg::TransformStamped {
        rg::TransformStamped {
            header: r_header("kf"),
            child_frame_id: child.into(),
            transform: rg::Transform {
                translation: rg::Vector3 {
                    x: 1.0,
                    y: 2.0,
                    z: 3.0,
                },
                rotation: rg::Quaternion {
                    x: 0.0,
                    y: 0.0,
                    z: 0.6,
                    w: 0.8,
                },
            },
        }
    }

    /// r2r → ours → r2r must give back the same message.
    fn round_trip<R, O>(r: R) -> O
    where
        R: Clone + PartialEq + std::fmt::Debug + From<O>,
        O: TryFrom<R> + Clone,
        <O as TryFrom<R>>::Error: std::fmt::Debug,
    {
        let ours = O::try_from(r.clone()).unwrap();
        assert_eq!(R::from(ours.clone()), r);
        ours
    }

    #[test]
    fn image_types_round_trip_with_field_values() {
        let img: s::Image = round_trip(rs::Image {
            header: r_header("cam"),
            height: 2,
            width: 3,
            encoding: "mono16".into(),
            is_bigendian: 1,
            step: 6,
            data: (0..12).collect(),
        });
        assert_eq!(img.header.stamp.sec, 1_700_000_000);
        assert_eq!(img.header.stamp.nanosec, 5);
        assert_eq!(
            (img.width, img.height, img.step, img.is_bigendian),
            (3, 2, 6, 1)
        );
        assert_eq!(img.data[11], 11);

        let c: s::CompressedImage = round_trip(rs::CompressedImage {
            header: r_header("cam"),
            format: "jpeg".into(),
            data: vec![0xFF, 0xD8],
        });
        assert_eq!(c.format, "jpeg");

        let info: s::CameraInfo = round_trip(rs::CameraInfo {
            header: r_header("cam"),
            height: 480,
            width: 640,
            distortion_model: "plumb_bob".into(),
            d: vec![0.1, 0.2, 0.0, 0.0, 0.3],
            k: vec![500.0, 0.0, 320.0, 0.0, 501.0, 240.0, 0.0, 0.0, 1.0],
            r: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            p: vec![
                500.0, 0.0, 320.0, 0.0, 0.0, 501.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0,
            ],
            binning_x: 2,
            binning_y: 3,
            roi: rs::RegionOfInterest {
                x_offset: 1,
                y_offset: 2,
                height: 3,
                width: 4,
                do_rectify: true,
            },
        });
        assert_eq!(info.k[4], 501.0);
        assert_eq!(info.p[6], 240.0);
        assert_eq!((info.binning_x, info.binning_y, info.roi.width), (2, 3, 4));

        let cloud: s::PointCloud2 = round_trip(rs::PointCloud2 {
            header: r_header("cam"),
            height: 1,
            width: 1,
            fields: vec![rs::PointField {
                name: "x0".into(),
                offset: 0,
                datatype: 7,
                count: 1,
            }],
            is_bigendian: false,
            point_step: 4,
            row_step: 4,
            data: vec![0, 0, 128, 63],
            is_dense: true,
        });
        assert_eq!(cloud.fields[0].datatype, s::PointField::FLOAT32);
        assert!(cloud.is_dense);
    }

    #[test]
    fn pose_tf_diagnostics_and_string_round_trip() {
        let cov: Vec<f64> = (0..36).map(|i| i as f64).collect();
        let odom: n::Odometry = round_trip(rn::Odometry {
            header: r_header("kf"),
            child_frame_id: "cur".into(),
            pose: rg::PoseWithCovariance {
                pose: rg::Pose {
                    position: rg::Point {
                        x: 1.0,
                        y: 2.0,
                        z: 3.0,
                    },
                    orientation: rg::Quaternion {
                        x: 0.0,
                        y: 0.0,
                        z: 0.0,
                        w: 1.0,
                    },
                },
                covariance: cov.clone(),
            },
            twist: rg::TwistWithCovariance {
                twist: rg::Twist {
                    linear: rg::Vector3 {
                        x: 0.5,
                        y: 0.0,
                        z: 0.0,
                    },
                    angular: rg::Vector3 {
                        x: 0.0,
                        y: 0.0,
                        z: 0.25,
                    },
                },
                covariance: cov.clone(),
            },
        });
        assert_eq!(odom.pose.covariance[35], 35.0);
        assert_eq!(odom.twist.twist.angular.z, 0.25);
        assert_eq!(odom.pose.pose.position.y, 2.0);

        let tf: t::TFMessage = round_trip(rt::TFMessage {
            transforms: vec![r_transform("a"), r_transform("b")],
        });
        assert_eq!(tf.transforms[1].child_frame_id, "b");
        assert_eq!(tf.transforms[0].transform.rotation.z, 0.6);

        let diag: d::DiagnosticArray = round_trip(rd::DiagnosticArray {
            header: r_header(""),
            status: vec![rd::DiagnosticStatus {
                level: 2,
                name: "imd".into(),
                message: "lost".into(),
                hardware_id: "cam0".into(),
                values: vec![rd::KeyValue {
                    key: "inliers".into(),
                    value: "3".into(),
                }],
            }],
        });
        assert_eq!(diag.status[0].level, d::DiagnosticStatus::ERROR);
        assert_eq!(diag.status[0].values[0].value, "3");

        let text: sm::String = round_trip(rsm::String {
            data: "relocalize".into(),
        });
        assert_eq!(text.data, "relocalize");
    }

    #[test]
    fn wrong_fixed_array_lengths_are_named() {
        let bad = rs::CameraInfo {
            header: r_header("cam"),
            height: 1,
            width: 1,
            distortion_model: String::new(),
            d: vec![],
            k: vec![1.0; 8],
            r: vec![0.0; 9],
            p: vec![0.0; 12],
            binning_x: 0,
            binning_y: 0,
            roi: rs::RegionOfInterest {
                x_offset: 0,
                y_offset: 0,
                height: 0,
                width: 0,
                do_rectify: false,
            },
        };
        let e = s::CameraInfo::try_from(bad).unwrap_err();
        assert_eq!(
            e,
            ConversionError {
                field: "sensor_msgs/CameraInfo.k".into(),
                len: 8,
                expected: 9
            }
        );
        let bad = rg::PoseWithCovariance {
            pose: rg::Pose {
                position: rg::Point {
                    x: 0.0,
                    y: 0.0,
                    z: 0.0,
                },
                orientation: rg::Quaternion {
                    x: 0.0,
                    y: 0.0,
                    z: 0.0,
                    w: 1.0,
                },
            },
            covariance: vec![],
        };
        let e = g::PoseWithCovariance::try_from(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("covariance: 0 elements, expected 36"), "{e}");
    }
}
