//! The diffusers `unet/config.json` (UNet2DConditionModel), read with serde and resolved into
//! per-block settings the way `UNet2DConditionModel.__init__` does.
//!
//! Settings imd does not implement (class / addition embeddings, other block types, …) are
//! rejected by [`UNetConfig::resolve`] with the offending field named, rather than ignored.

use serde::Deserialize;

/// A value given either once for every block or as one entry per block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
// `Many` first: untagged enums try variants in order, and for nested forms
// (`transformer_layers_per_block`) a list must become the outer list.
#[serde(untagged)]
pub enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T: Clone> OneOrMany<T> {
    /// One value per block: `One` repeated `n` times, or `Many` checked to have `n` entries.
    fn per_block(&self, n: usize, field: &str) -> Result<Vec<T>, String> {
        match self {
            OneOrMany::One(v) => Ok(vec![v.clone(); n]),
            OneOrMany::Many(v) if v.len() == n => Ok(v.clone()),
            OneOrMany::Many(v) => Err(format!(
                "`{field}` has {} entries, expected one per block ({n})",
                v.len()
            )),
        }
    }
}

/// `unet/config.json` as diffusers writes it (the fields imd reads or must check).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UNetConfig {
    pub in_channels: i64,
    pub center_input_sample: bool,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f64,
    pub down_block_types: Vec<String>,
    pub mid_block_type: Option<String>,
    pub up_block_types: Vec<String>,
    pub only_cross_attention: OneOrMany<bool>,
    pub block_out_channels: Vec<i64>,
    pub layers_per_block: OneOrMany<i64>,
    pub downsample_padding: i64,
    pub mid_block_scale_factor: f64,
    pub act_fn: String,
    pub norm_num_groups: Option<i64>,
    pub norm_eps: f64,
    pub cross_attention_dim: OneOrMany<i64>,
    pub transformer_layers_per_block: OneOrMany<OneOrMany<i64>>,
    pub reverse_transformer_layers_per_block: Option<Vec<OneOrMany<i64>>>,
    pub encoder_hid_dim: Option<i64>,
    pub encoder_hid_dim_type: Option<String>,
    /// Despite its name, the number of heads per block (diffusers issue #2011).
    pub attention_head_dim: OneOrMany<i64>,
    pub num_attention_heads: Option<OneOrMany<i64>>,
    pub dual_cross_attention: bool,
    pub use_linear_projection: bool,
    pub class_embed_type: Option<String>,
    pub addition_embed_type: Option<String>,
    pub num_class_embeds: Option<i64>,
    pub upcast_attention: bool,
    pub resnet_time_scale_shift: String,
    pub time_embedding_type: String,
    pub time_embedding_dim: Option<i64>,
    pub time_embedding_act_fn: Option<String>,
    pub timestep_post_act: Option<String>,
    pub time_cond_proj_dim: Option<i64>,
    pub conv_in_kernel: i64,
    pub attention_type: String,
    pub class_embeddings_concat: bool,
    pub cross_attention_norm: Option<String>,
}

