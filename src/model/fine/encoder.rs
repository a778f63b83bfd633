//! Fine features: a small ResNet on the image (1/2 and 1/4 resolution) and Efficient LoFTR's
//! `inter_fpn` fusion with the transformed coarse features, up to full resolution.
//!
//! Encoder (LoFTR's ResNet-FPN stem and basic blocks, stopped at 1/4):
//! `stem` = conv7×7/2 (3 → c1) · BN · ReLU; `layer1` = 2 basic blocks (c1) → `x1` at 1/2;
//! `layer2` = 2 basic blocks (c1 → c2, the first with stride 2 and a 1×1/2 conv + BN shortcut)
//! → `x2` at 1/4. A basic block is `ReLU(x + BN(conv3×3(ReLU(BN(conv3×3(x))))))`. Input is the
//! RGB network image in [−1, 1]. It depends on the image only, so the matcher computes it once
//! per image.
//!
//! Fusion (EL `inter_fpn`, convs without bias, `LeakyReLU(0.01)`, bilinear ×2 with
//! `align_corners = false`), with `d` = coarse width and `c` = transformer output ÷ √d:
//! `up(layer3_outconv(c))` + `layer2_outconv(x2)` → `layer2_outconv2` = [conv3×3 d→d, BN,
//! LeakyReLU, conv3×3 d→c2] → `up` + `layer1_outconv(x1)` → `layer1_outconv2` = [conv3×3
//! c2→c2, BN, LeakyReLU, conv3×3 c2→c1] → `up` → `[B, c1, H, W]`.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::model::imd_config::FineConfig;

fn conv(path: nn::Path, i: i64, o: i64, k: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(
        path,
        i,
        o,
        k,
        nn::ConvConfig {
            stride,
            padding: k / 2,
            bias: false,
            ..Default::default()
        },
    )
}

/// LoFTR's ResNet basic block.
#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl BasicBlock {
    fn new(path: &nn::Path, i: i64, o: i64, stride: i64) -> Self {
        let downsample = (stride != 1 || i != o).then(|| {
            let ds = path / "downsample";
            (
                conv(&ds / 0, i, o, 1, stride),
                nn::batch_norm2d(&ds / 1, o, Default::default()),
            )
        });
        BasicBlock {
            conv1: conv(path / "conv1", i, o, 3, stride),
            bn1: nn::batch_norm2d(path / "bn1", o, Default::default()),
            conv2: conv(path / "conv2", o, o, 3, 1),
            bn2: nn::batch_norm2d(path / "bn2", o, Default::default()),
            downsample,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.bn1.forward_t(&self.conv1.forward(x), train).relu();
        let y = self.bn2.forward_t(&self.conv2.forward(&y), train);
        let shortcut = match &self.downsample {
            Some((c, bn)) => bn.forward_t(&c.forward(x), train),
            None => x.shallow_clone(),
        };
        (shortcut + y).relu()
    }
}

/// Image-only fine features.
#[derive(Debug)]
pub struct FinePyramid {
    /// `[B, c1, H/2, W/2]`.
    pub x1: Tensor,
    /// `[B, c2, H/4, W/4]`.
    pub x2: Tensor,
}

impl FinePyramid {
    /// The batch items `start..start+len`.
    pub fn narrow(&self, start: i64, len: i64) -> FinePyramid {
        FinePyramid {
            x1: self.x1.narrow(0, start, len),
            x2: self.x2.narrow(0, start, len),
        }
    }

    /// Concatenate along the batch.
    pub fn cat(parts: &[&FinePyramid]) -> FinePyramid {
        let x1: Vec<&Tensor> = parts.iter().map(|p| &p.x1).collect();
        let x2: Vec<&Tensor> = parts.iter().map(|p| &p.x2).collect();
        FinePyramid {
            x1: Tensor::cat(&x1, 0),
            x2: Tensor::cat(&x2, 0),
        }
    }
}

/// The ResNet-style fine encoder.
#[derive(Debug)]
pub struct FineEncoder {
    stem_conv: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    layer1: [BasicBlock; 2],
    layer2: [BasicBlock; 2],
}

impl FineEncoder {
    /// Register `stem.{conv,bn}`, `layer1.{0,1}`, `layer2.{0,1}` under `path`.
    pub fn new(path: &nn::Path, config: &FineConfig) -> Self {
        let (c1, c2) = (config.fine_dim(), config.mid_dim());
        let stem = path / "stem";
        let l1 = path / "layer1";
        let l2 = path / "layer2";
        FineEncoder {
            stem_conv: conv(&stem / "conv", 3, c1, 7, 2),
            stem_bn: nn::batch_norm2d(&stem / "bn", c1, Default::default()),
            layer1: [
                BasicBlock::new(&(&l1 / 0), c1, c1, 1),
                BasicBlock::new(&(&l1 / 1), c1, c1, 1),
            ],
            layer2: [
                BasicBlock::new(&(&l2 / 0), c1, c2, 2),
                BasicBlock::new(&(&l2 / 1), c2, c2, 1),
            ],
        }
    }

