import json

import pytest

from ablation_core.cli.main import main
from tests.ablation_core.helpers import run_ablation
from tests.tiny_pipelines import BUILDERS

FAST_RUN = ["--num-anchor-prompts", "2", "--sampler-steps", "2", "--max-steps", "2", "--batch-size", "2"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture(scope="module")
def other_base_delta(tmp_path_factory):
    """A delta trained on a different tiny SD1 model (seed 1)."""
    root = tmp_path_factory.mktemp("other")
    return str(run_ablation(BUILDERS["sd1"](seed=1), root, max_steps=1).path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "statue", "--target", "a", "--anchor", "b"], "invalid concept kind 'statue'"),
        (["--kind", "instance", "--target", "", "--anchor", "cat"], "target concept is empty"),
        (["--kind", "instance", "--target", "cat", "--anchor", "Cat"], "equals the anchor concept"),
        (["--kind", "instance", "--target", "grumpy cat"], "missing --anchor"),
        (["--kind", "instance", "--target", "grumpy cat", "--anchor", "cat", "--preserve", "dog"], "invalid --preserve 'dog': write KIND:WORD"),
        (["--kind", "instance", "--target", "grumpy cat", "--anchor", "cat", "--preserve", "animal:dog"], "invalid concept kind 'animal'"),
    ],
)
def test_run_rejects_bad_concepts(tiny_model_dirs, tmp_path, capsys, args, message):
    code = main(["run", "--model", tiny_model_dirs["sd1"], "--output", str(tmp_path / "d.safetensors"), *args])

    assert code == 2
    assert message in _error_line(capsys)


def test_run_rejects_prompts_without_anchor(tiny_model_dirs, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a dog on a sofa\n")

    code = main(
        ["run", "--model", tiny_model_dirs["sd1"], "--kind", "instance", "--target", "grumpy cat", "--anchor", "cat",
         "--anchor-prompts", str(prompts), "--output", str(tmp_path / "d.safetensors")]
    )

    assert code == 2
    assert "does not contain the anchor concept 'cat'" in _error_line(capsys)


def test_run_rejects_missing_model(tmp_path, capsys):
    code = main(["run", "--model", str(tmp_path / "nowhere"), "--kind", "instance", "--target", "grumpy cat",
                 "--anchor", "cat", "--output", str(tmp_path / "d.safetensors")])

    assert code == 2
    assert f"base model path '{tmp_path / 'nowhere'}' not found" in _error_line(capsys)


def test_apply_rejects_delta_for_other_base(tiny_model_dirs, other_base_delta, tmp_path, capsys):
    code = main(["apply", "--model", tiny_model_dirs["sd1"], "--delta", other_base_delta, "--output", str(tmp_path / "out")])

    assert code == 2
    assert "made for other base weights" in _error_line(capsys)


def test_info_rejects_missing_delta(tmp_path, capsys):
    code = main(["info", str(tmp_path / "missing.safetensors")])

    assert code == 2
    assert "not found" in _error_line(capsys)


def test_unknown_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--colour", "red"])

    assert exit_info.value.code == 2


def test_run_apply_generate_info(tiny_model_dirs, tmp_path, capsys):
    model = tiny_model_dirs["sd1"]
    delta = tmp_path / "delta.safetensors"

    assert main(["run", "--model", model, "--kind", "instance", "--target", "grumpy cat", "--anchor", "cat",
                 "--preserve", "instance:dog", "--work-dir", str(tmp_path / "work"), "--output", str(delta), *FAST_RUN]) == 0
    capsys.readouterr()
    assert main(["info", str(delta), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert main(["apply", "--model", model, "--delta", str(delta), "--output", str(tmp_path / "applied")]) == 0
    assert main(["generate", "--model", model, "--delta", str(delta), "--prompt", "a grumpy cat", "--num-images", "2",
                 "--steps", "2", "--before-after", "--output", str(tmp_path / "grid.png")]) == 0

    assert (tmp_path / "applied" / "model_index.json").is_file()
    assert (tmp_path / "grid.png").is_file()
    assert info["parameter_group"] == "crossattn_kv"
    assert info["concepts"][0]["target"] == "grumpy cat"
    assert info["config"]["preserved_concepts"] == {"instance": ["dog"]}
    assert info["preserved_prompts"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frozen-weights-dtype", "bf16"], "invalid frozen_weights_dtype 'bf16' with mixed_precision 'no'"),
        (["--micro-batch-size", "0"], "invalid micro_batch_size 0: use a positive integer"),
    ],
)
def test_run_rejects_bad_memory_savers(tiny_model_dirs, tmp_path, capsys, args, message):
    code = main(["run", "--model", tiny_model_dirs["sd1"], "--kind", "instance", "--target", "grumpy cat",
                 "--anchor", "cat", "--output", str(tmp_path / "d.safetensors"), *args])

    assert code == 2
    assert message in _error_line(capsys)


def test_run_with_memory_savers(tiny_model_dirs, tmp_path, capsys):
    delta = tmp_path / "delta.safetensors"
    savers = ["--frozen-weights-dtype", "bf16", "--mixed-precision", "bf16", "--micro-batch-size", "1"]

    assert main(["run", "--model", tiny_model_dirs["sd1"], "--kind", "instance", "--target", "grumpy cat",
                 "--anchor", "cat", "--work-dir", str(tmp_path / "work"), "--output", str(delta),
                 *FAST_RUN, *savers]) == 0
    capsys.readouterr()
    assert main(["info", str(delta), "--json"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]

    assert config["frozen_weights_dtype"] == "bf16"
    assert config["mixed_precision"] == "bf16"
    assert config["micro_batch_size"] == 1
