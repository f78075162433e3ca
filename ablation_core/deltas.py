"""Deltas: safetensors files of W' - W for the trained tensors, with metadata to check them.

Row-sparse tensors (embedding rows) store their values under the tensor name and the row
indices under `ROWS_PREFIX + name`. Metadata values are strings, as safetensors requires;
structured ones are JSON.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from diffusers import DiffusionPipeline
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ablation_core.errors import AblationInputError, DeltaMismatchError
from ablation_core.parameter_groups import resolve_tensor

DELTA_FORMAT = "ablate-delta"
DELTA_FORMAT_VERSION = 1
ROWS_PREFIX = "__rows__."


@dataclass
class Delta:
    """Weight differences by tensor name, optional row indices, and the run's metadata.

    metadata keys: format, format_version, base_model (identity of the base weights),
    base_hash (hash of the touched base tensors), parents (sha256 of the deltas applied
    before training, in order), parameter_group, concepts, config.
    """

    tensors: dict[str, torch.Tensor]
    rows: dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None  # of the file it was loaded from or saved to

    @property
    def parents(self) -> list[str]:
        return list(self.metadata.get("parents", []))

    def num_parameters(self) -> int:
        return sum(t.numel() for t in self.tensors.values())


def base_tensor_hash(pipe: DiffusionPipeline, names: Sequence[str], rows: dict[str, torch.Tensor] | None = None) -> str:
    """Hash the current values of the named tensors (only the given rows of row-sparse ones).

    Values are rounded to float16 first, so a model loaded in float16 or float32 from the
    same float16 or float32 files hashes the same.
    """
    rows = rows or {}
    digest = hashlib.sha256()
    for name in sorted(names):
        tensor = _resolve(pipe, name).detach()
        if name in rows:
            tensor = tensor[rows[name].to(tensor.device)]
        digest.update(name.encode() + b"\0" + str(tuple(tensor.shape)).encode())
        digest.update(tensor.to(torch.float16).cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_delta(delta: Delta, path: str | Path) -> str:
    """Write the delta file and return its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.contiguous() for name, t in delta.tensors.items()}
    tensors.update({ROWS_PREFIX + name: r.contiguous() for name, r in delta.rows.items()})
    metadata = {
        "format": DELTA_FORMAT,
        "format_version": str(DELTA_FORMAT_VERSION),
        **{key: _encode_value(value) for key, value in delta.metadata.items() if key not in ("format", "format_version")},
    }
    partial = path.with_suffix(path.suffix + ".partial")
    save_file(tensors, str(partial), metadata=metadata)
    partial.replace(path)
    delta.sha256 = file_sha256(path)
    return delta.sha256


def load_delta(path: str | Path) -> Delta:
    """Read a delta file, rejecting files that are missing, unreadable or of another format."""
    path = Path(path)
    if not path.is_file():
        raise AblationInputError(f"delta file {str(path)!r} not found: give the path of a .safetensors delta")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            raw_metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise AblationInputError(f"delta file {str(path)!r} is not a readable safetensors file: {error}") from None

    if raw_metadata.get("format") != DELTA_FORMAT:
        raise AblationInputError(f"file {str(path)!r} is not an Ablate delta (no '{DELTA_FORMAT}' format tag)")
    version = int(raw_metadata.get("format_version", "0"))
    if version > DELTA_FORMAT_VERSION:
        raise AblationInputError(
            f"delta {str(path)!r} has format version {version}; this Ablate reads up to {DELTA_FORMAT_VERSION}: upgrade Ablate"
        )

    rows = {name[len(ROWS_PREFIX):]: t for name, t in tensors.items() if name.startswith(ROWS_PREFIX)}
    values = {name: t for name, t in tensors.items() if not name.startswith(ROWS_PREFIX)}
    metadata = {key: _decode_value(value) for key, value in raw_metadata.items()}
    return Delta(values, rows, metadata, sha256=file_sha256(path))


def check_delta(pipe: DiffusionPipeline, delta: Delta, label: str = "delta") -> None:
    """Check names, shapes, dtypes and the base hash against the pipeline's current weights."""
    for name, values in delta.tensors.items():
        try:
            tensor = _resolve(pipe, name)
        except KeyError:
            raise DeltaMismatchError(
                f"{label} changes tensor {name!r}, which this model lacks: it was made for another architecture"
            ) from None
        expected = tuple(tensor.shape)
        if name in delta.rows:
            expected = (len(delta.rows[name]), tensor.shape[1])
        if tuple(values.shape) != expected:
            raise DeltaMismatchError(
                f"{label} tensor {name!r} has shape {tuple(values.shape)}, the model's is {expected}: "
                "it was made for another architecture"
            )
        if not values.is_floating_point():
            raise DeltaMismatchError(f"{label} tensor {name!r} has dtype {values.dtype}; deltas hold floating-point values")

    expected_hash = delta.metadata.get("base_hash")
    if expected_hash and base_tensor_hash(pipe, list(delta.tensors), delta.rows) != expected_hash:
        base = delta.metadata.get("base_model", "unknown")
        raise DeltaMismatchError(
            f"{label} was made for other base weights (base model {base}): the touched tensors differ; "
            "apply it to the base model it was trained on"
        )


