//! The IMD heads at the paper's sizes on one 640×480 pair (coarse grid 60×80), without the
//! backbone: CIPM (257 CLIP tokens × 1280), coarse module (640 → 256, 4 layers, 8 heads,
//! full attention), coarse matching (dual softmax + MNN on 4800 × 4800), fine encoder, fine
//! fusion + two-stage refinement of 1000 matches.
//!
//! `cargo bench --bench heads` (CPU; `IMD_BENCH_THREADS=N` pins libtorch's thread count).
//! Inputs are random: the timings do not depend on the values, except the matching stage,
//! whose cost is dominated by the 4800 × 4800 passes either way.

use criterion::{criterion_group, criterion_main, Criterion};
use imd::model::coarse::matching::{confidence_matrix, extract_matches};
use imd::model::coarse::transformer::unflatten;
use imd::model::coarse::{CoarseGrid, CoarseMatchParams};
use imd::model::fine::{refine, WindowCells};
use imd::model::imd_config::ImdModelConfig;
use imd::model::matcher::{HeadDims, ImdHeads};
use tch::{Device, Kind, Tensor};

const DIMS: HeadDims = HeadDims {
    feature_channels: 640,
    context_dim: 1024,
    clip_hidden: 1280,
};

fn heads(c: &mut Criterion) {
    if let Some(n) = std::env::var("IMD_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tch::set_num_threads(n);
    }
    let _guard = tch::no_grad_guard();
    let cfg = ImdModelConfig::default();
    tch::manual_seed(0);
    let heads = ImdHeads::new(&cfg, DIMS, Device::Cpu);
    let opts = (Kind::Float, Device::Cpu);
    let (h, w) = (60i64, 80i64);
    let grid = CoarseGrid::new(h, w);
    let full = [grid.full()];
    let tokens_a = Tensor::randn([1, 257, 1280], opts);
    let tokens_b = Tensor::randn([1, 257, 1280], opts);
    let unet = Tensor::randn([2, 640, h, w], opts);
    let (u0, u1) = (unet.narrow(0, 0, 1), unet.narrow(0, 1, 1));
    let image = Tensor::rand([2, 3, 8 * h, 8 * w], opts) * 2.0 - 1.0;

    let mut g = c.benchmark_group("heads_640x480");
    g.sample_size(10);
    g.bench_function("cipm", |b| {
        b.iter(|| heads.cipm.forward(&tokens_a, &tokens_b).unwrap())
    });
    g.bench_function("coarse_transformer", |b| {
        b.iter(|| heads.coarse.forward(&u0, &u1, &full, &full))
    });
    let coarse = heads.coarse.forward(&u0, &u1, &full, &full);
    let params = CoarseMatchParams::default();
    g.bench_function("coarse_matching", |b| {
        b.iter(|| {
            let conf = confidence_matrix(&coarse.feat0, &coarse.feat1, None, None, 0.1);
            extract_matches(&conf, grid, grid, &full, &full, params)
        })
    });
    g.bench_function("fine_encoder_pair", |b| {
        b.iter(|| heads.fine_encoder.forward_t(&image, false))
    });
    let pyramid = heads.fine_encoder.forward_t(&image, false);
    let coarse_maps = Tensor::cat(
        &[
            unflatten(&coarse.feat0, grid),
            unflatten(&coarse.feat1, grid),
        ],
        0,
    ) / 16.0;
    let m = 1000;
    let i = Tensor::randint(h * w, [m], (Kind::Int64, Device::Cpu));
    let j = Tensor::randint(h * w, [m], (Kind::Int64, Device::Cpu));
    let (x0, y0) = grid.cells_of(&i);
    let (x1, y1) = grid.cells_of(&j);
    let cells = WindowCells {
        b: Tensor::zeros([m], (Kind::Int64, Device::Cpu)),
        x0,
        y0,
        x1,
        y1,
    };
    g.bench_function("fine_fusion_and_refine_1000", |b| {
        b.iter(|| {
            let fine = heads.fine_fusion.forward_t(&coarse_maps, &pyramid, false);
            refine(
                &fine.narrow(0, 0, 1),
                &fine.narrow(0, 1, 1),
                &cells,
                cfg.fine.subpixel_channels,
                cfg.fine.subpixel_temperature,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, heads);
criterion_main!(benches);
