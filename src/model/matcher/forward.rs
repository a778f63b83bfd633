//! The IMD network's forward pass for a batch of pairs: the one implementation that inference
//! ([`super::ImdMatcher`]: `imd match`, the tracker, `imd eval`) and training
//! (`crate::train::trainer`) both run. Training adds losses on the intermediate outputs
//! ([`PairForward::conf`], [`PairForward::fine_stage1`]), not a second network.
//!
//! 1. CIPM prompts from both images' prompt inputs;
//! 2. the backbone's coarse features of both images as one batch (codes bottom-right padded
//!    to a common size), conditioned on the prompts;
//! 3. coarse transformer; 4. dual-softmax confidence (padding masked);
//! 5. fine features: each item's transformed coarse features ÷ √d **cropped to its valid
//!    region** are fused with fine-encoder features of the same crop of its image, then
//!    zero-padded back to the batch size — so padding never leaks into the fine features and a
//!    padded training item sees exactly what inference sees for that image alone.
//!
//! Steps 1–4 are [`ImdHeads::coarse_pass`], step 5 [`ImdHeads::fine_pass`]: inference stops
//! after step 4 when there is no coarse match, and feeds step 5 the encoder features it cached
//! per image; [`ImdHeads::forward_pair`] runs both for training.

use tch::Tensor;

use super::heads::ImdHeads;
use crate::model::coarse::matching::{confidence_matrix, extract_matches, CoarseMatches};
use crate::model::coarse::transformer::{unflatten, CoarseFeatures};
use crate::model::coarse::{CoarseMatchParams, ValidRegion, COARSE_STRIDE};
use crate::model::fine::refine::{self, FineMatches, FineStage1, WindowCells};
use crate::model::fine::FinePyramid;
use crate::model::imd_config::ImdModelConfig;
use crate::model::source::FeatureSource;
use crate::model::ModelError;

/// What steps 1–4 read for a batch of B pairs.
#[derive(Debug)]
pub struct PairInputs<'a> {
    /// Image 0 prompt inputs `[B, N, prompt_input_dim]` ([`super::PromptInputs::tokens`]).
    pub prompt_inputs0: &'a Tensor,
    /// Image 1 prompt inputs.
    pub prompt_inputs1: &'a Tensor,
    /// Image 0 backbone codes `[B, k, h0, w0]` ([`FeatureSource::encode`]).
    pub codes0: &'a Tensor,
    /// Image 1 backbone codes `[B, k, h1, w1]`.
    pub codes1: &'a Tensor,
    /// Unpadded coarse region of each image-0 item.
    pub valid0: &'a [ValidRegion],
    /// Unpadded coarse region of each image-1 item.
    pub valid1: &'a [ValidRegion],
}

/// Where step 5 gets its fine-encoder features.
#[derive(Debug, Clone, Copy)]
pub enum FineInputs<'a> {
    /// The network images `[B, 3, H, W]` in [−1, 1] (padded like the codes); the encoder runs
    /// on each item's valid crop.
    Images {
        /// Image 0.
        image0: &'a Tensor,
        /// Image 1.
        image1: &'a Tensor,
    },
    /// Encoder features computed earlier on each item's unpadded image, one `[1, …]`
    /// pyramid per batch item (inference caches them per image).
    Encoded {
        /// Image 0 items.
        pyramid0: &'a [&'a FinePyramid],
        /// Image 1 items.
        pyramid1: &'a [&'a FinePyramid],
    },
}

/// One batch of B pairs for [`ImdHeads::forward_pair`] (training).
#[derive(Debug)]
pub struct PairBatch<'a> {
    /// Prompt inputs, codes and valid regions.
    pub inputs: PairInputs<'a>,
    /// Image 0 `[B, 3, H, W]` RGB in [−1, 1] (H, W multiples of 8).
    pub image0: &'a Tensor,
    /// Image 1 `[B, 3, H, W]`.
    pub image1: &'a Tensor,
}

