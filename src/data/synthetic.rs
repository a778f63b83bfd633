//! Synthetic homography pairs from any folder of photos, seeded and random-access: pair `i`
//! depends only on `(seed, i)` and the photo list.
//!
//! **Image 0**: a photo chosen uniformly, resized (area-averaging) by a random factor so a
//! random `width × height` crop covers a fraction `crop_fraction ∈ [min_crop, 1]` of the
//! largest such crop, at a uniform position.
//!
//! **Homography** (image-0 pixels → image-1 pixels, pixel centres at integers), about the
//! image centre `c` with half-size `(W/2, H/2)`:
//! `H = T(c + t) · R(θ) · S(s) · P · T(−c)` with
//! - `θ ~ U(−max_rotation_deg, max_rotation_deg)`,
//! - `s = exp(U(ln scale_min, ln scale_max))` (isotropic),
//! - `P = [[1,0,0],[0,1,0],[p_x/(W/2), p_y/(H/2), 1]]`, `p_x, p_y ~ U(−max_perspective,
//!   max_perspective)`: the projective denominator varies by at most ±2·max_perspective over
//!   the image,
//! - `t = (U(−1,1)·max_translation·W, U(−1,1)·max_translation·H)`.
//!
//! A draw is kept when the denominator is positive at every corner of both images and at
//! least `min_overlap` of image 1 is covered by warped image 0 **and** at least `min_overlap`
//! of image 0 lands inside image 1 (polygon clipping); otherwise it is redrawn, halving all
//! ranges every 20 rejections (identity after 100).
//!
//! **Image 1** samples the resized photo bilinearly at `H⁻¹(x)`; pixels whose source falls
//! outside the photo are black and invalid. The valid mask of image 0 is all true.
//!
//! **Photometric jitter** (each image independently, in this order, clamped to [0, 1]):
//! contrast `×exp(U(±ln(1+contrast)))` about the mean grey, saturation blend with grey by
//! `1 + U(−saturation, saturation)`, brightness `+U(−brightness, brightness)`, gamma
//! `exp(U(±ln(1+gamma)))`, then Gaussian noise with σ ~ U(0, noise_std).
//!
//! **Harder options** (all off by default; their random numbers come from a separate stream
//! seeded by `(seed, i)`, so pairs made with them off are unchanged):
//! - `jitter.blur_sigma`: before the jitter, each image is blurred with a Gaussian of
//!   σ ~ U(0, blur_sigma) pixels ([`super::degrade::gaussian_blur`]);
//! - `jitter.jpeg_probability`: after it, each image is JPEG-compressed with this
//!   probability at a quality ~ U(jpeg_quality_min, 95) ([`super::degrade::jpeg_round_trip`]);
//! - `range_power`: each pair's geometric ranges (rotation, log-scale, perspective,
//!   translation) are multiplied by `u^range_power`, `u ~ U(0, 1)`, so easy pairs stay common
//!   while the hardest reach the full ranges (a mixture instead of a schedule: with power 1,
//!   41 % of pairs rotate by less than 25° of a ±180° range and 3 % by more than 135°);
//! - `negative_fraction`: this share of pairs are **negatives**: image 1 is made exactly like
//!   an image 1 (crop, homography, jitter) but from a *different* photo, and the ground truth
//!   is [`no_overlap_homography`], a translation that sends all of image 0 far outside
//!   image 1, so the supervision finds no correspondence at all (needs ≥ 2 photos).

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;
use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::degrade::{gaussian_blur, jpeg_round_trip};
use super::image::load_rgb;
use super::rng::SeededRng;
use super::{check_index, DataError, GroundTruth, PairDataset, PairSample, SampleImage};

/// Photometric jitter ranges (module doc); all zero disables it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhotometricJitter {
    /// Additive brightness range.
    pub brightness: f64,
    /// Contrast factor range `(1+contrast)^±1`.
    pub contrast: f64,
    /// Saturation change range.
    pub saturation: f64,
    /// Gamma range `(1+gamma)^±1`.
    pub gamma: f64,
    /// Largest Gaussian noise σ.
    pub noise_std: f64,
    /// Largest Gaussian blur σ in pixels (0 = off).
    #[serde(skip_serializing_if = "is_zero")]
    pub blur_sigma: f64,
    /// Probability of a JPEG round trip per image (0 = off).
    #[serde(skip_serializing_if = "is_zero")]
    pub jpeg_probability: f64,
    /// Lowest JPEG quality (the quality is uniform in `jpeg_quality_min..=95`).
    #[serde(skip_serializing_if = "is_default_jpeg_quality")]
    pub jpeg_quality_min: u8,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Default of [`PhotometricJitter::jpeg_quality_min`].
