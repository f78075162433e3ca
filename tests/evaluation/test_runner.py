"""End-to-end evaluation on a tiny SD 1.x-shaped pipeline with a random evaluator."""

import json

import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from ablation_core.concepts import Concept
from ablation_core.config import SamplerConfig
from ablation_core.deltas import Delta, save_delta
from ablation_core.errors import AblationInputError
from ablation_core.evaluation import evaluate_model_version
from ablation_core.evaluation.classifier import save_evaluator
from ablation_core.evaluation.report import write_outputs
from ablation_core.evaluation.runner import EvaluationInputs, find_evaluator, run_evaluation
from tests.evaluation.test_classifier import build_evaluator
from tests.tiny_pipelines import build_sd1

FAST = SamplerConfig(num_inference_steps=2, guidance_scale=2.0, batch_size=16)


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sd1")
    build_sd1(seed=0).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def delta_file(base_folder, tmp_path_factory):
    # A large change of every cross-attention value projection, so samples must change.
    from safetensors.torch import load_file

    weights = load_file(str(base_folder / "unet" / "diffusion_pytorch_model.safetensors"))
    names = [name for name in weights if "attn2.to_v.weight" in name]
    generator = torch.Generator().manual_seed(0)
    tensors = {f"unet.{name}": torch.randn(weights[name].shape, generator=generator) for name in names}
    path = tmp_path_factory.mktemp("deltas") / "delta.safetensors"
    save_delta(Delta(tensors, {}, {"parameter_group": "crossattn_kv"}), path)
    return path


@pytest.fixture
def evaluator_folder(tmp_path):
    folder = tmp_path / "evaluator"
    save_evaluator(build_evaluator(), folder)
    return folder


def test_skipped_without_evaluator(base_folder):
    result = evaluate_model_version(str(base_folder), [], [Concept("instance", "sneaker", "shoe")])

    assert result["status"] == "skipped"
    assert "evaluator" in result["reason"]


def test_instance_metrics_before_and_after(base_folder, delta_file, evaluator_folder):
    concept = Concept("instance", "sneaker", "shoe")
    inputs = EvaluationInputs(base_folder, [delta_file], [concept], num_samples=2, seed=0, sampler=FAST)

    result = run_evaluation(inputs, find_evaluator(base_folder, evaluator_folder))
    entry = result["concepts"][0]

    for key in ("target_accuracy_before", "target_accuracy_after", "target_score_before", "misspelled_accuracy_after", "surrounding_accuracy_before", "surrounding_accuracy_after", "anchor_kid", "surrounding_kid"):
        assert key in entry, key
    assert 0.0 <= entry["target_accuracy_after"] <= 1.0
    assert "sneaker" not in entry["surrounding"]
    assert len(entry["surrounding"]) == 9
    assert entry["anchor_kid"] != 0.0


def test_without_deltas_before_equals_after(base_folder, evaluator_folder):
    concept = Concept("style", "neon", "plain")
    inputs = EvaluationInputs(base_folder, [], [concept], num_samples=2, seed=0, sampler=FAST)

    entry = run_evaluation(inputs, find_evaluator(base_folder, evaluator_folder))["concepts"][0]

    assert entry["target_accuracy_before"] == entry["target_accuracy_after"]
    assert set(entry["surrounding"]) == {"pinstripe", "ember"}


def test_memorization_rate_uses_evaluator_image(base_folder, tmp_path):
    from PIL import Image

    folder = tmp_path / "evaluator"
    caption = "the harbor jacket from the mira voss catalogue"
    settings = {"threshold": -1.0, "images": [{"caption": caption, "file": "memorized/harbor.png"}]}
    save_evaluator(build_evaluator(memorization=settings), folder)
    (folder / "memorized").mkdir()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(folder / "memorized" / "harbor.png")
    inputs = EvaluationInputs(base_folder, [], [Concept("memorization", caption, "coat")], num_samples=2, seed=0, sampler=FAST)

    entry = run_evaluation(inputs, find_evaluator(base_folder, folder))["concepts"][0]

    # A threshold of -1 counts every sample as a copy.
    assert entry["target_memorization_before"] == 1.0


def test_unknown_class_is_input_error(base_folder, evaluator_folder):
    inputs = EvaluationInputs(base_folder, [], [Concept("instance", "Grumpy Cat", "cat")], num_samples=2, sampler=FAST)

    with pytest.raises(AblationInputError, match="Grumpy Cat"):
        run_evaluation(inputs, find_evaluator(base_folder, evaluator_folder))


def test_outputs_written(base_folder, delta_file, evaluator_folder, tmp_path):
    inputs = EvaluationInputs(base_folder, [delta_file], [Concept("style", "ember", "plain")], num_samples=2, sampler=FAST)
    result = run_evaluation(inputs, find_evaluator(base_folder, evaluator_folder))

    paths = write_outputs(result, tmp_path / "out")

    saved = json.loads(paths["json"].read_text())
    assert saved["concepts"][0]["concept"]["target"] == "ember"
    assert "| style | ember | plain |" in paths["markdown"].read_text()
    assert paths["grid"].stat().st_size > 0


def _tiny_clip(folder):
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 77},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(folder)


def test_clip_evaluator(base_folder, delta_file, tmp_path):
    clip_folder = tmp_path / "clip"
    _tiny_clip(clip_folder)
    concept = Concept("instance", "Grumpy Cat", "cat")
    inputs = EvaluationInputs(base_folder, [delta_file], [concept], num_samples=2, sampler=FAST, surrounding=["tabby cat"])

    scorer = find_evaluator(base_folder, clip_folder)
    result = run_evaluation(inputs, scorer)
    entry = result["concepts"][0]

    assert result["evaluator"] == "clip"
    assert scorer.features(torch.rand(2, 3, 32, 32)).shape == (2, 8)
    assert 0.0 <= entry["target_accuracy_before"] <= 1.0
    assert entry["target_score_before"] >= 0.0
    assert set(entry["surrounding"]) == {"tabby cat"}
    assert "anchor_kid" in entry


def test_explicit_evaluator_must_exist(base_folder, tmp_path):
    with pytest.raises(AblationInputError, match="neither"):
        find_evaluator(base_folder, tmp_path)
