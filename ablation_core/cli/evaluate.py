"""`ablate evaluate`: measure a base model, or base + deltas, on concepts with the ablation metrics."""

import argparse
import json
from pathlib import Path

from ablation_core.concepts import Concept
from ablation_core.config import SamplerConfig
from ablation_core.errors import AblationInputError
from ablation_core.evaluation.report import markdown_table, write_outputs
from ablation_core.evaluation.runner import EVALUATOR_FOLDER, EvaluationInputs, find_evaluator, run_evaluation


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure target, surrounding and memorization metrics before and after deltas",
        description=(
            "Generate samples from the base model and from base + deltas, and measure target accuracy, "
            "misspelled-target accuracy, surrounding concepts' accuracy, KID and memorization rate. "
            "Writes result.json, result.md and grid.png into --output."
        ),
    )

    parser.add_argument("--model", required=True, help="base model: a local diffusers folder")
    parser.add_argument("--delta", action="append", default=[], metavar="PATH", help="delta file to apply; repeat to stack deltas in order")

    concept = parser.add_argument_group("concept (or --concepts for several)")
    concept.add_argument("--kind", help="concept kind: instance, style or memorization")
    concept.add_argument("--target", help="target concept, e.g. 'sneaker', 'neon' or a memorized caption")
    concept.add_argument("--anchor", help="anchor concept, e.g. 'shoe'")
    concept.add_argument("--target-prompts", type=Path, help="memorization: text file of caption paraphrases, one per line")
    concept.add_argument("--memorized-image", help="memorization: the memorized image (PNG or JPEG)")
    concept.add_argument("--concepts", type=Path, help="JSON file with a list of concepts ({kind, target, anchor, ...})")

    parser.add_argument(
        "--evaluator",
        help=f"evaluator folder: the classifier evaluator or a local transformers CLIPModel (default: <model>/{EVALUATOR_FOLDER})",
    )
    parser.add_argument("--surrounding", action="append", default=[], help="CLIP evaluator: a surrounding concept to check; repeat for several")
    parser.add_argument("--num-samples", type=int, default=16, help="samples per prompt group and model state (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sample noise and misspellings (default 0)")
    parser.add_argument("--sampler-steps", type=int, default=25, help="denoising steps per sample (default 25)")
    parser.add_argument("--guidance-scale", type=float, default=6.0, help="classifier-free guidance scale (default 6)")
    parser.add_argument("--sampler-batch-size", type=int, default=16, help="samples per pipeline call (default 16)")
    parser.add_argument("--output", type=Path, required=True, help="folder for result.json, result.md and grid.png")
    parser.set_defaults(func=run)


def read_concepts(args: argparse.Namespace) -> list[Concept]:
    single = any(value is not None for value in (args.kind, args.target, args.anchor))
    if args.concepts is not None:
        if single:
            raise AblationInputError("give either --concepts FILE or --kind/--target/--anchor, not both")
        return _concepts_from_file(args.concepts)
    if not (args.kind and args.target and args.anchor):
        raise AblationInputError("missing concept: give --kind, --target and --anchor, or --concepts FILE")
    paraphrases = ()
    if args.target_prompts is not None:
        if not args.target_prompts.is_file():
            raise AblationInputError(f"target prompt file {str(args.target_prompts)!r} not found: give an existing text file")
        paraphrases = tuple(line.strip() for line in args.target_prompts.read_text().splitlines() if line.strip())
    return [Concept(args.kind, args.target, args.anchor, target_prompts=paraphrases, memorized_image=args.memorized_image)]


def _concepts_from_file(path: Path) -> list[Concept]:
    if not path.is_file():
        raise AblationInputError(f"concepts file {str(path)!r} not found: give an existing JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AblationInputError(f"concepts file {str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise AblationInputError(f"concepts file {str(path)!r} must hold a JSON list of concept objects")
    try:
        return [Concept.from_dict(item) for item in data]
    except KeyError as error:
        raise AblationInputError(f"a concept in {str(path)!r} lacks the key {error}: give kind, target and anchor") from None


def run(args: argparse.Namespace) -> int:
    concepts = read_concepts(args)
    if not Path(args.model).is_dir():
        raise AblationInputError(f"base model folder {args.model!r} not found: give a local diffusers folder")
    scorer = find_evaluator(args.model, args.evaluator)
    if scorer is None:
        raise AblationInputError(
            f"no evaluator in {str(Path(args.model) / EVALUATOR_FOLDER)!r}: give --evaluator with a classifier or CLIPModel folder"
        )
    sampler = SamplerConfig(num_inference_steps=args.sampler_steps, guidance_scale=args.guidance_scale, batch_size=args.sampler_batch_size)
    inputs = EvaluationInputs(
        base_path=Path(args.model),
        delta_paths=[Path(path) for path in args.delta],
        concepts=concepts,
        num_samples=args.num_samples,
        seed=args.seed,
        sampler=sampler,
        surrounding=list(args.surrounding),
    )
    result = run_evaluation(inputs, scorer)
    paths = write_outputs(result, args.output)
    print(markdown_table(result), end="")
    print(f"wrote {paths['json']}, {paths['markdown']} and {paths['grid']}")
    return 0
