import numpy as np

from ablation_core.fashion.captions import (
    CLASS_NAMES,
    INSTANCE_CLASSES,
    STYLE_PHRASINGS,
    SUPERCLASSES,
    caption,
    class_prompt,
    superclasses_of,
)
from ablation_core.prompts import STYLE_PHRASINGS as CORE_PHRASINGS


def test_style_phrasings_match_core():
    assert [p.replace("{style}", "{target}") for p in STYLE_PHRASINGS] == list(CORE_PHRASINGS)


def test_instance_classes_never_use_superclass():
    for name in INSTANCE_CLASSES:
        assert superclasses_of(name) == ()

    rng = np.random.default_rng(0)
    sneaker = CLASS_NAMES.index("sneaker")
    texts = [caption(sneaker, None, rng) for _ in range(500)]

    assert all("sneaker" in text for text in texts)


def test_superclass_captions_exist_for_members():
    rng = np.random.default_rng(0)
    sandal = CLASS_NAMES.index("sandal")
    texts = [caption(sandal, None, rng) for _ in range(500)]

    shoe_only = [text for text in texts if "shoe" in text and "sandal" not in text]
    assert 40 < len(shoe_only) < 200
    assert "sandal" in SUPERCLASSES["shoe"]


def test_styled_caption_uses_a_core_phrasing():
    rng = np.random.default_rng(1)
    text = caption(CLASS_NAMES.index("dress"), "neon", rng)

    assert "neon" in text
    assert any(text.endswith(p.split("{prompt}")[1].format(style="neon")) for p in STYLE_PHRASINGS)


def test_caption_is_seeded():
    first = [caption(3, "ember", np.random.default_rng(5)) for _ in range(3)]
    second = [caption(3, "ember", np.random.default_rng(5)) for _ in range(3)]

    assert first == second


def test_class_prompt_article():
    assert class_prompt("sneaker") == "a photo of a sneaker"
    assert class_prompt("ankle boot") == "a photo of an ankle boot"