def apply_deltas(pipe: DiffusionPipeline, deltas: Sequence[Delta], labels: Sequence[str] | None = None) -> None:
    """Apply deltas in order after checking each against the base weights and its parent chain.

    Every delta's base hash refers to the base model's weights, so all are checked before
    any is applied. A delta trained on top of others lists their sha256 as parents, and
    must follow exactly those deltas in the stack.
    """
    labels = list(labels or [f"delta {i + 1}" for i in range(len(deltas))])
    for delta, label in zip(deltas, labels):
        check_delta(pipe, delta, label)

    applied: list[str] = []
    for delta, label in zip(deltas, labels):
        if delta.parents and delta.parents != applied[-len(delta.parents):]:
            raise DeltaMismatchError(
                f"{label} was trained on top of {len(delta.parents)} earlier delta(s) {delta.parents}: "
                "apply those first, in order, or use the cumulative delta"
            )
        _add(pipe, delta, sign=1.0)
        applied.append(delta.sha256 or "")


def revert_deltas(pipe: DiffusionPipeline, deltas: Sequence[Delta]) -> None:
    """Undo `apply_deltas(pipe, deltas)`, in reverse order."""
    for delta in reversed(deltas):
        _add(pipe, delta, sign=-1.0)


def combine_deltas(
    deltas: Sequence[Delta], base_pipe: DiffusionPipeline | None = None, base_hash: str | None = None
) -> Delta:
    """Sum a chain of deltas into one cumulative delta from the base to the last version.

    The result gets a base hash from `base_pipe` (the base model, no delta applied), or
    stores `base_hash` as given. That hash must cover the tensors and rows of
    `combined_tensor_index` for these deltas, taken on the base model before any delta,
    as a caller that no longer has the pristine base computes it in advance. With
    neither, loading the result checks names and shapes but not the base values.
    """
    if not deltas:
        raise AblationInputError("no deltas to combine: give at least one")
    if base_pipe is not None and base_hash is not None:
        raise AblationInputError("combine_deltas takes base_pipe or base_hash, not both: pass one")
    tensors: dict[str, torch.Tensor] = {}
    rows: dict[str, torch.Tensor] = {}
    for delta in deltas:
        for name, values in delta.tensors.items():
            if name in delta.rows:
                _combine_rows(tensors, rows, name, values.float(), delta.rows[name])
            elif name in tensors:
                tensors[name] = tensors[name] + values.float()
            else:
                tensors[name] = values.float().clone()

    if base_pipe is not None:
        base_hash = base_tensor_hash(base_pipe, list(tensors), rows)
    metadata = {
        "base_model": deltas[0].metadata.get("base_model"),
        "base_hash": base_hash,
        "parents": [],
        "covers": [d.sha256 for d in deltas],
        "parameter_group": sorted({str(d.metadata.get("parameter_group")) for d in deltas}),
        "concepts": [c for d in deltas for c in d.metadata.get("concepts", [])],
    }
    return Delta(tensors, rows, metadata)


def combined_tensor_index(
    parts: Sequence[tuple[Sequence[str], dict[str, torch.Tensor]]],
) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Return the tensor names and rows that `combine_deltas` gives a chain of deltas.

    Each part is the (names, rows) of one delta, in chain order: a delta's `tensors` and
    `rows`, or `ablation_core.ablation.touched_tensors` of a run not trained yet. Rows of a
    tensor that several parts touch are merged sorted and unique, as `combine_deltas` does,
    because `base_tensor_hash` depends on the row order.
    """
    names: list[str] = []
    rows: dict[str, torch.Tensor] = {}
    for part_names, part_rows in parts:
        for name in part_names:
            if name not in names:
                names.append(name)
                if name in part_rows:
                    rows[name] = part_rows[name].clone()
            elif name in part_rows and name in rows:
                rows[name] = torch.unique(torch.cat([rows[name], part_rows[name]]))
    return names, rows


def _combine_rows(tensors, rows, name, values, indices) -> None:
    if name not in tensors:
        tensors[name], rows[name] = values.clone(), indices.clone()
        return
    merged = torch.unique(torch.cat([rows[name], indices]))
    combined = torch.zeros(len(merged), values.shape[1])
    for old_values, old_rows in ((tensors[name], rows[name]), (values, indices)):
        positions = torch.searchsorted(merged, old_rows)
        combined.index_add_(0, positions, old_values)
    tensors[name], rows[name] = combined, merged


@torch.no_grad()
def _add(pipe: DiffusionPipeline, delta: Delta, sign: float) -> None:
    for name, values in delta.tensors.items():
        tensor = _resolve(pipe, name)
        update = values.to(tensor.device, torch.float32) * sign
        if name in delta.rows:
            index = delta.rows[name].to(tensor.device)
            tensor[index] = (tensor[index].float() + update).to(tensor.dtype)
        else:
            tensor.copy_((tensor.float() + update).to(tensor.dtype))


def _resolve(pipe: DiffusionPipeline, name: str) -> torch.Tensor:
    return resolve_tensor(pipe, name)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _encode_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _decode_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
