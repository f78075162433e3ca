import json

from ablation_core.anchors import MANIFEST, generate_images, plan_images, read_manifest
from ablation_core.config import SamplerConfig
from ablation_core.prompts import PromptPair
from tests.tiny_pipelines import BUILDERS

PAIRS = [PromptPair(f"a cat number {i}", f"a grumpy cat number {i}") for i in range(3)]
SAMPLER = SamplerConfig(num_inference_steps=2, batch_size=2)


class CountingPipeline:
    """Wraps a pipeline and records the prompts of every call."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.prompts = []

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __setattr__(self, name, value):
        if name in ("pipe", "prompts"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.pipe, name, value)

    def __call__(self, **kwargs):
        self.prompts.extend(kwargs["prompt"])
        return self.pipe(**kwargs)


def test_plan_images_is_seeded():
    items = plan_images(PAIRS, images_per_prompt=2, seed=4, with_target_images=True)

    assert len(items) == 12
    assert len({item.seed for item in items}) == 12
    assert items == plan_images(PAIRS, images_per_prompt=2, seed=4, with_target_images=True)
    assert {item.role for item in items} == {"anchor", "target"}


def test_rerun_generates_only_missing_images(tmp_path):
    pipe = CountingPipeline(BUILDERS["sd1"]())
    items = plan_images(PAIRS, images_per_prompt=2, seed=0)

    rows = generate_images(pipe, items, tmp_path, SAMPLER)
    assert len(pipe.prompts) == 6
    assert [row["prompt"] for row in rows] == [item.prompt for item in items]

    # Lose one finished image and cut the manifest short, as a killed run would.
    (tmp_path / items[1].file).unlink()
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    (tmp_path / MANIFEST).write_text("\n".join(lines[:4]) + "\n" + lines[4][:10])
    pipe.prompts.clear()

    generate_images(pipe, items, tmp_path, SAMPLER)

    assert sorted(pipe.prompts) == sorted([items[1].prompt, items[4].prompt, items[5].prompt])
    assert set(read_manifest(tmp_path)) == {item.index for item in items}


def test_manifest_records_prompt_and_seed(tmp_path):
    items = plan_images(PAIRS[:1], images_per_prompt=1, seed=9)

    generate_images(BUILDERS["sd1"](), items, tmp_path, SAMPLER)

    [row] = [json.loads(line) for line in (tmp_path / MANIFEST).read_text().splitlines()]
    assert row["prompt"] == "a cat number 0"
    assert row["seed"] == items[0].seed
    assert (tmp_path / row["file"]).is_file()


def test_same_seed_gives_same_image(tmp_path):
    items = plan_images(PAIRS[:1], images_per_prompt=1, seed=9)

    generate_images(BUILDERS["sd1"](), items, tmp_path / "a", SAMPLER)
    generate_images(BUILDERS["sd1"](), items, tmp_path / "b", SAMPLER)

    assert (tmp_path / "a" / items[0].file).read_bytes() == (tmp_path / "b" / items[0].file).read_bytes()
