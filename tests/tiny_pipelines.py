"""Tiny real diffusers pipelines for tests, built in code after a fixed seed.

Each family keeps the structure that matters to ablation: cross-attention blocks whose
attn2 to_k/to_v read the text embeddings, the family's prediction type, and (for SDXL)
two text encoders with added time and text conditioning. Images are 32x32 pixels.
"""

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from ablation_core.tokenizer import load_clip_tokenizer

IMAGE_SIZE = 32
TEXT_DIM = 32


def _text_config(hidden_size: int = TEXT_DIM, projection_dim: int = TEXT_DIM) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=IMAGE_SIZE,
    )


def _scheduler(prediction_type: str) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
        clip_sample=False,
        steps_offset=1,
    )


def _unet(cross_attention_dim: int, **extra) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=16,
        **extra,
    )


def build_sd1(seed: int = 0) -> StableDiffusionPipeline:
    """Build an SD 1.x-shaped pipeline: epsilon prediction, one CLIP text encoder."""
    torch.manual_seed(seed)
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config()),
        tokenizer=load_clip_tokenizer(),
        unet=_unet(TEXT_DIM),
        scheduler=_scheduler("epsilon"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sd2(seed: int = 0) -> StableDiffusionPipeline:
    """Build an SD 2.x-shaped pipeline: v-prediction, linear projection, "!" padding."""
    torch.manual_seed(seed)
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(hidden_size=48)),
        tokenizer=load_clip_tokenizer(pad_token="!"),
        unet=_unet(48, use_linear_projection=True),
        scheduler=_scheduler("v_prediction"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sdxl(seed: int = 0) -> StableDiffusionXLPipeline:
    """Build an SDXL-shaped pipeline: two text encoders and added time/text conditioning."""
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_text_config())
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(hidden_size=32, projection_dim=32))
    unet = _unet(
        64,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=32 + 6 * 8,
        transformer_layers_per_block=1,
    )
    return StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=load_clip_tokenizer(),
        tokenizer_2=load_clip_tokenizer(pad_token="!"),
        unet=unet,
        scheduler=_scheduler("epsilon"),
    )


BUILDERS = {"sd1": build_sd1, "sd2": build_sd2, "sdxl": build_sdxl}
