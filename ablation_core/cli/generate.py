"""`ablate generate`: images or a PNG grid from a base model, or base + deltas, for before/after looks."""

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ablation_core.cli.common import add_model_options, progress_bar, resolve_device
from ablation_core.config import SamplerConfig
from ablation_core.deltas import revert_deltas
from ablation_core.errors import AblationInputError
from ablation_core.samplers import build_scheduler
from ablation_core.versions import load_model_version

LABEL_HEIGHT = 14  # pixels of caption strip above each row of the grid


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate images or a PNG grid, optionally before and after deltas",
        description="Generate images from a base model, with deltas applied when given.",
    )
    add_model_options(parser)
    parser.add_argument("--prompt", action="append", required=True, help="prompt to sample; repeat for several rows")
    parser.add_argument("--num-images", type=int, default=4, help="images per prompt (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first image; image i uses seed + i")
    parser.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    parser.add_argument("--guidance-scale", type=float, default=6.0, help="classifier-free guidance scale (default 6)")
    parser.add_argument("--sampler", default="dpmsolver++", help="dpmsolver++ (default), ddim, ddpm, euler, euler_a or pndm")
    parser.add_argument("--before-after", action="store_true", help="also sample the base model; grid rows alternate base / ablated")
    parser.add_argument("--output", type=Path, required=True, help="a .png path for one grid, or a folder for single images")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.num_images <= 0:
        raise AblationInputError(f"invalid --num-images {args.num_images}: use a positive integer")
    if args.before_after and not args.delta:
        raise AblationInputError("--before-after needs at least one --delta to compare with the base")
    sampler = SamplerConfig(scheduler=args.sampler, num_inference_steps=args.steps, guidance_scale=args.guidance_scale)

    pipe, deltas = load_model_version(args.model, args.delta, family=args.family, device=resolve_device(args.device), config=args.config)
    pipe.scheduler = build_scheduler(sampler.scheduler, pipe.scheduler.config)

    rows: list[tuple[str, list[Image.Image]]] = []
    update, close = progress_bar("sampling", "prompt")
    total = len(args.prompt) * (2 if args.before_after else 1)
    try:
        for label, with_deltas in _passes(args):
            if not with_deltas:
                revert_deltas(pipe, deltas)
            for prompt in args.prompt:
                rows.append((f"{label}{prompt}", sample(pipe, prompt, args.num_images, args.seed, sampler)))
                update(len(rows), total, None)
    finally:
        close()

    _write(rows, args.output)
    print(f"wrote {args.output}")
    return 0


def _passes(args: argparse.Namespace) -> list[tuple[str, bool]]:
    if not args.before_after:
        return [("", True)]
    return [("ablated: ", True), ("base: ", False)]


@torch.no_grad()
def sample(pipe, prompt: str, count: int, seed: int, sampler: SamplerConfig) -> list[Image.Image]:
    """Sample `count` images of one prompt; image i uses seed + i, so runs compare image by image."""
    generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(count)]
    return pipe(
        prompt=[prompt] * count,
        generator=generators,
        num_inference_steps=sampler.num_inference_steps,
        guidance_scale=sampler.guidance_scale,
        output_type="pil",
    ).images


def make_grid(rows: list[tuple[str, list[Image.Image]]]) -> Image.Image:
    """Lay out labelled rows of equal-sized images in one picture."""
    width, height = rows[0][1][0].size
    columns = max(len(images) for _, images in rows)
    grid = Image.new("RGB", (columns * width, len(rows) * (height + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(grid)
    for row_index, (label, images) in enumerate(rows):
        top = row_index * (height + LABEL_HEIGHT)
        draw.text((2, top + 1), label, fill="black")
        for column, image in enumerate(images):
            grid.paste(image, (column * width, top + LABEL_HEIGHT))
    return grid


def _write(rows: list[tuple[str, list[Image.Image]]], output: Path) -> None:
    if output.suffix.lower() == ".png":
        output.parent.mkdir(parents=True, exist_ok=True)
        make_grid(rows).save(output)
        return
    output.mkdir(parents=True, exist_ok=True)
    for row_index, (_, images) in enumerate(rows):
        for column, image in enumerate(images):
            image.save(output / f"row{row_index:02d}_{column:02d}.png")
