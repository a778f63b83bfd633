//! rosbag2 bag directories as users record them, written by independent writers (PyPI
//! `rosbags`, `mcap`) from the messages of `tests/fixtures/replay/sequence.mcap` by
//! `scripts/fixtures/make_rosbag2_fixtures.py` into `target/test-fixtures/rosbag2/` (generated once
//! per test run: a few MB, not committed): split MCAP and Humble-style sqlite3 directories,
//! compressed variants, and damaged ones. The reference for every message is the single MCAP
//! file they were made from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use imd::io::bag::compression::CompressionMode;
use imd::io::bag::{Bag, BagError, BagMessage, ReadReport, StorageKind};
use serde_json::Value;

use crate::util::{fixture, generated_fixtures, imd_bin};

/// The generated bags (made on first use).
pub fn rosbag2_fixtures() -> PathBuf {
    generated_fixtures("fixtures/make_rosbag2_fixtures.py", "rosbag2")
}

/// `manifest.json`'s entry for `bag`.
pub fn bag_manifest(bag: &str) -> Value {
    let text = std::fs::read_to_string(rosbag2_fixtures().join("manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    m["bags"][bag].clone()
}

fn manifest_counts(bag: &str) -> BTreeMap<String, u64> {
    bag_manifest(bag)["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

const TOPICS: [&str; 4] = [
    "/cam0/camera_info",
    "/cam0/image_raw/compressed",
    "/cam1/camera_info",
    "/cam1/image_raw/compressed",
];

fn read_all(bag: &Bag) -> (Vec<BagMessage>, Vec<BagError>, ReadReport) {
    let mut stream = bag.messages(&TOPICS).unwrap();
    let (mut ok, mut errs) = (Vec::new(), Vec::new());
    for item in stream.by_ref() {
        match item {
            Ok(m) => ok.push(m),
            Err(e) => errs.push(e),
        }
    }
    (ok, errs, stream.report())
}

fn counts(messages: &[BagMessage]) -> BTreeMap<String, u64> {
    let mut c = BTreeMap::new();
    for m in messages {
        *c.entry(m.topic.to_string()).or_default() += 1;
    }
    c
}

type Key = (String, u64, u64, String);

/// (topic, per-topic index, log time, payload) — what replay consumes.
fn key(m: &BagMessage) -> Key {
    (
        m.topic.to_string(),
        m.index,
        m.log_time_ns,
        format!("{:?}", m.payload),
    )
}

/// Keys sorted by topic and index: messages of different topics at the same stamp may come in
/// either order (writers break such ties differently), each topic's own order is fixed.
fn keys(messages: &[BagMessage]) -> Vec<Key> {
    let mut k: Vec<Key> = messages.iter().map(key).collect();
    k.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    k
}

fn reference() -> Vec<BagMessage> {
    let bag = Bag::open(&fixture("replay/sequence.mcap")).unwrap();
    let (ok, errs, report) = read_all(&bag);
    assert!(errs.is_empty() && !report.lost_data());
    assert_eq!(ok.len(), 140);
    ok
}

#[test]
fn every_storage_and_compression_yields_the_single_files_messages() {
    let want = keys(&reference());
    let dir = rosbag2_fixtures();
    for (name, storage, compression, files) in [
        ("mcap_split", StorageKind::Mcap, CompressionMode::None, 2),
        (
            "sqlite_split",
            StorageKind::Sqlite3,
            CompressionMode::None,
            2,
        ),
        (
            "sqlite_iron",
            StorageKind::Sqlite3,
            CompressionMode::None,
            1,
        ),
        (
            "mcap_chunk_zstd",
            StorageKind::Mcap,
            CompressionMode::None,
            1,
        ),
        (
            "mcap_chunk_lz4.mcap",
            StorageKind::Mcap,
            CompressionMode::None,
            1,
        ),
        ("file_zstd", StorageKind::Sqlite3, CompressionMode::File, 1),
        (
            "message_zstd",
            StorageKind::Mcap,
            CompressionMode::Message,
            1,
        ),
    ] {
        let bag = Bag::open(&dir.join(name)).unwrap();
        assert_eq!(bag.storage(), storage, "{name}");
        assert_eq!(bag.compression(), compression, "{name}");
        assert_eq!(bag.files().len(), files, "{name}");
        assert!(bag.notes().is_empty(), "{name}: {:?}", bag.notes());
        let listed: BTreeMap<String, u64> = bag
            .topics()
            .iter()
            .map(|t| (t.name.clone(), t.message_count))
            .collect();
        assert_eq!(listed, manifest_counts(name), "{name}");
        let (ok, errs, report) = read_all(&bag);
        assert!(errs.is_empty(), "{name}: {errs:?}");
        assert!(!report.lost_data(), "{name}: {}", report.describe());
        let got = keys(&ok);
        assert_eq!(got.len(), want.len(), "{name}");
        // Same topics, per-topic indexes continuing across split files, stamps and payloads.
        assert!(got == want, "{name}: messages differ from sequence.mcap");
    }
    // The Humble layout really is Humble's: schema_version 3 in every split file.
    let bag = Bag::open(&dir.join("sqlite_split")).unwrap();
    assert_eq!(bag.metadata().map(|m| m.version), Some(5));
    let r = imd::io::bag::SqliteReader::open(&dir.join("sqlite_split/sqlite_split_1.db3")).unwrap();
    assert_eq!(r.schema_version(), Some(3));
    let r = imd::io::bag::SqliteReader::open(&dir.join("sqlite_iron/sqlite_iron.db3")).unwrap();
    assert_eq!(r.schema_version(), Some(4));
}

#[test]
fn metadata_missing_or_corrupt_falls_back_to_the_files_and_says_so() {
    let want = keys(&reference());
    for (name, note) in [
        ("damaged/no_metadata", "metadata.yaml is missing"),
        ("damaged/bad_metadata", "metadata.yaml is unreadable"),
    ] {
        let bag = Bag::open(&rosbag2_fixtures().join(name)).unwrap();
        assert!(
            bag.notes().iter().any(|n| n.contains(note)),
            "{name}: {:?}",
            bag.notes()
        );
        assert!(
            bag.notes()
                .iter()
                .any(|n| n.contains("mcap_split_0.mcap, mcap_split_1.mcap")),
            "{name}: files in split order: {:?}",
            bag.notes()
        );
        let (ok, errs, report) = read_all(&bag);
        assert!(errs.is_empty() && !report.lost_data(), "{name}");
        assert_eq!(report.notes, bag.notes());
        assert!(keys(&ok) == want, "{name}");
    }
}

#[test]
fn a_missing_or_truncated_file_keeps_everything_readable_and_reports_the_rest() {
    let dir = rosbag2_fixtures();
    // Second file missing: the first plays; the loss names the file and its 70 messages.
    let bag = Bag::open(&dir.join("damaged/missing_file")).unwrap();
    let (ok, errs, report) = read_all(&bag);
    assert!(errs.is_empty());
    assert_eq!(counts(&ok), manifest_counts("damaged/missing_file"));
    assert_eq!(report.losses.len(), 1, "{report:?}");
    let loss = &report.losses[0];
    assert!(loss.file.ends_with("mcap_split_1.mcap"), "{loss:?}");
    assert!(loss.reason.contains("missing"), "{loss:?}");
    assert_eq!(
        loss.messages,
        bag_manifest("damaged/missing_file")["lost"].as_u64()
    );

    // Second MCAP file cut in the middle of a message: every complete message before the cut
    // (the manifest counts them from the payload offsets) is played, the cut is reported.
    let bag = Bag::open(&dir.join("damaged/truncated")).unwrap();
    let (ok, errs, report) = read_all(&bag);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(counts(&ok), manifest_counts("damaged/truncated"));
    // ... and they are the first messages of each topic.
    let first_n: Vec<BagMessage> = reference()
        .into_iter()
        .filter(|m| m.index < counts(&ok)[&*m.topic])
        .collect();
    assert!(keys(&ok) == keys(&first_n));
    assert!(report.lost_data());
    assert!(
        report
            .losses
            .iter()
            .all(|l| l.file.ends_with("mcap_split_1.mcap")),
        "{report:?}"
    );

    // Second .db3 cut in the middle of a message's data (SQLite refuses the file whole): the
    // salvaged pages before the cut give every message before the cut one — the manifest's
    // count, from the file's page layout, which Python's sqlite3 reading the same salvage
    // matches row for row — with the reference's bytes; the cut is reported, naming the file.
    let m = bag_manifest("damaged/truncated_sqlite");
    let bag = Bag::open(&dir.join("damaged/truncated_sqlite")).unwrap();
    let (ok, errs, report) = read_all(&bag);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(counts(&ok), manifest_counts("damaged/truncated_sqlite"));
    let first_n: Vec<BagMessage> = reference()
        .into_iter()
        .filter(|r| r.index < counts(&ok)[&*r.topic])
        .collect();
    assert!(keys(&ok) == keys(&first_n));
    assert_eq!(report.losses.len(), 1, "{report:?}");
    let loss = &report.losses[0];
    assert!(loss.file.ends_with("sqlite_split_1.db3"), "{loss:?}");
    let kept = m["kept_pages"].as_u64().unwrap() * m["page_size"].as_u64().unwrap();
    assert_eq!(loss.start, kept, "{loss:?}");
    let recovered = m["rows_recovered_in_last_file"].as_u64().unwrap();
    for said in [
        format!("cut short at byte {}", m["cut_at"]),
        "salvage works per page".to_string(),
        format!("{recovered} message(s) of the selected topics recovered"),
        "the rest of the file after the cut is lost".to_string(),
    ] {
        assert!(loss.reason.contains(&said), "{said}: {loss:?}");
    }
    // The user's file is left as it was.
    let cut_file = dir.join("damaged/truncated_sqlite/sqlite_split_1.db3");
    assert_eq!(
        std::fs::metadata(cut_file).unwrap().len(),
        m["cut_at"].as_u64().unwrap()
    );
}

#[test]
fn what_is_not_a_bag_is_refused_naming_the_path_and_what_was_expected() {
    let dir = rosbag2_fixtures();
    let msg = |p: &Path| Bag::open(p).unwrap_err().to_string();
    let e = msg(&dir.join("damaged/unknown_storage"));
    assert!(
        e.contains("metadata.yaml") && e.contains("rosbag_v2") && e.contains("mcap or sqlite3"),
        "{e}"
    );
    let e = msg(&dir.join("damaged/not_a_bag.db3"));
    assert!(
        e.contains("not_a_bag.db3") && e.contains("no `topics` table") && e.contains("readings"),
        "{e}"
    );
    let e = msg(&fixture("replay/manifest.json"));
    assert!(
        e.contains("manifest.json") && e.contains("not a bag"),
        "{e}"
    );
    let e = msg(&dir.join("no/such/bag"));
    assert!(
        e.contains("no/such/bag") && e.contains("expected a rosbag2"),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    let e = msg(empty.path());
    assert!(
        e.contains("metadata.yaml is missing") && e.contains("no .mcap or .db3 files"),
        "{e}"
    );
}

fn run_info(path: &Path) -> Value {
    let out = Command::new(imd_bin())
        .args(["bag", "info", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bag_info_lists_topics_counts_files_and_duration_like_ros2_bag_info() {
    let reference = reference();
    let first = reference.iter().map(|m| m.log_time_ns).min().unwrap();
    let last = reference.iter().map(|m| m.log_time_ns).max().unwrap();
    for (name, storage, compression) in [
        ("sqlite_split", "sqlite3", "none"),
        ("mcap_split", "mcap", "none"),
        ("file_zstd", "sqlite3", "zstd, per file"),
    ] {
        let dir = rosbag2_fixtures().join(name);
        let info = run_info(&dir);
        assert_eq!(info["storage"], storage, "{name}");
        assert_eq!(info["compression"], compression, "{name}");
        let topics: BTreeMap<String, u64> = info["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(topics, manifest_counts(name), "{name}");
        assert_eq!(info["messages"], 140);
        assert_eq!(info["start_ns"].as_u64(), Some(first), "{name}");
        assert_eq!(info["end_ns"].as_u64(), Some(last), "{name}");
        for f in info["files"].as_array().unwrap() {
            let on_disk = std::fs::metadata(dir.join(f["path"].as_str().unwrap()))
                .unwrap()
                .len();
            assert_eq!(f["bytes"].as_u64(), Some(on_disk), "{name}");
        }
        let image = info["topics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "/cam0/image_raw/compressed")
            .unwrap()
            .clone();
        assert_eq!(image["message_type"], "sensor_msgs/msg/CompressedImage");
        // The writers recorded sensor-data QoS (best effort = reliability 2).
        let qos = image["qos"].as_str().unwrap();
        assert!(
            qos.contains("reliability: 2") || qos.contains("reliability: best_effort"),
            "{qos}"
        );
    }
    let files = run_info(&rosbag2_fixtures().join("mcap_split"))["files"].clone();
    let per_file: Vec<u64> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["messages"].as_u64().unwrap())
        .collect();
    assert_eq!(per_file, [70, 70]);

    // The text form a user reads, as `ros2 bag info` words it.
    let out = Command::new(imd_bin())
        .args(["bag", "info"])
        .arg(rosbag2_fixtures().join("sqlite_split"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Topic: /cam1/image_raw/compressed | Type: sensor_msgs/msg/CompressedImage | \
             Count: 30 | Serialization Format: cdr"
        ),
        "{text}"
    );
    assert!(text.contains("Duration:          3.900 s"), "{text}");
}

#[test]
fn bag_check_reads_every_camera_message_and_exits_3_on_loss() {
    let image_bytes: usize = reference()
        .iter()
        .map(|m| match &m.payload {
            imd::io::bag::BagPayload::CompressedImage(i) => i.data.len(),
            _ => 0,
        })
        .sum();
    let check = |bag: &str| {
        let out = Command::new(imd_bin())
            .args(["bag", "check", "--json"])
            .arg(rosbag2_fixtures().join(bag))
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = check("sqlite_split");
    assert_eq!(code, Some(0));
    assert_eq!(v["image_bytes"].as_u64(), Some(image_bytes as u64));
    let (code, v) = check("damaged/missing_file");
    assert_eq!(code, Some(3));
    let counts: BTreeMap<String, u64> = v["messages"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect();
    assert_eq!(counts, manifest_counts("damaged/missing_file"));
    assert!(v["data_lost"].as_str().unwrap().contains("1 damaged range"));
    // `bag info` names the cut of a salvaged .db3, and exits 3: its counts are partial.
    let out = Command::new(imd_bin())
        .args(["bag", "info", "--json"])
        .arg(rosbag2_fixtures().join("damaged/truncated_sqlite"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cut_at = bag_manifest("damaged/truncated_sqlite")["cut_at"].clone();
    let problem = info["files"][1]["problem"].as_str().unwrap().to_string();
    assert!(
        problem.contains(&format!("cut short at byte {cut_at}")),
        "{info}"
    );
    // A last .db3 cut mid-write: its salvaged messages are counted, the cut makes it exit 3.
    let (code, v) = check("damaged/truncated_sqlite");
    assert_eq!(code, Some(3));
    let counts: BTreeMap<String, u64> = v["messages"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect();
    assert_eq!(counts, manifest_counts("damaged/truncated_sqlite"));
}