impl Default for UNetConfig {
    /// diffusers' defaults for `UNet2DConditionModel`.
    fn default() -> Self {
        UNetConfig {
            in_channels: 4,
            center_input_sample: false,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            down_block_types: [
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            mid_block_type: Some("UNetMidBlock2DCrossAttn".into()),
            up_block_types: [
                "UpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            only_cross_attention: OneOrMany::One(false),
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: OneOrMany::One(2),
            downsample_padding: 1,
            mid_block_scale_factor: 1.0,
            act_fn: "silu".into(),
            norm_num_groups: Some(32),
            norm_eps: 1e-5,
            cross_attention_dim: OneOrMany::One(1280),
            transformer_layers_per_block: OneOrMany::One(OneOrMany::One(1)),
            reverse_transformer_layers_per_block: None,
            encoder_hid_dim: None,
            encoder_hid_dim_type: None,
            attention_head_dim: OneOrMany::One(8),
            num_attention_heads: None,
            dual_cross_attention: false,
            use_linear_projection: false,
            class_embed_type: None,
            addition_embed_type: None,
            num_class_embeds: None,
            upcast_attention: false,
            resnet_time_scale_shift: "default".into(),
            time_embedding_type: "positional".into(),
            time_embedding_dim: None,
            time_embedding_act_fn: None,
            timestep_post_act: None,
            time_cond_proj_dim: None,
            conv_in_kernel: 3,
            attention_type: "default".into(),
            class_embeddings_concat: false,
            cross_attention_norm: None,
        }
    }
}

/// Whether a down/up block has cross-attention transformers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `DownBlock2D` / `UpBlock2D`: resnets only.
    Plain,
    /// `CrossAttnDownBlock2D` / `CrossAttnUpBlock2D`: a transformer after every resnet.
    CrossAttn,
}

/// Settings shared by every block.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedPlan {
    pub groups: i64,
    pub eps: f64,
    pub temb_channels: i64,
    pub use_linear_projection: bool,
    pub upcast_attention: bool,
}

/// Transformers of one block: per-layer depth, heads and context width.
#[derive(Debug, Clone, PartialEq)]
pub struct AttnPlan {
    /// `Transformer2DModel.num_layers` for each resnet of the block.
    pub depth: Vec<i64>,
    pub heads: i64,
    pub cross_attention_dim: i64,
}

/// One resolved down block.
#[derive(Debug, Clone, PartialEq)]
pub struct DownPlan {
    pub in_channels: i64,
    pub out_channels: i64,
    pub layers: usize,
    pub attn: Option<AttnPlan>,
    pub add_downsample: bool,
}

/// The resolved `UNetMidBlock2DCrossAttn`.
#[derive(Debug, Clone, PartialEq)]
pub struct MidPlan {
    pub channels: i64,
    pub attn: AttnPlan,
    pub output_scale_factor: f64,
}

/// One resolved up block.
#[derive(Debug, Clone, PartialEq)]
pub struct UpPlan {
    pub prev_output_channels: i64,
    pub in_channels: i64,
    pub out_channels: i64,
    pub layers: usize,
    pub attn: Option<AttnPlan>,
    pub add_upsample: bool,
}

/// Time embedding settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TimePlan {
    /// Width of the sinusoidal projection (`block_out_channels[0]`).
    pub proj_dim: i64,
    /// Width of `time_embedding.linear_{1,2}` (`4 × block_out_channels[0]` unless overridden).
    pub embed_dim: i64,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f64,
}

impl UNetPlan {
    /// Width of the prompt embeddings (the same for every block, checked in `resolve`); 0 for
    /// a UNet without cross-attention.
    pub fn cross_attention_dim(&self) -> i64 {
        self.down
            .iter()
            .filter_map(|d| d.attn.as_ref())
            .chain(self.mid.as_ref().map(|m| &m.attn))
            .chain(self.up.iter().filter_map(|u| u.attn.as_ref()))
            .map(|a| a.cross_attention_dim)
            .next()
            .unwrap_or(0)
    }
}

/// Everything needed to build the UNet, checked for consistency.
#[derive(Debug, Clone, PartialEq)]
pub struct UNetPlan {
    pub in_channels: i64,
    pub center_input_sample: bool,
    pub conv_in_kernel: i64,
    pub block_out_channels: Vec<i64>,
    pub downsample_padding: i64,
    pub time: TimePlan,
    pub shared: SharedPlan,
    pub down: Vec<DownPlan>,
    pub mid: Option<MidPlan>,
    pub up: Vec<UpPlan>,
}

fn unsupported(field: &str, value: impl std::fmt::Debug, why: &str) -> String {
    format!("unsupported UNet config: `{field}` = {value:?} ({why})")
}

