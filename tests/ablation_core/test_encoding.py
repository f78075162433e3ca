import pytest
from PIL import Image

from ablation_core.ablation import generate_anchor_data, plan_ablation, prepare_base, train_delta
from ablation_core.concepts import Concept
from ablation_core.encoding import ENCODED_FILE
from tests.ablation_core.helpers import GRUMPY_CAT, fast_config
from tests.tiny_pipelines import BUILDERS


def _forbid(module):
    def fail(*args, **kwargs):
        raise AssertionError(f"{type(module).__name__} ran during training")

    module.forward = fail
    if hasattr(module, "encode"):
        module.encode = fail


def test_training_reads_cache_not_vae_or_text_encoder(tmp_path):
    pipe = BUILDERS["sd1"]()
    plan = plan_ablation([GRUMPY_CAT], fast_config(max_steps=2))
    base = prepare_base(pipe, plan, "tiny")
    generate_anchor_data(pipe, plan, tmp_path / "anchors")
    train_delta(pipe, plan, tmp_path / "anchors", tmp_path / "first.safetensors", base)
    assert (tmp_path / "anchors" / ENCODED_FILE).is_file()

    _forbid(pipe.vae)
    _forbid(pipe.text_encoder)

    summary = train_delta(pipe, plan, tmp_path / "anchors", tmp_path / "second.safetensors", base)
    assert summary.steps == 2


def test_memorized_copies_are_filtered(tmp_path):
    pipe = BUILDERS["sd1"]()
    concept_plain = Concept("memorization", "famous caption", "a picture")
    plan = plan_ablation([concept_plain], fast_config([concept_plain], parameter_group="crossattn_kv", max_steps=1))
    generate_anchor_data(pipe, plan, tmp_path / "anchors")

    # Use one of the anchor images as the "memorized" image: it and its near-copies must go.
    memorized = tmp_path / "memorized.png"
    Image.open(tmp_path / "anchors" / plan.images[0].file).save(memorized)
    concept = Concept("memorization", "famous caption", "a picture", memorized_image=str(memorized))
    plan = plan_ablation([concept], fast_config([concept], parameter_group="crossattn_kv", max_steps=1))
    base = prepare_base(pipe, plan, "tiny")

    summary = train_delta(pipe, plan, tmp_path / "anchors", tmp_path / "delta.safetensors", base)

    from ablation_core.deltas import load_delta

    metadata = load_delta(summary.path).metadata
    assert metadata["filtered_images"] >= 1
    assert metadata["anchor_images"] == len(plan.images) - metadata["filtered_images"]


def test_all_images_filtered_is_an_error(tmp_path):
    from ablation_core.errors import AblationInputError

    pipe = BUILDERS["sd1"]()
    concept = Concept("memorization", "famous caption", "a picture")
    plan = plan_ablation([concept], fast_config([concept], parameter_group="crossattn_kv", max_steps=1))
    generate_anchor_data(pipe, plan, tmp_path / "anchors")
    memorized = tmp_path / "memorized.png"
    Image.open(tmp_path / "anchors" / plan.images[0].file).save(memorized)
    concept = Concept("memorization", "famous caption", "a picture", memorized_image=str(memorized))
    plan = plan_ablation([concept], fast_config([concept], parameter_group="crossattn_kv", max_steps=1, memorization_threshold=-1.0))
    base = prepare_base(pipe, plan, "tiny")

    with pytest.raises(AblationInputError, match="no anchor images left"):
        train_delta(pipe, plan, tmp_path / "anchors", tmp_path / "delta.safetensors", base)
