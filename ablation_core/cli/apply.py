"""`ablate apply`: base model + deltas → a new diffusers folder."""

import argparse
from pathlib import Path

from ablation_core.cli.common import add_model_options
from ablation_core.errors import AblationInputError
from ablation_core.versions import load_model_version


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="write base model + deltas as a new diffusers folder",
        description="Apply deltas in order to a base model and save the ablated pipeline as a diffusers folder.",
    )
    add_model_options(parser)
    parser.add_argument("--output", type=Path, required=True, help="folder to write the ablated pipeline to (must not exist or be empty)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.delta:
        raise AblationInputError("no --delta given: give at least one delta file to apply")
    if args.output.exists() and any(args.output.iterdir()):
        raise AblationInputError(f"output folder {str(args.output)!r} is not empty: choose a new folder")

    pipe, deltas = load_model_version(args.model, args.delta, family=args.family, device="cpu", config=args.config)
    pipe.save_pretrained(str(args.output))
    print(f"wrote {args.output} (base {args.model} + {len(deltas)} delta(s))")
    return 0
