"""Anchor folders filled with random images, so training benchmarks skip the sampler.

The training step reads cached latents and embeddings, whose values do not change its
cost, so random-noise PNGs stand in for images the base model would generate.
"""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from ablation_core.ablation import AblationPlan, BaseState, plan_ablation
from ablation_core.anchors import IMAGES, MANIFEST
from ablation_core.concepts import Concept
from ablation_core.config import AblationConfig
from ablation_core.encoding import EncodedData, load_or_encode

GRUMPY_CAT = Concept("instance", "grumpy cat", "cat")


def benchmark_plan(num_images: int, **config) -> AblationPlan:
    """Plan an instance ablation with `num_images` anchor images and the given config fields."""
    full = AblationConfig.for_concepts([GRUMPY_CAT], num_anchor_prompts=num_images, **config)
    return plan_ablation([GRUMPY_CAT], full)


def write_random_anchors(plan: AblationPlan, anchor_dir: Path, resolution: int, seed: int = 0) -> list[dict]:
    """Write one random RGB image per planned image and the manifest rows generation would write."""
    (anchor_dir / IMAGES).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    with (anchor_dir / MANIFEST).open("w") as manifest:
        for item in plan.images:
            pixels = rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(anchor_dir / item.file)
            row = {**asdict(item), "file": item.file}
            manifest.write(json.dumps(row) + "\n")
            rows.append(row)
    return rows


def encoded_random_data(pipe, plan: AblationPlan, anchor_dir: Path, resolution: int) -> EncodedData:
    """Encode random anchor images and the plan's prompts through the pipeline's own VAE and text encoders."""
    rows = write_random_anchors(plan, anchor_dir, resolution)
    return load_or_encode(pipe, anchor_dir, rows, plan.pairs, set())


BENCHMARK_BASE = BaseState(identity="random-weights", base_hash="")