const DEFAULT_JPEG_QUALITY_MIN: u8 = 30;

fn is_default_jpeg_quality(q: &u8) -> bool {
    *q == DEFAULT_JPEG_QUALITY_MIN
}

/// Seed-stream tag of the harder options' random numbers (module doc).
const EXTRA_STREAM: u64 = 0x6861_7264_0000_0003;

impl Default for PhotometricJitter {
    fn default() -> Self {
        PhotometricJitter {
            brightness: 0.1,
            contrast: 0.25,
            saturation: 0.25,
            gamma: 0.2,
            noise_std: 0.02,
            blur_sigma: 0.0,
            jpeg_probability: 0.0,
            jpeg_quality_min: DEFAULT_JPEG_QUALITY_MIN,
        }
    }
}

impl PhotometricJitter {
    /// No jitter at all.
    pub fn none() -> Self {
        PhotometricJitter {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            gamma: 0.0,
            noise_std: 0.0,
            blur_sigma: 0.0,
            jpeg_probability: 0.0,
            jpeg_quality_min: DEFAULT_JPEG_QUALITY_MIN,
        }
    }
}

/// Configuration of the synthetic homography dataset (serde: part of training configs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticHomographyConfig {
    /// Folder of photos (`.png`, `.jpg`, `.jpeg`, `.ppm`, `.bmp`, `.tif`, `.tiff`; not recursive).
    pub images_dir: String,
    /// Use only these file names (empty = all).
    pub include: Vec<String>,
    /// Leave these file names out (held-out photos).
    pub exclude: Vec<String>,
    /// Output width (multiple of 8).
    pub width: u32,
    /// Output height (multiple of 8).
    pub height: u32,
    /// Number of pairs.
    pub pairs: usize,
    /// Seed.
    pub seed: u64,
    /// Smallest crop as a fraction of the largest crop of the photo.
    pub min_crop: f64,
    /// Rotation range, degrees.
    pub max_rotation_deg: f64,
    /// Smallest scale.
    pub scale_min: f64,
    /// Largest scale.
    pub scale_max: f64,
    /// Perspective range (see module doc).
    pub max_perspective: f64,
    /// Translation range as a fraction of the image size.
    pub max_translation: f64,
    /// Smallest covered fraction of each image.
    pub min_overlap: f64,
    /// Photometric jitter.
    pub jitter: PhotometricJitter,
    /// Share of negative pairs (image 1 from another photo, no ground truth; module doc).
    #[serde(skip_serializing_if = "is_zero")]
    pub negative_fraction: f64,
    /// Per-pair multiplier `u^range_power` of the geometric ranges (0 = off; module doc).
    #[serde(skip_serializing_if = "is_zero")]
    pub range_power: f64,
}

impl Default for SyntheticHomographyConfig {
    fn default() -> Self {
        SyntheticHomographyConfig {
            images_dir: String::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            width: 320,
            height: 240,
            pairs: 1000,
            seed: 0,
            min_crop: 0.6,
            max_rotation_deg: 25.0,
            scale_min: 0.8,
            scale_max: 1.25,
            max_perspective: 0.1,
            max_translation: 0.1,
            min_overlap: 0.5,
            jitter: PhotometricJitter::default(),
            negative_fraction: 0.0,
            range_power: 0.0,
        }
    }
}

