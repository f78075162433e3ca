"""Full-size SD 1.5 and SDXL: ablation step time, peak memory, FLOPs, and anchor generation speed.

Builds the UNets, VAEs and text encoders from their published configs with random
weights (see benchmarks/architectures.py), then for each architecture:

1. anchor generation: images/s of `generate_anchor_data` against a plain diffusers
   pipeline call with the same prompts, seeds and sampler (DPM-Solver++, 25 steps,
   guidance 6 unless overridden);
2. a crossattn_kv ablation: random anchor images are encoded through the real VAE and
   text encoders, which are then freed, and Trainer steps are timed. The first step
   runs under torch.utils.flop_counter.FlopCounterMode for the step's FLOPs; the next
   steps are timed and their peak memory taken;
3. the FLOPs of the full case (batch 8 at the native resolution), counted by the same
   FlopCounterMode on a UNet built on the meta device, so a CPU run still reports them.

Defaults depend on the device. CUDA runs the full case: batch 8 at 512x512 (SDXL
1024x1024), bf16 autocast, gradient checkpointing, fp32 weights. CPU runs a reduced
case, since a full-size step takes minutes there. It trains at batch 1 on 256x256
images and generates one 64x64 image. SDXL's frozen weights are bf16 there, so that
the UNet and both text encoders fit beside other jobs. Every size is a flag, and
--frozen-weights-dtype and --micro-batch-size set the AblationConfig options of the
same names.

    nice -n 5 python -m benchmarks.full_size --json full_size.json
"""

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ablation_core.ablation import generate_anchor_data, release_frozen_components  # noqa: E402
from ablation_core.config import FrozenComponents, ParameterGroup, WeightsDtype  # noqa: E402
from ablation_core.parameter_groups import select_trainable, unet_parameter_names  # noqa: E402
from ablation_core.samplers import build_scheduler  # noqa: E402
from ablation_core.training import WEIGHTS_DTYPES, Trainer  # noqa: E402
from benchmarks.architectures import ARCHITECTURES, Architecture, build_pipeline, build_unet  # noqa: E402
from benchmarks.measure import StepTimes, gib, machine, peak_memory, synchronize, timed  # noqa: E402
from benchmarks.synthetic import benchmark_plan, encoded_random_data  # noqa: E402

# NVIDIA's published dense (no sparsity) bf16 matrix rate of the H200 SXM, in FLOP/s.
# NOTE: quoted from memory, not re-checked against the datasheet.
H200_BF16_FLOPS = 989e12


def parse_args(argv=None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", choices=["sd15", "sdxl"], default=["sd15", "sdxl"])
    parser.add_argument("--device", default="cuda" if cuda else "cpu", help="torch device")
    parser.add_argument("--batch-size", type=int, default=8 if cuda else 1, help="anchor images per training step, B (CUDA 8, CPU 1)")
    parser.add_argument("--resolution", type=int, help="training image side in pixels (CUDA: native 512 or 1024; CPU: 256)")
    parser.add_argument("--steps", type=int, default=10 if cuda else 2, help="timed training steps (CUDA 10, CPU 2)")
    parser.add_argument("--warmup", type=int, default=3 if cuda else 1, help="untimed steps first, the first one counted (CUDA 3, CPU 1)")
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default="bf16")
    parser.add_argument("--no-gradient-checkpointing", action="store_true", help="keep all activations for backward")
    parser.add_argument("--attention-implementation", choices=["sdpa", "eager"], default="sdpa")
    parser.add_argument(
        "--frozen-weights-dtype",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="dtype of the UNet weights that are not trained; the trained ones are fp32 "
        "(auto: fp32, but bf16 for SDXL on CPU). bf16 and fp16 need the same --mixed-precision",
    )
    parser.add_argument(
        "--micro-batch-size",
        type=int,
        help="anchor images per forward and backward pass within a step (default: the whole batch)",
    )
    parser.add_argument("--compile-unet", action="store_true", help="torch.compile the UNet for training")
    parser.add_argument("--gen-images", type=int, help="anchor images to generate per side (CUDA 16, CPU 1; 0 skips)")
    parser.add_argument("--gen-batch-size", type=int, help="images per pipeline call (CUDA 8, CPU 1)")
    parser.add_argument("--gen-resolution", type=int, help="generated image side in pixels (CUDA: native; CPU: 64)")
    parser.add_argument("--gen-steps", type=int, default=25, help="sampler steps (default 25)")
    parser.add_argument("--guidance-scale", type=float, default=6.0, help="classifier-free guidance scale (default 6)")
    parser.add_argument("--skip-training", action="store_true", help="only time anchor generation")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    return parser.parse_args(argv)


def frozen_weights_dtype(args: argparse.Namespace, architecture: Architecture) -> str:
    if args.frozen_weights_dtype != "auto":
        return args.frozen_weights_dtype
    return WeightsDtype.BF16.value if architecture.xl and args.device == "cpu" else WeightsDtype.FP32.value


