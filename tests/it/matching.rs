//! The matcher heads: coarse matching on planted correspondences, sub-pixel refinement of a
//! known shift, heads loading, the whole matcher on a synthetic feature source, `imd match`.
//!
//! `tests/fixtures/matching/random_model/` is written by `scripts/fixtures/make_random_model.py`
//! (random weights, SD2.1-structured small configs).

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use imd::model::coarse::matching::{confidence_matrix, extract_matches};
use imd::model::coarse::{CoarseGrid, CoarseMatchParams, ValidRegion};
use imd::model::fine::refine::{
    argmax_pairs, refine, stage1, subpixel_expectation, windows0, windows1, WindowCells,
};
use imd::model::imd_config::{CipmConfig, CoarseConfig, FineConfig, ImdModelConfig};
use imd::model::matcher::{
    FeatureSource, HeadDims, ImdHeads, PairBatch, PairInputs, PromptInputs, HEADS_FILE,
};
use imd::model::{ImdMatcher, MatcherMode, ModeOption, ModelError, ModelOptions};
use tch::{Device, Kind, Tensor};

use crate::util;

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

// ---------------------------------------------------------------------------------------
// Coarse matching with planted correspondences.

/// Cell index in a grid of `w` columns.
fn idx(w: i64, x: i64, y: i64) -> i64 {
    y * w + x
}

#[test]
fn coarse_matching_recovers_planted_pairs_with_border_padding_and_mnn() {
    // Two batch items, 6×8 cells each. Every cell gets its own orthonormal direction, so
    // unrelated cells have similarity exactly 0; a planted pair shares one direction with
    // norm² = C·τ·10, i.e. similarity S = 10.
    let (h, w, c, tau) = (6i64, 8i64, 128i64, 0.1);
    let grid = CoarseGrid::new(h, w);
    let l = grid.len();
    tch::manual_seed(11);
    let (q, _) = Tensor::linalg_qr(&Tensor::randn([c, c], CPU), "reduced");
    let basis = q.transpose(0, 1); // rows are orthonormal
    let norm = (c as f64 * tau * 10.0).sqrt();
    let dir = |k: i64| basis.get(k) * norm;
    let f0 = Tensor::zeros([2, l, c], CPU);
    let f1 = Tensor::zeros([2, l, c], CPU);
    // Image 0's cells use basis vectors 0..48, image 1's 48..96.
    for b in 0..2 {
        for i in 0..l {
            f0.get(b).get(i).copy_(&dir(i));
            f1.get(b).get(i).copy_(&dir(l + i));
        }
    }
    let plant = |b: i64, i: i64, j: i64| f1.get(b).get(j).copy_(&f0.get(b).get(i));

    // Item 0 (no padding); border 2 keeps rows 2..=3, columns 2..=5.
    let a = (idx(w, 3, 2), idx(w, 4, 3)); // inside: kept
    plant(0, a.0, a.1);
    plant(0, idx(w, 1, 2), idx(w, 3, 3)); // image-0 cell in the border: removed
    plant(0, idx(w, 5, 3), idx(w, 6, 2)); // image-1 cell in the border: removed
    let d = (idx(w, 2, 3), idx(w, 2, 2)); // kept…
    plant(0, d.0, d.1);
    // …and a weaker copy of d's image-0 cell: its best column is d.1, but it is not the
    // column's maximum, so mutual nearest neighbour drops it.
    let weaker = idx(w, 4, 2);
    let mix = f0.get(0).get(d.0) * 0.9 + dir(weaker) * (1.0f64 - 0.81).sqrt();
    f0.get(0).get(weaker).copy_(&mix);

    // Item 1: image 1 valid 5×6 of the padded 6×8; border 2 from the valid edge keeps
    // row 2, columns 2..=3 of image 1.
    let valid1 = ValidRegion {
        height: 5,
        width: 6,
    };
    let e = (idx(w, 2, 2), idx(w, 3, 2)); // kept
    plant(1, e.0, e.1);
    plant(1, idx(w, 3, 3), idx(w, 4, 2)); // within 2 of the valid edge (not of the array): removed
    plant(1, idx(w, 5, 2), idx(w, 7, 1)); // image-1 cell in the padding: masked out

    let valid0 = [grid.full(), grid.full()];
    let valid1 = [grid.full(), valid1];
    let mask0 = grid.padding_mask(&valid0, Device::Cpu);
    let mask1 = grid.padding_mask(&valid1, Device::Cpu);
    let conf = confidence_matrix(&f0, &f1, Some(&mask0), Some(&mask1), tau);
    let params = CoarseMatchParams {
        threshold: 0.2,
        border: 2,
    };
    let m = extract_matches(&conf, grid, grid, &valid0, &valid1, params);
    let b: Vec<i64> = Vec::try_from(&m.b_ids).unwrap();
    let i: Vec<i64> = Vec::try_from(&m.i_ids).unwrap();
    let j: Vec<i64> = Vec::try_from(&m.j_ids).unwrap();
    let got: Vec<(i64, i64, i64)> = b
        .into_iter()
        .zip(i)
        .zip(j)
        .map(|((b, i), j)| (b, i, j))
        .collect();
    let mut expected = vec![(0, a.0, a.1), (0, d.0, d.1), (1, e.0, e.1)];
    expected.sort();
    assert_eq!(got, expected);

    // Confidences against the closed form: a planted row has one logit 10 and the rest 0
    // over the valid cells, so P = σ_row · σ_col with σ = e¹⁰ / (e¹⁰ + n − 1).
    let sigma = |n: f64| 10f64.exp() / (10f64.exp() + n - 1.0);
    let conf_v: Vec<f32> = Vec::try_from(&m.confidence).unwrap();
    let p_a = sigma(48.0) * sigma(48.0);
    let p_e = sigma(30.0) * sigma(48.0); // row over image 1's 30 valid cells
    assert!((conf_v[0] as f64 - p_a).abs() < 1e-5, "{conf_v:?} vs {p_a}");
    assert!((conf_v[2] as f64 - p_e).abs() < 1e-5, "{conf_v:?} vs {p_e}");
    // d's column is shared with the weaker copy: below σ², above the threshold.
    assert!(conf_v[1] > 0.2 && (conf_v[1] as f64) < p_a - 0.1);

    // Zero matches: a threshold no pair reaches gives well-formed empty tensors, and the fine
    // stage accepts them.
    let none = extract_matches(
        &conf,
        grid,
        grid,
        &valid0,
        &valid1,
        CoarseMatchParams {
            threshold: 0.9999,
            border: 2,
        },
    );
    assert!(none.is_empty());
    assert_eq!(none.confidence.size(), vec![0]);
    let feat = Tensor::zeros([2, 16, 8 * h, 8 * w], CPU);
    let (x0, y0) = grid.cells_of(&none.i_ids);
    let (x1, y1) = grid.cells_of(&none.j_ids);
    let cells = WindowCells {
        b: none.b_ids,
        x0,
        y0,
        x1,
        y1,
    };
    let fine = refine(&feat, &feat, &cells, 8, 10.0);
    assert_eq!(fine.points1.size(), vec![0, 2]);
}

