"""Encode anchor images and prompts once, so training runs neither the VAE nor a frozen text encoder."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ablation_core.anchors import ANCHOR, TARGET
from ablation_core.prompts import PromptPair
from ablation_core.text_embeddings import encode_prompts

ENCODED_FILE = "encoded.safetensors"
ENCODE_BATCH = 16


@dataclass
class EncodedData:
    """Cached training inputs.

    Latent tensors are [images, channels, height/8, width/8], already multiplied by the
    VAE scaling factor. `prompt_hidden` is [prompts, tokens, dim] and each image points
    into it through `anchor_prompt_ids` and `target_prompt_ids`. Target-image tensors are
    empty unless the objective trains on images of the target prompt.
    """

    anchor_latent_mean: torch.Tensor
    anchor_latent_std: torch.Tensor
    anchor_prompt_ids: torch.Tensor
    target_prompt_ids: torch.Tensor
    target_latent_mean: torch.Tensor
    target_latent_std: torch.Tensor
    target_image_anchor_ids: torch.Tensor
    target_image_target_ids: torch.Tensor
    prompt_hidden: torch.Tensor
    prompt_pooled: torch.Tensor | None
    prompts: list[str]
    image_size: tuple[int, int]  # pixels (height, width)

    @property
    def num_anchor_images(self) -> int:
        return self.anchor_latent_mean.shape[0]


def load_or_encode(
    pipe: DiffusionPipeline,
    anchor_dir: str | Path,
    rows: Sequence[dict],
    pairs: Sequence[PromptPair],
    excluded: set[int],
) -> EncodedData:
    """Return the cached encoding of `rows` minus `excluded`, encoding again if the cache is stale."""
    anchor_dir = Path(anchor_dir)
    training_rows = [row for row in rows if row["index"] not in excluded]
    fingerprint = _fingerprint(training_rows, pipe)
    cache = anchor_dir / ENCODED_FILE

    if cache.is_file():
        cached = _read_cache(cache, fingerprint)
        if cached is not None:
            return cached

    data = _encode(pipe, anchor_dir, training_rows, pairs)
    _write_cache(cache, data, fingerprint)
    return data


@torch.no_grad()
def _encode(pipe: DiffusionPipeline, anchor_dir: Path, rows: Sequence[dict], pairs: Sequence[PromptPair]) -> EncodedData:
    device = pipe.unet.device
    prompts = sorted({p.anchor_prompt for p in pairs} | {p.target_prompt for p in pairs})
    prompt_id = {prompt: i for i, prompt in enumerate(prompts)}

    hidden, pooled = [], []
    for start in range(0, len(prompts), ENCODE_BATCH):
        conditioning = encode_prompts(pipe, prompts[start : start + ENCODE_BATCH], device)
        hidden.append(conditioning.encoder_hidden_states.float().cpu())
        if conditioning.pooled is not None:
            pooled.append(conditioning.pooled.float().cpu())

    anchor_rows = [r for r in rows if r["role"] == ANCHOR]
    target_rows = [r for r in rows if r["role"] == TARGET]
    anchor_mean, anchor_std, size = _encode_images(pipe, anchor_dir, anchor_rows)
    target_mean, target_std, _ = _encode_images(pipe, anchor_dir, target_rows)

    def ids(selected: Sequence[dict], attribute: str) -> torch.Tensor:
        return torch.tensor(
            [prompt_id[getattr(pairs[r["pair_index"]], attribute)] for r in selected], dtype=torch.long
        )

    return EncodedData(
        anchor_latent_mean=anchor_mean,
        anchor_latent_std=anchor_std,
        anchor_prompt_ids=ids(anchor_rows, "anchor_prompt"),
        target_prompt_ids=ids(anchor_rows, "target_prompt"),
        target_latent_mean=target_mean,
        target_latent_std=target_std,
        target_image_anchor_ids=ids(target_rows, "anchor_prompt"),
        target_image_target_ids=ids(target_rows, "target_prompt"),
        prompt_hidden=torch.cat(hidden),
        prompt_pooled=torch.cat(pooled) if pooled else None,
        prompts=prompts,
        image_size=size,
    )


def _encode_images(pipe: DiffusionPipeline, anchor_dir: Path, rows: Sequence[dict]):
    vae = pipe.vae
    scale = vae.config.scaling_factor
    means, stds = [], []
    size = (0, 0)
    for start in range(0, len(rows), ENCODE_BATCH):
        batch = rows[start : start + ENCODE_BATCH]
        pixels = np.stack([np.asarray(Image.open(anchor_dir / r["file"]).convert("RGB")) for r in batch])
        size = pixels.shape[1:3]
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [B, 3, H, W] in [-1, 1]
        posterior = vae.encode(images.to(vae.device, vae.dtype)).latent_dist
        means.append((posterior.mean * scale).float().cpu())
        stds.append((posterior.std * scale).float().cpu())
    if not means:
        empty = torch.zeros(0)
        return empty, empty, (0, 0)
    return torch.cat(means), torch.cat(stds), (int(size[0]), int(size[1]))


def _fingerprint(rows: Sequence[dict], pipe: DiffusionPipeline) -> str:
    digest = hashlib.sha256(json.dumps(list(rows), sort_keys=True).encode())
    digest.update(json.dumps(dict(pipe.vae.config), sort_keys=True, default=str).encode())
    digest.update(type(pipe).__name__.encode())
    return digest.hexdigest()


_TENSOR_FIELDS = (
    "anchor_latent_mean",
    "anchor_latent_std",
    "anchor_prompt_ids",
    "target_prompt_ids",
    "target_latent_mean",
    "target_latent_std",
    "target_image_anchor_ids",
    "target_image_target_ids",
    "prompt_hidden",
)


def _write_cache(path: Path, data: EncodedData, fingerprint: str) -> None:
    tensors = {name: getattr(data, name).contiguous() for name in _TENSOR_FIELDS}
    if data.prompt_pooled is not None:
        tensors["prompt_pooled"] = data.prompt_pooled.contiguous()
    metadata = {
        "fingerprint": fingerprint,
        "prompts": json.dumps(data.prompts),
        "image_size": json.dumps(list(data.image_size)),
    }
    partial = path.with_suffix(".partial")
    save_file(tensors, str(partial), metadata=metadata)
    partial.replace(path)


def _read_cache(path: Path, fingerprint: str) -> EncodedData | None:
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("fingerprint") != fingerprint:
        return None
    tensors = load_file(str(path))
    return EncodedData(
        **{name: tensors[name] for name in _TENSOR_FIELDS},
        prompt_pooled=tensors.get("prompt_pooled"),
        prompts=json.loads(metadata["prompts"]),
        image_size=tuple(json.loads(metadata["image_size"])),
    )
