"""Concepts to ablate: the concept kind, the target concept and the anchor concept."""

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ablation_core.errors import AblationInputError


class ConceptKind(StrEnum):
    INSTANCE = "instance"
    STYLE = "style"
    MEMORIZATION = "memorization"


def parse_kind(value: str) -> ConceptKind:
    """Parse a concept kind, raising AblationInputError that lists the valid kinds."""
    try:
        return ConceptKind(value.strip().lower())
    except ValueError:
        valid = ", ".join(kind.value for kind in ConceptKind)
        raise AblationInputError(f"invalid concept kind {value!r}: use one of {valid}") from None


def contains_word(text: str, word: str) -> bool:
    """Return True when `word` occurs in `text` as whole words, ignoring case."""
    pattern = r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def replace_word(text: str, word: str, replacement: str) -> str:
    """Replace whole-word occurrences of `word` in `text`, ignoring case."""
    pattern = r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)"
    return re.sub(pattern, lambda _: replacement, text, flags=re.IGNORECASE)


@dataclass(frozen=True)
class Concept:
    """One concept to ablate: generations for `target` should look like those for `anchor`.

    For the memorization kind, `target` is the memorized caption and `target_prompts`
    contains its paraphrases. `memorized_image` is the copied image, used to filter anchor
    images that still reproduce it.
    """

    kind: ConceptKind
    target: str
    anchor: str
    anchor_prompts: tuple[str, ...] = field(default=())
    target_prompts: tuple[str, ...] = field(default=())
    memorized_image: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", parse_kind(str(self.kind)))
        object.__setattr__(self, "target", _clean_text("target concept", self.target))
        object.__setattr__(self, "anchor", _clean_text("anchor concept", self.anchor))
        object.__setattr__(self, "anchor_prompts", _clean_prompts("anchor prompt", self.anchor_prompts))
        object.__setattr__(self, "target_prompts", _clean_prompts("target prompt", self.target_prompts))
        self._validate()

    def _validate(self) -> None:
        if self.target.lower() == self.anchor.lower():
            raise AblationInputError(
                f"target concept {self.target!r} equals the anchor concept: "
                "choose an anchor that is a broader or similar concept, e.g. 'cat' for 'Grumpy Cat'"
            )

        if self.kind is ConceptKind.INSTANCE:
            for prompt in self.anchor_prompts:
                if not contains_word(prompt, self.anchor):
                    raise AblationInputError(
                        f"instance anchor prompt {prompt!r} does not contain the anchor concept "
                        f"{self.anchor!r}: every instance anchor prompt must name the anchor"
                    )

        if self.kind is not ConceptKind.MEMORIZATION:
            if self.target_prompts:
                raise AblationInputError(
                    f"target prompts were given for a {self.kind.value} concept: "
                    "they are derived from the anchor prompts; give paraphrases only for memorization"
                )
            if self.memorized_image is not None:
                raise AblationInputError(
                    f"a memorized image was given for a {self.kind.value} concept: "
                    "it applies only to the memorization kind"
                )

        if self.memorized_image is not None and not Path(self.memorized_image).is_file():
            raise AblationInputError(
                f"memorized image {self.memorized_image!r} not found: give the path of a PNG or JPEG file"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "target": self.target,
            "anchor": self.anchor,
            "anchor_prompts": list(self.anchor_prompts),
            "target_prompts": list(self.target_prompts),
            "memorized_image": self.memorized_image,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Concept":
        return cls(
            kind=data["kind"],
            target=data["target"],
            anchor=data["anchor"],
            anchor_prompts=tuple(data.get("anchor_prompts") or ()),
            target_prompts=tuple(data.get("target_prompts") or ()),
            memorized_image=data.get("memorized_image"),
        )


def _clean_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AblationInputError(f"{name} is empty: give a word or phrase, e.g. 'Van Gogh'")
    return " ".join(value.split())


def _clean_prompts(name: str, prompts: Any) -> tuple[str, ...]:
    cleaned = []
    for prompt in prompts or ():
        if not isinstance(prompt, str) or not prompt.strip():
            raise AblationInputError(f"an empty {name} was given: remove blank prompts")
        cleaned.append(" ".join(prompt.split()))
    return tuple(cleaned)