// ---------------------------------------------------------------------------------------
// Sub-pixel refinement of a known shift.

/// Plane waves `cos(ω·p + φ)`, `sin(ω·p + φ)`: the inner product of two such feature vectors
/// at positions `a`, `b` is `Σ cos(ω·(a − b))`, a smooth kernel that peaks at `a = b`.
struct Waves {
    omega: Vec<(f64, f64)>,
    phase: Vec<f64>,
    amplitude: f64,
}

impl Waves {
    fn features(&self, x: f64, y: f64, out: &mut Vec<f32>) {
        for (&(wx, wy), &ph) in self.omega.iter().zip(&self.phase) {
            out.push((self.amplitude * (wx * x + wy * y + ph).cos()) as f32);
        }
        for (&(wx, wy), &ph) in self.omega.iter().zip(&self.phase) {
            out.push((self.amplitude * (wx * x + wy * y + ph).sin()) as f32);
        }
    }

    /// Inner product of the features at positions differing by `(dx, dy)`.
    fn kernel(&self, dx: f64, dy: f64) -> f64 {
        self.amplitude.powi(2)
            * self
                .omega
                .iter()
                .map(|&(wx, wy)| (wx * dx + wy * dy).cos())
                .sum::<f64>()
    }
}

/// A small deterministic generator (no test depends on a crate RNG's stream).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 64-channel fine features of an `h × w` image whose content is the wave field shifted by
/// `shift` (image(p) = field(p − shift)); channels 0..56 pixel stage, 56..64 sub-pixel stage.
fn wave_image(pixel: &Waves, sub: &Waves, h: i64, w: i64, shift: (f64, f64)) -> Tensor {
    let mut data = Vec::with_capacity((h * w * 64) as usize);
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f64 - shift.0, y as f64 - shift.1);
            pixel.features(px, py, &mut data);
            sub.features(px, py, &mut data);
        }
    }
    Tensor::from_slice(&data)
        .view([h, w, 64])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .contiguous()
}

