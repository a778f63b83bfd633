//! Dataset readers: MegaDepth, ScanNet, HPatches, IMIM (BURST), synthetic homographies.

/// Errors reading datasets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}")]
    Other(String),
}
