//! The message table (`src/io/msgs.rs`) against rosbags' ROS 2 Jazzy type store
//! (`scripts/oracles/msg_fields.py`): every type's constants and fields, names and types, in order.

use std::process::Command;

use imd::io::bag::schema::{definition, type_names};
use serde_json::Value;

use crate::util::{root, venv_python};

/// Constants as (name, type, value).
type Constants = Vec<(String, String, i64)>;
/// Fields as (name, type).
type Fields = Vec<(String, String)>;

/// A `.msg` text as (constants, fields), types fully qualified like the oracle writes them.
fn parse(type_name: &str, text: &str) -> (Constants, Fields) {
    let package = type_name.split('/').next().unwrap();
    let qualify = |ty: &str| -> String {
        let (base, suffix) = match ty.find('[') {
            Some(i) => (&ty[..i], &ty[i..]),
            None => (ty, ""),
        };
        let base = match base {
            b if !b.chars().next().unwrap().is_uppercase() && !b.contains('/') => b.to_string(),
            b => match b.split_once('/') {
                Some((pkg, t)) => format!("{pkg}/msg/{}", t.rsplit('/').next().unwrap()),
                None => format!("{package}/msg/{b}"),
            },
        };
        format!("{base}{suffix}")
    };
    let (mut consts, mut fields) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut tokens = line.split_whitespace();
        let (Some(ty), Some(rest)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        if let Some((name, value)) = rest.split_once('=') {
            consts.push((name.to_string(), ty.to_string(), value.parse().unwrap()));
        } else {
            fields.push((rest.to_string(), qualify(ty)));
        }
    }
    (consts, fields)
}

#[test]
fn every_message_definition_matches_the_ros2_type_store() {
    let names: Vec<&str> = type_names().collect();
    let out = Command::new(venv_python())
        .arg(root().join("scripts/oracles/msg_fields.py"))
        .args(&names)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "msg_fields.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(names.len() >= 25, "{names:?}");
    for name in names {
        let (consts, fields) = parse(name, definition(name).unwrap());
        let want = &oracle[name];
        let want_fields: Fields = want["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f[0].as_str().unwrap().into(), f[1].as_str().unwrap().into()))
            .collect();
        assert_eq!(fields, want_fields, "{name}");
        let want_consts: Constants = want["consts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_str().unwrap().into(),
                    c[1].as_str().unwrap().into(),
                    c[2].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(consts, want_consts, "{name}");
    }
}
