"""The tensors of one training step, and their split into micro-batches."""

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """Tensors of one training step, each with the batch on dim 0.

    The Trainer draws every random value for the whole batch before splitting it, so a
    run with micro-batches trains on the same rows, noise and timesteps as one without.
    """

    tensors: dict[str, torch.Tensor]

    def __post_init__(self) -> None:
        sizes = {name: tensor.shape[0] for name, tensor in self.tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"batch tensors differ in batch size: {sizes}")

    @property
    def size(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def split(self, micro_batch_size: int | None) -> list[tuple[float, dict[str, torch.Tensor]]]:
        """Return (share of the batch, tensors) for each micro-batch, in row order.

        None, or a size of at least the batch, gives one part with share 1.0. Otherwise
        the last part takes the remainder, and each share is its rows over the batch's,
        so shares weight each part's mean loss into the whole batch's mean.
        """
        size = self.size
        step = size if micro_batch_size is None else min(micro_batch_size, size)
        parts = []
        for start in range(0, size, step):
            stop = min(start + step, size)
            share = 1.0 if step == size else (stop - start) / size
            parts.append((share, {name: tensor[start:stop] for name, tensor in self.tensors.items()}))
        return parts