/// Per-block settings expanded to one entry per block (down order).
struct BlockSettings {
    heads: Vec<i64>,
    cross: Vec<i64>,
    layers: Vec<i64>,
    depth: Vec<OneOrMany<i64>>,
    reverse_depth: Vec<OneOrMany<i64>>,
}

/// Which attention block is planned (for errors) and its shape.
struct AttnBlock {
    what: &'static str,
    block: usize,
    channels: i64,
    layers: usize,
}

/// The attention of one block: heads dividing its channels, a depth of at least 1 per layer.
fn attn_plan(
    at: AttnBlock,
    depth: &OneOrMany<i64>,
    heads: i64,
    cross: i64,
) -> Result<AttnPlan, String> {
    let AttnBlock {
        what,
        block,
        channels,
        layers,
    } = at;
    if heads <= 0 || channels % heads != 0 {
        return Err(format!(
            "{what} {block}: {channels} channels cannot be split into {heads} attention heads"
        ));
    }
    let depth = depth.per_block(layers, &format!("transformer layers of {what} {block}"))?;
    if let Some(d) = depth.iter().find(|&&d| d < 1) {
        return Err(format!(
            "{what} {block}: transformer depth {d} must be at least 1"
        ));
    }
    Ok(AttnPlan {
        depth,
        heads,
        cross_attention_dim: cross,
    })
}

/// Every attention block uses the same `cross_attention_dim` (there is one prompt).
fn check_one_prompt(down: &[DownPlan], mid: Option<&MidPlan>, up: &[UpPlan]) -> Result<(), String> {
    let mut dims = down
        .iter()
        .filter_map(|d| d.attn.as_ref())
        .chain(mid.map(|m| &m.attn))
        .chain(up.iter().filter_map(|u| u.attn.as_ref()))
        .map(|a| a.cross_attention_dim);
    if let Some(first) = dims.next() {
        if let Some(other) = dims.find(|&d| d != first) {
            return Err(format!(
                "unsupported UNet config: blocks use different `cross_attention_dim`s \
                 ({first} and {other}) but there is one prompt"
            ));
        }
    }
    Ok(())
}

