"""Anchor prompts and their target prompts, built offline, seeded and deterministic.

The rules follow Kumari et al. (arXiv 2303.13516, Section 3.3). An instance target prompt
is the anchor prompt with the anchor word replaced by the target. A style target prompt
is the anchor caption with "in the style of {target}" or a similar phrasing appended. A
memorization target prompt is the memorized caption or one of its paraphrases.
"""

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ablation_core.concepts import Concept, ConceptKind, contains_word, replace_word
from ablation_core.errors import AblationInputError

BUILTIN_BANKS = Path(__file__).parent / "prompt_banks"

# A base model folder may replace the built-in bank with `ablate_prompts/<kind>.txt`.
MODEL_BANK_FOLDER = "ablate_prompts"

# Instance and memorization bank lines hold this placeholder once; style lines are plain captions.
ANCHOR_PLACEHOLDER = "{anchor}"

STYLE_PHRASINGS = (
    "{prompt}, in the style of {target}",
    "{prompt} in the style of {target}",
    "{prompt}, {target} style",
    "{prompt} in {target} style",
)


@dataclass(frozen=True)
class PromptPair:
    """An anchor prompt, the target prompt made from it, and the concept they belong to."""

    anchor_prompt: str
    target_prompt: str
    concept_index: int = 0


def read_prompt_file(path: str | Path) -> list[str]:
    """Read one prompt per line, skipping blank lines and lines starting with '#'."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AblationInputError(f"prompt file {str(path)!r} not found: give an existing text file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise AblationInputError(f"prompt file {str(path)!r} could not be read: {error}") from None

    prompts = [line.strip() for line in text.splitlines()]
    prompts = [line for line in prompts if line and not line.startswith("#")]
    if not prompts:
        raise AblationInputError(f"prompt file {str(path)!r} contains no prompts: write one prompt per line")
    return prompts


def load_prompt_bank(kind: ConceptKind, model_path: str | Path | None = None) -> list[str]:
    """Load the bank of the base model folder if it has one, else the built-in bank."""
    if model_path is not None:
        model_bank = Path(model_path) / MODEL_BANK_FOLDER / f"{kind.value}.txt"
        if model_bank.is_file():
            return read_prompt_file(model_bank)
    return read_prompt_file(BUILTIN_BANKS / f"{kind.value}.txt")


def build_prompt_pairs(
    concepts: Sequence[Concept],
    num_prompts: int,
    seed: int = 0,
    model_path: str | Path | None = None,
) -> list[PromptPair]:
    """Build `num_prompts` pairs per concept; several concepts give the union of their pairs."""
    pairs: list[PromptPair] = []
    for index, concept in enumerate(concepts):
        rng = random.Random(f"{seed}:{index}:{concept.kind.value}:{concept.target}")
        pairs.extend(_pairs_for_concept(concept, index, num_prompts, rng, model_path))
    return pairs


def _pairs_for_concept(
    concept: Concept, index: int, num_prompts: int, rng: random.Random, model_path: str | Path | None
) -> list[PromptPair]:
    anchor_prompts = _choose(_anchor_prompts(concept, model_path), num_prompts, rng)

    if concept.kind is ConceptKind.INSTANCE:
        targets = [replace_word(prompt, concept.anchor, concept.target) for prompt in anchor_prompts]
    elif concept.kind is ConceptKind.STYLE:
        targets = [
            rng.choice(STYLE_PHRASINGS).format(prompt=prompt, target=concept.target)
            for prompt in anchor_prompts
        ]
    else:
        captions = (concept.target, *concept.target_prompts)
        targets = [captions[i % len(captions)] for i in range(len(anchor_prompts))]

    return [PromptPair(a, t, index) for a, t in zip(anchor_prompts, targets)]


def _anchor_prompts(concept: Concept, model_path: str | Path | None) -> list[str]:
    if concept.anchor_prompts:
        return list(dict.fromkeys(concept.anchor_prompts))

    bank = load_prompt_bank(concept.kind, model_path)
    if concept.kind is ConceptKind.STYLE:
        return bank

    prompts = []
    for line in bank:
        if line.count(ANCHOR_PLACEHOLDER) != 1:
            raise AblationInputError(
                f"prompt bank line {line!r} must contain {ANCHOR_PLACEHOLDER} exactly once"
            )
        prompts.append(line.replace(ANCHOR_PLACEHOLDER, concept.anchor))

    if concept.kind is ConceptKind.INSTANCE:
        # A bank line may already hold the target word ("a cat near a cat tree"); drop those.
        prompts = [p for p in prompts if not contains_word(p.replace(concept.anchor, ""), concept.target)]
    return prompts


def _choose(prompts: list[str], count: int, rng: random.Random) -> list[str]:
    """Pick `count` prompts without repeats while the bank lasts, then cycle through it again."""
    shuffled = prompts[:]
    rng.shuffle(shuffled)
    return [shuffled[i % len(shuffled)] for i in range(count)]


def build_preservation_prompts(
    concepts: Sequence[Concept],
    preserved: dict[str, list[str]],
    per_concept: int,
    seed: int = 0,
    model_path: str | Path | None = None,
) -> list[str]:
    """Build the prompts of the surrounding concepts to keep, like target prompts of their kind.

    An instance word fills the instance bank's lines, a style word is appended to style
    bank captions with the style phrasings, and a memorization entry is a caption used
    as it is. Words that a concept of the run ablates (its target) are skipped, so one
    list can name every concept of a model.
    """
    ablated = {(concept.kind.value, concept.target.lower()) for concept in concepts}
    prompts: list[str] = []
    for kind_name, words in preserved.items():
        kind = ConceptKind(kind_name)
        for word in words:
            if (kind.value, word.lower()) in ablated:
                continue
            rng = random.Random(f"{seed}:preserve:{kind.value}:{word}")
            prompts.extend(_preservation_prompts(kind, word, per_concept, rng, model_path))
    return list(dict.fromkeys(prompts))


def _preservation_prompts(
    kind: ConceptKind, word: str, count: int, rng: random.Random, model_path: str | Path | None
) -> list[str]:
    if kind is ConceptKind.MEMORIZATION:
        return [word]
    bank = load_prompt_bank(kind, model_path)
    if kind is ConceptKind.STYLE:
        return [rng.choice(STYLE_PHRASINGS).format(prompt=line, target=word) for line in _choose(bank, count, rng)]
    lines = [line for line in bank if line.count(ANCHOR_PLACEHOLDER) == 1]
    return [line.replace(ANCHOR_PLACEHOLDER, word) for line in _choose(lines, min(count, len(lines)), rng)]
