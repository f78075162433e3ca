"""frozen_weights_dtype: the untrained UNet weights in bf16 or fp16, the trained ones in fp32."""

import json

import pytest
import torch

from ablation_core.ablation import generate_anchor_data, plan_ablation, prepare_base, train_delta
from ablation_core.anchors import read_manifest
from ablation_core.config import AblationConfig, ParameterGroup
from ablation_core.deltas import apply_deltas, load_delta
from ablation_core.encoding import load_or_encode
from ablation_core.errors import AblationInputError
from ablation_core.parameter_groups import select_trainable, unet_parameter_names
from ablation_core.training import Trainer
from tests.ablation_core.helpers import GRUMPY_CAT, fast_config
from tests.tiny_pipelines import BUILDERS

HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.fixture(scope="module")
def anchors(tmp_path_factory):
    """An SD1 anchor folder for the default plan of `fast_config`, and its encoded data."""
    anchor_dir = tmp_path_factory.mktemp("anchors")
    pipe = BUILDERS["sd1"]()
    plan = plan_ablation([GRUMPY_CAT], fast_config())
    generate_anchor_data(pipe, plan, anchor_dir)
    done = read_manifest(anchor_dir)
    rows = [done[item.index] for item in plan.images]
    return anchor_dir, load_or_encode(pipe, anchor_dir, rows, plan.pairs, set())


def _trainer(data, pipe=None, **overrides) -> Trainer:
    config = fast_config(**overrides)
    pipe = pipe or BUILDERS["sd1"]()
    trainable = select_trainable(pipe, config.parameter_group, [GRUMPY_CAT])
    return Trainer(pipe, data, trainable, config, [GRUMPY_CAT])


def _unet_dtypes(pipe, group: str) -> tuple[set[torch.dtype], set[torch.dtype]]:
    """Return the dtypes of the group's UNet parameters and of the others."""
    trained = set(unet_parameter_names(pipe.unet, ParameterGroup(group)))
    parameters = dict(pipe.unet.named_parameters())
    trained_dtypes = {parameters[name].dtype for name in trained}
    frozen_dtypes = {parameter.dtype for name, parameter in parameters.items() if name not in trained}
    return trained_dtypes, frozen_dtypes


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_frozen_weights_cast_and_train(anchors, dtype):
    _, data = anchors
    trainer = _trainer(data, frozen_weights_dtype=dtype, mixed_precision=dtype, max_steps=2)
    pipe = trainer.pipe
    before = [parameter.detach().clone() for parameter in trainer.parameters]

    trained_dtypes, frozen_dtypes = _unet_dtypes(pipe, "crossattn_kv")
    outcome = trainer.run()

    assert trained_dtypes == {torch.float32}
    assert frozen_dtypes == {HALF[dtype]}
    assert {p.dtype for p in pipe.text_encoder.parameters()} == {torch.float32}
    assert {p.dtype for p in pipe.vae.parameters()} == {torch.float32}
    assert outcome.steps == 2
    assert all(torch.isfinite(torch.tensor(outcome.losses)))
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, trainer.parameters))


def test_frozen_weights_stay_cast_after_run(anchors):
    _, data = anchors
    trainer = _trainer(data, frozen_weights_dtype="bf16", mixed_precision="bf16", max_steps=1)

    trainer.run()

    assert _unet_dtypes(trainer.pipe, "crossattn_kv") == ({torch.float32}, {torch.bfloat16})


def test_fp32_default_leaves_fp32_unet(anchors):
    _, data = anchors
    trainer = _trainer(data, max_steps=1)

    assert {p.dtype for p in trainer.pipe.unet.parameters()} == {torch.float32}


def test_fp32_upcasts_half_unet(anchors):
    _, data = anchors
    pipe = BUILDERS["sd1"]()
    pipe.unet.to(torch.bfloat16)

    _trainer(data, pipe=pipe)

    assert {p.dtype for p in pipe.unet.parameters()} == {torch.float32}


def test_full_group_casts_nothing(anchors):
    _, data = anchors
    trainer = _trainer(data, parameter_group="full", frozen_weights_dtype="bf16", mixed_precision="bf16")

    assert {p.dtype for p in trainer.pipe.unet.parameters()} == {torch.float32}


