"""Preserved concepts: their prompts' cross-attention keys and values stay near the base ones."""

import pytest
import torch

from ablation_core.ablation import plan_ablation
from ablation_core.concepts import Concept
from ablation_core.config import AblationConfig
from ablation_core.errors import AblationInputError
from ablation_core.preservation import token_second_moment
from ablation_core.prompts import build_preservation_prompts
from ablation_core.text_embeddings import encode_prompts
from tests.ablation_core.helpers import GRUMPY_CAT, run_ablation
from tests.tiny_pipelines import BUILDERS

NEIGHBOURS = {"instance": ["dog", "rabbit", "grumpy cat"]}
NEIGHBOUR_PROMPTS = ["a photo of a dog", "a dog on a sofa", "a rabbit in the grass"]
TARGET_PROMPTS = ["a photo of a grumpy cat", "a grumpy cat on a sofa"]


def _key_value_change(pipe, base: dict[str, torch.Tensor], prompts: list[str]) -> float:
    """Return the mean squared change of the cross-attention keys and values of the prompts' tokens."""
    with torch.no_grad():
        hidden = encode_prompts(pipe, prompts).encoder_hidden_states
        changes = []
        for name, module in pipe.unet.named_modules():
            if name.endswith("attn2.to_k") or name.endswith("attn2.to_v"):
                change = hidden @ (module.weight - base[name]).T
                changes.append(change.pow(2).mean())
    return float(torch.stack(changes).mean())


def _train(tmp_path, weight: float) -> tuple[float, float]:
    pipe = BUILDERS["sd1"]()
    base = {name: m.weight.detach().clone() for name, m in pipe.unet.named_modules() if name.endswith(("attn2.to_k", "attn2.to_v"))}

    run_ablation(pipe, tmp_path, preserved_concepts=NEIGHBOURS, preservation_weight=weight, max_steps=6)

    return _key_value_change(pipe, base, NEIGHBOUR_PROMPTS), _key_value_change(pipe, base, TARGET_PROMPTS)


def test_preservation_keeps_neighbour_keys_and_values(tmp_path):
    free_neighbours, free_target = _train(tmp_path / "free", weight=0.0)
    kept_neighbours, kept_target = _train(tmp_path / "kept", weight=1e4)

    assert free_neighbours > 0
    assert kept_neighbours < free_neighbours / 10
    # The target still moves: its tokens are not all in the span of the neighbours' tokens.
    assert kept_target > kept_neighbours


def test_second_moment_is_the_mean_token_outer_product():
    pipe = BUILDERS["sd1"]()
    prompts = ["a dog", "a rabbit in the grass", "a photo of a dog"]

    moment = token_second_moment(pipe, prompts)

    hidden = encode_prompts(pipe, prompts).encoder_hidden_states.detach()
    tokens = hidden.reshape(-1, hidden.shape[-1])
    torch.testing.assert_close(moment, tokens.T @ tokens / tokens.shape[0])


def test_sdxl_second_moment_spans_both_encoders():
    pipe = BUILDERS["sdxl"]()

    moment = token_second_moment(pipe, ["a dog"])

    assert moment.shape == (pipe.unet.config.cross_attention_dim,) * 2


def test_preservation_prompts_skip_targets():
    preserved = {"instance": ["dog", "Grumpy Cat"], "style": ["Monet"], "memorization": ["a dog at the beach, 1998"]}

    prompts = build_preservation_prompts([GRUMPY_CAT], preserved, per_concept=5)

    assert not any("grumpy cat" in prompt.lower() for prompt in prompts)
    assert sum("dog" in prompt and "1998" not in prompt for prompt in prompts) == 5
    assert sum("Monet" in prompt for prompt in prompts) == 5
    assert "a dog at the beach, 1998" in prompts
    assert prompts == build_preservation_prompts([GRUMPY_CAT], preserved, per_concept=5)


def test_plan_carries_preservation_prompts():
    config = AblationConfig.for_concepts([GRUMPY_CAT], preserved_concepts={"instance": ["dog"]})

    plan = plan_ablation([GRUMPY_CAT], config)

    assert plan.preserved_prompts
    assert all("dog" in prompt for prompt in plan.preserved_prompts)


def test_model_file_all_section_applies_to_every_kind(tmp_path):
    (tmp_path / "ablate_config.json").write_text(
        '{"all": {"preserved_concepts": {"instance": ["dog"]}, "max_steps": 50}, "style": {"max_steps": 70}}'
    )

    instance = AblationConfig.for_concepts([GRUMPY_CAT], model_path=tmp_path)
    style = AblationConfig.for_concepts([Concept("style", "Monet", "painting")], model_path=tmp_path)

    assert instance.preserved_concepts == {"instance": ["dog"]}
    assert style.preserved_concepts == {"instance": ["dog"]}
    assert (instance.max_steps, style.max_steps) == (50, 70)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"preserved_concepts": ["dog"]}, "invalid preserved_concepts \\['dog'\\]: use an object"),
        ({"preserved_concepts": {"animal": ["dog"]}}, "invalid concept kind 'animal'"),
        ({"preserved_concepts": {"instance": "dog"}}, "invalid preserved_concepts\\['instance'\\] 'dog'"),
        ({"preserved_concepts": {"instance": [""]}}, "use a list of non-empty words"),
        ({"preservation_weight": -1}, "invalid preservation_weight -1"),
    ],
)
def test_bad_preservation_settings_are_rejected(overrides, message):
    with pytest.raises(AblationInputError, match=message):
        AblationConfig.for_concepts([GRUMPY_CAT], **overrides)


def test_preservation_counts_once_per_micro_batched_step(tmp_path):
    weights = []
    for micro_batch_size in (None, 2):
        pipe = BUILDERS["sd1"]()
        run_ablation(
            pipe, tmp_path / str(micro_batch_size), preserved_concepts=NEIGHBOURS, preservation_weight=10.0,
            micro_batch_size=micro_batch_size, max_steps=3,
        )
        weights.append({n: p.detach().clone() for n, p in pipe.unet.named_parameters() if ".attn2.to_k." in n})

    whole, split = weights
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-6)
