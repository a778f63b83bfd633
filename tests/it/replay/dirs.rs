//! `imd replay` on bag directories as users record them (fixtures:
//! `scripts/fixtures/make_rosbag2_fixtures.py`, see `io::rosbag2`) and its output as a rosbag2
//! directory, checked with the independent reader `scripts/oracles/check_rosbag2.py` (PyPI
//! `rosbags`) and `scripts/oracles/check_mcap.py`.
//!
//! The oracle matcher and the seeded tracker make a replay deterministic, so the outputs of the
//! same messages read from different storages must be equal message by message.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use imd::io::bag::ReadReport;
use imd::pipeline::replay::{replay, ReplayOptions, ReplaySummary};
use imd::pipeline::TrackerConfig;
use serde_json::Value;

use crate::io::rosbag2::{bag_manifest, rosbag2_fixtures};
use crate::pipeline::oracle::Oracle;
use crate::pipeline::scene::Scene;
use crate::pipeline::sequence_config;
use crate::util::{fixture, root, venv_python};

fn run_replay(bag: &Path, out: &Path) -> ReplaySummary {
    let scene = Arc::new(Scene::load());
    let mut config = sequence_config(&scene, TrackerConfig::default());
    config.node.publish_debug_image = false;
    replay(
        bag,
        Some(out),
        &config,
        Oracle::new(scene.clone()),
        &ReplayOptions::default(),
        |_| {},
    )
    .unwrap()
}

fn python(script: &str, arg: &Path) -> Value {
    let out = Command::new(venv_python())
        .arg(root().join("scripts").join(script))
        .arg(arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Output messages decoded by `mcap` + `mcap-ros2-support`, per topic in order. Diagnostics
/// carry measured latencies (wall-clock), so only their count can match between runs.
fn outputs(mcap: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut by_topic: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in python("oracles/check_mcap.py", mcap)["messages"]
        .as_array()
        .unwrap()
    {
        let topic = m["topic"].as_str().unwrap().to_string();
        let v = if topic == "/diagnostics" {
            Value::Null
        } else {
            serde_json::json!([m["log_time"], m["message"]])
        };
        by_topic.entry(topic).or_default().push(v);
    }
    by_topic
}

/// The independent reader on an output directory: every topic and count as replay reports.
fn assert_rosbags_reads(dir: &Path, summary: &ReplaySummary) {
    let seen = python("oracles/check_rosbag2.py", dir);
    let topics = seen["topics"].as_object().unwrap();
    let read: BTreeMap<String, u64> = topics
        .iter()
        .map(|(k, v)| (k.clone(), v["read"].as_u64().unwrap()))
        .collect();
    assert_eq!(read, summary.outputs, "{}", dir.display());
    for (topic, t) in topics {
        assert_eq!(
            t["decoded"], t["read"],
            "{topic}: every message deserializes"
        );
        assert_eq!(
            t["metadata_count"], t["read"],
            "{topic}: metadata.yaml count"
        );
    }
    let total: u64 = summary.outputs.values().sum();
    assert_eq!(seen["message_count"].as_u64(), Some(total));
    let name = dir.file_name().unwrap().to_string_lossy();
    assert_eq!(seen["files"], serde_json::json!([format!("{name}_0.mcap")]));
    // starting_time and duration as the messages say (rosbags reports duration + 1 ns: the
    // half-open range [start, end + 1)).
    let file = dir.join(format!("{name}_0.mcap"));
    let times: Vec<u64> = python("oracles/check_mcap.py", &file)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["log_time"].as_u64().unwrap())
        .collect();
    let (first, last) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    assert_eq!(seen["start_ns"].as_u64(), Some(first));
    assert_eq!(seen["duration_ns"].as_u64(), Some(last - first + 1));
}

#[test]
fn split_sqlite_and_mcap_directories_replay_with_the_same_outputs_as_the_single_file() {
    let tmp = tempfile::tempdir().unwrap();
    let single = run_replay(
        &fixture("replay/sequence.mcap"),
        &tmp.path().join("single.mcap"),
    );
    assert_eq!(single.frames_processed, 70);
    let want = outputs(&tmp.path().join("single.mcap"));
    assert!(want["/imd_matcher/odometry"].len() == 70);
    for name in ["sqlite_split", "mcap_split"] {
        let out = tmp.path().join(format!("{name}_out"));
        let s = run_replay(&rosbag2_fixtures().join(name), &out);
        assert!(
            !s.data_loss.lost_data(),
            "{name}: {}",
            s.data_loss.describe()
        );
        assert_eq!(s.frames_read, single.frames_read, "{name}");
        assert_eq!(s.frames_processed, single.frames_processed, "{name}");
        assert_eq!(s.states, single.states, "{name}");
        assert_eq!(s.outputs, single.outputs, "{name}");
        let got = outputs(&out.join(format!("{name}_out_0.mcap")));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (topic, msgs) in &want {
            assert!(
                got[topic] == *msgs,
                "{name}: {topic} differs from the single file's replay"
            );
        }
        assert_rosbags_reads(&out, &s);
    }
}

fn image_count(bag: &str) -> u64 {
    bag_manifest(bag)["counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("image"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

fn lost_files(r: &ReadReport) -> Vec<String> {
    r.losses
        .iter()
        .map(|l| {
            Path::new(&l.file)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn a_bag_cut_in_its_last_file_replays_every_complete_image_before_the_cut() {
    let tmp = tempfile::tempdir().unwrap();
    // Both storages: the MCAP cut in a message, the .db3 cut in a message's overflow page
    // (read from a salvaged copy of its pages before the cut).
    for (bag, last) in [
        ("damaged/truncated", "mcap_split_1.mcap"),
        ("damaged/truncated_sqlite", "sqlite_split_1.db3"),
    ] {
        let out = tmp.path().join(bag.replace('/', "_"));
        let s = run_replay(&rosbag2_fixtures().join(bag), &out);
        assert_eq!(
            s.accounting.images_read,
            image_count(bag),
            "{bag}: {:?}",
            s.accounting
        );
        assert!(s.data_loss.lost_data(), "{bag}");
        assert!(lost_files(&s.data_loss).iter().all(|f| f == last), "{bag}");
        // The output is complete for what was read, and readable on its own.
        assert_rosbags_reads(&out, &s);
    }
}
