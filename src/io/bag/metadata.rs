//! rosbag2's `metadata.yaml` (`rosbag2_bagfile_information`, versions 1 to 9): reading what a
//! bag directory says about itself, and writing it for our output directories.
//!
//! Fields differ by version: `files` (per-file counts) appears in 5, `type_description_hash`
//! in 8, and `offered_qos_profiles` is a YAML *string* up to 8 and a list from 9. Missing
//! optional fields default; a wrong type or a missing required field is an error naming it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The largest `metadata.yaml` read: a bag with thousands of split files and topics stays far
/// below it; anything larger is not a rosbag2 metadata file and is refused unread.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// The `metadata.yaml` version [`BagMetadata::for_output`] writes: 5 is the newest that Humble's
/// rosbag2 reads, and every later rosbag2 and `rosbags` read it too.
pub const WRITTEN_VERSION: u32 = 5;

/// The newest `metadata.yaml` version this reader knows (Jazzy / Kilted write 9).
pub const NEWEST_VERSION: u32 = 9;

/// `metadata.yaml` could not be read or does not describe a bag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct MetadataError {
    /// The metadata file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Nanoseconds, as rosbag2 nests them (`{nanoseconds: N}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nanoseconds {
    /// Duration in ns.
    pub nanoseconds: u64,
}

/// A time since the epoch, as rosbag2 nests it (`{nanoseconds_since_epoch: N}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochTime {
    /// ns since the epoch.
    pub nanoseconds_since_epoch: u64,
}

/// One topic's description.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// ROS 2 type, e.g. `sensor_msgs/msg/Image`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// `cdr` for ROS 2.
    #[serde(default)]
    pub serialization_format: String,
    /// QoS the publishers offered: a YAML string (versions 4-8) or a list (9); kept as written.
    #[serde(default, skip_serializing_if = "is_null")]
    pub offered_qos_profiles: serde_yaml::Value,
    /// RIHS01 type hash (version 8+).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub type_description_hash: String,
}

fn is_null(v: &serde_yaml::Value) -> bool {
    v.is_null()
}

/// A topic with its message count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicWithCount {
    /// The topic.
    pub topic_metadata: TopicMetadata,
    /// Messages recorded on it.
    #[serde(default)]
    pub message_count: u64,
}

/// One storage file's entry (version 5+).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMetadata {
    /// Path relative to the bag directory.
    pub path: String,
    /// First message's time.
    #[serde(default)]
    pub starting_time: EpochTime,
    /// Time from the first to the last message.
    #[serde(default)]
    pub duration: Nanoseconds,
    /// Messages in the file.
    #[serde(default)]
    pub message_count: u64,
}

/// `rosbag2_bagfile_information`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BagMetadata {
    /// Format version (1-9).
    pub version: u32,
    /// `mcap` or `sqlite3`.
    pub storage_identifier: String,
    /// Storage files in playback order, relative to the directory.
    #[serde(default)]
    pub relative_file_paths: Vec<String>,
    /// From the first to the last message.
    #[serde(default)]
    pub duration: Nanoseconds,
    /// First message's time.
    #[serde(default)]
    pub starting_time: EpochTime,
    /// All messages.
    #[serde(default)]
    pub message_count: u64,
    /// Topics with types, QoS and counts.
    #[serde(default)]
    pub topics_with_message_count: Vec<TopicWithCount>,
    /// `""` or `zstd`.
    #[serde(default)]
    pub compression_format: String,
    /// `""`/`NONE`, `FILE` or `MESSAGE`.
    #[serde(default)]
    pub compression_mode: String,
    /// Per-file entries (version 5+).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileMetadata>,
    /// Free-form key/values (version 6+).
    #[serde(default, skip_serializing_if = "is_null")]
    pub custom_data: serde_yaml::Value,
    /// Distribution that recorded the bag (version 7+).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ros_distro: String,
}

#[derive(Serialize, Deserialize)]
struct Document {
    rosbag2_bagfile_information: BagMetadata,
}

impl BagMetadata {
    /// Parse `metadata.yaml` text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self, MetadataError> {
        let err = |reason: String| MetadataError {
            path: path.to_string(),
            reason,
        };
        if text.len() as u64 > MAX_METADATA_BYTES {
            return Err(err(format!(
                "{} bytes, more than the {MAX_METADATA_BYTES} a metadata.yaml may have",
                text.len()
            )));
        }
        check_nesting(text).map_err(err)?;
        let doc: Document = serde_yaml::from_str(text).map_err(|e| {
            err(format!(
                "not a rosbag2 metadata.yaml (expected a `rosbag2_bagfile_information` \
                 mapping): {e}"
            ))
        })?;
        let m = doc.rosbag2_bagfile_information;
        if m.version == 0 || m.version > NEWEST_VERSION {
            return Err(err(format!(
                "version {} is not one this reader knows (1 to {NEWEST_VERSION})",
                m.version
            )));
        }
        Ok(m)
    }

    /// Read and parse `path`: a regular file (a FIFO or device is refused unread) of at most
    /// [`MAX_METADATA_BYTES`], a cap that also bounds the read itself.
    pub fn read(path: &Path) -> Result<Self, MetadataError> {
        let name = path.display().to_string();
        let text = crate::io::paths::read_text_capped(path, "a metadata.yaml", MAX_METADATA_BYTES)
            .map_err(|e| MetadataError {
                path: name.clone(),
                reason: e.reason,
            })?;
        Self::parse(&name, &text)
    }

    /// The YAML document (`rosbag2_bagfile_information: ...`).
    pub fn to_yaml(&self) -> Result<String, MetadataError> {
        serde_yaml::to_string(&Document {
            rosbag2_bagfile_information: self.clone(),
        })
        .map_err(|e| MetadataError {
            path: "metadata.yaml".into(),
            reason: e.to_string(),
        })
    }

    /// The count recorded for `file` (a relative path as listed), when the metadata has it.
    pub fn file_message_count(&self, file: &str) -> Option<u64> {
        self.files
            .iter()
            .find(|f| f.path == file)
            .map(|f| f.message_count)
    }
}

