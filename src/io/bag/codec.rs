//! CDR encodings of every message in [`crate::io::msgs`], field by field in `.msg` order.

use super::cdr::{CdrError, CdrMessage, CdrReader, CdrWriter};
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use crate::io::msgs::geometry_msgs::{
    Point, Pose, PoseStamped, PoseWithCovariance, Quaternion, Transform, TransformStamped, Twist,
    TwistWithCovariance, Vector3,
};
use crate::io::msgs::nav_msgs::{Odometry, Path};
use crate::io::msgs::sensor_msgs::{
    CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest,
};
use crate::io::msgs::std_msgs::{Header, String as StringMsg};
use crate::io::msgs::tf2_msgs::TFMessage;

/// Lower bound on the wire size of any nested message, used to bound sequence counts before
/// allocating (every message here has at least one 4-byte field).
const MIN_STRUCT: usize = 4;

impl CdrMessage for Time {
    const TYPE_NAME: &'static str = "builtin_interfaces/msg/Time";
    fn write_cdr(&self, w: &mut CdrWriter) {
        w.i32(self.sec);
        w.u32(self.nanosec);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        let sec = r.i32("sec")?;
        let nanosec = r.u32("nanosec")?;
        // builtin_interfaces/Time: nanosec is in [0, 1e9); a larger value is not a time.
        if nanosec >= 1_000_000_000 {
            return Err(CdrError::Invalid {
                field: "nanosec".into(),
                reason: format!("{nanosec} is not below 10⁹"),
            });
        }
        Ok(Time { sec, nanosec })
    }
}

impl CdrMessage for Header {
    const TYPE_NAME: &'static str = "std_msgs/msg/Header";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.stamp.write_cdr(w);
        w.string(&self.frame_id);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(Header {
            stamp: r.nested("stamp")?,
            frame_id: r.string("frame_id")?,
        })
    }
}

impl CdrMessage for StringMsg {
    const TYPE_NAME: &'static str = "std_msgs/msg/String";
    fn write_cdr(&self, w: &mut CdrWriter) {
        w.string(&self.data);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(StringMsg {
            data: r.string("data")?,
        })
    }
}

impl CdrMessage for Image {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/Image";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.u32(self.height);
        w.u32(self.width);
        w.string(&self.encoding);
        w.u8(self.is_bigendian);
        w.u32(self.step);
        w.bytes(&self.data);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(Image {
            header: r.nested("header")?,
            height: r.u32("height")?,
            width: r.u32("width")?,
            encoding: r.string("encoding")?,
            is_bigendian: r.u8("is_bigendian")?,
            step: r.u32("step")?,
            data: r.bytes("data")?,
        })
    }
}

impl CdrMessage for CompressedImage {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/CompressedImage";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.string(&self.format);
        w.bytes(&self.data);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(CompressedImage {
            header: r.nested("header")?,
            format: r.string("format")?,
            data: r.bytes("data")?,
        })
    }
}

impl CdrMessage for RegionOfInterest {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/RegionOfInterest";
    fn write_cdr(&self, w: &mut CdrWriter) {
        w.u32(self.x_offset);
        w.u32(self.y_offset);
        w.u32(self.height);
        w.u32(self.width);
        w.bool(self.do_rectify);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(RegionOfInterest {
            x_offset: r.u32("x_offset")?,
            y_offset: r.u32("y_offset")?,
            height: r.u32("height")?,
            width: r.u32("width")?,
            do_rectify: r.bool("do_rectify")?,
        })
    }
}

impl CdrMessage for CameraInfo {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/CameraInfo";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.u32(self.height);
        w.u32(self.width);
        w.string(&self.distortion_model);
        w.f64_seq(&self.d);
        w.f64_array(&self.k);
        w.f64_array(&self.r);
        w.f64_array(&self.p);
        w.u32(self.binning_x);
        w.u32(self.binning_y);
        self.roi.write_cdr(w);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(CameraInfo {
            header: r.nested("header")?,
            height: r.u32("height")?,
            width: r.u32("width")?,
            distortion_model: r.string("distortion_model")?,
            d: r.f64_seq("d")?,
            k: r.f64_array("k")?,
            r: r.f64_array("r")?,
            p: r.f64_array("p")?,
            binning_x: r.u32("binning_x")?,
            binning_y: r.u32("binning_y")?,
            roi: r.nested("roi")?,
        })
    }
}

impl CdrMessage for PointField {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/PointField";
    fn write_cdr(&self, w: &mut CdrWriter) {
        w.string(&self.name);
        w.u32(self.offset);
        w.u8(self.datatype);
        w.u32(self.count);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(PointField {
            name: r.string("name")?,
            offset: r.u32("offset")?,
            datatype: r.u8("datatype")?,
            count: r.u32("count")?,
        })
    }
}

impl CdrMessage for PointCloud2 {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/PointCloud2";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.u32(self.height);
        w.u32(self.width);
        w.seq(&self.fields, "fields");
        w.bool(self.is_bigendian);
        w.u32(self.point_step);
        w.u32(self.row_step);
        w.bytes(&self.data);
        w.bool(self.is_dense);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(PointCloud2 {
            header: r.nested("header")?,
            height: r.u32("height")?,
            width: r.u32("width")?,
            fields: r.seq("fields", MIN_STRUCT)?,
            is_bigendian: r.bool("is_bigendian")?,
            point_step: r.u32("point_step")?,
            row_step: r.u32("row_step")?,
            data: r.bytes("data")?,
            is_dense: r.bool("is_dense")?,
        })
    }
}

