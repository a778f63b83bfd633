//! The IMD matcher: the whole forward pass as numbered steps following the paper's figure,
//! with typed stage outputs.
//!
//! Per image (cached by [`ImdMatcher::prepare`], independent of the other image):
//! 0. preprocess (resize, floor to /8) → (a) VAE latents, (b) CLIP tokens + global embedding,
//!    (c) fine-encoder features (full mode) or UNet features with the empty prompt (zero-shot).
//!
//! Per pair ([`ImdMatcher::match_prepared`], full mode):
//! 1. CIPM: prompts `P_A`, `P_B` from both images' CLIP tokens;
//! 2. UNet on both latents as one batch of 2 (bottom-right padded to a common size);
//! 3. coarse transformer (projection, sine position encoding, self/cross attention);
//! 4. coarse matching (dual softmax, θ, border, mutual nearest neighbour);
//! 5. fine features (fusion of coarse ÷ √d with the cached encoder features);
//! 6. two-stage refinement;
//! 7. mapping to original-image pixels, sorting by confidence, `max_matches`.
//!
//! Zero-shot mode (no `heads.safetensors`): mutual nearest neighbours of the cached UNet
//! features ([`crate::model::zero_shot`]).
//!
//! Steps 1–6 are [`forward`]'s, the one forward pass training runs too
//! ([`ImdHeads::forward_pair`]); this file adds the per-image caching and the mapping to
//! original pixels.

mod backbone_source;
pub mod forward;
pub mod heads;
pub mod preprocess;

pub use crate::model::source::{FeatureSource, PromptInputs};
pub use forward::{CoarsePass, FineInputs, ForwardStage, PairBatch, PairForward, PairInputs};
pub use heads::{HeadDims, ImdHeads, HEADS_FILE};
pub use preprocess::ImageGeometry;

use std::path::PathBuf;
use std::time::Instant;

use image::RgbImage;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::coarse::{CoarseMatchParams, ValidRegion};
use super::fine::FinePyramid;
use super::imd_config::ImdModelConfig;
use super::zero_shot::{self, ZeroShotParams};
use super::{ModeOption, ModelError, ModelOptions};
use crate::geometry::PixelMatch;

/// Which forward the matcher runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatcherMode {
    /// CIPM prompts + coarse transformer + fine refinement (trained heads).
    Full,
    /// Mutual nearest neighbours of SD features with the empty prompt.
    ZeroShot,
}

/// Milliseconds spent in each stage (0 for stages that did not run in a call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimings {
    /// Resize + tensor conversion.
    pub preprocess_ms: f64,
    /// VAE encoder.
    pub vae_ms: f64,
    /// CLIP image encoder.
    pub clip_ms: f64,
    /// Fine encoder (full mode, per image).
    pub fine_encoder_ms: f64,
    /// CIPM prompts.
    pub cipm_ms: f64,
    /// UNet pass (per pair in full mode, per image in zero-shot mode).
    pub unet_ms: f64,
    /// Coarse transformer + coarse matching (zero-shot: nearest neighbours).
    pub coarse_ms: f64,
    /// Fine fusion + refinement.
    pub fine_ms: f64,
    /// Wall time of the whole call.
    pub total_ms: f64,
}

impl std::ops::AddAssign for StageTimings {
    fn add_assign(&mut self, o: Self) {
        self.preprocess_ms += o.preprocess_ms;
        self.vae_ms += o.vae_ms;
        self.clip_ms += o.clip_ms;
        self.fine_encoder_ms += o.fine_encoder_ms;
        self.cipm_ms += o.cipm_ms;
        self.unet_ms += o.unet_ms;
        self.coarse_ms += o.coarse_ms;
        self.fine_ms += o.fine_ms;
        self.total_ms += o.total_ms;
    }
}

/// Result of matching one pair.
#[derive(Debug, Clone)]
pub struct MatchOutput {
    /// Matches in original-image pixels, highest confidence first.
    pub matches: Vec<PixelMatch>,
    /// Where the time went.
    pub timings: StageTimings,
}

