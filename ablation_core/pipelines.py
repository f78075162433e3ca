"""Load Stable-Diffusion-family pipelines from local files only."""

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.loaders.single_file_utils import SingleFileComponentError

from ablation_core.errors import AblationInputError

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt")


class ModelFamily(StrEnum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"


def parse_family(value: str | None) -> ModelFamily | None:
    if value is None:
        return None
    try:
        return ModelFamily(value.strip().lower())
    except ValueError:
        valid = ", ".join(f.value for f in ModelFamily)
        raise AblationInputError(f"invalid model family {value!r}: use one of {valid}") from None


def load_pipeline(
    path: str | Path,
    family: str | None = None,
    torch_dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    config: str | Path | None = None,
) -> DiffusionPipeline:
    """Load a pipeline from a diffusers folder or a single-file checkpoint, never from a hub.

    A single-file checkpoint (.safetensors or .ckpt) needs `config`: a local diffusers
    folder with the component configs of its family, since the library would otherwise
    fetch them from the Hugging Face Hub.
    """
    path = Path(path)
    expected = parse_family(family)
    if not path.exists():
        raise AblationInputError(f"base model path {str(path)!r} not found: give a diffusers folder or a checkpoint file")

    kwargs: dict[str, Any] = {"local_files_only": True}
    if torch_dtype is not None:
        kwargs["torch_dtype"] = torch_dtype

    if path.is_dir():
        pipe = _load_folder(path, kwargs)
    else:
        pipe = _load_single_file(path, expected, config, kwargs)

    detected = detect_family(pipe)
    if expected is not None and expected is not detected:
        raise AblationInputError(
            f"base model {str(path)!r} is a {detected.value} model, not {expected.value}: fix the family"
        )

    pipe.set_progress_bar_config(disable=True)
    if device is not None:
        pipe.to(device)
    return pipe


def _load_folder(path: Path, kwargs: dict[str, Any]) -> DiffusionPipeline:
    if not (path / "model_index.json").is_file():
        raise AblationInputError(
            f"base model folder {str(path)!r} has no model_index.json: give a diffusers pipeline folder"
        )
    try:
        class_name = json.loads((path / "model_index.json").read_text()).get("_class_name")
        if class_name == StableDiffusionPipeline.__name__:
            kwargs = {**kwargs, "safety_checker": None, "requires_safety_checker": False}
        pipe = DiffusionPipeline.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise AblationInputError(f"base model folder {str(path)!r} could not be loaded: {_first_line(error)}") from None
    if not isinstance(pipe, (StableDiffusionPipeline, StableDiffusionXLPipeline)):
        raise AblationInputError(
            f"base model {str(path)!r} is a {type(pipe).__name__}: only Stable Diffusion 1.x, 2.x and SDXL are supported"
        )
    return pipe


def _load_single_file(
    path: Path, family: ModelFamily | None, config: str | Path | None, kwargs: dict[str, Any]
) -> DiffusionPipeline:
    if path.suffix not in SINGLE_FILE_SUFFIXES:
        raise AblationInputError(
            f"base model file {str(path)!r} is not a .safetensors or .ckpt checkpoint"
        )
    if config is None or not (Path(config) / "model_index.json").is_file():
        raise AblationInputError(
            f"single-file checkpoint {str(path)!r} needs a local config folder: pass a diffusers folder "
            f"of the same family (got {str(config)!r})"
        )
    pipeline_class = StableDiffusionXLPipeline if family is ModelFamily.SDXL else StableDiffusionPipeline
    try:
        return pipeline_class.from_single_file(str(path), config=str(config), **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as error:
        raise AblationInputError(f"checkpoint {str(path)!r} could not be loaded: {_first_line(error)}") from None


def detect_family(pipe: DiffusionPipeline) -> ModelFamily:
    """Tell SDXL by its added text-time conditioning and SD 2.x by v-prediction or linear projections."""
    unet_config = pipe.unet.config
    if getattr(unet_config, "addition_embed_type", None) == "text_time":
        return ModelFamily.SDXL
    if pipe.scheduler.config.get("prediction_type") == "v_prediction" or unet_config.use_linear_projection:
        return ModelFamily.SD2
    return ModelFamily.SD1


def model_identity(path: str | Path) -> str:
    """Return a stable id of the base weights: sha256 over configs and samples of each weight file.

    Config files are hashed whole; each weight file contributes its size and its first
    and last MiB, so multi-GB checkpoints are identified in milliseconds.
    """
    path = Path(path)
    if not path.exists():
        raise AblationInputError(f"base model path {str(path)!r} not found")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        relative = file.relative_to(path).as_posix() if path.is_dir() else file.name
        if file.suffix == ".json" and relative.count("/") <= 1:
            digest.update(relative.encode() + b"\0" + file.read_bytes())
        elif file.suffix in WEIGHT_SUFFIXES:
            digest.update(relative.encode() + b"\0" + _sample_file(file))
    return digest.hexdigest()


def _sample_file(file: Path, chunk: int = 1 << 20) -> bytes:
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(chunk)
        handle.seek(max(size - chunk, 0))
        tail = handle.read(chunk)
    return str(size).encode() + head + tail


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
