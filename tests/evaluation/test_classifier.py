import torch

from ablation_core.evaluation.classifier import (
    ClassifierConfig,
    Evaluator,
    FashionClassifier,
    is_evaluator_folder,
    load_evaluator,
    save_evaluator,
)


def build_evaluator(seed: int = 0, memorization: dict | None = None) -> Evaluator:
    torch.manual_seed(seed)
    config = ClassifierConfig(channels=(4, 8), feature_dim=8, memorization=memorization or {})
    classes = ("t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
    return Evaluator(FashionClassifier(config).eval(), classes, ("plain", "neon", "pinstripe", "ember"))


def test_evaluator_round_trip(tmp_path):
    evaluator = build_evaluator(memorization={"threshold": 0.8})
    images = torch.rand(5, 3, 32, 32)

    save_evaluator(evaluator, tmp_path)
    loaded = load_evaluator(tmp_path)

    assert is_evaluator_folder(tmp_path)
    assert loaded.class_names == evaluator.class_names
    assert loaded.style_names == evaluator.style_names
    assert loaded.memorization == {"threshold": 0.8}
    assert torch.allclose(loaded.predict(images)["class_probs"], evaluator.predict(images)["class_probs"])


def test_predict_shapes():
    outputs = build_evaluator().predict(torch.rand(3, 3, 32, 32), batch_size=2)

    assert outputs["class_probs"].shape == (3, 10)
    assert outputs["style_probs"].shape == (3, 4)
    assert outputs["features"].shape == (3, 8)
    assert torch.allclose(outputs["class_probs"].sum(-1), torch.ones(3))


def test_folder_without_weights_is_not_evaluator(tmp_path):
    (tmp_path / "config.json").write_text("{}")

    assert not is_evaluator_folder(tmp_path)
