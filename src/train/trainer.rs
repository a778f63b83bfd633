//! The training loop: data order, forward, supervision, losses, AdamW, checkpoints, logs and
//! the exported weights folder.
//!
//! One step ([`Trainer::train_step`]), following Efficient LoFTR's training forward:
//! 1. the batch of step `s` is `perm_e[k·B .. (k+1)·B]` with `e = s / steps_per_epoch`,
//!    `k = s mod steps_per_epoch` and `perm_e` a permutation seeded by `(seed, e)`;
//! 2. backbone: VAE latents and CLIP tokens of both images (no graph unless the backbone
//!    trains); [`ImdHeads::forward_pair`], the forward pass inference runs too: CIPM
//!    prompts → UNet (frozen, gradients flow through it to the prompts) → coarse transformer
//!    → dual softmax → fine features on each item's valid crop;
//! 3. coarse ground truth; predicted coarse matches (θ = `train.coarse_threshold`, border)
//!    padded with random GT matches ([`pad_with_gt`], seeded by `(seed, s)`);
//! 4. fine stage 1 / stage 2 scores at those matches, fine ground truth, [`imd_loss`];
//! 5. backward, AdamW at the scheduled learning rate.
//!
//! Frozen parts (VAE, UNet, CLIP) have `requires_grad == false`; only the heads (and, with
//! `train.backbone`, the backbone) are in the optimiser.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use super::batch::TrainBatch;
use super::checkpoint::{self, CheckpointMeta};
use super::config::{DataKind, TrainConfig};
use super::forward::{batch_valid_regions, forward_images, TrainImages};
use super::loss::{imd_loss, LossTerms, ModelOutputs};
use super::optim::{AdamW, LrSchedule, Param};
use super::supervision::{
    coarse_gt, fine_gt, max_candidates, pad_with_gt, CoarseGt, FineGrid, PredictedCoarseMatches,
};
use super::TrainError;
use crate::data::megadepth::{MegaDepthDataset, MegaDepthOptions};
use crate::data::rng::SeededRng;
use crate::data::synthetic::SyntheticHomographyDataset;
use crate::data::PairDataset;
use crate::model::backbone::{clip_files, unet_files, vae_files, EMPTY_PROMPT_FILE};
use crate::model::coarse::CoarseMatchParams;
use crate::model::imd_config::{BackboneKind, ImdModelConfig};
use crate::model::matcher::{HeadDims, ImdHeads, HEADS_FILE};
use crate::model::{Backbone, BackboneOptions};

/// Stream tags mixed into the seed so data order and GT padding draw independent numbers.
const ORDER_STREAM: u64 = 0x6f72_6465_7200_0001;
const PADDING_STREAM: u64 = 0x7061_6464_0000_0002;

/// Name of the newest checkpoint (also written at the end of a run).
pub const LAST_CHECKPOINT: &str = "last.safetensors";

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Updates done after this step (1 for the first).
    pub step: u64,
    /// Epoch of the batch.
    pub epoch: u64,
    /// Learning rate used.
    pub lr: f64,
    /// Weighted total loss.
    pub loss: f64,
    /// Coarse focal loss.
    pub coarse: f64,
    /// Stage-1 fine focal loss.
    pub fine: f64,
    /// Stage-2 sub-pixel L2 loss.
    pub subpixel: f64,
    /// Negative coarse term (0 unless `loss.negative_weight > 0`).
    pub negative: f64,
    /// Coarse ground-truth matches in the batch.
    pub coarse_gt: i64,
    /// Predicted coarse matches (before padding).
    pub predicted: i64,
    /// Share of predicted coarse matches that are ground-truth matches (NaN without any).
    pub coarse_precision: f64,
    /// Pixel-level fine ground-truth entries.
    pub fine_gt: i64,
    /// Wall time of the step.
    pub seconds: f64,
    /// Part of it spent making the batch (reading / generating pairs, collating).
    pub data_seconds: f64,
}

impl StepReport {
    /// CSV header of [`StepReport::csv_row`].
    pub const CSV_HEADER: &'static str =
        "step,epoch,lr,loss,coarse,fine,subpixel,negative,coarse_gt,predicted,coarse_precision,fine_gt,seconds,data_seconds";