/// Per-image work that does not depend on the other image of a pair.
#[derive(Debug)]
pub struct PreparedImage {
    /// Original and network sizes.
    pub geometry: ImageGeometry,
    /// CLIP global embedding, L2-normalised; empty in zero-shot mode without CLIP.
    pub embedding: Vec<f32>,
    /// Time this image's preparation took (its share of a batched call).
    pub timings: StageTimings,
    content: Prepared,
}

#[derive(Debug)]
enum Prepared {
    Full {
        /// `[1, 4, h, w]`.
        latents: Tensor,
        /// `[1, 1 + N, hidden]`.
        clip_tokens: Tensor,
        /// Fine encoder features of the network image.
        pyramid: FinePyramid,
    },
    ZeroShot {
        /// UNet features with the empty prompt, `[1, C, h, w]`.
        features: Tensor,
    },
}

/// The loaded matcher.
pub struct ImdMatcher {
    source: Box<dyn FeatureSource>,
    mode: MatcherMode,
    config: ImdModelConfig,
    heads: Option<ImdHeads>,
    empty_prompt: Option<Tensor>,
    opts: ModelOptions,
}

impl std::fmt::Debug for ImdMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImdMatcher")
            .field("mode", &self.mode)
            .field("model_dir", &self.opts.model_dir)
            .field("device", &self.source.device())
            .field("kind", &self.source.kind())
            .finish()
    }
}

/// Folder, mode and `imd.yaml` resolved from the options.
struct Resolved {
    dir: PathBuf,
    mode: MatcherMode,
    config: ImdModelConfig,
}

fn resolve(opts: &ModelOptions) -> Result<Resolved, ModelError> {
    opts.validate()?;
    let dir = PathBuf::from(opts.model_dir.trim());
    if !dir.is_dir() {
        return Err(ModelError::InvalidOption {
            option: "model.model_dir".into(),
            reason: format!("{} is not a folder", dir.display()),
        });
    }
    let heads = dir.join(HEADS_FILE);
    let has_heads = heads.is_file();
    if !has_heads && std::fs::symlink_metadata(&heads).is_ok() {
        // Present but not a readable file (a dangling symlink, a folder, a FIFO): never fall
        // back to zero-shot silently.
        let what = match std::fs::metadata(&heads) {
            Err(e) if std::fs::read_link(&heads).is_ok() => {
                format!("a symlink whose target cannot be opened ({e})")
            }
            Err(e) => e.to_string(),
            Ok(_) => "not a regular file".to_string(),
        };
        return Err(ModelError::BadFile {
            path: heads,
            reason: format!(
                "is {what}; expected the trained heads (remove it to match zero-shot with \
                 mode `auto`, or fix the link)"
            ),
        });
    }
    let mode = match (opts.mode, has_heads) {
        (ModeOption::ZeroShot, _) | (ModeOption::Auto, false) => MatcherMode::ZeroShot,
        (ModeOption::Full, true) | (ModeOption::Auto, true) => MatcherMode::Full,
        (ModeOption::Full, false) => {
            return Err(ModelError::MissingFile {
                dir,
                file: HEADS_FILE.into(),
                hint: "mode `full` needs trained heads; use mode `auto` or `zero_shot` for \
                       matching with the public SD2.1 weights alone"
                    .into(),
            })
        }
    };
    let yaml = ImdModelConfig::path_in(&dir);
    let config = if yaml.is_file() {
        ImdModelConfig::from_file(&yaml)?
    } else if mode == MatcherMode::Full {
        return Err(ModelError::MissingFile {
            dir,
            file: ImdModelConfig::FILE_NAME.into(),
            hint: "the head sizes heads.safetensors was trained with".into(),
        });
    } else {
        ImdModelConfig::default()
    };
    if config.demo {
        log::warn!(
            "{}: demo weights, not the paper's model ({})",
            dir.display(),
            config.description
        );
    }
    Ok(Resolved { dir, mode, config })
}

