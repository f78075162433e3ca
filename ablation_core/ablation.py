"""The steps of one ablation run, as the worker and the CLI call them.

1. plan_ablation: concepts and config → prompt pairs and the images to generate.
2. prepare_base: hash the base tensors the run will touch, then apply earlier deltas.
3. generate_anchor_data: anchor images (and target images where the objective needs them).
4. train_delta: encode once, train, write the delta.
"""

import gc
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from diffusers import DiffusionPipeline

from ablation_core.anchors import ImageItem, filter_memorized, generate_images, plan_images, read_manifest
from ablation_core.concepts import Concept, ConceptKind
from ablation_core.config import AblationConfig, FrozenComponents, ParameterGroup
from ablation_core.deltas import Delta, apply_deltas, base_tensor_hash, save_delta
from ablation_core.encoding import load_or_encode
from ablation_core.errors import AblationInputError
from ablation_core.losses import needs_target_images
from ablation_core.parameter_groups import (
    TEXT_ENCODERS,
    embedding_weight_name,
    select_trainable,
    target_token_rows,
    unet_parameter_names,
)
from ablation_core.preservation import KeyValuePreservation, token_second_moment
from ablation_core.prompts import PromptPair, build_preservation_prompts, build_prompt_pairs
from ablation_core.similarity import ImageSimilarity
from ablation_core.training import Trainer

ProgressCallback = Callable[[int, int, float | None], bool | None]

# Prompts built per preserved concept; C in preservation.py averages over their tokens.
PRESERVATION_PROMPTS_PER_CONCEPT = 50


@dataclass
class AblationPlan:
    """The inputs of one run: the concepts, the config, the prompt pairs and the images to make."""

    concepts: list[Concept]
    config: AblationConfig
    pairs: list[PromptPair]
    images: list[ImageItem]
    preserved_prompts: list[str] = field(default_factory=list)


@dataclass
class BaseState:
    """The weights a run starts from: base model id, hash of the touched base tensors, earlier deltas."""

    identity: str
    base_hash: str
    parents: list[str] = field(default_factory=list)


@dataclass
class DeltaSummary:
    path: Path
    sha256: str
    size_bytes: int
    steps: int
    final_loss: float | None
    losses: list[float]
    ablation_losses: list[float]
    num_parameters: int


def plan_ablation(
    concepts: Sequence[Concept], config: AblationConfig, model_path: str | Path | None = None
) -> AblationPlan:
    """Build the prompt pairs and the image list; seeded, so the same input gives the same plan."""
    concepts = list(concepts)
    if not concepts:
        raise AblationInputError("no concepts given: give at least one concept to ablate")
    pairs = build_prompt_pairs(concepts, config.num_anchor_prompts, config.seed, model_path)
    images = plan_images(pairs, config.images_per_prompt, config.seed, needs_target_images(config.objective))
    preserved = build_preservation_prompts(
        concepts, config.preserved_concepts, PRESERVATION_PROMPTS_PER_CONCEPT, config.seed, model_path
    )
    return AblationPlan(concepts, config, pairs, images, preserved)


