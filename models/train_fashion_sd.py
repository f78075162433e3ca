"""Train the Fashion-MNIST text-to-image model: a Stable-Diffusion-shaped pipeline, from scratch.

Stage 1 trains the autoencoder (32x32 RGB -> 16x16x4 latents). Stage 2 trains a small CLIP
text encoder jointly with the UNet on the latents, with 10% of captions dropped for
classifier-free guidance. Checkpoints go to the work folder every few minutes, and a rerun
with the same arguments continues from the last one. Each step draws its batch from a
generator seeded by (seed, stage, step), so a resumed run trains on the same data as an
uninterrupted one. The result is saved with `StableDiffusionPipeline.save_pretrained` and
loads with `StableDiffusionPipeline.from_pretrained(path, local_files_only=True)`.

    nohup nice -n 0 python models/train_fashion_sd.py > runs/fashion-sd/train.log 2>&1 &

Offset noise (`--offset-noise`): Stable Diffusion's noise schedule keeps a little of the
image in the noisiest training latents (Lin et al., arXiv 2305.08891). A model trained on
them learns to read the image's mean colour from the latent's mean, so at sampling it takes
the mean of the starting noise as the image's colour, over the caption's. Adding a
random constant per latent channel to the training noise teaches the model to predict that
constant as noise, so it sets the mean colour from the caption. The shipped model's last
1,400 steps (two resumed runs, docs/evaluation.md) train with it, because the styles are
mostly background colours.
"""

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

# Worker threads that sleep instead of spinning at barriers: on a CPU shared with other
# jobs, spinning OpenMP threads made each step 2-3x slower (measured on 2 cores). Set
# before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import structlog
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from tqdm import tqdm
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablation_core.fashion import captions  # noqa: E402
from ablation_core.fashion.dataset import IMAGE_SIZE, load_split, to_grey_tensor  # noqa: E402
from ablation_core.fashion.memorized import MEMORIZED_IMAGES, MEMORIZED_SHARE  # noqa: E402
from ablation_core.fashion.styles import STYLE_LABELS, render_mixed  # noqa: E402
from ablation_core.tokenizer import load_clip_tokenizer  # noqa: E402

log = structlog.get_logger()

# Share of training images drawn in the plain look; the styles share the rest equally.
PLAIN_SHARE = 0.4

# Share of captions replaced by "" so the pipeline can use classifier-free guidance.
UNCONDITIONAL_SHARE = 0.1

TEXT_DIM = 64


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
    )


def build_text_encoder() -> CLIPTextModel:
    # The vocabulary and special token ids are CLIP's, so the shipped BPE tokenizer fits.
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=TEXT_DIM,
        intermediate_size=4 * TEXT_DIM,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TEXT_DIM,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    return CLIPTextModel(config)


def build_unet() -> UNet2DConditionModel:
    # Cross-attention sits at the 8x8 and 4x4 levels. The 16x16 level has plain ResNet
    # blocks, because attention there would cost 4x the compute of a UNet step on a CPU.
    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=32,
        norm_num_groups=32,
    )


def build_scheduler() -> DDPMScheduler:
    # Stable Diffusion 1.x's noise schedule and timestep offset.
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
    )


