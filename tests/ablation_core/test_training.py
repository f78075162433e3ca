import pytest
import torch

from ablation_core.parameter_groups import resolve_tensor
from tests.ablation_core.helpers import run_ablation
from tests.tiny_pipelines import BUILDERS


def _snapshot(pipe) -> dict[str, torch.Tensor]:
    tensors = {}
    for component in ("unet", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, component, None)
        if module is not None:
            tensors.update({f"{component}.{n}": p.detach().clone() for n, p in module.named_parameters()})
    return tensors


def _changed(before: dict[str, torch.Tensor], pipe) -> set[str]:
    return {name for name, value in before.items() if not torch.equal(value, resolve_tensor(pipe, name).detach())}


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("crossattn_kv", lambda n: n.startswith("unet.") and (".attn2.to_k." in n or ".attn2.to_v." in n)),
        ("crossattn", lambda n: n.startswith("unet.") and ".attn2." in n),
        ("attn", lambda n: n.startswith("unet.") and (".attn1." in n or ".attn2." in n)),
        ("full", lambda n: n.startswith("unet.")),
    ],
)
def test_only_parameter_group_changes(tmp_path, group, expected):
    pipe = BUILDERS["sd1"]()
    before = _snapshot(pipe)

    run_ablation(pipe, tmp_path, parameter_group=group, max_steps=2)

    changed = _changed(before, pipe)
    allowed = {name for name in before if expected(name)}
    assert changed, "training changed no weights"
    assert changed <= allowed
    if group != "full":  # every tensor of the group gets a gradient; with full, some may not
        assert changed == allowed


def test_embedding_group_changes_only_target_rows(tmp_path):
    pipe = BUILDERS["sd1"]()
    embedding_before = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    before = _snapshot(pipe)

    run_ablation(pipe, tmp_path, parameter_group="embedding", max_steps=2)

    changed = _changed(before, pipe)
    assert changed == {"text_encoder.embeddings.token_embedding.weight"}
    embedding_after = pipe.text_encoder.get_input_embeddings().weight.detach()
    changed_rows = (embedding_after != embedding_before).any(dim=1).nonzero().flatten().tolist()
    grumpy_rows = pipe.tokenizer("grumpy", add_special_tokens=False).input_ids
    assert changed_rows == grumpy_rows


def test_model_based_loss_falls(tmp_path):
    pipe = BUILDERS["sd1"]()

    summary = run_ablation(
        pipe, tmp_path, max_steps=30, learning_rate=2e-3, regularization_weight=0.0, num_anchor_prompts=8
    )

    losses = summary.ablation_losses
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_families_train_crossattn_kv(tmp_path, family):
    pipe = BUILDERS[family]()
    before = _snapshot(pipe)

    summary = run_ablation(pipe, tmp_path, max_steps=2)

    assert summary.steps == 2
    changed = _changed(before, pipe)
    assert changed and all(".attn2.to_k." in n or ".attn2.to_v." in n for n in changed)


@pytest.mark.parametrize("objective", ["noise_based", "reverse_kl", "loss_max"])
def test_other_objectives_run(tmp_path, objective):
    pipe = BUILDERS["sd1"]()
    before = _snapshot(pipe)

    summary = run_ablation(pipe, tmp_path, objective=objective, max_steps=2)

    assert summary.steps == 2
    assert all(torch.isfinite(torch.tensor(summary.losses)))
    assert _changed(before, pipe)


def test_progress_callback_cancels(tmp_path):
    from ablation_core.ablation import generate_anchor_data, plan_ablation, prepare_base, train_delta
    from ablation_core.errors import AblationCancelled
    from tests.ablation_core.helpers import GRUMPY_CAT, fast_config

    pipe = BUILDERS["sd1"]()
    plan = plan_ablation([GRUMPY_CAT], fast_config(max_steps=10))
    base = prepare_base(pipe, plan, "tiny")
    generate_anchor_data(pipe, plan, tmp_path / "anchors")
    seen = []

    def stop_at_three(step, total, loss):
        seen.append(step)
        return step < 3

    with pytest.raises(AblationCancelled, match="step 3 of 10"):
        train_delta(pipe, plan, tmp_path / "anchors", tmp_path / "delta.safetensors", base, stop_at_three)
    assert seen == [1, 2, 3]
    assert not (tmp_path / "delta.safetensors").exists()