def test_embedding_group_casts_whole_unet(anchors):
    _, data = anchors
    trainer = _trainer(data, parameter_group="embedding", frozen_weights_dtype="bf16", mixed_precision="bf16")

    outcome = trainer.run()

    assert {p.dtype for p in trainer.pipe.unet.parameters()} == {torch.bfloat16}
    assert all(torch.isfinite(torch.tensor(outcome.losses)))


def test_bf16_run_delta_applies_to_fp32_base(anchors, tmp_path):
    anchor_dir, _ = anchors
    pipe = BUILDERS["sd1"]()
    base_state = {name: p.detach().clone() for name, p in pipe.unet.named_parameters()}
    plan = plan_ablation([GRUMPY_CAT], fast_config(frozen_weights_dtype="bf16", mixed_precision="bf16", max_steps=2))
    base = prepare_base(pipe, plan, "tiny")

    summary = train_delta(pipe, plan, anchor_dir, tmp_path / "delta.safetensors", base)
    delta = load_delta(summary.path)
    fresh = BUILDERS["sd1"]()
    apply_deltas(fresh, [delta])

    trained = dict(pipe.unet.named_parameters())
    applied = dict(fresh.unet.named_parameters())
    kv_names = unet_parameter_names(pipe.unet, ParameterGroup.CROSSATTN_KV)
    assert set(delta.tensors) == {f"unet.{name}" for name in kv_names}
    assert delta.metadata["config"]["frozen_weights_dtype"] == "bf16"
    for name in kv_names:
        # The delta is the trained fp32 tensor minus the fp32 base, not minus a bf16 copy.
        torch.testing.assert_close(delta.tensors[f"unet.{name}"], trained[name].detach() - base_state[name], rtol=0, atol=0)
        torch.testing.assert_close(applied[name].detach(), trained[name].detach(), rtol=1e-6, atol=1e-7)
    for name, value in applied.items():
        assert value.dtype == torch.float32
        if name not in kv_names:
            assert torch.equal(value.detach(), base_state[name])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"frozen_weights_dtype": "bf16"},
            (
                "invalid frozen_weights_dtype 'bf16' with mixed_precision 'no': "
                "set mixed_precision to 'bf16', or frozen_weights_dtype to 'fp32'"
            ),
        ),
        (
            {"frozen_weights_dtype": "fp16", "mixed_precision": "bf16"},
            "invalid frozen_weights_dtype 'fp16' with mixed_precision 'bf16': set mixed_precision to 'fp16'",
        ),
        ({"frozen_weights_dtype": "int8"}, "invalid frozen_weights_dtype 'int8': use one of fp32, bf16, fp16"),
    ],
)
def test_invalid_frozen_weights_dtype_rejected(settings, message):
    with pytest.raises(AblationInputError) as error:
        AblationConfig(**settings)

    assert message in str(error.value)


def test_frozen_weights_dtype_parsing():
    assert AblationConfig().frozen_weights_dtype == "fp32"
    assert AblationConfig(frozen_weights_dtype=" BF16", mixed_precision="bf16").frozen_weights_dtype == "bf16"
    assert AblationConfig(frozen_weights_dtype="fp32", mixed_precision="fp16").frozen_weights_dtype == "fp32"


def test_memory_savers_from_model_config_file(tmp_path):
    savers = {"frozen_weights_dtype": "bf16", "mixed_precision": "bf16", "micro_batch_size": 2}
    (tmp_path / "ablate_config.json").write_text(json.dumps({"instance": savers}))

    config = AblationConfig.for_concepts([GRUMPY_CAT], model_path=tmp_path)
    overridden = AblationConfig.for_concepts([GRUMPY_CAT], model_path=tmp_path, micro_batch_size=4)

    assert (config.frozen_weights_dtype, config.mixed_precision, config.micro_batch_size) == ("bf16", "bf16", 2)
    assert overridden.micro_batch_size == 4


def test_invalid_memory_savers_in_model_config_file(tmp_path):
    (tmp_path / "ablate_config.json").write_text(json.dumps({"instance": {"micro_batch_size": "2"}}))

    with pytest.raises(AblationInputError, match="invalid micro_batch_size '2': use a positive integer"):
        AblationConfig.for_concepts([GRUMPY_CAT], model_path=tmp_path)