impl SyntheticHomographyConfig {
    /// Range checks naming the field.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |f: &str, r: String| Err(DataError::option(format!("synthetic.{f}"), r));
        if self.width == 0
            || self.height == 0
            || !self.width.is_multiple_of(8)
            || !self.height.is_multiple_of(8)
        {
            return bad(
                "width/height",
                format!(
                    "{}×{} must be positive multiples of 8",
                    self.width, self.height
                ),
            );
        }
        if !(self.min_crop > 0.0 && self.min_crop <= 1.0) {
            return bad("min_crop", format!("{} is not in (0, 1]", self.min_crop));
        }
        if !(self.scale_min > 0.0 && self.scale_min <= self.scale_max) {
            return bad(
                "scale_min",
                format!(
                    "need 0 < scale_min ≤ scale_max, got {} and {}",
                    self.scale_min, self.scale_max
                ),
            );
        }
        if !(0.0..0.5).contains(&self.max_perspective) {
            return bad(
                "max_perspective",
                format!("{} is not in [0, 0.5)", self.max_perspective),
            );
        }
        if !(0.0..=1.0).contains(&self.min_overlap) {
            return bad(
                "min_overlap",
                format!("{} is not in [0, 1]", self.min_overlap),
            );
        }
        for (f, v) in [
            ("negative_fraction", self.negative_fraction),
            ("jitter.jpeg_probability", self.jitter.jpeg_probability),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(f, format!("{v} is not in [0, 1]"));
            }
        }
        if !(1..=95).contains(&self.jitter.jpeg_quality_min) {
            return bad(
                "jitter.jpeg_quality_min",
                format!("{} is not in 1..=95", self.jitter.jpeg_quality_min),
            );
        }
        for (f, v) in [
            ("max_rotation_deg", self.max_rotation_deg),
            ("max_translation", self.max_translation),
            ("jitter.brightness", self.jitter.brightness),
            ("jitter.contrast", self.jitter.contrast),
            ("jitter.saturation", self.jitter.saturation),
            ("jitter.gamma", self.jitter.gamma),
            ("jitter.noise_std", self.jitter.noise_std),
            ("jitter.blur_sigma", self.jitter.blur_sigma),
            ("range_power", self.range_power),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(f, format!("{v} is not a finite number ≥ 0"));
            }
        }
        Ok(())
    }
}

impl SyntheticHomographyConfig {
    /// The configuration with its geometric ranges multiplied by `m ∈ [0, 1]`: rotation,
    /// perspective and translation ranges × m, scale range `[scale_min^m, scale_max^m]`.
    pub fn with_geometry_scaled(&self, m: f64) -> Self {
        SyntheticHomographyConfig {
            max_rotation_deg: self.max_rotation_deg * m,
            scale_min: self.scale_min.powf(m),
            scale_max: self.scale_max.powf(m),
            max_perspective: self.max_perspective * m,
            max_translation: self.max_translation * m,
            ..self.clone()
        }
    }
}

const EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "ppm", "bmp", "tif", "tiff"];

/// Synthetic homography pairs.
#[derive(Debug)]
pub struct SyntheticHomographyDataset {
    config: SyntheticHomographyConfig,
    photos: Vec<PathBuf>,
}

impl SyntheticHomographyDataset {
    /// List the photos and check the configuration.
    pub fn open(config: SyntheticHomographyConfig) -> Result<Self, DataError> {
        config.validate()?;
        let dir = Path::new(&config.images_dir);
        let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(DataError::io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                (config.include.is_empty() || config.include.iter().any(|i| i == name))
                    && !config.exclude.iter().any(|x| x == name)
            })
            .collect();
        photos.sort();
        if photos.is_empty() {
            return Err(DataError::format(
                dir,
                "no usable photos (after include/exclude)",
            ));
        }
        if config.negative_fraction > 0.0 && photos.len() < 2 {
            return Err(DataError::option(
                "synthetic.negative_fraction",
                "negative pairs need at least 2 photos (image 1 comes from another photo)",
            ));
        }
        Ok(SyntheticHomographyDataset { config, photos })
    }

    /// The photos in use, sorted.
    pub fn photos(&self) -> &[PathBuf] {
        &self.photos
    }
}

/// The ground truth of a negative pair: a translation by 10× the image size, which sends
/// every pixel of image 0 outside image 1 (and back), so no pixel has a correspondence.
pub fn no_overlap_homography(w: u32, h: u32) -> Matrix3<f64> {
    Matrix3::new(
        1.0,
        0.0,
        10.0 * w as f64,
        0.0,
        1.0,
        10.0 * h as f64,
        0.0,
        0.0,
        1.0,
    )
}

