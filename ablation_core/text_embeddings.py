"""Text conditioning of SD 1.x, SD 2.x and SDXL UNets, computed the way each pipeline does."""

from dataclasses import dataclass
from typing import Sequence

import torch
from diffusers import DiffusionPipeline, StableDiffusionXLPipeline


@dataclass
class TextConditioning:
    """UNet text inputs for a batch of prompts.

    `encoder_hidden_states` is [batch, tokens, cross_attention_dim]; `pooled` is SDXL's
    pooled embedding of the second encoder [batch, projection_dim], else None.
    """

    encoder_hidden_states: torch.Tensor
    pooled: torch.Tensor | None = None

    def index(self, rows: torch.Tensor) -> "TextConditioning":
        pooled = None if self.pooled is None else self.pooled[rows]
        return TextConditioning(self.encoder_hidden_states[rows], pooled)


def is_sdxl(pipe: DiffusionPipeline) -> bool:
    return isinstance(pipe, StableDiffusionXLPipeline)


def encode_prompts(pipe: DiffusionPipeline, prompts: Sequence[str], device: torch.device | None = None) -> TextConditioning:
    """Encode prompts with the pipeline's text encoders, keeping the autograd graph.

    SD 1.x and 2.x condition on the last hidden state of one encoder. SDXL concatenates
    the penultimate hidden states of both encoders and adds the second one's pooled,
    projected embedding.
    """
    device = device or pipe.unet.device
    if not is_sdxl(pipe):
        ids = _token_ids(pipe.tokenizer, prompts, device)
        return TextConditioning(pipe.text_encoder(ids)[0])

    hidden_states = []
    pooled = None
    for tokenizer, encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids = _token_ids(tokenizer, prompts, device)
        output = encoder(ids, output_hidden_states=True)
        hidden_states.append(output.hidden_states[-2])
        pooled = output[0]  # text_embeds of CLIPTextModelWithProjection
    return TextConditioning(torch.cat(hidden_states, dim=-1), pooled)


def sdxl_time_ids(height: int, width: int, batch_size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Build SDXL's added time ids (original size, crop top-left, target size) for uncropped images."""
    row = torch.tensor([height, width, 0, 0, height, width], device=device, dtype=dtype)
    return row.expand(batch_size, 6)


def _token_ids(tokenizer, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
    return tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(device)
