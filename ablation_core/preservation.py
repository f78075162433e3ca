"""Keep surrounding concepts: hold their prompts' cross-attention keys and values in place.

Cross-attention reads the text only through `to_k` and `to_v`. For a trained key or
value weight W with base value W0, a prompt token's hidden state e gets its key or
value changed by (W - W0) e. Over the tokens of the preserved prompts, the mean squared
change per output channel is

    trace((W - W0) C (W - W0)^T) / out_features,   C = mean over tokens of e e^T,

so one d x d matrix C stands for all those prompts, and the term costs two small
matrix products per weight and step. If the term is zero for every key and value
weight, the UNet's output for a preserved prompt is exactly the base model's whenever
only keys and values are trained. The term adds to the objective of Kumari et al.
(arXiv 2303.13516): their anchor regularization keeps the anchor concept, this keeps
the named neighbours, which a text encoder with crowded embeddings otherwise drags
along with the target.
"""

from typing import Sequence

import torch
from diffusers import DiffusionPipeline
from torch import nn

from ablation_core.text_embeddings import encode_prompts

# Prompts per text-encoder call while C is accumulated.
ENCODE_BATCH = 64


@torch.no_grad()
def token_second_moment(pipe: DiffusionPipeline, prompts: Sequence[str]) -> torch.Tensor:
    """Return C = mean of e e^T over every token of `prompts` (float32, d x d, on the UNet's device).

    e is the UNet's cross-attention input: the text encoder's last hidden state for SD 1.x
    and 2.x, both encoders' penultimate states side by side for SDXL. Padding tokens are
    included, because the UNet attends to them too.
    """
    total, count = None, 0
    for start in range(0, len(prompts), ENCODE_BATCH):
        hidden = encode_prompts(pipe, prompts[start : start + ENCODE_BATCH]).encoder_hidden_states
        tokens = hidden.reshape(-1, hidden.shape[-1]).float()
        product = tokens.T @ tokens
        total = product if total is None else total + product
        count += tokens.shape[0]
    return (total / count).to(pipe.unet.device)


class KeyValuePreservation:
    """The preservation term over the trained cross-attention key and value weights."""

    def __init__(self, second_moment: torch.Tensor, trained: dict[str, nn.Parameter], base: dict[str, torch.Tensor]) -> None:
        # Only full key and value weights count; SD and SDXL give to_k and to_v no bias.
        self.second_moment = second_moment
        self.pairs = [
            (parameter, base[name].to(parameter.device))
            for name, parameter in trained.items()
            if _is_key_or_value_weight(name)
        ]

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def loss(self) -> torch.Tensor:
        """Mean over the weights of the mean squared key or value change of the preserved tokens."""
        terms = []
        for parameter, original in self.pairs:
            change = parameter.float() - original
            terms.append(((change @ self.second_moment) * change).sum() / change.shape[0])
        return torch.stack(terms).mean()


def _is_key_or_value_weight(name: str) -> bool:
    return (".attn2.to_k." in name or ".attn2.to_v." in name) and name.endswith(".weight")
