"""Seeded sample generation for evaluation prompt groups.

Sample i of a group uses prompt i modulo the group's prompts and a seed derived from the
evaluation seed, the prompt and i, so the model before and after ablation is compared on
the same starting noise, and a prompt shared by two groups gives the same images.
"""

import hashlib

import torch
from diffusers import DiffusionPipeline
from tqdm import tqdm

from ablation_core.config import SamplerConfig
from ablation_core.samplers import build_scheduler


def sample_seed(seed: int, prompt: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{prompt}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


def sample_plan(prompts: list[str], num_samples: int, seed: int) -> list[tuple[str, int]]:
    """List (prompt, seed) for each of a group's samples."""
    if not prompts:
        return []
    return [(prompts[i % len(prompts)], sample_seed(seed, prompts[i % len(prompts)], i // len(prompts))) for i in range(num_samples)]


class SampleCache:
    """Generate each (prompt, seed) once per model state; images are float RGB (3, H, W) in [0, 1]."""

    def __init__(self, pipe: DiffusionPipeline, sampler: SamplerConfig, description: str = "samples"):
        self.pipe = pipe
        self.sampler = sampler
        self.description = description
        self.images: dict[tuple[str, int], torch.Tensor] = {}
        pipe.scheduler = build_scheduler(sampler.scheduler, pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)

    @torch.no_grad()
    def generate(self, items: list[tuple[str, int]]) -> None:
        missing = list(dict.fromkeys(item for item in items if item not in self.images))
        batch_size = self.sampler.batch_size
        batches = range(0, len(missing), batch_size)
        for start in tqdm(batches, desc=self.description, disable=len(missing) <= batch_size):
            batch = missing[start : start + batch_size]
            output = self.pipe(
                prompt=[prompt for prompt, _ in batch],
                generator=[torch.Generator("cpu").manual_seed(seed) for _, seed in batch],
                num_inference_steps=self.sampler.num_inference_steps,
                guidance_scale=self.sampler.guidance_scale,
                height=self.sampler.height,
                width=self.sampler.width,
                output_type="pt",
            ).images
            for item, image in zip(batch, output):
                self.images[item] = image.float().cpu().clamp(0, 1)

    def stack(self, items: list[tuple[str, int]]) -> torch.Tensor:
        self.generate(items)
        return torch.stack([self.images[item] for item in items])