/// Sample a homography per the module doc for a `w × h` image (image-0 → image-1 pixels).
pub fn sample_homography(
    rng: &mut SeededRng,
    config: &SyntheticHomographyConfig,
    w: u32,
    h: u32,
) -> Matrix3<f64> {
    let (wf, hf) = (w as f64, h as f64);
    let c = (0.5 * (wf - 1.0), 0.5 * (hf - 1.0));
    let mut shrink = 1.0;
    for attempt in 0..100 {
        if attempt > 0 && attempt % 20 == 0 {
            shrink *= 0.5;
        }
        let theta = rng.range(-1.0, 1.0) * config.max_rotation_deg.to_radians() * shrink;
        let (ls0, ls1) = (
            config.scale_min.ln() * shrink,
            config.scale_max.ln() * shrink,
        );
        let s = rng.range(ls0, ls1.max(ls0 + f64::EPSILON)).exp();
        let px = rng.range(-1.0, 1.0) * config.max_perspective * shrink / (0.5 * wf);
        let py = rng.range(-1.0, 1.0) * config.max_perspective * shrink / (0.5 * hf);
        let tx = rng.range(-1.0, 1.0) * config.max_translation * wf * shrink;
        let ty = rng.range(-1.0, 1.0) * config.max_translation * hf * shrink;
        let translate = |x: f64, y: f64| Matrix3::new(1.0, 0.0, x, 0.0, 1.0, y, 0.0, 0.0, 1.0);
        let (sn, cs) = theta.sin_cos();
        let rot = Matrix3::new(cs, -sn, 0.0, sn, cs, 0.0, 0.0, 0.0, 1.0);
        let scale = Matrix3::new(s, 0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0, 1.0);
        let persp = Matrix3::new(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, px, py, 1.0);
        let hm = translate(c.0 + tx, c.1 + ty) * rot * scale * persp * translate(-c.0, -c.1);
        if acceptable(&hm, wf, hf, config.min_overlap) {
            return hm;
        }
    }
    Matrix3::identity()
}

fn corners(w: f64, h: f64) -> [(f64, f64); 4] {
    // Pixel-centre convention: the image spans [−0.5, w−0.5] × [−0.5, h−0.5].
    [
        (-0.5, -0.5),
        (w - 0.5, -0.5),
        (w - 0.5, h - 0.5),
        (-0.5, h - 0.5),
    ]
}

fn map_point(hm: &Matrix3<f64>, p: (f64, f64)) -> Option<(f64, f64)> {
    let v = hm * Vector3::new(p.0, p.1, 1.0);
    (v.z > 1e-9).then(|| (v.x / v.z, v.y / v.z))
}

fn acceptable(hm: &Matrix3<f64>, w: f64, h: f64, min_overlap: f64) -> bool {
    let Some(inv) = hm.try_inverse() else {
        return false;
    };
    let rect = corners(w, h);
    let area = w * h;
    let covered = |m: &Matrix3<f64>| -> Option<f64> {
        let quad: Vec<(f64, f64)> = rect
            .iter()
            .map(|&p| map_point(m, p))
            .collect::<Option<_>>()?;
        Some(polygon_area(&clip_to_rect(&quad, -0.5, -0.5, w - 0.5, h - 0.5)) / area)
    };
    matches!((covered(hm), covered(&inv)), (Some(a), Some(b)) if a >= min_overlap && b >= min_overlap)
}

