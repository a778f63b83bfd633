//! Reading the bags of `scripts/fixtures/make_bag_fixtures.py` (written with PyPI's
//! `mcap-ros2-support`): topics, counts, log-time order, decoded pixels against the script's own
//! expectations, and the corrupt messages reported with topic + index and skipped.

use std::collections::HashMap;

use image::{ImageReader, RgbImage};
use imd::io::bag::{BagError, BagPayload, BagReader};
use imd::io::image::{DecodedImage, ImageError, RawImage};
use serde_json::Value;

use crate::util::fixture;

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixture("bags/manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// Manifest entries of one bag keyed by (topic, per-topic index).
fn entries(bag: &str) -> HashMap<(String, u64), Value> {
    manifest()["bags"][bag]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|e| {
            let key = (
                e["topic"].as_str().unwrap().to_string(),
                e["index"].as_u64().unwrap(),
            );
            (key, e.clone())
        })
        .collect()
}

fn all_topics(r: &BagReader) -> Vec<String> {
    r.topics().iter().map(|t| t.name.clone()).collect()
}

fn load_expected(rel: &str) -> image::DynamicImage {
    ImageReader::open(fixture(&format!("bags/{rel}")))
        .expect("expected image")
        .decode()
        .expect("expected image decodes")
}

/// Compare a decoded image with the script's expectation.
/// - `exact`: lossless encodings, the algorithms are specified to the bit.
/// - `within1`: YUV; the script evaluates the BT.601 formula in float, we in 16.16 fixed
///   point, so values within 0.004 of a rounding tie may round the other way (see yuv.rs).
/// - `jpeg`: the script decoded with OpenCV (libjpeg-turbo), we with the `image` crate; IDCT
///   and chroma upsampling implementations differ slightly, so allow small per-pixel
///   differences but require the images to agree on average.
fn assert_matches_expected(got: &DecodedImage, entry: &Value) {
    let rel = entry["expected"].as_str().unwrap();
    let mode = entry["compare"].as_str().unwrap();
    let want = load_expected(rel);
    let ctx = format!("{} #{} ({rel})", entry["topic"], entry["index"]);
    match got {
        DecodedImage::Mono16(g) => {
            let w = want.to_luma16();
            assert_eq!(mode, "exact", "{ctx}");
            assert_eq!(g.as_raw(), w.as_raw(), "{ctx}");
        }
        DecodedImage::Mono8(g) => {
            assert_eq!(mode, "exact", "{ctx}");
            assert_eq!(g.as_raw(), want.to_luma8().as_raw(), "{ctx}");
        }
        DecodedImage::Rgb8(g) => {
            let w: RgbImage = want.to_rgb8();
            assert_eq!(g.dimensions(), w.dimensions(), "{ctx}");
            let diffs: Vec<u8> = g
                .as_raw()
                .iter()
                .zip(w.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .collect();
            let max = diffs.iter().copied().max().unwrap_or(0);
            let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
            match mode {
                "exact" => assert_eq!(max, 0, "{ctx}: max difference {max}"),
                "within1" => {
                    assert!(max <= 1, "{ctx}: max difference {max}");
                    // Ties are rare: a handful of values in 57 600.
                    assert!(mean < 0.01, "{ctx}: mean difference {mean}");
                }
                // Measured: max 4 and 6, mean 0.33 and 0.31 on the two jpeg frames.
                "jpeg" => assert!(max <= 8 && mean < 1.0, "{ctx}: max {max}, mean {mean}"),
                other => panic!("{ctx}: unknown compare mode {other}"),
            }
        }
    }
}

#[test]
fn lists_topics_with_types_and_counts() {
    let r = BagReader::open(&fixture("bags/cameras.mcap")).unwrap();
    let got: Vec<(String, String, String, u64)> = r
        .topics()
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.message_type.clone(),
                t.message_encoding.clone(),
                t.message_count,
            )
        })
        .collect();
    let s = |a: &str| a.to_string();
    assert_eq!(
        got,
        vec![
            (
                s("/cam0/camera_info"),
                s("sensor_msgs/msg/CameraInfo"),
                s("cdr"),
                6
            ),
            (
                s("/cam0/image_raw"),
                s("sensor_msgs/msg/Image"),
                s("cdr"),
                6
            ),
            (
                s("/cam1/camera_info"),
                s("sensor_msgs/msg/CameraInfo"),
                s("cdr"),
                6
            ),
            (
                s("/cam1/image_raw"),
                s("sensor_msgs/msg/Image"),
                s("cdr"),
                6
            ),
            (
                s("/cam1/image_raw/compressed"),
                s("sensor_msgs/msg/CompressedImage"),
                s("cdr"),
                3
            ),
        ]
    );
    // The counts agree with what the script wrote.
    let counts = &manifest()["bags"]["cameras.mcap"]["counts"];
    for t in r.topics() {
        assert_eq!(
            counts[&t.name].as_u64(),
            Some(t.message_count),
            "{}",
            t.name
        );
    }
}

