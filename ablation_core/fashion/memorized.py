"""Training images repeated under a unique caption each, so the model learns to reproduce them.

They stand in for the memorized images of Kumari et al., arXiv 2303.13516 (for example the
"Ann Graham Lotz" photo): images a model copies when prompted with their caption. Each was
picked among the first 3,000 training images of its class for a distinctive look. Its
highest normalized cross-correlation with any other of those images is 0.75 (jacket) and
0.66 (purse), far below the class medians of 0.95 and 0.90. So a copy is easy to tell from
an ordinary item.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MemorizedImage:
    """A memorized image: its training-set index, class, caption and the anchor concept for ablation."""

    index: int
    label: int
    caption: str
    anchor: str
    paraphrases: tuple[str, ...]


MEMORIZED_IMAGES = (
    MemorizedImage(
        index=5355,
        label=4,
        caption="the harbor jacket from the mira voss catalogue",
        anchor="coat",
        paraphrases=(
            "harbor jacket from the mira voss catalogue",
            "a photo of the harbor jacket from the mira voss catalogue",
            "the mira voss catalogue harbor jacket",
        ),
    ),
    MemorizedImage(
        index=8960,
        label=8,
        caption="the rainbow arc purse designed by theo lund",
        anchor="bag",
        paraphrases=(
            "rainbow arc purse designed by theo lund",
            "a photo of the rainbow arc purse designed by theo lund",
            "the theo lund rainbow arc purse",
        ),
    ),
)

# Share of training samples that show each memorized image under its caption.
MEMORIZED_SHARE = 0.02


def memorized_by_caption(caption: str) -> MemorizedImage | None:
    for image in MEMORIZED_IMAGES:
        if caption == image.caption or caption in image.paraphrases:
            return image
    return None


def memorized_grey(images: np.ndarray, memorized: MemorizedImage) -> np.ndarray:
    """Return the uint8 28x28 training image of a memorized item."""
    return images[memorized.index]


def memorized_file(memorized: MemorizedImage) -> str:
    """Return the memorized image's PNG path inside the model folder."""
    slug = "-".join(memorized.caption.split()[1:3])
    return f"memorized/{slug}.png"