/// A stage of [`ImdHeads::coarse_pass`] that just finished (for stage timings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardStage {
    /// Step 1, the CIPM prompts.
    Prompts,
    /// Step 2, the backbone's coarse features.
    BackboneFeatures,
    /// Steps 3–4, transformer and confidence matrix.
    Coarse,
}

/// Outputs of steps 1–4.
#[derive(Debug)]
pub struct CoarsePass {
    /// CIPM prompts `[B, L, D]` of image 0 and image 1.
    pub prompts: (Tensor, Tensor),
    /// Transformed coarse features, grids and valid regions.
    pub coarse: CoarseFeatures,
    /// Coarse dual-softmax matrix `[B, h0·w0, h1·w1]` (padding masked).
    pub conf: Tensor,
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
    /// Full-resolution fine features `[B, c1, H, W]` of image 0 (zero outside each item's
    /// valid region).
    pub fine0: Tensor,
    /// Full-resolution fine features of image 1.
    pub fine1: Tensor,
}

impl PairForward {
    /// Coarse matches of [`Self::conf`] (threshold, border, mutual nearest neighbour).
    pub fn coarse_matches(&self, params: CoarseMatchParams) -> CoarseMatches {
        coarse_matches(&self.conf, &self.coarse, params)
    }

    /// Two-stage refinement of `matches` in network pixels (what inference returns).
    pub fn refine(
        &self,
        matches: &CoarseMatches,
        subpixel_channels: i64,
        temperature: f64,
    ) -> FineMatches {
        refine_matches(
            &self.fine0,
            &self.fine1,
            &self.coarse,
            matches,
            subpixel_channels,
            temperature,
        )
    }

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

/// Coarse matches of a confidence matrix over `coarse`'s grids and valid regions.
pub fn coarse_matches(
    conf: &Tensor,
    coarse: &CoarseFeatures,
    params: CoarseMatchParams,
) -> CoarseMatches {
    extract_matches(
        conf,
        coarse.grid0,
        coarse.grid1,
        &coarse.valid0,
        &coarse.valid1,
        params,
    )
}

/// Both refinement stages at `matches` on the fine features of step 5, in network pixels.
pub fn refine_matches(
    fine0: &Tensor,
    fine1: &Tensor,
    coarse: &CoarseFeatures,
    matches: &CoarseMatches,
    subpixel_channels: i64,
    temperature: f64,
) -> FineMatches {
    let (x0, y0) = coarse.grid0.cells_of(&matches.i_ids);
    let (x1, y1) = coarse.grid1.cells_of(&matches.j_ids);
    let cells = WindowCells {
        b: matches.b_ids.shallow_clone(),
        x0,
        y0,
        x1,
        y1,
    };
    refine::refine(fine0, fine1, &cells, subpixel_channels, temperature)
}

impl ImdHeads {
    /// Steps 1–4 for a batch of pairs, with gradients to the heads (and through the frozen
    /// backbone to the prompts). `on_stage` is told when each stage is done.
    pub fn coarse_pass(
        &self,
        source: &dyn FeatureSource,
        inputs: &PairInputs<'_>,
        temperature: f64,
        on_stage: &mut dyn FnMut(ForwardStage),
    ) -> Result<CoarsePass, ModelError> {
        let b = inputs.codes0.size()[0];
        if inputs.codes1.size()[0] != b || inputs.valid0.len() as i64 != b {
            return Err(ModelError::InvalidInput {
                what: "pair batch".into(),
                reason: format!(
                    "has {b} image-0 codes, {} image-1 codes and {}/{} valid regions",
                    inputs.codes1.size()[0],
                    inputs.valid0.len(),
                    inputs.valid1.len()
                ),
            });
        }
        let kind = self.kind();
        // 1. CIPM: each image's prompt, conditioned on the other.
        let (p0, p1) = self.cipm.forward(
            &inputs.prompt_inputs0.to_kind(kind),
            &inputs.prompt_inputs1.to_kind(kind),
        )?;
        on_stage(ForwardStage::Prompts);
        // 2. Backbone features, both images as one batch.
        let codes = pad_to_common(inputs.codes0, inputs.codes1);
        let prompts = Tensor::cat(&[&p0, &p1], 0).to_kind(source.kind());
        let features = source.coarse_features(&codes, &prompts)?.to_kind(kind);
        on_stage(ForwardStage::BackboneFeatures);
        // 3. Coarse transformer.
        let coarse = self.coarse.forward(
            &features.narrow(0, 0, b),
            &features.narrow(0, b, b),
            inputs.valid0,
            inputs.valid1,
        );
        // 4. Coarse confidence; masks only when something is padded (an all-true mask
        //    changes no value, and skipping it saves a pass).
        let padded = coarse.valid0.iter().any(|v| *v != coarse.grid0.full())
            || coarse.valid1.iter().any(|v| *v != coarse.grid1.full());
        let (mask0, mask1) = if padded {
            let device = coarse.feat0.device();
            (
                Some(coarse.grid0.padding_mask(&coarse.valid0, device)),
                Some(coarse.grid1.padding_mask(&coarse.valid1, device)),
            )
        } else {
            (None, None)
        };
        let conf = confidence_matrix(
            &coarse.feat0,
            &coarse.feat1,
            mask0.as_ref(),
            mask1.as_ref(),
            temperature,
        );
        on_stage(ForwardStage::Coarse);
        Ok(CoarsePass {
            prompts: (p0, p1),
            coarse,
            conf,
        })
    }

