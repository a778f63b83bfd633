//! Cross-image interaction prompt module (CIPM): per-image UNet prompts, each conditioned on
//! the other image.
//!
//! The paper gives the ingredients (three 1×1 convs for Q, K, V on the CLIP token features,
//! cross attention A←B and B←A, an MLP to `L × cross_attention_dim` prompt embeddings, a
//! scale factor s = 0.2 on the interaction term) but not the equations. We implement, for
//! CLIP tokens `f_A, f_B ∈ R^{N×D_c}` (CLS + patches, CLIP's last hidden state):
//!
//! ```text
//! g_X  = LN_in(f_X)                                     per-token LayerNorm
//! Q_A  = g_A W_q,  K_B = g_B W_k,  V_B = g_B W_v        1×1 convs = per-token linear maps to d
//! X_A  = g_A W_s + s · softmax(Q_A K_Bᵀ / √d) V_B       own content + scaled interaction, [N, d]
//! T_A  = M X_A + m                                       learned token mixing N → L, [L, d]
//! P_A  = LN_out(GELU(T_A W_1 + b_1) W_2 + b_2)           MLP to the UNet's context width, [L, D]
//! ```
//! and symmetrically `P_B` from `(f_B, f_A)` with the same weights. Each image's prompt thus
//! describes its own content (`W_s` term, so the prompt is informative even for unrelated
//! pairs) plus what it shares with the other image (the attention term); s keeps the
//! interaction a correction at initialisation, as in the paper. Token mixing follows SD4Match's
//! prompt module (a linear map over the token axis) and fixes `N` to the CLIP's token count
//! (`cipm.clip_tokens`). The closing LayerNorm puts prompts on the scale of the CLIP text
//! encoder's final-LayerNorm output that SD's cross attention was trained on.
//!
//! All sizes come from `imd.yaml` (`cipm.dim` = d, `cipm.prompt_length` = L, `cipm.scale` = s,
//! `cipm.mlp_hidden`, `cipm.clip_tokens` = N); `D_c` and `D` come from the backbone.

use tch::nn::{self, Module};
use tch::Tensor;

use super::imd_config::CipmConfig;
use super::ModelError;

/// The CIPM weights and sizes.
#[derive(Debug)]
pub struct Cipm {
    scale: f64,
    clip_tokens: i64,
    norm_in: nn::LayerNorm,
    self_proj: nn::Linear,
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    token_mix: nn::Linear,
    mlp_fc1: nn::Linear,
    mlp_fc2: nn::Linear,
    norm_out: nn::LayerNorm,
}

/// The two terms of `X_A = self_term + s · interaction` (exposed for tests and analysis).
#[derive(Debug)]
pub struct CipmTerms {
    /// `g_A W_s`, `[B, N, d]`.
    pub self_term: Tensor,
    /// `softmax(Q_A K_Bᵀ/√d) V_B`, `[B, N, d]`.
    pub interaction: Tensor,
}

impl Cipm {
    /// Register `norm_in`, `self_proj`, `q_proj`, `k_proj`, `v_proj`, `token_mix`, `mlp.fc1`,
    /// `mlp.fc2`, `norm_out` under `path`. `clip_hidden` = D_c, `context_dim` = D.
    pub fn new(path: &nn::Path, clip_hidden: i64, context_dim: i64, config: &CipmConfig) -> Self {
        let d = config.dim;
        let lin = |name: &str, i, o| nn::linear(path / name, i, o, Default::default());
        let mlp = path / "mlp";
        Cipm {
            scale: config.scale,
            clip_tokens: config.clip_tokens,
            norm_in: nn::layer_norm(path / "norm_in", vec![clip_hidden], Default::default()),
            self_proj: lin("self_proj", clip_hidden, d),
            q_proj: lin("q_proj", clip_hidden, d),
            k_proj: lin("k_proj", clip_hidden, d),
            v_proj: lin("v_proj", clip_hidden, d),
            token_mix: lin("token_mix", config.clip_tokens, config.prompt_length),
            mlp_fc1: nn::linear(&mlp / "fc1", d, config.mlp_hidden, Default::default()),
            mlp_fc2: nn::linear(
                &mlp / "fc2",
                config.mlp_hidden,
                context_dim,
                Default::default(),
            ),
            norm_out: nn::layer_norm(path / "norm_out", vec![context_dim], Default::default()),
        }
    }