#[test]
fn refinement_recovers_a_known_subpixel_shift() {
    // Pixel stage: 28 waves of random direction and wavelength 4–25 px (a sharp, unique
    // peak). Sub-pixel stage: 4 waves of |ω| = 0.6 at 0°, 45°, 90°, 135°, amplitude 14, so
    // the 3×3 logits are ≈ −β|d − r|² with β = 14²·0.6²/(√8·10) ≈ 2.5 (the kernel's curvature
    // over √8 and the temperature 10). The 3×3 soft-argmax of such a peak misses the true
    // residual r by ≤ 0.05 px for |r| ≤ 0.9 and ≤ 0.08 px up to |r| = 0.99 (`expected_offset`
    // below computes it exactly), so the acceptance bound 0.1 px holds, while an
    // implementation error (wrong window, neighbourhood, scaling or temperature) misses some
    // of these shifts by 0.2 px or more (checked by mutating the code).
    let mut rng = SplitMix(7);
    let mut omega = Vec::new();
    let mut phase = Vec::new();
    for _ in 0..28 {
        let a = rng.next() * PI;
        let r = 0.25 + rng.next() * 1.35;
        omega.push((r * a.cos(), r * a.sin()));
        phase.push(rng.next() * 2.0 * PI);
    }
    let pixel = Waves {
        omega,
        phase,
        amplitude: 4.0,
    };
    let sub = Waves {
        omega: (0..4)
            .map(|k| {
                let a = k as f64 * PI / 4.0;
                (0.6 * a.cos(), 0.6 * a.sin())
            })
            .collect(),
        phase: vec![0.3, 1.1, 2.0, 4.0],
        amplitude: 14.0,
    };
    let (h, w) = (48i64, 48i64);
    let f0 = wave_image(&pixel, &sub, h, w, (0.0, 0.0));
    let temperature = 10.0;
    // Shifts with fractions of both signs up to 0.5, and one that crosses into the next cell.
    let cases: [((f64, f64), (i64, i64)); 8] = [
        ((0.3, 0.0), (2, 2)),
        ((2.3, -1.6), (2, 2)),
        ((-1.45, 0.45), (2, 2)),
        ((0.5, -0.5), (2, 2)),
        ((3.2, 2.7), (2, 2)),
        ((-2.9, -0.1), (2, 2)),
        ((0.05, 1.95), (2, 2)),
        ((10.3, -1.6), (3, 2)),
    ];
    for (shift, cell1) in cases {
        let f1 = wave_image(&pixel, &sub, h, w, shift);
        let one = |v: i64| Tensor::from_slice(&[v]);
        let cells = WindowCells {
            b: one(0),
            x0: one(2),
            y0: one(2),
            x1: one(cell1.0),
            y1: one(cell1.1),
        };
        let out = refine(&f0, &f1, &cells, 8, temperature);
        let p0: Vec<f32> = Vec::try_from(out.points0.view([-1])).unwrap();
        let p1: Vec<f32> = Vec::try_from(out.points1.view([-1])).unwrap();
        let (dx, dy) = ((p1[0] - p0[0]) as f64, (p1[1] - p0[1]) as f64);
        assert!(
            (dx - shift.0).abs() < 0.1 && (dy - shift.1).abs() < 0.1,
            "shift {shift:?}: recovered ({dx:.4}, {dy:.4})"
        );

        // Stage by stage against the closed form: the chosen pixel pair (p, q) must put the
        // true correspondence within the ±1 px reach of stage 2 (the dual softmax's
        // normalisation near window edges may prefer the second-nearest pixel), and the
        // sub-pixel offset must equal the soft-argmax of the analytic 3×3 logits.
        let w0 = windows0(&f0, &cells.b, &cells.x0, &cells.y0);
        let w1 = windows1(&f1, &cells.b, &cells.x1, &cells.y1);
        let s1 = stage1(&w0, &w1, 8);
        let (il, ir) = argmax_pairs(&s1.conf);
        let (il, ir) = (il.int64_value(&[0]), ir.int64_value(&[0]));
        let p = (16 + il % 8, 16 + il / 8);
        let q = (8 * cell1.0 + ir % 8, 8 * cell1.1 + ir / 8);
        let residual = (
            p.0 as f64 + shift.0 - q.0 as f64,
            p.1 as f64 + shift.1 - q.1 as f64,
        );
        assert!(
            residual.0.abs() < 1.0 && residual.1.abs() < 1.0,
            "{shift:?}: {residual:?}"
        );
        let offset = subpixel_expectation(
            &s1.subpixel_sim,
            &Tensor::from_slice(&[il]),
            &Tensor::from_slice(&[ir]),
            temperature,
        );
        let expected = expected_offset(&sub, residual, temperature);
        for k in 0..2 {
            let got = offset.double_value(&[0, k]);
            let want = [expected.0, expected.1][k as usize];
            assert!(
                (got - want).abs() < 1e-4,
                "{shift:?}: offset {got} vs {want}"
            );
        }
        // The reported points follow the −3.5…3.5 convention on the chosen pixels.
        assert!((p0[0] as f64 - (p.0 as f64 - 3.5)).abs() < 1e-5);
        assert!((p1[1] as f64 - (q.1 as f64 - 3.5 + expected.1)).abs() < 1e-4);
    }
}

/// Soft-argmax over `{−1, 0, 1}²` of the sub-pixel logits for a pixel pair whose true
/// correspondence lies `residual` from the chosen image-1 pixel.
fn expected_offset(sub: &Waves, residual: (f64, f64), temperature: f64) -> (f64, f64) {
    let mut weights = Vec::new();
    for v in -1..=1 {
        for u in -1..=1 {
            let logit = sub.kernel(residual.0 - u as f64, residual.1 - v as f64) / 8f64.sqrt();
            weights.push(((logit / temperature).exp(), u as f64, v as f64));
        }
    }
    let z: f64 = weights.iter().map(|w| w.0).sum();
    (
        weights.iter().map(|w| w.0 * w.1).sum::<f64>() / z,
        weights.iter().map(|w| w.0 * w.2).sum::<f64>() / z,
    )
}

// ---------------------------------------------------------------------------------------
// Heads loading.

fn small_config(clip_tokens: i64) -> ImdModelConfig {
    ImdModelConfig {
        description: "integration test".into(),
        cipm: CipmConfig {
            clip_tokens,
            dim: 8,
            prompt_length: 4,
            scale: 0.2,
            mlp_hidden: 16,
        },
        coarse: CoarseConfig {
            d_model: 16,
            nhead: 2,
            ..Default::default()
        },
        fine: FineConfig {
            dims: vec![16, 16],
            ..Default::default()
        },
        ..Default::default()
    }
}

const DIMS: HeadDims = HeadDims {
    feature_channels: 12,
    context_dim: 6,
    clip_hidden: 10,
};

/// A tensor as (shape, values).
type Stored = (Vec<usize>, Vec<f32>);
/// Maps a stored tensor (name, shape, values) to its replacement, or drops it (None).
type Edit<'a> = &'a dyn Fn(&str, Vec<usize>, Vec<f32>) -> Option<Stored>;
/// The backbone calls a [`Synthetic`] source saw: (what, batch size).
type CallLog = Arc<Mutex<Vec<(&'static str, i64)>>>;

/// Rewrite a safetensors file through `edit(name, shape, values) -> Option<(shape, values)>`
/// (None drops the tensor); `extra` tensors are appended.
fn rewrite(src: &Path, dst: &Path, edit: Edit<'_>, extra: &[(&str, Vec<usize>, Vec<f32>)]) {
    let bytes = std::fs::read(src).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (name, view) in st.tensors() {
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some((shape, values)) = edit(&name, view.shape().to_vec(), values) {
            out.push((name, shape, values));
        }
    }
    for (n, s, v) in extra {
        out.push((n.to_string(), s.clone(), v.clone()));
    }
    let bytes: Vec<Vec<u8>> = out
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = out
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, dst).unwrap();
}

