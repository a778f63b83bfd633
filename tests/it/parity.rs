//! Backbone parity with the reference implementations (diffusers, transformers, torch).
//!
//! Fixtures in `tests/fixtures/parity/` are made by `scripts/fixtures/make_parity_fixtures.py`:
//! small random-weight models with SD2.1's block structure saved in the weights-folder layout, with
//! inputs and the reference outputs. fp32 results must match to 1e-4 max abs error (the
//! acceptance bound; both sides run the same libtorch kernels, so the actual error is ~0).
//!
//! The SD2.1-size check is opt-in:
//! ```text
//! .venv/bin/python scripts/fixtures/make_parity_fixtures.py --full target/parity_full
//! cargo test --test it parity::full_size_sd21_config -- --ignored --nocapture
//! ```
//! (`IMD_PARITY_FULL=DIR` selects another folder.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use imd::model::backbone::unet_files;
use imd::model::unet::UNet2DConditionModel;
use imd::model::vae::VaeEncoder;
use imd::model::{Backbone, BackboneOptions, ClipVision, ModelError};
use tch::{Device, Kind, Tensor};

use crate::util::{fixture, imd_bin};

/// The acceptance bound for fp32 parity.
const F32_TOL: f64 = 1e-4;

fn dir(variant: &str) -> PathBuf {
    fixture(&format!("parity/{variant}"))
}

fn reference(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let a = a.to_kind(Kind::Double).to_device(Device::Cpu);
    let b = b.to_kind(Kind::Double).to_device(Device::Cpu);
    (a - b).abs().max().double_value(&[])
}

fn assert_close(name: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let err = max_abs_diff(got, want);
    let scale = want.abs().max().double_value(&[]);
    assert!(
        err <= tol,
        "{name}: max abs error {err:e} > {tol:e} (reference max |x| = {scale})"
    );
    eprintln!("{name}: max abs error {err:e} (reference max |x| = {scale:.3})");
}

fn load_small(opts: &BackboneOptions) -> Backbone {
    Backbone::load(&dir("small"), Device::Cpu, Kind::Float, opts).expect("load small backbone")
}

#[test]
fn vae_latents_match_diffusers() {
    let r = reference(&dir("small").join("reference.safetensors"));
    let bb = load_small(&BackboneOptions {
        load_clip: false,
        ..Default::default()
    });
    let _g = tch::no_grad_guard();
    for size in ["64", "72x104"] {
        let latents = bb.encode_latents(&r[&format!("images_{size}")]).unwrap();
        assert_close(
            &format!("latents_{size}"),
            &latents,
            &r[&format!("latents_{size}")],
            F32_TOL,
        );
    }
    assert_eq!(
        bb.encode_latents(&r["images_72x104"]).unwrap().size(),
        [1, 4, 9, 13]
    );
}

#[test]
fn unet_features_match_diffusers() {
    let r = reference(&dir("small").join("reference.safetensors"));
    let bb = load_small(&BackboneOptions {
        load_clip: false,
        ..Default::default()
    });
    assert_eq!((bb.feature_channels(), bb.cross_attention_dim()), (32, 24));
    let _g = tch::no_grad_guard();
    let prompts = &r["prompts"];
    let f64_ = bb.unet_features(&r["latents_64"], prompts).unwrap();
    assert_eq!(f64_.size(), [2, 32, 8, 8]);
    assert_close("features_64_k2_t0", &f64_, &r["features_64_k2_t0"], F32_TOL);
    // 9×13 latents: the upsamplers must target the skip connections' sizes.
    let one = prompts.narrow(0, 0, 1);
    let f72 = bb.unet_features(&r["latents_72x104"], &one).unwrap();
    assert_eq!(f72.size(), [1, 32, 9, 13]);
    assert_close(
        "features_72x104_k2_t0",
        &f72,
        &r["features_72x104_k2_t0"],
        F32_TOL,
    );
}

