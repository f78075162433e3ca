import pytest

from ablation_core.concepts import Concept, ConceptKind, contains_word
from ablation_core.errors import AblationInputError
from ablation_core.prompts import STYLE_PHRASINGS, build_prompt_pairs, load_prompt_bank, read_prompt_file


@pytest.mark.parametrize("kind", list(ConceptKind))
def test_builtin_bank_has_200_distinct_prompts(kind):
    bank = load_prompt_bank(kind)

    assert len(set(bank)) >= 200


def test_instance_target_replaces_anchor_word():
    pairs = build_prompt_pairs([Concept("instance", "Grumpy Cat", "cat")], num_prompts=20, seed=3)

    for pair in pairs:
        assert contains_word(pair.anchor_prompt, "cat")
        assert pair.target_prompt == pair.anchor_prompt.replace("cat", "Grumpy Cat")


def test_style_target_appends_a_phrasing():
    pairs = build_prompt_pairs([Concept("style", "Van Gogh", "painting")], num_prompts=40, seed=0)

    used = set()
    for pair in pairs:
        matches = [p for p in STYLE_PHRASINGS if p.format(prompt=pair.anchor_prompt, target="Van Gogh") == pair.target_prompt]
        assert matches, pair
        used.add(matches[0])
    assert len(used) > 1


def test_memorization_targets_cycle_caption_and_paraphrases():
    concept = Concept("memorization", "Galaxy Case", "a phone case", target_prompts=("a galaxy phone case",))

    pairs = build_prompt_pairs([concept], num_prompts=4, seed=0)

    assert [p.target_prompt for p in pairs] == ["Galaxy Case", "a galaxy phone case"] * 2
    assert all("a phone case" in p.anchor_prompt for p in pairs)


def test_pairs_are_seeded_and_deterministic():
    concepts = [Concept("instance", "Grumpy Cat", "cat"), Concept("style", "Van Gogh", "painting")]

    first = build_prompt_pairs(concepts, num_prompts=10, seed=5)
    again = build_prompt_pairs(concepts, num_prompts=10, seed=5)
    other = build_prompt_pairs(concepts, num_prompts=10, seed=6)

    assert first == again
    assert first != other
    assert {p.concept_index for p in first} == {0, 1}


def test_user_anchor_prompts_are_used():
    concept = Concept("instance", "Grumpy Cat", "cat", anchor_prompts=("a cat on a mat", "a cat in a hat"))

    pairs = build_prompt_pairs([concept], num_prompts=2, seed=0)

    assert sorted(p.anchor_prompt for p in pairs) == ["a cat in a hat", "a cat on a mat"]


def test_model_folder_bank_replaces_builtin(tmp_path):
    (tmp_path / "ablate_prompts").mkdir()
    (tmp_path / "ablate_prompts" / "instance.txt").write_text("a photo of a {anchor}\n# comment\n\na {anchor} at night\n")

    assert load_prompt_bank(ConceptKind.INSTANCE, tmp_path) == ["a photo of a {anchor}", "a {anchor} at night"]


def test_prompt_file_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")

    with pytest.raises(AblationInputError, match="contains no prompts"):
        read_prompt_file(empty)
    with pytest.raises(AblationInputError, match="not found"):
        read_prompt_file(tmp_path / "missing.txt")
