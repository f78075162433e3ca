from ablation_core.fashion.captions import CLASS_NAMES
from ablation_core.fashion.memorized import MEMORIZED_IMAGES, memorized_by_caption, memorized_file


def test_memorized_captions_are_unique():
    captions = [m.caption for m in MEMORIZED_IMAGES]

    assert len(MEMORIZED_IMAGES) >= 2
    assert len(set(captions)) == len(captions)


def test_memorized_anchor_is_its_class():
    for memorized in MEMORIZED_IMAGES:
        assert CLASS_NAMES[memorized.label] == memorized.anchor


def test_memorized_lookup_by_caption_and_paraphrase():
    first = MEMORIZED_IMAGES[0]

    assert memorized_by_caption(first.caption) is first
    assert memorized_by_caption(first.paraphrases[0]) is first
    assert memorized_by_caption("a photo of a coat") is None


def test_memorized_files_are_distinct_pngs():
    files = [memorized_file(m) for m in MEMORIZED_IMAGES]

    assert len(set(files)) == len(files)
    assert all(f.startswith("memorized/") and f.endswith(".png") for f in files)


def test_memorized_indices_match_real_labels():
    from ablation_core.fashion.dataset import load_split

    labels = load_split("train").labels

    for memorized in MEMORIZED_IMAGES:
        assert labels[memorized.index] == memorized.label