#[test]
fn heads_loading_rejects_unexpected_missing_and_misshaped_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(5);
    let good = dir.path().join("good.safetensors");
    ImdHeads::new(&cfg, DIMS, Device::Cpu).save(&good).unwrap();
    ImdHeads::load(&good, &cfg, DIMS, Device::Cpu, Kind::Float).unwrap();

    let extra = dir.path().join("extra.safetensors");
    rewrite(
        &good,
        &extra,
        &|_, s, v| Some((s, v)),
        &[("cipm.extra.weight", vec![2], vec![0.0; 2])],
    );
    match ImdHeads::load(&extra, &cfg, DIMS, Device::Cpu, Kind::Float).unwrap_err() {
        ModelError::UnexpectedTensor { tensor, file } => {
            assert_eq!(tensor, "cipm.extra.weight");
            assert_eq!(file, extra);
        }
        other => panic!("expected UnexpectedTensor, got {other}"),
    }

    // One NaN among the weights: refused at load, naming the tensor and the count.
    let nan = dir.path().join("nan.safetensors");
    let first = std::cell::Cell::new(true);
    rewrite(
        &good,
        &nan,
        &|_, s, mut v| {
            if first.replace(false) {
                v[0] = f32::NAN;
            }
            Some((s, v))
        },
        &[],
    );
    let e = ImdHeads::load(&nan, &cfg, DIMS, Device::Cpu, Kind::Float)
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds 1 non-finite value(s)"), "{e}");

    let shaped = dir.path().join("shaped.safetensors");
    rewrite(
        &good,
        &shaped,
        &|n, s, v| {
            Some(if n == "coarse.proj.bias" {
                (vec![8, 2], v)
            } else {
                (s, v)
            })
        },
        &[],
    );
    let err = ImdHeads::load(&shaped, &cfg, DIMS, Device::Cpu, Kind::Float).unwrap_err();
    let msg = err.to_string();
    match err {
        ModelError::ShapeMismatch {
            tensor,
            expected,
            found,
            ..
        } => {
            assert_eq!(tensor, "coarse.proj.bias");
            assert_eq!((expected, found), (vec![16], vec![8, 2]));
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
    assert!(
        msg.contains("shaped.safetensors") && msg.contains("[16]") && msg.contains("[8, 2]"),
        "{msg}"
    );

    let missing = dir.path().join("missing.safetensors");
    rewrite(
        &good,
        &missing,
        &|n, s, v| (n != "fine.fusion.layer3_outconv.weight").then_some((s, v)),
        &[],
    );
    let err = ImdHeads::load(&missing, &cfg, DIMS, Device::Cpu, Kind::Float).unwrap_err();
    assert!(
        matches!(err, ModelError::MissingTensor { ref tensor, .. } if tensor == "fine.fusion.layer3_outconv.weight"),
        "{err}"
    );

    // imd.yaml sizes that disagree with the weights are shape errors naming the tensor.
    let mut wider = cfg.clone();
    wider.cipm.dim = 12;
    let err = ImdHeads::load(&good, &wider, DIMS, Device::Cpu, Kind::Float).unwrap_err();
    assert!(
        matches!(err, ModelError::ShapeMismatch { ref tensor, .. } if tensor.starts_with("cipm.")),
        "{err}"
    );

    // Half precision loads convert (weights stored in f32).
    let half = ImdHeads::load(&good, &cfg, DIMS, Device::Cpu, Kind::BFloat16).unwrap();
    assert_eq!(half.kind(), Kind::BFloat16);
}

#[test]
fn committed_random_model_heads_match_the_rust_modules() {
    // The script mirrors the module names and shapes; loading with unexpected tensors as
    // errors proves they agree. Dims come from the folder's standard config files.
    let dir = util::fixture("matching/random_model");
    let json = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(p)).unwrap()).unwrap()
    };
    let unet = json("unet/config.json");
    let clip = json("image_encoder/config.json");
    let cfg = ImdModelConfig::from_file(&dir.join("imd.yaml")).unwrap();
    let channels: Vec<i64> = unet["block_out_channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let dims = HeadDims {
        feature_channels: channels[channels.len() - 1 - cfg.backbone.unet_block],
        context_dim: unet["cross_attention_dim"].as_i64().unwrap(),
        clip_hidden: clip["hidden_size"].as_i64().unwrap(),
    };
    let (size, patch) = (
        clip["image_size"].as_i64().unwrap(),
        clip["patch_size"].as_i64().unwrap(),
    );
    assert_eq!(cfg.cipm.clip_tokens, 1 + (size / patch).pow(2));
    assert!(cfg.demo);
    ImdHeads::load(&dir.join(HEADS_FILE), &cfg, dims, Device::Cpu, Kind::Float).unwrap();
}

// ---------------------------------------------------------------------------------------
// The whole matcher on a synthetic feature source.

/// Deterministic stand-in for the SD/CLIP backbone: latents are 8×8 block means of the image
/// (+ a colour-difference channel); UNet features a fixed random 3×3 convolution of the
/// latents plus a projection of the prompt's mean token; CLIP tokens 2×2 block means. It logs
/// the batch size of every call.
struct Synthetic {
    conv: Tensor,
    prompt_proj: Tensor,
    clip_proj: Tensor,
    calls: CallLog,
}