def anchor_cache_key(base_identity: str, plan: AblationPlan) -> str:
    """Key anchor data by the weights that make it, its prompts and seeds, and the sampler settings."""
    payload = {
        "base": base_identity,
        "images": [[item.role, item.prompt, item.seed] for item in plan.images],
        "sampler": asdict(plan.config.sampler),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def touched_tensors(pipe: DiffusionPipeline, plan: AblationPlan) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Names of the tensors the run will change, and the rows for row-sparse ones."""
    group = ParameterGroup(plan.config.parameter_group)
    if group is not ParameterGroup.EMBEDDING:
        return [f"unet.{name}" for name in unet_parameter_names(pipe.unet, group)], {}

    names, rows = [], {}
    for encoder_name, tokenizer_name in (("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2")):
        encoder = getattr(pipe, encoder_name, None)
        if encoder is None:
            continue
        name = f"{encoder_name}.{embedding_weight_name(encoder)}"
        names.append(name)
        rows[name] = torch.tensor(target_token_rows(getattr(pipe, tokenizer_name), plan.concepts), dtype=torch.long)
    return names, rows


def prepare_base(
    pipe: DiffusionPipeline,
    plan: AblationPlan,
    identity: str,
    parents: Sequence[Delta] = (),
) -> BaseState:
    """Hash the base tensors the run touches, then apply the earlier deltas of the model version."""
    names, rows = touched_tensors(pipe, plan)
    state = BaseState(identity, base_tensor_hash(pipe, names, rows), [d.sha256 or "" for d in parents])
    if parents:
        apply_deltas(pipe, parents)
    return state


def generate_anchor_data(
    pipe: DiffusionPipeline,
    plan: AblationPlan,
    anchor_dir: str | Path,
    progress: ProgressCallback | None = None,
) -> Path:
    """Generate the plan's images that `anchor_dir` lacks; a rerun resumes where it stopped."""
    anchor_dir = Path(anchor_dir)
    generate_images(pipe, plan.images, anchor_dir, plan.config.sampler, progress)
    (anchor_dir / "plan.json").write_text(
        json.dumps({"pairs": [asdict(p) for p in plan.pairs], "sampler": asdict(plan.config.sampler)}, indent=1)
    )
    return anchor_dir


def train_delta(
    pipe: DiffusionPipeline,
    plan: AblationPlan,
    anchor_dir: str | Path,
    delta_path: str | Path,
    base: BaseState,
    progress: ProgressCallback | None = None,
    similarity: ImageSimilarity | None = None,
    offload_frozen: bool = True,
) -> DeltaSummary:
    """Encode the anchor data once, train the parameter group, and write the delta file.

    After encoding, the VAE and text encoders are kept, offloaded or freed as
    `plan.config.frozen_components` sets; `offload_frozen=False` keeps them whatever the
    config sets. With "free" the pipeline loses them, so a caller that generates or
    evaluates afterwards must load the pipeline again.

    With `frozen_weights_dtype` bf16 or fp16, the UNet's untrained weights stay cast and
    rounded after training, beside the fp32 trained tensors, and the pipeline no longer
    samples without autocast. The delta is unaffected: it is taken against fp32 copies of
    the trained tensors made before the cast. The worker and `ablate run` never sample
    from this pipeline afterwards (evaluation loads the base model again). Other callers
    must load it again too.
    """
    anchor_dir = Path(anchor_dir)
    rows = _finished_rows(anchor_dir, plan)
    excluded = _memorized_copies(anchor_dir, plan, rows, similarity)
    data = load_or_encode(pipe, anchor_dir, rows, plan.pairs, excluded)
    second_moment = _preserved_second_moment(pipe, plan)

    group = ParameterGroup(plan.config.parameter_group)
    if offload_frozen:
        release_frozen_components(pipe, FrozenComponents(plan.config.frozen_components), group)

    trainable = select_trainable(pipe, group.value, plan.concepts)
    preservation = None
    if second_moment is not None:
        preservation = KeyValuePreservation(second_moment, trainable.full, trainable.base) or None
    outcome = Trainer(pipe, data, trainable, plan.config, plan.concepts, preservation).run(progress)
    values, row_indices = trainable.finish()

    metadata = {
        "base_model": base.identity,
        "base_hash": base.base_hash,
        "parents": base.parents,
        "parameter_group": group.value,
        "concepts": [c.to_dict() for c in plan.concepts],
        "config": plan.config.to_dict(),
        "steps": outcome.steps,
        "final_loss": outcome.final_loss,
        "anchor_images": data.num_anchor_images,
        "filtered_images": len(excluded),
        "preserved_prompts": len(plan.preserved_prompts) if preservation else 0,
    }
    delta = Delta(values, row_indices, metadata)
    sha256 = save_delta(delta, delta_path)
    return DeltaSummary(
        path=Path(delta_path),
        sha256=sha256,
        size_bytes=Path(delta_path).stat().st_size,
        steps=outcome.steps,
        final_loss=outcome.final_loss,
        losses=outcome.losses,
        ablation_losses=outcome.ablation_losses,
        num_parameters=delta.num_parameters(),
    )


def _preserved_second_moment(pipe: DiffusionPipeline, plan: AblationPlan) -> torch.Tensor | None:
    # Computed before the text encoders are released; the embedding group trains no key or
    # value weight, so the term would always be zero there.
    if not plan.preserved_prompts or plan.config.preservation_weight == 0:
        return None
    if ParameterGroup(plan.config.parameter_group) is ParameterGroup.EMBEDDING:
        return None
    return token_second_moment(pipe, plan.preserved_prompts)


def _finished_rows(anchor_dir: Path, plan: AblationPlan) -> list[dict]:
    done = read_manifest(anchor_dir)
    missing = [item.index for item in plan.images if item.index not in done]
    if missing:
        raise AblationInputError(
            f"anchor folder {str(anchor_dir)!r} lacks {len(missing)} of {len(plan.images)} images: "
            "run anchor generation first"
        )
    return [done[item.index] for item in plan.images]


def _memorized_copies(
    anchor_dir: Path, plan: AblationPlan, rows: list[dict], similarity: ImageSimilarity | None
) -> set[int]:
    memorized = {
        index: concept.memorized_image
        for index, concept in enumerate(plan.concepts)
        if concept.kind is ConceptKind.MEMORIZATION and concept.memorized_image
    }
    if not memorized:
        return set()
    return filter_memorized(anchor_dir, rows, memorized, plan.config.memorization_threshold, similarity)


def release_frozen_components(pipe: DiffusionPipeline, mode: FrozenComponents, group: ParameterGroup) -> list[str]:
    """Offload or free the components that training over cached tensors never runs; return their names.

    Training reads cached latents, so the VAE is never needed. The text encoders are
    needed only by the embedding group, which trains their token embeddings live.
    """
    names = ["vae"]
    if group is not ParameterGroup.EMBEDDING:
        names += list(TEXT_ENCODERS)
    names = [name for name in names if getattr(pipe, name, None) is not None]
    if mode is FrozenComponents.KEEP or not names:
        return []

    accelerator = pipe.unet.device.type != "cpu"
    if mode is FrozenComponents.OFFLOAD:
        if not accelerator:
            return []
        for name in names:
            getattr(pipe, name).to("cpu")
    else:
        for name in names:
            # register_modules keeps the pipeline config in step, as from_pretrained with name=None does.
            pipe.register_modules(**{name: None})
        gc.collect()

    if accelerator and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return names
