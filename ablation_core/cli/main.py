"""Entry point of the `ablate` console script."""

import argparse
import sys

from ablation_core.cli import apply, evaluate, generate, info, run
from ablation_core.cli.common import quiet_libraries
from ablation_core.errors import AblationInputError

# Exit status for invalid input, as argparse uses for invalid options.
EXIT_INPUT_ERROR = 2

COMMANDS = [run, apply, generate, info, evaluate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ablate",
        description="Remove concepts from text-to-image diffusion models (model-based concept ablation, arXiv 2303.13516).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_libraries()
    try:
        return args.func(args)
    except AblationInputError as error:
        print(f"ablate {args.command}: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print(f"ablate {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