const SYN_CHANNELS: i64 = 12;
const SYN_CONTEXT: i64 = 6;
const SYN_CLIP: i64 = 10;
const SYN_TOKENS: i64 = 5;

impl Synthetic {
    fn new() -> (Self, CallLog) {
        tch::manual_seed(99);
        let calls = Arc::new(Mutex::new(Vec::new()));
        (
            Synthetic {
                conv: Tensor::randn([SYN_CHANNELS, 4, 3, 3], CPU) / 6.0,
                prompt_proj: Tensor::randn([SYN_CONTEXT, SYN_CHANNELS], CPU) * 0.1,
                clip_proj: Tensor::randn([3, SYN_CLIP], CPU),
                calls: calls.clone(),
            },
            calls,
        )
    }
    fn log(&self, what: &'static str, t: &Tensor) {
        self.calls.lock().unwrap().push((what, t.size()[0]));
    }
}

impl FeatureSource for Synthetic {
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn kind(&self) -> Kind {
        Kind::Float
    }
    fn feature_channels(&self) -> i64 {
        SYN_CHANNELS
    }
    fn prompt_dim(&self) -> i64 {
        SYN_CONTEXT
    }
    fn prompt_input_dim(&self) -> Option<i64> {
        Some(SYN_CLIP)
    }
    fn encode(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        self.log("vae", images);
        let blocks = images.avg_pool2d([8, 8], [8, 8], [0, 0], false, true, None::<i64>);
        let diff = blocks.narrow(1, 0, 1) - blocks.narrow(1, 1, 1);
        Ok(Tensor::cat(&[blocks, diff], 1))
    }
    fn coarse_features(&self, latents: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError> {
        self.log("unet", latents);
        assert_eq!(latents.size()[0], prompts.size()[0]);
        let f = latents.conv2d(&self.conv, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let bias = prompts
            .mean_dim(1, false, Kind::Float)
            .matmul(&self.prompt_proj);
        Ok(f + bias.unsqueeze(-1).unsqueeze(-1))
    }
    fn prompt_inputs(&self, images: &Tensor) -> Result<Option<PromptInputs>, ModelError> {
        self.log("clip", images);
        let patches = images
            .adaptive_avg_pool2d([2, 2])
            .flatten(2, 3)
            .transpose(1, 2)
            .matmul(&self.clip_proj);
        let cls = patches.mean_dim(1, true, Kind::Float);
        Ok(Some(PromptInputs {
            tokens: Tensor::cat(&[&cls, &patches], 1),
            embedding: cls.squeeze_dim(1),
        }))
    }
}

fn noise_image(w: u32, h: u32, seed: u64) -> image::RgbImage {
    let mut rng = SplitMix(seed);
    image::RgbImage::from_fn(w, h, |_, _| {
        image::Rgb([
            (rng.next() * 255.0) as u8,
            (rng.next() * 255.0) as u8,
            (rng.next() * 255.0) as u8,
        ])
    })
}

/// `img` shifted right by `dx` pixels; the uncovered columns get fresh noise.
fn shifted_right(img: &image::RgbImage, dx: u32, seed: u64) -> image::RgbImage {
    let fresh = noise_image(img.width(), img.height(), seed);
    image::RgbImage::from_fn(img.width(), img.height(), |x, y| {
        if x >= dx {
            *img.get_pixel(x - dx, y)
        } else {
            *fresh.get_pixel(x, y)
        }
    })
}

fn folder(with_heads: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(SYN_TOKENS);
    std::fs::write(dir.path().join("imd.yaml"), cfg.to_yaml_string()).unwrap();
    if with_heads {
        let dims = HeadDims {
            feature_channels: SYN_CHANNELS,
            context_dim: SYN_CONTEXT,
            clip_hidden: SYN_CLIP,
        };
        tch::manual_seed(5);
        ImdHeads::new(&cfg, dims, Device::Cpu)
            .save(&dir.path().join(HEADS_FILE))
            .unwrap();
    }
    dir
}

#[test]
fn zero_shot_recovers_a_known_shift_in_original_pixels() {
    // 256×192 images matched at long side 128 (scale 2): image 1 is image 0 shifted right by
    // 32 original pixels = 16 network pixels = 2 cells. With border 2 on a 16×12 cell grid,
    // the cells x0 ∈ 2..=11, y ∈ 2..=9 have their copy inside image 1's border: 80 matches,
    // each exactly 32 px apart, at the cell centres mapped to original pixels.
    let dir = folder(false);
    let (source, _) = Synthetic::new();
    let opts = ModelOptions {
        model_dir: dir.path().display().to_string(),
        resize_long_side: 128,
        zero_shot_min_similarity: 0.9,
        ..Default::default()
    };
    let m = ImdMatcher::with_source(Box::new(source), &opts).unwrap();
    assert_eq!(m.mode(), MatcherMode::ZeroShot);
    let a = noise_image(256, 192, 1);
    let b = shifted_right(&a, 32, 2);
    let out = m.match_images(&a, &b).unwrap();
    assert_eq!(out.matches.len(), 80);
    let mut cells = Vec::new();
    for mt in &out.matches {
        assert_eq!((mt.p1.x - mt.p0.x, mt.p1.y - mt.p0.y), (32.0, 0.0));
        assert!((mt.confidence - 1.0).abs() < 1e-5);
        // Centre of cell (x, y) in network pixels is 8x + 3.5 → (8x + 4)·2 − 0.5 original.
        let x = (mt.p0.x + 0.5) / 2.0 / 8.0 - 0.5;
        let y = (mt.p0.y + 0.5) / 2.0 / 8.0 - 0.5;
        assert_eq!((x.fract(), y.fract()), (0.0, 0.0), "{:?}", mt.p0);
        cells.push((x as i64, y as i64));
    }
    cells.sort();
    let expected: Vec<(i64, i64)> = (2..=11)
        .flat_map(|x| (2..=9).map(move |y| (x, y)))
        .collect();
    assert_eq!(cells, expected);

    // max_matches keeps the most confident ones.
    let capped = ImdMatcher::with_source(
        Box::new(Synthetic::new().0),
        &ModelOptions {
            max_matches: 7,
            ..opts
        },
    )
    .unwrap();
    assert_eq!(capped.match_images(&a, &b).unwrap().matches.len(), 7);
}

#[test]
fn full_matcher_batches_pairs_and_handles_different_sizes() {
    let dir = folder(true);
    let (source, calls) = Synthetic::new();
    let opts = ModelOptions {
        model_dir: dir.path().display().to_string(),
        resize_long_side: 0,
        coarse_threshold: 0.0,
        border: 1,
        ..Default::default()
    };
    let m = ImdMatcher::with_source(Box::new(source), &opts).unwrap();
    assert_eq!(m.mode(), MatcherMode::Full);

    // Same size: VAE, CLIP and UNet each see one batch of 2.
    let a = noise_image(96, 64, 3);
    let b = noise_image(96, 64, 4);
    let out = m.match_images(&a, &b).unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        vec![("vae", 2), ("clip", 2), ("unet", 2)]
    );
    assert!(!out.matches.is_empty());
    let mut prev = f32::INFINITY;
    for mt in &out.matches {
        assert!(mt.confidence > 0.0 && mt.confidence <= 1.0 && mt.confidence <= prev);
        prev = mt.confidence;
        // Border 1 keeps cells 1..w−2; fine points stay within 4.5 px of the window origin.
        assert!(mt.p0.x >= 8.0 - 3.5 && mt.p0.x <= 80.0 + 3.5, "{mt:?}");
        assert!(mt.p1.x >= 8.0 - 4.5 && mt.p1.x <= 80.0 + 4.5, "{mt:?}");
    }
    // prepare + match_prepared gives the same matches.
    let prepared = m.prepare(&[&a, &b]).unwrap();
    let again = m.match_prepared(&prepared[0], &prepared[1]).unwrap();
    assert_eq!(again.matches, out.matches);

    // Different sizes and a resize: prepared separately, UNet still one padded batch of 2,
    // points in each image's original pixels.
    let (source, calls) = Synthetic::new();
    let m2 = ImdMatcher::with_source(
        Box::new(source),
        &ModelOptions {
            resize_long_side: 96,
            ..opts.clone()
        },
    )
    .unwrap();
    let big = noise_image(192, 128, 5); // network 96×64, scale 2
    let tall = noise_image(48, 96, 7); // network 48×96, scale 1
    let out = m2.match_images(&big, &tall).unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        vec![
            ("vae", 1),
            ("clip", 1),
            ("vae", 1),
            ("clip", 1),
            ("unet", 2)
        ]
    );
    assert!(!out.matches.is_empty());
    for mt in &out.matches {
        assert!(
            mt.p0.x < 192.0 && mt.p0.y < 128.0 && mt.p1.x < 49.0 && mt.p1.y < 97.0,
            "{mt:?}"
        );
    }
    // Images that resize to the same network size share one batch.
    calls.lock().unwrap().clear();
    let small = noise_image(72, 48, 6); // long side 96 → 96×64, like `big`
    let prepared = m2.prepare(&[&big, &small]).unwrap();
    assert_eq!(prepared[0].geometry.network_size(), (96, 64));
    assert_eq!(prepared[1].geometry.network_size(), (96, 64));
    assert_eq!(*calls.lock().unwrap(), vec![("vae", 2), ("clip", 2)]);
}

