"""Parameter groups: which weights an ablation trains, and the delta they produce.

Tensor names carry the component as a prefix ("unet.", "text_encoder.", "text_encoder_2.")
so one delta can touch several components of a pipeline.
"""

from dataclasses import dataclass, field
from typing import Sequence

import torch
from diffusers import DiffusionPipeline
from torch import nn
from torch.nn.utils import parametrize

from ablation_core.concepts import Concept
from ablation_core.config import ParameterGroup
from ablation_core.errors import AblationInputError

TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


def embedding_weight_name(encoder: nn.Module) -> str:
    """Name of the token embedding matrix inside a text encoder.

    transformers 5 names it 'embeddings.token_embedding.weight', older releases add a
    'text_model.' prefix, so the name is looked up rather than fixed.
    """
    weight = encoder.get_input_embeddings().weight
    original = getattr(getattr(encoder.get_input_embeddings(), "parametrizations", None), "weight", None)
    for name, parameter in encoder.named_parameters():
        if parameter is weight or (original is not None and parameter is original.original):
            return name.replace(".parametrizations.weight.original", ".weight")
    raise KeyError("token embedding weight")


def unet_parameter_names(unet: nn.Module, group: ParameterGroup) -> list[str]:
    """List the UNet parameters that `group` trains."""
    names = []
    for name, _ in unet.named_parameters():
        if group is ParameterGroup.FULL:
            names.append(name)
        elif group is ParameterGroup.CROSSATTN_KV and (".attn2.to_k." in name or ".attn2.to_v." in name):
            names.append(name)
        elif group is ParameterGroup.CROSSATTN and ".attn2." in name:
            names.append(name)
        elif group is ParameterGroup.ATTN and (".attn1." in name or ".attn2." in name):
            names.append(name)
    return names


class RowDelta(nn.Module):
    """Adds a trainable delta to a few rows of an embedding matrix; the other rows stay frozen."""

    def __init__(self, rows: torch.Tensor, dim: int, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("rows", rows.to(device))
        self.delta = nn.Parameter(torch.zeros(len(rows), dim, dtype=dtype, device=device))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.index_add(0, self.rows, self.delta.to(weight.dtype))


@dataclass
class TrainableSet:
    """The trained tensors of one run: full tensors by name, and embedding rows by encoder."""

    pipe: DiffusionPipeline
    full: dict[str, nn.Parameter] = field(default_factory=dict)
    rows: dict[str, RowDelta] = field(default_factory=dict)
    base: dict[str, torch.Tensor] = field(default_factory=dict)

    def parameters(self) -> list[nn.Parameter]:
        return list(self.full.values()) + [row_delta.delta for row_delta in self.rows.values()]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def finish(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Return (delta values by name, row indices by name) and bake the embedding rows into the weights."""
        values: dict[str, torch.Tensor] = {}
        row_indices: dict[str, torch.Tensor] = {}
        for name, parameter in self.full.items():
            values[name] = parameter.detach().float().cpu() - self.base[name]
        for name, row_delta in self.rows.items():
            values[name] = row_delta.delta.detach().float().cpu().clone()
            row_indices[name] = row_delta.rows.cpu().clone()
            component = getattr(self.pipe, name.split(".", 1)[0])
            embedding = component.get_input_embeddings()
            parametrize.remove_parametrizations(embedding, "weight", leave_parametrized=True)
            embedding.weight.requires_grad_(False)
        self.rows.clear()
        return values, row_indices


def select_trainable(pipe: DiffusionPipeline, group: str, concepts: Sequence[Concept]) -> TrainableSet:
    """Freeze the pipeline and make the group's tensors trainable; keep a CPU copy of their base values."""
    group = ParameterGroup(group)
    for component in _trainable_components(pipe):
        component.requires_grad_(False)

    trainable = TrainableSet(pipe)
    if group is ParameterGroup.EMBEDDING:
        _select_embedding_rows(pipe, concepts, trainable)
        return trainable

    parameters = dict(pipe.unet.named_parameters())
    for name in unet_parameter_names(pipe.unet, group):
        parameter = parameters[name]
        parameter.requires_grad_(True)
        trainable.full[f"unet.{name}"] = parameter
        trainable.base[f"unet.{name}"] = parameter.detach().float().cpu().clone()
    if not trainable.full:
        raise AblationInputError(f"parameter group {group.value!r} selects no UNet weights in this model")
    return trainable


def cast_frozen_unet_weights(trainable: TrainableSet, dtype: torch.dtype) -> int:
    """Cast the UNet parameters outside `trainable` to `dtype` in place; return how many changed.

    The cast is lossy for half dtypes and is not undone after training. The trained
    tensors and their base copies keep their own precision, so the delta is unaffected.
    """
    trained = {id(parameter) for parameter in trainable.parameters()}
    count = 0
    for parameter in trainable.pipe.unet.parameters():
        if id(parameter) in trained or not parameter.is_floating_point() or parameter.dtype == dtype:
            continue
        # One tensor at a time, so the peak adds one tensor's copy, not a second UNet.
        parameter.data = parameter.data.to(dtype)
        count += 1
    return count


def target_token_rows(tokenizer, concepts: Sequence[Concept]) -> list[int]:
    """Token ids of the target concepts that do not occur in their anchor concepts."""
    rows: set[int] = set()
    for concept in concepts:
        target_ids = set(tokenizer(concept.target, add_special_tokens=False).input_ids)
        anchor_ids = set(tokenizer(concept.anchor, add_special_tokens=False).input_ids)
        rows |= target_ids - anchor_ids
    return sorted(rows)


def _select_embedding_rows(pipe: DiffusionPipeline, concepts: Sequence[Concept], trainable: TrainableSet) -> None:
    for encoder_name, tokenizer_name in (("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2")):
        encoder = getattr(pipe, encoder_name, None)
        if encoder is None:
            continue
        rows = target_token_rows(getattr(pipe, tokenizer_name), concepts)
        if not rows:
            targets = ", ".join(repr(c.target) for c in concepts)
            raise AblationInputError(
                f"target concepts {targets} have no tokens apart from their anchors: "
                "the embedding group cannot separate them; use crossattn_kv"
            )
        embedding = encoder.get_input_embeddings()
        name = f"{encoder_name}.{embedding_weight_name(encoder)}"
        row_tensor = torch.tensor(rows, dtype=torch.long)
        trainable.base[name] = embedding.weight.detach()[row_tensor.to(embedding.weight.device)].float().cpu().clone()
        row_delta = RowDelta(row_tensor, embedding.weight.shape[1], torch.float32, embedding.weight.device)
        parametrize.register_parametrization(embedding, "weight", row_delta)
        trainable.rows[name] = row_delta


def _trainable_components(pipe: DiffusionPipeline) -> list[nn.Module]:
    components = [pipe.unet]
    components += [getattr(pipe, name) for name in TEXT_ENCODERS if getattr(pipe, name, None) is not None]
    return components


def resolve_tensor(pipe: DiffusionPipeline, name: str) -> torch.Tensor:
    """Find the pipeline tensor behind a prefixed name such as 'unet.conv_in.weight'."""
    component_name, _, tensor_name = name.partition(".")
    component = getattr(pipe, component_name, None)
    if not isinstance(component, nn.Module):
        raise KeyError(name)
    tensors = dict(component.named_parameters())
    if tensor_name not in tensors:
        raise KeyError(name)
    return tensors[tensor_name]
