//! A small plain-CNN backbone: the second [`FeatureSource`], and the proof that the backbone
//! seam names what the heads need rather than Stable Diffusion's internals.
//!
//! - codes: three 3×3 stride-2 convolutions with ReLU, image → `[B, widths[2], H/8, W/8]`;
//! - coarse features: a 3×3 convolution of the codes plus a linear projection of the prompt's
//!   mean token, broadcast over the map (so the CIPM's cross-image prompt conditions the
//!   features, as the UNet's cross attention does for SD2.1);
//! - prompt inputs: one global token (mean of the codes) followed by `token_grid²` average-pooled
//!   cells, projected to `prompt_input_dim = widths[2]`; the embedding is the global token.
//!
//! Weights live in `cnn_backbone.safetensors` next to `heads.safetensors`; `imd.yaml` selects
//! it with `backbone: { kind: cnn }`.

use std::path::Path;

use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

use super::imd_config::CnnSection;
use super::source::{FeatureSource, PromptInputs};
use super::weights;
use super::ModelError;

/// File name of the CNN backbone's weights inside a weights folder.
pub const CNN_BACKBONE_FILE: &str = "cnn_backbone.safetensors";

/// The plain CNN; see the module doc.
#[derive(Debug)]
pub struct CnnBackbone {
    vs: VarStore,
    convs: [nn::Conv2D; 3],
    head: nn::Conv2D,
    prompt_proj: nn::Linear,
    token_proj: nn::Linear,
    section: CnnSection,
}

impl CnnBackbone {
    /// Freshly initialised weights (libtorch's default initialisation, seeded by the caller
    /// with `tch::manual_seed`) in float32 on `device`.
    pub fn new(section: &CnnSection, device: Device) -> Self {
        let vs = VarStore::new(device);
        let root = vs.root();
        let stride2 = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let [w0, w1, w2] = section.widths;
        let convs = [
            nn::conv2d(&root / "conv0", 3, w0, 3, stride2),
            nn::conv2d(&root / "conv1", w0, w1, 3, stride2),
            nn::conv2d(&root / "conv2", w1, w2, 3, stride2),
        ];
        let same = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let head = nn::conv2d(&root / "head", w2, section.feature_channels, 3, same);
        let prompt_proj = nn::linear(
            &root / "prompt_proj",
            section.prompt_dim,
            section.feature_channels,
            Default::default(),
        );
        let token_proj = nn::linear(&root / "token_proj", w2, w2, Default::default());
        CnnBackbone {
            vs,
            convs,
            head,
            prompt_proj,
            token_proj,
            section: section.clone(),
        }
    }

    /// Build for `section` and fill from `dir/cnn_backbone.safetensors`, in `kind` on
    /// `device`; every tensor must be there with its shape, and nothing else.
    pub fn load(
        dir: &Path,
        section: &CnnSection,
        device: Device,
        kind: Kind,
    ) -> Result<Self, ModelError> {
        let path = dir.join(CNN_BACKBONE_FILE);
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                dir: dir.to_path_buf(),
                file: CNN_BACKBONE_FILE.into(),
                hint: "imd.yaml names the CNN backbone (backbone.kind: cnn)".into(),
            });
        }
        let mut cnn = Self::new(section, device);
        cnn.vs.set_kind(kind);
        weights::load_exact(&cnn.vs, &path)?;
        cnn.vs.freeze();
        Ok(cnn)
    }

    /// Write the weights to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.vs.save(path).map_err(ModelError::torch(format!(
            "writing the CNN backbone to {}",
            path.display()
        )))
    }

    fn check_images(&self, images: &Tensor) -> Result<(), ModelError> {
        match images.size().as_slice() {
            [_, 3, h, w] if h % 8 == 0 && w % 8 == 0 && *h > 0 && *w > 0 => Ok(()),
            other => Err(ModelError::InvalidInput {
                what: "CNN backbone images".into(),
                reason: format!(
                    "have shape {other:?}, expected [B, 3, H, W] with H, W multiples of 8"
                ),
            }),
        }
    }
}

impl FeatureSource for CnnBackbone {
    fn device(&self) -> Device {
        self.vs.device()
    }
    fn kind(&self) -> Kind {
        self.vs.kind()
    }
    fn feature_channels(&self) -> i64 {
        self.section.feature_channels
    }
    fn prompt_dim(&self) -> i64 {
        self.section.prompt_dim
    }
    fn prompt_input_dim(&self) -> Option<i64> {
        Some(self.section.widths[2])
    }
    fn encode(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        self.check_images(images)?;
        let x = images.to_kind(self.kind());
        Ok(self.convs.iter().fold(x, |x, conv| conv.forward(&x).relu()))
    }
    fn coarse_features(&self, codes: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError> {
        let (b, d) = (codes.size()[0], self.section.prompt_dim);
        match prompts.size().as_slice() {
            [pb, _, pd] if *pb == b && *pd == d => {}
            other => {
                return Err(ModelError::InvalidInput {
                    what: "CNN backbone prompts".into(),
                    reason: format!("have shape {other:?}, expected [{b}, L, {d}]"),
                })
            }
        }
        let bias = self
            .prompt_proj
            .forward(&prompts.mean_dim(1, false, prompts.kind()));
        Ok(self.head.forward(codes) + bias.unsqueeze(-1).unsqueeze(-1))
    }
    fn prompt_inputs(&self, images: &Tensor) -> Result<Option<PromptInputs>, ModelError> {
        // [0, 1] → the [−1, 1] the convolutions were built for.
        let codes = self.encode(&(images * 2.0 - 1.0))?;
        let g = self.section.token_grid;
        let cells = codes
            .adaptive_avg_pool2d([g, g])
            .flatten(2, 3)
            .transpose(1, 2);
        let global = codes.mean_dim([2, 3].as_slice(), false, codes.kind());
        let tokens = Tensor::cat(&[global.unsqueeze(1), cells], 1);
        let tokens = self.token_proj.forward(&tokens);
        Ok(Some(PromptInputs {
            embedding: tokens.select(1, 0),
            tokens,
        }))
    }
}