    /// `[B, 3, H, W]` RGB in [−1, 1] (H, W multiples of 8) → `x1` (1/2) and `x2` (1/4).
    pub fn forward_t(&self, image: &Tensor, train: bool) -> FinePyramid {
        let x = self
            .stem_bn
            .forward_t(&self.stem_conv.forward(image), train)
            .relu();
        let x1 = self.layer1[1].forward_t(&self.layer1[0].forward_t(&x, train), train);
        let x2 = self.layer2[1].forward_t(&self.layer2[0].forward_t(&x1, train), train);
        FinePyramid { x1, x2 }
    }
}

/// `[conv3×3 i→i, BN, LeakyReLU, conv3×3 i→o]` (EL `layer*_outconv2`, indices 0, 1, 3).
#[derive(Debug)]
struct OutConv2 {
    conv0: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv3: nn::Conv2D,
}

impl OutConv2 {
    fn new(path: &nn::Path, i: i64, o: i64) -> Self {
        OutConv2 {
            conv0: conv(path / 0, i, i, 3, 1),
            bn1: nn::batch_norm2d(path / 1, i, Default::default()),
            conv3: conv(path / 3, i, o, 3, 1),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self
            .bn1
            .forward_t(&self.conv0.forward(x), train)
            .leaky_relu();
        self.conv3.forward(&y)
    }
}

/// EL's `inter_fpn`: coarse (1/8) + `x2` (1/4) + `x1` (1/2) → full-resolution fine features.
#[derive(Debug)]
pub struct FineFusion {
    layer3_outconv: nn::Conv2D,
    layer2_outconv: nn::Conv2D,
    layer2_outconv2: OutConv2,
    layer1_outconv: nn::Conv2D,
    layer1_outconv2: OutConv2,
}

fn up2(x: &Tensor) -> Tensor {
    let (_, _, h, w) = x.size4().unwrap_or((0, 0, 0, 0));
    x.upsample_bilinear2d([2 * h, 2 * w], false, 2.0, 2.0)
}

impl FineFusion {
    /// Register EL's `layer3_outconv`, `layer2_outconv`, `layer2_outconv2`, `layer1_outconv`,
    /// `layer1_outconv2` under `path`; `d_model` is the coarse width.
    pub fn new(path: &nn::Path, d_model: i64, config: &FineConfig) -> Self {
        let (c1, c2) = (config.fine_dim(), config.mid_dim());
        FineFusion {
            layer3_outconv: conv(path / "layer3_outconv", d_model, d_model, 1, 1),
            layer2_outconv: conv(path / "layer2_outconv", c2, d_model, 1, 1),
            layer2_outconv2: OutConv2::new(&(path / "layer2_outconv2"), d_model, c2),
            layer1_outconv: conv(path / "layer1_outconv", c1, c2, 1, 1),
            layer1_outconv2: OutConv2::new(&(path / "layer1_outconv2"), c2, c1),
        }
    }

    /// `coarse [B, d, h, w]` (transformer output ÷ √d), pyramid at 1/4 and 1/2 of the same
    /// image → `[B, c1, 8h, 8w]`.
    pub fn forward_t(&self, coarse: &Tensor, pyramid: &FinePyramid, train: bool) -> Tensor {
        let c = up2(&self.layer3_outconv.forward(coarse));
        let x2 = self.layer2_outconv.forward(&pyramid.x2);
        let x2 = up2(&self.layer2_outconv2.forward_t(&(x2 + c), train));
        let x1 = self.layer1_outconv.forward(&pyramid.x1);
        up2(&self.layer1_outconv2.forward_t(&(x1 + x2), train))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_through_encoder_and_fusion() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FineConfig {
            dims: vec![8, 12],
            ..Default::default()
        };
        let enc = FineEncoder::new(&(vs.root() / "enc"), &cfg);
        let fus = FineFusion::new(&(vs.root() / "fus"), 16, &cfg);
        let img = Tensor::rand([2, 3, 24, 40], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let p = enc.forward_t(&img, false);
        assert_eq!(p.x1.size(), vec![2, 8, 12, 20]);
        assert_eq!(p.x2.size(), vec![2, 12, 6, 10]);
        let coarse = Tensor::randn([2, 16, 3, 5], (Kind::Float, Device::Cpu));
        let f = fus.forward_t(&coarse, &p, false);
        assert_eq!(f.size(), vec![2, 8, 24, 40]);
        // Names are the checkpoint keys the loader and the test-model script use.
        let names = vs.variables();
        for n in [
            "enc.stem.conv.weight",
            "enc.layer2.0.downsample.0.weight",
            "enc.layer2.0.downsample.1.running_var",
            "fus.layer2_outconv2.3.weight",
            "fus.layer1_outconv2.1.running_mean",
        ] {
            assert!(names.contains_key(n), "{n} missing");
        }
        assert!(!names.contains_key("enc.layer1.0.downsample.0.weight"));
    }
}
