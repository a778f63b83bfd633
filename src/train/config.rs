//! `train.yaml`: everything a training run depends on, in one serde type.
//!
//! ```yaml
//! seed: 0
//! device: cpu                # cpu, cuda, cuda:N
//! threads: 0                 # libtorch CPU threads (0 = libtorch's default)
//! backbone_dir: weights/sd21 # unet/, vae/, image_encoder/ (+ empty_prompt.safetensors)
//! output_dir: runs/my-model  # the trained weights folder (+ checkpoints/, train_log.csv)
//! description: "IMD heads trained on MegaDepth"
//! demo: false
//! model: { coarse: { d_model: 256 } }   # imd.yaml of the heads (ImdModelConfig)
//! train:
//!   steps: 30000
//!   batch_size: 4
//!   coarse_threshold: 0.2    # predictions kept for the fine stage (EL scripts: 0.1)
//!   border: 2
//!   backbone: false          # demo only: also train VAE/UNet/CLIP (see TrainSection)
//! optimizer: { lr: 4.0e-3, weight_decay: 0.1, betas: [0.9, 0.999], eps: 1.0e-8 }
//! schedule: { warmup_steps: 1875, warmup_ratio: 0.1, milestones: [8000, 12000], gamma: 0.5 }
//! loss: {}                   # LossConfig (EL defaults)
//! gt_padding: {}             # GtPaddingConfig (EL defaults)
//! data: { kind: synthetic, synthetic: { images_dir: photos, width: 320, height: 240 } }
//! checkpoint: { every: 1000, keep: 3 }
//! ```
//!
//! Every section is `#[serde(default, deny_unknown_fields)]`, so a file lists only what
//! differs from the defaults and a misspelt key is an error naming it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::loss::LossConfig;
use super::supervision::GtPaddingConfig;
use super::TrainError;
use crate::data::synthetic::SyntheticHomographyConfig;
use crate::model::{ComputeDevice, ImdModelConfig};

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seeds the head initialisation, the data order and the GT padding draws.
    pub seed: u64,
    /// Where the model trains.
    pub device: ComputeDevice,
    /// libtorch CPU threads (0 = libtorch's default). Process-wide.
    pub threads: u32,
    /// Weights folder of the backbone (`unet/`, `vae/`, `image_encoder/`).
    pub backbone_dir: String,
    /// Output weights folder; checkpoints go to `checkpoints/` and the log to
    /// `train_log.csv` inside it.
    pub output_dir: String,
    /// `description` written to the output `imd.yaml`.
    pub description: String,
    /// `demo` written to the output `imd.yaml`.
    pub demo: bool,
    /// Sizes of the heads (the output `imd.yaml`, less `description` / `demo`).
    pub model: ImdModelConfig,
    /// Steps, batch, what trains.
    pub train: TrainSection,
    /// AdamW.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: ScheduleConfig,
    /// Loss weights and focal parameters.
    pub loss: LossConfig,
    /// Padding predicted coarse matches with ground truth for the fine stage.
    pub gt_padding: GtPaddingConfig,
    /// Training pairs.
    pub data: DataConfig,
    /// Checkpoint cadence.
    pub checkpoint: CheckpointConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            device: ComputeDevice::Cpu,
            threads: 0,
            backbone_dir: String::new(),
            output_dir: String::new(),
            description: String::new(),
            demo: false,
            model: ImdModelConfig::default(),
            train: TrainSection::default(),
            optimizer: OptimizerConfig::default(),
            schedule: ScheduleConfig::default(),
            loss: LossConfig::default(),
            gt_padding: GtPaddingConfig::default(),
            data: DataConfig::default(),
            checkpoint: CheckpointConfig::default(),
        }
    }
}

/// Steps, batch size, coarse extraction during training and what is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// Optimiser steps in total (a resumed run continues up to this).
    pub steps: u64,
    /// Pairs per step (all pairs of a batch must share image sizes).
    pub batch_size: usize,
    /// Coarse threshold θ for the predictions that feed the fine stage (paper 0.2, EL's
    /// training scripts 0.1).
    pub coarse_threshold: f64,
    /// Coarse cells removed at the valid-region edge for those predictions.
    pub border: u32,
    /// **Demo only.** Also train the VAE encoder, UNet and CLIP tower (from the weights in
    /// `backbone_dir`, e.g. a freshly initialised tiny SD config), with the heads' optimiser
    /// and learning rate × `backbone_lr_scale`. The paper freezes them (false): no trained
    /// tiny SD exists, so a demo model built on a small SD-structured config has to learn its
    /// backbone too. The UNet's time-embedding MLP stays frozen (at t = 0 it is a constant).
    pub backbone: bool,
    /// Learning-rate multiplier of the backbone parameters when `backbone` is true.
    pub backbone_lr_scale: f64,
    /// Optional `heads.safetensors` of another run to start the heads from (every tensor of
    /// the same name and shape; the rest keep their seeded initialisation). Empty: none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub init_heads: String,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            steps: 1000,
            batch_size: 2,
            coarse_threshold: 0.2,
            border: 2,
            backbone: false,
            backbone_lr_scale: 1.0,
            init_heads: String::new(),
        }
    }
}

