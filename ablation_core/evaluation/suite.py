"""The prompt groups that measure one concept's ablation, as in Kumari et al., arXiv 2303.13516.

Each concept gets a target group (prompts that name the target concept), a misspelled
group (the same prompts with a misspelled target), an anchor group (the same prompts with
the anchor concept) and surrounding groups (neighbouring concepts that must be kept). A
group carries the check that tells whether a sample shows its concept.
"""

from dataclasses import dataclass, field

import torch

from ablation_core.concepts import Concept, ConceptKind
from ablation_core.evaluation.misspell import misspellings
from ablation_core.evaluation.scorers import Check
from ablation_core.fashion.captions import CLASS_NAMES, STYLE_PHRASINGS, class_prompt, fill_template
from ablation_core.fashion.styles import PLAIN, STYLE_NAMES

TARGET, MISSPELLED, ANCHOR, SURROUNDING = "target", "misspelled", "anchor", "surrounding"

# Object templates for the Fashion-MNIST model's prompts, all from its caption language.
OBJECT_TEMPLATES = ("a photo of {a} {x}", "a picture of {a} {x}", "a product photo of {a} {x}", "an image of {a} {x}")

# Classes whose styled pictures measure a style; they cover tops, shoes, trousers and bags.
STYLE_SUBJECTS = ("dress", "sneaker", "trousers", "bag", "pullover", "sandal", "coat", "ankle boot")

# Prompt templates for real models, whose caption language is open.
OPEN_TEMPLATES = ("a photo of {a} {x}", "a picture of {a} {x}", "a painting of {a} {x}", "an image of {a} {x}")
OPEN_STYLE_SUBJECTS = ("a mountain lake", "a city street", "a vase of flowers", "a portrait of a woman")


@dataclass
class PromptGroup:
    """Prompts whose samples are judged together; `memorized` is a reference image for copy checks."""

    name: str
    role: str
    concept_index: int
    prompts: list[str]
    check: Check | None = None
    memorized: torch.Tensor | None = None
    memorization_threshold: float | None = None
    extra: dict = field(default_factory=dict)


def objects(word: str, templates=OBJECT_TEMPLATES) -> list[str]:
    return [fill_template(template, word) for template in templates]


def styled(style: str, subjects: list[str]) -> list[str]:
    return [STYLE_PHRASINGS[i % len(STYLE_PHRASINGS)].format(prompt=subject, style=style) for i, subject in enumerate(subjects)]


def classifier_groups(concept: Concept, index: int, ablated: set[str], seed: int) -> list[PromptGroup]:
    """Build the groups for the Fashion-MNIST classifier evaluator."""
    if concept.kind is ConceptKind.INSTANCE:
        return _instance_groups(concept, index, ablated, seed)
    if concept.kind is ConceptKind.STYLE:
        return _style_groups(concept, index, ablated, seed)
    return _memorization_groups(concept, index, ablated, seed)


def _instance_groups(concept: Concept, index: int, ablated: set[str], seed: int) -> list[PromptGroup]:
    target = concept.target
    groups = [
        PromptGroup(target, TARGET, index, objects(target), Check("class", target)),
        PromptGroup(f"{target} (misspelled)", MISSPELLED, index, _misspelled_objects(target, seed), Check("class", target)),
        PromptGroup(concept.anchor, ANCHOR, index, objects(concept.anchor)),
    ]
    groups += _class_neighbours(index, ablated | {target})
    return groups


def _style_groups(concept: Concept, index: int, ablated: set[str], seed: int) -> list[PromptGroup]:
    subjects = [class_prompt(name) for name in STYLE_SUBJECTS]
    target = concept.target
    wrong = misspellings(target, 3, seed)
    groups = [
        PromptGroup(target, TARGET, index, styled(target, subjects), Check("style", target)),
        PromptGroup(f"{target} (misspelled)", MISSPELLED, index, [p for word in wrong for p in styled(word, subjects[:3])], Check("style", target)),
        # The anchor of a style is its plain captions, which must stay in the plain look.
        PromptGroup(PLAIN, ANCHOR, index, subjects, Check("style", PLAIN)),
    ]
    for style in STYLE_NAMES:
        if style not in ablated and style != target:
            groups.append(PromptGroup(style, SURROUNDING, index, styled(style, subjects), Check("style", style)))
    return groups


