"""Typed settings of an ablation run, with per-kind defaults from the authors' configs."""

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable

from ablation_core.concepts import Concept, ConceptKind, parse_kind
from ablation_core.errors import AblationInputError

# The base model folder may carry its own per-kind defaults in this file, e.g.
# {"instance": {"learning_rate": 1e-5}}, applied over the built-in ones. Its "all"
# section applies to every kind, before the kind's own section.
MODEL_CONFIG_FILE = "ablate_config.json"
ALL_KINDS = "all"


class Objective(StrEnum):
    MODEL_BASED = "model_based"  # Eq. 5 of arXiv 2303.13516
    NOISE_BASED = "noise_based"  # Eq. 6
    REVERSE_KL = "reverse_kl"  # model-based loss on noised target images
    LOSS_MAX = "loss_max"  # the loss-maximization baseline of Eq. 7


class ParameterGroup(StrEnum):
    CROSSATTN_KV = "crossattn_kv"
    CROSSATTN = "crossattn"
    ATTN = "attn"
    EMBEDDING = "embedding"
    FULL = "full"


class MixedPrecision(StrEnum):
    NO = "no"
    BF16 = "bf16"
    FP16 = "fp16"


class WeightsDtype(StrEnum):
    """Storage dtype of the UNet weights that a run does not train."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


class FrozenComponents(StrEnum):
    """Handling of the VAE and text encoders after latents and embeddings are cached."""

    KEEP = "keep"  # leave them where they are
    OFFLOAD = "offload"  # move them to the CPU when training on an accelerator
    FREE = "free"  # drop them from the pipeline; it can no longer encode or generate


class AttentionImplementation(StrEnum):
    """Attention kernel of the UNet during training (names as in transformers' attn_implementation)."""

    SDPA = "sdpa"  # torch.nn.functional.scaled_dot_product_attention (fused kernels where the device has them)
    EAGER = "eager"  # explicit softmax(QK^T)V, which stores the full attention matrix for backward


class SamplerName(StrEnum):
    DPM_SOLVER = "dpmsolver++"
    DDIM = "ddim"
    DDPM = "ddpm"
    EULER = "euler"
    EULER_ANCESTRAL = "euler_a"
    PNDM = "pndm"


@dataclass
class SamplerConfig:
    """Sampler settings for anchor images."""

    scheduler: str = SamplerName.DPM_SOLVER.value
    num_inference_steps: int = 25
    guidance_scale: float = 6.0
    batch_size: int = 8  # images per pipeline call
    height: int | None = None  # pixels; None takes the model's default
    width: int | None = None

    def __post_init__(self) -> None:
        self.scheduler = _parse_enum(SamplerName, self.scheduler, "sampler")
        _require_positive("num_inference_steps", self.num_inference_steps)
        _require_positive("sampler batch_size", self.batch_size)
        if self.guidance_scale < 0:
            raise AblationInputError(
                f"invalid guidance_scale {self.guidance_scale}: use a value >= 0 (1 disables guidance)"
            )
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (value <= 0 or value % 8):
                raise AblationInputError(f"invalid {name} {value}: use a positive multiple of 8 pixels")


@dataclass
class AblationConfig:
    """Settings of one ablation run; see `for_concepts` for the per-kind defaults."""

    objective: str = Objective.MODEL_BASED.value
    parameter_group: str = ParameterGroup.CROSSATTN_KV.value
    learning_rate: float = 2e-6  # per sample; multiplied by batch_size when scale_lr is set
    scale_lr: bool = True
    batch_size: int = 8
    max_steps: int = 100
    regularization_weight: float = 0.2  # lambda on the diffusion loss of (anchor image, anchor prompt)
    # Surrounding concepts to keep, by concept kind: {"instance": ["cat", "dog"], "style": ["Monet"]}.
    # Their prompts' cross-attention keys and values are held near the base ones (see preservation.py).
    preserved_concepts: dict[str, list[str]] = field(default_factory=dict)
    preservation_weight: float = 1.0  # weight on the mean squared change of those keys and values
    num_anchor_prompts: int = 200
    images_per_prompt: int = 1
    # Memory and speed options of training; none changes the objective.
    mixed_precision: str = MixedPrecision.NO.value  # autocast dtype of the UNet pass
    gradient_checkpointing: bool = False  # recompute UNet block activations in backward
    attention_implementation: str = AttentionImplementation.SDPA.value
    # Frozen components after encoding. The embedding group keeps its text encoders in every mode.
    frozen_components: str = FrozenComponents.OFFLOAD.value
    compile_unet: bool = False  # torch.compile the UNet for training; the first step pays the compile
    # Frozen UNet weights are cast to this dtype before training; the trained group stays fp32.
    # bf16 and fp16 need the same mixed_precision. No effect with the full group.
    frozen_weights_dtype: str = WeightsDtype.FP32.value
    # Anchor images per forward and backward pass. Gradients of the passes add up to the
    # whole batch's before one optimizer step. None or a value >= batch_size runs the whole
    # batch in one pass, and a remainder runs as a smaller last pass.
    micro_batch_size: int | None = None
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    # Anchor images whose similarity to the memorized image reaches this value are dropped.
    memorization_threshold: float = 0.5
    seed: int = 0
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        if isinstance(self.sampler, dict):
            self.sampler = SamplerConfig(**self.sampler)
        self.objective = _parse_enum(Objective, self.objective, "objective")
        self.parameter_group = _parse_enum(ParameterGroup, self.parameter_group, "parameter group")
        self.mixed_precision = _parse_enum(MixedPrecision, self.mixed_precision, "mixed precision")
        self.attention_implementation = _parse_enum(
            AttentionImplementation, self.attention_implementation, "attention implementation"
        )
        self.frozen_components = _parse_enum(FrozenComponents, self.frozen_components, "frozen components")
        self.frozen_weights_dtype = _parse_enum(WeightsDtype, self.frozen_weights_dtype, "frozen_weights_dtype")
        _check_frozen_weights_dtype(self.frozen_weights_dtype, self.mixed_precision)
        if self.micro_batch_size is not None:
            _require_positive("micro_batch_size", self.micro_batch_size)
        for name in ("batch_size", "max_steps", "num_anchor_prompts", "images_per_prompt"):
            _require_positive(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise AblationInputError(f"invalid learning_rate {self.learning_rate}: use a positive value")
        if self.regularization_weight < 0:
            raise AblationInputError(
                f"invalid regularization_weight {self.regularization_weight}: use a value >= 0"
            )
        if not isinstance(self.preservation_weight, (int, float)) or self.preservation_weight < 0:
            raise AblationInputError(f"invalid preservation_weight {self.preservation_weight!r}: use a value >= 0")
        self.preserved_concepts = _parse_preserved(self.preserved_concepts)

    @property
    def effective_learning_rate(self) -> float:
        return self.learning_rate * self.batch_size if self.scale_lr else self.learning_rate

    @classmethod
    def for_concepts(
        cls, concepts: Iterable[Concept], model_path: str | Path | None = None, **overrides: Any
    ) -> "AblationConfig":
        """Build the config for these concepts: kind defaults, then the model's file, then overrides.

        A run over several kinds takes the defaults of the most demanding kind among them
        (memorization, then style, then instance).
        """
        kinds = {concept.kind for concept in concepts}
        if not kinds:
            raise AblationInputError("no concepts given: give at least one concept to ablate")
        kind = next(k for k in KIND_PRIORITY if k in kinds)

        model_defaults = load_model_defaults(model_path)
        layers = [KIND_DEFAULTS[kind], model_defaults.get(ALL_KINDS, {}), model_defaults.get(kind.value, {}), overrides]
        values: dict[str, Any] = {}
        sampler: dict[str, Any] = {}
        for layer in layers:
            for key, value in layer.items():
                if value is None:
                    continue
                if key == "sampler":
                    sampler.update(dataclasses.asdict(value) if isinstance(value, SamplerConfig) else value)
                else:
                    values[key] = value
        values["sampler"] = SamplerConfig(**sampler)
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AblationConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AblationInputError(
                f"unknown config keys {unknown}: valid keys are {sorted(known)}"
            )
        return cls(**data)


# Per-kind defaults as in the training configs published with Kumari et al. (arXiv 2303.13516).
# Instances and styles fine-tune the cross-attention keys and values with lr 2e-6 per sample.
# Memorized images fine-tune all UNet weights with lr 5e-7 per sample for 400 steps.
KIND_DEFAULTS: dict[ConceptKind, dict[str, Any]] = {
    ConceptKind.INSTANCE: {"parameter_group": "crossattn_kv", "learning_rate": 2e-6, "max_steps": 100},
    ConceptKind.STYLE: {"parameter_group": "crossattn_kv", "learning_rate": 2e-6, "max_steps": 100},
    ConceptKind.MEMORIZATION: {"parameter_group": "full", "learning_rate": 5e-7, "max_steps": 400},
}
KIND_PRIORITY = (ConceptKind.MEMORIZATION, ConceptKind.STYLE, ConceptKind.INSTANCE)


def load_model_defaults(model_path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read the base model folder's per-kind defaults, or {} when it has none."""
    if model_path is None:
        return {}
    path = Path(model_path) / MODEL_CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AblationInputError(f"invalid model config {path}: {error}; fix or remove the file") from None
    if not isinstance(data, dict):
        raise AblationInputError(f"invalid model config {path}: expected an object keyed by concept kind")
    return data


def _parse_preserved(value: Any) -> dict[str, list[str]]:
    example = '{"instance": ["cat", "dog"]}'
    if not isinstance(value, dict):
        raise AblationInputError(f"invalid preserved_concepts {value!r}: use an object of word lists keyed by concept kind, e.g. {example}")
    parsed: dict[str, list[str]] = {}
    for kind, words in value.items():
        kind = parse_kind(str(kind)).value
        if not isinstance(words, list) or not all(isinstance(word, str) and word.strip() for word in words):
            raise AblationInputError(f"invalid preserved_concepts[{kind!r}] {words!r}: use a list of non-empty words, e.g. {example}")
        parsed[kind] = list(dict.fromkeys(word.strip() for word in words))
    return parsed


def _parse_enum(enum: type[StrEnum], value: Any, name: str) -> str:
    try:
        return enum(str(value).strip().lower()).value
    except ValueError:
        valid = ", ".join(member.value for member in enum)
        raise AblationInputError(f"invalid {name} {value!r}: use one of {valid}") from None


def _check_frozen_weights_dtype(dtype: str, mixed_precision: str) -> None:
    """Reject half-precision frozen weights unless autocast runs the UNet in the same dtype.

    The trained tensors stay fp32, so without autocast a layer would multiply half inputs
    by fp32 weights and fail on the dtype mismatch. Autocast in the other half dtype would
    cast every frozen weight again at each use, and CPU kernels reject that mix outright.
    """
    if dtype == WeightsDtype.FP32 or dtype == mixed_precision:
        return
    raise AblationInputError(
        f"invalid frozen_weights_dtype {dtype!r} with mixed_precision {mixed_precision!r}: "
        f"set mixed_precision to {dtype!r}, or frozen_weights_dtype to 'fp32'"
    )


def _require_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise AblationInputError(f"invalid {name} {value!r}: use a positive integer")
