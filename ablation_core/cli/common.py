"""Options and helpers shared by the `ablate` subcommands."""

import argparse
import logging
import warnings
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from ablation_core.errors import AblationInputError

ProgressCallback = Callable[[int, int, float | None], bool | None]


def quiet_libraries() -> None:
    """Silence library progress bars and advisories so the CLI's own bars stay readable."""
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("diffusers").setLevel(logging.ERROR)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="base model: a local diffusers folder or a .safetensors/.ckpt file")
    parser.add_argument("--family", choices=["sd1", "sd2", "sdxl"], help="model family; detected from the model when omitted")
    parser.add_argument("--config", help="for a single-file checkpoint: a local diffusers folder with its component configs")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cuda if available, else cpu)")
    parser.add_argument(
        "--delta",
        action="append",
        default=[],
        metavar="PATH",
        help="delta file to apply to the base model first; repeat to stack deltas in order",
    )


def resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AblationInputError(f"invalid device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AblationInputError(f"device {name!r} requested but no CUDA GPU is available: use --device cpu")
    return device


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise AblationInputError(f"file {value!r} not found: give an existing file")
    return path


def progress_bar(description: str, unit: str) -> tuple[ProgressCallback, Callable[[], None]]:
    """Return a progress callback that drives a tqdm bar, and a function that closes the bar."""
    bar = tqdm(desc=description, unit=unit, dynamic_ncols=True)

    def update(step: int, total: int, loss: float | None) -> bool:
        bar.total = total
        bar.n = step
        if loss is not None:
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh()
        return True

    return update, bar.close