impl ImdMatcher {
    /// Load the backbone and (when present) the heads from `opts.model_dir`.
    pub fn load(opts: &ModelOptions) -> Result<Self, ModelError> {
        let resolved = resolve(opts)?;
        let device = opts.device.to_tch()?;
        if opts.num_threads > 0 {
            tch::set_num_threads(opts.num_threads as i32);
        }
        // SD2.1's CLIP is required for the CIPM; in zero-shot mode it only gives retrieval
        // embeddings.
        let load_clip =
            resolved.mode == MatcherMode::Full || resolved.dir.join("image_encoder").is_dir();
        let source = backbone_source::load_backbone(
            &resolved.dir,
            device,
            opts.dtype.kind(),
            &resolved.config.backbone,
            load_clip,
        )?;
        Self::build(source, resolved, opts)
    }

    /// Build a matcher around any [`FeatureSource`] (tests, alternative backbones); heads,
    /// `imd.yaml` and the empty prompt still come from `opts.model_dir`.
    pub fn with_source(
        source: Box<dyn FeatureSource>,
        opts: &ModelOptions,
    ) -> Result<Self, ModelError> {
        let resolved = resolve(opts)?;
        Self::build(source, resolved, opts)
    }

    fn build(
        source: Box<dyn FeatureSource>,
        resolved: Resolved,
        opts: &ModelOptions,
    ) -> Result<Self, ModelError> {
        let Resolved { dir, mode, config } = resolved;
        let (device, kind) = (source.device(), source.kind());
        let (heads, empty_prompt) = match mode {
            MatcherMode::Full => {
                let dims =
                    HeadDims::of(source.as_ref()).ok_or_else(|| ModelError::MissingFile {
                        dir: dir.clone(),
                        file: "image_encoder/".into(),
                        hint: "full IMD needs the backbone's prompt inputs (SD2.1: the CLIP \
                               image encoder) for the CIPM"
                            .into(),
                    })?;
                let heads = ImdHeads::load(&dir.join(HEADS_FILE), &config, dims, device, kind)?;
                (Some(heads), None)
            }
            MatcherMode::ZeroShot => {
                let prompt = zero_shot::load_empty_prompt(&dir, source.prompt_dim(), device, kind)?;
                (None, Some(prompt))
            }
        };
        Ok(ImdMatcher {
            source,
            mode,
            config,
            heads,
            empty_prompt,
            opts: opts.clone(),
        })
    }

    /// Full IMD or zero-shot.
    pub fn mode(&self) -> MatcherMode {
        self.mode
    }

    /// The `imd.yaml` in use (defaults in zero-shot mode without one).
    pub fn config(&self) -> &ImdModelConfig {
        &self.config
    }

    /// The options the matcher was loaded with.
    pub fn options(&self) -> &ModelOptions {
        &self.opts
    }

    /// The trained heads (full mode).
    pub fn heads(&self) -> Option<&ImdHeads> {
        self.heads.as_ref()
    }

