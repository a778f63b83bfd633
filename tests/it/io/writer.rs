//! Bags we write, read back by PyPI's `mcap` + `mcap-ros2-support`
//! (`scripts/oracles/check_mcap.py`): profile, schema names and encodings, and every field of every
//! output type.

use std::process::Command;

use imd::io::bag::{BagPayload, BagReader, BagWriter};
use imd::io::msgs::builtin_interfaces::Time;
use imd::io::msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use imd::io::msgs::geometry_msgs::{
    Point, Pose, PoseWithCovariance, Quaternion, Transform, TransformStamped, Twist,
    TwistWithCovariance, Vector3,
};
use imd::io::msgs::nav_msgs::Odometry;
use imd::io::msgs::sensor_msgs::{
    CameraInfo, CompressedImage, Image, PointCloud2, PointField, RegionOfInterest,
};
use imd::io::msgs::std_msgs::{Header, String as StringMsg};
use imd::io::msgs::tf2_msgs::TFMessage;
use serde_json::{json, Value};

use crate::util::{root, venv_python};

fn header(ns: i64, frame: &str) -> Header {
    Header {
        stamp: Time::from_nanos(ns),
        frame_id: frame.into(),
    }
}

fn check_mcap(path: &std::path::Path) -> Value {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: the MCAP writer test needs the project venv (scripts/bootstrap.sh) \
         with mcap and mcap-ros2-support",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root().join("scripts/oracles/check_mcap.py"))
        .arg(path)
        .output()
        .expect("run check_mcap.py");
    assert!(
        out.status.success(),
        "check_mcap.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check_mcap.py prints JSON")
}

fn cov(scale: f64) -> [f64; 36] {
    let mut c = [0.0; 36];
    for (i, v) in c.iter_mut().enumerate() {
        *v = scale * i as f64;
    }
    c
}

fn header_json(sec: i64, nanosec: u64, frame: &str) -> Value {
    json!({"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": frame})
}

