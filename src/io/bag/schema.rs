//! ROS 2 `.msg` definitions of the messages we write, and their `ros2msg` schema text.
//!
//! rosbag2 stores, per topic type, the "complete message definition": the type's own `.msg`
//! text, then for every type it depends on (recursively, each once, in first-use order) a line
//! of 80 `=`, a line `MSG: <pkg>/msg/<Type>` and that type's text. Dependencies are found by
//! parsing the field lines, so this table only holds the field definitions (comments carry no
//! meaning for decoders and are left out).

/// `(type name, .msg text)` for every message of [`crate::io::msgs`].
const DEFINITIONS: &[(&str, &str)] = &[
    ("builtin_interfaces/msg/Time", "int32 sec\nuint32 nanosec\n"),
    (
        "std_msgs/msg/Header",
        "builtin_interfaces/Time stamp\nstring frame_id\n",
    ),
    ("std_msgs/msg/String", "string data\n"),
    (
        "sensor_msgs/msg/Image",
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n\
         uint8 is_bigendian\nuint32 step\nuint8[] data\n",
    ),
    (
        "sensor_msgs/msg/CompressedImage",
        "std_msgs/Header header\nstring format\nuint8[] data\n",
    ),
    (
        "sensor_msgs/msg/RegionOfInterest",
        "uint32 x_offset\nuint32 y_offset\nuint32 height\nuint32 width\nbool do_rectify\n",
    ),
    (
        "sensor_msgs/msg/CameraInfo",
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring distortion_model\n\
         float64[] d\nfloat64[9] k\nfloat64[9] r\nfloat64[12] p\nuint32 binning_x\n\
         uint32 binning_y\nRegionOfInterest roi\n",
    ),
    (
        "sensor_msgs/msg/PointField",
        "uint8 INT8    = 1\nuint8 UINT8   = 2\nuint8 INT16   = 3\nuint8 UINT16  = 4\n\
         uint8 INT32   = 5\nuint8 UINT32  = 6\nuint8 FLOAT32 = 7\nuint8 FLOAT64 = 8\n\
         string name\nuint32 offset\nuint8  datatype\nuint32 count\n",
    ),
    (
        "sensor_msgs/msg/PointCloud2",
        "std_msgs/Header header\nuint32 height\nuint32 width\nPointField[] fields\n\
         bool    is_bigendian\nuint32  point_step\nuint32  row_step\nuint8[] data\n\
         bool is_dense\n",
    ),
    (
        "geometry_msgs/msg/Point",
        "float64 x\nfloat64 y\nfloat64 z\n",
    ),
    (
        "geometry_msgs/msg/Quaternion",
        "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
    ),
    (
        "geometry_msgs/msg/Vector3",
        "float64 x\nfloat64 y\nfloat64 z\n",
    ),
    (
        "geometry_msgs/msg/Pose",
        "Point position\nQuaternion orientation\n",
    ),
    (
        "geometry_msgs/msg/PoseStamped",
        "std_msgs/Header header\nPose pose\n",
    ),
    (
        "geometry_msgs/msg/PoseWithCovariance",
        "Pose pose\nfloat64[36] covariance\n",
    ),
    (
        "geometry_msgs/msg/Twist",
        "Vector3  linear\nVector3  angular\n",
    ),
    (
        "geometry_msgs/msg/TwistWithCovariance",
        "Twist twist\nfloat64[36] covariance\n",
    ),
    (
        "geometry_msgs/msg/Transform",
        "Vector3 translation\nQuaternion rotation\n",
    ),
    (
        "geometry_msgs/msg/TransformStamped",
        "std_msgs/Header header\nstring child_frame_id\nTransform transform\n",
    ),
    (
        "nav_msgs/msg/Odometry",
        "std_msgs/Header header\nstring child_frame_id\n\
         geometry_msgs/PoseWithCovariance pose\ngeometry_msgs/TwistWithCovariance twist\n",
    ),
    (
        "nav_msgs/msg/Path",
        "std_msgs/Header header\ngeometry_msgs/PoseStamped[] poses\n",
    ),
    (
        "tf2_msgs/msg/TFMessage",
        "geometry_msgs/TransformStamped[] transforms\n",
    ),
    ("diagnostic_msgs/msg/KeyValue", "string key\nstring value\n"),
    (
        "diagnostic_msgs/msg/DiagnosticStatus",
        "byte OK=0\nbyte WARN=1\nbyte ERROR=2\nbyte STALE=3\n\
         byte level\nstring name\nstring message\nstring hardware_id\nKeyValue[] values\n",
    ),
    (
        "diagnostic_msgs/msg/DiagnosticArray",
        "std_msgs/Header header\nDiagnosticStatus[] status\n",
    ),
];