    /// Per-image work for later [`match_prepared`](Self::match_prepared) calls; images of one
    /// network size are batched.
    pub fn prepare(&self, images: &[&RgbImage]) -> Result<Vec<PreparedImage>, ModelError> {
        let _guard = tch::no_grad_guard();
        let device = self.source.device();
        let mut geometries = Vec::with_capacity(images.len());
        for (k, img) in images.iter().enumerate() {
            let (w, h) = img.dimensions();
            geometries.push(
                ImageGeometry::new(w, h, self.opts.resize_long_side).map_err(|e| match e {
                    ModelError::InvalidInput { reason, .. } => ModelError::InvalidInput {
                        what: format!("image {k}"),
                        reason,
                    },
                    other => other,
                })?,
            );
        }
        let mut out: Vec<Option<PreparedImage>> = (0..images.len()).map(|_| None).collect();
        // Group images of the same network size; batches of at most PREPARE_BATCH.
        let mut order: Vec<usize> = (0..images.len()).collect();
        order.sort_by_key(|&k| geometries[k].network_size());
        for group in
            order.chunk_by(|&a, &b| geometries[a].network_size() == geometries[b].network_size())
        {
            for batch in group.chunks(PREPARE_BATCH) {
                let mut clock = Stopwatch::new(device);
                let pixels: Vec<Tensor> = batch
                    .iter()
                    .map(|&k| preprocess::image_tensor(images[k], &geometries[k], device))
                    .collect();
                let pixels = Tensor::cat(&pixels, 0);
                let mut t = StageTimings {
                    preprocess_ms: clock.lap(),
                    ..Default::default()
                };
                let prepared = self.prepare_batch(&pixels, &mut clock, &mut t)?;
                let n = batch.len() as f64;
                let share = StageTimings {
                    preprocess_ms: t.preprocess_ms / n,
                    vae_ms: t.vae_ms / n,
                    clip_ms: t.clip_ms / n,
                    fine_encoder_ms: t.fine_encoder_ms / n,
                    unet_ms: t.unet_ms / n,
                    total_ms: clock.total() / n,
                    ..Default::default()
                };
                for ((content, embedding), &k) in prepared.into_iter().zip(batch) {
                    out[k] = Some(PreparedImage {
                        geometry: geometries[k],
                        embedding,
                        timings: share,
                        content,
                    });
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Steps 0a–0c for a batch of same-size images `[B, 3, H, W]` in [0, 1].
    fn prepare_batch(
        &self,
        pixels: &Tensor,
        clock: &mut Stopwatch,
        t: &mut StageTimings,
    ) -> Result<Vec<(Prepared, Vec<f32>)>, ModelError> {
        let kind = self.source.kind();
        let b = pixels.size()[0];
        let signed = (pixels * 2.0 - 1.0).to_kind(kind);
        // 0a. Backbone codes (SD2.1: VAE latents, posterior mean × scaling factor).
        let latents = self.source.encode(&signed)?;
        t.vae_ms += clock.lap();
        // 0b. Prompt inputs (SD2.1: CLIP tokens) and global embedding.
        let clip = self.source.prompt_inputs(&pixels.to_kind(kind))?;
        t.clip_ms += clock.lap();
        let embeddings: Vec<Vec<f32>> = match &clip {
            Some(c) => (0..b)
                .map(|i| l2_normalised(&c.embedding.get(i)))
                .collect::<Result<_, _>>()?,
            None => vec![Vec::new(); b as usize],
        };
        let contents: Vec<Prepared> = match (&self.heads, &self.empty_prompt) {
            (Some(heads), _) => {
                let clip = clip.ok_or_else(|| ModelError::InvalidInput {
                    what: "backbone".into(),
                    reason: "returned no prompt inputs; full IMD needs them for the CIPM".into(),
                })?;
                // 0c. Fine encoder (image-only, eval mode).
                let pyramid = heads
                    .fine_encoder
                    .forward_t(&signed.to_kind(heads.kind()), false);
                t.fine_encoder_ms += clock.lap();
                (0..b)
                    .map(|i| Prepared::Full {
                        latents: latents.narrow(0, i, 1),
                        clip_tokens: clip.tokens.narrow(0, i, 1),
                        pyramid: pyramid.narrow(i, 1),
                    })
                    .collect()
            }
            (None, Some(prompt)) => {
                // 0c'. Zero-shot: the UNet features do not depend on the pair.
                let prompts = prompt.expand([b, -1, -1], false);
                let features = self.source.coarse_features(&latents, &prompts)?;
                t.unet_ms += clock.lap();
                (0..b)
                    .map(|i| Prepared::ZeroShot {
                        features: features.narrow(0, i, 1),
                    })
                    .collect()
            }
            (None, None) => {
                return Err(ModelError::InvalidInput {
                    what: "matcher".into(),
                    reason: "has neither heads nor an empty prompt".into(),
                })
            }
        };
        Ok(contents.into_iter().zip(embeddings).collect())
    }

    /// Match two prepared images (image 0 = `a`, image 1 = `b`).
    pub fn match_prepared(
        &self,
        a: &PreparedImage,
        b: &PreparedImage,
    ) -> Result<MatchOutput, ModelError> {
        let _guard = tch::no_grad_guard();
        match (&a.content, &b.content) {
            (Prepared::Full { .. }, Prepared::Full { .. }) => self.match_full(a, b),
            (Prepared::ZeroShot { features: fa }, Prepared::ZeroShot { features: fb }) => {
                self.match_zero_shot(a, b, fa, fb)
            }
            _ => Err(ModelError::InvalidInput {
                what: "prepared images".into(),
                reason: "were prepared by matchers in different modes".into(),
            }),
        }
    }

    /// [`prepare`](Self::prepare) both images (one batch when their sizes agree) and match.
    pub fn match_images(&self, a: &RgbImage, b: &RgbImage) -> Result<MatchOutput, ModelError> {
        let start = Instant::now();
        let prepared = self.prepare(&[a, b])?;
        let mut out = self.match_prepared(&prepared[0], &prepared[1])?;
        let mut t = prepared[0].timings;
        t += prepared[1].timings;
        t.cipm_ms = out.timings.cipm_ms;
        t.unet_ms += out.timings.unet_ms;
        t.coarse_ms = out.timings.coarse_ms;
        t.fine_ms = out.timings.fine_ms;
        t.total_ms = start.elapsed().as_secs_f64() * 1e3;
        out.timings = t;
        Ok(out)
    }

    fn match_full(&self, a: &PreparedImage, b: &PreparedImage) -> Result<MatchOutput, ModelError> {
        let heads = self
            .heads
            .as_ref()
            .ok_or_else(|| ModelError::InvalidInput {
                what: "prepared images".into(),
                reason: "full-mode images given to a zero-shot matcher".into(),
            })?;
        let (
            Prepared::Full {
                latents: lat_a,
                clip_tokens: tok_a,
                pyramid: pyr_a,
            },
            Prepared::Full {
                latents: lat_b,
                clip_tokens: tok_b,
                pyramid: pyr_b,
            },
        ) = (&a.content, &b.content)
        else {
            return Err(ModelError::InvalidInput {
                what: "prepared images".into(),
                reason: "zero-shot images given to a full matcher".into(),
            });
        };
        let mut clock = Stopwatch::new(self.source.device());
        let mut t = StageTimings::default();

        // 1–4. CIPM, backbone features, coarse transformer, confidence ([`forward`]).
        let (valid_a, valid_b) = (valid_region(lat_a), valid_region(lat_b));
        let inputs = PairInputs {
            prompt_inputs0: tok_a,
            prompt_inputs1: tok_b,
            codes0: lat_a,
            codes1: lat_b,
            valid0: &[valid_a],
            valid1: &[valid_b],
        };
        let CoarsePass { coarse, conf, .. } = heads.coarse_pass(
            self.source.as_ref(),
            &inputs,
            self.config.coarse.temperature,
            &mut |stage| match stage {
                ForwardStage::Prompts => t.cipm_ms = clock.lap(),
                ForwardStage::BackboneFeatures => t.unet_ms = clock.lap(),
                ForwardStage::Coarse => {}
            },
        )?;
        // Coarse matches (θ, border, mutual nearest neighbour).
        let params = CoarseMatchParams {
            threshold: self.opts.coarse_threshold,
            border: self.opts.border as i64,
        };
        let matches = forward::coarse_matches(&conf, &coarse, params);
        drop(conf);
        t.coarse_ms = clock.lap();
        if matches.is_empty() {
            t.total_ms = clock.total();
            return Ok(MatchOutput {
                matches: Vec::new(),
                timings: t,
            });
        }

        // 5. Fine features on each image's valid crop, with the cached encoder features.
        let (fine0, fine1) = heads.fine_pass(
            &coarse,
            FineInputs::Encoded {
                pyramid0: &[pyr_a],
                pyramid1: &[pyr_b],
            },
            false,
        )?;
        // 6. Two-stage refinement in network pixels.
        let fine = forward::refine_matches(
            &fine0,
            &fine1,
            &coarse,
            &matches,
            self.config.fine.subpixel_channels,
            self.config.fine.subpixel_temperature,
        );
        t.fine_ms = clock.lap();

        // 7. Original-image pixels.
        let p0 = to_vec2(&fine.points0)?;
        let p1 = to_vec2(&fine.points1)?;
        let conf = to_f32(&matches.confidence)?;
        let out = p0
            .into_iter()
            .zip(p1)
            .zip(conf)
            .map(|(((x0, y0), (x1, y1)), c)| PixelMatch {
                p0: a.geometry.to_original(x0, y0),
                p1: b.geometry.to_original(x1, y1),
                confidence: c,
            })
            .collect();
        t.total_ms = clock.total();
        Ok(MatchOutput {
            matches: self.finish(out),
            timings: t,
        })
    }

    fn match_zero_shot(
        &self,
        a: &PreparedImage,
        b: &PreparedImage,
        fa: &Tensor,
        fb: &Tensor,
    ) -> Result<MatchOutput, ModelError> {
        let mut clock = Stopwatch::new(self.source.device());
        let params = ZeroShotParams {
            border: self.opts.border as i64,
            min_similarity: self.opts.zero_shot_min_similarity,
        };
        let m = zero_shot::match_features(fa, fb, params);
        let (g0, g1) = (a.geometry.coarse_grid(), b.geometry.coarse_grid());
        let i = to_i64(&m.i_ids)?;
        let j = to_i64(&m.j_ids)?;
        let conf = to_f32(&m.confidence)?;
        let out = i
            .into_iter()
            .zip(j)
            .zip(conf)
            .map(|((i, j), c)| {
                let (x0, y0) = g0.cell_centre(i);
                let (x1, y1) = g1.cell_centre(j);
                PixelMatch {
                    p0: a.geometry.centre_to_original(x0, y0),
                    p1: b.geometry.centre_to_original(x1, y1),
                    confidence: c,
                }
            })
            .collect();
        let coarse_ms = clock.lap();
        Ok(MatchOutput {
            matches: self.finish(out),
            timings: StageTimings {
                coarse_ms,
                total_ms: clock.total(),
                ..Default::default()
            },
        })
    }

    /// Sort by confidence (stable, so equal confidences keep cell order) and truncate.
    fn finish(&self, mut matches: Vec<PixelMatch>) -> Vec<PixelMatch> {
        matches.sort_by(|x, y| y.confidence.total_cmp(&x.confidence));
        if self.opts.max_matches > 0 {
            matches.truncate(self.opts.max_matches as usize);
        }
        matches
    }
}

/// Images per batched backbone call in [`ImdMatcher::prepare`].
const PREPARE_BATCH: usize = 2;

/// The whole of a `[1, k, h, w]` code map as a coarse valid region.
fn valid_region(codes: &Tensor) -> ValidRegion {
    let s = codes.size();
    ValidRegion {
        height: s[2],
        width: s[3],
    }
}

fn to_f32(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    let flat = t
        .to_kind(Kind::Float)
        .to_device(Device::Cpu)
        .contiguous()
        .view([-1]);
    Vec::<f32>::try_from(&flat).map_err(ModelError::torch("reading results"))
}

fn to_i64(t: &Tensor) -> Result<Vec<i64>, ModelError> {
    let flat = t
        .to_kind(Kind::Int64)
        .to_device(Device::Cpu)
        .contiguous()
        .view([-1]);
    Vec::<i64>::try_from(&flat).map_err(ModelError::torch("reading results"))
}

fn to_vec2(t: &Tensor) -> Result<Vec<(f64, f64)>, ModelError> {
    let flat = t
        .to_kind(Kind::Double)
        .to_device(Device::Cpu)
        .contiguous()
        .view([-1]);
    let v = Vec::<f64>::try_from(&flat).map_err(ModelError::torch("reading results"))?;
    Ok(v.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

fn l2_normalised(v: &Tensor) -> Result<Vec<f32>, ModelError> {
    let v = to_f32(v)?;
    let n = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    Ok(if n > 0.0 {
        v.iter().map(|x| (*x as f64 / n) as f32).collect()
    } else {
        v
    })
}

/// Wall-clock laps that wait for queued CUDA work first, so each stage gets its own time.
struct Stopwatch {
    device: Device,
    start: Instant,
    last: Instant,
}

impl Stopwatch {
    fn new(device: Device) -> Self {
        let now = Instant::now();
        Stopwatch {
            device,
            start: now,
            last: now,
        }
    }

    fn sync(&self) {
        if let Device::Cuda(i) = self.device {
            tch::Cuda::synchronize(i as i64);
        }
    }

    /// Milliseconds since the previous lap.
    fn lap(&mut self) -> f64 {
        self.sync();
        let now = Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1e3;
        self.last = now;
        ms
    }

    /// Milliseconds since creation.
    fn total(&self) -> f64 {
        self.sync();
        self.start.elapsed().as_secs_f64() * 1e3
    }
}
