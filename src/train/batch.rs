//! Collating [`PairSample`]s into the tensors the model and the supervision take.

use tch::{Device, Kind, Tensor};

use super::supervision::{CoarseLayout, DepthWarp, FineGrid, HomographyWarp, WarpSource};
use super::TrainError;
use crate::data::{GroundTruth, PairSample};

/// A training batch on one device.
#[derive(Debug)]
pub struct TrainBatch {
    /// `[N, 3, H0, W0]` f32 RGB in [0, 1].
    pub image0: Tensor,
    /// `[N, 3, H1, W1]`.
    pub image1: Tensor,
    /// Coarse layout: grid sizes, scales and padding masks (`None` when nothing is padded).
    pub layout: CoarseLayout,
    /// Ground-truth geometry.
    pub warp: WarpSource,
    /// Pair names.
    pub names: Vec<String>,
}

fn padding_mask(content: (u32, u32), size: (i64, i64), stride: i64) -> Tensor {
    // A coarse cell is real image when its top-left pixel is (EL samples masks with
    // nearest-neighbour at scale 1/8, i.e. the top-left pixel of each cell).
    let (w, h) = (size.0 / stride, size.1 / stride);
    let xs =
        Tensor::arange(w, (Kind::Int64, Device::Cpu)).lt(content.0.div_ceil(stride as u32) as i64);
    let ys =
        Tensor::arange(h, (Kind::Int64, Device::Cpu)).lt(content.1.div_ceil(stride as u32) as i64);
    ys.view([h, 1]).logical_and(&xs.view([1, w]))
}

fn mat_tensor<const R: usize, const C: usize>(rows: impl Fn(usize, usize) -> f64) -> Tensor {
    let v: Vec<f64> = (0..R * C).map(|k| rows(k / C, k % C)).collect();
    Tensor::from_slice(&v).view([R as i64, C as i64])
}

impl TrainBatch {
    /// Stack samples that share image sizes and ground-truth kind (depth or homography).
    /// Depth maps are zero-padded bottom-right to the largest in the batch.
    pub fn collate(
        samples: &[PairSample],
        grid: &FineGrid,
        device: Device,
    ) -> Result<Self, TrainError> {
        let Some(first) = samples.first() else {
            return Err(TrainError::input("batch", "is empty"));
        };
        let (s0, s1) = (first.image0.size(), first.image1.size());
        for s in samples {
            if s.image0.size() != s0 || s.image1.size() != s1 {
                return Err(TrainError::input(
                    "batch",
                    format!(
                        "{}: image sizes {:?}/{:?} differ from the first pair's {s0:?}/{s1:?}",
                        s.name,
                        s.image0.size(),
                        s.image1.size()
                    ),
                ));
            }
        }
        for (w, h) in [s0, s1] {
            if w % grid.stride() != 0 || h % grid.stride() != 0 {
                return Err(TrainError::input(
                    "batch",
                    format!(
                        "image size {w}×{h} is not a multiple of the stride {}",
                        grid.stride()
                    ),
                ));
            }
        }
        let stack = |f: &dyn Fn(&PairSample) -> Tensor| {
            Tensor::stack(&samples.iter().map(f).collect::<Vec<_>>(), 0).to_device(device)
        };
        let image0 = stack(&|s| s.image0.pixels.shallow_clone());
        let image1 = stack(&|s| s.image1.pixels.shallow_clone());
        let scale = |f: &dyn Fn(&PairSample) -> [f64; 2]| {
            let v: Vec<f64> = samples.iter().flat_map(f).collect();
            Tensor::from_slice(&v).view([-1, 2]).to_device(device)
        };
        let padded = samples.iter().any(|s| {
            s.image0.content_size != (s0.0 as u32, s0.1 as u32)
                || s.image1.content_size != (s1.0 as u32, s1.1 as u32)
        });
        let (mask0, mask1) = if padded {
            (
                Some(stack(&|s| {
                    padding_mask(s.image0.content_size, s0, grid.stride())
                })),
                Some(stack(&|s| {
                    padding_mask(s.image1.content_size, s1, grid.stride())
                })),
            )
        } else {
            (None, None)
        };
        let layout = CoarseLayout {
            hw0: (s0.1 / grid.stride(), s0.0 / grid.stride()),
            hw1: (s1.1 / grid.stride(), s1.0 / grid.stride()),
            scale0: scale(&|s| s.image0.scale),
            scale1: scale(&|s| s.image1.scale),
            mask0,
            mask1,
        };
        let warp = match &first.ground_truth {
            GroundTruth::Depth { .. } => collate_depth(samples, device)?,
            GroundTruth::Homography { .. } => collate_homography(samples, device)?,
            _ => {
                return Err(TrainError::input(
                    "batch",
                    format!(
                        "{}: ground truth is neither depth nor a homography",
                        first.name
                    ),
                ))
            }
        };
        Ok(TrainBatch {
            image0,
            image1,
            layout,
            warp,
            names: samples.iter().map(|s| s.name.clone()).collect(),
        })
    }
}