#[test]
fn training_forward_gives_gradients_to_every_head() {
    // Two pairs of 48×64 images, image 1 of the second pair padded (valid 5×6 of 6×8 cells):
    // the coarse matrix, fine stage-1 matrix and sub-pixel expectation at given (b, i, j)
    // must all be differentiable down to every part of the heads.
    let cfg = small_config(SYN_TOKENS);
    let dims = HeadDims {
        feature_channels: SYN_CHANNELS,
        context_dim: SYN_CONTEXT,
        clip_hidden: SYN_CLIP,
    };
    tch::manual_seed(8);
    let heads = ImdHeads::new(&cfg, dims, Device::Cpu);
    let (source, _) = Synthetic::new();
    let img0 = Tensor::rand([2, 3, 48, 64], CPU) * 2.0 - 1.0;
    let img1 = Tensor::rand([2, 3, 48, 64], CPU) * 2.0 - 1.0;
    let clip = |x: &Tensor| {
        source
            .prompt_inputs(&((x + 1.0) / 2.0))
            .unwrap()
            .unwrap()
            .tokens
    };
    let (lat0, lat1) = (source.encode(&img0).unwrap(), source.encode(&img1).unwrap());
    let (clip0, clip1) = (clip(&img0), clip(&img1));
    let grid = CoarseGrid::new(6, 8);
    let valid0 = [grid.full(), grid.full()];
    let valid1 = [
        grid.full(),
        ValidRegion {
            height: 5,
            width: 6,
        },
    ];
    let batch = PairBatch {
        inputs: PairInputs {
            prompt_inputs0: &clip0,
            prompt_inputs1: &clip1,
            codes0: &lat0,
            codes1: &lat1,
            valid0: &valid0,
            valid1: &valid1,
        },
        image0: &img0,
        image1: &img1,
    };
    let out = heads.forward_pair(&source, &batch, &cfg, true).unwrap();
    assert_eq!(out.conf.size(), vec![2, 48, 48]);
    assert_eq!(out.fine0.size(), vec![2, 16, 48, 64]);
    // Padded image-1 cells get no confidence.
    let padded_col = out.conf.get(1).select(1, idx(8, 7, 1));
    assert!(padded_col.abs().max().double_value(&[]) < 1e-12);

    let b = Tensor::from_slice(&[0i64, 1, 1]);
    let i = Tensor::from_slice(&[idx(8, 3, 2), idx(8, 2, 2), idx(8, 4, 3)]);
    let j = Tensor::from_slice(&[idx(8, 4, 3), idx(8, 3, 2), idx(8, 1, 1)]);
    let s1 = out.fine_stage1(&b, &i, &j, cfg.fine.subpixel_channels);
    assert_eq!(s1.conf.size(), vec![3, 64, 64]);
    assert_eq!(s1.subpixel_sim.size(), vec![3, 64, 100]);
    let (il, ir) = argmax_pairs(&s1.conf.detach());
    let expec = subpixel_expectation(&s1.subpixel_sim, &il, &ir, cfg.fine.subpixel_temperature);
    let coarse_p = out.conf.index(&[Some(&b), Some(&i), Some(&j)]);
    let rows = Tensor::arange(3, (Kind::Int64, Device::Cpu));
    let fine_p = s1.conf.index(&[Some(&rows), Some(&il), Some(&ir)]);
    let loss = -(coarse_p + 1e-6).log().sum(Kind::Float) - (fine_p + 1e-6).log().sum(Kind::Float)
        + expec.square().sum(Kind::Float);
    loss.backward();
    for prefix in [
        "cipm.",
        "coarse.proj.",
        "coarse.layers.",
        "fine.encoder.",
        "fine.fusion.",
    ] {
        let grad: f64 = heads
            .var_store()
            .variables()
            .iter()
            .filter(|(n, v)| n.starts_with(prefix) && v.requires_grad())
            .map(|(_, v)| {
                let g = v.grad();
                if g.defined() {
                    g.abs().sum(Kind::Double).double_value(&[])
                } else {
                    0.0
                }
            })
            .sum();
        assert!(grad > 0.0 && grad.is_finite(), "{prefix}: gradient {grad}");
    }
}