#[test]
fn unet_other_blocks_and_timesteps_match_diffusers() {
    let r = reference(&dir("small").join("reference.safetensors"));
    let files = unet_files(&dir("small")).unwrap();
    let _g = tch::no_grad_guard();
    // k = 1 (1/16 resolution) on the non-divisible size.
    let unet =
        UNet2DConditionModel::load(&files.config, &files.weights, Device::Cpu, Kind::Float, 1)
            .unwrap();
    let t0 = unet.time_embedding(0.0).unwrap();
    let f = unet
        .features(&r["latents_72x104"], &t0, &r["prompts"].narrow(0, 0, 1))
        .unwrap();
    assert_close(
        "features_72x104_k1_t0",
        &f,
        &r["features_72x104_k1_t0"],
        F32_TOL,
    );
    // k = 3 (the last block, no upsampler) at t = 261, which exercises every frequency of
    // the sinusoidal time projection.
    let opts = BackboneOptions {
        unet_block: 3,
        timestep: 261.0,
        load_clip: false,
    };
    let bb = load_small(&opts);
    let f = bb.unet_features(&r["latents_64"], &r["prompts"]).unwrap();
    assert_close(
        "features_64_k3_t261",
        &f,
        &r["features_64_k3_t261"],
        F32_TOL,
    );
}

#[test]
fn prompt_gradients_match_torch() {
    let r = reference(&dir("small").join("reference.safetensors"));
    let bb = load_small(&BackboneOptions {
        load_clip: false,
        ..Default::default()
    });
    let prompts = r["prompts"].copy().set_requires_grad(true);
    let features = bb.unet_features(&r["latents_64"], &prompts).unwrap();
    (features * &r["grad_weights_64"])
        .sum(Kind::Float)
        .backward();
    let grad = prompts.grad();
    assert!(grad.defined(), "no gradient reached the prompts");
    assert_close("prompt_grad_64", &grad, &r["prompt_grad_64"], F32_TOL);
}