const PRIMITIVES: &[&str] = &[
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
    "uint32", "int64", "uint64", "string", "wstring",
];

/// The `.msg` text of one type (`pkg/msg/Type`), without its dependencies.
pub fn definition(type_name: &str) -> Option<&'static str> {
    DEFINITIONS
        .iter()
        .find(|(n, _)| *n == type_name)
        .map(|(_, d)| *d)
}

/// The non-primitive field types of a `.msg` text, as `pkg/msg/Type`, in field order.
/// Unqualified names resolve to `package` (the package of the text itself).
pub fn field_types(package: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut tokens = line.split_whitespace();
        let (Some(ty), Some(name)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        // Constants (`byte OK=0`, `uint8 INT8 = 1`) name no field type.
        if name.contains('=') || tokens.next() == Some("=") {
            continue;
        }
        // Strip array / bound suffixes: `T[]`, `T[9]`, `T[<=3]`, `string<=10`.
        let base = ty.split(['[', '<']).next().unwrap_or(ty);
        if PRIMITIVES.contains(&base) {
            continue;
        }
        let full = match base.split_once('/') {
            Some((pkg, t)) => format!("{pkg}/msg/{}", t.rsplit('/').next().unwrap_or(t)),
            None => format!("{package}/msg/{base}"),
        };
        if !out.contains(&full) {
            out.push(full);
        }
    }
    out
}

/// The complete `ros2msg` schema of `type_name` as rosbag2 stores it, or `None` if the type
/// or one of its dependencies is not in the table.
pub fn full_definition(type_name: &str) -> Option<String> {
    let mut order: Vec<String> = Vec::new();
    collect(type_name, &mut order)?;
    let mut text = definition(type_name)?.to_string();
    for dep in order.iter().skip(1) {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&"=".repeat(80));
        text.push_str("\nMSG: ");
        text.push_str(dep);
        text.push('\n');
        text.push_str(definition(dep)?);
    }
    Some(text)
}

/// Depth-first, pre-order: the type, then each dependency's closure, each type once.
fn collect(type_name: &str, order: &mut Vec<String>) -> Option<()> {
    if order.iter().any(|t| t == type_name) {
        return Some(());
    }
    let text = definition(type_name)?;
    order.push(type_name.to_string());
    let package = type_name.split('/').next().unwrap_or("");
    for dep in field_types(package, text) {
        collect(&dep, order)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dependency_is_defined() {
        for (name, _) in DEFINITIONS {
            assert!(full_definition(name).is_some(), "{name}");
        }
    }

    #[test]
    fn camera_info_schema_is_rosbag2_shaped() {
        let s = full_definition("sensor_msgs/msg/CameraInfo").unwrap();
        let sep = "=".repeat(80);
        let parts: Vec<&str> = s.split(&format!("{sep}\n")).collect();
        assert!(parts[0].starts_with("std_msgs/Header header\n"));
        let headers: Vec<&str> = parts[1..]
            .iter()
            .map(|p| p.lines().next().unwrap())
            .collect();
        assert_eq!(
            headers,
            [
                "MSG: std_msgs/msg/Header",
                "MSG: builtin_interfaces/msg/Time",
                "MSG: sensor_msgs/msg/RegionOfInterest"
            ]
        );
    }

    #[test]
    fn field_types_skip_primitives_constants_and_resolve_packages() {
        let t = field_types(
            "diagnostic_msgs",
            "byte OK=0\nuint8 A = 1\nstd_msgs/Header header # c\nKeyValue[] values\nstring<=5 s\n",
        );
        assert_eq!(t, ["std_msgs/msg/Header", "diagnostic_msgs/msg/KeyValue"]);
    }
}
