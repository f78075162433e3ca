"""Anchor generation speed at 25 sampler steps against fewer steps.

Runs `generate_anchor_data` with the same prompts and seeds at each step count and
reports images/s. With `--model` it loads a local diffusers folder (for example the
shipped small model) and also reports how far each image moves from its 25-step
version (mean absolute difference in 0-255 pixel units); with random weights that
difference tells nothing about quality, so it is left out.

    nice -n 5 python -m benchmarks.anchor_steps --json anchor_steps.json
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ablation_core.ablation import generate_anchor_data  # noqa: E402
from ablation_core.pipelines import load_pipeline  # noqa: E402
from benchmarks.architectures import ARCHITECTURES, build_pipeline  # noqa: E402
from benchmarks.measure import machine, synchronize  # noqa: E402
from benchmarks.synthetic import benchmark_plan  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="local diffusers folder; default: the random-weight --arch")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="mid", help="random-weight architecture (default mid)")
    parser.add_argument("--resolution", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--images", type=int, default=4, help="images per step count (default 4)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per pipeline call (default 4)")
    parser.add_argument("--step-counts", type=int, nargs="+", default=[25, 15, 10], help="sampler steps to compare; the first is the reference")
    parser.add_argument("--sampler", default="dpmsolver++", help="sampler name (default dpmsolver++)")
    parser.add_argument("--guidance-scale", type=float, default=6.0, help="classifier-free guidance scale (default 6)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    return parser.parse_args(argv)


def load(args: argparse.Namespace):
    if args.model is not None:
        return load_pipeline(args.model, device=args.device)
    return build_pipeline(ARCHITECTURES[args.arch], text_layers=2).to(args.device)


def generate(pipe, args: argparse.Namespace, steps: int, folder: Path) -> tuple[float, float, list[Path]]:
    """Generate the images at `steps`; return (wall seconds, process CPU seconds, image files)."""
    sampler = {
        "scheduler": args.sampler,
        "num_inference_steps": steps,
        "guidance_scale": args.guidance_scale,
        "batch_size": args.batch_size,
        "height": args.resolution,
        "width": args.resolution,
    }
    plan = benchmark_plan(num_images=args.images, sampler=sampler)
    device = torch.device(args.device)
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    generate_anchor_data(pipe, plan, folder)
    synchronize(device)
    files = [folder / item.file for item in plan.images]
    return time.perf_counter() - start, time.process_time() - cpu_start, files


def mean_abs_difference(first: list[Path], second: list[Path]) -> float:
    values = [
        np.abs(np.asarray(Image.open(a), dtype=np.float32) - np.asarray(Image.open(b), dtype=np.float32)).mean()
        for a, b in zip(first, second)
    ]
    return float(np.mean(values))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    pipe = load(args)

    rows = []
    with tempfile.TemporaryDirectory(prefix="anchor-steps-") as work_dir:
        generate(pipe, args, 2, Path(work_dir) / "warmup")
        reference = None
        for steps in args.step_counts:
            seconds, cpu_seconds, files = generate(pipe, args, steps, Path(work_dir) / f"steps-{steps}")
            row = {
                "steps": steps,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
                "images_per_s": round(args.images / seconds, 4),
                "images_per_cpu_s": round(args.images / cpu_seconds, 4),
            }
            if reference is None:
                reference = (seconds, cpu_seconds, files)
            row["speedup_vs_first"] = round(reference[0] / seconds, 3)
            # On a CPU shared with other jobs, only the CPU-time speedup is meaningful.
            row["cpu_speedup_vs_first"] = round(reference[1] / cpu_seconds, 3)
            if args.model is not None:
                row["mean_abs_pixel_difference_vs_first"] = round(mean_abs_difference(reference[2], files), 2)
            rows.append(row)
            print(json.dumps(row), flush=True)

    report = {
        "benchmark": "anchor_steps",
        "command": "python -m benchmarks.anchor_steps " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "model": str(args.model) if args.model else ARCHITECTURES[args.arch].name + " (random weights)",
        "resolution": args.resolution,
        "images": args.images,
        "batch_size": args.batch_size,
        "sampler": args.sampler,
        "guidance_scale": args.guidance_scale,
        "rows": rows,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
