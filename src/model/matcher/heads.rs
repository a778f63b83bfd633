//! The trained heads (CIPM, coarse module, fine encoder, fine fusion) in one var store, and
//! `heads.safetensors` loading / saving.
//!
//! Tensor names are the var-store paths: `cipm.*`, `coarse.proj.*`, `coarse.layers.{i}.*`,
//! `fine.encoder.*`, `fine.fusion.*`. Loading rejects missing tensors, wrong shapes and any
//! tensor the heads do not have (`weights::Unexpected::Error`).

use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::source::FeatureSource;
use crate::model::cipm::Cipm;
use crate::model::coarse::matching::confidence_matrix;
use crate::model::coarse::transformer::{unflatten, CoarseFeatures};
use crate::model::coarse::{CoarseModule, ValidRegion};
use crate::model::fine::refine::{self, FineStage1};
use crate::model::fine::{FineEncoder, FineFusion};
use crate::model::imd_config::ImdModelConfig;
use crate::model::weights::{self, Unexpected, WeightFile};
use crate::model::ModelError;

/// File name of the heads' weights inside a weights folder.
pub const HEADS_FILE: &str = "heads.safetensors";

/// Backbone sizes the heads are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadDims {
    /// UNet feature channels (coarse input), 640 for SD2.1.
    pub feature_channels: i64,
    /// UNet cross-attention width (prompt output), 1024 for SD2.1.
    pub context_dim: i64,
    /// CLIP hidden size (CIPM input), 1280 for ViT-H/14.
    pub clip_hidden: i64,
}

/// The trainable part of IMD.
#[derive(Debug)]
pub struct ImdHeads {
    vs: VarStore,
    /// Cross-image interaction prompt module.
    pub cipm: Cipm,
    /// Projection + position encoding + transformer.
    pub coarse: CoarseModule,
    /// Image → 1/2 and 1/4 features.
    pub fine_encoder: FineEncoder,
    /// Coarse + encoder features → full-resolution fine features.
    pub fine_fusion: FineFusion,
}

impl ImdHeads {
    /// Build freshly initialised heads in float32 on `device`.
    pub fn new(config: &ImdModelConfig, dims: HeadDims, device: Device) -> Self {
        let vs = VarStore::new(device);
        let root = vs.root();
        let cipm = Cipm::new(
            &(&root / "cipm"),
            dims.clip_hidden,
            dims.context_dim,
            &config.cipm,
        );
        let coarse = CoarseModule::new(&(&root / "coarse"), dims.feature_channels, &config.coarse);
        let fine = &root / "fine";
        let fine_encoder = FineEncoder::new(&(&fine / "encoder"), &config.fine);
        let fine_fusion = FineFusion::new(&(&fine / "fusion"), config.coarse.d_model, &config.fine);
        init_parameters(&vs);
        ImdHeads {
            vs,
            cipm,
            coarse,
            fine_encoder,
            fine_fusion,
        }
    }

    /// Build the heads for `config` / `dims` and fill them from `path`, in `kind` on `device`.
    /// Every tensor must exist with its exact shape and the file may hold nothing else.
    pub fn load(
        path: &Path,
        config: &ImdModelConfig,
        dims: HeadDims,
        device: Device,
        kind: Kind,
    ) -> Result<Self, ModelError> {
        let mut heads = Self::new(config, dims, device);
        heads.vs.set_kind(kind);
        let file = WeightFile::open(path)?;
        weights::load_into(
            &heads.vs,
            "",
            &file,
            "",
            Unexpected::Error,
            &weights::no_alias,
        )?;
        heads.vs.freeze();
        Ok(heads)
    }

    /// Write all variables (parameters and batch-norm statistics) to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.vs.save(path).map_err(ModelError::torch(format!(
            "writing heads to {}",
            path.display()
        )))
    }

    /// The var store (for training: optimisers, `set_kind`, `unfreeze`).
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// Mutable access to the var store.
    pub fn var_store_mut(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    /// Parameter kind.
    pub fn kind(&self) -> Kind {
        self.vs.kind()
    }
}

/// Efficient LoFTR's initialisation: Xavier-uniform for the transformer's matrices,
/// Kaiming-normal (fan-out, ReLU gain) for the fine convolutions; batch norms start at identity
/// and the CIPM keeps libtorch's defaults.
fn init_parameters(vs: &VarStore) {
    let _guard = tch::no_grad_guard();
    // Name order, not the HashMap's: the random draws must land on the same variables in
    // every process for a seeded initialisation to be reproducible.
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let size = var.size();
        if size.len() < 2 || !name.ends_with(".weight") {
            continue;
        }
        let receptive: i64 = size[2..].iter().product();
        let (fan_in, fan_out) = (size[1] * receptive, size[0] * receptive);
        let fresh = if name.starts_with("coarse.layers.") {
            let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
            Tensor::rand(&size, (var.kind(), var.device())) * (2.0 * a) - a
        } else if name.starts_with("fine.") {
            Tensor::randn(&size, (var.kind(), var.device())) * (2.0 / fan_out as f64).sqrt()
        } else {
            continue;
        };
        let mut var = var;
        var.copy_(&fresh);
    }
}

