//! ROS 2 `.msg` definitions of the messages we write, and their `ros2msg` schema text.
//!
//! rosbag2 stores, per topic type, the "complete message definition": the type's own `.msg`
//! text, then for every type it depends on (recursively, each once, in first-use order) a line
//! of 80 `=`, a line `MSG: <pkg>/msg/<Type>` and that type's text. Dependencies are found by
//! parsing the field lines, so this table only holds the field definitions (comments carry no
//! meaning for decoders and are left out).

/// The `.msg` text of every message, generated from the message table
/// ([`crate::io::msgs::for_each_message`]): constants first, then one line per field
/// (`type name [default]`).
macro_rules! definitions {
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
        /// `(type name, .msg text)` for every message of [`crate::io::msgs`].
        const DEFINITIONS: &[(&str, &str)] = &[
            $($(
                (
                    $type_name,
                    concat!(
                        $($(
                            $const_msg, " ", stringify!($const), "=", stringify!($value), "\n",
                        )*)?
                        $(
                            $msg, " ", stringify!($field), $($(" ", $msg_default,)?)? "\n",
                        )*
                    ),
                ),
            )*)*
        ];
    };
}

crate::io::msgs::for_each_message!(definitions);

const PRIMITIVES: &[&str] = &[
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
    "uint32", "int64", "uint64", "string", "wstring",
];

/// Every type name the table defines.
pub fn type_names() -> impl Iterator<Item = &'static str> {
    DEFINITIONS.iter().map(|(n, _)| *n)
}

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