    /// One CSV row (losses with full precision: resumed runs are compared bit for bit).
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{:e},{:e},{:e},{:e},{:e},{:e},{},{},{:.4},{},{:.3},{:.3}",
            self.step,
            self.epoch,
            self.lr,
            self.loss,
            self.coarse,
            self.fine,
            self.subpixel,
            self.negative,
            self.coarse_gt,
            self.predicted,
            self.coarse_precision,
            self.fine_gt,
            self.seconds,
            self.data_seconds
        )
    }
}

/// A training run in memory.
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    backbone: Backbone,
    heads: ImdHeads,
    dataset: Box<dyn PairDataset>,
    optim: AdamW,
    schedule: LrSchedule,
    step: u64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("step", &self.step)
            .field("device", &self.device)
            .field("dataset", &self.dataset.name())
            .finish()
    }
}

/// Open the training dataset of `config.data`.
pub fn open_dataset(config: &TrainConfig) -> Result<Box<dyn PairDataset>, TrainError> {
    Ok(match config.data.kind {
        DataKind::Synthetic => Box::new(SyntheticHomographyDataset::open(
            config.data.synthetic.clone(),
        )?),
        DataKind::Megadepth => {
            let m = &config.data.megadepth;
            let options = MegaDepthOptions {
                long_side: m.long_side,
                min_overlap: m.min_overlap,
                depth_root: PathBuf::from(&m.depth_root),
                ..MegaDepthOptions::train()
            };
            Box::new(MegaDepthDataset::open_list(
                Path::new(&m.list),
                Path::new(&m.index_dir),
                Path::new(&m.root),
                options,
            )?)
        }
    })
}

