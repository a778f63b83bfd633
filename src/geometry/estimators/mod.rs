//! RANSAC adapters ([`super::ransac::Estimator`]) for the minimal solvers: sampling data,
//! MSAC scoring with early exit, and local optimisation.

pub mod absolute_pose;
pub mod homography;
pub mod relative_pose;
