"""Argument checks of the Fashion-MNIST training script, models/train_fashion_sd.py."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "models" / "train_fashion_sd.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_fashion_sd", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_offset_noise_defaults_off(script):
    args = script.parse_args([])

    assert args.offset_noise == 0.0


def test_offset_noise_accepts_positive(script):
    args = script.parse_args(["--offset-noise", "0.2"])

    assert args.offset_noise == 0.2


def test_negative_offset_noise_rejected(script, capsys):
    with pytest.raises(SystemExit) as raised:
        script.parse_args(["--offset-noise", "-0.1"])

    assert raised.value.code == 2
    message = capsys.readouterr().err
    assert "invalid --offset-noise -0.1" in message
    assert "use a standard deviation >= 0" in message
