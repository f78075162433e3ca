"""Image similarity for dropping anchor images that still copy a memorized image.

The filter is pluggable: any callable `(images, reference) -> scores in [-1, 1]` works,
e.g. an SSCD copy-detection model where one is available. The default compares pixels.
"""

from typing import Protocol, Sequence

import numpy as np
from PIL import Image


class ImageSimilarity(Protocol):
    def __call__(self, images: Sequence[Image.Image], reference: Image.Image) -> list[float]: ...


class PixelSimilarity:
    """Cosine similarity of mean-centred greyscale pixels at a fixed size.

    It catches near-exact copies (the failure that memorization ablation removes) and is
    blind to copies under crops or shifts, which a learned copy detector would catch.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size

    def __call__(self, images: Sequence[Image.Image], reference: Image.Image) -> list[float]:
        target = self._vector(reference)
        return [float(np.dot(self._vector(image), target)) for image in images]

    def _vector(self, image: Image.Image) -> np.ndarray:
        pixels = np.asarray(image.convert("L").resize((self.size, self.size)), dtype=np.float64).ravel()
        pixels = pixels - pixels.mean()
        norm = np.linalg.norm(pixels)
        return pixels / norm if norm > 0 else pixels
