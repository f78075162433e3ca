"""`ablate run`: anchor prompts → anchor images → training → delta."""

import argparse
import json
from pathlib import Path

from ablation_core.ablation import generate_anchor_data, plan_ablation, prepare_base, train_delta
from ablation_core.cli.common import add_model_options, existing_file, progress_bar, resolve_device
from ablation_core.concepts import Concept, parse_kind
from ablation_core.config import AblationConfig
from ablation_core.deltas import load_delta
from ablation_core.errors import AblationInputError
from ablation_core.pipelines import load_pipeline, model_identity
from ablation_core.prompts import read_prompt_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="ablate concepts from a model and write a delta",
        description="Generate anchor images, fine-tune so the target concept behaves like the anchor, write a delta.",
    )
    add_model_options(parser)
    concept = parser.add_argument_group("concept (or --concepts for several)")
    concept.add_argument("--kind", help="concept kind: instance, style or memorization")
    concept.add_argument("--target", help="target concept to remove, e.g. 'Grumpy Cat' or 'Van Gogh'")
    concept.add_argument("--anchor", help="anchor concept it should become, e.g. 'cat' or 'painting'")
    concept.add_argument("--anchor-prompts", type=Path, help="text file of anchor prompts, one per line")
    concept.add_argument("--target-prompts", type=Path, help="memorization: text file of caption paraphrases, one per line")
    concept.add_argument("--memorized-image", help="memorization: the memorized image (PNG or JPEG) to filter copies of")
    concept.add_argument(
        "--concepts",
        type=Path,
        help="JSON file with a list of concepts ({kind, target, anchor, anchor_prompts?, target_prompts?, "
        "memorized_image?}) trained together in one run",
    )

    training = parser.add_argument_group("training (defaults depend on the concept kind)")
    training.add_argument("--objective", help="model_based (default), noise_based, reverse_kl or loss_max")
    training.add_argument("--parameter-group", help="crossattn_kv, crossattn, attn, embedding or full")
    training.add_argument("--learning-rate", type=float, help="learning rate per sample; scaled by batch size unless --no-scale-lr")
    training.add_argument("--no-scale-lr", action="store_true", help="use --learning-rate as given, not times the batch size")
    training.add_argument("--max-steps", type=int, help="optimizer steps")
    training.add_argument("--batch-size", type=int, help="anchor images per training step")
    training.add_argument("--regularization-weight", type=float, help="lambda on the anchor diffusion loss (0 disables it)")
    training.add_argument(
        "--preserve",
        action="append",
        metavar="KIND:WORD",
        help="surrounding concept to keep, e.g. instance:dog or style:Monet; repeat for more (replaces the model folder's list)",
    )
    training.add_argument("--preservation-weight", type=float, help="weight on keeping the --preserve concepts (0 disables it)")
    training.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], help="autocast dtype for the UNet")
    training.add_argument("--gradient-checkpointing", action="store_true", default=None, help="recompute activations to save memory")
    training.add_argument("--seed", type=int, help="seed for prompts, images and training (default 0)")
    training.add_argument(
        "--attention-implementation",
        choices=["sdpa", "eager"],
        help="UNet attention kernel in training: sdpa (default, fused) or eager (stores the attention matrix)",
    )
    training.add_argument(
        "--frozen-components",
        choices=["keep", "offload", "free"],
        help="VAE and text encoders after caching: keep, offload to CPU (default) or free their memory",
    )
    training.add_argument(
        "--compile-unet", action="store_true", default=None, help="torch.compile the UNet; the first step pays the compile time"
    )
    training.add_argument(
        "--frozen-weights-dtype",
        choices=["fp32", "bf16", "fp16"],
        help="dtype of the UNet weights that are not trained (default fp32); bf16 and fp16 need the same --mixed-precision",
    )
    training.add_argument(
        "--micro-batch-size",
        type=int,
        help="anchor images per forward and backward pass; the passes' gradients add up to one optimizer step "
        "(default: the whole batch)",
    )

    anchors = parser.add_argument_group("anchor images")
    anchors.add_argument("--num-anchor-prompts", type=int, help="anchor prompts per concept (default 200)")
    anchors.add_argument("--images-per-prompt", type=int, help="anchor images per prompt (default 1)")
    anchors.add_argument("--sampler", help="dpmsolver++ (default), ddim, ddpm, euler, euler_a or pndm")
    anchors.add_argument("--sampler-steps", type=int, help="denoising steps per anchor image (default 25)")
    anchors.add_argument("--guidance-scale", type=float, help="classifier-free guidance scale (default 6)")
    anchors.add_argument("--sampler-batch-size", type=int, help="anchor images per pipeline call (default 8)")

    parser.add_argument("--work-dir", type=Path, default=Path("runs/ablate"), help="folder for anchor images and caches (reused by reruns)")
    parser.add_argument("--output", type=Path, required=True, help="path of the delta file to write (.safetensors)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    concepts = _concepts(args)
    config = AblationConfig.for_concepts(concepts, model_path=args.model, **_overrides(args))
    device = resolve_device(args.device)
    if args.output.suffix != ".safetensors":
        raise AblationInputError(f"output {str(args.output)!r} must end in .safetensors")

    pipe = load_pipeline(args.model, family=args.family, device=device, config=args.config)
    parents = [load_delta(path) for path in args.delta]
    plan = plan_ablation(concepts, config, model_path=args.model)
    base = prepare_base(pipe, plan, model_identity(args.model), parents)

    update, close = progress_bar("anchor images", "img")
    try:
        generate_anchor_data(pipe, plan, args.work_dir / "anchors", update)
    finally:
        close()

    update, close = progress_bar("training", "step")
    try:
        summary = train_delta(pipe, plan, args.work_dir / "anchors", args.output, base, update)
    finally:
        close()

    print(f"delta: {summary.path} ({summary.size_bytes / 1e6:.2f} MB, sha256 {summary.sha256[:16]}…)")
    print(f"steps: {summary.steps}, final loss: {summary.final_loss:.5f}, trained parameters: {summary.num_parameters}")
    return 0


def _concepts(args: argparse.Namespace) -> list[Concept]:
    if args.concepts is not None:
        if any(getattr(args, name) for name in ("kind", "target", "anchor")):
            raise AblationInputError("give either --concepts FILE or --kind/--target/--anchor, not both")
        return _concepts_from_file(existing_file(str(args.concepts)))

    missing = [f"--{name}" for name in ("kind", "target", "anchor") if getattr(args, name) is None]
    if missing:
        raise AblationInputError(f"missing {', '.join(missing)}: give the concept kind, target and anchor, or --concepts FILE")
    anchor_prompts = read_prompt_file(args.anchor_prompts) if args.anchor_prompts else ()
    target_prompts = read_prompt_file(args.target_prompts) if args.target_prompts else ()
    return [
        Concept(
            kind=args.kind,
            target=args.target,
            anchor=args.anchor,
            anchor_prompts=tuple(anchor_prompts),
            target_prompts=tuple(target_prompts),
            memorized_image=args.memorized_image,
        )
    ]


def _concepts_from_file(path: Path) -> list[Concept]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AblationInputError(f"concepts file {str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
        raise AblationInputError(f"concepts file {str(path)!r} must hold a non-empty list of concept objects")
    concepts = []
    for item in data:
        missing = [key for key in ("kind", "target", "anchor") if key not in item]
        if missing:
            raise AblationInputError(f"a concept in {str(path)!r} lacks {', '.join(missing)}")
        concepts.append(Concept.from_dict(item))
    return concepts


def _preserved(entries: list[str] | None) -> dict[str, list[str]] | None:
    if not entries:
        return None
    preserved: dict[str, list[str]] = {}
    for entry in entries:
        kind, separator, word = entry.partition(":")
        if not separator or not word.strip():
            raise AblationInputError(f"invalid --preserve {entry!r}: write KIND:WORD, e.g. instance:dog or style:Monet")
        preserved.setdefault(parse_kind(kind).value, []).append(word.strip())
    return preserved


def _overrides(args: argparse.Namespace) -> dict:
    overrides = {
        "objective": args.objective,
        "parameter_group": args.parameter_group,
        "learning_rate": args.learning_rate,
        "scale_lr": False if args.no_scale_lr else None,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "regularization_weight": args.regularization_weight,
        "preserved_concepts": _preserved(args.preserve),
        "preservation_weight": args.preservation_weight,
        "mixed_precision": args.mixed_precision,
        "gradient_checkpointing": args.gradient_checkpointing,
        "attention_implementation": args.attention_implementation,
        "frozen_components": args.frozen_components,
        "compile_unet": args.compile_unet,
        "frozen_weights_dtype": args.frozen_weights_dtype,
        "micro_batch_size": args.micro_batch_size,
        "seed": args.seed,
        "num_anchor_prompts": args.num_anchor_prompts,
        "images_per_prompt": args.images_per_prompt,
    }
    sampler = {
        "scheduler": args.sampler,
        "num_inference_steps": args.sampler_steps,
        "guidance_scale": args.guidance_scale,
        "batch_size": args.sampler_batch_size,
    }
    sampler = {key: value for key, value in sampler.items() if value is not None}
    if sampler:
        overrides["sampler"] = sampler
    return overrides