def build_dtype(args: argparse.Namespace, frozen_dtype: str) -> torch.dtype:
    """Return the dtype to build the pipeline in.

    CUDA builds fp32, as the worker loads weights, and the Trainer casts the frozen ones.
    The CPU build is already in the frozen dtype, so no fp32 copy of SDXL ever exists on
    a small machine. The Trainer upcasts the trained tensors to fp32 on both.
    """
    if args.device == "cpu":
        return WEIGHTS_DTYPES[WeightsDtype(frozen_dtype)]
    return torch.float32


def build(architecture: Architecture, dtype: torch.dtype, device: torch.device):
    # Build directly on the device and in the target dtype: initializing 3.5 billion
    # parameters is fast on a GPU, and an fp32 copy of SDXL never exists on a small machine.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            pipe = build_pipeline(architecture, dtype=dtype)
    finally:
        torch.set_default_dtype(previous)
    return pipe.to(device)


def time_generation(pipe, args: argparse.Namespace, architecture: Architecture, work_dir: Path) -> dict:
    """Time generate_anchor_data against a plain pipeline call on the same prompts and seeds."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    count = args.gen_images
    if count is None:
        count = 16 if cuda else 1
    batch = args.gen_batch_size or (8 if cuda else 1)
    resolution = args.gen_resolution or (architecture.resolution if cuda else 64)
    sampler = {
        "num_inference_steps": args.gen_steps,
        "guidance_scale": args.guidance_scale,
        "batch_size": batch,
        "height": resolution,
        "width": resolution,
    }
    plan = benchmark_plan(num_images=count, sampler=sampler)
    items = plan.images

    # Warm up kernels and allocator with one short untimed call.
    pipe(prompt=[items[0].prompt], num_inference_steps=2, guidance_scale=args.guidance_scale, height=resolution, width=resolution)

    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    generate_anchor_data(pipe, plan, work_dir / "generated")
    synchronize(device)
    ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    original = pipe.scheduler
    pipe.scheduler = build_scheduler("dpmsolver++", original.config)
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for first in range(0, len(items), batch):
        chunk = items[first : first + batch]
        pipe(
            prompt=[item.prompt for item in chunk],
            generator=[torch.Generator("cpu").manual_seed(item.seed) for item in chunk],
            num_inference_steps=args.gen_steps,
            guidance_scale=args.guidance_scale,
            height=resolution,
            width=resolution,
        )
    synchronize(device)
    plain, plain_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    pipe.scheduler = original

    unet_flops = count_unet_flops(architecture, 2 * batch, resolution, backward=False)
    return {
        "images": count,
        "batch_size": batch,
        "resolution": resolution,
        "sampler": "dpmsolver++",
        "steps": args.gen_steps,
        "guidance_scale": args.guidance_scale,
        "generate_anchor_data_s": round(ours, 3),
        "plain_pipeline_s": round(plain, 3),
        "generate_anchor_data_images_per_s": round(count / ours, 4),
        "plain_pipeline_images_per_s": round(count / plain, 4),
        "overhead_ratio": round(ours / plain, 4),
        # Process CPU time: the fair comparison on a CPU shared with other jobs.
        "generate_anchor_data_cpu_s": round(ours_cpu, 3),
        "plain_pipeline_cpu_s": round(plain_cpu, 3),
        "cpu_overhead_ratio": round(ours_cpu / plain_cpu, 4),
        # Guidance runs the UNet on 2 samples per image and step; VAE decoding is not counted.
        "unet_tflop_per_image": round(unet_flops / batch * args.gen_steps / 1e12, 3),
    }


def time_training(pipe, args: argparse.Namespace, architecture: Architecture, work_dir: Path) -> dict:
    device = torch.device(args.device)
    resolution = args.resolution or (architecture.resolution if device.type == "cuda" else 256)
    plan = benchmark_plan(
        num_images=2 * args.batch_size,
        batch_size=args.batch_size,
        max_steps=1_000_000,
        mixed_precision=args.mixed_precision,
        gradient_checkpointing=not args.no_gradient_checkpointing,
        attention_implementation=args.attention_implementation,
        compile_unet=args.compile_unet,
        frozen_weights_dtype=frozen_weights_dtype(args, architecture),
        micro_batch_size=args.micro_batch_size,
        sampler={"height": resolution, "width": resolution},
    )

    start = time.perf_counter()
    data = encoded_random_data(pipe, plan, work_dir / "anchors", resolution)
    encode_seconds = time.perf_counter() - start
    freed = release_frozen_components(pipe, FrozenComponents.FREE, ParameterGroup.CROSSATTN_KV)
    gc.collect()

    trainable = select_trainable(pipe, plan.config.parameter_group, plan.concepts)
    trainer = Trainer(pipe, data, trainable, plan.config, plan.concepts)
    gc.collect()
    unet_weight_bytes = sum(p.numel() * p.element_size() for p in pipe.unet.parameters())
    times = StepTimes()
    counter = FlopCounterMode(display=False)
    with trainer.session():
        with counter:
            trainer.step()
        for _ in range(args.warmup - 1):
            trainer.step()
        with peak_memory(device) as memory:
            for _ in range(args.steps):
                with timed(times, device):
                    trainer.step()

    step_flops = counter.get_total_flops()
    full_flops = count_unet_flops(architecture, 16, architecture.resolution, backward=True)
    run_flops = count_unet_flops(architecture, 2 * args.batch_size, resolution, backward=True)
    achieved = step_flops / times.median
    result = {
        "batch_size": args.batch_size,
        "unet_samples_per_step": 2 * args.batch_size,
        "resolution": resolution,
        "micro_batch_size": plan.config.micro_batch_size,
        "frozen_weights_dtype": plan.config.frozen_weights_dtype,
        "unet_weights_gib": gib(unet_weight_bytes),
        "mixed_precision": args.mixed_precision,
        "gradient_checkpointing": not args.no_gradient_checkpointing,
        "attention_implementation": args.attention_implementation,
        "compile_unet": args.compile_unet,
        "freed_components": freed,
        "encode_s": round(encode_seconds, 2),
        "trainable_parameters_m": round(sum(p.numel() for p in trainer.parameters) / 1e6, 2),
        "step_times": times.summary(),
        "peak_memory_gib": gib(memory.peak),
        "memory_at_step_start_gib": gib(memory.start),
        "memory_source": memory.source,
        "step_tflop_counted": round(step_flops / 1e12, 3),
        "step_tflop_meta_count": round(run_flops / 1e12, 3),
        # Executed FLOPs include checkpointing's recomputed forward; model FLOPs do not (as in MFU).
        "achieved_tflop_per_s": round(achieved / 1e12, 4),
        "achieved_model_tflop_per_s": round(run_flops / times.median / 1e12, 4),
        "full_case_tflop_per_step": round(full_flops / 1e12, 3),
    }
    if device.type == "cuda":
        result["model_flops_fraction_of_h200_bf16_rate"] = round(run_flops / times.median / H200_BF16_FLOPS, 4)
    del trainer, trainable, data
    return result


def count_unet_flops(architecture: Architecture, samples: int, resolution: int, backward: bool) -> int:
    """Count UNet FLOPs for `samples` at `resolution` on the meta device; backward trains crossattn_kv only.

    The backward pass still reaches every layer, for the input gradients, but computes
    weight gradients only for the trainable key and value projections.
    """
    with torch.device("meta"):
        unet = build_unet(architecture)
    trainable = set(unet_parameter_names(unet, ParameterGroup.CROSSATTN_KV))
    for name, parameter in unet.named_parameters():
        parameter.requires_grad_(backward and name in trainable)

    side = resolution // 8
    meta = {"device": "meta"}
    latents = torch.randn(samples, 4, side, side, **meta)
    hidden = torch.randn(samples, 77, architecture.unet["cross_attention_dim"], **meta)
    timesteps = torch.zeros(samples, dtype=torch.long, **meta)
    added = None
    if architecture.xl:
        added = {"text_embeds": torch.randn(samples, 1280, **meta), "time_ids": torch.randn(samples, 6, **meta)}

    counter = FlopCounterMode(display=False)
    with counter, torch.set_grad_enabled(backward):
        prediction = unet(latents, timesteps, encoder_hidden_states=hidden, added_cond_kwargs=added).sample
        if backward:
            prediction.float().pow(2).mean().backward()
    return counter.get_total_flops()


def run_architecture(name: str, args: argparse.Namespace) -> dict:
    architecture = ARCHITECTURES[name]
    device = torch.device(args.device)
    dtype = build_dtype(args, frozen_weights_dtype(args, architecture))

    start = time.perf_counter()
    with peak_memory(device) as build_memory:
        pipe = build(architecture, dtype, device)
    result = {
        "architecture": architecture.name,
        "build_s": round(time.perf_counter() - start, 1),
        "build_memory_gib": gib(build_memory.peak),
        "parameters_m": {
            component: round(sum(p.numel() for p in getattr(pipe, component).parameters()) / 1e6, 1)
            for component in ("unet", "vae", "text_encoder", "text_encoder_2")
            if getattr(pipe, component, None) is not None
        },
    }
    with tempfile.TemporaryDirectory(prefix="full-size-") as work_dir:
        if args.gen_images != 0:
            result["generation"] = time_generation(pipe, args, architecture, Path(work_dir))
            print(json.dumps({name: result["generation"]}), flush=True)
        if not args.skip_training:
            result["training"] = time_training(pipe, args, architecture, Path(work_dir))
            print(json.dumps({name: result["training"]}), flush=True)
    del pipe
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    report = {
        "benchmark": "full_size",
        "command": "python -m benchmarks.full_size " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "results": {},
    }
    for name in args.arch:
        report["results"][name] = run_architecture(name, args)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
