"""Measure the Fashion-MNIST pipeline against its quality bar with the evaluator classifier.

- class: share of samples from "a photo of a <class>" named as that class (bar: 85%);
- style: share of styled samples named as their style (bar: 80% per style);
- memorization: share of samples from a memorized caption that copy its image (bar: 50%).

    python models/check_fashion_sd.py --model models/fashion-sd --num-samples 32
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablation_core.config import SamplerConfig  # noqa: E402
from ablation_core.evaluation.classifier import load_evaluator  # noqa: E402
from ablation_core.evaluation.memorization import copies  # noqa: E402
from ablation_core.evaluation.runner import _read_image  # noqa: E402
from ablation_core.evaluation.sampling import SampleCache, sample_plan  # noqa: E402
from ablation_core.evaluation.scorers import Check, ClassifierScorer  # noqa: E402
from ablation_core.evaluation.suite import STYLE_SUBJECTS, styled  # noqa: E402
from ablation_core.fashion.captions import CLASS_NAMES, class_prompt  # noqa: E402
from ablation_core.fashion.memorized import MEMORIZED_IMAGES, memorized_file  # noqa: E402
from ablation_core.fashion.styles import STYLE_NAMES  # noqa: E402
from ablation_core.pipelines import load_pipeline  # noqa: E402


def accuracy(cache: SampleCache, scorer: ClassifierScorer, prompts: list[str], check: Check, num_samples: int, seed: int) -> float:
    images = cache.stack(sample_plan(prompts, num_samples, seed))
    return round(float(scorer.judge(images, check).hits.float().mean()), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/fashion-sd"))
    parser.add_argument("--evaluator", type=Path, default=None, help="evaluator folder (default: <model>/evaluator)")
    parser.add_argument("--num-samples", type=int, default=32, help="samples per class, style and memorized caption")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args()
    torch.set_num_threads(2)

    evaluator = load_evaluator(args.evaluator or args.model / "evaluator")
    scorer = ClassifierScorer(evaluator)
    cache = SampleCache(load_pipeline(args.model), SamplerConfig(batch_size=32), "samples")

    classes = {name: accuracy(cache, scorer, [class_prompt(name)], Check("class", name), args.num_samples, args.seed) for name in CLASS_NAMES}
    subjects = [class_prompt(name) for name in STYLE_SUBJECTS]
    styles = {name: accuracy(cache, scorer, styled(name, subjects), Check("style", name), args.num_samples, args.seed) for name in STYLE_NAMES}
    plain = accuracy(cache, scorer, subjects, Check("style", "plain"), args.num_samples, args.seed)

    threshold = evaluator.memorization["threshold"]
    memorization = {}
    for memorized in MEMORIZED_IMAGES:
        images = cache.stack(sample_plan([memorized.caption], args.num_samples, args.seed))
        reference = _read_image(str(args.model / memorized_file(memorized)))
        memorization[memorized.caption] = round(float(copies(images, reference, threshold).float().mean()), 4)

    result = {
        "class_accuracy": classes,
        "class_accuracy_mean": round(sum(classes.values()) / len(classes), 4),
        "style_accuracy": styles,
        "plain_style_accuracy": plain,
        "memorization_rate": memorization,
        "memorization_threshold": threshold,
        "num_samples": args.num_samples,
        "seed": args.seed,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