/// Deepest nesting a `metadata.yaml` may have (rosbag2 writes 6 levels; QoS lists 8).
pub const MAX_METADATA_NESTING: usize = 64;

/// Refuse YAML nested deeper than [`MAX_METADATA_NESTING`] before the parser sees it (deep
/// nesting makes the YAML parser slow: 400 KB took minutes). Counts, per line, the indentation
/// (in levels of at least one space), the block sequence dashes that open it (`- - - x`) and
/// the open flow brackets (`[`, `{`) outside quotes, carried across lines.
fn check_nesting(text: &str) -> Result<(), String> {
    let mut flow: usize = 0;
    // Columns of the enclosing block levels (a stack of indentations).
    let mut indents: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while indents.last().is_some_and(|&i| i >= indent) {
            indents.pop();
        }
        indents.push(indent);
        let mut dashes = 0;
        let mut rest = body;
        while let Some(r) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("? ")) {
            dashes += 1;
            rest = r.trim_start_matches(' ');
        }
        let mut quote: Option<char> = None;
        let mut deepest_flow = flow;
        for c in rest.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    flow += 1;
                    deepest_flow = deepest_flow.max(flow);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        let depth = indents.len() + dashes + deepest_flow;
        if depth > MAX_METADATA_NESTING {
            return Err(format!(
                "line {}: nested {depth} levels deep, more than the {MAX_METADATA_NESTING} a \
                 rosbag2 metadata.yaml may have",
                n + 1
            ));
        }
    }
    Ok(())
}

/// The QoS string rosbag2 (versions 4-8) records for a publisher with ROS 2's default profile
/// (reliable, volatile, keep last 10), which is what the matcher node publishes with.
pub fn default_qos_yaml() -> String {
    // Enum values are rmw's: history 1 keep_last, reliability 1 reliable, durability 2
    // volatile, liveliness 1 automatic; zero durations mean "not set".
    "- history: 1\n  depth: 10\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 0\n    \
     nsec: 0\n  lifespan:\n    sec: 0\n    nsec: 0\n  liveliness: 1\n  \
     liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n  avoid_ros_namespace_conventions: \
     false\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAZZY: &str = "rosbag2_bagfile_information:
  version: 9
  storage_identifier: mcap
  duration:
    nanoseconds: 2000000000
  starting_time:
    nanoseconds_since_epoch: 1700000000000000000
  message_count: 3
  topics_with_message_count:
    - topic_metadata:
        name: /cam0/camera_info
        type: sensor_msgs/msg/CameraInfo
        serialization_format: cdr
        offered_qos_profiles:
          - history: keep_last
            depth: 10
        type_description_hash: RIHS01_abc
      message_count: 3
  compression_format: ''
  compression_mode: ''
  relative_file_paths:
    - a_0.mcap
    - a_1.mcap
  files:
    - path: a_0.mcap
      starting_time:
        nanoseconds_since_epoch: 1700000000000000000
      duration:
        nanoseconds: 1000000000
      message_count: 2
  custom_data: ~
  ros_distro: jazzy
";

    #[test]
    fn reads_a_jazzy_metadata_file_with_list_qos_and_hashes() {
        let m = BagMetadata::parse("m.yaml", JAZZY).unwrap();
        assert_eq!(m.version, 9);
        assert_eq!(m.relative_file_paths, ["a_0.mcap", "a_1.mcap"]);
        assert_eq!(m.duration.nanoseconds, 2_000_000_000);
        let t = &m.topics_with_message_count[0];
        assert_eq!(t.topic_metadata.message_type, "sensor_msgs/msg/CameraInfo");
        assert_eq!(t.message_count, 3);
        assert!(t.topic_metadata.offered_qos_profiles.is_sequence());
        assert_eq!(m.file_message_count("a_0.mcap"), Some(2));
        assert_eq!(m.file_message_count("a_1.mcap"), None);
    }

    #[test]
    fn round_trips_what_it_writes_and_refuses_what_is_not_metadata() {
        let mut m = BagMetadata::parse("m.yaml", JAZZY).unwrap();
        m.version = WRITTEN_VERSION;
        m.topics_with_message_count[0]
            .topic_metadata
            .offered_qos_profiles = serde_yaml::Value::String(default_qos_yaml());
        let again = BagMetadata::parse("m.yaml", &m.to_yaml().unwrap()).unwrap();
        assert_eq!(again, m);
        for bad in ["", "just text", "rosbag2_bagfile_information: 3", "[1, 2]"] {
            assert!(BagMetadata::parse("m.yaml", bad).is_err(), "{bad:?}");
        }
        let future = JAZZY.replace("version: 9", "version: 99");
        let e = BagMetadata::parse("m.yaml", &future).unwrap_err();
        assert!(e.reason.contains("version 99"), "{e}");
    }
}