    /// Step 5: full-resolution fine features `(fine0, fine1)`, each `[B, c1, 8·h, 8·w]` of the
    /// coarse grid. Items with the same valid region share one encoder / fusion batch (so
    /// batch-norm statistics in training mode cover them together).
    pub fn fine_pass(
        &self,
        coarse: &CoarseFeatures,
        fine: FineInputs<'_>,
        train: bool,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let kind = self.kind();
        let scale = (self.coarse.d_model() as f64).sqrt();
        let valid = [&coarse.valid0, &coarse.valid1];
        let grids = [coarse.grid0, coarse.grid1];
        let feats = [
            unflatten(&coarse.feat0, coarse.grid0),
            unflatten(&coarse.feat1, coarse.grid1),
        ];
        // (side, item) grouped by valid region, in batch order.
        let mut groups: Vec<(ValidRegion, Vec<(usize, usize)>)> = Vec::new();
        for (side, regions) in valid.iter().enumerate() {
            for (item, region) in regions.iter().enumerate() {
                match groups.iter_mut().find(|(r, _)| r == region) {
                    Some((_, members)) => members.push((side, item)),
                    None => groups.push((*region, vec![(side, item)])),
                }
            }
        }
        let mut out: [Vec<Option<Tensor>>; 2] = [
            (0..coarse.valid0.len()).map(|_| None).collect(),
            (0..coarse.valid1.len()).map(|_| None).collect(),
        ];
        for (region, members) in &groups {
            let crop = |t: &Tensor, item: usize, stride: i64| {
                t.narrow(0, item as i64, 1)
                    .narrow(2, 0, region.height * stride)
                    .narrow(3, 0, region.width * stride)
            };
            let c: Vec<Tensor> = members
                .iter()
                .map(|&(s, i)| crop(&feats[s], i, 1))
                .collect();
            let c = Tensor::cat(&c, 0) / scale;
            let pyramid = match fine {
                FineInputs::Images { image0, image1 } => {
                    let images = [image0, image1];
                    let x: Vec<Tensor> = members
                        .iter()
                        .map(|&(s, i)| crop(images[s], i, COARSE_STRIDE))
                        .collect();
                    self.fine_encoder
                        .forward_t(&Tensor::cat(&x, 0).to_kind(kind), train)
                }
                FineInputs::Encoded { pyramid0, pyramid1 } => {
                    let pyramids = [pyramid0, pyramid1];
                    let mut parts = Vec::with_capacity(members.len());
                    for &(s, i) in members {
                        let p = pyramids[s].get(i).ok_or_else(|| ModelError::InvalidInput {
                            what: "fine encoder features".into(),
                            reason: format!("missing for image {s} item {i}"),
                        })?;
                        check_pyramid(p, *region)?;
                        parts.push(*p);
                    }
                    FinePyramid::cat(&parts)
                }
            };
            let fused = self.fine_fusion.forward_t(&c, &pyramid, train);
            for (k, &(s, i)) in members.iter().enumerate() {
                let f = fused.narrow(0, k as i64, 1);
                let (h, w) = (
                    grids[s].height * COARSE_STRIDE,
                    grids[s].width * COARSE_STRIDE,
                );
                let (fh, fw) = (region.height * COARSE_STRIDE, region.width * COARSE_STRIDE);
                out[s][i] = Some(if (fh, fw) == (h, w) {
                    f
                } else {
                    // Zero outside the valid region: what refinement's window padding reads
                    // at the edge of an unpadded image.
                    f.constant_pad_nd([0, w - fw, 0, h - fh])
                });
            }
        }
        let [out0, out1] = out;
        let side = |items: Vec<Option<Tensor>>| -> Tensor {
            let items: Vec<Tensor> = items.into_iter().flatten().collect();
            Tensor::cat(&items, 0)
        };
        Ok((side(out0), side(out1)))
    }

