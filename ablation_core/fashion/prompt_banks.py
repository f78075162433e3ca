"""Prompt banks for ablating concepts from the Fashion-MNIST model, in its caption language.

The ablation core reads them from the model folder's `ablate_prompts/` in place of its
built-in banks, whose scenes (rooftops, paintings of castles) this model never saw.
Instance and memorization lines hold `{anchor}` once after the article "a", so anchor
concepts must start with a consonant sound ("shoe", "coat", "bag", "garment").
"""

from ablation_core.fashion.captions import CLASS_NAMES, SUPERCLASSES, TEMPLATES, fill_template

# Detail phrases that make each bank line distinct.
DETAILS = (
    "",
    "front view",
    "studio shot",
    "plain background",
    "centered",
    "simple",
    "high quality",
    "catalogue shot",
    "small",
    "close-up",
    "product shot",
    "full view",
    "clean photo",
    "flat lay",
    "on black",
)


def _with_detail(text: str, detail: str) -> str:
    return f"{text}, {detail}" if detail else text


def anchor_lines() -> list[str]:
    """Caption templates with `{anchor}` and a detail: 15 distinct templates x 15 details."""
    templates = list(dict.fromkeys(TEMPLATES))
    lines = []
    for detail in DETAILS:
        for template in templates:
            text = template.replace("{a} single", "a single").replace("{a}", "a").replace("{x}", "{anchor}")
            lines.append(_with_detail(text, detail))
    return list(dict.fromkeys(lines))


def instance_bank() -> list[str]:
    return anchor_lines()


def memorization_bank() -> list[str]:
    return anchor_lines()


def style_bank() -> list[str]:
    """Plain captions of every class and superclass word, in each template and some details."""
    words = [*CLASS_NAMES, *SUPERCLASSES]
    templates = list(dict.fromkeys(TEMPLATES))
    lines = [fill_template(template, word) for template in templates for word in words]
    lines += [_with_detail(fill_template("a photo of {a} {x}", word), detail) for detail in DETAILS[1:6] for word in words]
    return list(dict.fromkeys(lines))
