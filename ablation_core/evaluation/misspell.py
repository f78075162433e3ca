"""Misspelled target prompts: seeded character edits of the target concept's words.

Kumari et al. (arXiv 2303.13516) check that an ablated model does not generate the target
concept from a slightly misspelled prompt either. Each misspelling applies one edit
(delete, insert, substitute or swap two neighbouring letters) at a letter of the target.
"""

import random
import string

EDITS = ("delete", "insert", "substitute", "swap")


def _edit(word: str, rng: random.Random) -> str:
    letters = [i for i, char in enumerate(word) if char.isalpha()]
    if not letters:
        return word
    position = rng.choice(letters)
    edit = rng.choice(EDITS)
    if edit == "delete" and len(letters) > 2:
        return word[:position] + word[position + 1 :]
    if edit == "insert":
        return word[:position] + rng.choice(string.ascii_lowercase) + word[position:]
    if edit == "swap" and position + 1 < len(word) and word[position + 1].isalpha() and word[position + 1] != word[position]:
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    replacement = rng.choice([c for c in string.ascii_lowercase if c != word[position].lower()])
    return word[:position] + replacement + word[position + 1 :]


def misspellings(target: str, count: int = 3, seed: int = 0) -> list[str]:
    """Return `count` distinct one-edit misspellings of `target`, seeded by (seed, target)."""
    rng = random.Random(f"{seed}:{target}")
    found: list[str] = []
    for _ in range(100 * count):
        candidate = _edit(target, rng)
        if candidate != target and candidate.lower() != target.lower() and candidate not in found:
            found.append(candidate)
        if len(found) == count:
            break
    return found
