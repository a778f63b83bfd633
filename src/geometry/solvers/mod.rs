//! Minimal solvers: each takes the smallest sample that fixes a model and returns every
//! solution. No robustness, no allocation beyond the output list.

pub mod essential_5pt;
pub mod homography_4pt;
pub mod nullspace;
pub mod p3p;
pub mod poly;

pub use essential_5pt::essential_5pt;
pub use homography_4pt::homography_4pt;
pub use p3p::p3p;
