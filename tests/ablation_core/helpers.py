"""Small runs of the ablation steps on tiny pipelines."""

from pathlib import Path

from ablation_core.ablation import generate_anchor_data, plan_ablation, prepare_base, train_delta
from ablation_core.concepts import Concept
from ablation_core.config import AblationConfig

GRUMPY_CAT = Concept("instance", "grumpy cat", "cat")

FAST = {
    "num_anchor_prompts": 4,
    "images_per_prompt": 1,
    "batch_size": 4,
    "max_steps": 4,
    "learning_rate": 1e-3,
    "sampler": {"num_inference_steps": 2, "batch_size": 4},
}


def fast_config(concepts=(GRUMPY_CAT,), **overrides) -> AblationConfig:
    return AblationConfig.for_concepts(list(concepts), **{**FAST, **overrides})


def run_ablation(pipe, work_dir: Path, concepts=(GRUMPY_CAT,), parents=(), identity="tiny", **overrides):
    """Plan, generate anchors and train; return the delta summary."""
    config = fast_config(concepts, **overrides)
    plan = plan_ablation(list(concepts), config)
    base = prepare_base(pipe, plan, identity, parents)
    generate_anchor_data(pipe, plan, work_dir / "anchors")
    return train_delta(pipe, plan, work_dir / "anchors", work_dir / "delta.safetensors", base)
