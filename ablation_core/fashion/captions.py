"""Captions for the Fashion-MNIST text-to-image model: class names, superclass words and styles.

Superclass words give instance ablation its anchor concepts ("sneaker" -> "shoe"). Captions
that name only the superclass show the group's other members but never its instance
classes, so the anchor concept is a different concept from the target, as "cat" is from
"Grumpy Cat" in Kumari et al., arXiv 2303.13516. The instance classes are always named.
"""

import numpy as np

# Fashion-MNIST label order (Xiao et al., 2017), one caption word or phrase per label.
CLASS_NAMES = (
    "t-shirt",
    "trousers",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)

SUPERCLASSES = {
    "shoe": ("sandal", "sneaker", "ankle boot"),
    "top": ("t-shirt", "pullover", "shirt", "coat"),
    "garment": ("t-shirt", "trousers", "pullover", "dress", "coat", "shirt"),
}

# Classes that captions always name, never by a superclass word alone.
INSTANCE_CLASSES = ("sneaker", "trousers")

# The phrasings the ablation core uses to turn a caption into a style target prompt.
STYLE_PHRASINGS = (
    "{prompt}, in the style of {style}",
    "{prompt} in the style of {style}",
    "{prompt}, {style} style",
    "{prompt} in {style} style",
)

# Caption templates for one object; "{a}" is the article that fits the object word.
TEMPLATES = (
    "a photo of {a} {x}",
    "a photo of {a} {x}",
    "a photo of {a} {x}",
    "a picture of {a} {x}",
    "an image of {a} {x}",
    "{a} {x}",
    "a photo of the {x}",
    "a product photo of {a} {x}",
    "a close-up photo of {a} {x}",
    "{a} {x} on a plain background",
    "a catalogue photo of {a} {x}",
    "a small photo of {a} {x}",
    "a centered photo of {a} {x}",
    "a simple picture of {a} {x}",
    "a photo of {a} single {x}",
    "a snapshot of {a} {x}",
)

# Share of captions of a superclass member that use the superclass word alone.
SUPERCLASS_SHARE = 0.2


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def fill_template(template: str, word: str) -> str:
    # "a single ..." follows "single", not the object word, for its article.
    text = template.replace("{a} single", "a single")
    return text.replace("{a}", article(word)).replace("{x}", word)


def superclasses_of(class_name: str) -> tuple[str, ...]:
    """Return the superclass words whose bare captions may show this class."""
    if class_name in INSTANCE_CLASSES:
        return ()
    return tuple(word for word, members in SUPERCLASSES.items() if class_name in members)


def object_word(label: int, rng: np.random.Generator) -> str:
    """Pick the class name or, for a share of captions, one of its superclass words."""
    name = CLASS_NAMES[label]
    groups = superclasses_of(name)
    if groups and rng.random() < SUPERCLASS_SHARE:
        return groups[rng.integers(len(groups))]
    return name


def add_style(prompt: str, style: str, rng: np.random.Generator) -> str:
    phrasing = STYLE_PHRASINGS[rng.integers(len(STYLE_PHRASINGS))]
    return phrasing.format(prompt=prompt, style=style)


def caption(label: int, style: str | None, rng: np.random.Generator) -> str:
    """Write one training caption for an image of class `label` in `style` (None: plain look)."""
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    text = fill_template(template, object_word(label, rng))
    if style is None:
        return text
    return add_style(text, style, rng)


def class_prompt(class_name: str) -> str:
    """Return the evaluation prompt for one class, e.g. "a photo of a sneaker"."""
    return f"a photo of {article(class_name)} {class_name}"