fn collate_depth(samples: &[PairSample], device: Device) -> Result<WarpSource, TrainError> {
    let mut d0s = Vec::new();
    let mut d1s = Vec::new();
    let mut k0s = Vec::new();
    let mut k1s = Vec::new();
    let mut ts = Vec::new();
    for s in samples {
        let GroundTruth::Depth {
            depth0,
            depth1,
            k0,
            k1,
            t_0to1,
        } = &s.ground_truth
        else {
            return Err(TrainError::input(
                "batch",
                format!("{}: has no depth ground truth", s.name),
            ));
        };
        d0s.push(depth0.shallow_clone());
        d1s.push(depth1.shallow_clone());
        k0s.push(mat_tensor::<3, 3>(|r, c| k0[(r, c)]));
        k1s.push(mat_tensor::<3, 3>(|r, c| k1[(r, c)]));
        ts.push(mat_tensor::<4, 4>(|r, c| t_0to1[(r, c)]));
    }
    let pad_stack = |ds: &[Tensor]| -> Tensor {
        let h = ds.iter().map(|d| d.size()[0]).max().unwrap_or(0);
        let w = ds.iter().map(|d| d.size()[1]).max().unwrap_or(0);
        let out = Tensor::zeros([ds.len() as i64, h, w], (Kind::Float, Device::Cpu));
        for (b, d) in ds.iter().enumerate() {
            let (dh, dw) = (d.size()[0], d.size()[1]);
            out.get(b as i64)
                .narrow(0, 0, dh)
                .narrow(1, 0, dw)
                .copy_(&d.to_kind(Kind::Float));
        }
        out.to_device(device)
    };
    for (name, d) in samples.iter().map(|s| (&s.name, &s.ground_truth)) {
        if let GroundTruth::Depth { depth0, depth1, .. } = d {
            if depth0.dim() != 2 || depth1.dim() != 2 {
                return Err(TrainError::input(name.clone(), "depth maps must be [H, W]"));
            }
        }
    }
    Ok(WarpSource::Depth(DepthWarp {
        depth0: pad_stack(&d0s),
        depth1: pad_stack(&d1s),
        k0: Tensor::stack(&k0s, 0).to_device(device),
        k1: Tensor::stack(&k1s, 0).to_device(device),
        t_0to1: Tensor::stack(&ts, 0).to_device(device),
    }))
}

fn collate_homography(samples: &[PairSample], device: Device) -> Result<WarpSource, TrainError> {
    let mut hs = Vec::new();
    let mut sizes0 = Vec::new();
    let mut sizes1 = Vec::new();
    for s in samples {
        let GroundTruth::Homography { h_0to1 } = &s.ground_truth else {
            return Err(TrainError::input(
                "batch",
                format!("{}: has no homography", s.name),
            ));
        };
        hs.push(mat_tensor::<3, 3>(|r, c| h_0to1[(r, c)]));
        sizes0.extend([
            s.image0.original_size.0 as f64,
            s.image0.original_size.1 as f64,
        ]);
        sizes1.extend([
            s.image1.original_size.0 as f64,
            s.image1.original_size.1 as f64,
        ]);
    }
    Ok(WarpSource::Homography(HomographyWarp {
        h_0to1: Tensor::stack(&hs, 0).to_device(device),
        size0: Tensor::from_slice(&sizes0).view([-1, 2]).to_device(device),
        size1: Tensor::from_slice(&sizes1).view([-1, 2]).to_device(device),
    }))
}