/// Named variables of a var store, sorted by name (a fixed order for the optimiser).
fn sorted_variables(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Backbone variables that stay frozen even when the backbone trains: the UNet's
/// time-embedding MLP, whose output at the fixed timestep is computed once at load.
fn backbone_frozen(part: &str, name: &str) -> bool {
    part == "unet" && name.starts_with("time_embedding.")
}

impl Trainer {
    /// A fresh run: backbone from `backbone_dir`, heads initialised with `seed`.
    pub fn new(config: &TrainConfig) -> Result<Self, TrainError> {
        config.validate()?;
        if config.threads > 0 {
            tch::set_num_threads(config.threads as i32);
        }
        let device = config.device.to_tch()?;
        if config.model.backbone.kind != BackboneKind::Sd21 {
            return Err(TrainError::InvalidConfig {
                field: "model.backbone.kind".into(),
                reason: "training runs on the SD2.1 backbone of backbone_dir only".into(),
            });
        }
        let backbone = Backbone::load(
            Path::new(&config.backbone_dir),
            device,
            Kind::Float,
            &BackboneOptions {
                unet_block: config.model.backbone.unet_block,
                timestep: config.model.backbone.timestep,
                load_clip: true,
            },
        )?;
        let clip_hidden =
            backbone
                .clip()
                .map(|c| c.hidden_size())
                .ok_or_else(|| TrainError::InvalidConfig {
                    field: "backbone_dir".into(),
                    reason: "has no image_encoder/ (the CIPM needs CLIP)".into(),
                })?;
        let dims = HeadDims {
            feature_channels: backbone.feature_channels(),
            context_dim: backbone.cross_attention_dim(),
            clip_hidden,
        };
        // The heads' initialisation is the only libtorch randomness of a run.
        tch::manual_seed(config.seed as i64);
        let heads = ImdHeads::new(&config.model, dims, device);
        if !config.train.init_heads.is_empty() {
            let path = Path::new(&config.train.init_heads);
            let r = super::init::init_from_file(heads.var_store(), path)?;
            log::info!(
                "heads: {} tensors from {}, {} freshly initialised: {:?}",
                r.copied.len(),
                path.display(),
                r.kept.len(),
                r.kept
            );
        }
        let mut params: Vec<Param> = sorted_variables(heads.var_store())
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, tensor)| Param {
                name: format!("heads.{name}"),
                tensor,
                lr_scale: 1.0,
            })
            .collect();
        if config.train.backbone {
            for (part, vs) in backbone.var_stores() {
                for (name, var) in sorted_variables(vs) {
                    if backbone_frozen(part, &name) || !var.is_floating_point() {
                        continue;
                    }
                    params.push(Param {
                        name: format!("{part}.{name}"),
                        tensor: var.set_requires_grad(true),
                        lr_scale: config.train.backbone_lr_scale,
                    });
                }
            }
        }
        let dataset = open_dataset(config)?;
        if dataset.len() < config.train.batch_size {
            return Err(TrainError::InvalidConfig {
                field: "train.batch_size".into(),
                reason: format!(
                    "{} is larger than the dataset ({} pairs)",
                    config.train.batch_size,
                    dataset.len()
                ),
            });
        }
        let optim = AdamW::new(params, &config.optimizer)?;
        Ok(Trainer {
            config: config.clone(),
            device,
            backbone,
            heads,
            dataset,
            optim,
            schedule: LrSchedule::new(config.optimizer.lr, &config.schedule),
            step: 0,
        })
    }

    /// Continue a run from a checkpoint written by [`Trainer::save_checkpoint`]. The
    /// configuration must match the checkpoint's in everything but the run length,
    /// checkpoint cadence, threads, device and output folder.
    pub fn resume(config: &TrainConfig, path: &Path) -> Result<Self, TrainError> {
        let mut trainer = Self::new(config)?;
        let ck = checkpoint::load(path)?;
        if ck.meta.seed != config.seed || ck.meta.fingerprint != config.trajectory_fingerprint() {
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                reason: "was written by a run with a different configuration (seed, model, \
                         data, optimiser, schedule, loss or batch); resuming it would not \
                         continue that run"
                    .into(),
            });
        }
        let missing = |name: &str| TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("tensor `{name}` is missing"),
        };
        for (name, var) in sorted_variables(trainer.heads.var_store()) {
            let key = format!("heads.{name}");
            let src = ck.tensors.get(&key).ok_or_else(|| missing(&key))?;
            checkpoint::restore_into(&key, &var, src)?;
        }
        if config.train.backbone {
            for (part, vs) in trainer.backbone.var_stores() {
                for (name, var) in sorted_variables(vs) {
                    let key = format!("{part}.{name}");
                    let src = ck.tensors.get(&key).ok_or_else(|| missing(&key))?;
                    checkpoint::restore_into(&key, &var, src)?;
                }
            }
        }
        trainer
            .optim
            .load_state("adamw.", &ck.tensors, ck.meta.step)?;
        trainer.step = ck.meta.step;
        Ok(trainer)
    }

    /// Updates done so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The configuration of the run.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The heads being trained.
    pub fn heads(&self) -> &ImdHeads {
        &self.heads
    }

    /// The backbone (trained only with `train.backbone`).
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// The optimiser's parameters (name, tensor, learning-rate scale).
    pub fn params(&self) -> &[Param] {
        self.optim.params()
    }

    /// Pair indices of the batch of step `step` (see the module doc).
    pub fn batch_indices(&self, step: u64) -> (u64, Vec<usize>) {
        let len = self.dataset.len();
        let bs = self.config.train.batch_size;
        let per_epoch = (len / bs).max(1) as u64;
        let epoch = step / per_epoch;
        let pos = (step % per_epoch) as usize;
        let mut order: Vec<usize> = (0..len).collect();
        let mut rng = SeededRng::for_item(self.config.seed ^ ORDER_STREAM, epoch);
        for k in (1..len).rev() {
            let j = rng.below(k as u64 + 1) as usize;
            order.swap(k, j);
        }
        (epoch, order[pos * bs..(pos + 1) * bs].to_vec())
    }

    /// One optimiser step on the next batch.
    pub fn train_step(&mut self) -> Result<StepReport, TrainError> {
        let start = Instant::now();
        let step = self.step;
        let lr = self.schedule.lr(step);
        let (epoch, indices) = self.batch_indices(step);
        let samples = indices
            .iter()
            .map(|&i| self.dataset.get(i))
            .collect::<Result<Vec<_>, _>>()?;
        let grid = FineGrid::EFFICIENT_LOFTR;
        let batch = TrainBatch::collate(&samples, &grid, self.device)?;
        drop(samples);
        // The heads batch both images of a pair through the fine encoder together.
        if batch.image0.size() != batch.image1.size() {
            return Err(TrainError::input(
                "batch",
                format!(
                    "image 0 is {:?} but image 1 is {:?}: training needs both images of a pair \
                     at one size (pad them, as MegaDepth's square padding does)",
                    batch.image0.size(),
                    batch.image1.size()
                ),
            ));
        }
        let data_seconds = start.elapsed().as_secs_f64();

        self.optim.zero_grad();
        let out = self.forward_losses(&batch, step)?;
        let total = out.terms.total.double_value(&[]);
        if !total.is_finite() {
            return Err(TrainError::Diverged {
                step: step + 1,
                loss: total,
            });
        }
        out.terms.total.backward();
        self.optim.step(lr);
        self.step += 1;
        Ok(StepReport {
            step: self.step,
            epoch,
            lr,
            loss: total,
            coarse: out.terms.coarse.double_value(&[]),
            fine: out.terms.fine.double_value(&[]),
            subpixel: out.terms.subpixel.double_value(&[]),
            negative: out.terms.negative.double_value(&[]),
            coarse_gt: out.coarse_gt,
            predicted: out.predicted,
            coarse_precision: out.coarse_precision,
            fine_gt: out.fine_gt,
            seconds: start.elapsed().as_secs_f64(),
            data_seconds,
        })
    }

    /// Steps 2–4 of the module doc for one batch: the loss terms (in the graph) and counts.
    fn forward_losses(&self, batch: &TrainBatch, step: u64) -> Result<StepOutputs, TrainError> {
        let cfg = &self.config;
        let grid = FineGrid::EFFICIENT_LOFTR;
        let n = batch.image0.size()[0];
        let (valid0, valid1) = batch_valid_regions(batch);
        let fwd = forward_images(
            &self.backbone,
            &self.heads,
            &TrainImages {
                image0: &batch.image0,
                image1: &batch.image1,
                valid0: &valid0,
                valid1: &valid1,
            },
            &cfg.model,
            cfg.train.backbone,
            true,
        )?;

        let gt = coarse_gt(&batch.warp, &batch.layout, &grid)?;
        let pred = fwd.coarse_matches(CoarseMatchParams {
            threshold: cfg.train.coarse_threshold,
            border: cfg.train.border as i64,
        });
        let predicted = pred.len();
        let coarse_precision = precision_against_gt(&pred.b_ids, &pred.i_ids, &pred.j_ids, &gt);
        let cells = (batch.layout.len0(), batch.layout.len1());
        let max_cand = max_candidates(
            n,
            cells,
            batch.layout.mask0.as_ref(),
            batch.layout.mask1.as_ref(),
        )?;
        let mut rng = SeededRng::for_item(cfg.seed ^ PADDING_STREAM, step);
        let matches = pad_with_gt(
            &PredictedCoarseMatches {
                b_ids: pred.b_ids,
                i_ids: pred.i_ids,
                j_ids: pred.j_ids,
                mconf: pred.confidence,
            },
            &gt,
            max_cand,
            &cfg.gt_padding,
            &mut rng,
        )?;
        let s1 = fwd.fine_stage1(
            &matches.b_ids,
            &matches.i_ids,
            &matches.j_ids,
            cfg.model.fine.subpixel_channels,
        );
        let fgt = fine_gt(
            &batch.warp,
            &batch.layout,
            &grid,
            &matches.b_ids,
            &matches.i_ids,
            &matches.j_ids,
        )?;
        let masks = match (&batch.layout.mask0, &batch.layout.mask1) {
            (Some(m0), Some(m1)) => Some((m0, m1)),
            _ => None,
        };
        let terms = imd_loss(
            &ModelOutputs {
                coarse_conf: &fwd.conf,
                masks,
                fine_conf: &s1.conf,
                subpixel_scores: &s1.subpixel_sim,
                subpixel_temperature: cfg.model.fine.subpixel_temperature,
            },
            &gt,
            &fgt,
            &grid,
            &cfg.loss,
        )?;
        Ok(StepOutputs {
            terms,
            coarse_gt: gt.len(),
            predicted,
            coarse_precision,
            fine_gt: fgt.len(),
        })
    }

    /// All checkpoint tensors (see [`super::checkpoint`]).
    pub fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = sorted_variables(self.heads.var_store())
            .into_iter()
            .map(|(n, t)| (format!("heads.{n}"), t))
            .collect();
        if self.config.train.backbone {
            for (part, vs) in self.backbone.var_stores() {
                out.extend(
                    sorted_variables(vs)
                        .into_iter()
                        .map(|(n, t)| (format!("{part}.{n}"), t)),
                );
            }
        }
        out.extend(self.optim.state_tensors("adamw."));
        out
    }

    /// Write a checkpoint of the current state to `path`.
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TrainError> {
        checkpoint::save(
            path,
            &self.checkpoint_tensors(),
            &CheckpointMeta {
                step: self.step,
                seed: self.config.seed,
                fingerprint: self.config.trajectory_fingerprint(),
            },
        )
    }

    /// Write the trained weights folder `dir`: `imd.yaml`, `heads.safetensors` and the
    /// backbone — the trained backbone's weights (with its `config.json` files) when
    /// `train.backbone`, else symbolic links to `backbone_dir`'s `unet/`, `vae/`,
    /// `image_encoder/` (and `empty_prompt.safetensors`), so `imd match --model dir` loads it.
    pub fn export(&self, dir: &Path) -> Result<(), TrainError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source: std::io::Error| TrainError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let yaml = ImdModelConfig::path_in(dir);
        std::fs::write(&yaml, self.config.model_yaml().to_yaml_string()).map_err(io(&yaml))?;
        self.heads.save(&dir.join(HEADS_FILE))?;
        let src = Path::new(&self.config.backbone_dir);
        let parts = [
            ("vae", vae_files(src)?),
            ("unet", unet_files(src)?),
            ("image_encoder", clip_files(src)?),
        ];
        for (part, files) in parts {
            let target = dir.join(part);
            remove_existing(&target)?;
            if self.config.train.backbone {
                std::fs::create_dir_all(&target).map_err(io(&target))?;
                let config = target.join("config.json");
                std::fs::copy(&files.config, &config).map_err(io(&config))?;
                let weights_name = files
                    .weights
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("model.safetensors")
                    .replace(".fp16.", ".");
                let vs = self
                    .backbone
                    .var_stores()
                    .into_iter()
                    .find(|(p, _)| *p == part)
                    .map(|(_, vs)| vs)
                    .ok_or_else(|| TrainError::input("backbone", format!("has no {part}")))?;
                let weights = target.join(weights_name);
                vs.save(&weights).map_err(|source| TrainError::Torch {
                    context: format!("writing {}", weights.display()),
                    source,
                })?;
            } else {
                link(&src.join(part), &target)?;
            }
        }
        let prompt = src.join(EMPTY_PROMPT_FILE);
        let target = dir.join(EMPTY_PROMPT_FILE);
        remove_existing(&target)?;
        // A trained backbone no longer fits the SD text encoder's empty prompt.
        if !self.config.train.backbone && prompt.is_file() {
            link(&prompt, &target)?;
        }
        Ok(())
    }

    /// Train up to `train.steps`: CSV log of every step (`train_log.csv`), checkpoints every
    /// `checkpoint.every` steps and at the end (`checkpoints/`), a progress bar when
    /// `progress`, and finally the weights folder in `output_dir`. `on_step` sees every
    /// report (tests, custom logging).
    pub fn fit(
        &mut self,
        progress: bool,
        on_step: &mut dyn FnMut(&StepReport),
    ) -> Result<(), TrainError> {
        let total = self.config.train.steps;
        let out_dir = PathBuf::from(&self.config.output_dir);
        let ck_dir = self.config.checkpoint_dir();
        std::fs::create_dir_all(&ck_dir).map_err(|source| TrainError::Io {
            path: ck_dir.clone(),
            source,
        })?;
        let log_path = self.config.log_path();
        let mut log = open_log(&log_path, self.step)?;
        let bar = if progress {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} (eta {eta}) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_position(self.step);
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        while self.step < total {
            let report = self.train_step()?;
            // Flushed every step so the log can be watched while a long run trains.
            writeln!(log, "{}", report.csv_row())
                .and_then(|_| log.flush())
                .map_err(|source| TrainError::Io {
                    path: log_path.clone(),
                    source,
                })?;
            bar.set_position(report.step);
            bar.set_message(format!(
                "loss {:.4} (c {:.4} f {:.4} s {:.4} n {:.4}) lr {:.2e} prec {:.2}",
                report.loss,
                report.coarse,
                report.fine,
                report.subpixel,
                report.negative,
                report.lr,
                report.coarse_precision
            ));
            on_step(&report);
            let every = self.config.checkpoint.every;
            if every > 0 && report.step % every == 0 && report.step < total {
                self.save_periodic(&ck_dir)?;
            }
        }
        bar.finish();
        self.save_checkpoint(&ck_dir.join(LAST_CHECKPOINT))?;
        self.export(&out_dir)
    }

    fn save_periodic(&self, ck_dir: &Path) -> Result<(), TrainError> {
        self.save_checkpoint(&ck_dir.join(format!("step_{:08}.safetensors", self.step)))?;
        self.save_checkpoint(&ck_dir.join(LAST_CHECKPOINT))?;
        let keep = self.config.checkpoint.keep;
        if keep == 0 {
            return Ok(());
        }
        let mut periodic: Vec<PathBuf> = std::fs::read_dir(ck_dir)
            .map_err(|source| TrainError::Io {
                path: ck_dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step_") && n.ends_with(".safetensors"))
            })
            .collect();
        periodic.sort();
        let excess = periodic.len().saturating_sub(keep);
        for old in &periodic[..excess] {
            std::fs::remove_file(old).map_err(|source| TrainError::Io {
                path: old.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

struct StepOutputs {
    terms: LossTerms,
    coarse_gt: i64,
    predicted: i64,
    coarse_precision: f64,
    fine_gt: i64,
}

/// Share of predicted `(b, i, j)` that are ground-truth coarse matches (NaN for none).
fn precision_against_gt(b: &Tensor, i: &Tensor, j: &Tensor, gt: &CoarseGt) -> f64 {
    let p = b.size()[0];
    if p == 0 {
        return f64::NAN;
    }
    let _guard = tch::no_grad_guard();
    let device = b.device();
    let l0 = gt.cells.0;
    let lookup = Tensor::full([gt.batch * l0], -1i64, (Kind::Int64, device));
    let lookup = if gt.is_empty() {
        lookup
    } else {
        let key = gt.b_ids.to_device(device) * l0 + gt.i_ids.to_device(device);
        lookup.index_put(&[Some(&key)], &gt.j_ids.to_device(device), false)
    };
    let hit = lookup.index_select(0, &(b * l0 + i)).eq_tensor(j);
    hit.to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[])
}

/// Open the CSV log for appending after `step` updates: a fresh log (with header) at step 0;
/// on resume, rows of steps after the checkpoint (from a run that went further before being
/// interrupted) are dropped so the log has exactly one row per step.
fn open_log(path: &Path, step: u64) -> Result<std::io::BufWriter<std::fs::File>, TrainError> {
    let io = |source: std::io::Error| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut kept = vec![StepReport::CSV_HEADER.to_string()];
    if step > 0 && path.is_file() {
        let file = std::fs::File::open(path).map_err(io)?;
        for line in BufReader::new(file).lines().skip(1) {
            let line = line.map_err(io)?;
            let row_step = line
                .split(',')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            if row_step <= step {
                kept.push(line);
            }
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io)?;
    for line in kept {
        writeln!(file, "{line}").map_err(io)?;
    }
    Ok(std::io::BufWriter::new(file))
}

fn remove_existing(path: &Path) -> Result<(), TrainError> {
    let io = |source: std::io::Error| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).map_err(io),
        Ok(_) => std::fs::remove_file(path).map_err(io),
        Err(_) => Ok(()),
    }
}

fn link(src: &Path, dst: &Path) -> Result<(), TrainError> {
    let io = |source: std::io::Error| TrainError::Io {
        path: dst.to_path_buf(),
        source,
    };
    let abs = std::fs::canonicalize(src).map_err(|source| TrainError::Io {
        path: src.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&abs, dst).map_err(io)
    }
    #[cfg(not(unix))]
    {
        if abs.is_dir() {
            Err(io(std::io::Error::other(
                "linking a backbone folder needs a unix system; copy it by hand",
            )))
        } else {
            std::fs::copy(&abs, dst).map(|_| ()).map_err(io)
        }
    }
}
