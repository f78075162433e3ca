"""Fashion-MNIST images and labels from the Debian package `dataset-fashion-mnist`.

Fashion-MNIST (Xiao et al., 2017; MIT licence) has 60,000 training and 10,000 test images of
28x28 grey pixels in ten classes. The files are in IDX format, gzip-compressed.
"""

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")

# Environment variable that points at another folder with the same four IDX files.
DATA_DIR_ENV = "ABLATE_FASHION_MNIST_DIR"

IMAGE_SIZE = 32
SOURCE_SIZE = 28

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# IDX magic numbers: unsigned bytes with 3 dimensions (images) or 1 dimension (labels).
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801


@dataclass(frozen=True)
class FashionSplit:
    """One split: `images` are uint8 (N, 28, 28) with the item bright on black, `labels` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR))


def _read_idx(path: Path, magic: int) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()

    found = int.from_bytes(raw[0:4], "big")
    if found != magic:
        raise ValueError(f"{path} is not an IDX file of the expected kind (magic {found:#x}, expected {magic:#x}); reinstall dataset-fashion-mnist")

    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(split: str = "train", directory: Path | None = None) -> FashionSplit:
    """Load the "train" or "test" split as uint8 arrays."""
    if split not in _FILES:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; use 'train' or 'test'")

    folder = directory or data_dir()
    images_name, labels_name = _FILES[split]
    missing = [name for name in (images_name, labels_name) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files {missing} not found in {folder}; run `apt-get install dataset-fashion-mnist` or set {DATA_DIR_ENV}"
        )

    images = _read_idx(folder / images_name, _IMAGES_MAGIC)
    labels = _read_idx(folder / labels_name, _LABELS_MAGIC).astype(np.int64)
    return FashionSplit(images=images, labels=labels)


def to_grey_tensor(images: np.ndarray) -> torch.Tensor:
    """Pad uint8 (N, 28, 28) images by 2 black pixels per side to float (N, 1, 32, 32) in [0, 1]."""
    pad = (IMAGE_SIZE - SOURCE_SIZE) // 2
    grey = torch.tensor(images, dtype=torch.float32).div_(255.0)
    grey = torch.nn.functional.pad(grey, (pad, pad, pad, pad))
    return grey.unsqueeze(1)