/// Messages made only of `float64` fields, in order.
macro_rules! xyz_message {
    ($t:ty, $name:literal, $($f:ident),+) => {
        impl CdrMessage for $t {
            const TYPE_NAME: &'static str = $name;
            fn write_cdr(&self, w: &mut CdrWriter) {
                $( w.f64(self.$f); )+
            }
            fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
                Ok(Self { $( $f: r.f64(stringify!($f))?, )+ })
            }
        }
    };
}

xyz_message!(Point, "geometry_msgs/msg/Point", x, y, z);
xyz_message!(Vector3, "geometry_msgs/msg/Vector3", x, y, z);
xyz_message!(Quaternion, "geometry_msgs/msg/Quaternion", x, y, z, w);

impl CdrMessage for Pose {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/Pose";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.position.write_cdr(w);
        self.orientation.write_cdr(w);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(Pose {
            position: r.nested("position")?,
            orientation: r.nested("orientation")?,
        })
    }
}

impl CdrMessage for PoseStamped {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/PoseStamped";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        self.pose.write_cdr(w);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(PoseStamped {
            header: r.nested("header")?,
            pose: r.nested("pose")?,
        })
    }
}

impl CdrMessage for PoseWithCovariance {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/PoseWithCovariance";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.pose.write_cdr(w);
        w.f64_array(&self.covariance);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(PoseWithCovariance {
            pose: r.nested("pose")?,
            covariance: r.f64_array("covariance")?,
        })
    }
}

impl CdrMessage for Twist {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/Twist";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.linear.write_cdr(w);
        self.angular.write_cdr(w);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(Twist {
            linear: r.nested("linear")?,
            angular: r.nested("angular")?,
        })
    }
}

impl CdrMessage for TwistWithCovariance {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/TwistWithCovariance";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.twist.write_cdr(w);
        w.f64_array(&self.covariance);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(TwistWithCovariance {
            twist: r.nested("twist")?,
            covariance: r.f64_array("covariance")?,
        })
    }
}

impl CdrMessage for Transform {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/Transform";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.translation.write_cdr(w);
        self.rotation.write_cdr(w);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(Transform {
            translation: r.nested("translation")?,
            rotation: r.nested("rotation")?,
        })
    }
}

impl CdrMessage for TransformStamped {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/TransformStamped";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.string(&self.child_frame_id);
        self.transform.write_cdr(w);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(TransformStamped {
            header: r.nested("header")?,
            child_frame_id: r.string("child_frame_id")?,
            transform: r.nested("transform")?,
        })
    }
}

impl CdrMessage for Odometry {
    const TYPE_NAME: &'static str = "nav_msgs/msg/Odometry";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.string(&self.child_frame_id);
        self.pose.write_cdr(w);
        self.twist.write_cdr(w);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(Odometry {
            header: r.nested("header")?,
            child_frame_id: r.string("child_frame_id")?,
            pose: r.nested("pose")?,
            twist: r.nested("twist")?,
        })
    }
}

impl CdrMessage for Path {
    const TYPE_NAME: &'static str = "nav_msgs/msg/Path";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.seq(&self.poses, "poses");
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(Path {
            header: r.nested("header")?,
            poses: r.seq("poses", MIN_STRUCT)?,
        })
    }
}

impl CdrMessage for TFMessage {
    const TYPE_NAME: &'static str = "tf2_msgs/msg/TFMessage";
    fn write_cdr(&self, w: &mut CdrWriter) {
        w.seq(&self.transforms, "transforms");
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(TFMessage {
            transforms: r.seq("transforms", MIN_STRUCT)?,
        })
    }
}

impl CdrMessage for KeyValue {
    const TYPE_NAME: &'static str = "diagnostic_msgs/msg/KeyValue";
    fn write_cdr(&self, w: &mut CdrWriter) {
        w.string(&self.key);
        w.string(&self.value);
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(KeyValue {
            key: r.string("key")?,
            value: r.string("value")?,
        })
    }
}

impl CdrMessage for DiagnosticStatus {
    const TYPE_NAME: &'static str = "diagnostic_msgs/msg/DiagnosticStatus";
    fn write_cdr(&self, w: &mut CdrWriter) {
        w.u8(self.level);
        w.string(&self.name);
        w.string(&self.message);
        w.string(&self.hardware_id);
        w.seq(&self.values, "values");
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(DiagnosticStatus {
            level: r.u8("level")?,
            name: r.string("name")?,
            message: r.string("message")?,
            hardware_id: r.string("hardware_id")?,
            values: r.seq("values", MIN_STRUCT)?,
        })
    }
}

impl CdrMessage for DiagnosticArray {
    const TYPE_NAME: &'static str = "diagnostic_msgs/msg/DiagnosticArray";
    fn write_cdr(&self, w: &mut CdrWriter) {
        self.header.write_cdr(w);
        w.seq(&self.status, "status");
    }
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError> {
        Ok(DiagnosticArray {
            header: r.nested("header")?,
            status: r.seq("status", MIN_STRUCT)?,
        })
    }
}

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
