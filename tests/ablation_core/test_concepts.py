import pytest

from ablation_core.concepts import Concept, ConceptKind
from ablation_core.config import AblationConfig
from ablation_core.errors import AblationInputError


def test_concept_normalizes_whitespace():
    concept = Concept("Instance", "  Grumpy   Cat ", "cat")

    assert concept.kind is ConceptKind.INSTANCE
    assert concept.target == "Grumpy Cat"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "statue", "target": "a", "anchor": "b"}, "invalid concept kind 'statue'"),
        ({"kind": "instance", "target": " ", "anchor": "cat"}, "target concept is empty"),
        ({"kind": "instance", "target": "cat", "anchor": ""}, "anchor concept is empty"),
        ({"kind": "style", "target": "Painting", "anchor": "painting"}, "equals the anchor concept"),
        (
            {"kind": "instance", "target": "Grumpy Cat", "anchor": "cat", "anchor_prompts": ("a dog on a sofa",)},
            "does not contain the anchor concept 'cat'",
        ),
        (
            {"kind": "style", "target": "Van Gogh", "anchor": "painting", "target_prompts": ("x",)},
            "give paraphrases only for memorization",
        ),
        (
            {"kind": "memorization", "target": "a caption", "anchor": "a case", "memorized_image": "/nonexistent.png"},
            "memorized image '/nonexistent.png' not found",
        ),
    ],
)
def test_concept_rejects_bad_input(kwargs, message):
    with pytest.raises(AblationInputError, match=message):
        Concept(**kwargs)


def test_config_kind_defaults():
    instance = AblationConfig.for_concepts([Concept("instance", "Grumpy Cat", "cat")])
    memorization = AblationConfig.for_concepts([Concept("memorization", "a caption", "a case")])

    assert instance.parameter_group == "crossattn_kv"
    assert instance.effective_learning_rate == pytest.approx(2e-6 * 8)
    assert memorization.parameter_group == "full"
    assert memorization.max_steps == 400


def test_config_model_file_and_overrides(tmp_path):
    (tmp_path / "ablate_config.json").write_text('{"instance": {"learning_rate": 1e-4, "sampler": {"num_inference_steps": 10}}}')
    concepts = [Concept("instance", "Grumpy Cat", "cat")]

    config = AblationConfig.for_concepts(concepts, model_path=tmp_path, max_steps=7, sampler={"guidance_scale": 3.0})

    assert config.learning_rate == 1e-4
    assert config.max_steps == 7
    assert config.sampler.num_inference_steps == 10
    assert config.sampler.guidance_scale == 3.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"parameter_group": "everything"}, "invalid parameter group 'everything'"),
        ({"objective": "magic"}, "invalid objective 'magic'"),
        ({"max_steps": 0}, "invalid max_steps 0"),
        ({"learning_rate": -1.0}, "invalid learning_rate -1.0"),
        ({"sampler": {"height": 30}}, "invalid height 30"),
        ({"colour": "red"}, "unknown config keys \\['colour'\\]"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(AblationInputError, match=message):
        AblationConfig.for_concepts([Concept("instance", "Grumpy Cat", "cat")], **overrides)
