import torch

from ablation_core.evaluation.memorization import copies, pixel_similarity


def _image(seed: int) -> torch.Tensor:
    return torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_similarity_of_copy_is_one():
    image = _image(0)

    assert float(pixel_similarity(image[None], image[None])[0, 0]) > 0.999


def test_similarity_ignores_brightness_offset():
    image = _image(0)

    assert float(pixel_similarity(image[None], (image * 0.5 + 0.2)[None])[0, 0]) > 0.999


def test_copies_counts_only_near_copies():
    memorized = _image(0)
    samples = torch.stack([memorized, (memorized + 0.05 * _image(1)).clamp(0, 1), _image(2)])

    hits = copies(samples, memorized, threshold=0.9)

    assert hits.tolist() == [True, True, False]


def test_similarity_resizes_other_sizes():
    image = _image(3)
    large = torch.nn.functional.interpolate(image[None], size=(64, 64), mode="nearest")

    assert float(pixel_similarity(image[None], large)[0, 0]) > 0.9