    /// The interaction scale s.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    fn check_tokens(&self, f: &Tensor, which: &str) -> Result<(), ModelError> {
        let size = f.size();
        if size.len() != 3 || size[1] != self.clip_tokens {
            return Err(ModelError::InvalidInput {
                what: format!("CIPM input {which}"),
                reason: format!(
                    "CLIP tokens have shape {size:?}, expected [B, {}, hidden] \
                     (imd.yaml cipm.clip_tokens must equal the CLIP encoder's 1 + patches)",
                    self.clip_tokens
                ),
            });
        }
        Ok(())
    }

    /// The two terms of `X_A` for tokens `f_a`, `f_b` `[B, N, D_c]`.
    pub fn terms(&self, f_a: &Tensor, f_b: &Tensor) -> Result<CipmTerms, ModelError> {
        self.check_tokens(f_a, "A")?;
        self.check_tokens(f_b, "B")?;
        let g_a = self.norm_in.forward(f_a);
        let g_b = self.norm_in.forward(f_b);
        let q = self.q_proj.forward(&g_a).unsqueeze(1);
        let k = self.k_proj.forward(&g_b).unsqueeze(1);
        let v = self.v_proj.forward(&g_b).unsqueeze(1);
        // Single head; SDPA's default scale is 1/√d.
        let interaction = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        )
        .squeeze_dim(1);
        Ok(CipmTerms {
            self_term: self.self_proj.forward(&g_a),
            interaction,
        })
    }

    /// `X_A = self_term + s · interaction`, `[B, N, d]`.
    pub fn token_features(&self, f_a: &Tensor, f_b: &Tensor) -> Result<Tensor, ModelError> {
        let t = self.terms(f_a, f_b)?;
        Ok(t.self_term + t.interaction * self.scale)
    }

    /// `P_A`, `[B, L, D]`: the prompt of image A given image B.
    pub fn prompt(&self, f_a: &Tensor, f_b: &Tensor) -> Result<Tensor, ModelError> {
        let x = self.token_features(f_a, f_b)?;
        let t = self.token_mix.forward(&x.transpose(1, 2)).transpose(1, 2);
        let h = self.mlp_fc1.forward(&t).gelu("none");
        Ok(self.norm_out.forward(&self.mlp_fc2.forward(&h)))
    }

    /// Both prompts `(P_A, P_B)` in one batched pass.
    pub fn forward(&self, f_a: &Tensor, f_b: &Tensor) -> Result<(Tensor, Tensor), ModelError> {
        self.check_tokens(f_a, "A")?;
        self.check_tokens(f_b, "B")?;
        let b = f_a.size()[0];
        let both = Tensor::cat(&[f_a, f_b], 0);
        let other = Tensor::cat(&[f_b, f_a], 0);
        let p = self.prompt(&both, &other)?;
        Ok((p.narrow(0, 0, b), p.narrow(0, b, b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn cfg(scale: f64) -> CipmConfig {
        CipmConfig {
            clip_tokens: 5,
            dim: 8,
            prompt_length: 3,
            scale,
            mlp_hidden: 12,
        }
    }

    fn tokens(seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn([2, 5, 6], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn shapes_scaling_and_conditioning() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let cipm = Cipm::new(&vs.root(), 6, 10, &cfg(0.2));
        let (a, b, b2) = (tokens(1), tokens(2), tokens(3));
        let (pa, pb) = cipm.forward(&a, &b).unwrap();
        assert_eq!(pa.size(), vec![2, 3, 10]);
        assert_eq!(pb.size(), vec![2, 3, 10]);
        // Batched forward = the two one-sided prompts.
        assert!(pa.allclose(&cipm.prompt(&a, &b).unwrap(), 1e-5, 1e-5, false));
        assert!(pb.allclose(&cipm.prompt(&b, &a).unwrap(), 1e-5, 1e-5, false));

        // s scales exactly the interaction term: X(s) = self + s · interaction.
        let terms = cipm.terms(&a, &b).unwrap();
        let x = cipm.token_features(&a, &b).unwrap();
        let expected = &terms.self_term + &terms.interaction * 0.2;
        assert!(x.allclose(&expected, 1e-6, 1e-6, false));
        assert!(terms.interaction.abs().max().double_value(&[]) > 1e-3);

        // Conditioning: P_A changes when image B changes…
        let pa2 = cipm.prompt(&a, &b2).unwrap();
        assert!((&pa - &pa2).abs().max().double_value(&[]) > 1e-3);
        // …and does not with s = 0 (same weights).
        let vs0 = nn::VarStore::new(Device::Cpu);
        let cipm0 = Cipm::new(&vs0.root(), 6, 10, &cfg(0.0));
        let mut vs0 = vs0;
        vs0.copy(&vs).unwrap();
        let q = cipm0.prompt(&a, &b).unwrap();
        let q2 = cipm0.prompt(&a, &b2).unwrap();
        assert!(q.allclose(&q2, 1e-6, 1e-6, false));
        // The interaction term is an attention average of image B's values.
        let v = cipm.v_proj.forward(&cipm.norm_in.forward(&b));
        let lo = v.amin(1, true) - 1e-5;
        let hi = v.amax(1, true) + 1e-5;
        let i = &terms.interaction;
        assert!(bool::try_from(i.ge_tensor(&lo).all()).unwrap());
        assert!(bool::try_from(i.le_tensor(&hi).all()).unwrap());
    }

    #[test]
    fn wrong_token_count_is_an_error_naming_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cipm = Cipm::new(&vs.root(), 6, 10, &cfg(0.2));
        let bad = Tensor::zeros([1, 4, 6], (Kind::Float, Device::Cpu));
        let err = cipm.forward(&bad, &bad).unwrap_err().to_string();
        assert!(
            err.contains("cipm.clip_tokens") && err.contains("[1, 4, 6]"),
            "{err}"
        );
    }
}