#[test]
fn decodes_every_message_as_written_and_skips_the_corrupt_one() {
    let r = BagReader::open(&fixture("bags/cameras.mcap")).unwrap();
    let topics = all_topics(&r);
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let expected = entries("cameras.mcap");
    let mut seen: HashMap<(String, u64), ()> = HashMap::new();
    let mut last_log_time = 0u64;
    let mut message_errors = Vec::new();
    let mut short_data = Vec::new();
    for item in r.messages(&topic_refs).unwrap() {
        let m = match item {
            Ok(m) => m,
            Err(e @ BagError::Message { .. }) => {
                message_errors.push(e);
                continue;
            }
            Err(other) => panic!("fatal: {other}"),
        };
        let key = (m.topic.to_string(), m.index);
        let entry = expected
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in manifest"));
        // Log-time order, although the script wrote all of cam0 before cam1.
        assert!(m.log_time_ns >= last_log_time, "{key:?} out of order");
        last_log_time = m.log_time_ns;
        assert_eq!(
            Some(m.log_time_ns),
            entry["log_time_ns"].as_u64(),
            "{key:?}"
        );
        seen.insert(key.clone(), ());
        let (stamp, frame_id) = match &m.payload {
            BagPayload::Image(i) => (i.header.stamp, i.header.frame_id.clone()),
            BagPayload::CompressedImage(i) => (i.header.stamp, i.header.frame_id.clone()),
            BagPayload::CameraInfo(i) => (i.header.stamp, i.header.frame_id.clone()),
            BagPayload::Tf(_) => unreachable!("the fixture has no TF"),
        };
        assert_eq!(
            stamp.sec as u64,
            entry["stamp"]["sec"].as_u64().unwrap(),
            "{key:?}"
        );
        assert_eq!(
            stamp.nanosec as u64,
            entry["stamp"]["nanosec"].as_u64().unwrap()
        );
        assert_eq!(frame_id, entry["frame_id"].as_str().unwrap());
        match &m.payload {
            BagPayload::Image(img) => {
                assert_eq!(img.encoding, entry["encoding"].as_str().unwrap(), "{key:?}");
                assert_eq!(img.step as u64, entry["step"].as_u64().unwrap(), "{key:?}");
                if entry["corrupt"] == "data_short" {
                    match RawImage::from(img).decode() {
                        Err(e @ ImageError::DataTooShort { .. }) => short_data.push((key, e)),
                        other => panic!("{key:?}: expected DataTooShort, got {other:?}"),
                    }
                    continue;
                }
                assert_eq!(
                    img.is_bigendian as u64,
                    entry["is_bigendian"].as_u64().unwrap(),
                    "{key:?}"
                );
                let decoded = RawImage::from(img).decode().unwrap();
                assert_matches_expected(&decoded, entry);
            }
            BagPayload::CompressedImage(c) => {
                assert_eq!(c.format, entry["format"].as_str().unwrap());
                let decoded = imd::io::image::decode_compressed(&c.format, &c.data).unwrap();
                assert_matches_expected(&decoded, entry);
            }
            BagPayload::CameraInfo(ci) => {
                let fx = entry["fx"].as_f64().unwrap();
                assert_eq!((ci.width, ci.height), (160, 120));
                assert_eq!(ci.distortion_model, "plumb_bob");
                assert_eq!(ci.d, vec![-0.12, 0.03, 0.001, -0.0005, 0.0]);
                assert_eq!(ci.k, [fx, 0.0, 79.5, 0.0, fx, 59.5, 0.0, 0.0, 1.0]);
                assert_eq!(ci.p[0], fx);
                assert_eq!(ci.r[8], 1.0);
            }
            BagPayload::Tf(_) => unreachable!("the fixture has no TF"),
        }
    }
    // Every manifest entry was seen, except the truncated one, which came back as an error
    // naming its topic, index and the field that ran out.
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains_key(*k)).collect();
    assert_eq!(missing, vec![&("/cam1/image_raw".to_string(), 2)]);
    assert_eq!(message_errors.len(), 1);
    match &message_errors[0] {
        BagError::Message {
            topic,
            index,
            log_time_ns,
            reason,
        } => {
            assert_eq!((topic.as_str(), *index), ("/cam1/image_raw", 2));
            assert_eq!(*log_time_ns, 1_700_000_000_230_000_000);
            assert!(reason.contains("`Image.data` ran out of data"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let msg = message_errors[0].to_string();
    assert!(
        msg.contains("/cam1/image_raw") && msg.contains("#2"),
        "{msg}"
    );
    // The data-short image decodes as CDR; the image layer names the field and the size.
    assert_eq!(short_data.len(), 1);
    assert_eq!(short_data[0].0, ("/cam1/image_raw".to_string(), 4));
    let e = short_data[0].1.to_string();
    assert!(
        e.contains("data: 57120 bytes") && e.contains("480 × 120 = 57600"),
        "{e}"
    );
}

#[test]
fn selects_topics_and_rejects_unknown_ones() {
    let r = BagReader::open(&fixture("bags/cameras.mcap")).unwrap();
    let infos: Vec<_> = r
        .messages(&["/cam1/camera_info"])
        .unwrap()
        .map(|m| m.unwrap())
        .collect();
    assert_eq!(infos.len(), 6);
    assert!(infos.iter().all(|m| &*m.topic == "/cam1/camera_info"));
    assert_eq!(
        infos.iter().map(|m| m.index).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    let e = r.messages(&["/cam2/image_raw"]).unwrap_err().to_string();
    assert!(
        e.contains("/cam2/image_raw") && e.contains("/cam0/image_raw (sensor_msgs/msg/Image)"),
        "{e}"
    );
}

#[test]
fn reads_unindexed_bags_in_file_order() {
    let r = BagReader::open(&fixture("bags/unindexed.mcap")).unwrap();
    let counts: Vec<(String, u64)> = r
        .topics()
        .iter()
        .map(|t| (t.name.clone(), t.message_count))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("/cam0/camera_info".to_string(), 2),
            ("/cam0/image_raw".to_string(), 2)
        ]
    );
    let expected = entries("unindexed.mcap");
    let mut n = 0;
    for m in r
        .messages(&["/cam0/image_raw", "/cam0/camera_info"])
        .unwrap()
    {
        let m = m.unwrap();
        let entry = &expected[&(m.topic.to_string(), m.index)];
        assert_eq!(Some(m.log_time_ns), entry["log_time_ns"].as_u64());
        if let BagPayload::Image(img) = &m.payload {
            assert_matches_expected(&RawImage::from(img).decode().unwrap(), entry);
        }
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn missing_and_non_mcap_files_are_named() {
    let e = BagReader::open(&fixture("bags/nope.mcap"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.mcap"), "{e}");
    let e = BagReader::open(&fixture("bags/manifest.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("manifest.json"), "{e}");
}

#[test]
fn bag_frames_pair_images_with_camera_info_like_the_node() {
    use imd::config::CameraConfig;
    use imd::io::bag::BagFrames;
    let cam = |name: &str, image: &str, info: &str| CameraConfig {
        name: name.into(),
        image_topic: image.into(),
        camera_info_topic: info.into(),
        optical_frame: None,
        metric: Default::default(),
        mount: None,
    };
    let r = imd::io::bag::Bag::open(&fixture("bags/cameras.mcap")).unwrap();
    let cameras = [
        cam("cam0", "/cam0/image_raw", "/cam0/camera_info"),
        // Compressed frames are stamped 1 ms after cam1's camera_info.
        cam("cam1c", "/cam1/image_raw/compressed", "/cam1/camera_info"),
    ];
    let mut frames = BagFrames::new(&r, &cameras, 0.002).unwrap();
    let mut per_camera = [0usize; 2];
    for f in frames.by_ref() {
        let f = f.unwrap();
        per_camera[f.camera] += 1;
        let dt = f.image.header().stamp.as_nanos() - f.info.header.stamp.as_nanos();
        assert!(
            dt.abs() <= 2_000_000,
            "{} paired {dt} ns apart",
            f.camera_name
        );
        assert_eq!(f.camera_name, cameras[f.camera].name);
    }
    assert_eq!(per_camera, [6, 3]);
    assert_eq!(frames.stats()[0].frames, 6);
    // With a 0.5 ms tolerance the 1 ms offset never pairs: those images are counted unmatched
    // (each replaced by the next), none is emitted.
    let frames: Vec<_> = BagFrames::new(&r, &cameras[1..], 0.0005).unwrap().collect();
    assert!(frames.is_empty());
    // A camera whose topics carry the wrong types is refused up front.
    let e = BagFrames::new(
        &r,
        &[cam("x", "/cam0/camera_info", "/cam0/image_raw")],
        0.01,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/cam0/camera_info") && e.contains("carries sensor_msgs/msg/CameraInfo"),
        "{e}"
    );
}
