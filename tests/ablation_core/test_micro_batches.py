"""Micro-batching: each step's batch in several forward and backward passes, one optimizer step."""

import pytest
import torch

from ablation_core import training
from ablation_core.ablation import generate_anchor_data, plan_ablation
from ablation_core.anchors import read_manifest
from ablation_core.batches import Batch
from ablation_core.config import AblationConfig
from ablation_core.encoding import load_or_encode
from ablation_core.errors import AblationInputError
from ablation_core.parameter_groups import select_trainable
from ablation_core.training import Trainer
from tests.ablation_core.helpers import GRUMPY_CAT, fast_config
from tests.tiny_pipelines import BUILDERS

# Batch 5 so that micro-batches of 2 leave a remainder of 1. A learning rate of 1e-3 with
# AdamW moves every weight by about 1e-3 in the first step, far above fp32 rounding.
BATCH = 5


@pytest.fixture(scope="module")
def anchor_data(tmp_path_factory):
    """Encoded anchor and target images of one plan, by family; the tiny pipelines are seeded, so any copy can train on them."""
    encoded = {}
    for family in ("sd1", "sdxl"):
        anchor_dir = tmp_path_factory.mktemp(f"anchors-{family}")
        pipe = BUILDERS[family]()
        plan = plan_ablation([GRUMPY_CAT], fast_config(objective="reverse_kl", batch_size=BATCH))
        generate_anchor_data(pipe, plan, anchor_dir)
        done = read_manifest(anchor_dir)
        rows = [done[item.index] for item in plan.images]
        encoded[family] = load_or_encode(pipe, anchor_dir, rows, plan.pairs, set())
    return encoded


def _trainer(data, family="sd1", **overrides) -> Trainer:
    config = fast_config(batch_size=BATCH, **overrides)
    pipe = BUILDERS[family]()
    trainable = select_trainable(pipe, config.parameter_group, [GRUMPY_CAT])
    return Trainer(pipe, data, trainable, config, [GRUMPY_CAT])


def _train(trainer: Trainer, steps: int) -> tuple[list[list[torch.Tensor]], list[tuple[float, float]]]:
    """Run `steps` steps; return the gradients each optimizer step saw, and the losses."""
    gradients = []
    original_step = trainer.optimizer.step

    def record_then_step(*args, **kwargs):
        gradients.append([parameter.grad.detach().clone() for parameter in trainer.parameters])
        return original_step(*args, **kwargs)

    trainer.optimizer.step = record_then_step
    with trainer.session():
        losses = [trainer.step() for _ in range(steps)]
    return gradients, losses


def _assert_same_training(whole: Trainer, split: Trainer, steps: int = 2) -> None:
    whole_gradients, whole_losses = _train(whole, steps)
    split_gradients, split_losses = _train(split, steps)

    flat_whole = [value for pair in whole_losses for value in pair]
    flat_split = [value for pair in split_losses for value in pair]
    assert flat_split == pytest.approx(flat_whole, rel=1e-5, abs=1e-7)
    assert len(split_gradients) == len(whole_gradients) == steps
    for step, (step_whole, step_split) in enumerate(zip(whole_gradients, split_gradients)):
        expected, actual = torch.cat([g.flatten() for g in step_whole]), torch.cat([g.flatten() for g in step_split])
        if expected.norm() == 0:
            assert not actual.any()
            continue
        # The first step starts from equal weights; later ones inherit AdamW's spread (below).
        tolerance = 1e-5 if step == 0 else 1e-4
        assert (actual - expected).norm() / expected.norm() < tolerance

    # AdamW's first steps move each weight by about lr * g / (|g| + 1e-8), so where an
    # element's gradient is near 1e-8, fp32 differences in summation order show up as a
    # few percent of its update. The tolerance is 5% of one update.
    learning_rate = whole.optimizer.param_groups[0]["lr"]
    for expected, actual in zip(whole.parameters, split.parameters):
        torch.testing.assert_close(actual.detach(), expected.detach(), rtol=0, atol=0.05 * learning_rate)


@pytest.mark.parametrize(
    ("objective", "regularization_weight", "micro_batch_size"),
    [
        ("model_based", 0.2, 2),
        ("model_based", 0.2, 1),
        ("model_based", 0.0, 2),
        ("noise_based", 0.2, 3),
        ("reverse_kl", 0.2, 2),
        ("reverse_kl", 0.0, 4),
    ],
)
def test_micro_batches_match_whole_batch(anchor_data, objective, regularization_weight, micro_batch_size):
    settings = {"objective": objective, "regularization_weight": regularization_weight, "max_grad_norm": 1e9}

    whole = _trainer(anchor_data["sd1"], **settings)
    split = _trainer(anchor_data["sd1"], micro_batch_size=micro_batch_size, **settings)

    _assert_same_training(whole, split)


@pytest.mark.parametrize("scale", [0.9, 10.0])
def test_loss_max_micro_batches_match(anchor_data, monkeypatch, scale):
    # Eq. 7 clamps max(1 - L, 0) over the whole batch. L is about 1.09 here, so scale 10
    # clamps every step. Scale 0.9 puts the batch's L below 1 but the first part's above,
    # so clamping each part on its own would drop that part's gradient.
    part_losses = []
    original = training.target_image_loss

    def scaled_loss(*args):
        loss = original(*args) * scale
        part_losses.append(loss.item())
        return loss

    monkeypatch.setattr(training, "target_image_loss", scaled_loss)
    settings = {"objective": "loss_max", "regularization_weight": 0.2, "max_grad_norm": 1e9}
    whole = _trainer(anchor_data["sd1"], **settings)
    split = _trainer(anchor_data["sd1"], micro_batch_size=2, **settings)

    _assert_same_training(whole, split)

    whole_first_step, split_first_step = part_losses[0], part_losses[2:5]
    if scale < 1:
        assert whole_first_step < 1
        assert split_first_step[0] > 1
    else:
        assert min(split_first_step) > 1


