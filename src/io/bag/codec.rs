//! CDR encodings of every message in [`crate::io::msgs`], field by field in `.msg` order.

use super::cdr::{CdrError, CdrMessage, CdrReader, CdrWriter};
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use crate::io::msgs::geometry_msgs::{
    Point, Pose, PoseWithCovariance, Quaternion, Transform, TransformStamped, Twist,
    TwistWithCovariance, Vector3,
};
use crate::io::msgs::nav_msgs::Odometry;
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
        Ok(Time {
            sec: r.i32("sec")?,
            nanosec: r.u32("nanosec")?,
        })
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
