//! `imd.yaml`: the sizes of the trained heads (CIPM, coarse transformer, fine stage) and the
//! backbone settings they were trained with. It lives next to `heads.safetensors` in a
//! weights folder; the heads are built from it and then filled, so a mismatch between this
//! file and the weights is reported as a shape error naming the tensor.
//!
//! Every section has the paper's defaults, so a minimal file only needs what differs.
//!
//! ```yaml
//! description: "IMD heads trained on MegaDepth"
//! demo: false
//! backbone: { kind: sd21, unet_block: 2, timestep: 0.0 }
//! cipm: { clip_tokens: 257, dim: 256, prompt_length: 77, scale: 0.2, mlp_hidden: 1024 }
//! coarse: { d_model: 256, nhead: 8, layers: [self, cross, self, cross], temperature: 0.1 }
//! # optional: Efficient LoFTR's aggregated attention instead of full attention
//! # coarse: { attention: aggregated, agg_size: 4 }
//! fine: { dims: [64, 128], window: 8, subpixel_channels: 8, subpixel_temperature: 10.0 }
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The contents of `imd.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImdModelConfig {
    /// Free text: what these weights are and how they were trained.
    pub description: String,
    /// True for demo / test weights that are not the paper's model (tools print a warning).
    pub demo: bool,
    /// Which backbone (and which of its features) the heads were trained on.
    pub backbone: BackboneSection,
    /// Cross-image interaction prompt module.
    pub cipm: CipmConfig,
    /// Coarse transformer and matching.
    pub coarse: CoarseConfig,
    /// Fine encoder, fusion and two-stage refinement.
    pub fine: FineConfig,
}

/// Which feature extractor feeds the heads (see [`crate::model::matcher::FeatureSource`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneKind {
    /// Stable Diffusion 2.1 VAE + UNet with the CLIP image encoder (the paper's backbone):
    /// `vae/`, `unet/`, `image_encoder/` in the weights folder.
    #[default]
    Sd21,
    /// The small plain CNN of [`crate::model::cnn_backbone`]: one weights file.
    Cnn,
}

/// Backbone settings the heads depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackboneSection {
    /// `sd21` (default) or `cnn`.
    #[serde(skip_serializing_if = "is_default_kind")]
    pub kind: BackboneKind,
    /// SD2.1: UNet features are the output of `up_blocks[unet_block]` (2: 640 channels at 1/8).
    pub unet_block: usize,
    /// SD2.1: diffusion timestep of the (noise-free) UNet pass.
    pub timestep: f64,
    /// CNN: layer widths (ignored for SD2.1; only written when `kind` is `cnn`).
    #[serde(skip_serializing_if = "CnnSection::is_default")]
    pub cnn: CnnSection,
}

fn is_default_kind(kind: &BackboneKind) -> bool {
    *kind == BackboneKind::default()
}

/// Sizes of the plain-CNN backbone ([`crate::model::cnn_backbone`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CnnSection {
    /// Channels of the three stride-2 convolutions (image → 1/8 codes).
    pub widths: [i64; 3],
    /// Channels of the coarse feature map.
    pub feature_channels: i64,
    /// Width of one prompt token the features are conditioned on.
    pub prompt_dim: i64,
    /// Prompt-input tokens come from a `token_grid × token_grid` pooling of the codes (plus
    /// one global token), so `cipm.clip_tokens` must be `token_grid² + 1`.
    pub token_grid: i64,
}

impl Default for CnnSection {
    fn default() -> Self {
        CnnSection {
            widths: [16, 32, 64],
            feature_channels: 64,
            prompt_dim: 32,
            token_grid: 4,
        }
    }
}

impl CnnSection {
    fn is_default(&self) -> bool {
        *self == CnnSection::default()
    }
}

/// CIPM sizes (see [`crate::model::cipm`] for the equations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CipmConfig {
    /// Number of CLIP tokens (CLS + patches): 257 for ViT-H/14 at 224 px.
    pub clip_tokens: i64,
    /// Width `d` of the Q/K/V projections and the token features.
    pub dim: i64,
    /// Number of prompt tokens `L` per image.
    pub prompt_length: i64,
    /// Scale `s` of the cross-image interaction term.
    pub scale: f64,
    /// Hidden width of the output MLP.
    pub mlp_hidden: i64,
}

/// Kind of a coarse transformer layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Each image attends to itself.
    #[serde(rename = "self")]
    SelfAttention,
    /// Each image attends to the other.
    #[serde(rename = "cross")]
    CrossAttention,
}

/// Attention of the coarse transformer layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoarseAttention {
    /// Full softmax attention over all cells (LoFTR; the paper-size default).
    #[default]
    Full,
    /// Efficient LoFTR's aggregated attention: queries aggregated by a depthwise
    /// `agg_size × agg_size` convolution, keys/values max-pooled by `agg_size`, attention at the
    /// reduced resolution, the message upsampled back (see
    /// [`crate::model::coarse::aggregated`]).
    Aggregated,
}

fn is_full_attention(a: &CoarseAttention) -> bool {
    *a == CoarseAttention::Full
}

fn is_default_agg_size(n: &i64) -> bool {
    *n == DEFAULT_AGG_SIZE
}

/// Default aggregation size of [`CoarseAttention::Aggregated`] (Efficient LoFTR's 4).
pub const DEFAULT_AGG_SIZE: i64 = 4;

/// Coarse transformer and matching sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoarseConfig {
    /// Transformer width; UNet features are projected to it.
    pub d_model: i64,
    /// Attention heads (must divide `d_model`).
    pub nhead: i64,
    /// Layer sequence, e.g. `[self, cross, self, cross]`.
    pub layers: Vec<LayerKind>,
    /// Dual-softmax temperature τ: `S = <f0, f1> / (d_model · τ)`.
    pub temperature: f64,
    /// `full` (default) or `aggregated` attention (omitted from the file when `full`).
    #[serde(skip_serializing_if = "is_full_attention")]
    pub attention: CoarseAttention,
    /// Aggregation size of `aggregated` attention (4; omitted from the file when 4).
    #[serde(skip_serializing_if = "is_default_agg_size")]
    pub agg_size: i64,
}

/// Fine stage sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineConfig {
    /// Channels of the fine encoder at 1/2 and 1/4 resolution; the first is also the width
    /// of the full-resolution fine features.
    pub dims: Vec<i64>,
    /// Fine window size in pixels; must equal the coarse stride (8).
    pub window: i64,
    /// Trailing channels used by the sub-pixel stage (the rest drive the pixel stage).
    pub subpixel_channels: i64,
    /// Softmax temperature of the sub-pixel stage.
    pub subpixel_temperature: f64,
}

impl Default for BackboneSection {
    fn default() -> Self {
        BackboneSection {
            kind: BackboneKind::Sd21,
            unet_block: 2,
            timestep: 0.0,
            cnn: CnnSection::default(),
        }
    }
}

impl Default for CipmConfig {
    fn default() -> Self {
        CipmConfig {
            clip_tokens: 257,
            dim: 256,
            prompt_length: 77,
            scale: 0.2,
            mlp_hidden: 1024,
        }
    }
}

impl Default for CoarseConfig {
    fn default() -> Self {
        use LayerKind::*;
        CoarseConfig {
            d_model: 256,
            nhead: 8,
            layers: vec![SelfAttention, CrossAttention, SelfAttention, CrossAttention],
            temperature: 0.1,
            attention: CoarseAttention::Full,
            agg_size: DEFAULT_AGG_SIZE,
        }
    }
}

impl Default for FineConfig {
    fn default() -> Self {
        FineConfig {
            dims: vec![64, 128],
            window: 8,
            subpixel_channels: 8,
            subpixel_temperature: 10.0,
        }
    }
}

impl FineConfig {
    /// Width of the full-resolution fine features (`dims[0]`).
    pub fn fine_dim(&self) -> i64 {
        self.dims.first().copied().unwrap_or(0)
    }
    /// Width of the 1/4-resolution encoder features (`dims[1]`).
    pub fn mid_dim(&self) -> i64 {
        self.dims.get(1).copied().unwrap_or(0)
    }
}

impl ImdModelConfig {
    /// File name inside a weights folder.
    pub const FILE_NAME: &'static str = "imd.yaml";

    /// Read and validate `path`.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text =
            crate::io::paths::read_text_capped(path, "an imd.yaml", 1 << 20).map_err(|e| {
                ModelError::BadFile {
                    path: path.to_path_buf(),
                    reason: e.reason,
                }
            })?;
        Self::from_yaml_str(&text, path)
    }

    /// Parse and validate YAML text; `origin` names the file in errors.
    pub fn from_yaml_str(text: &str, origin: &Path) -> Result<Self, ModelError> {
        let config: ImdModelConfig =
            serde_yaml::from_str(text).map_err(|e| ModelError::InvalidConfig {
                path: origin.to_path_buf(),
                field: yaml_error_field(&e),
                reason: e.to_string(),
            })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Check every size; errors name the field.
    pub fn validate(&self, origin: &Path) -> Result<(), ModelError> {
        self.validate_backbone()
            .and_then(|()| self.validate_cipm())
            .and_then(|()| self.validate_coarse())
            .and_then(|()| self.validate_fine())
            .map_err(|(field, reason)| ModelError::InvalidConfig {
                path: origin.to_path_buf(),
                field,
                reason,
            })
    }

    fn validate_backbone(&self) -> Result<(), Invalid> {
        if !self.backbone.timestep.is_finite() || self.backbone.timestep < 0.0 {
            return Err(bad(
                "backbone.timestep",
                format!("{} must be a finite number ≥ 0", self.backbone.timestep),
            ));
        }
        if self.backbone.kind == BackboneKind::Cnn {
            let cnn = &self.backbone.cnn;
            for (k, w) in cnn.widths.iter().enumerate() {
                positive(&format!("backbone.cnn.widths[{k}]"), *w)?;
            }
            positive("backbone.cnn.feature_channels", cnn.feature_channels)?;
            positive("backbone.cnn.prompt_dim", cnn.prompt_dim)?;
            positive("backbone.cnn.token_grid", cnn.token_grid)?;
            if self.cipm.clip_tokens != cnn.token_grid * cnn.token_grid + 1 {
                return Err(bad(
                    "cipm.clip_tokens",
                    format!(
                        "{} must be backbone.cnn.token_grid² + 1 = {} for the CNN backbone",
                        self.cipm.clip_tokens,
                        cnn.token_grid * cnn.token_grid + 1
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_cipm(&self) -> Result<(), Invalid> {
        positive("cipm.clip_tokens", self.cipm.clip_tokens)?;
        positive("cipm.dim", self.cipm.dim)?;
        positive("cipm.prompt_length", self.cipm.prompt_length)?;
        positive("cipm.mlp_hidden", self.cipm.mlp_hidden)?;
        if !self.cipm.scale.is_finite() {
            return Err(bad(
                "cipm.scale",
                format!("{} is not finite", self.cipm.scale),
            ));
        }
        Ok(())
    }

    fn validate_coarse(&self) -> Result<(), Invalid> {
        positive("coarse.d_model", self.coarse.d_model)?;
        positive("coarse.nhead", self.coarse.nhead)?;
        if self.coarse.d_model % self.coarse.nhead != 0 {
            return Err(bad(
                "coarse.nhead",
                format!(
                    "{} does not divide d_model {}",
                    self.coarse.nhead, self.coarse.d_model
                ),
            ));
        }
        if self.coarse.d_model % 4 != 0 {
            return Err(bad(
                "coarse.d_model",
                format!(
                    "{} must be a multiple of 4 (the 2-D sine position encoding uses 4 channels per frequency)",
                    self.coarse.d_model
                ),
            ));
        }
        if self.coarse.layers.is_empty() {
            return Err(bad("coarse.layers", "must list at least one layer".into()));
        }
        if !(self.coarse.temperature.is_finite() && self.coarse.temperature > 0.0) {
            return Err(bad(
                "coarse.temperature",
                format!("{} must be a finite number > 0", self.coarse.temperature),
            ));
        }
        if !(1..=16).contains(&self.coarse.agg_size) {
            return Err(bad(
                "coarse.agg_size",
                format!("{} is not in 1..=16", self.coarse.agg_size),
            ));
        }
        Ok(())
    }

    fn validate_fine(&self) -> Result<(), Invalid> {
        if self.fine.dims.len() != 2 {
            return Err(bad(
                "fine.dims",
                format!(
                    "has {} entries, expected 2 (channels at 1/2 and 1/4 resolution)",
                    self.fine.dims.len()
                ),
            ));
        }
        positive("fine.dims[0]", self.fine.dims[0])?;
        positive("fine.dims[1]", self.fine.dims[1])?;
        if self.fine.window != crate::model::coarse::COARSE_STRIDE {
            return Err(bad(
                "fine.window",
                format!(
                    "{} must equal the coarse stride {} (fine windows tile the coarse cells)",
                    self.fine.window,
                    crate::model::coarse::COARSE_STRIDE
                ),
            ));
        }
        positive("fine.subpixel_channels", self.fine.subpixel_channels)?;
        if self.fine.subpixel_channels >= self.fine.fine_dim() {
            return Err(bad(
                "fine.subpixel_channels",
                format!(
                    "{} must be smaller than the fine width fine.dims[0] = {}",
                    self.fine.subpixel_channels,
                    self.fine.fine_dim()
                ),
            ));
        }
        if !(self.fine.subpixel_temperature.is_finite() && self.fine.subpixel_temperature > 0.0) {
            return Err(bad(
                "fine.subpixel_temperature",
                format!(
                    "{} must be a finite number > 0",
                    self.fine.subpixel_temperature
                ),
            ));
        }
        Ok(())
    }

    /// Write as YAML (used by tools that create weights folders).
    pub fn to_yaml_string(&self) -> String {
        // A plain struct of numbers, strings, bools and lists always serializes.
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// `dir/imd.yaml`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(Self::FILE_NAME)
    }
}

/// The dotted field a serde_yaml error points at, when it says (`cipm.dim: invalid type…`).
/// A field that fails its check and why (the caller adds the file).
type Invalid = (String, String);

fn bad(field: &str, reason: String) -> Invalid {
    (field.to_string(), reason)
}

fn positive(field: &str, v: i64) -> Result<(), Invalid> {
    if v > 0 {
        Ok(())
    } else {
        Err(bad(field, format!("{v} must be > 0")))
    }
}

fn yaml_error_field(e: &serde_yaml::Error) -> String {
    let msg = e.to_string();
    // serde_yaml prefixes nested errors with the path, e.g. "coarse.nhead: invalid type: …".
    match msg.split_once(": ") {
        Some((head, _)) if !head.contains(' ') => head.to_string(),
        _ => "<document>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ImdModelConfig, ModelError> {
        ImdModelConfig::from_yaml_str(text, Path::new("m/imd.yaml"))
    }

    fn field_of(err: ModelError) -> String {
        match err {
            ModelError::InvalidConfig { field, .. } => field,
            other => panic!("expected InvalidConfig, got {other}"),
        }
    }

    #[test]
    fn defaults_are_the_paper_sizes_and_round_trip() {
        let c = parse("description: x\n").unwrap();
        assert_eq!(c.coarse.d_model, 256);
        assert_eq!(c.coarse.layers.len(), 4);
        assert_eq!(c.cipm.scale, 0.2);
        assert_eq!(c.fine.dims, vec![64, 128]);
        assert_eq!(c.fine.subpixel_temperature, 10.0);
        let back = parse(&c.to_yaml_string()).unwrap();
        assert_eq!(back, c);
        let c = parse("coarse: { layers: [self, cross] }\n").unwrap();
        assert_eq!(
            c.coarse.layers,
            vec![LayerKind::SelfAttention, LayerKind::CrossAttention]
        );
    }

    #[test]
    fn attention_defaults_to_full_and_is_omitted_from_the_file_then() {
        let c = parse("description: x\n").unwrap();
        assert_eq!(c.coarse.attention, CoarseAttention::Full);
        assert_eq!(c.coarse.agg_size, 4);
        // Existing imd.yaml files (and training fingerprints) stay byte-identical.
        let text = c.to_yaml_string();
        assert!(
            !text.contains("attention") && !text.contains("agg_size"),
            "{text}"
        );
        let c = parse("coarse: { attention: aggregated, agg_size: 2 }\n").unwrap();
        assert_eq!(c.coarse.attention, CoarseAttention::Aggregated);
        assert_eq!(c.coarse.agg_size, 2);
        assert_eq!(parse(&c.to_yaml_string()).unwrap(), c);
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            ("coarse: { nhead: 3 }", "coarse.nhead"),
            ("coarse: { d_model: 250, nhead: 5 }", "coarse.d_model"),
            ("coarse: { layers: [] }", "coarse.layers"),
            ("coarse: { temperature: 0 }", "coarse.temperature"),
            ("coarse: { agg_size: 0 }", "coarse.agg_size"),
            ("cipm: { dim: 0 }", "cipm.dim"),
            ("cipm: { prompt_length: -1 }", "cipm.prompt_length"),
            ("fine: { dims: [64] }", "fine.dims"),
            ("fine: { window: 10 }", "fine.window"),
            ("fine: { subpixel_channels: 64 }", "fine.subpixel_channels"),
            (
                "fine: { subpixel_temperature: -1 }",
                "fine.subpixel_temperature",
            ),
            ("backbone: { timestep: -5 }", "backbone.timestep"),
        ];
        for (text, field) in cases {
            let err = parse(text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("m/imd.yaml"), "{msg}");
            assert_eq!(field_of(err), field, "{text}");
        }
        // Unknown keys and wrong types are rejected by serde, naming where.
        let err = parse("coarse: { d_modle: 3 }").unwrap_err();
        assert!(err.to_string().contains("d_modle"), "{err}");
        let err = parse("coarse: { layers: [self, sideways] }").unwrap_err();
        assert!(err.to_string().contains("sideways"), "{err}");
        assert_eq!(
            field_of(parse("cipm: { dim: abc }").unwrap_err()),
            "cipm.dim"
        );
    }
}