/// AdamW (decoupled weight decay, as `torch.optim.AdamW`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Base learning rate (the paper: 4e-3 at batch 64 on 8 GPUs; EL scales 8e-3·bs/64).
    pub lr: f64,
    /// Decoupled weight decay (0.1).
    pub weight_decay: f64,
    /// `(β1, β2)`.
    pub betas: Vec<f64>,
    /// Denominator ε.
    pub eps: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            lr: 4e-3,
            weight_decay: 0.1,
            betas: vec![0.9, 0.999],
            eps: 1e-8,
        }
    }
}

/// Linear warm-up, then multi-step decay (Efficient LoFTR's schedule, in steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Steps of linear warm-up (0 = none).
    pub warmup_steps: u64,
    /// The warm-up starts at `warmup_ratio · lr` (EL: 0.1).
    pub warmup_ratio: f64,
    /// Steps at which the learning rate is multiplied by `gamma` (MultiStepLR).
    pub milestones: Vec<u64>,
    /// Decay factor (EL: 0.5).
    pub gamma: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            warmup_steps: 0,
            warmup_ratio: 0.1,
            milestones: Vec::new(),
            gamma: 0.5,
        }
    }
}

/// Which dataset gives the training pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Random homographies of a folder of photos (`data.synthetic`).
    #[default]
    Synthetic,
    /// MegaDepth with depth supervision (`data.megadepth`).
    Megadepth,
}

/// Training pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `synthetic` or `megadepth`.
    pub kind: DataKind,
    /// Synthetic homography pairs (`kind: synthetic`); `pairs` is the epoch length.
    pub synthetic: SyntheticHomographyConfig,
    /// MegaDepth (`kind: megadepth`).
    pub megadepth: MegaDepthTrainConfig,
}

/// MegaDepth training data as Efficient LoFTR uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MegaDepthTrainConfig {
    /// MegaDepth root (`Undistorted_SfM/`, `phoenix/…/depths`).
    pub root: String,
    /// Folder of converted scene indices (`scripts/data/convert_megadepth_index.py`).
    pub index_dir: String,
    /// Scene list (one index stem per line, e.g. EL's `trainvaltest_list/train_list.txt`).
    pub list: String,
    /// Root of the converted depth maps (empty = `root`).
    pub depth_root: String,
    /// Long side of the network images (EL: 832), padded to a square.
    pub long_side: u32,
    /// Keep pairs with overlap above this (EL: 0.0).
    pub min_overlap: f64,
}

impl Default for MegaDepthTrainConfig {
    fn default() -> Self {
        MegaDepthTrainConfig {
            root: String::new(),
            index_dir: String::new(),
            list: String::new(),
            depth_root: String::new(),
            long_side: 832,
            min_overlap: 0.0,
        }
    }
}

/// Checkpoint cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Write a checkpoint every this many steps (0 = only at the end).
    pub every: u64,
    /// Keep the newest `keep` periodic checkpoints (0 = all).
    pub keep: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every: 500,
            keep: 2,
        }
    }
}

impl TrainConfig {
    /// Read and validate a YAML file; relative paths in it are taken relative to the current
    /// directory (as the CLI is run from the repository root).
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::InvalidConfig {
            field: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_yaml_str(&text).map_err(|e| match e {
            TrainError::InvalidConfig { field, reason } => TrainError::InvalidConfig {
                field: format!("{}: {field}", path.display()),
                reason,
            },
            other => other,
        })
    }

