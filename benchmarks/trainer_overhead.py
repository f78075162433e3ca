"""Trainer step versus a bare UNet forward and backward on the same batch.

The Trainer's step does one UNet pass over [target prompt; anchor prompt] (2B samples),
the model-based loss plus the regularization loss, backward, gradient clipping and
AdamW. The bare step runs the same UNet on 2B samples of the same shape, with the same
trainable parameters, autocast, attention processor and checkpointing, then an MSE loss
and backward, and nothing else. The goal is a ratio of at most 1.10.

Trainer steps and bare steps alternate, so load from other processes on a shared
machine hits both alike. The ratios use medians of wall-clock time and, on CPU, of the
process's CPU time, which the other processes' load does not inflate. On CPU torch runs
one thread by default, so idle worker threads spinning add no CPU time.

    nice -n 5 python -m benchmarks.trainer_overhead --json overhead.json
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0  # noqa: E402

from ablation_core.ablation import release_frozen_components  # noqa: E402
from ablation_core.config import FrozenComponents, ParameterGroup  # noqa: E402
from ablation_core.parameter_groups import select_trainable  # noqa: E402
from ablation_core.text_embeddings import sdxl_time_ids  # noqa: E402
from ablation_core.training import Trainer  # noqa: E402
from benchmarks.architectures import ARCHITECTURES, build_pipeline  # noqa: E402
from benchmarks.measure import StepTimes, gib, machine, peak_memory, timed  # noqa: E402
from benchmarks.synthetic import benchmark_plan, encoded_random_data  # noqa: E402

GOAL = 1.10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="mid", help="UNet architecture (default mid)")
    parser.add_argument("--resolution", type=int, help="image side in pixels (default: the architecture's own)")
    parser.add_argument("--batch-size", type=int, default=2, help="anchor images per step, B; the UNet sees 2B (default 2)")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per block (default 1)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating trainer/bare blocks (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; ignored on CUDA)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each kind first (default 2)")
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default="no", help="autocast dtype (default no)")
    parser.add_argument("--attention-implementation", choices=["sdpa", "eager"], default="sdpa")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in backward")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    parser.add_argument("--text-layers", type=int, default=1, help="text encoder depth; only used to cache embeddings (default 1)")
    parser.add_argument("--profile", type=Path, help="write a torch.profiler table of two trainer steps to this file")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    return parser.parse_args(argv)


class BareStep:
    """The UNet forward, an MSE loss and backward on a fixed batch of 2B samples; nothing else."""

    def __init__(self, trainer: Trainer, args: argparse.Namespace) -> None:
        self.unet = trainer.unet
        self.parameters = trainer.parameters
        device = trainer.device
        data = trainer.data
        samples = 2 * args.batch_size
        generator = torch.Generator("cpu").manual_seed(1)
        latent_shape = (samples, *data.anchor_latent_mean.shape[1:])
        rows = torch.arange(samples) % data.prompt_hidden.shape[0]

        self.noisy = torch.randn(latent_shape, generator=generator).to(device, self.unet.dtype)
        self.target = torch.randn(latent_shape, generator=generator).to(device)
        self.timesteps = torch.randint(0, 1000, (samples,), generator=generator).to(device)
        self.hidden = data.prompt_hidden[rows].to(device, self.unet.dtype)
        self.added = None
        if data.prompt_pooled is not None:
            height, width = data.image_size
            self.added = {
                "text_embeds": data.prompt_pooled[rows].to(device, self.unet.dtype),
                "time_ids": sdxl_time_ids(height, width, samples, device, self.unet.dtype),
            }
        precision = args.mixed_precision
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.device_type = device.type
        self.optimizer = torch.optim.AdamW(self.parameters, lr=1e-9)

    def __call__(self, optimizer_step: bool = False) -> None:
        with torch.autocast(self.device_type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            pred = self.unet(
                self.noisy, self.timesteps, encoder_hidden_states=self.hidden, added_cond_kwargs=self.added
            ).sample
        loss = F.mse_loss(pred.float(), self.target)
        loss.backward()
        if optimizer_step:
            self.optimizer.step()
        for parameter in self.parameters:
            parameter.grad = None


class BareSession:
    """The trainer's UNet state (train mode, attention processor, checkpointing) without its hooks."""

    def __init__(self, unet, args: argparse.Namespace) -> None:
        self.unet = unet
        self.args = args

    def __enter__(self):
        self.processors = self.unet.attn_processors
        self.unet.set_attn_processor(AttnProcessor2_0() if self.args.attention_implementation == "sdpa" else AttnProcessor())
        if self.args.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.unet.train()

    def __exit__(self, *exc):
        self.unet.eval()
        if self.args.gradient_checkpointing:
            self.unet.disable_gradient_checkpointing()
        self.unet.set_attn_processor(self.processors)


