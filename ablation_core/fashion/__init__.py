"""Fashion-MNIST as a text-to-image training set: images, captions, styles and memorized images.

The miniature Stable-Diffusion-shaped model under `models/fashion-sd/` and its evaluator
classifier are both trained from this package, so generator and classifier see the same
32x32 RGB rendering of each image.
"""

from ablation_core.fashion.captions import CLASS_NAMES, STYLE_PHRASINGS
from ablation_core.fashion.dataset import IMAGE_SIZE, load_split
from ablation_core.fashion.styles import STYLE_NAMES, render

__all__ = ["CLASS_NAMES", "IMAGE_SIZE", "STYLE_NAMES", "STYLE_PHRASINGS", "load_split", "render"]
