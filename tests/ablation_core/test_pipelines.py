import pytest

from ablation_core.errors import AblationInputError
from ablation_core.pipelines import ModelFamily, detect_family, load_pipeline, model_identity


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_folder_loads_with_its_family(tiny_model_dirs, family):
    pipe = load_pipeline(tiny_model_dirs[family])

    assert detect_family(pipe) is ModelFamily(family)


def test_family_mismatch_is_rejected(tiny_model_dirs):
    with pytest.raises(AblationInputError, match="is a sd2 model, not sd1"):
        load_pipeline(tiny_model_dirs["sd2"], family="sd1")


def test_missing_path_is_named(tmp_path):
    with pytest.raises(AblationInputError, match=f"base model path '{tmp_path / 'absent'}' not found"):
        load_pipeline(tmp_path / "absent")


def test_folder_without_model_index_is_rejected(tmp_path):
    with pytest.raises(AblationInputError, match="has no model_index.json"):
        load_pipeline(tmp_path)


def test_single_file_needs_local_config(tmp_path):
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"0")

    with pytest.raises(AblationInputError, match="needs a local config folder"):
        load_pipeline(checkpoint)


def test_unknown_file_type_is_rejected(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"0")

    with pytest.raises(AblationInputError, match="is not a .safetensors or .ckpt checkpoint"):
        load_pipeline(weights)


def test_model_identity_is_stable_and_distinct(tiny_model_dirs):
    assert model_identity(tiny_model_dirs["sd1"]) == model_identity(tiny_model_dirs["sd1"])
    assert model_identity(tiny_model_dirs["sd1"]) != model_identity(tiny_model_dirs["sd2"])


def test_single_file_checkpoint_loads_same_weights(tmp_path):
    import torch

    from tests.ablation_core.helpers import run_ablation
    from tests.ablation_core.ldm_checkpoint import write_ldm_checkpoint
    from tests.tiny_pipelines import build_sd1

    original = build_sd1()
    original.save_pretrained(str(tmp_path / "config"))
    write_ldm_checkpoint(original, tmp_path / "model.safetensors")

    pipe = load_pipeline(tmp_path / "model.safetensors", config=tmp_path / "config")

    assert detect_family(pipe) is ModelFamily.SD1
    for component in ("unet", "vae", "text_encoder"):
        expected = getattr(original, component).state_dict()
        loaded = getattr(pipe, component).state_dict()
        assert loaded.keys() == expected.keys(), component
        for name, value in expected.items():
            assert torch.equal(loaded[name], value), f"{component}.{name}"

    summary = run_ablation(pipe, tmp_path / "run", max_steps=1)
    assert summary.steps == 1
