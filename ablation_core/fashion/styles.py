"""Image-transform styles: each turns a grey item on black into a recognisable RGB look.

An unstyled image keeps the plain look (the grey item on black, equal RGB channels), so a
prompt without a style phrase requests that look. Every style stays recognisable at 32x32
pixels and after the autoencoder's 2x downsampling: two flat colour palettes and one
pattern of horizontal bands 2 pixels wide.
"""

import torch

PLAIN = "plain"

# Style names as they appear in captions ("a photo of a dress, in the style of neon").
STYLE_NAMES = ("neon", "pinstripe", "ember")

# Labels of the evaluator's style head: index 0 is the plain look.
STYLE_LABELS = (PLAIN, *STYLE_NAMES)

# RGB colours in [0, 1]: background where the item is black, foreground where it is white.
_NEON_BACKGROUND = (0.05, 0.03, 0.30)
_NEON_FOREGROUND = (1.00, 0.15, 0.85)
_EMBER_BACKGROUND = (0.30, 0.02, 0.00)
_EMBER_FOREGROUND = (1.00, 0.80, 0.10)
_PINSTRIPE_BACKGROUND = (0.00, 0.30, 0.30)
_PINSTRIPE_BANDS = ((0.95, 0.10, 0.10), (1.00, 1.00, 1.00))

# Height in pixels of each pinstripe band; the pattern repeats every two bands.
_BAND_HEIGHT = 2


def _colour(rgb: tuple[float, float, float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rgb, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def _palette(grey: torch.Tensor, background: tuple, foreground: tuple) -> torch.Tensor:
    return (1 - grey) * _colour(background, grey) + grey * _colour(foreground, grey)


def _pinstripe(grey: torch.Tensor) -> torch.Tensor:
    height = grey.shape[-2]
    rows = torch.arange(height, device=grey.device) // _BAND_HEIGHT % 2
    first, second = (_colour(band, grey) for band in _PINSTRIPE_BANDS)
    bands = torch.where(rows.view(1, 1, height, 1) == 0, first, second)
    return (1 - grey) * _colour(_PINSTRIPE_BACKGROUND, grey) + grey * bands


def render(grey: torch.Tensor, style: str = PLAIN) -> torch.Tensor:
    """Render float (N, 1, H, W) grey items in [0, 1] as (N, 3, H, W) RGB in [0, 1] in one style."""
    if style == PLAIN:
        return grey.expand(-1, 3, -1, -1).clone()
    if style == "neon":
        return _palette(grey, _NEON_BACKGROUND, _NEON_FOREGROUND)
    if style == "ember":
        return _palette(grey, _EMBER_BACKGROUND, _EMBER_FOREGROUND)
    if style == "pinstripe":
        return _pinstripe(grey)
    raise ValueError(f"unknown style {style!r}; use one of {STYLE_LABELS}")


def render_mixed(grey: torch.Tensor, style_ids: torch.Tensor) -> torch.Tensor:
    """Render each image in its own style, `style_ids` indexing STYLE_LABELS."""
    out = torch.empty(grey.shape[0], 3, *grey.shape[-2:], dtype=grey.dtype, device=grey.device)
    for index, style in enumerate(STYLE_LABELS):
        chosen = style_ids == index
        if chosen.any():
            out[chosen] = render(grey[chosen], style)
    return out
