from ablation_core.evaluation.misspell import misspellings


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def test_misspellings_are_distinct_edits():
    words = misspellings("sneaker", 3, seed=0)

    assert len(words) == 3
    assert len(set(words)) == 3
    for word in words:
        assert word != "sneaker"
        assert 1 <= _distance(word, "sneaker") <= 2


def test_misspellings_are_seeded():
    assert misspellings("pinstripe", 3, seed=4) == misspellings("pinstripe", 3, seed=4)
    assert misspellings("pinstripe", 3, seed=4) != misspellings("pinstripe", 3, seed=5)


def test_misspellings_keep_spaces_in_phrases():
    for word in misspellings("ankle boot", 5, seed=0):
        assert word.count(" ") == 1
