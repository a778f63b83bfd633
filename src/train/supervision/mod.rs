//! Ground truth for training, from depth + intrinsics + relative pose or from a homography,
//! following Efficient LoFTR's `supervision.py` / `geometry.py` (notes §2), batched, on any
//! device.
//!
//! - [`FineGrid`]: the coarse/fine coordinate convention, defined once in
//!   [`crate::model::fine::grid`] and shared with inference;
//! - [`warp`]: warping points between the images ([`WarpSource`]: depth or homography);
//! - [`coarse`]: coarse GT `(b, i, j)` with loop-back check and overlap weights;
//! - [`fine`]: stage-1 window index and stage-2 sub-pixel target for given coarse matches;
//! - [`padding`]: padding predicted coarse matches with GT matches during training.

pub mod coarse;
pub mod fine;
pub mod padding;
pub mod warp;

pub use crate::model::fine::grid::FineGrid;
pub use coarse::{coarse_grid_points, coarse_gt, CoarseGt, CoarseLayout};
pub use fine::{fine_gt, FineGt};
pub use padding::{
    max_candidates, pad_with_gt, GtPaddingConfig, PredictedCoarseMatches, TrainCoarseMatches,
};
pub use warp::{warp_depth, warp_homography, DepthWarp, HomographyWarp, WarpSource, Warped};
