"""Model versions: a base pipeline with an ordered chain of deltas applied."""

from pathlib import Path
from typing import Sequence

import torch
from diffusers import DiffusionPipeline

from ablation_core.deltas import Delta, apply_deltas, load_delta
from ablation_core.pipelines import load_pipeline


def load_model_version(
    model: str | Path,
    delta_paths: Sequence[str | Path] = (),
    family: str | None = None,
    device: str | torch.device | None = None,
    torch_dtype: torch.dtype | None = None,
    config: str | Path | None = None,
) -> tuple[DiffusionPipeline, list[Delta]]:
    """Load the base model and apply the deltas in order; return the pipeline and the deltas."""
    pipe = load_pipeline(model, family=family, torch_dtype=torch_dtype, device=device, config=config)
    deltas = [load_delta(path) for path in delta_paths]
    apply_deltas(pipe, deltas, labels=[f"delta {str(path)!r}" for path in delta_paths])
    return pipe, deltas