class BatchSampler:
    """Seeded batches of rendered images, style ids and captions."""

    def __init__(self, seed: int, batch_size: int):
        train = load_split("train")
        self.images = train.images
        self.labels = train.labels
        self.seed = seed
        self.batch_size = batch_size
        self.style_probs = np.array([PLAIN_SHARE] + [(1 - PLAIN_SHARE) / (len(STYLE_LABELS) - 1)] * (len(STYLE_LABELS) - 1))

    def batch(self, stage: int, step: int) -> tuple[torch.Tensor, list[str]]:
        rng = np.random.default_rng([self.seed, stage, step])
        index = rng.integers(len(self.labels), size=self.batch_size)
        style_ids = rng.choice(len(STYLE_LABELS), size=self.batch_size, p=self.style_probs)
        texts = []
        for i in range(self.batch_size):
            draw = rng.random()
            memorized = None
            if draw < MEMORIZED_SHARE * len(MEMORIZED_IMAGES):
                memorized = MEMORIZED_IMAGES[int(draw // MEMORIZED_SHARE)]
            if memorized is not None:
                index[i] = memorized.index
                style_ids[i] = 0
                texts.append(memorized.caption)
                continue
            style = None if style_ids[i] == 0 else STYLE_LABELS[style_ids[i]]
            texts.append(captions.caption(int(self.labels[index[i]]), style, rng))

        grey = to_grey_tensor(self.images[index])
        pixels = render_mixed(grey, torch.from_numpy(style_ids)) * 2 - 1
        return pixels, texts


def save_atomic(state: dict, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_vae(args, sampler: BatchSampler, work: Path) -> AutoencoderKL:
    final = work / "vae_final.pt"
    vae = build_vae()
    if final.exists():
        state = torch.load(final)
        vae.load_state_dict(state["vae"])
        vae.register_to_config(scaling_factor=state["scaling_factor"])
        return vae

    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    checkpoint = work / "vae_ckpt.pt"
    start = 0
    if checkpoint.exists():
        state = torch.load(checkpoint)
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        log.info("vae_resumed", step=start)

    last_save = time.time()
    progress = tqdm(range(start, args.vae_steps), initial=start, total=args.vae_steps, mininterval=30, desc="vae")
    for step in progress:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.vae_steps, args.vae_lr)
        pixels, _ = sampler.batch(1, step)
        posterior = vae.encode(pixels).latent_dist
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(latents).sample
        # L1 keeps edges and bands sharp; the tiny KL weight only keeps the latents bounded.
        loss = F.l1_loss(recon, pixels) + F.mse_loss(recon, pixels) + args.vae_kl * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        if step % 50 == 0:
            log.info("vae_step", step=step, loss=round(loss.item(), 5))
        if time.time() - last_save > args.checkpoint_seconds:
            save_atomic({"vae": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1}, checkpoint)
            last_save = time.time()

    scaling = latent_scaling_factor(vae, sampler)
    vae.register_to_config(scaling_factor=scaling)
    save_atomic({"vae": vae.state_dict(), "scaling_factor": scaling}, final)
    log.info("vae_done", scaling_factor=scaling)
    return vae


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, sampler: BatchSampler) -> float:
    # Latent Diffusion scales latents to unit variance before diffusion (Rombach et al., 2022).
    samples = [vae.encode(sampler.batch(9, i)[0]).latent_dist.sample() for i in range(16)]
    return float(1.0 / torch.cat(samples).std())


class TokenCache:
    """Token ids per caption; captions repeat often, and the BPE tokenizer is slow in Python."""

    def __init__(self):
        self.tokenizer = load_clip_tokenizer()
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        missing = [text for text in set(texts) if text not in self.cache]
        if missing:
            ids = self.tokenizer(missing, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
            self.cache.update(zip(missing, ids))
        return torch.stack([self.cache[text] for text in texts])


def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for target, source in zip(ema.parameters(), model.parameters()):
            target.lerp_(source, 1 - decay)


def train_denoiser(args, sampler: BatchSampler, vae: AutoencoderKL, work: Path):
    torch.manual_seed(args.seed)
    text_encoder = build_text_encoder()
    unet = build_unet()
    ema_text, ema_unet = copy.deepcopy(text_encoder), copy.deepcopy(unet)
    params = list(text_encoder.parameters()) + list(unet.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)

    checkpoint = work / "denoiser_ckpt.pt"
    start = 0
    if args.resume_from is not None and not checkpoint.exists():
        start = load_exported(args.resume_from, args.resume_step, text_encoder, unet, ema_text, ema_unet)
    elif checkpoint.exists():
        state = torch.load(checkpoint)
        for module, key in ((text_encoder, "text"), (unet, "unet"), (ema_text, "ema_text"), (ema_unet, "ema_unet")):
            module.load_state_dict(state[key])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        log.info("denoiser_resumed", step=start)

    scheduler = build_scheduler()
    alphas = scheduler.alphas_cumprod
    tokens = TokenCache()
    vae.requires_grad_(False).eval()
    scaling = vae.config.scaling_factor

    if args.export_checkpoint:
        return ema_text, ema_unet

    last_save = time.time()
    stop = min(args.stop_at or args.steps, args.steps)
    progress = tqdm(range(start, stop), initial=start, total=args.steps, mininterval=30, desc="unet")
    for step in progress:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr) * rewarm(step, args)
        pixels, texts = sampler.batch(2, step)
        rng = np.random.default_rng([args.seed, 3, step])
        texts = ["" if rng.random() < UNCONDITIONAL_SHARE else text for text in texts]
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)

        with torch.no_grad():
            posterior = vae.encode(pixels).latent_dist
            latents = (posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)) * scaling
        noise = torch.randn(latents.shape, generator=generator)
        if args.offset_noise:
            noise = noise + args.offset_noise * torch.randn(*latents.shape[:2], 1, 1, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(texts),), generator=generator)
        alpha = alphas[timesteps].view(-1, 1, 1, 1)
        noisy = alpha.sqrt() * latents + (1 - alpha).sqrt() * noise

        hidden = text_encoder(tokens(texts))[0]
        prediction = unet(noisy, timesteps, hidden).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

        decay = min(args.ema_decay, (1 + step) / (10 + step))
        update_ema(ema_text, text_encoder, decay)
        update_ema(ema_unet, unet, decay)

        if step % 50 == 0:
            log.info("unet_step", step=step, loss=round(loss.item(), 5), lr=round(optimizer.param_groups[0]["lr"], 6))
        if time.time() - last_save > args.checkpoint_seconds:
            save_atomic(
                {"text": text_encoder.state_dict(), "unet": unet.state_dict(), "ema_text": ema_text.state_dict(),
                 "ema_unet": ema_unet.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1},
                checkpoint,
            )
            last_save = time.time()
            log.info("checkpoint_saved", step=step + 1)

    return ema_text, ema_unet


