"""The ablation training loop over cached latents and text embeddings."""

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from diffusers import DiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from torch import nn

from ablation_core.batches import Batch
from ablation_core.concepts import Concept
from ablation_core.config import (
    AblationConfig,
    AttentionImplementation,
    MixedPrecision,
    Objective,
    ParameterGroup,
    WeightsDtype,
)
from ablation_core.encoding import EncodedData
from ablation_core.errors import AblationCancelled, AblationInputError
from ablation_core.losses import (
    diffusion_target,
    model_based_loss,
    noise_based_loss,
    regularization_loss,
    target_image_loss,
    weight_distance,
)
from ablation_core.parameter_groups import TrainableSet, cast_frozen_unet_weights
from ablation_core.preservation import KeyValuePreservation
from ablation_core.text_embeddings import TextConditioning, encode_prompts, sdxl_time_ids

ProgressCallback = Callable[[int, int, float | None], bool | None]

WEIGHTS_DTYPES = {WeightsDtype.FP32: torch.float32, WeightsDtype.BF16: torch.bfloat16, WeightsDtype.FP16: torch.float16}


@dataclass
class TrainingOutcome:
    steps: int
    losses: list[float] = field(default_factory=list)  # total loss per step
    ablation_losses: list[float] = field(default_factory=list)  # the objective's term, without regularization

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