impl UNetConfig {
    /// Parse `config.json` text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("not a UNet2DConditionModel config: {e}"))
    }

    /// Check what imd supports and expand every per-block setting as diffusers does.
    pub fn resolve(&self) -> Result<UNetPlan, String> {
        self.check_supported()?;
        let groups = self.check_block_lists()?;
        let blocks = self.per_block_settings()?;
        let time = TimePlan {
            proj_dim: self.block_out_channels[0],
            embed_dim: self
                .time_embedding_dim
                .unwrap_or(4 * self.block_out_channels[0]),
            flip_sin_to_cos: self.flip_sin_to_cos,
            freq_shift: self.freq_shift,
        };
        let shared = SharedPlan {
            groups,
            eps: self.norm_eps,
            temb_channels: time.embed_dim,
            use_linear_projection: self.use_linear_projection,
            upcast_attention: self.upcast_attention,
        };
        let down = self.down_plans(&blocks)?;
        let mid = self.mid_plan(&blocks)?;
        let up = self.up_plans(&blocks)?;
        check_one_prompt(&down, mid.as_ref(), &up)?;
        self.check_conv_in()?;
        Ok(UNetPlan {
            in_channels: self.in_channels,
            center_input_sample: self.center_input_sample,
            conv_in_kernel: self.conv_in_kernel,
            block_out_channels: self.block_out_channels.clone(),
            downsample_padding: self.downsample_padding,
            time,
            shared,
            down,
            mid,
            up,
        })
    }

    /// The per-block lists line up with `down_block_types` (at least one block) and every
    /// block's channels split into the norm groups; returns the group count.
    fn check_block_lists(&self) -> Result<i64, String> {
        let n = self.down_block_types.len();
        if n == 0 {
            return Err("`down_block_types` is empty".into());
        }
        if self.up_block_types.len() != n {
            return Err(format!(
                "`up_block_types` has {} entries but `down_block_types` has {n}",
                self.up_block_types.len()
            ));
        }
        if self.block_out_channels.len() != n {
            return Err(format!(
                "`block_out_channels` has {} entries but `down_block_types` has {n}",
                self.block_out_channels.len()
            ));
        }
        let groups = self.norm_num_groups.ok_or_else(|| {
            unsupported(
                "norm_num_groups",
                "null",
                "UNets without group norm are not supported",
            )
        })?;
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if c <= 0 || c % groups != 0 {
                return Err(format!(
                    "`block_out_channels[{i}]` = {c} is not a positive multiple of `norm_num_groups` = {groups}"
                ));
            }
        }
        Ok(groups)
    }

    /// Heads, cross-attention widths, layers and transformer depths, one per block (after
    /// [`Self::check_block_lists`]).
    fn per_block_settings(&self) -> Result<BlockSettings, String> {
        let n = self.down_block_types.len();
        let heads = self.attention_head_dim.per_block(n, "attention_head_dim")?;
        let cross = self
            .cross_attention_dim
            .per_block(n, "cross_attention_dim")?;
        let layers = self.layers_per_block.per_block(n, "layers_per_block")?;
        if let Some((i, l)) = layers.iter().enumerate().find(|(_, &l)| l < 1) {
            return Err(format!("`layers_per_block[{i}]` = {l} must be at least 1"));
        }
        let depth = self
            .transformer_layers_per_block
            .per_block(n, "transformer_layers_per_block")?;
        let nested = depth.iter().any(|d| matches!(d, OneOrMany::Many(_)));
        if nested && self.reverse_transformer_layers_per_block.is_none() {
            // diffusers: "Must provide 'reverse_transformer_layers_per_block' if using asymmetrical UNet."
            return Err("`transformer_layers_per_block` lists per-layer depths but \
                        `reverse_transformer_layers_per_block` is missing"
                .into());
        }
        let reverse_depth: Vec<OneOrMany<i64>> = match &self.reverse_transformer_layers_per_block {
            Some(r) if r.len() == n => r.clone(),
            Some(r) => {
                return Err(format!(
                    "`reverse_transformer_layers_per_block` has {} entries, expected {n}",
                    r.len()
                ))
            }
            None => depth.iter().rev().cloned().collect(),
        };
        Ok(BlockSettings {
            heads,
            cross,
            layers,
            depth,
            reverse_depth,
        })
    }

    fn down_plans(&self, b: &BlockSettings) -> Result<Vec<DownPlan>, String> {
        let n = self.down_block_types.len();
        let mut down = Vec::with_capacity(n);
        let mut out_ch = self.block_out_channels[0];
        for (i, ty) in self.down_block_types.iter().enumerate() {
            let in_ch = out_ch;
            out_ch = self.block_out_channels[i];
            let l = b.layers[i] as usize;
            let attn = match block_kind(ty, "CrossAttnDownBlock2D", "DownBlock2D")
                .ok_or_else(|| unsupported(&format!("down_block_types[{i}]"), ty, SUPPORTED_DOWN))?
            {
                BlockKind::Plain => None,
                BlockKind::CrossAttn => Some(attn_plan(
                    AttnBlock {
                        what: "down block",
                        block: i,
                        channels: out_ch,
                        layers: l,
                    },
                    &b.depth[i],
                    b.heads[i],
                    b.cross[i],
                )?),
            };
            down.push(DownPlan {
                in_channels: in_ch,
                out_channels: out_ch,
                layers: l,
                attn,
                add_downsample: i + 1 < n,
            });
        }
        Ok(down)
    }

    fn mid_plan(&self, b: &BlockSettings) -> Result<Option<MidPlan>, String> {
        let last = self.down_block_types.len() - 1;
        match self.mid_block_type.as_deref() {
            None => Ok(None),
            Some("UNetMidBlock2DCrossAttn") => {
                // diffusers passes `transformer_layers_per_block[-1]` to a one-layer mid block.
                let attn = attn_plan(
                    AttnBlock {
                        what: "mid block",
                        block: 0,
                        channels: self.block_out_channels[last],
                        layers: 1,
                    },
                    &b.depth[last],
                    b.heads[last],
                    b.cross[last],
                )?;
                Ok(Some(MidPlan {
                    channels: self.block_out_channels[last],
                    attn,
                    output_scale_factor: self.mid_block_scale_factor,
                }))
            }
            Some(other) => Err(unsupported(
                "mid_block_type",
                other,
                "only UNetMidBlock2DCrossAttn or null is supported",
            )),
        }
    }

    fn up_plans(&self, b: &BlockSettings) -> Result<Vec<UpPlan>, String> {
        let n = self.up_block_types.len();
        let last = n - 1;
        let rev_ch: Vec<i64> = self.block_out_channels.iter().rev().copied().collect();
        let rev_heads: Vec<i64> = b.heads.iter().rev().copied().collect();
        let rev_cross: Vec<i64> = b.cross.iter().rev().copied().collect();
        let rev_layers: Vec<i64> = b.layers.iter().rev().copied().collect();
        let mut up = Vec::with_capacity(n);
        let mut out_ch = rev_ch[0];
        for (i, ty) in self.up_block_types.iter().enumerate() {
            let prev = out_ch;
            out_ch = rev_ch[i];
            let in_ch = rev_ch[(i + 1).min(last)];
            let l = rev_layers[i] as usize + 1;
            let attn = match block_kind(ty, "CrossAttnUpBlock2D", "UpBlock2D")
                .ok_or_else(|| unsupported(&format!("up_block_types[{i}]"), ty, SUPPORTED_UP))?
            {
                BlockKind::Plain => None,
                BlockKind::CrossAttn => Some(attn_plan(
                    AttnBlock {
                        what: "up block",
                        block: i,
                        channels: out_ch,
                        layers: l,
                    },
                    &b.reverse_depth[i],
                    rev_heads[i],
                    rev_cross[i],
                )?),
            };
            up.push(UpPlan {
                prev_output_channels: prev,
                in_channels: in_ch,
                out_channels: out_ch,
                layers: l,
                attn,
                add_upsample: i < last,
            });
        }
        Ok(up)
    }

    fn check_conv_in(&self) -> Result<(), String> {
        if self.in_channels <= 0 {
            return Err(format!(
                "`in_channels` = {} must be positive",
                self.in_channels
            ));
        }
        if self.conv_in_kernel <= 0 || self.conv_in_kernel % 2 == 0 {
            return Err(format!(
                "`conv_in_kernel` = {} must be a positive odd number",
                self.conv_in_kernel
            ));
        }
        Ok(())
    }

    fn check_supported(&self) -> Result<(), String> {
        if let Some(h) = &self.num_attention_heads {
            // diffusers' UNet2DConditionModel raises on it as well (issue #2011): configs
            // give the head count in `attention_head_dim`.
            return Err(unsupported(
                "num_attention_heads",
                h,
                "diffusers rejects it for UNet2DConditionModel; give the head count in `attention_head_dim`",
            ));
        }
        let only_cross = match &self.only_cross_attention {
            OneOrMany::One(b) => *b,
            OneOrMany::Many(v) => v.iter().any(|&b| b),
        };
        if only_cross {
            return Err(unsupported(
                "only_cross_attention",
                &self.only_cross_attention,
                "transformers without self-attention are not supported",
            ));
        }
        let act = self.act_fn.to_ascii_lowercase();
        if act != "silu" && act != "swish" {
            return Err(unsupported(
                "act_fn",
                &self.act_fn,
                "only silu is supported",
            ));
        }
        let must_be_none: [(&str, Option<String>); 10] = [
            ("class_embed_type", self.class_embed_type.clone()),
            ("addition_embed_type", self.addition_embed_type.clone()),
            (
                "num_class_embeds",
                self.num_class_embeds.map(|v| v.to_string()),
            ),
            (
                "encoder_hid_dim",
                self.encoder_hid_dim.map(|v| v.to_string()),
            ),
            ("encoder_hid_dim_type", self.encoder_hid_dim_type.clone()),
            ("time_embedding_act_fn", self.time_embedding_act_fn.clone()),
            ("timestep_post_act", self.timestep_post_act.clone()),
            (
                "time_cond_proj_dim",
                self.time_cond_proj_dim.map(|v| v.to_string()),
            ),
            ("cross_attention_norm", self.cross_attention_norm.clone()),
            (
                "class_embeddings_concat",
                self.class_embeddings_concat.then(|| "true".to_string()),
            ),
        ];
        for (field, value) in must_be_none {
            if let Some(v) = value {
                return Err(unsupported(
                    field,
                    v,
                    "only plain text-conditioned UNets (SD 1.x/2.x) are supported",
                ));
            }
        }
        let must_equal = [
            (
                "resnet_time_scale_shift",
                &self.resnet_time_scale_shift,
                "default",
            ),
            (
                "time_embedding_type",
                &self.time_embedding_type,
                "positional",
            ),
            ("attention_type", &self.attention_type, "default"),
        ];
        for (field, value, want) in must_equal {
            if value != want {
                return Err(unsupported(
                    field,
                    value,
                    &format!("only \"{want}\" is supported"),
                ));
            }
        }
        if self.dual_cross_attention {
            return Err(unsupported("dual_cross_attention", true, "not supported"));
        }
        Ok(())
    }
}

