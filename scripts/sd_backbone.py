"""SD2.1-structured backbones at small sizes, built with the upstream libraries' own
initialisation: shared by scripts/make_demo_backbone.py (the demo model's starting point) and
scripts/make_random_model.py (the random-weight test folder), which differ only in sizes.

The block structure is SD2.1's: 3 cross-attention down blocks + 1 plain, cross-attention mid
block, 1 plain + 3 cross-attention up blocks, linear projections, upcast attention, per-block
head counts (diffusers' `attention_head_dim` is the number of heads in SD2.x).
"""


def build_unet(channels, heads, layers, latent_channels, norm_groups, cross_dim):
    """A diffusers `UNet2DConditionModel` of SD2.1's structure."""
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        sample_size=32,
        in_channels=latent_channels,
        out_channels=latent_channels,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=tuple(channels),
        layers_per_block=layers,
        attention_head_dim=tuple(heads),
        cross_attention_dim=cross_dim,
        use_linear_projection=True,
        upcast_attention=True,
        norm_num_groups=norm_groups,
        flip_sin_to_cos=True,
        freq_shift=0,
    )


def build_vae(channels, layers, latent_channels, norm_groups, **extra):
    """A diffusers `AutoencoderKL` of SD's structure; `extra` goes to its constructor."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=tuple(channels),
        layers_per_block=layers,
        latent_channels=latent_channels,
        norm_num_groups=norm_groups,
        sample_size=64,
        **extra,
    )


def build_clip(config):
    """A transformers `CLIPVisionModelWithProjection` from a `CLIPVisionConfig` dict."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**config))