@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_loss_max_clamp_stops_gradient(anchor_data, monkeypatch, scale):
    original = training.target_image_loss
    monkeypatch.setattr(training, "target_image_loss", lambda *a: original(*a) * scale)
    trainer = _trainer(anchor_data["sd1"], objective="loss_max", regularization_weight=0.0, micro_batch_size=2)

    gradients, losses = _train(trainer, 1)

    if scale > 1:
        assert losses[0] == (0.0, 0.0)
        assert all(not gradient.any() for gradient in gradients[0])
    else:
        assert losses[0][1] > 0
        assert any(gradient.any() for gradient in gradients[0])


def test_micro_batches_embedding_group(anchor_data):
    settings = {"parameter_group": "embedding", "max_grad_norm": 1e9}

    whole = _trainer(anchor_data["sd1"], **settings)
    split = _trainer(anchor_data["sd1"], micro_batch_size=2, **settings)

    _assert_same_training(whole, split)


def test_micro_batches_sdxl(anchor_data):
    whole = _trainer(anchor_data["sdxl"], family="sdxl", max_grad_norm=1e9)
    split = _trainer(anchor_data["sdxl"], family="sdxl", micro_batch_size=2, max_grad_norm=1e9)

    _assert_same_training(whole, split)


def test_micro_batches_with_clipping(anchor_data):
    whole = _trainer(anchor_data["sd1"], max_grad_norm=1e-3)
    split = _trainer(anchor_data["sd1"], micro_batch_size=2, max_grad_norm=1e-3)

    _assert_same_training(whole, split)


def test_micro_batches_with_grad_scaler(anchor_data, monkeypatch):
    # The fp16 GradScaler runs only on CUDA in training; forcing it on here runs the same
    # code path with torch's CPU GradScaler, on fp32 weights.
    monkeypatch.setattr(Trainer, "_fp16_on_cuda", lambda self: True)

    whole = _trainer(anchor_data["sd1"], max_grad_norm=1e9)
    split = _trainer(anchor_data["sd1"], micro_batch_size=2, max_grad_norm=1e9)

    assert split.scaler is not None and split.scaler.is_enabled()
    _assert_same_training(whole, split)
    assert split.scaler.get_scale() == whole.scaler.get_scale()


def test_grad_scaler_matches_plain_step(anchor_data, monkeypatch):
    plain = _trainer(anchor_data["sd1"], micro_batch_size=2, max_grad_norm=1e9)
    monkeypatch.setattr(Trainer, "_fp16_on_cuda", lambda self: True)
    scaled = _trainer(anchor_data["sd1"], micro_batch_size=2, max_grad_norm=1e9)

    assert plain.scaler is None
    _assert_same_training(plain, scaled)


def test_nonfinite_part_raises_before_update(anchor_data, monkeypatch):
    trainer = _trainer(anchor_data["sd1"], micro_batch_size=2)
    before = [parameter.detach().clone() for parameter in trainer.parameters]
    calls = []
    original = training.model_based_loss

    def nan_in_second_part(*args):
        calls.append(1)
        loss = original(*args)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(training, "model_based_loss", nan_in_second_part)

    with pytest.raises(FloatingPointError, match="training loss became nan"), trainer.session():
        trainer.step()
    assert len(calls) == 3
    for expected, actual in zip(before, trainer.parameters):
        assert torch.equal(actual.detach(), expected)
    assert all(parameter.grad is None for parameter in trainer.parameters)


@pytest.mark.parametrize(
    ("micro_batch_size", "expected"),
    [(None, [(1.0, 5)]), (5, [(1.0, 5)]), (8, [(1.0, 5)]), (2, [(0.4, 2), (0.4, 2), (0.2, 1)]), (1, [(0.2, 1)] * 5)],
)
def test_batch_split_shares(micro_batch_size, expected):
    batch = Batch({"noisy": torch.arange(10.0).reshape(5, 2), "ids": torch.arange(5)})

    parts = batch.split(micro_batch_size)

    assert [(pytest.approx(share), part["ids"].shape[0]) for share, part in parts] == expected
    assert torch.equal(torch.cat([part["ids"] for _, part in parts]), torch.arange(5))
    assert sum(share for share, _ in parts) == pytest.approx(1.0)


def test_batch_rejects_unequal_sizes():
    with pytest.raises(ValueError, match="batch tensors differ in batch size"):
        Batch({"noisy": torch.zeros(4, 2), "ids": torch.zeros(3)})


@pytest.mark.parametrize("value", [0, -2, 1.5, "4", True])
def test_invalid_micro_batch_size_rejected(value):
    with pytest.raises(AblationInputError, match=rf"invalid micro_batch_size {value!r}: use a positive integer"):
        AblationConfig(micro_batch_size=value)


def test_micro_batch_size_default_and_larger_than_batch():
    assert AblationConfig().micro_batch_size is None
    assert AblationConfig(batch_size=2, micro_batch_size=8).micro_batch_size == 8
