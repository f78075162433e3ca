"""Write a tiny diffusers SD 1.x pipeline as one original-format (LDM) checkpoint file.

diffusers converts LDM checkpoints to its own layout on load but ships no converter back,
so the single-file tests write one here. The key layout follows the CompVis
`model.diffusion_model` / `first_stage_model` / `cond_stage_model.transformer` naming.
"""

import torch
from safetensors.torch import save_file

UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _rename_inner(rest: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        if rest.startswith(old + "."):
            return new + rest[len(old):]
    return rest


def unet_key(name: str, layers: int) -> str | None:
    parts = name.split(".")
    if name.startswith("time_embedding.linear_1"):
        return name.replace("time_embedding.linear_1", "time_embed.0")
    if name.startswith("time_embedding.linear_2"):
        return name.replace("time_embedding.linear_2", "time_embed.2")
    if name.startswith("conv_in"):
        return name.replace("conv_in", "input_blocks.0.0")
    if name.startswith("conv_norm_out"):
        return name.replace("conv_norm_out", "out.0")
    if name.startswith("conv_out"):
        return name.replace("conv_out", "out.2")
    if parts[0] == "down_blocks":
        block, kind, index = int(parts[1]), parts[2], int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "downsamplers":
            return f"input_blocks.{1 + block * (layers + 1) + layers}.0.op.{'.'.join(parts[5:])}"
        position = 1 + block * (layers + 1) + index
        if kind == "resnets":
            return f"input_blocks.{position}.0.{_rename_inner(rest, UNET_RESNET)}"
        return f"input_blocks.{position}.1.{rest}"
    if parts[0] == "mid_block":
        kind, index = parts[1], int(parts[2])
        rest = ".".join(parts[3:])
        if kind == "resnets":
            return f"middle_block.{2 * index}.{_rename_inner(rest, UNET_RESNET)}"
        return f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        block, kind, index = int(parts[1]), parts[2], int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "upsamplers":
            return None  # the caller places it, because the index depends on whether the block has attention
        position = block * (layers + 1) + index
        if kind == "resnets":
            return f"output_blocks.{position}.0.{_rename_inner(rest, UNET_RESNET)}"
        return f"output_blocks.{position}.1.{rest}"
    raise KeyError(name)


def vae_key(name: str, num_blocks: int) -> str:
    name = name.replace("conv_norm_out", "norm_out")
    parts = name.split(".")
    side = parts[0]
    if parts[1] in ("down_blocks", "up_blocks"):
        block = int(parts[2]) if side == "encoder" else num_blocks - 1 - int(parts[2])
        group = "down" if side == "encoder" else "up"
        if parts[3] == "resnets":
            rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.{group}.{block}.block.{parts[4]}.{rest}"
        sampler = "downsample" if side == "encoder" else "upsample"
        return f"{side}.{group}.{block}.{sampler}.{'.'.join(parts[5:])}"
    if parts[1] == "mid_block":
        if parts[2] == "resnets":
            rest = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(parts[3]) + 1}.{rest}"
        return f"{side}.mid.attn_1.{_rename_inner('.'.join(parts[4:]), VAE_ATTENTION)}"
    return name


def write_ldm_checkpoint(pipe, path) -> None:
    """Save the UNet, VAE and text encoder of an SD 1.x pipeline in the LDM layout."""
    layers = pipe.unet.config.layers_per_block
    tensors = {}
    for name, value in pipe.unet.state_dict().items():
        key = unet_key(name, layers)
        if key is None:
            block = int(name.split(".")[1])
            has_attention = hasattr(pipe.unet.up_blocks[block], "attentions")
            position = block * (layers + 1) + layers
            key = f"output_blocks.{position}.{2 if has_attention else 1}.conv.{name.split('.')[-1]}"
        tensors[f"model.diffusion_model.{key}"] = value

    num_blocks = len(pipe.vae.config.block_out_channels)
    for name, value in pipe.vae.state_dict().items():
        key = vae_key(name, num_blocks)
        if ".mid.attn_1." in key and value.dim() == 2:
            value = value[:, :, None, None]  # LDM keeps these projections as 1x1 convolutions
        tensors[f"first_stage_model.{key}"] = value

    for name, value in pipe.text_encoder.state_dict().items():
        prefix = "" if name.startswith("text_model.") else "text_model."
        tensors[f"cond_stage_model.transformer.{prefix}{name}"] = value

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