class Trainer:
    """One ablation run: samples batches from the cache, computes the objective, steps AdamW.

    On construction the trained tensors are upcast to fp32 and the other UNet weights are
    cast to `config.frozen_weights_dtype`. Neither cast is undone after training.
    """

    def __init__(
        self,
        pipe: DiffusionPipeline,
        data: EncodedData,
        trainable: TrainableSet,
        config: AblationConfig,
        concepts: Sequence[Concept],
        preservation: KeyValuePreservation | None = None,
    ) -> None:
        self.pipe = pipe
        self.unet = pipe.unet
        self.data = data
        self.trainable = trainable
        self.config = config
        self.concepts = concepts
        self.preservation = preservation
        self.device = self.unet.device
        self.objective = Objective(config.objective)
        self.live_text = ParameterGroup(config.parameter_group) is ParameterGroup.EMBEDDING
        self.scheduler = pipe.scheduler
        self.generator = torch.Generator("cpu").manual_seed(config.seed)
        self._check_data()

        parameters = trainable.parameters()
        for parameter in parameters:
            if parameter.dtype != torch.float32:
                parameter.data = parameter.data.float()
        self.parameters = parameters
        cast_frozen_unet_weights(trainable, WEIGHTS_DTYPES[WeightsDtype(config.frozen_weights_dtype)])
        self.optimizer = torch.optim.AdamW(
            parameters, lr=config.effective_learning_rate, weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler(self.device.type) if self._fp16_on_cuda() else None
        # torch.compile traces the forward hooks that `run` registers, so it wraps the UNet
        # here and compiles on the first call, inside `run`.
        self.model = torch.compile(self.unet) if config.compile_unet else self.unet
        self.base_values = [trainable.base[name] for name in trainable.full] if self.objective is Objective.LOSS_MAX else []

    def _check_data(self) -> None:
        if self.data.num_anchor_images == 0:
            raise AblationInputError("no anchor images left to train on: all were filtered or none were generated")
        if self.objective in (Objective.REVERSE_KL, Objective.LOSS_MAX) and self.data.target_latent_mean.numel() == 0:
            raise AblationInputError(
                f"objective {self.objective.value!r} needs images of the target prompts: generate anchor data with it"
            )
        if self.objective is Objective.LOSS_MAX and self.live_text:
            raise AblationInputError("the loss_max baseline trains UNet weights: use a UNet parameter group")

    def _fp16_on_cuda(self) -> bool:
        return self.config.mixed_precision == MixedPrecision.FP16 and self.device.type == "cuda"

    def run(self, progress: ProgressCallback | None = None) -> TrainingOutcome:
        outcome = TrainingOutcome(steps=0)
        total = self.config.max_steps
        with self.session():
            for step in range(1, total + 1):
                loss, ablation_loss = self.step()
                outcome.steps = step
                outcome.losses.append(loss)
                outcome.ablation_losses.append(ablation_loss)
                if progress is not None and progress(step, total, loss) is False:
                    raise AblationCancelled(f"cancelled at training step {step} of {total}")
        return outcome

    @contextlib.contextmanager
    def session(self):
        """Put the UNet in its training state for `step` calls; `run` enters this itself.

        Inside: train mode, the configured attention processors, gradient checkpointing if
        set, and the start token's key and value detached. All are undone on exit.
        """
        with self._train_mode(), _start_token_detached(self.unet, self.config.parameter_group):
            yield self

    def step(self) -> tuple[float, float]:
        """Run one optimizer step and return (total loss, ablation term); call it inside `session`.

        The batch runs in micro-batches of `config.micro_batch_size` rows, each with its own
        forward and backward pass. A non-finite loss raises FloatingPointError before the
        optimizer changes any weight.
        """
        batch = self._sample_batch()
        totals = torch.zeros(2, device=self.device)
        for share, part in batch.split(self.config.micro_batch_size):
            with self._autocast():
                loss, ablation_loss = self._part_loss(part)
            # Each part's mean is weighted by its share of the rows, so the gradients that
            # backward accumulates add up to the gradient of the whole batch's mean loss.
            self._backward(loss * share)
            totals += torch.stack([loss.detach(), ablation_loss.detach()]).float() * share
        if self.objective is Objective.LOSS_MAX:
            totals = self._finish_loss_max(totals)
        if self.preservation is not None:
            totals[0] += self._preservation_backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)

        # The finiteness check waits for the device, so it comes after backward is queued:
        # checking between forward and backward would leave a GPU idle while the host
        # queues the backward kernels.
        values = totals.tolist()
        if not math.isfinite(values[0]):
            self.optimizer.zero_grad(set_to_none=True)
            raise FloatingPointError(f"training loss became {values[0]}: lower the learning rate")

        torch.nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return values[0], values[1]

    def _preservation_backward(self) -> torch.Tensor:
        # The penalty depends on the weights only, not on the batch, so it runs once per step.
        penalty = self.config.preservation_weight * self.preservation.loss()
        self._backward(penalty)
        return penalty.detach()

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def _sample_batch(self) -> Batch:
        if self.objective in (Objective.MODEL_BASED, Objective.NOISE_BASED):
            return self._sample_anchor_images()
        if self.objective is Objective.REVERSE_KL:
            return self._sample_reverse_kl()
        return self._sample_target_images()

    def _part_loss(self, part: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.config.regularization_weight
        if self.objective in (Objective.MODEL_BASED, Objective.NOISE_BASED):
            return self._anchor_image_loss(part, weight)
        if self.objective is Objective.REVERSE_KL:
            return self._reverse_kl_loss(part, weight)
        return self._loss_max_data_term(part)

    def _sample_anchor_images(self) -> Batch:
        # Cached anchor latents, noised at random timesteps.
        rows = self._sample_rows(self.data.num_anchor_images)
        latents = self._latents(self.data.anchor_latent_mean, self.data.anchor_latent_std, rows)
        noise, timesteps, noisy = self._noise(latents)
        return Batch({
            "noisy": noisy,
            "timesteps": timesteps,
            "target_ids": self.data.target_prompt_ids[rows],
            "anchor_ids": self.data.anchor_prompt_ids[rows],
            "regression_target": diffusion_target(self.scheduler, latents, noise, timesteps),
        })

    def _anchor_image_loss(self, part: dict[str, torch.Tensor], weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        noisy, timesteps, regression_target = part["noisy"], part["timesteps"], part["regression_target"]
        target_cond = self._conditioning(part["target_ids"], live=self.live_text)
        anchor_cond = self._conditioning(part["anchor_ids"])

        # One UNet pass over [target prompt; anchor prompt]. The anchor half serves both as
        # the stop-gradient reference of Eq. 5 and as the regularization prediction.
        if weight > 0:
            pred_target, pred_anchor = self._predict_pair(noisy, timesteps, target_cond, anchor_cond)
        else:
            pred_target = self._predict(noisy, timesteps, target_cond)
            with torch.no_grad():
                pred_anchor = self._predict(noisy, timesteps, anchor_cond)

        # Ablation term plus lambda times the regularization term.
        if self.objective is Objective.MODEL_BASED:
            ablation_loss = model_based_loss(pred_target, pred_anchor)
        else:
            ablation_loss = noise_based_loss(pred_target, regression_target)
        if weight > 0:
            return ablation_loss + weight * regularization_loss(pred_anchor, regression_target), ablation_loss
        return ablation_loss, ablation_loss

    def _sample_reverse_kl(self) -> Batch:
        # Images of the target prompt, and with regularization a second set of anchor
        # images, both of batch_size rows, so one split cuts them alike.
        rows = self._sample_rows(self.data.target_latent_mean.shape[0])
        latents = self._latents(self.data.target_latent_mean, self.data.target_latent_std, rows)
        _, timesteps, noisy = self._noise(latents)
        tensors = {
            "noisy": noisy,
            "timesteps": timesteps,
            "target_ids": self.data.target_image_target_ids[rows],
            "anchor_ids": self.data.target_image_anchor_ids[rows],
        }
        if self.config.regularization_weight > 0:
            anchor_rows = self._sample_rows(self.data.num_anchor_images)
            anchor_latents = self._latents(self.data.anchor_latent_mean, self.data.anchor_latent_std, anchor_rows)
            noise, anchor_steps, anchor_noisy = self._noise(anchor_latents)
            tensors.update({
                "anchor_noisy": anchor_noisy,
                "anchor_timesteps": anchor_steps,
                "anchor_prompt_ids": self.data.anchor_prompt_ids[anchor_rows],
                "anchor_regression_target": diffusion_target(self.scheduler, anchor_latents, noise, anchor_steps),
            })
        return Batch(tensors)

    def _reverse_kl_loss(self, part: dict[str, torch.Tensor], weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        # Model-based loss on noised images of the target prompt, so the target's own samples
        # are pulled towards what the anchor prompt predicts on them.
        noisy, timesteps = part["noisy"], part["timesteps"]
        pred_target = self._predict(noisy, timesteps, self._conditioning(part["target_ids"], live=self.live_text))
        with torch.no_grad():
            pred_anchor = self._predict(noisy, timesteps, self._conditioning(part["anchor_ids"]))
        ablation_loss = model_based_loss(pred_target, pred_anchor)
        loss = ablation_loss

        if weight > 0:
            anchor_cond = self._conditioning(part["anchor_prompt_ids"])
            pred = self._predict(part["anchor_noisy"], part["anchor_timesteps"], anchor_cond)
            loss = loss + weight * regularization_loss(pred, part["anchor_regression_target"])
        return loss, ablation_loss

    def _sample_target_images(self) -> Batch:
        rows = self._sample_rows(self.data.target_latent_mean.shape[0])
        latents = self._latents(self.data.target_latent_mean, self.data.target_latent_std, rows)
        noise, timesteps, noisy = self._noise(latents)
        return Batch({
            "noisy": noisy,
            "timesteps": timesteps,
            "target_ids": self.data.target_image_target_ids[rows],
            "regression_target": diffusion_target(self.scheduler, latents, noise, timesteps),
        })

    def _loss_max_data_term(self, part: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        # 1 - L(x*, c*) on this part, before Eq. 7's clamp at 0: `_finish_loss_max` clamps
        # the whole batch's value, since the clamp of a sum is not the sum of clamps.
        pred = self._predict(part["noisy"], part["timesteps"], self._conditioning(part["target_ids"]))
        unclamped = 1.0 - target_image_loss(pred, part["regression_target"])
        return unclamped, unclamped

    def _finish_loss_max(self, totals: torch.Tensor) -> torch.Tensor:
        """Apply Eq. 7's clamp to the accumulated gradients, add the weight penalty, return the losses.

        Eq. 7: push the diffusion loss on (target image, target prompt) up to 1, while an
        L2 penalty weighted by lambda keeps the weights near the base. max(1 - L, 0) passes
        the gradient of 1 - L where 1 - L >= 0 and none below, as autograd's clamp does.
        """
        unclamped = totals[0]
        passes = (unclamped >= 0).float()
        for parameter in self.parameters:
            if parameter.grad is not None:
                parameter.grad.mul_(passes)
        ablation_loss = unclamped.clamp(min=0.0)

        # The penalty depends on the weights only, so it runs once per step, not per part.
        full_parameters = list(self.trainable.full.values())
        penalty = self.config.regularization_weight * weight_distance(full_parameters, self.base_values)
        self._backward(penalty)
        return torch.stack([ablation_loss + penalty.detach(), ablation_loss])

    def _sample_rows(self, count: int) -> torch.Tensor:
        return torch.randint(0, count, (self.config.batch_size,), generator=self.generator)

    def _latents(self, mean: torch.Tensor, std: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        # Sample the VAE posterior afresh each step, as training on raw images would.
        eps = torch.randn(mean[rows].shape, generator=self.generator)
        return (mean[rows] + std[rows] * eps).to(self.device)

    def _noise(self, latents: torch.Tensor):
        noise = torch.randn(latents.shape, generator=self.generator).to(self.device)
        num_timesteps = self.scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, num_timesteps, (latents.shape[0],), generator=self.generator).to(self.device)
        return noise, timesteps, self.scheduler.add_noise(latents, noise, timesteps)

    def _conditioning(self, prompt_ids: torch.Tensor, live: bool = False) -> TextConditioning:
        if live:
            return encode_prompts(self.pipe, [self.data.prompts[i] for i in prompt_ids.tolist()], self.device)
        pooled = self.data.prompt_pooled
        return TextConditioning(
            self.data.prompt_hidden[prompt_ids].to(self.device),
            None if pooled is None else pooled[prompt_ids].to(self.device),
        )

    def _predict_pair(self, noisy, timesteps, first: TextConditioning, second: TextConditioning):
        hidden = torch.cat([first.encoder_hidden_states, second.encoder_hidden_states])
        pooled = None if first.pooled is None else torch.cat([first.pooled, second.pooled])
        both = self._predict(torch.cat([noisy, noisy]), torch.cat([timesteps, timesteps]), TextConditioning(hidden, pooled))
        return both.chunk(2)

    def _predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, cond: TextConditioning) -> torch.Tensor:
        dtype = self.unet.dtype
        added = None
        if cond.pooled is not None:
            height, width = self.data.image_size
            time_ids = sdxl_time_ids(height, width, noisy.shape[0], self.device, dtype)
            added = {"text_embeds": cond.pooled.to(dtype), "time_ids": time_ids}
        return self.model(
            noisy.to(dtype),
            timesteps,
            encoder_hidden_states=cond.encoder_hidden_states.to(dtype),
            added_cond_kwargs=added,
        ).sample

    def _autocast(self):
        precision = MixedPrecision(self.config.mixed_precision)
        if precision is MixedPrecision.NO:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision is MixedPrecision.BF16 else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    @contextlib.contextmanager
    def _train_mode(self):
        # Train mode turns on gradient checkpointing where enabled; the SD UNets have no dropout.
        # The attention processors are put back afterwards, so sampling keeps its own.
        processors = self.unet.attn_processors
        self.unet.set_attn_processor(_attention_processor(self.config.attention_implementation))
        if self.config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.unet.train()
        try:
            yield
        finally:
            self.unet.eval()
            if self.config.gradient_checkpointing:
                self.unet.disable_gradient_checkpointing()
            self.unet.set_attn_processor(processors)


def _attention_processor(implementation: str):
    """Return the diffusers attention processor of `implementation`.

    AttnProcessor2_0 calls scaled_dot_product_attention; AttnProcessor builds the
    [batch * heads, queries, keys] attention matrix and keeps it for backward.
    """
    if AttentionImplementation(implementation) is AttentionImplementation.SDPA:
        return AttnProcessor2_0()
    return AttnProcessor()


@contextlib.contextmanager
def _start_token_detached(unet: nn.Module, group: str):
    """Stop gradients through the start token's key and value in cross-attention.

    As in the authors' code (arXiv 2303.13516): every prompt shares that token, so
    training it would shift all prompts, not only the target's.
    """
    if ParameterGroup(group) is ParameterGroup.EMBEDDING:
        yield
        return

    def detach_first_token(_module, _inputs, output: torch.Tensor) -> torch.Tensor:
        if not output.requires_grad or output.dim() != 3:
            return output
        return torch.cat([output[:, :1].detach(), output[:, 1:]], dim=1)  # [batch, tokens, dim]

    handles = []
    for name, module in unet.named_modules():
        if name.endswith("attn2.to_k") or name.endswith("attn2.to_v"):
            handles.append(module.register_forward_hook(detach_first_token))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()

