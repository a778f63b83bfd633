//! Zero-shot matching (no trained heads): DIFT-style mutual nearest neighbours on the SD2.1
//! UNet features, so that the public SD2.1 weights alone give matches.
//!
//! Each image's UNet features (`up_blocks[k]` output at 1/8, the empty-prompt embedding as
//! context, t = 0, VAE posterior mean, no noise) are L2-normalised per cell; the cosine
//! similarity of every cell pair is computed, and a pair is kept when each cell is the
//! other's most similar cell (mutual nearest neighbour), both cells lie at least `border`
//! cells inside their image, and the similarity exceeds `min_similarity`.
//!
//! **Confidence** of a match is its cosine similarity clamped to `[0, 1]`. It is comparable
//! between pairs of one model, not calibrated as a probability (unlike the full model's
//! dual-softmax confidence).
//!
//! A match's point is the centre of each cell (`8·x_c + 3.5` in network pixels, see
//! [`crate::model::coarse::CoarseGrid::cell_centre`]): no trained fine stage exists to refine it.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::coarse::CoarseGrid;
use super::weights::WeightFile;
use super::ModelError;

/// File holding the empty-prompt embedding (tensor `prompt`, `[1, L, D]`).
pub const EMPTY_PROMPT_FILE: &str = "empty_prompt.safetensors";
/// Sequence length of the zero prompt used when [`EMPTY_PROMPT_FILE`] is absent.
pub const FALLBACK_PROMPT_LENGTH: i64 = 77;

/// Zero-shot match selection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZeroShotParams {
    /// Cells removed at each image edge.
    pub border: i64,
    /// Keep matches whose cosine similarity is above this.
    pub min_similarity: f64,
}

/// Zero-shot matches between two cell grids (int64 / float32 tensors of length M).
#[derive(Debug)]
pub struct ZeroShotMatches {
    /// Flat cell index in image 0.
    pub i_ids: Tensor,
    /// Flat cell index in image 1.
    pub j_ids: Tensor,
    /// Cosine similarity clamped to [0, 1].
    pub confidence: Tensor,
}

/// The UNet context for zero-shot features: `dir/empty_prompt.safetensors` (tensor `prompt`,
/// `[1, L, context_dim]`), or zeros `[1, 77, context_dim]` with a warning when the file is
/// absent. Returned on `device` in `kind`.
pub fn load_empty_prompt(
    dir: &Path,
    context_dim: i64,
    device: Device,
    kind: Kind,
) -> Result<Tensor, ModelError> {
    let path = dir.join(EMPTY_PROMPT_FILE);
    if !path.exists() {
        log::warn!(
            "{} not found: zero-shot features use an all-zero prompt [1, {FALLBACK_PROMPT_LENGTH}, {context_dim}] \
             instead of the SD2.1 empty-text embedding (models/prepare_weights.py writes it)",
            path.display()
        );
        return Ok(Tensor::zeros(
            [1, FALLBACK_PROMPT_LENGTH, context_dim],
            (kind, device),
        ));
    }
    let file = WeightFile::open(&path)?;
    let prompt = file.tensor("prompt")?;
    let size = prompt.size();
    if size.len() != 3 || size[0] != 1 || size[2] != context_dim {
        return Err(ModelError::ShapeMismatch {
            tensor: "prompt".into(),
            file: path,
            expected: vec![1, -1, context_dim],
            found: size,
        });
    }
    Ok(prompt.to_kind(kind).to_device(device))
}

/// Mutual nearest neighbours of UNet features `feat0 [1, C, h0, w0]`, `feat1 [1, C, h1, w1]`
/// → matches between their cell grids. Handles empty results.
pub fn match_features(feat0: &Tensor, feat1: &Tensor, params: ZeroShotParams) -> ZeroShotMatches {
    let _guard = tch::no_grad_guard();
    let grid = |f: &Tensor| {
        let s = f.size();
        CoarseGrid::new(s[2], s[3])
    };
    let (g0, g1) = (grid(feat0), grid(feat1));
    let flat = |f: &Tensor| {
        let f = f.to_kind(Kind::Float).flatten(2, 3).squeeze_dim(0); // [C, L]
        let norm = f.norm_scalaropt_dim(2.0, [0], true).clamp_min(1e-12);
        f / norm
    };
    let (a, b) = (flat(feat0), flat(feat1));
    let sim = a.transpose(0, 1).matmul(&b); // [L0, L1]
    let (best, j_of_i) = sim.max_dim(1, false);
    let i_of_j = sim.argmax(0, false);
    let device = sim.device();
    let i_all = Tensor::arange(g0.len(), (Kind::Int64, device));
    let mutual = i_of_j.index_select(0, &j_of_i).eq_tensor(&i_all);
    let inside0 = g0
        .region_mask(&[g0.full()], params.border, device)
        .squeeze_dim(0);
    let inside1 = g1
        .region_mask(&[g1.full()], params.border, device)
        .squeeze_dim(0)
        .index_select(0, &j_of_i);
    let keep = mutual
        .logical_and(&inside0)
        .logical_and(&inside1)
        .logical_and(&best.gt(params.min_similarity));
    let i_ids = keep.nonzero().squeeze_dim(1);
    ZeroShotMatches {
        j_ids: j_of_i.index_select(0, &i_ids),
        confidence: best.index_select(0, &i_ids).clamp(0.0, 1.0),
        i_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutual_nearest_neighbours_of_a_shifted_map() {
        // Random features; image 1 is image 0 shifted right by 2 cells and down by 1.
        tch::manual_seed(5);
        let f0 = Tensor::randn([1, 16, 8, 10], (Kind::Float, Device::Cpu));
        let f1 = Tensor::randn([1, 16, 8, 10], (Kind::Float, Device::Cpu));
        f1.narrow(2, 1, 7)
            .narrow(3, 2, 8)
            .copy_(&f0.narrow(2, 0, 7).narrow(3, 0, 8));
        let params = ZeroShotParams {
            border: 1,
            min_similarity: 0.5,
        };
        let m = match_features(&f0, &f1, params);
        let i: Vec<i64> = Vec::try_from(&m.i_ids).unwrap();
        let j: Vec<i64> = Vec::try_from(&m.j_ids).unwrap();
        let g = CoarseGrid::new(8, 10);
        // Every cell of image 0 with a copy inside image 1's border-1 region is found.
        let mut expected = vec![];
        for y in 1..7 {
            for x in 1..9 {
                let (x1, y1) = (x + 2, y + 1);
                if (1..9).contains(&x1) && (1..7).contains(&y1) {
                    expected.push((g.index(x, y), g.index(x1, y1)));
                }
            }
        }
        let got: Vec<(i64, i64)> = i.into_iter().zip(j).collect();
        assert_eq!(got, expected);
        let conf: Vec<f32> = Vec::try_from(&m.confidence).unwrap();
        assert!(conf.iter().all(|&c| (c - 1.0).abs() < 1e-5));

        // Unrelated features with a high threshold: zero matches, well-formed.
        let none = match_features(
            &f0,
            &Tensor::randn([1, 16, 5, 6], (Kind::Float, Device::Cpu)),
            ZeroShotParams {
                border: 0,
                min_similarity: 0.99,
            },
        );
        assert_eq!(none.i_ids.size(), vec![0]);
        assert_eq!(none.confidence.size(), vec![0]);
    }
}
