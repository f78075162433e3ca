"""Memorization similarity: how closely a sample copies a memorized image.

The measure is the normalized cross-correlation of the two images' greyscale pixels (cosine
similarity after subtracting each image's mean), in [-1, 1], like the core's anchor-image
filter `ablation_core.similarity.PixelSimilarity`. It catches near-exact copies and misses
shifted or cropped ones. The threshold that counts a sample as a copy is calibrated on
real data and stored in the evaluator's config.
"""

import torch
import torch.nn.functional as F


def _normalize(images: torch.Tensor, size: int) -> torch.Tensor:
    grey = images.float().mean(dim=1, keepdim=True)
    if grey.shape[-1] != size or grey.shape[-2] != size:
        grey = F.interpolate(grey, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    flat = grey.reshape(len(grey), -1)
    flat = flat - flat.mean(dim=1, keepdim=True)
    return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-8)


def pixel_similarity(references: torch.Tensor, images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Return the (R, N) similarities between RGB references (R, 3, H, W) and images (N, 3, H', W')."""
    return _normalize(references, size) @ _normalize(images, size).T


def copies(samples: torch.Tensor, memorized: torch.Tensor, threshold: float) -> torch.Tensor:
    """Return a bool per sample: does its similarity to the memorized image reach `threshold`."""
    if len(samples) == 0:
        return torch.zeros(0, dtype=torch.bool)
    return pixel_similarity(memorized.unsqueeze(0), samples)[0] >= threshold