    /// Parse and validate YAML text.
    pub fn from_yaml_str(text: &str) -> Result<Self, TrainError> {
        let config: TrainConfig =
            serde_yaml::from_str(text).map_err(|e| TrainError::InvalidConfig {
                field: "train config".into(),
                reason: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// YAML text of the whole configuration (every field, defaults included).
    pub fn to_yaml_string(&self) -> String {
        // Plain numbers, strings, bools and lists always serialize.
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// Range checks naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, reason: String| {
            Err(TrainError::InvalidConfig {
                field: field.to_string(),
                reason,
            })
        };
        if self.backbone_dir.trim().is_empty() {
            return bad(
                "backbone_dir",
                "is empty: name the backbone weights folder".into(),
            );
        }
        if self.output_dir.trim().is_empty() {
            return bad(
                "output_dir",
                "is empty: name the output weights folder".into(),
            );
        }
        self.model
            .validate(Path::new("train config `model`"))
            .map_err(|e| TrainError::InvalidConfig {
                field: "model".into(),
                reason: e.to_string(),
            })?;
        if self.train.batch_size == 0 {
            return bad("train.batch_size", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.train.coarse_threshold) {
            return bad(
                "train.coarse_threshold",
                format!("{} is not in [0, 1)", self.train.coarse_threshold),
            );
        }
        if !(self.train.backbone_lr_scale.is_finite() && self.train.backbone_lr_scale >= 0.0) {
            return bad(
                "train.backbone_lr_scale",
                format!(
                    "{} is not a finite number ≥ 0",
                    self.train.backbone_lr_scale
                ),
            );
        }
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return bad("optimizer.lr", format!("{} is not > 0", o.lr));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return bad(
                "optimizer.weight_decay",
                format!("{} is not ≥ 0", o.weight_decay),
            );
        }
        if o.betas.len() != 2 || o.betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return bad(
                "optimizer.betas",
                format!("{:?} must be two numbers in [0, 1)", o.betas),
            );
        }
        if !(o.eps.is_finite() && o.eps > 0.0) {
            return bad("optimizer.eps", format!("{} is not > 0", o.eps));
        }
        let s = &self.schedule;
        if !(0.0..=1.0).contains(&s.warmup_ratio) {
            return bad(
                "schedule.warmup_ratio",
                format!("{} is not in [0, 1]", s.warmup_ratio),
            );
        }
        if !(s.gamma.is_finite() && s.gamma > 0.0) {
            return bad("schedule.gamma", format!("{} is not > 0", s.gamma));
        }
        if s.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return bad(
                "schedule.milestones",
                format!("{:?} must be strictly increasing", s.milestones),
            );
        }
        self.loss.validate()?;
        match self.data.kind {
            DataKind::Synthetic => {
                self.data
                    .synthetic
                    .validate()
                    .map_err(|e| TrainError::InvalidConfig {
                        field: "data.synthetic".into(),
                        reason: e.to_string(),
                    })?;
                if self.data.synthetic.images_dir.trim().is_empty() {
                    return bad("data.synthetic.images_dir", "is empty".into());
                }
            }
            DataKind::Megadepth => {
                let m = &self.data.megadepth;
                for (field, v) in [
                    ("data.megadepth.root", &m.root),
                    ("data.megadepth.index_dir", &m.index_dir),
                    ("data.megadepth.list", &m.list),
                ] {
                    if v.trim().is_empty() {
                        return bad(field, "is empty".into());
                    }
                }
                if m.long_side == 0 || !m.long_side.is_multiple_of(8) {
                    return bad(
                        "data.megadepth.long_side",
                        format!("{} must be a positive multiple of 8", m.long_side),
                    );
                }
            }
        }
        Ok(())
    }

    /// `output_dir/checkpoints`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        Path::new(&self.output_dir).join("checkpoints")
    }

    /// `output_dir/train_log.csv`.
    pub fn log_path(&self) -> PathBuf {
        Path::new(&self.output_dir).join("train_log.csv")
    }

    /// The `imd.yaml` of the trained folder: `model` with `description` and `demo`.
    pub fn model_yaml(&self) -> ImdModelConfig {
        ImdModelConfig {
            description: self.description.clone(),
            demo: self.demo,
            ..self.model.clone()
        }
    }

    /// The parts of the configuration a resumed run must share with the checkpoint for the
    /// trajectory to continue exactly (everything except `train.steps`, `checkpoint`,
    /// `threads`, `output_dir`, `description` and `device`).
    pub fn trajectory_fingerprint(&self) -> String {
        let mut c = self.clone();
        c.train.steps = 0;
        c.checkpoint = CheckpointConfig::default();
        c.threads = 0;
        c.output_dir = String::new();
        c.description = String::new();
        c.device = ComputeDevice::Cpu;
        c.to_yaml_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "backbone_dir: b\noutput_dir: o\ndata: { synthetic: { images_dir: p } }\n";

    #[test]
    fn defaults_and_round_trip() {
        let c = TrainConfig::from_yaml_str(MINIMAL).unwrap();
        assert_eq!(c.optimizer.weight_decay, 0.1);
        assert_eq!(c.loss.subpixel_weight, 0.25);
        assert_eq!(c.gt_padding.min_gt_pad, 200);
        assert!(!c.train.backbone);
        let back = TrainConfig::from_yaml_str(&c.to_yaml_string()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("optimizer: { lr: 0 }", "optimizer.lr"),
            ("optimizer: { betas: [0.9] }", "optimizer.betas"),
            ("schedule: { milestones: [5, 3] }", "schedule.milestones"),
            ("train: { batch_size: 0 }", "train.batch_size"),
            ("loss: { fine_weight: -1 }", "loss.fine_weight"),
            ("model: { coarse: { nhead: 3 } }", "model"),
        ];
        for (extra, field) in cases {
            let err = TrainConfig::from_yaml_str(&format!("{MINIMAL}{extra}\n")).unwrap_err();
            match err {
                TrainError::InvalidConfig { field: f, .. } => assert_eq!(f, field, "{extra}"),
                other => panic!("{extra}: {other}"),
            }
        }
        let err = TrainConfig::from_yaml_str(&format!("{MINIMAL}train: {{ stpes: 3 }}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("stpes"), "{err}");
    }

    #[test]
    fn fingerprint_ignores_run_length_only() {
        let a = TrainConfig::from_yaml_str(MINIMAL).unwrap();
        let mut b = a.clone();
        b.train.steps = 99;
        b.checkpoint.every = 7;
        assert_eq!(a.trajectory_fingerprint(), b.trajectory_fingerprint());
        b.optimizer.lr = 1.0;
        assert_ne!(a.trajectory_fingerprint(), b.trajectory_fingerprint());
    }
}
