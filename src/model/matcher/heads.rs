//! The trained heads (CIPM, coarse module, fine encoder, fine fusion) in one var store, and
//! `heads.safetensors` loading / saving.
//!
//! Tensor names are the var-store paths: `cipm.*`, `coarse.proj.*`, `coarse.layers.{i}.*`,
//! `fine.encoder.*`, `fine.fusion.*`. Loading rejects missing tensors, wrong shapes and any
//! tensor the heads do not have (`weights::Unexpected::Error`). Their forward pass is in
//! [`super::forward`].

use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::model::cipm::Cipm;
use crate::model::coarse::CoarseModule;
use crate::model::fine::{FineEncoder, FineFusion};
use crate::model::imd_config::ImdModelConfig;
use crate::model::weights;
use crate::model::ModelError;

/// File name of the heads' weights inside a weights folder.
pub const HEADS_FILE: &str = "heads.safetensors";

/// Backbone sizes the heads are built for ([`super::FeatureSource`]'s dimensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadDims {
    /// Coarse feature channels (coarse input), 640 for SD2.1.
    pub feature_channels: i64,
    /// Prompt token width (CIPM output), 1024 for SD2.1.
    pub context_dim: i64,
    /// Prompt-input token width (CIPM input), 1280 for SD2.1's CLIP ViT-H/14.
    pub clip_hidden: i64,
}

impl HeadDims {
    /// The sizes `source` gives, or `None` when it has no prompt inputs (no CIPM possible).
    pub fn of(source: &dyn super::FeatureSource) -> Option<HeadDims> {
        Some(HeadDims {
            feature_channels: source.feature_channels(),
            context_dim: source.prompt_dim(),
            clip_hidden: source.prompt_input_dim()?,
        })
    }
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
        weights::load_exact(&heads.vs, path)?;
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