#[test]
fn every_output_type_reads_back_with_the_python_ros2_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mcap");
    let t0 = 1_700_000_000_250_000_000i64;

    let cloud = PointCloud2 {
        header: header(t0, "cam0_optical"),
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
        point_step: 5,
        row_step: 10,
        data: vec![0, 0, 128, 63, 1, 0, 0, 0, 64, 0],
        is_dense: true,
    };
    let transform = TransformStamped {
        header: header(t0, "cam0_kf"),
        child_frame_id: "cam0_optical".into(),
        transform: Transform {
            translation: Vector3 {
                x: 0.5,
                y: -0.25,
                z: 0.125,
            },
            rotation: Quaternion {
                x: 0.0,
                y: 0.6,
                z: 0.0,
                w: 0.8,
            },
        },
    };
    let odom = Odometry {
        header: header(t0, "cam0_kf"),
        child_frame_id: "cam0_optical".into(),
        pose: PoseWithCovariance {
            pose: Pose {
                position: Point {
                    x: 0.5,
                    y: -0.25,
                    z: 0.125,
                },
                orientation: Quaternion {
                    x: 0.0,
                    y: 0.6,
                    z: 0.0,
                    w: 0.8,
                },
            },
            covariance: cov(0.5),
        },
        twist: TwistWithCovariance {
            twist: Twist {
                linear: Vector3 {
                    x: 1.0,
                    y: 2.0,
                    z: 3.0,
                },
                angular: Vector3::default(),
            },
            covariance: cov(-1.0),
        },
    };
    let diag = DiagnosticArray {
        header: header(t0, ""),
        status: vec![
            DiagnosticStatus {
                level: DiagnosticStatus::WARN,
                name: "imd_matcher: camera cam0".into(),
                message: "few inliers".into(),
                hardware_id: "cam0".into(),
                values: vec![KeyValue::new("inliers", 12), KeyValue::new("ratio", 0.25)],
            },
            DiagnosticStatus::default(),
        ],
    };
    let image = Image {
        header: header(t0, "cam0_optical"),
        height: 2,
        width: 3,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: 9,
        data: (0..18).collect(),
    };
    let info = CameraInfo {
        header: header(t0, "cam0_optical"),
        height: 2,
        width: 3,
        distortion_model: "plumb_bob".into(),
        d: vec![0.1, -0.2, 0.0, 0.0, 0.05],
        k: [2.0, 0.0, 1.0, 0.0, 2.0, 0.5, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [2.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0],
        binning_x: 1,
        binning_y: 1,
        roi: RegionOfInterest {
            x_offset: 0,
            y_offset: 0,
            height: 2,
            width: 3,
            do_rectify: true,
        },
    };
    let compressed = CompressedImage {
        header: header(t0, "cam0_optical"),
        format: "jpeg".into(),
        data: vec![0xFF, 0xD8, 0xFF, 0xD9],
    };

    let mut w = BagWriter::create(&path).unwrap();
    let t = t0 as u64;
    w.write("/imd/correspondences", t, &cloud).unwrap();
    w.write("/imd/odometry", t, &odom).unwrap();
    w.write(
        "/tf",
        t,
        &TFMessage {
            transforms: vec![transform.clone(), transform],
        },
    )
    .unwrap();
    w.write("/diagnostics", t + 1, &diag).unwrap();
    w.write("/imd/debug_image", t + 2, &image).unwrap();
    w.write("/cam0/camera_info", t + 2, &info).unwrap();
    w.write("/cam0/image_raw/compressed", t + 3, &compressed)
        .unwrap();
    w.write("/imd/relocalize", t + 4, &StringMsg { data: "now".into() })
        .unwrap();
    w.write("/imd/relocalize", t + 5, &StringMsg::default())
        .unwrap();
    // A topic keeps its type.
    let e = w.write("/tf", t, &image).unwrap_err().to_string();
    assert!(e.contains("/tf carries tf2_msgs/msg/TFMessage"), "{e}");
    w.finish().unwrap();

    let out = check_mcap(&path);
    assert_eq!(out["profile"], "ros2");
    let channels: Vec<(String, String, String, String, u64)> = out["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["topic"].as_str().unwrap().into(),
                c["schema_name"].as_str().unwrap().into(),
                c["schema_encoding"].as_str().unwrap().into(),
                c["message_encoding"].as_str().unwrap().into(),
                c["message_count"].as_u64().unwrap(),
            )
        })
        .collect();
    let ch = |topic: &str, ty: &str, n: u64| {
        (
            topic.to_string(),
            ty.to_string(),
            "ros2msg".to_string(),
            "cdr".to_string(),
            n,
        )
    };
    assert_eq!(
        channels,
        vec![
            ch("/imd/correspondences", "sensor_msgs/msg/PointCloud2", 1),
            ch("/imd/odometry", "nav_msgs/msg/Odometry", 1),
            ch("/tf", "tf2_msgs/msg/TFMessage", 1),
            ch("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", 1),
            ch("/imd/debug_image", "sensor_msgs/msg/Image", 1),
            ch("/cam0/camera_info", "sensor_msgs/msg/CameraInfo", 1),
            ch(
                "/cam0/image_raw/compressed",
                "sensor_msgs/msg/CompressedImage",
                1
            ),
            ch("/imd/relocalize", "std_msgs/msg/String", 2),
        ]
    );

    let msgs = out["messages"].as_array().unwrap();
    let by_topic = |topic: &str| -> Vec<&Value> {
        msgs.iter()
            .filter(|m| m["topic"] == topic)
            .map(|m| &m["message"])
            .collect()
    };
    let h = header_json(1_700_000_000, 250_000_000, "cam0_optical");
    let hk = header_json(1_700_000_000, 250_000_000, "cam0_kf");
    assert_eq!(
        *by_topic("/imd/correspondences")[0],
        json!({
            "header": h, "height": 1, "width": 2,
            "fields": [
                {"name": "x0", "offset": 0, "datatype": 7, "count": 1},
                {"name": "inlier", "offset": 4, "datatype": 2, "count": 1}
            ],
            "is_bigendian": false, "point_step": 5, "row_step": 10,
            "data": [0, 0, 128, 63, 1, 0, 0, 0, 64, 0], "is_dense": true
        })
    );
    let pose = json!({"position": {"x": 0.5, "y": -0.25, "z": 0.125},
                      "orientation": {"x": 0.0, "y": 0.6, "z": 0.0, "w": 0.8}});
    assert_eq!(
        *by_topic("/imd/odometry")[0],
        json!({
            "header": hk, "child_frame_id": "cam0_optical",
            "pose": {"pose": pose, "covariance": cov(0.5).to_vec()},
            "twist": {"twist": {"linear": {"x": 1.0, "y": 2.0, "z": 3.0},
                                "angular": {"x": 0.0, "y": 0.0, "z": 0.0}},
                      "covariance": cov(-1.0).to_vec()}
        })
    );
    let tf_one = json!({"header": hk, "child_frame_id": "cam0_optical",
        "transform": {"translation": {"x": 0.5, "y": -0.25, "z": 0.125},
                      "rotation": {"x": 0.0, "y": 0.6, "z": 0.0, "w": 0.8}}});
    assert_eq!(*by_topic("/tf")[0], json!({"transforms": [tf_one, tf_one]}));
    assert_eq!(
        *by_topic("/diagnostics")[0],
        json!({
            "header": header_json(1_700_000_000, 250_000_000, ""),
            "status": [
                {"level": 1, "name": "imd_matcher: camera cam0", "message": "few inliers",
                 "hardware_id": "cam0",
                 "values": [{"key": "inliers", "value": "12"}, {"key": "ratio", "value": "0.25"}]},
                {"level": 0, "name": "", "message": "", "hardware_id": "", "values": []}
            ]
        })
    );
    assert_eq!(
        *by_topic("/imd/debug_image")[0],
        json!({"header": h, "height": 2, "width": 3, "encoding": "rgb8", "is_bigendian": 0,
               "step": 9, "data": (0..18).collect::<Vec<u8>>()})
    );
    assert_eq!(
        *by_topic("/cam0/camera_info")[0],
        json!({"header": h, "height": 2, "width": 3, "distortion_model": "plumb_bob",
               "d": [0.1, -0.2, 0.0, 0.0, 0.05],
               "k": [2.0, 0.0, 1.0, 0.0, 2.0, 0.5, 0.0, 0.0, 1.0],
               "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
               "p": [2.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0],
               "binning_x": 1, "binning_y": 1,
               "roi": {"x_offset": 0, "y_offset": 0, "height": 2, "width": 3, "do_rectify": true}})
    );
    assert_eq!(
        *by_topic("/cam0/image_raw/compressed")[0],
        json!({"header": h, "format": "jpeg", "data": [255, 216, 255, 217]})
    );
    assert_eq!(
        by_topic("/imd/relocalize"),
        vec![&json!({"data": "now"}), &json!({"data": ""})]
    );
    // Sequence numbers count per topic from 0; log times are what we passed.
    let reloc: Vec<(u64, u64)> = msgs
        .iter()
        .filter(|m| m["topic"] == "/imd/relocalize")
        .map(|m| {
            (
                m["sequence"].as_u64().unwrap(),
                m["log_time"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(reloc, vec![(0, t + 4), (1, t + 5)]);

    // And our own reader gets the camera types back unchanged.
    let r = BagReader::open(&path).unwrap();
    let got: Vec<BagPayload> = r
        .messages(&[
            "/imd/debug_image",
            "/cam0/camera_info",
            "/cam0/image_raw/compressed",
        ])
        .unwrap()
        .map(|m| m.unwrap().payload)
        .collect();
    assert_eq!(
        got,
        vec![
            BagPayload::Image(image),
            BagPayload::CameraInfo(info),
            BagPayload::CompressedImage(compressed)
        ]
    );
}