#[test]
fn cli_features_match_diffusers() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("f.safetensors");
    let status = Command::new(imd_bin())
        .args(["features", "--model"])
        .arg(dir("small"))
        .arg("--image")
        .arg(dir("small").join("cat_72x104.png"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let got = reference(&out);
    let r = reference(&dir("small").join("reference.safetensors"));
    assert_eq!(got["features"].kind(), Kind::Float);
    assert_close(
        "cli_features",
        &got["features"],
        &r["cli_features"],
        F32_TOL,
    );

    // An image whose sides are not multiples of 8 is refused with a message saying so.
    let bad = out_dir.path().join("bad.png");
    image::RgbImage::new(100, 70).save(&bad).unwrap();
    let output = Command::new(imd_bin())
        .args(["features", "--model"])
        .arg(dir("small"))
        .arg("--image")
        .arg(&bad)
        .arg("--out")
        .arg(out_dir.path().join("g.safetensors"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("100×70") && stderr.contains("multiples of 8"),
        "{stderr}"
    );
}

#[test]
fn clip_matches_transformers() {
    let _g = tch::no_grad_guard();
    // CLIPVisionModelWithProjection (`vision_model.*` + `visual_projection`), through the backbone.
    let r = reference(&dir("small").join("reference.safetensors"));
    let bb = load_small(&BackboneOptions::default());
    let clip = bb.clip().expect("clip loaded");
    assert_eq!((clip.hidden_size(), clip.embedding_dim()), (32, 20));
    let out = clip.forward(&r["clip_pixels"]).unwrap();
    assert_eq!(out.tokens.size(), [2, 17, 32]);
    assert_close("clip_tokens", &out.tokens, &r["clip_tokens"], F32_TOL);
    assert_close("clip_pooled", &out.pooled, &r["clip_pooled"], F32_TOL);
    assert_close(
        "clip_embedding",
        &out.embedding,
        &r["clip_embedding"],
        F32_TOL,
    );

    // A whole CLIPModel with a CLIPConfig (text tower skipped, top-level projection_dim).
    let r = reference(&dir("legacy").join("reference.safetensors"));
    let clip = load_clip(&dir("legacy"), Kind::Float).unwrap();
    let out = clip.forward(&r["clip_pixels"]).unwrap();
    assert_close(
        "legacy clip_tokens",
        &out.tokens,
        &r["clip_tokens"],
        F32_TOL,
    );
    assert_close(
        "legacy clip_embedding",
        &out.embedding,
        &r["clip_embedding"],
        F32_TOL,
    );

    // transformers ≥ 5 CLIPVisionModel: bare names, quick_gelu, no projection.
    let r = reference(&dir("clip_bare").join("reference.safetensors"));
    let clip = load_clip(&dir("clip_bare"), Kind::Float).unwrap();
    assert_eq!(clip.embedding_dim(), clip.hidden_size());
    let out = clip.forward(&r["clip_pixels"]).unwrap();
    assert_close("bare clip_tokens", &out.tokens, &r["clip_tokens"], F32_TOL);
    assert_close("bare clip_pooled", &out.pooled, &r["clip_pooled"], F32_TOL);
    // Without a projection the embedding is the pooled output itself (exactly); the pooled
    // output against transformers is checked above at F32_TOL (reduction order differs by
    // CPU: 3.6e-7 seen on one machine, 0 on another).
    assert_close(
        "bare clip_embedding = pooled",
        &out.embedding,
        &out.pooled,
        0.0,
    );
}

fn load_clip(folder: &Path, kind: Kind) -> Result<ClipVision, ModelError> {
    let f = imd::model::backbone::clip_files(folder)?;
    ClipVision::load(&f.config, &f.weights, Device::Cpu, kind)
}

#[test]
fn clip_preprocess_matches_torch() {
    let r = reference(&dir("small").join("reference.safetensors"));
    let clip = load_clip(&dir("small"), Kind::Float).unwrap();
    for case in ["landscape", "portrait"] {
        let got = clip.preprocess(&r[&format!("pre_{case}_in")]).unwrap();
        assert_eq!(got.size()[2..], [56, 56]);
        assert_close(
            &format!("preprocess {case}"),
            &got,
            &r[&format!("pre_{case}_out")],
            1e-5,
        );
    }
    assert!(matches!(
        clip.forward(&Tensor::zeros([1, 3, 40, 56], (Kind::Float, Device::Cpu))),
        Err(ModelError::InvalidInput { .. })
    ));
}

#[test]
fn legacy_fp16_vae_with_old_attention_names_matches() {
    let r = reference(&dir("legacy").join("reference.safetensors"));
    let folder = dir("legacy").join("vae");
    let vae = VaeEncoder::load(
        &folder.join("config.json"),
        &folder.join("diffusion_pytorch_model.safetensors"),
        Device::Cpu,
        Kind::Float,
    )
    .unwrap();
    let _g = tch::no_grad_guard();
    let latents = vae.encode(&r["images"]).unwrap();
    assert_eq!(latents.size(), [1, 4, 8, 12]);
    assert_close("legacy latents", &latents, &r["latents"], F32_TOL);
}

/// Half-precision runs against the fp32 reference, as relative L2 errors of the outputs.
/// bf16 keeps 8 significant bits (relative rounding ≤ 2⁻⁹ ≈ 0.2 %), f16 keeps 11 (≤ 2⁻¹² ≈
/// 0.02 %); the VAE + UNet chain has ~60 rounded convs/matmuls/norms whose errors partly
/// cancel, so a few × the unit rounding × √depth is expected: bounds 5 % (bf16) and 1 % (f16).
/// Measured: bf16 ≈ 2 %, f16 ≈ 0.3 %. The fp32 path is the one held to 1e-4.
#[test]
fn half_precision_cpu_runs_are_close_to_f32() {
    let r = reference(&dir("small").join("reference.safetensors"));
    let rel = |got: &Tensor, want: &Tensor| {
        let got = got.to_kind(Kind::Double);
        let want = want.to_kind(Kind::Double);
        (got - &want).norm().double_value(&[]) / want.norm().double_value(&[])
    };
    for (kind, bound) in [(Kind::BFloat16, 0.05), (Kind::Half, 0.01)] {
        let bb = Backbone::load(
            &dir("small"),
            Device::Cpu,
            kind,
            &BackboneOptions::default(),
        )
        .unwrap();
        assert_eq!(bb.kind(), kind);
        let _g = tch::no_grad_guard();
        let latents = bb.encode_latents(&r["images_72x104"]).unwrap();
        assert_eq!(latents.kind(), kind);
        let e_lat = rel(&latents, &r["latents_72x104"]);
        let prompt = r["prompts"].narrow(0, 0, 1);
        let e_feat = rel(
            &bb.unet_features(&r["latents_72x104"], &prompt).unwrap(),
            &r["features_72x104_k2_t0"],
        );
        let tokens = bb
            .clip()
            .unwrap()
            .forward(&r["clip_pixels"])
            .unwrap()
            .tokens;
        let e_clip = rel(&tokens, &r["clip_tokens"]);
        eprintln!("{kind:?} relative L2 error: latents {e_lat:.4}, features {e_feat:.4}, clip tokens {e_clip:.4}");
        for (what, e) in [
            ("latents", e_lat),
            ("features", e_feat),
            ("clip tokens", e_clip),
        ] {
            assert!(
                e < bound,
                "{kind:?} {what}: relative L2 error {e} ≥ {bound}"
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn missing_file_is_reported_with_folder_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dir("small"), tmp.path());
    std::fs::remove_file(tmp.path().join("vae/diffusion_pytorch_model.safetensors")).unwrap();
    let opts = BackboneOptions::default();
    let err = Backbone::load(tmp.path(), Device::Cpu, Kind::Float, &opts).unwrap_err();
    match &err {
        ModelError::MissingFile { dir, file, hint } => {
            assert_eq!(dir, tmp.path());
            assert_eq!(file, "vae/diffusion_pytorch_model.safetensors");
            assert!(hint.contains("prepare_weights.py"), "{hint}");
        }
        other => panic!("expected MissingFile, got {other}"),
    }
    std::fs::remove_file(tmp.path().join("image_encoder/config.json")).unwrap();
    let opts = BackboneOptions {
        load_clip: false,
        ..Default::default()
    };
    // Without CLIP the image encoder is not needed, but the VAE still is.
    assert!(matches!(
        Backbone::load(tmp.path(), Device::Cpu, Kind::Float, &opts),
        Err(ModelError::MissingFile { ref file, .. }) if file.starts_with("vae/")
    ));
}

#[test]
fn wrong_shape_names_tensor_file_and_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dir("small"), tmp.path());
    let path = tmp
        .path()
        .join("unet/diffusion_pytorch_model.fp16.safetensors");
    let mut tensors = Tensor::read_safetensors(&path).unwrap();
    let name = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight";
    for (n, t) in tensors.iter_mut() {
        if n == name {
            assert_eq!(t.size(), [32, 24]);
            *t = Tensor::zeros([32, 16], (Kind::Half, Device::Cpu));
        }
    }
    Tensor::write_safetensors(&tensors, &path).unwrap();
    let opts = BackboneOptions::default();
    let err = Backbone::load(tmp.path(), Device::Cpu, Kind::Float, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, ModelError::ShapeMismatch { tensor, expected, found, .. }
            if tensor == name && expected == &[32, 24] && found == &[32, 16]),
        "{msg}"
    );
    assert!(
        msg.contains(name)
            && msg.contains("diffusion_pytorch_model.fp16.safetensors")
            && msg.contains("[32, 24]")
            && msg.contains("[32, 16]"),
        "{msg}"
    );
}

#[test]
fn bad_inputs_and_options_are_rejected() {
    let bb = load_small(&BackboneOptions {
        load_clip: false,
        ..Default::default()
    });
    let _g = tch::no_grad_guard();
    let img = Tensor::zeros([1, 3, 60, 64], (Kind::Float, Device::Cpu));
    let err = bb.encode_latents(&img).unwrap_err();
    assert!(err.to_string().contains("multiple of 8"), "{err}");
    let latents = Tensor::zeros([1, 4, 8, 8], (Kind::Float, Device::Cpu));
    let wrong_width = Tensor::zeros([1, 77, 23], (Kind::Float, Device::Cpu));
    assert!(matches!(
        bb.unet_features(&latents, &wrong_width),
        Err(ModelError::InvalidInput { .. })
    ));
    let wrong_batch = Tensor::zeros([3, 77, 24], (Kind::Float, Device::Cpu));
    assert!(bb
        .unet_features(&latents.repeat([2, 1, 1, 1]), &wrong_batch)
        .is_err());
    let opts = BackboneOptions {
        unet_block: 4,
        load_clip: false,
        ..Default::default()
    };
    let err = Backbone::load(&dir("small"), Device::Cpu, Kind::Float, &opts).unwrap_err();
    assert!(
        matches!(err, ModelError::InvalidOption { ref option, .. } if option == "unet_block"),
        "{err}"
    );

    // A config imd does not implement is refused naming the field.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&dir("small"), tmp.path());
    let cfg = tmp.path().join("unet/config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "\"class_embed_type\": null",
            "\"class_embed_type\": \"timestep\"",
        ),
    )
    .unwrap();
    let err = Backbone::load(
        tmp.path(),
        Device::Cpu,
        Kind::Float,
        &BackboneOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ModelError::BadFile { .. }) && err.to_string().contains("class_embed_type"),
        "{err}"
    );
}

