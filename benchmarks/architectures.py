"""Stable Diffusion architectures built in code with random weights, for speed and memory benchmarks.

Speed and memory do not depend on weight values, so the full-size models are built from
their published configs and never downloaded. The values below are those of the
diffusers-format `config.json` files of runwayml/stable-diffusion-v1-5 (UNet, VAE) and
openai/clip-vit-large-patch14 (text encoder), and of
stabilityai/stable-diffusion-xl-base-1.0 (UNet, VAE, text_encoder = CLIP ViT-L/14,
text_encoder_2 = OpenCLIP ViT-bigG/14).
"""

from dataclasses import dataclass

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

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
}

SDXL_UNET = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280),
    "layers_per_block": 2,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 10),
    "cross_attention_dim": 2048,
    "attention_head_dim": (5, 10, 20),
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
    "norm_num_groups": 32,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
}

# A mid-size SD-1-shaped UNet (about a tenth of SD 1.5's parameters) for CPU timing, where
# the full size takes tens of seconds a step.
MID_UNET = {
    **SD15_UNET,
    "sample_size": 32,
    "block_out_channels": (96, 192, 384, 384),
}

CLIP_L_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}

OPENCLIP_BIGG_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}

SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
}


@dataclass(frozen=True)
class Architecture:
    """One model family at benchmark scale: UNet and VAE configs, text encoders, native resolution in pixels."""

    name: str
    unet: dict
    text_encoders: tuple[dict, ...]
    resolution: int
    vae_scaling_factor: float
    xl: bool = False


ARCHITECTURES = {
    "sd15": Architecture("SD 1.5", SD15_UNET, (CLIP_L_TEXT,), 512, 0.18215),
    "sdxl": Architecture("SDXL", SDXL_UNET, (CLIP_L_TEXT, OPENCLIP_BIGG_TEXT), 1024, 0.13025, xl=True),
    "mid": Architecture("mid-size SD-1-shaped", MID_UNET, (CLIP_L_TEXT,), 256, 0.18215),
}


def _text_config(values: dict) -> CLIPTextConfig:
    return CLIPTextConfig(**values, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)


def _scheduler() -> DDPMScheduler:
    # SD 1.5's and SDXL's training noise schedule. Its tensors stay on the CPU even when
    # the caller builds the models under a CUDA device context, as diffusers expects.
    with torch.device("cpu"):
        return _ddpm()


def _ddpm() -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )


def build_unet(architecture: Architecture, dtype: torch.dtype = torch.float32) -> UNet2DConditionModel:
    return UNet2DConditionModel(**architecture.unet).to(dtype)


def build_pipeline(
    architecture: Architecture, seed: int = 0, dtype: torch.dtype = torch.float32, text_layers: int | None = None
):
    """Build the whole pipeline with random weights.

    `text_layers` overrides the text encoders' depth. The training step never runs them,
    so a shallow encoder keeps the CPU benchmark short without changing what it times.
    """
    torch.manual_seed(seed)
    configs = [dict(c, **({"num_hidden_layers": text_layers} if text_layers else {})) for c in architecture.text_encoders]
    vae = AutoencoderKL(
        **SD_VAE, sample_size=architecture.resolution, scaling_factor=architecture.vae_scaling_factor
    )
    unet = build_unet(architecture)
    if architecture.xl:
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=CLIPTextModel(_text_config(configs[0])),
            text_encoder_2=CLIPTextModelWithProjection(_text_config(configs[1])),
            tokenizer=load_clip_tokenizer(),
            tokenizer_2=load_clip_tokenizer(pad_token="!"),
            unet=unet,
            scheduler=_scheduler(),
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=CLIPTextModel(_text_config(configs[0])),
            tokenizer=load_clip_tokenizer(),
            unet=unet,
            scheduler=_scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dtype=dtype)