def build_trainer(args: argparse.Namespace, work_dir: Path) -> Trainer:
    architecture = ARCHITECTURES[args.arch]
    resolution = args.resolution or architecture.resolution
    device = torch.device(args.device)
    pipe = build_pipeline(architecture, text_layers=args.text_layers).to(device)
    plan = benchmark_plan(
        num_images=max(2 * args.batch_size, 8),
        batch_size=args.batch_size,
        max_steps=1_000_000,
        mixed_precision=args.mixed_precision,
        gradient_checkpointing=args.gradient_checkpointing,
        attention_implementation=args.attention_implementation,
        sampler={"height": resolution, "width": resolution},
    )
    data = encoded_random_data(pipe, plan, work_dir / "anchors", resolution)
    release_frozen_components(pipe, FrozenComponents.FREE, ParameterGroup.CROSSATTN_KV)
    trainable = select_trainable(pipe, plan.config.parameter_group, plan.concepts)
    return Trainer(pipe, data, trainable, plan.config, plan.concepts)


def measure(args: argparse.Namespace, trainer: Trainer) -> dict:
    device = trainer.device
    bare = BareStep(trainer, args)
    times = {"trainer": StepTimes(), "bare": StepTimes(), "bare_adamw": StepTimes()}

    with trainer.session():
        for _ in range(args.warmup):
            trainer.step()
    with BareSession(trainer.unet, args):
        for _ in range(args.warmup):
            bare()

    for _ in range(args.rounds):
        with trainer.session():
            for _ in range(args.steps):
                with timed(times["trainer"], device):
                    trainer.step()
        with BareSession(trainer.unet, args):
            for _ in range(args.steps):
                with timed(times["bare"], device):
                    bare()
            for _ in range(args.steps):
                with timed(times["bare_adamw"], device):
                    bare(optimizer_step=True)

    memory = {}
    with trainer.session(), peak_memory(device) as memory["trainer"]:
        for _ in range(2):
            trainer.step()
    with BareSession(trainer.unet, args), peak_memory(device) as memory["bare"]:
        for _ in range(2):
            bare()

    if args.profile:
        _profile(trainer, args.profile)

    wall_ratio = times["trainer"].median / times["bare"].median
    cpu_ratio = times["trainer"].cpu_median / times["bare"].cpu_median
    ratio = cpu_ratio if device.type == "cpu" else wall_ratio
    return {
        "times": {name: t.summary() for name, t in times.items()},
        "wall_ratio_vs_bare_fwd_bwd": round(wall_ratio, 4),
        "cpu_ratio_vs_bare_fwd_bwd": round(cpu_ratio, 4),
        "cpu_ratio_vs_bare_fwd_bwd_adamw": round(times["trainer"].cpu_median / times["bare_adamw"].cpu_median, 4),
        "goal": GOAL,
        "goal_measure": "CPU time" if device.type == "cpu" else "wall clock",
        "meets_goal": ratio <= GOAL,
        "memory": {
            name: {"peak_gib": gib(m.peak), "added_gib": gib(m.added), "source": m.source} for name, m in memory.items()
        },
        "memory_ratio_peak": round(memory["trainer"].peak / memory["bare"].peak, 4),
    }


def _profile(trainer: Trainer, path: Path) -> None:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    with trainer.session(), profile(activities=activities) as prof:
        for _ in range(2):
            trainer.step()
    path.write_text(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="trainer-overhead-") as work_dir:
        trainer = build_trainer(args, Path(work_dir))
        results = measure(args, trainer)

    architecture = ARCHITECTURES[args.arch]
    report = {
        "benchmark": "trainer_overhead",
        "command": "python -m benchmarks.trainer_overhead " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "architecture": architecture.name,
        "unet_parameters_m": round(sum(p.numel() for p in trainer.unet.parameters()) / 1e6, 1),
        "trainable_parameters_m": round(sum(p.numel() for p in trainer.parameters) / 1e6, 2),
        "resolution": args.resolution or architecture.resolution,
        "unet_samples_per_step": 2 * args.batch_size,
        "mixed_precision": args.mixed_precision,
        "gradient_checkpointing": args.gradient_checkpointing,
        "attention_implementation": args.attention_implementation,
        **results,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