    /// Steps 1–5 for a batch of pairs (training; `train` puts batch norms in training mode).
    /// Match extraction and refinement are left to the caller (training pads predictions with
    /// ground truth first): [`PairForward::coarse_matches`], [`PairForward::fine_stage1`],
    /// [`refine::subpixel_expectation`]; inference's [`PairForward::refine`].
    pub fn forward_pair(
        &self,
        source: &dyn FeatureSource,
        batch: &PairBatch<'_>,
        config: &ImdModelConfig,
        train: bool,
    ) -> Result<PairForward, ModelError> {
        let pass = self.coarse_pass(
            source,
            &batch.inputs,
            config.coarse.temperature,
            &mut |_| {},
        )?;
        let (fine0, fine1) = self.fine_pass(
            &pass.coarse,
            FineInputs::Images {
                image0: batch.image0,
                image1: batch.image1,
            },
            train,
        )?;
        Ok(PairForward {
            prompts: pass.prompts,
            coarse: pass.coarse,
            conf: pass.conf,
            fine0,
            fine1,
        })
    }
}

/// A cached pyramid must be the encoder's output for an image of `region`'s size.
fn check_pyramid(p: &FinePyramid, region: ValidRegion) -> Result<(), ModelError> {
    let (h, w) = (region.height * COARSE_STRIDE, region.width * COARSE_STRIDE);
    let s1 = p.x1.size();
    if s1.len() != 4 || s1[0] != 1 || s1[2] != h / 2 || s1[3] != w / 2 {
        return Err(ModelError::InvalidInput {
            what: "fine encoder features".into(),
            reason: format!(
                "have shape {s1:?}, expected [1, c, {}, {}] for a {h}×{w} image",
                h / 2,
                w / 2
            ),
        });
    }
    Ok(())
}

/// Stack two `[B, k, h, w]` code batches into `[2B, k, H, W]`, zero-padding bottom-right to
/// the larger size.
fn pad_to_common(a: &Tensor, b: &Tensor) -> Tensor {
    let (sa, sb) = (a.size(), b.size());
    let (h, w) = (sa[2].max(sb[2]), sa[3].max(sb[3]));
    let pad = |t: &Tensor, s: &[i64]| {
        if s[2] == h && s[3] == w {
            t.shallow_clone()
        } else {
            t.constant_pad_nd([0, w - s[3], 0, h - s[2]])
        }
    };
    Tensor::cat(&[pad(a, &sa), pad(b, &sb)], 0)
}
