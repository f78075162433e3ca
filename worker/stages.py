"""The stages of an ablation job, each a call into ablation_core plus storage.

anchor data -> training -> evaluation -> upload (with sha256) -> publication.
ablation_core is imported inside the functions, so the API and the tests that do not run
jobs never import torch.
"""

import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from api.jobs.tables import JobStage
from api.settings import Settings
from api.storage import ObjectStore, sha256_file
from worker.progress import JobProgress
from worker.records import JobSpec, PublishedDelta
from worker.weights import local_config, local_weights

log = structlog.get_logger(__name__)


@dataclass
class Workspace:
    """Local files of one job attempt, under the work dir; removed when the attempt ends."""

    root: Path

    @property
    def anchor_dir(self) -> Path:
        return self.root / "anchor"

    @property
    def delta_path(self) -> Path:
        return self.root / "delta.safetensors"

    @property
    def parent_delta_path(self) -> Path:
        return self.root / "parent-cumulative.safetensors"

    @property
    def cumulative_path(self) -> Path:
        return self.root / "cumulative.safetensors"


@dataclass
class Prepared:
    """The loaded pipeline and plan of a job attempt."""

    pipe: Any
    plan: Any
    concepts: list[Any]
    base_path: Path
    base: Any  # ablation_core.ablation.BaseState
    anchor_identity: str
    # Hash of the pristine base over every tensor of the cumulative delta; None without a
    # parent, since the new delta then is the cumulative delta and carries its own.
    cumulative_base_hash: str | None = None


def delta_keys(spec: JobSpec) -> tuple[str, str]:
    # Keyed by job, so an attempt that runs again overwrites its own objects.
    prefix = f"deltas/{spec.model_id}/jobs/{spec.job_id}"
    return f"{prefix}/delta.safetensors", f"{prefix}/cumulative.safetensors"