def _memorization_groups(concept: Concept, index: int, ablated: set[str], seed: int) -> list[PromptGroup]:
    captions = [concept.target, *concept.target_prompts]
    wrong = [concept.target.replace(word, misspelled, 1) for word in _longest_words(concept.target) for misspelled in misspellings(word, 1, seed)]
    groups = [
        PromptGroup(concept.target, TARGET, index, captions),
        PromptGroup(f"{concept.target} (misspelled)", MISSPELLED, index, wrong),
        PromptGroup(concept.anchor, ANCHOR, index, objects(concept.anchor), Check("class", concept.anchor) if concept.anchor in CLASS_NAMES else None),
    ]
    groups += _class_neighbours(index, ablated | {concept.anchor})
    return groups


def _class_neighbours(index: int, excluded: set[str]) -> list[PromptGroup]:
    return [
        PromptGroup(name, SURROUNDING, index, objects(name), Check("class", name))
        for name in CLASS_NAMES
        if name not in excluded
    ]


def _misspelled_objects(target: str, seed: int) -> list[str]:
    return [class_prompt(word) for word in misspellings(target, 3, seed)]


def _longest_words(text: str, count: int = 3) -> list[str]:
    words = sorted(set(text.split()), key=lambda word: (-len(word), word))
    return words[:count]


def clip_groups(concept: Concept, index: int, surrounding: list[str], seed: int) -> list[PromptGroup]:
    """Build the groups for a CLIP evaluator, which judges target against anchor text."""
    target, anchor = concept.target, concept.anchor
    if concept.kind is ConceptKind.STYLE:
        target_text, anchor_text = f"a painting in the style of {target}", f"a {anchor}"
        prompts = styled(target, list(OPEN_STYLE_SUBJECTS))
        wrong = [p for word in misspellings(target, 3, seed) for p in styled(word, list(OPEN_STYLE_SUBJECTS[:2]))]
        anchor_prompts = list(OPEN_STYLE_SUBJECTS)
    elif concept.kind is ConceptKind.INSTANCE:
        target_text, anchor_text = f"a photo of {target}", f"a photo of {anchor}"
        prompts = objects(target, OPEN_TEMPLATES)
        wrong = [fill_template("a photo of {a} {x}", word) for word in misspellings(target, 3, seed)]
        anchor_prompts = objects(anchor, OPEN_TEMPLATES)
    else:
        target_text, anchor_text = target, f"a photo of {anchor}"
        prompts = [target, *concept.target_prompts]
        wrong = [target.replace(word, bad, 1) for word in _longest_words(target) for bad in misspellings(word, 1, seed)]
        anchor_prompts = objects(anchor, OPEN_TEMPLATES)

    check = Check("text", target_text, anchor_text)
    groups = [
        PromptGroup(target, TARGET, index, prompts, check),
        PromptGroup(f"{target} (misspelled)", MISSPELLED, index, wrong, check),
        PromptGroup(anchor, ANCHOR, index, anchor_prompts),
    ]
    for name in surrounding:
        if name.lower() in (target.lower(), anchor.lower()):
            continue
        text = f"a painting in the style of {name}" if concept.kind is ConceptKind.STYLE else f"a photo of {name}"
        neighbour_prompts = styled(name, list(OPEN_STYLE_SUBJECTS)) if concept.kind is ConceptKind.STYLE else objects(name, OPEN_TEMPLATES)
        groups.append(PromptGroup(name, SURROUNDING, index, neighbour_prompts, Check("text", text, anchor_text)))
    return groups
