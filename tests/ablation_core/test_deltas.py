import pytest
import torch

from ablation_core.deltas import apply_deltas, combine_deltas, load_delta, revert_deltas, save_delta
from ablation_core.errors import AblationInputError, DeltaMismatchError
from ablation_core.parameter_groups import resolve_tensor
from tests.ablation_core.helpers import GRUMPY_CAT, run_ablation
from ablation_core.concepts import Concept
from tests.tiny_pipelines import BUILDERS

SNOOPY = Concept("instance", "snoopy", "dog")


def _unet_state(pipe):
    return {n: p.detach().clone() for n, p in pipe.unet.named_parameters()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Two deltas trained in sequence on the tiny SD1 model: the second on top of the first."""
    root = tmp_path_factory.mktemp("chain")
    pipe = BUILDERS["sd1"]()
    first = run_ablation(pipe, root / "first", max_steps=3)
    first_delta = load_delta(first.path)
    trained_once = _unet_state(pipe)

    pipe = BUILDERS["sd1"]()
    second = run_ablation(pipe, root / "second", concepts=(SNOOPY,), parents=[first_delta], max_steps=3)
    trained_twice = _unet_state(pipe)
    return first_delta, load_delta(second.path), trained_once, trained_twice


def test_delta_applies_trained_weights(chain):
    first, _, trained_once, _ = chain
    pipe = BUILDERS["sd1"]()

    apply_deltas(pipe, [first])

    for name, value in _unet_state(pipe).items():
        torch.testing.assert_close(value, trained_once[name], rtol=0, atol=1e-6)


def test_apply_then_revert_gives_base(chain):
    first, second, _, _ = chain
    pipe = BUILDERS["sd1"]()
    base = _unet_state(pipe)

    apply_deltas(pipe, [first, second])
    revert_deltas(pipe, [first, second])

    for name, value in _unet_state(pipe).items():
        torch.testing.assert_close(value, base[name], rtol=0, atol=1e-6)


def test_stack_order_is_enforced(chain):
    first, second, _, trained_twice = chain
    pipe = BUILDERS["sd1"]()

    with pytest.raises(DeltaMismatchError, match="trained on top of 1 earlier delta"):
        apply_deltas(pipe, [second])
    with pytest.raises(DeltaMismatchError, match="trained on top of 1 earlier delta"):
        apply_deltas(pipe, [second, first])

    apply_deltas(pipe, [first, second])
    for name, value in _unet_state(pipe).items():
        torch.testing.assert_close(value, trained_twice[name], rtol=0, atol=1e-6)


def test_combined_delta_equals_chain(chain, tmp_path):
    first, second, _, trained_twice = chain
    base_pipe = BUILDERS["sd1"]()
    combined = combine_deltas([first, second], base_pipe=base_pipe)
    save_delta(combined, tmp_path / "cumulative.safetensors")

    pipe = BUILDERS["sd1"]()
    apply_deltas(pipe, [load_delta(tmp_path / "cumulative.safetensors")])

    for name, value in _unet_state(pipe).items():
        torch.testing.assert_close(value, trained_twice[name], rtol=0, atol=1e-5)


def test_delta_for_other_base_is_rejected(chain):
    first, _, _, _ = chain
    other = BUILDERS["sd1"](seed=1)

    with pytest.raises(DeltaMismatchError, match="made for other base weights"):
        apply_deltas(other, [first])


def test_delta_for_other_architecture_is_rejected(chain):
    first, _, _, _ = chain

    with pytest.raises(DeltaMismatchError, match="has shape"):
        apply_deltas(BUILDERS["sdxl"](), [first])


def test_delta_with_unknown_tensor_is_rejected(chain):
    first, _, _, _ = chain
    name = next(iter(first.tensors))
    renamed = type(first)({name.replace("unet.", "unet.missing."): first.tensors[name]}, {}, dict(first.metadata))

    with pytest.raises(DeltaMismatchError, match="which this model lacks"):
        apply_deltas(BUILDERS["sd1"](), [renamed])


def test_delta_rejects_integer_values(chain):
    first, _, _, _ = chain
    name = next(iter(first.tensors))
    broken = type(first)({name: first.tensors[name].to(torch.int32)}, {}, {})

    with pytest.raises(DeltaMismatchError, match="dtype torch.int32"):
        apply_deltas(BUILDERS["sd1"](), [broken])


def test_delta_metadata_round_trip(chain, tmp_path):
    first, _, _, _ = chain

    save_delta(first, tmp_path / "copy.safetensors")
    loaded = load_delta(tmp_path / "copy.safetensors")

    assert loaded.metadata["parameter_group"] == "crossattn_kv"
    assert loaded.metadata["concepts"] == [GRUMPY_CAT.to_dict()]
    assert loaded.metadata["config"]["objective"] == "model_based"
    assert loaded.metadata["base_hash"] == first.metadata["base_hash"]
    assert loaded.sha256 == first.sha256
    assert set(loaded.tensors) == set(first.tensors)


def test_embedding_delta_stores_rows_only(tmp_path):
    pipe = BUILDERS["sd1"]()
    summary = run_ablation(pipe, tmp_path, parameter_group="embedding", max_steps=2)

    delta = load_delta(summary.path)

    [(name, values)] = delta.tensors.items()
    assert values.shape == (len(delta.rows[name]), 32)
    fresh = BUILDERS["sd1"]()
    apply_deltas(fresh, [delta])
    torch.testing.assert_close(resolve_tensor(fresh, name), resolve_tensor(pipe, name), rtol=0, atol=1e-6)


def test_load_rejects_non_delta_files(tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")

    with pytest.raises(AblationInputError, match="is not an Ablate delta"):
        load_delta(plain)
    with pytest.raises(AblationInputError, match="not a readable safetensors file"):
        load_delta(garbage)
    with pytest.raises(AblationInputError, match="not found"):
        load_delta(tmp_path / "missing.safetensors")
