//! CDR encodings of every message in [`crate::io::msgs`], generated from its message table
//! ([`crate::io::msgs::for_each_message`]): the fields in `.msg` order, each encoded by its
//! Rust type ([`CdrField`]).

use super::cdr::{CdrError, CdrMessage, CdrReader, CdrWriter};
#[allow(unused_imports)]
use crate::io::msgs::{
    builtin_interfaces, diagnostic_msgs, for_each_message, geometry_msgs, nav_msgs, sensor_msgs,
    std_msgs, tf2_msgs,
};
#[cfg(test)]
use crate::io::msgs::{
    builtin_interfaces::Time,
    diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue},
    geometry_msgs::{
        Point, Pose, PoseWithCovariance, Quaternion, Transform, TransformStamped, Twist,
        TwistWithCovariance, Vector3,
    },
    nav_msgs::Odometry,
    sensor_msgs::{CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest},
    std_msgs::{Header, String as StringMsg},
    tf2_msgs::TFMessage,
};

/// Lower bound on the wire size of any nested message, used to bound sequence counts before
/// allocating (every message here has at least one 4-byte field).
const MIN_STRUCT: usize = 4;

/// How one field of a message is encoded, by its Rust type.
pub trait CdrField: Sized {
    /// Append the field named `name` (for overflow errors).
    fn write_field(&self, w: &mut CdrWriter, name: &str);
    /// Read the field named `name` (for error paths).
    fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError>;
}

macro_rules! primitive_field {
    ($($t:ty => $method:ident),* $(,)?) => {
        $(
            impl CdrField for $t {
                fn write_field(&self, w: &mut CdrWriter, _name: &str) {
                    w.$method(*self);
                }
                fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError> {
                    r.$method(name)
                }
            }
        )*
    };
}
primitive_field!(u8 => u8, bool => bool, i32 => i32, u32 => u32, f64 => f64);

impl CdrField for String {
    fn write_field(&self, w: &mut CdrWriter, _name: &str) {
        w.string(self);
    }
    fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError> {
        r.string(name)
    }
}

/// `uint8[]`: bulk bytes.
impl CdrField for Vec<u8> {
    fn write_field(&self, w: &mut CdrWriter, _name: &str) {
        w.bytes(self);
    }
    fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError> {
        r.bytes(name)
    }
}

/// `float64[]`.
impl CdrField for Vec<f64> {
    fn write_field(&self, w: &mut CdrWriter, _name: &str) {
        w.f64_seq(self);
    }
    fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError> {
        r.f64_seq(name)
    }
}

/// `float64[N]`: no count on the wire.
impl<const N: usize> CdrField for [f64; N] {
    fn write_field(&self, w: &mut CdrWriter, _name: &str) {
        w.f64_array(self);
    }
    fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError> {
        r.f64_array(name)
    }
}

/// A nested message.
impl<M: CdrMessage> CdrField for M {
    fn write_field(&self, w: &mut CdrWriter, _name: &str) {
        self.write_cdr(w);
    }
    fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError> {
        r.nested(name)
    }
}

/// `T[]` of messages.
impl<M: CdrMessage> CdrField for Vec<M> {
    fn write_field(&self, w: &mut CdrWriter, name: &str) {
        w.seq(self, name);
    }
    fn read_field(r: &mut CdrReader<'_>, name: &str) -> Result<Self, CdrError> {
        r.seq(name, MIN_STRUCT)
    }
}

/// `CdrMessage` for every message of the table.
macro_rules! cdr_messages {
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
            impl CdrMessage for $package::$name {
                const TYPE_NAME: &'static str = $type_name;
                fn write_cdr(&self, w: &mut CdrWriter) {
                    $(CdrField::write_field(&self.$field, w, stringify!($field));)*
                }
                fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
                    let message = $package::$name {
                        $($field: CdrField::read_field(r, stringify!($field))?,)*
                    };
                    $(
                        $check(&message).map_err(|(field, reason)| CdrError::Invalid {
                            field: field.to_string(),
                            reason,
                        })?;
                    )?
                    Ok(message)
                }
            }
        )*)*
    };
}

