//! Conversions between r2r's generated message structs and [`crate::io::msgs`], generated
//! from the message table ([`crate::io::msgs::for_each_message`]).
//!
//! Fields move (no copies) where the shapes agree. r2r represents fixed-size arrays
//! (`float64[9]`, `float64[36]`) as `Vec`, so r2r → ours is `TryFrom` and fails with
//! [`ConversionError`] naming the field when a length is wrong (rcl always delivers the right
//! length; only hand-built structs can be wrong). Ours → r2r is `From`.

#[allow(unused_imports)]
use crate::io::msgs::{
    builtin_interfaces, diagnostic_msgs, for_each_message, geometry_msgs, nav_msgs, sensor_msgs,
    std_msgs, tf2_msgs,
};

/// A fixed-size array field of an r2r message has the wrong length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {len} elements, expected {expected}")]
pub struct ConversionError {
    /// Message type and field, e.g. `sensor_msgs/msg/CameraInfo.k`.
    pub field: String,
    /// Elements found.
    pub len: usize,
    /// Elements the message definition fixes.
    pub expected: usize,
}

/// How one field converts, by its Rust type (`R` is r2r's representation).
trait RosField<R>: Sized {
    /// From r2r's field `field` (for errors).
    fn from_ros(r: R, field: &str) -> Result<Self, ConversionError>;
    /// To r2r's field.
    fn into_ros(self) -> R;
}

/// Types r2r represents exactly as we do.
macro_rules! same_field {
    ($($t:ty),* $(,)?) => {
        $(
            impl RosField<$t> for $t {
                fn from_ros(r: $t, _field: &str) -> Result<Self, ConversionError> {
                    Ok(r)
                }
                fn into_ros(self) -> $t {
                    self
                }
            }
        )*
    };
}
same_field!(u8, bool, i32, u32, f64, String, Vec<u8>, Vec<f64>);

/// `float64[N]`: a `Vec` in r2r.
impl<const N: usize> RosField<Vec<f64>> for [f64; N] {
    fn from_ros(r: Vec<f64>, field: &str) -> Result<Self, ConversionError> {
        let len = r.len();
        r.try_into().map_err(|_| ConversionError {
            field: field.to_string(),
            len,
            expected: N,
        })
    }
    fn into_ros(self) -> Vec<f64> {
        self.to_vec()
    }
}

/// A message of the table and its r2r struct.
pub trait RosMessage: TryFrom<Self::Ros, Error = ConversionError> {
    /// r2r's generated struct.
    type Ros: From<Self>;
}

/// A nested message.
impl<M: RosMessage> RosField<M::Ros> for M {
    fn from_ros(r: M::Ros, _field: &str) -> Result<Self, ConversionError> {
        M::try_from(r)
    }
    fn into_ros(self) -> M::Ros {
        self.into()
    }
}

/// `T[]` of messages.
impl<M: RosMessage> RosField<Vec<M::Ros>> for Vec<M> {
    fn from_ros(r: Vec<M::Ros>, _field: &str) -> Result<Self, ConversionError> {
        r.into_iter().map(M::try_from).collect()
    }
    fn into_ros(self) -> Vec<M::Ros> {
        self.into_iter().map(Into::into).collect()
    }
}

/// `TryFrom<r2r>` and `From<ours>` for every message of the table.
macro_rules! ros_conversions {
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
        $($(
            impl RosMessage for $package::$name {
                type Ros = r2r::$package::msg::$name;
            }

            impl TryFrom<r2r::$package::msg::$name> for $package::$name {
                type Error = ConversionError;
                #[allow(unused_variables)]
                fn try_from(m: r2r::$package::msg::$name) -> Result<Self, ConversionError> {
                    Ok($package::$name {
                        $($field: RosField::from_ros(
                            m.$field,
                            concat!($type_name, ".", stringify!($field)),
                        )?,)*
                    })
                }
            }

            impl From<$package::$name> for r2r::$package::msg::$name {
                #[allow(unused_variables)]
                fn from(m: $package::$name) -> Self {
                    r2r::$package::msg::$name {
                        $($field: RosField::into_ros(m.$field),)*
                    }
                }
            }
        )*)*
    };
}

for_each_message!(ros_conversions);

#[cfg(test)]
mod tests {
    //! Every r2r struct is spelled out as a literal, so each field's conversion is visible.
    use super::*;
    use crate::io::msgs::{
        diagnostic_msgs as d, geometry_msgs as g, nav_msgs as n, sensor_msgs as s, std_msgs as sm,
        tf2_msgs as t,
    };
    use r2r::{
        builtin_interfaces::msg as rb, diagnostic_msgs::msg as rd, geometry_msgs::msg as rg,
        nav_msgs::msg as rn, sensor_msgs::msg as rs, std_msgs::msg as rsm, tf2_msgs::msg as rt,
    };

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
                field: "sensor_msgs/msg/CameraInfo.k".into(),
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