def prepare(spec: JobSpec, settings: Settings, store: ObjectStore, workspace: Workspace) -> Prepared:
    """Fetch the base weights, plan the run, and load the pipeline at the parent version."""
    from ablation_core.ablation import plan_ablation, prepare_base, touched_tensors
    from ablation_core.concepts import Concept
    from ablation_core.config import AblationConfig
    from ablation_core.deltas import base_tensor_hash, combined_tensor_index, load_delta
    from ablation_core.pipelines import load_pipeline, model_identity

    base_path = local_weights(store, settings.model_cache_dir, spec.weights_path, spec.weights_s3_key)
    config_path = local_config(store, settings.model_cache_dir, spec.config_path, spec.config_s3_key)
    concepts = []
    for concept in spec.concepts:
        image_path = None
        if concept.memorized_image_key is not None:
            image_path = workspace.root / "images" / Path(concept.memorized_image_key).name
            store.download_file(concept.memorized_image_key, image_path)
        concepts.append(
            Concept(
                kind=concept.concept_kind,
                target=concept.target_concept,
                anchor=concept.anchor_concept,
                anchor_prompts=concept.anchor_prompts,
                target_prompts=concept.target_prompts,
                memorized_image=str(image_path) if image_path else None,
            )
        )
    config = AblationConfig.for_concepts(concepts, model_path=base_path, **settings.ablation_overrides)
    plan = plan_ablation(concepts, config, model_path=base_path)

    pipe = load_pipeline(base_path, family=spec.family, device=device(), config=config_path)
    parents = []
    if spec.parent is not None:
        # Version N+1 is trained on version N: the parent's cumulative delta goes on first,
        # and the anchor images come from version N.
        store.download_file(spec.parent.cumulative_delta_key, workspace.parent_delta_path)
        parents.append(load_delta(workspace.parent_delta_path))

    # The cumulative delta's base hash needs the pristine base values, so it is taken
    # here: prepare_base applies the parents to these same tensors.
    cumulative_base_hash = None
    if parents:
        names, rows = combined_tensor_index(
            [(list(parent.tensors), parent.rows) for parent in parents] + [touched_tensors(pipe, plan)]
        )
        cumulative_base_hash = base_tensor_hash(pipe, names, rows)

    base = prepare_base(pipe, plan, model_identity(base_path), parents)
    anchor_identity = base.identity
    if spec.parent is not None:
        anchor_identity = f"{base.identity}+{spec.parent.cumulative_delta_sha256}"
    return Prepared(pipe, plan, concepts, base_path, base, anchor_identity, cumulative_base_hash)


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def anchor_data(prepared: Prepared, store: ObjectStore, workspace: Workspace, progress: JobProgress) -> None:
    """Reuse the anchor images cached in S3 for this base version, prompts and sampler,
    or generate them and fill the cache."""
    from ablation_core.ablation import anchor_cache_key, generate_anchor_data

    progress.enter(JobStage.ANCHOR_DATA)
    cache_key = f"anchor-cache/{anchor_cache_key(prepared.anchor_identity, prepared.plan)}.tar"
    archive = workspace.root / "anchor.tar"
    if store.exists(cache_key):
        store.download_file(cache_key, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(workspace.anchor_dir, filter="data")
        log.info("anchor_cache_hit", key=cache_key)
        progress.callback(1, 1)
        return

    generate_anchor_data(prepared.pipe, prepared.plan, workspace.anchor_dir, progress=progress.callback)
    with tarfile.open(archive, "w") as tar:
        tar.add(workspace.anchor_dir, arcname=".")
    store.upload_file(archive, cache_key)
    log.info("anchor_cache_filled", key=cache_key)


def training(prepared: Prepared, workspace: Workspace, progress: JobProgress) -> Any:
    from ablation_core.ablation import train_delta

    progress.enter(JobStage.TRAINING)
    return train_delta(
        prepared.pipe,
        prepared.plan,
        workspace.anchor_dir,
        workspace.delta_path,
        prepared.base,
        progress=progress.callback,
    )


def cumulative_delta(workspace: Workspace, prepared: Prepared, has_parent: bool) -> Path:
    """Write the cumulative delta base -> new version: the parent's combined with the new one."""
    from ablation_core.deltas import combine_deltas, load_delta, save_delta

    if not has_parent:
        shutil.copyfile(workspace.delta_path, workspace.cumulative_path)
        return workspace.cumulative_path
    combined = combine_deltas(
        [load_delta(workspace.parent_delta_path), load_delta(workspace.delta_path)],
        base_hash=prepared.cumulative_base_hash,
    )
    save_delta(combined, workspace.cumulative_path)
    return workspace.cumulative_path


def evaluation(prepared: Prepared, workspace: Workspace, settings: Settings, progress: JobProgress) -> dict[str, Any]:
    """Evaluate the new version; models without an evaluator return status "skipped"."""
    progress.enter(JobStage.EVALUATION)
    from ablation_core.evaluation import evaluate_model_version

    # NOTE: the evaluation gets no config folder, so a single-file base model with an
    # evaluator would fail here; only diffusers folders carry an evaluator today.
    summary = evaluate_model_version(
        prepared.base_path,
        [workspace.cumulative_path],
        prepared.concepts,
        num_samples=settings.evaluation_num_samples,
    )
    # JSON round trip: the summary goes into a JSONB column.
    return json.loads(json.dumps(summary, default=str))


def upload(
    spec: JobSpec, workspace: Workspace, store: ObjectStore, progress: JobProgress, evaluation_summary: dict[str, Any]
) -> PublishedDelta:
    """Upload the delta and the cumulative delta; check each stored size against the file."""
    progress.enter(JobStage.UPLOAD)
    delta_key, cumulative_key = delta_keys(spec)
    stored = {}
    for path, key in ((workspace.delta_path, delta_key), (workspace.cumulative_path, cumulative_key)):
        digest = sha256_file(path)
        store.upload_file(path, key)
        head = store.head(key)
        size = path.stat().st_size
        if head is None or head["ContentLength"] != size:
            raise OSError(f"S3 object {key} does not match the {size}-byte file just uploaded")
        stored[key] = (digest, size)
    return PublishedDelta(
        delta_key=delta_key,
        delta_sha256=stored[delta_key][0],
        delta_size_bytes=stored[delta_key][1],
        cumulative_delta_key=cumulative_key,
        cumulative_delta_sha256=stored[cumulative_key][0],
        cumulative_delta_size_bytes=stored[cumulative_key][1],
        evaluation=evaluation_summary,
    )