// ---------------------------------------------------------------------------------------
// A second backbone behind the seam: the plain CNN.

/// `img` warped by the homography `h` (destination → source pixel map), nearest neighbour;
/// pixels that map outside the source are black.
fn warped(img: &image::RgbImage, h: [[f64; 3]; 3]) -> image::RgbImage {
    image::RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (x, y) = (x as f64, y as f64);
        let w = h[2][0] * x + h[2][1] * y + h[2][2];
        let sx = ((h[0][0] * x + h[0][1] * y + h[0][2]) / w).round();
        let sy = ((h[1][0] * x + h[1][1] * y + h[1][2]) / w).round();
        if sx >= 0.0 && sy >= 0.0 && (sx as u32) < img.width() && (sy as u32) < img.height() {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

/// A weights folder for `backbone: { kind: cnn }`: seeded random CNN and heads.
fn cnn_folder(cnn_seed: i64, clip_tokens: i64) -> tempfile::TempDir {
    use imd::model::cnn_backbone::{CnnBackbone, CNN_BACKBONE_FILE};
    use imd::model::imd_config::{BackboneKind, BackboneSection};
    let dir = tempfile::tempdir().unwrap();
    let cfg = ImdModelConfig {
        backbone: BackboneSection {
            kind: BackboneKind::Cnn,
            ..Default::default()
        },
        ..small_config(17)
    };
    tch::manual_seed(cnn_seed);
    let cnn = CnnBackbone::new(&cfg.backbone.cnn, Device::Cpu);
    cnn.save(&dir.path().join(CNN_BACKBONE_FILE)).unwrap();
    tch::manual_seed(5);
    let heads = ImdHeads::new(&cfg, HeadDims::of(&cnn).unwrap(), Device::Cpu);
    heads.save(&dir.path().join(HEADS_FILE)).unwrap();
    let written = ImdModelConfig {
        cipm: CipmConfig {
            clip_tokens,
            ..cfg.cipm.clone()
        },
        ..cfg
    };
    std::fs::write(dir.path().join("imd.yaml"), written.to_yaml_string()).unwrap();
    dir
}

#[test]
fn cnn_backbone_runs_the_full_matcher_on_a_photo_pair() {
    // The plain CNN (one file + `backbone.kind: cnn`) drives CIPM, coarse transformer and
    // fine refinement end to end on astronaut.png and its warp by a known homography. The
    // weights are random, so the matches are not correct ones; what must hold is the
    // contract: full mode, matches in both images' bounds with confidences in (0, 1],
    // deterministic across loads, and the backbone's weights really in use (another CNN gives
    // other matches).
    let a = image::open(util::fixture("datasets/photos/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let h = [[0.95, 0.03, 6.0], [-0.02, 0.97, 4.0], [1e-4, 0.0, 1.0]];
    let b = warped(&a, h);
    let opts = |dir: &Path| ModelOptions {
        model_dir: dir.display().to_string(),
        resize_long_side: 0,
        coarse_threshold: 0.0,
        border: 1,
        ..Default::default()
    };
    let dir = cnn_folder(11, 17);
    let run = |dir: &Path| {
        let m = ImdMatcher::load(&opts(dir)).unwrap();
        assert_eq!(m.mode(), MatcherMode::Full);
        m.match_images(&a, &b).unwrap().matches
    };
    let first = run(dir.path());
    // 20×15 cells, border 1: at most one mutual nearest neighbour per inner cell.
    assert!(
        !first.is_empty() && first.len() <= 18 * 13,
        "{}",
        first.len()
    );
    for m in &first {
        for (p, what) in [(m.p0, "p0"), (m.p1, "p1")] {
            assert!(
                (0.0..160.0).contains(&p.x) && (0.0..120.0).contains(&p.y),
                "{what} {p:?} outside the 160×120 image"
            );
        }
        assert!(
            m.confidence > 0.0 && m.confidence <= 1.0,
            "{}",
            m.confidence
        );
    }
    assert!(first.windows(2).all(|w| w[0].confidence >= w[1].confidence));
    assert_eq!(run(dir.path()), first, "same folder, same matches");
    let other = run(cnn_folder(12, 17).path());
    assert_ne!(other, first, "a different CNN must change the matches");

    // imd.yaml is checked against the CNN: its prompt-input tokens are token_grid² + 1.
    let err = ImdMatcher::load(&opts(cnn_folder(11, 10).path())).unwrap_err();
    assert!(err.to_string().contains("cipm.clip_tokens"), "{err}");
    let dir = cnn_folder(11, 17);
    std::fs::remove_file(dir.path().join("cnn_backbone.safetensors")).unwrap();
    let err = ImdMatcher::load(&opts(dir.path())).unwrap_err();
    assert!(
        err.to_string().contains("cnn_backbone.safetensors"),
        "{err}"
    );
}

#[test]
fn options_and_folders_are_checked() {
    let dir = folder(false);
    let base = ModelOptions {
        model_dir: dir.path().display().to_string(),
        ..Default::default()
    };
    // mode full without heads.safetensors names the file.
    let err = ImdMatcher::with_source(
        Box::new(Synthetic::new().0),
        &ModelOptions {
            mode: ModeOption::Full,
            ..base.clone()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains(HEADS_FILE), "{err}");
    let err = ImdMatcher::with_source(
        Box::new(Synthetic::new().0),
        &ModelOptions {
            coarse_threshold: 1.5,
            ..base.clone()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("model.coarse_threshold"), "{err}");
    let err = ImdMatcher::with_source(
        Box::new(Synthetic::new().0),
        &ModelOptions {
            model_dir: "/nonexistent/weights".into(),
            ..base
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/weights"), "{err}");
}

// ---------------------------------------------------------------------------------------
// `imd match`.

fn write_png(dir: &Path, name: &str, img: &image::RgbImage) -> PathBuf {
    let p = dir.join(name);
    img.save(&p).unwrap();
    p
}

#[test]
fn cli_errors_are_messages_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_png(dir.path(), "a.png", &noise_image(64, 48, 1));
    let out = Command::new(util::imd_bin())
        .args(["match"])
        .arg(&a)
        .arg(dir.path().join("missing.png"))
        .args(["--model"])
        .arg(util::fixture("matching/random_model"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing.png") && !err.contains("panicked"),
        "{err}"
    );

    let out = Command::new(util::imd_bin())
        .args(["match"])
        .arg(&a)
        .arg(&a)
        .args(["--model", "/nonexistent/weights"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/weights") && !err.contains("panicked"),
        "{err}"
    );

    let out = Command::new(util::imd_bin())
        .args(["match"])
        .arg(&a)
        .arg(&a)
        .args(["--model"])
        .arg(util::fixture("matching/random_model"))
        .args(["--threshold", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("coarse_threshold"), "{err}");

    // Trained heads without their imd.yaml: the missing file is named.
    let model = dir.path().join("model");
    copy_dir(&util::fixture("matching/random_model"), &model);
    std::fs::remove_file(model.join("imd.yaml")).unwrap();
    let out = Command::new(util::imd_bin())
        .args(["match"])
        .arg(&a)
        .arg(&a)
        .args(["--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("imd.yaml") && !err.contains("panicked"),
        "{err}"
    );
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn cli_matches_with_the_random_model_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let img = noise_image(128, 96, 3);
    let a = write_png(dir.path(), "a.png", &img);
    let b = write_png(dir.path(), "b.png", &shifted_right(&img, 16, 4));
    for mode in ["full", "zero_shot"] {
        let csv = dir.path().join(format!("{mode}.csv"));
        let out = Command::new(util::imd_bin())
            .args(["match"])
            .arg(&a)
            .arg(&b)
            .args(["--model"])
            .arg(util::fixture("matching/random_model"))
            .args(["--mode", mode, "--threshold", "0", "--resize", "0", "--out"])
            .arg(&csv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let matches = imd::io::matches::read_matches_csv(&csv).unwrap();
        assert!(!matches.is_empty(), "{mode}: no matches");
        for m in &matches {
            assert!(m.p0.x > -8.0 && m.p0.x < 136.0 && m.p1.y > -8.0 && m.p1.y < 104.0);
        }
    }

    // A heads file whose tensor does not fit imd.yaml: the tensor and both shapes are named.
    let model = dir.path().join("model");
    copy_dir(&util::fixture("matching/random_model"), &model);
    let heads = model.join(HEADS_FILE);
    rewrite(
        &util::fixture("matching/random_model").join(HEADS_FILE),
        &heads,
        &|n, s, v| {
            Some(if n == "coarse.proj.bias" {
                (vec![4, 4], v)
            } else {
                (s, v)
            })
        },
        &[],
    );
    let out = Command::new(util::imd_bin())
        .args(["match"])
        .arg(&a)
        .arg(&b)
        .args(["--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("coarse.proj.bias") && err.contains("[4, 4]") && !err.contains("panicked"),
        "{err}"
    );
}
