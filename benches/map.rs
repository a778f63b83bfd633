//! Saved maps: bytes per keyframe, save and load time per keyframe, and how retrieval grows
//! with the map (issue 23 item 6).
//!
//! Keyframes are 320×240 crops of the scikit-image photos in `tests/fixtures/datasets/photos`
//! (what a camera sees compresses like a photo, not like noise) with a smooth 16UC1 depth image
//! and a 1024-d embedding (the size of IMD's CLIP embedding). Retrieval is what
//! `Tracker::relocalize` does before matching: the cosine similarity of the query embedding to
//! every keyframe's, then `rank_candidates` (the top k matched afterwards cost the same for
//! any map size). Load time here is reading + checking + decoding; inserting into a tracker
//! adds one `prepare` per keyframe (the matcher's cost per image, e.g. the replay's
//! `prepare_ms`).
//!
//! Run: `cargo bench --bench map` (prints one JSON object; `-- --quick` for fewer repeats).

use std::sync::Arc;
use std::time::Instant;

use image::imageops::FilterType;
use image::RgbImage;
use imd::geometry::CameraModel;
use imd::io::image::{DepthBuffer, DepthMap};
use imd::io::msgs::builtin_interfaces::Time;
use imd::pipeline::map::{load, save, KeyframeMap, MapDepth, MapKeyframe, Replace};
use imd::pipeline::odom::PoseWithCov;
use imd::pipeline::tracker::rank_candidates;
use imd::pipeline::{cosine_similarity, KeyframeId};
use nalgebra::{Isometry3, Vector3};

const DIM: usize = 1024;
const W: u32 = 320;
const H: u32 = 240;

/// xorshift, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn embedding(rng: &mut Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.next()).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn photos() -> Vec<RgbImage> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets/photos");
    let mut out: Vec<RgbImage> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .map(|e| {
            let photo = image::open(e.path()).unwrap().into_rgb8();
            // Small fixture photos, scaled so a camera-sized crop fits.
            image::imageops::resize(&photo, W * 3 / 2, H * 3 / 2, FilterType::Triangle)
        })
        .collect();
    out.sort_by_key(|i| i.as_raw().len());
    out
}

fn keyframe(i: usize, photos: &[RgbImage], rng: &mut Rng) -> MapKeyframe {
    let photo = &photos[i % photos.len()];
    let (x0, y0) = (
        (i * 37) as u32 % (photo.width() - W + 1),
        (i * 53) as u32 % (photo.height() - H + 1),
    );
    let image = image::imageops::crop_imm(photo, x0, y0, W, H).to_image();
    let depth: Vec<u16> = (0..W * H)
        .map(|k| 1500 + ((k % W) as f32 * 3.0 + (k / W) as f32 * 5.0 + i as f32) as u16)
        .collect();
    MapKeyframe {
        id: KeyframeId {
            camera: "cam0".into(),
            stamp: Time {
                sec: 1_700_000_000 + i as i32,
                nanosec: 0,
            },
        },
        frame_id: "cam0_optical".into(),
        model: CameraModel::pinhole(250.0, 250.0, 159.5, 119.5, W, H),
        image: Arc::new(image),
        embedding: embedding(rng),
        depth: Some(MapDepth::Dense(Arc::new(
            DepthMap::new(W, H, DepthBuffer::Millimetres(depth)).unwrap(),
        ))),
        pose: PoseWithCov::exact(Isometry3::new(
            Vector3::new(i as f64 * 0.1, 0.0, 0.0),
            Vector3::zeros(),
        )),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let photos = photos();
    assert!(!photos.is_empty(), "no photos");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);

    // Disk: a 100-keyframe map.
    let n = if quick { 20 } else { 100 };
    let map = KeyframeMap {
        model: "sha256:bench".into(),
        frame_id: "map".into(),
        keyframes: (0..n).map(|i| keyframe(i, &photos, &mut rng)).collect(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let t = Instant::now();
    let report = save(&map, &dir, &Replace::Own(None)).unwrap();
    let save_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = load(&dir, Some("sha256:bench")).unwrap();
    let load_s = t.elapsed().as_secs_f64();
    assert_eq!(back.keyframes.len(), n);

    // Retrieval over 100 / 1 000 / 10 000 keyframes.
    let mut retrieval = Vec::new();
    for size in [100usize, 1_000, 10_000] {
        let keys: Vec<Vec<f32>> = (0..size).map(|_| embedding(&mut rng)).collect();
        let ids: Vec<KeyframeId> = (0..size)
            .map(|i| KeyframeId {
                camera: "cam0".into(),
                stamp: Time {
                    sec: i as i32,
                    nanosec: 0,
                },
            })
            .collect();
        let repeats = if quick { 5 } else { 50 };
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let query = embedding(&mut rng);
            let t = Instant::now();
            let scored: Vec<(KeyframeId, f64, u64)> = keys
                .iter()
                .zip(&ids)
                .enumerate()
                .map(|(i, (k, id))| {
                    (
                        id.clone(),
                        cosine_similarity(&query, k).unwrap_or(f64::NAN),
                        i as u64,
                    )
                })
                .collect();
            let ranked = rank_candidates(scored, 0.0, 5);
            times.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(ranked);
        }
        times.sort_by(f64::total_cmp);
        retrieval.push(serde_json::json!({
            "keyframes": size,
            "median_ms": times[times.len() / 2],
            "max_ms": times[times.len() - 1],
            "embedding_bytes": size * DIM * 4,
        }));
    }
    let out = serde_json::json!({
        "keyframe": format!("{W}x{H} RGB photo crop + 16UC1 depth + {DIM}-d f32 embedding"),
        "map_keyframes": n,
        "bytes": report.bytes,
        "bytes_per_keyframe": report.bytes / n as u64,
        "save_ms_per_keyframe": save_s * 1e3 / n as f64,
        "load_ms_per_keyframe": load_s * 1e3 / n as f64,
        "retrieval": retrieval,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