/// SD2.1-size configs (random weights) against diffusers / transformers; see the module doc.
#[test]
#[ignore = "needs the multi-GB output of `make_parity_fixtures.py --full`"]
fn full_size_sd21_config() {
    let folder = std::env::var_os("IMD_PARITY_FULL")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::util::root().join("target/parity_full"));
    let r = reference(&folder.join("reference.safetensors"));
    let bb = Backbone::load(
        &folder,
        Device::Cpu,
        Kind::Float,
        &BackboneOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (bb.feature_channels(), bb.cross_attention_dim()),
        (640, 1024)
    );
    let _g = tch::no_grad_guard();
    let latents = bb.encode_latents(&r["images"]).unwrap();
    assert_close("full latents", &latents, &r["latents"], F32_TOL);
    let f = bb.unet_features(&r["latents"], &r["prompts"]).unwrap();
    assert_close("full features_k2_t0", &f, &r["features_k2_t0"], F32_TOL);
    let clip = bb.clip().unwrap();
    assert_eq!((clip.hidden_size(), clip.embedding_dim()), (1280, 1024));
    let out = clip.forward(&r["clip_pixels"]).unwrap();
    assert_eq!(out.tokens.size(), [1, 257, 1280]);
    assert_close("full clip_tokens", &out.tokens, &r["clip_tokens"], F32_TOL);
    assert_close(
        "full clip_embedding",
        &out.embedding,
        &r["clip_embedding"],
        F32_TOL,
    );
}

