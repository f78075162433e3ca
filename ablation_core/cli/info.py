"""`ablate info`: what a delta holds."""

import argparse
import json
from pathlib import Path

from ablation_core.deltas import load_delta


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help="show what a delta file holds", description="Print a delta's metadata and tensors.")
    parser.add_argument("delta", type=Path, help="delta file (.safetensors)")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    delta = load_delta(args.delta)
    metadata = delta.metadata
    if args.json:
        print(json.dumps({**metadata, "sha256": delta.sha256, "tensors": len(delta.tensors)}, indent=2))
        return 0

    print(f"file:             {args.delta}")
    print(f"sha256:           {delta.sha256}")
    print(f"format version:   {metadata.get('format_version')}")
    print(f"base model:       {metadata.get('base_model')}")
    print(f"base tensor hash: {metadata.get('base_hash')}")
    print(f"parents:          {len(delta.parents)}")
    print(f"parameter group:  {metadata.get('parameter_group')}")
    print(f"tensors:          {len(delta.tensors)} ({delta.num_parameters():,} values)")
    for concept in metadata.get("concepts", []):
        print(f"concept:          {concept['kind']}: {concept['target']!r} -> {concept['anchor']!r}")
    config = metadata.get("config") or {}
    if config:
        print(
            "training:         "
            f"{config.get('objective')}, {metadata.get('steps')} steps, lr {config.get('learning_rate')} per sample, "
            f"batch {config.get('batch_size')}, lambda {config.get('regularization_weight')}"
        )
    return 0