for_each_message!(cdr_messages);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::bag::cdr::{from_cdr, to_cdr};

    fn header(sec: i32, frame: &str) -> Header {
        Header {
            stamp: Time {
                sec,
                nanosec: 500_000_000,
            },
            frame_id: frame.into(),
        }
    }

    fn camera_info() -> CameraInfo {
        CameraInfo {
            header: header(10, "cam0_optical"),
            height: 120,
            width: 160,
            distortion_model: "plumb_bob".into(),
            d: vec![-0.1, 0.01, 0.001, -0.002, 0.0],
            k: [100.0, 0.0, 80.0, 0.0, 101.0, 60.0, 0.0, 0.0, 1.0],
            r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            p: [
                100.0, 0.0, 80.0, 0.0, 0.0, 101.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0,
            ],
            binning_x: 1,
            binning_y: 2,
            roi: RegionOfInterest {
                x_offset: 1,
                y_offset: 2,
                height: 3,
                width: 4,
                do_rectify: true,
            },
        }
    }

    fn transform_stamped(child: &str) -> TransformStamped {
        TransformStamped {
            header: header(3, "a"),
            child_frame_id: child.into(),
            transform: Transform {
                translation: Vector3 {
                    x: 1.0,
                    y: -2.0,
                    z: 3.5,
                },
                rotation: Quaternion {
                    x: 0.0,
                    y: 0.6,
                    z: 0.0,
                    w: 0.8,
                },
            },
        }
    }

    fn odometry() -> Odometry {
        let mut cov = [0.0; 36];
        for (i, c) in cov.iter_mut().enumerate() {
            *c = i as f64 * 0.5;
        }
        Odometry {
            header: header(4, "kf"),
            child_frame_id: "cur".into(),
            pose: PoseWithCovariance {
                pose: Pose {
                    position: Point {
                        x: 0.1,
                        y: 0.2,
                        z: 0.3,
                    },
                    orientation: Quaternion::default(),
                },
                covariance: cov,
            },
            twist: TwistWithCovariance {
                twist: Twist {
                    linear: Vector3 {
                        x: 1.0,
                        y: 0.0,
                        z: 0.0,
                    },
                    angular: Vector3::default(),
                },
                covariance: cov,
            },
        }
    }

    fn cloud() -> PointCloud2 {
        PointCloud2 {
            header: header(5, "cam"),
            height: 1,
            width: 2,
            fields: vec![
                PointField {
                    name: "x0".into(),
                    offset: 0,
                    datatype: PointField::FLOAT32,
                    count: 1,
                },
                PointField {
                    name: "inlier".into(),
                    offset: 4,
                    datatype: PointField::UINT8,
                    count: 1,
                },
            ],
            is_bigendian: false,
            point_step: 8,
            row_step: 16,
            data: (0..16).collect(),
            is_dense: true,
        }
    }

    fn diagnostics() -> DiagnosticArray {
        DiagnosticArray {
            header: header(6, ""),
            status: vec![DiagnosticStatus {
                level: DiagnosticStatus::ERROR,
                name: "imd".into(),
                message: "lost".into(),
                hardware_id: "cam0".into(),
                values: vec![KeyValue::new("inliers", 3), KeyValue::new("", "")],
            }],
        }
    }

    /// Round trip, then every strict prefix must fail with a `Truncated` error naming a field.
    fn check<M: CdrMessage + PartialEq + std::fmt::Debug>(m: &M) {
        let bytes = to_cdr(m).unwrap();
        assert_eq!(&bytes[..4], &[0, 1, 0, 0]);
        assert_eq!(&from_cdr::<M>(&bytes).unwrap(), m);
        for n in 0..bytes.len() {
            match from_cdr::<M>(&bytes[..n]) {
                Err(CdrError::NoHeader { .. }) => assert!(n < 4),
                Err(CdrError::Truncated { field, .. }) => assert!(!field.is_empty()),
                other => panic!("{}: prefix {n}: {other:?}", M::TYPE_NAME),
            }
        }
    }

    #[test]
    fn every_message_round_trips_and_every_truncation_is_reported() {
        check(&header(1, "x"));
        check(&StringMsg {
            data: "relocalize".into(),
        });
        check(&Image {
            header: header(1, "cam"),
            height: 2,
            width: 3,
            encoding: "mono16".into(),
            is_bigendian: 1,
            step: 6,
            data: (0..12).collect(),
        });
        check(&CompressedImage {
            header: header(2, "cam"),
            format: "jpeg".into(),
            data: vec![0xFF, 0xD8, 0xFF],
        });
        check(&camera_info());
        check(&cloud());
        check(&transform_stamped("child"));
        check(&odometry());
        check(&TFMessage {
            transforms: vec![transform_stamped("c1"), transform_stamped("c2")],
        });
        check(&diagnostics());
    }

    #[test]
    fn header_bytes_are_hand_computed() {
        let b = to_cdr(&Header {
            stamp: Time { sec: 1, nanosec: 2 },
            frame_id: "ab".into(),
        })
        .unwrap();
        #[rustfmt::skip]
        let want = [
            0, 1, 0, 0,       // CDR little-endian
            1, 0, 0, 0,       // sec
            2, 0, 0, 0,       // nanosec
            3, 0, 0, 0,       // string length incl. NUL
            b'a', b'b', 0,
        ];
        assert_eq!(b, want);
    }

    #[test]
    fn alignment_is_relative_to_the_payload_start() {
        // Header(frame "a") ends at payload byte 14; the child string length is aligned to 16,
        // "b\0" ends at 22, the first float64 is aligned to 24.
        let b = to_cdr(&transform_stamped("b")).unwrap();
        let body = &b[4..];
        assert_eq!(&body[14..16], &[0, 0]);
        assert_eq!(&body[16..20], &2u32.to_le_bytes());
        assert_eq!(&body[20..22], b"b\0");
        assert_eq!(&body[24..32], &1.0f64.to_le_bytes());
    }

    #[test]
    fn reads_big_endian_payloads() {
        let b = [0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9];
        assert_eq!(from_cdr::<Time>(&b).unwrap(), Time { sec: 7, nanosec: 9 });
        let e = from_cdr::<Time>(&[0, 7, 0, 0, 1, 2, 3, 4]).unwrap_err();
        assert!(matches!(e, CdrError::Encapsulation { kind: 7 }), "{e:?}");
    }

    #[test]
    fn errors_name_the_field_path() {
        let b = to_cdr(&camera_info()).unwrap();
        // Cut inside `k` (after header 4+4+4+13 → 28, height/width → 32, "plumb_bob" → 50,
        // d: count at 52, 5 doubles from 56 to 96; k from 96).
        let e = from_cdr::<CameraInfo>(&b[..4 + 100])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`CameraInfo.k`"), "{e}");
        let t = to_cdr(&TFMessage {
            transforms: vec![transform_stamped("c1"), transform_stamped("c2")],
        })
        .unwrap();
        let e = from_cdr::<TFMessage>(&t[..t.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`TFMessage.transforms[1].transform.rotation.w`"),
            "{e}"
        );
        // A bool that is neither 0 nor 1.
        let mut r = to_cdr(&RegionOfInterest::default()).unwrap();
        r[4 + 16] = 7;
        let e = from_cdr::<RegionOfInterest>(&r).unwrap_err().to_string();
        assert!(
            e.contains("do_rectify") && e.contains("expected 0 or 1"),
            "{e}"
        );
    }

    #[test]
    fn garbage_never_panics_or_allocates_wildly() {
        // A sequence count of 4 billion with 8 bytes left: rejected before allocating.
        let mut b = vec![0, 1, 0, 0];
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        let e = from_cdr::<StringMsg>(&b).unwrap_err();
        assert!(
            matches!(
                e,
                CdrError::Truncated {
                    needed: 4294967295,
                    ..
                }
            ),
            "{e:?}"
        );
        // Pseudo-random payloads of every length up to 300 bytes, all message types.
        let mut s = 0x2545_F491u32;
        for len in 0..300 {
            let mut g = vec![0u8, 1, 0, 0];
            g.extend((0..len).map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 7) as u8 // small values: plausible lengths, so decoding goes deep
            }));
            let _ = from_cdr::<Image>(&g);
            let _ = from_cdr::<CameraInfo>(&g);
            let _ = from_cdr::<PointCloud2>(&g);
            let _ = from_cdr::<TFMessage>(&g);
            let _ = from_cdr::<DiagnosticArray>(&g);
            let _ = from_cdr::<Odometry>(&g);
        }
    }
}
