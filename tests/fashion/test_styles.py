import pytest
import torch

from ablation_core.fashion.styles import STYLE_LABELS, render, render_mixed


def _grey():
    grey = torch.zeros(1, 1, 32, 32)
    grey[..., 8:24, 8:24] = 1.0
    return grey


def test_plain_keeps_grey():
    rgb = render(_grey(), "plain")

    assert rgb.shape == (1, 3, 32, 32)
    assert torch.equal(rgb[:, 0], rgb[:, 1])
    assert torch.equal(rgb[:, 1], rgb[:, 2])


@pytest.mark.parametrize("style", STYLE_LABELS[1:])
def test_style_is_coloured(style):
    rgb = render(_grey(), style)

    assert rgb.min() >= 0
    assert rgb.max() <= 1
    assert not torch.allclose(rgb[:, 0], rgb[:, 2])


def test_styles_differ_from_each_other():
    renders = [render(_grey(), style) for style in STYLE_LABELS]

    for i in range(len(renders)):
        for j in range(i + 1, len(renders)):
            assert (renders[i] - renders[j]).abs().mean() > 0.05, (STYLE_LABELS[i], STYLE_LABELS[j])


def test_pinstripe_alternates_bands():
    rgb = render(_grey(), "pinstripe")

    assert not torch.allclose(rgb[0, :, 8, 12], rgb[0, :, 10, 12])
    assert torch.allclose(rgb[0, :, 8, 12], rgb[0, :, 12, 12])


def test_render_mixed_matches_single_styles():
    grey = _grey().repeat(len(STYLE_LABELS), 1, 1, 1)

    mixed = render_mixed(grey, torch.arange(len(STYLE_LABELS)))

    for index, style in enumerate(STYLE_LABELS):
        assert torch.equal(mixed[index : index + 1], render(grey[:1], style))


def test_render_rejects_unknown_style():
    with pytest.raises(ValueError, match="'sepia'"):
        render(_grey(), "sepia")
