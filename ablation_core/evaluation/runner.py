"""Evaluate a model version (base model plus deltas) on concepts, before and after ablation.

Metrics follow Kumari et al., arXiv 2303.13516, Section 4, with a classifier in CLIP's role
for the Fashion-MNIST model: target accuracy and its score, misspelled-target accuracy,
surrounding concepts' accuracy, KID between base and ablated samples of the anchor and
surrounding concepts, and the memorization rate.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import structlog
import torch

from ablation_core.concepts import Concept, ConceptKind
from ablation_core.config import SamplerConfig
from ablation_core.deltas import apply_deltas, load_delta
from ablation_core.errors import AblationInputError
from ablation_core.evaluation.classifier import is_evaluator_folder, load_evaluator
from ablation_core.evaluation.kid import kid
from ablation_core.evaluation.memorization import copies
from ablation_core.evaluation.sampling import SampleCache, sample_plan
from ablation_core.evaluation.scorers import ClassifierScorer, ClipScorer
from ablation_core.evaluation.suite import ANCHOR, MISSPELLED, SURROUNDING, TARGET, PromptGroup, classifier_groups, clip_groups
from ablation_core.pipelines import load_pipeline

log = structlog.get_logger()

EVALUATOR_FOLDER = "evaluator"

# Copy threshold for real models, whose evaluator has no calibrated one: the core's default
# for filtering anchor images (ablation_core.config.AblationConfig.memorization_threshold).
DEFAULT_MEMORIZATION_THRESHOLD = 0.5


@dataclass
class EvaluationInputs:
    """Everything one evaluation needs, resolved and validated."""

    base_path: Path
    delta_paths: list[Path]
    concepts: list[Concept]
    num_samples: int = 16
    seed: int = 0
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    surrounding: list[str] = field(default_factory=list)


def find_evaluator(base_path: str | Path, evaluator_path: str | Path | None):
    """Return a scorer for `evaluator_path` or `<base_path>/evaluator/`, or None when neither exists.

    A folder with config.json, labels.json and model.safetensors is the Fashion-MNIST
    classifier; a folder with a transformers CLIPModel (config.json of model_type "clip")
    is CLIP. An explicit path that is neither raises AblationInputError.
    """
    candidates = [Path(evaluator_path)] if evaluator_path else [Path(base_path) / EVALUATOR_FOLDER]
    folder = candidates[0]
    if is_evaluator_folder(folder):
        return ClassifierScorer(load_evaluator(folder))
    if _is_clip_folder(folder):
        return load_clip_scorer(folder)
    if evaluator_path:
        raise AblationInputError(
            f"evaluator {str(folder)!r} is neither a classifier evaluator folder nor a local CLIPModel folder: "
            "give the folder of models/fashion-sd/evaluator or of a transformers CLIP model"
        )
    return None


def _is_clip_folder(folder: Path) -> bool:
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "clip"
    except (OSError, json.JSONDecodeError):
        return False


def load_clip_scorer(folder: Path) -> ClipScorer:
    from transformers import CLIPModel, CLIPTokenizer

    from ablation_core.tokenizer import load_clip_tokenizer

    model = CLIPModel.from_pretrained(str(folder), local_files_only=True)
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError):
        # A CLIP folder without tokenizer files uses the shipped CLIP BPE vocabulary.
        tokenizer = load_clip_tokenizer()
    return ClipScorer(model, tokenizer)


def build_groups(scorer, inputs: EvaluationInputs) -> list[PromptGroup]:
    ablated = {concept.target for concept in inputs.concepts}
    groups: list[PromptGroup] = []
    for index, concept in enumerate(inputs.concepts):
        if isinstance(scorer, ClassifierScorer):
            _check_known(scorer, concept)
            concept_groups = classifier_groups(concept, index, ablated, inputs.seed)
        else:
            concept_groups = clip_groups(concept, index, inputs.surrounding, inputs.seed)
        for group in concept_groups:
            if group.role in (TARGET, MISSPELLED) and concept.kind is ConceptKind.MEMORIZATION:
                group.memorized, group.memorization_threshold = _memorized_reference(scorer, concept)
        groups += concept_groups
    return groups


def _check_known(scorer: ClassifierScorer, concept: Concept) -> None:
    if concept.kind is ConceptKind.INSTANCE and not scorer.knows_class(concept.target):
        raise AblationInputError(
            f"instance target {concept.target!r} is not a class of the evaluator: use one of {list(scorer.evaluator.class_names)}"
        )
    if concept.kind is ConceptKind.STYLE and not scorer.knows_style(concept.target):
        raise AblationInputError(
            f"style target {concept.target!r} is not a style of the evaluator: use one of {list(scorer.evaluator.style_names[1:])}"
        )


def _memorized_reference(scorer, concept: Concept) -> tuple[torch.Tensor, float]:
    """Find the memorized image: the concept's file, else the evaluator's image for its caption."""
    path = concept.memorized_image
    threshold = DEFAULT_MEMORIZATION_THRESHOLD
    if isinstance(scorer, ClassifierScorer):
        settings = scorer.evaluator.memorization
        threshold = settings.get("threshold", threshold)
        if path is None and scorer.evaluator.path is not None:
            for entry in settings.get("images", []):
                if entry.get("caption") == concept.target and entry.get("file"):
                    path = str(scorer.evaluator.path / entry["file"])
    if path is None:
        raise AblationInputError(
            f"memorized image for {concept.target!r} not found: give the concept a memorized_image path"
        )
    return _read_image(path), float(threshold)


def _read_image(path: str) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as error:
        raise AblationInputError(f"memorized image {path!r} could not be read: {error}") from None
    return torch.from_numpy(pixels).permute(2, 0, 1)


def measure(scorer, groups: list[PromptGroup], before: SampleCache, after: SampleCache, num_samples: int, seed: int) -> list[dict]:
    """Score every group on base and ablated samples; return one result row per group."""
    rows = []
    for group in groups:
        items = sample_plan(group.prompts, num_samples, seed)
        if not items:
            continue
        images = {"before": before.stack(items), "after": after.stack(items)}
        row = {"concept_index": group.concept_index, "group": group.name, "role": group.role, "prompts": group.prompts[:4], "num_samples": len(items)}
        for state, samples in images.items():
            if group.check is not None:
                judgement = scorer.judge(samples, group.check)
                row[f"accuracy_{state}"] = round(float(judgement.hits.float().mean()), 4)
                row[f"score_{state}"] = round(float(judgement.scores.float().mean()), 4)
            if group.memorized is not None:
                hits = copies(samples, group.memorized, group.memorization_threshold)
                row[f"memorization_{state}"] = round(float(hits.float().mean()), 4)
                row["memorization_threshold"] = group.memorization_threshold
        if group.role in (ANCHOR, SURROUNDING, TARGET) and len(items) >= 2:
            value, _ = kid(_kid_scale(scorer.features(images["before"])), _kid_scale(scorer.features(images["after"])), seed=seed)
            row["kid_base_vs_ablated"] = round(value, 6)
        rows.append(row)
    return rows


def _kid_scale(features: torch.Tensor) -> torch.Tensor:
    """Scale each feature vector to norm sqrt(d), so the kernel's x.y/d term is a cosine.

    Raw classifier and CLIP features differ in scale by orders of magnitude, and the cubic
    kernel would turn that scale into KID values that cannot be compared across evaluators.
    """
    dim = features.shape[1]
    return torch.nn.functional.normalize(features.double(), dim=1) * dim**0.5


def summarize(concepts: Sequence[Concept], rows: list[dict]) -> list[dict]:
    """Condense the group rows into one entry per concept."""
    summary = []
    for index, concept in enumerate(concepts):
        mine = [row for row in rows if row["concept_index"] == index]
        entry = {"concept": concept.to_dict()}
        for role in (TARGET, MISSPELLED, ANCHOR):
            for row in (r for r in mine if r["role"] == role):
                for key in ("accuracy", "score", "memorization"):
                    for state in ("before", "after"):
                        if f"{key}_{state}" in row:
                            entry[f"{role}_{key}_{state}"] = row[f"{key}_{state}"]
                if "kid_base_vs_ablated" in row:
                    entry[f"{role}_kid"] = row["kid_base_vs_ablated"]
        neighbours = [r for r in mine if r["role"] == SURROUNDING and "accuracy_before" in r]
        if neighbours:
            entry["surrounding_accuracy_before"] = round(sum(r["accuracy_before"] for r in neighbours) / len(neighbours), 4)
            entry["surrounding_accuracy_after"] = round(sum(r["accuracy_after"] for r in neighbours) / len(neighbours), 4)
            entry["surrounding_max_drop"] = round(max(r["accuracy_before"] - r["accuracy_after"] for r in neighbours), 4)
            entry["surrounding_kid"] = round(sum(r.get("kid_base_vs_ablated", 0.0) for r in neighbours) / len(neighbours), 6)
            entry["surrounding"] = {r["group"]: {"before": r["accuracy_before"], "after": r["accuracy_after"]} for r in neighbours}
        summary.append(entry)
    return summary


def run_evaluation(inputs: EvaluationInputs, scorer, base_cache: SampleCache | None = None) -> dict:
    """Generate base and ablated samples, score them and return the full result with samples.

    `base_cache` lets several evaluations of one base model share its samples; it must come
    from the same base model, sampler and seed.
    """
    if not inputs.concepts:
        raise AblationInputError("no concepts given: give at least one concept to evaluate")
    if inputs.num_samples < 2:
        raise AblationInputError(f"invalid num_samples {inputs.num_samples}: use at least 2 (KID needs two samples)")
    groups = build_groups(scorer, inputs)
    deltas = [load_delta(path) for path in inputs.delta_paths]

    before = base_cache or SampleCache(load_pipeline(inputs.base_path), inputs.sampler, "base samples")
    if deltas:
        ablated_pipe = load_pipeline(inputs.base_path)
        apply_deltas(ablated_pipe, deltas, [str(path) for path in inputs.delta_paths])
        after = SampleCache(ablated_pipe, inputs.sampler, "ablated samples")
    else:
        after = before

    log.info("evaluation_started", base=str(inputs.base_path), deltas=len(deltas), concepts=len(inputs.concepts), groups=len(groups), evaluator=scorer.name)
    rows = measure(scorer, groups, before, after, inputs.num_samples, inputs.seed)
    return {
        "status": "ok",
        "evaluator": scorer.name,
        "base_path": str(inputs.base_path),
        "delta_paths": [str(path) for path in inputs.delta_paths],
        "num_samples": inputs.num_samples,
        "seed": inputs.seed,
        "sampler": dict(inputs.sampler.__dict__),
        "concepts": summarize(inputs.concepts, rows),
        "groups": rows,
        "_samples": {"groups": groups, "before": before, "after": after},
    }


def evaluate_model_version(
    base_path: str,
    delta_paths: list[str],
    concepts: list[Concept],
    *,
    num_samples: int = 16,
    seed: int = 0,
    evaluator_path: str | None = None,
) -> dict:
    """Evaluate base model + deltas on the concepts; return a JSON-able summary.

    Per concept: target accuracy and score before/after, misspelled-target accuracy,
    surrounding concepts' accuracy before/after, KID of anchor and surrounding samples,
    and the memorization rate for memorized images. Without an evaluator (neither
    `evaluator_path` nor `<base_path>/evaluator/`) it returns {"status": "skipped", ...}.
    """
    scorer = find_evaluator(base_path, evaluator_path)
    if scorer is None:
        return {"status": "skipped", "reason": f"no evaluator found in {str(Path(base_path) / EVALUATOR_FOLDER)!r} and none given"}
    inputs = EvaluationInputs(Path(base_path), [Path(p) for p in delta_paths], list(concepts), num_samples, seed)
    result = run_evaluation(inputs, scorer)
    result.pop("_samples")
    result.pop("groups")
    return result