def load_exported(folder: Path, step: int, text_encoder, unet, ema_text, ema_unet) -> int:
    """Start the denoiser stage from an exported pipeline folder as if it were step `step`.

    An exported folder contains only the EMA weights, so the live and EMA copies both start
    from them, and AdamW starts with empty moments (see `rewarm`). The UNet was exported
    in float16; it trains in float32 from here.
    """
    text_encoder.load_state_dict(CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True).state_dict())
    exported = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
    unet.load_state_dict({name: tensor.float() for name, tensor in exported.state_dict().items()})
    ema_text.load_state_dict(text_encoder.state_dict())
    ema_unet.load_state_dict(unet.state_dict())
    log.info("denoiser_started_from_export", folder=str(folder), step=step)
    return step


def rewarm(step: int, args) -> float:
    """Return the factor on the learning rate for the first steps after `--resume-from`.

    AdamW's moments are empty there, so its first updates have full size on every weight.
    Ramping the rate up over 50 steps keeps them from kicking the weights off their minimum.
    """
    if args.resume_from is None:
        return 1.0
    return min(1.0, (step - args.resume_step + 1) / 50)


def export(vae, text_encoder, unet, out: Path) -> None:
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=load_clip_tokenizer(),
        unet=unet,
        scheduler=build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    # diffusers loads UNet and VAE weights into float32 modules whatever their stored dtype,
    # so float16 files halve their size. transformers 5 keeps a text encoder in its stored
    # dtype, and a float16 encoder beside a float32 UNet fails, so it stays float32.
    unet.to(torch.float16)
    vae.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    log.info("pipeline_saved", path=str(out))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/fashion-sd"), help="pipeline folder to write")
    parser.add_argument("--work", type=Path, default=Path("runs/fashion-sd"), help="folder for checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--vae-steps", type=int, default=700)
    parser.add_argument("--vae-lr", type=float, default=1e-3)
    parser.add_argument("--vae-kl", type=float, default=1e-6, help="weight of the autoencoder's KL term")
    parser.add_argument("--steps", type=int, default=2200, help="text encoder and UNet steps")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of text encoder and UNet")
    parser.add_argument("--stop-at", type=int, default=None, help="stop after this step and export, keeping the learning-rate schedule of --steps")
    parser.add_argument(
        "--resume-from",
        type=Path,
        default=None,
        help="exported pipeline folder whose weights continue training at --resume-step (its VAE is reused too)",
    )
    parser.add_argument("--resume-step", type=int, default=1600, help="the step the --resume-from weights were exported at")
    parser.add_argument("--export-checkpoint", action="store_true", help="export the last checkpoint's EMA weights without training")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument(
        "--offset-noise",
        type=float,
        default=0.0,
        help="standard deviation of a constant added to each latent channel's training noise "
        "(default 0: off); see the module docstring",
    )
    parser.add_argument("--checkpoint-seconds", type=float, default=180.0, help="seconds between checkpoints")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.offset_noise < 0:
        parser.error(f"invalid --offset-noise {args.offset_noise}: use a standard deviation >= 0, e.g. 0.1")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    log.info("training_started", **{k: str(v) for k, v in vars(args).items()})

    sampler = BatchSampler(args.seed, args.batch_size)
    torch.manual_seed(args.seed)
    if args.resume_from is not None:
        vae = AutoencoderKL.from_pretrained(args.resume_from / "vae", local_files_only=True).float()
    else:
        vae = train_vae(args, sampler, args.work)
    text_encoder, unet = train_denoiser(args, sampler, vae, args.work)
    export(vae, text_encoder, unet, args.out)
    log.info("training_finished", seconds_this_run=round(time.time() - started))


if __name__ == "__main__":
    main()