const SUPPORTED_DOWN: &str = "supported: CrossAttnDownBlock2D, DownBlock2D";
const SUPPORTED_UP: &str = "supported: CrossAttnUpBlock2D, UpBlock2D";

/// diffusers also accepts the `UNetRes` prefix on block names.
fn block_kind(ty: &str, cross: &str, plain: &str) -> Option<BlockKind> {
    let ty = ty.strip_prefix("UNetRes").unwrap_or(ty);
    if ty == cross {
        Some(BlockKind::CrossAttn)
    } else if ty == plain {
        Some(BlockKind::Plain)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stabilityai/stable-diffusion-2-1/unet/config.json`.
    const SD21: &str = r#"{
      "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.10.0.dev0",
      "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20],
      "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false,
      "cross_attention_dim": 1024,
      "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
      "downsample_padding": 1, "dual_cross_attention": false, "flip_sin_to_cos": true,
      "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
      "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": null,
      "only_cross_attention": false, "out_channels": 4, "sample_size": 96,
      "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
      "use_linear_projection": true, "upcast_attention": true
    }"#;

    #[test]
    fn resolves_sd21() {
        let plan = UNetConfig::from_json(SD21).unwrap().resolve().unwrap();
        assert_eq!(plan.time.proj_dim, 320);
        assert_eq!(plan.time.embed_dim, 1280);
        let heads: Vec<i64> = plan
            .down
            .iter()
            .filter_map(|d| d.attn.as_ref().map(|a| a.heads))
            .collect();
        assert_eq!(heads, vec![5, 10, 20]);
        assert!(plan.down[3].attn.is_none() && !plan.down[3].add_downsample);
        assert_eq!(plan.mid.as_ref().unwrap().attn.heads, 20);
        assert_eq!(plan.mid.as_ref().unwrap().attn.cross_attention_dim, 1024);
        // up_blocks.2: 1280+640, 640+640, 640+320 inputs, 10 heads of 64, 640 out, upsampler.
        let u2 = &plan.up[2];
        assert_eq!(
            (
                u2.prev_output_channels,
                u2.in_channels,
                u2.out_channels,
                u2.layers
            ),
            (1280, 320, 640, 3)
        );
        assert_eq!(u2.attn.as_ref().unwrap().heads, 10);
        assert!(u2.add_upsample && !plan.up[3].add_upsample);
        assert!(plan.up[0].attn.is_none());
        assert!(plan.shared.use_linear_projection && plan.shared.upcast_attention);
    }

    #[test]
    fn expands_int_and_list_forms() {
        let mut c = UNetConfig::from_json(SD21).unwrap();
        c.attention_head_dim = OneOrMany::One(8);
        c.transformer_layers_per_block = OneOrMany::Many(vec![
            OneOrMany::One(1),
            OneOrMany::One(2),
            OneOrMany::One(3),
            OneOrMany::One(1),
        ]);
        c.layers_per_block = OneOrMany::Many(vec![1, 2, 2, 2]);
        let plan = c.resolve().unwrap();
        assert_eq!(plan.down[0].layers, 1);
        assert_eq!(plan.down[2].attn.as_ref().unwrap().depth, vec![3, 3]);
        assert_eq!(plan.down[1].attn.as_ref().unwrap().heads, 8);
        // Up blocks take the reversed lists; they have one more layer than the down block.
        assert_eq!(plan.up[1].attn.as_ref().unwrap().depth, vec![3, 3, 3]);
        assert_eq!(plan.up[3].layers, 2);
        assert_eq!(plan.mid.as_ref().unwrap().attn.depth, vec![1]);

        // Per-layer depths need the reverse list, as in diffusers.
        c.transformer_layers_per_block = OneOrMany::Many(vec![
            OneOrMany::Many(vec![1]),
            OneOrMany::Many(vec![1, 2]),
            OneOrMany::Many(vec![1, 2]),
            OneOrMany::Many(vec![1, 2]),
        ]);
        assert!(c
            .resolve()
            .unwrap_err()
            .contains("reverse_transformer_layers_per_block"));
    }

    #[test]
    fn rejects_unsupported_configs() {
        let base = UNetConfig::from_json(SD21).unwrap();
        let mut c = base.clone();
        c.class_embed_type = Some("timestep".into());
        assert!(c.resolve().unwrap_err().contains("class_embed_type"));
        let mut c = base.clone();
        c.up_block_types[1] = "SimpleCrossAttnUpBlock2D".into();
        assert!(c.resolve().unwrap_err().contains("up_block_types[1]"));
        let mut c = base.clone();
        c.attention_head_dim = OneOrMany::Many(vec![5, 10, 20]);
        assert!(c.resolve().unwrap_err().contains("attention_head_dim"));
        let mut c = base.clone();
        c.attention_head_dim = OneOrMany::Many(vec![3, 10, 20, 20]);
        assert!(c.resolve().unwrap_err().contains("cannot be split into 3"));
        let mut c = base.clone();
        c.num_attention_heads = Some(OneOrMany::One(8));
        assert!(c.resolve().unwrap_err().contains("num_attention_heads"));
        let mut c = base.clone();
        c.cross_attention_dim = OneOrMany::Many(vec![1024, 1024, 768, 1024]);
        assert!(c
            .resolve()
            .unwrap_err()
            .contains("different `cross_attention_dim`s"));
        let mut c = base;
        c.addition_embed_type = Some("text_time".into());
        assert!(c.resolve().unwrap_err().contains("addition_embed_type"));
        assert!(UNetConfig::from_json("{\"block_out_channels\": \"x\"}").is_err());
    }

    #[test]
    fn parses_nested_json_forms() {
        let parse =
            |json: &str| -> OneOrMany<OneOrMany<i64>> { serde_json::from_str(json).unwrap() };
        assert_eq!(parse("2"), OneOrMany::One(OneOrMany::One(2)));
        assert_eq!(
            parse("[1, 2]"),
            OneOrMany::Many(vec![OneOrMany::One(1), OneOrMany::One(2)])
        );
        assert_eq!(
            parse("[[1], [1, 2]]"),
            OneOrMany::Many(vec![OneOrMany::Many(vec![1]), OneOrMany::Many(vec![1, 2])])
        );
    }
}
