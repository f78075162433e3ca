"""One short ablation on the shipped Fashion-MNIST model: the target goes, a neighbour stays.

It runs the core's steps (plan, anchor images, training) with fewer anchor prompts and
steps than the defaults, then measures with the shipped evaluator: the share of samples
from "a photo of a sneaker" that the classifier names a sneaker must fall, and samples of
a bag (a surrounding concept) must still be named a bag.
"""

from pathlib import Path

import pytest
import torch

from ablation_core.ablation import generate_anchor_data, plan_ablation, prepare_base, train_delta
from ablation_core.concepts import Concept
from ablation_core.config import AblationConfig, SamplerConfig
from ablation_core.deltas import apply_deltas, load_delta
from ablation_core.evaluation.runner import find_evaluator
from ablation_core.evaluation.sampling import SampleCache, sample_plan
from ablation_core.evaluation.scorers import Check
from ablation_core.fashion.captions import class_prompt
from ablation_core.pipelines import load_pipeline, model_identity

MODEL = Path(__file__).resolve().parents[2] / "models" / "fashion-sd"
SAMPLES = 12


def _accuracy(pipe, scorer, name: str) -> float:
    cache = SampleCache(pipe, SamplerConfig(num_inference_steps=20, batch_size=SAMPLES))
    images = cache.stack(sample_plan([class_prompt(name)], SAMPLES, seed=3))
    return float(scorer.judge(images, Check("class", name)).hits.float().mean())


@pytest.fixture(scope="module")
def sneaker_delta(tmp_path_factory):
    torch.manual_seed(0)
    concept = Concept("instance", "sneaker", "shoe")
    config = AblationConfig.for_concepts([concept], model_path=MODEL, num_anchor_prompts=32, max_steps=40)
    pipe = load_pipeline(MODEL)
    plan = plan_ablation([concept], config, model_path=MODEL)
    base = prepare_base(pipe, plan, model_identity(MODEL))
    work = tmp_path_factory.mktemp("sneaker")
    generate_anchor_data(pipe, plan, work / "anchors")
    summary = train_delta(pipe, plan, work / "anchors", work / "delta.safetensors", base)
    return summary.path


def test_sneaker_ablation_removes_target(sneaker_delta):
    scorer = find_evaluator(MODEL, None)
    base = load_pipeline(MODEL)
    ablated = load_pipeline(MODEL)
    apply_deltas(ablated, [load_delta(sneaker_delta)])

    before = _accuracy(base, scorer, "sneaker")
    after = _accuracy(ablated, scorer, "sneaker")

    assert before >= 0.6
    assert after <= before - 0.4


def test_sneaker_ablation_keeps_bag(sneaker_delta):
    scorer = find_evaluator(MODEL, None)
    base = load_pipeline(MODEL)
    ablated = load_pipeline(MODEL)
    apply_deltas(ablated, [load_delta(sneaker_delta)])

    before = _accuracy(base, scorer, "bag")
    after = _accuracy(ablated, scorer, "bag")

    assert before >= 0.8
    assert after >= before - 1 / SAMPLES