// --- Coarse transformer: aggregated attention -------------------------------------------------

/// Efficient LoFTR's aggregated attention (`coarse.attention: aggregated`, agg size 4) against
/// the PyTorch reference of `scripts/fixtures/make_coarse_parity_fixtures.py` (float64): a [self,
/// cross] transformer, d_model 16, 4 heads, on grids that are not multiples of 4, with padding
/// masks, and with two different grids. imd runs float32 (the reference's float32 weights and
/// inputs); the outputs are O(1–5) after two residual layers with LayerNorms, so a float32 pass is
/// off by ~1e-6: 1e-5 is the bound.
#[test]
fn aggregated_attention_matches_the_torch_reference() {
    use imd::model::coarse::{CoarseGrid, CoarseTransformer};
    use imd::model::imd_config::{CoarseAttention, CoarseConfig, LayerKind};

    let refs = reference(&dir("coarse_aggregated").join("reference.safetensors"));
    let config = CoarseConfig {
        d_model: 16,
        nhead: 4,
        layers: vec![LayerKind::SelfAttention, LayerKind::CrossAttention],
        attention: CoarseAttention::Aggregated,
        agg_size: 4,
        ..CoarseConfig::default()
    };
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let transformer = CoarseTransformer::new(&vs.root(), &config);
    // Every variable comes from the fixture and every fixture weight is used.
    let names: Vec<String> = vs.variables().keys().cloned().collect();
    let weights: Vec<&String> = refs.keys().filter(|k| k.starts_with("layers.")).collect();
    assert_eq!(names.len(), weights.len(), "{names:?} vs {weights:?}");
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = refs
                .get(&name)
                .unwrap_or_else(|| panic!("fixture has no `{name}`"));
            var.copy_(src);
        }
    });
    vs.freeze();
    for case in ["odd", "masked", "unequal"] {
        let get = |k: &str| refs.get(&format!("{case}.{k}"));
        let g: Vec<i64> = Vec::try_from(get("grid").unwrap()).unwrap();
        let mask = |k: &str| get(k).map(|m| m.to_kind(Kind::Bool));
        let (m0, m1) = (mask("mask0"), mask("mask1"));
        let (o0, o1) = tch::no_grad(|| {
            transformer.forward(
                get("f0").unwrap(),
                get("f1").unwrap(),
                (CoarseGrid::new(g[0], g[1]), CoarseGrid::new(g[2], g[3])),
                m0.as_ref(),
                m1.as_ref(),
            )
        });
        assert_close(&format!("{case}.out0"), &o0, get("out0").unwrap(), 1e-5);
        assert_close(&format!("{case}.out1"), &o1, get("out1").unwrap(), 1e-5);
    }
}