/// One batch of B image pairs of equal (padded) size, for [`ImdHeads::forward_pair`].
#[derive(Debug)]
pub struct PairBatch<'a> {
    /// Image 0 `[B, 3, H, W]`, RGB in [−1, 1] (H, W multiples of 8).
    pub image0: &'a Tensor,
    /// Image 1 `[B, 3, H, W]`.
    pub image1: &'a Tensor,
    /// Image 0 CLIP tokens `[B, N, D_c]`.
    pub clip0: &'a Tensor,
    /// Image 1 CLIP tokens `[B, N, D_c]`.
    pub clip1: &'a Tensor,
    /// Image 0 VAE latents `[B, 4, H/8, W/8]`.
    pub latents0: &'a Tensor,
    /// Image 1 VAE latents `[B, 4, H/8, W/8]`.
    pub latents1: &'a Tensor,
    /// Unpadded coarse region of each image-0 item.
    pub valid0: &'a [ValidRegion],
    /// Unpadded coarse region of each image-1 item.
    pub valid1: &'a [ValidRegion],
}

/// Differentiable outputs of [`ImdHeads::forward_pair`].
#[derive(Debug)]
pub struct PairForward {
    /// CIPM prompts `[B, L, D]` of image 0 and image 1.
    pub prompts: (Tensor, Tensor),
    /// Transformed coarse features, grids and valid regions.
    pub coarse: CoarseFeatures,
    /// Coarse dual-softmax matrix `[B, h0·w0, h1·w1]` (padding masked).
    pub conf: Tensor,
    /// Full-resolution fine features `[B, c1, H, W]` of image 0.
    pub fine0: Tensor,
    /// Full-resolution fine features of image 1.
    pub fine1: Tensor,
}

impl PairForward {
    /// Fine stage-1 matrix and sub-pixel similarities at coarse matches `(b, i, j)`
    /// (predicted or ground-truth, int64 `[M]`).
    pub fn fine_stage1(
        &self,
        b: &Tensor,
        i: &Tensor,
        j: &Tensor,
        subpixel_channels: i64,
    ) -> FineStage1 {
        let (x0, y0) = self.coarse.grid0.cells_of(i);
        let (x1, y1) = self.coarse.grid1.cells_of(j);
        let w0 = refine::windows0(&self.fine0, b, &x0, &y0);
        let w1 = refine::windows1(&self.fine1, b, &x1, &y1);
        refine::stage1(&w0, &w1, subpixel_channels)
    }
}

impl ImdHeads {
    /// Steps 1–5 of the forward pass for a batch of pairs, with gradients to the heads (and
    /// through the frozen UNet to the prompts). `train` puts batch norms in training mode.
    /// Match extraction and refinement are left to the caller (training pads predictions
    /// with ground truth first): [`crate::model::coarse::matching::extract_matches`],
    /// [`PairForward::fine_stage1`], [`refine::subpixel_expectation`].
    pub fn forward_pair(
        &self,
        source: &dyn FeatureSource,
        batch: &PairBatch<'_>,
        config: &ImdModelConfig,
        train: bool,
    ) -> Result<PairForward, ModelError> {
        let b = batch.image0.size()[0];
        let kind = self.kind();
        // 1. CIPM.
        let (p0, p1) = self
            .cipm
            .forward(&batch.clip0.to_kind(kind), &batch.clip1.to_kind(kind))?;
        // 2. UNet on both images as one batch.
        let latents = Tensor::cat(&[batch.latents0, batch.latents1], 0);
        let prompts = Tensor::cat(&[&p0, &p1], 0).to_kind(source.kind());
        let features = source.unet_features(&latents, &prompts)?.to_kind(kind);
        // 3. Coarse transformer.
        let coarse = self.coarse.forward(
            &features.narrow(0, 0, b),
            &features.narrow(0, b, b),
            batch.valid0,
            batch.valid1,
        );
        // 4. Coarse confidence (padding masked).
        let device = coarse.feat0.device();
        let mask0 = coarse.grid0.padding_mask(&coarse.valid0, device);
        let mask1 = coarse.grid1.padding_mask(&coarse.valid1, device);
        let conf = confidence_matrix(
            &coarse.feat0,
            &coarse.feat1,
            Some(&mask0),
            Some(&mask1),
            config.coarse.temperature,
        );
        // 5. Fine features (both images batched: equal sizes).
        let scale = (self.coarse.d_model() as f64).sqrt();
        let c = Tensor::cat(
            &[
                unflatten(&coarse.feat0, coarse.grid0),
                unflatten(&coarse.feat1, coarse.grid1),
            ],
            0,
        ) / scale;
        let images = Tensor::cat(&[batch.image0, batch.image1], 0).to_kind(kind);
        let pyramid = self.fine_encoder.forward_t(&images, train);
        let fine = self.fine_fusion.forward_t(&c, &pyramid, train);
        Ok(PairForward {
            prompts: (p0, p1),
            coarse,
            conf,
            fine0: fine.narrow(0, 0, b),
            fine1: fine.narrow(0, b, b),
        })
    }
}