/// Sutherland–Hodgman clipping of a polygon to an axis-aligned rectangle.
fn clip_to_rect(poly: &[(f64, f64)], x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<(f64, f64)> {
    type Edge = (
        fn((f64, f64), f64) -> bool,
        fn((f64, f64), (f64, f64), f64) -> (f64, f64),
        f64,
    );
    fn cut_x(a: (f64, f64), b: (f64, f64), x: f64) -> (f64, f64) {
        let t = (x - a.0) / (b.0 - a.0);
        (x, a.1 + t * (b.1 - a.1))
    }
    fn cut_y(a: (f64, f64), b: (f64, f64), y: f64) -> (f64, f64) {
        let t = (y - a.1) / (b.1 - a.1);
        (a.0 + t * (b.0 - a.0), y)
    }
    let edges: [Edge; 4] = [
        (|p, v| p.0 >= v, cut_x, x0),
        (|p, v| p.0 <= v, cut_x, x1),
        (|p, v| p.1 >= v, cut_y, y0),
        (|p, v| p.1 <= v, cut_y, y1),
    ];
    let mut out: Vec<(f64, f64)> = poly.to_vec();
    for (inside, cut, v) in edges {
        let input = std::mem::take(&mut out);
        for k in 0..input.len() {
            let cur = input[k];
            let prev = input[(k + input.len() - 1) % input.len()];
            match (inside(cur, v), inside(prev, v)) {
                (true, true) => out.push(cur),
                (true, false) => {
                    out.push(cut(prev, cur, v));
                    out.push(cur);
                }
                (false, true) => out.push(cut(prev, cur, v)),
                (false, false) => {}
            }
        }
        if out.is_empty() {
            break;
        }
    }
    out
}

fn polygon_area(poly: &[(f64, f64)]) -> f64 {
    let n = poly.len();
    let twice: f64 = (0..n)
        .map(|k| {
            let (a, b) = (poly[k], poly[(k + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    0.5 * twice.abs()
}

/// Planar RGB f32 image in [0, 1] with a validity mask.
struct Planar {
    w: usize,
    h: usize,
    rgb: Vec<f32>, // 3 planes
    valid: Vec<bool>,
}

fn bilinear(img: &RgbImage, x: f64, y: f64) -> Option<[f32; 3]> {
    let (w, h) = (img.width() as f64, img.height() as f64);
    if !(x >= -0.5 && y >= -0.5 && x <= w - 0.5 && y <= h - 0.5) {
        return None;
    }
    let xc = x.clamp(0.0, w - 1.0);
    let yc = y.clamp(0.0, h - 1.0);
    let (x0, y0) = (xc.floor() as u32, yc.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(img.width() - 1),
        (y0 + 1).min(img.height() - 1),
    );
    let (fx, fy) = ((xc - x0 as f64) as f32, (yc - y0 as f64) as f32);
    let mut out = [0.0f32; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let p = |x: u32, y: u32| img.get_pixel(x, y)[c] as f32 / 255.0;
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        *o = top * (1.0 - fy) + bottom * fy;
    }
    Some(out)
}

fn jitter(img: &mut Planar, j: &PhotometricJitter, rng: &mut SeededRng) {
    let n = img.w * img.h;
    let contrast = rng.range(-1.0, 1.0) * (1.0 + j.contrast).ln();
    let saturation = 1.0 + rng.range(-1.0, 1.0) * j.saturation;
    let brightness = rng.range(-1.0, 1.0) * j.brightness;
    let gamma = (rng.range(-1.0, 1.0) * (1.0 + j.gamma).ln()).exp();
    let noise = rng.range(0.0, 1.0) * j.noise_std;
    let (r, rest) = img.rgb.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    let grey =
        |k: usize, r: &[f32], g: &[f32], b: &[f32]| 0.299 * r[k] + 0.587 * g[k] + 0.114 * b[k];
    let mean = (0..n).map(|k| grey(k, r, g, b) as f64).sum::<f64>() / n.max(1) as f64;
    let cf = contrast.exp() as f32;
    for k in 0..n {
        let y = grey(k, r, g, b);
        for plane in [&mut *r, &mut *g, &mut *b] {
            let mut v = plane[k];
            v = (v - mean as f32) * cf + mean as f32;
            let y_c = (y - mean as f32) * cf + mean as f32;
            v = y_c + (v - y_c) * saturation as f32;
            v += brightness as f32;
            v = v.clamp(0.0, 1.0).powf(gamma as f32);
            plane[k] = v;
        }
    }
    if noise > 0.0 {
        for v in img.rgb.iter_mut() {
            *v += (rng.normal() * noise) as f32;
        }
    }
    for (k, v) in img.rgb.iter_mut().enumerate() {
        *v = if img.valid[k % n] {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
}

fn to_sample(img: Planar, path: PathBuf) -> SampleImage {
    let (w, h) = (img.w as i64, img.h as i64);
    SampleImage {
        pixels: Tensor::from_slice(&img.rgb).view([3, h, w]),
        valid: Tensor::from_slice(&img.valid).view([h, w]),
        scale: [1.0, 1.0],
        original_size: (img.w as u32, img.h as u32),
        content_size: (img.w as u32, img.h as u32),
        path,
    }
}

impl PairDataset for SyntheticHomographyDataset {
    fn name(&self) -> &str {
        "homography-synth"
    }

    fn len(&self) -> usize {
        self.config.pairs
    }

    fn get(&self, index: usize) -> Result<PairSample, DataError> {
        check_index(self.name(), index, self.len())?;
        let cfg = &self.config;
        let mut rng = SeededRng::for_item(cfg.seed, index as u64);
        let mut extra = SeededRng::for_item(cfg.seed ^ EXTRA_STREAM, index as u64);
        let k = rng.below(self.photos.len() as u64) as usize;
        let path = self.photos[k].clone();
        let scaled;
        let cfg = if cfg.range_power > 0.0 {
            scaled = cfg.with_geometry_scaled(extra.uniform().powf(cfg.range_power));
            &scaled
        } else {
            cfg
        };
        let (mut img0, mut img1, mut hm) = render_pair(&load_rgb(&path)?, cfg, &mut rng);
        let mut path1 = path.clone();
        if cfg.negative_fraction > 0.0 && extra.uniform() < cfg.negative_fraction {
            // Another photo (open() checked there are ≥ 2), rendered like a positive pair.
            let n = self.photos.len() as u64;
            let other = (k + 1 + extra.below(n - 1) as usize) % n as usize;
            path1 = self.photos[other].clone();
            let (_, other1, _) = render_pair(&load_rgb(&path1)?, cfg, &mut extra);
            img1 = other1;
            hm = no_overlap_homography(cfg.width, cfg.height);
        }
        for img in [&mut img0, &mut img1] {
            if cfg.jitter.blur_sigma > 0.0 {
                let sigma = extra.range(0.0, cfg.jitter.blur_sigma);
                gaussian_blur(&mut img.rgb, img.w, img.h, sigma);
            }
        }
        jitter(&mut img0, &cfg.jitter, &mut rng);
        jitter(&mut img1, &cfg.jitter, &mut rng);
        for img in [&mut img0, &mut img1] {
            if cfg.jitter.jpeg_probability > 0.0 && extra.uniform() < cfg.jitter.jpeg_probability {
                let q = cfg.jitter.jpeg_quality_min as u64;
                let quality = (q + extra.below(96 - q)) as u8;
                jpeg_round_trip(&mut img.rgb, img.w, img.h, quality)?;
                for (k, v) in img.rgb.iter_mut().enumerate() {
                    if !img.valid[k % (img.w * img.h)] {
                        *v = 0.0;
                    }
                }
            }
        }
        let name = format!(
            "{}#{index}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("photo")
        );
        Ok(PairSample {
            name,
            image0: to_sample(img0, path),
            image1: to_sample(img1, path1),
            ground_truth: GroundTruth::Homography { h_0to1: hm },
        })
    }
}

/// Image 0, image 1 (before jitter) and the homography of one pair made from `photo` (module
/// doc), drawing from `rng` in a fixed order.
fn render_pair(
    photo: &RgbImage,
    cfg: &SyntheticHomographyConfig,
    rng: &mut SeededRng,
) -> (Planar, Planar, Matrix3<f64>) {
    let (pw, ph) = photo.dimensions();
    let (w, h) = (cfg.width, cfg.height);
    // Largest crop of aspect w:h fits at factor f_max; pick a crop fraction of it.
    let f_max = (pw as f64 / w as f64).min(ph as f64 / h as f64);
    let frac = rng.range(cfg.min_crop, 1.0);
    let factor = (f_max * frac).max(1e-6); // photo pixels per output pixel
    let rw = ((pw as f64 / factor).round() as u32).max(w);
    let rh = ((ph as f64 / factor).round() as u32).max(h);
    let resized = image::imageops::resize(photo, rw, rh, FilterType::Triangle);
    let ox = rng.below((rw - w + 1) as u64) as f64;
    let oy = rng.below((rh - h + 1) as u64) as f64;
    let hm = sample_homography(rng, cfg, w, h);
    let inv = hm.try_inverse().unwrap_or_else(Matrix3::identity);

    let (wu, hu) = (w as usize, h as usize);
    let n = wu * hu;
    let mut img0 = Planar {
        w: wu,
        h: hu,
        rgb: vec![0.0; 3 * n],
        valid: vec![true; n],
    };
    let mut img1 = Planar {
        w: wu,
        h: hu,
        rgb: vec![0.0; 3 * n],
        valid: vec![false; n],
    };
    for y in 0..hu {
        for x in 0..wu {
            let k = y * wu + x;
            let p = resized.get_pixel(x as u32 + ox as u32, y as u32 + oy as u32);
            for c in 0..3 {
                img0.rgb[c * n + k] = p[c] as f32 / 255.0;
            }
            if let Some((sx, sy)) = map_point(&inv, (x as f64, y as f64)) {
                if let Some(v) = bilinear(&resized, sx + ox, sy + oy) {
                    for (c, value) in v.iter().enumerate() {
                        img1.rgb[c * n + k] = *value;
                    }
                    img1.valid[k] = true;
                }
            }
        }
    }
    (img0, img1, hm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_area() {
        // A 2×2 square centred on the corner of a 4×4 rect overlaps it by 1×1.
        let sq = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)];
        let clipped = clip_to_rect(&sq, 0.0, 0.0, 4.0, 4.0);
        assert!((polygon_area(&clipped) - 1.0).abs() < 1e-12);
        // A diamond fully inside keeps its area 2.
        let d = [(2.0, 1.0), (3.0, 2.0), (2.0, 3.0), (1.0, 2.0)];
        assert!((polygon_area(&clip_to_rect(&d, 0.0, 0.0, 4.0, 4.0)) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn geometry_scaled_to_zero_is_the_identity() {
        let cfg = SyntheticHomographyConfig {
            max_rotation_deg: 180.0,
            scale_min: 0.33,
            scale_max: 3.0,
            max_perspective: 0.25,
            ..SyntheticHomographyConfig::default()
        };
        let zero = cfg.with_geometry_scaled(0.0);
        assert_eq!((zero.scale_min, zero.scale_max), (1.0, 1.0));
        let hm = sample_homography(&mut SeededRng::new(5), &zero, 64, 48);
        assert!((hm - Matrix3::identity()).abs().max() < 1e-9, "{hm}");
        let half = cfg.with_geometry_scaled(0.5);
        assert_eq!(half.max_rotation_deg, 90.0);
        assert!((half.scale_max - 3f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn sampled_homographies_respect_the_distribution() {
        let cfg = SyntheticHomographyConfig::default();
        let mut rng = SeededRng::new(3);
        for _ in 0..50 {
            let hm = sample_homography(&mut rng, &cfg, 320, 240);
            assert!(acceptable(&hm, 320.0, 240.0, cfg.min_overlap));
            // The centre moves by t only: |t| ≤ max_translation·size.
            let c = (159.5, 119.5);
            let hc = map_point(&hm, c).unwrap();
            assert!((hc.0 - c.0).abs() <= 32.0 + 1e-9 && (hc.1 - c.1).abs() <= 24.0 + 1e-9);
            // The Jacobian at the centre is s·R(θ) (P is the identity to first order there);
            // central differences over ±0.01 px have error O(p²·0.01²), far below 1e-6.
            let e = 0.01;
            let dx = |d: (f64, f64)| map_point(&hm, (c.0 + d.0, c.1 + d.1)).unwrap();
            let (a, b) = (dx((e, 0.0)), dx((-e, 0.0)));
            let (jxx, jyx) = ((a.0 - b.0) / (2.0 * e), (a.1 - b.1) / (2.0 * e));
            let scale = jxx.hypot(jyx);
            let angle = jyx.atan2(jxx).to_degrees();
            assert!((0.8 - 1e-6..=1.25 + 1e-6).contains(&scale), "scale {scale}");
            assert!(angle.abs() <= 25.0 + 1e-6, "angle {angle}");
        }
    }
}
