//! Fine stage (Efficient LoFTR style): a ResNet-style encoder on the image, fused with the
//! transformed coarse features up to full resolution ([`encoder`]), then two-stage
//! refinement in 8×8 / 10×10 windows ([`mod@refine`]) under the coordinate convention in
//! [`grid`].

pub mod encoder;
pub mod grid;
pub mod refine;

pub use encoder::{FineEncoder, FineFusion, FinePyramid};
pub use refine::{refine, FineMatches, FineStage1, WindowCells};
