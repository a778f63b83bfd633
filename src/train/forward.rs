//! Training's entry into the network: a batch's images through the backbone's per-image
//! encoding and [`ImdHeads::forward_pair`] — the forward pass inference runs
//! ([`crate::model::matcher::forward`]); training only adds losses on its outputs.

use tch::Tensor;

use super::batch::TrainBatch;
use super::TrainError;
use crate::model::coarse::{valid_regions_from_mask, ValidRegion};
use crate::model::imd_config::ImdModelConfig;
use crate::model::matcher::{FeatureSource, ImdHeads, PairBatch, PairForward, PairInputs};

/// Images of a batch and their unpadded coarse regions.
#[derive(Debug)]
pub struct TrainImages<'a> {
    /// Image 0 `[N, 3, H, W]` RGB in [0, 1] (H, W multiples of 8).
    pub image0: &'a Tensor,
    /// Image 1 `[N, 3, H, W]`.
    pub image1: &'a Tensor,
    /// Unpadded coarse region of each image-0 item.
    pub valid0: &'a [ValidRegion],
    /// Unpadded coarse region of each image-1 item.
    pub valid1: &'a [ValidRegion],
}

/// The valid coarse regions of a batch's items: from the padding masks, or whole grids when
/// nothing is padded.
pub fn batch_valid_regions(batch: &TrainBatch) -> (Vec<ValidRegion>, Vec<ValidRegion>) {
    let n = batch.image0.size()[0] as usize;
    let regions = |mask: &Option<Tensor>, hw: (i64, i64)| match mask {
        Some(m) => valid_regions_from_mask(m),
        None => vec![
            ValidRegion {
                height: hw.0,
                width: hw.1,
            };
            n
        ],
    };
    (
        regions(&batch.layout.mask0, batch.layout.hw0),
        regions(&batch.layout.mask1, batch.layout.hw1),
    )
}

/// Backbone encoding (with a graph only when `backbone_grad`) and the shared forward pass;
/// `train` puts batch norms in training mode.
pub fn forward_images(
    source: &dyn FeatureSource,
    heads: &ImdHeads,
    images: &TrainImages<'_>,
    model: &ImdModelConfig,
    backbone_grad: bool,
    train: bool,
) -> Result<PairForward, TrainError> {
    let signed0 = images.image0 * 2.0 - 1.0;
    let signed1 = images.image1 * 2.0 - 1.0;
    let prompt_inputs = |x: &Tensor| -> Result<Tensor, TrainError> {
        Ok(source
            .prompt_inputs(x)?
            .ok_or_else(|| {
                TrainError::input(
                    "backbone",
                    "gives no prompt inputs (SD2.1: no CLIP image encoder)".to_string(),
                )
            })?
            .tokens)
    };
    // Both images in one backbone call when their sizes agree, as inference batches them.
    let encode = || -> Result<(Tensor, Tensor, Tensor, Tensor), TrainError> {
        if images.image0.size() == images.image1.size() {
            let n = images.image0.size()[0];
            let codes = source.encode(&Tensor::cat(&[&signed0, &signed1], 0))?;
            let tokens = prompt_inputs(&Tensor::cat(&[images.image0, images.image1], 0))?;
            Ok((
                codes.narrow(0, 0, n),
                codes.narrow(0, n, n),
                tokens.narrow(0, 0, n),
                tokens.narrow(0, n, n),
            ))
        } else {
            Ok((
                source.encode(&signed0)?,
                source.encode(&signed1)?,
                prompt_inputs(images.image0)?,
                prompt_inputs(images.image1)?,
            ))
        }
    };
    let (codes0, codes1, prompt_inputs0, prompt_inputs1) = if backbone_grad {
        encode()?
    } else {
        tch::no_grad(encode)?
    };
    Ok(heads.forward_pair(
        source,
        &PairBatch {
            inputs: PairInputs {
                prompt_inputs0: &prompt_inputs0,
                prompt_inputs1: &prompt_inputs1,
                codes0: &codes0,
                codes1: &codes1,
                valid0: images.valid0,
                valid1: images.valid1,
            },
            image0: &signed0,
            image1: &signed1,
        },
        model,
        train,
    )?)
}
