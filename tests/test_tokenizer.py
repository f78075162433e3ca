from ablation_core.tokenizer import load_clip_tokenizer


def test_tokenizer_matches_clip_ids():
    tokenizer = load_clip_tokenizer()

    ids = tokenizer("a photo of a cat").input_ids

    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_tokenizer_pads_to_clip_length():
    tokenizer = load_clip_tokenizer(pad_token="!")

    ids = tokenizer("a cat", padding="max_length", max_length=tokenizer.model_max_length).input_ids

    assert len(ids) == 77
    assert ids[-1] == 0
