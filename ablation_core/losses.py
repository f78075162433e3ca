"""Training objectives of concept ablation (Kumari et al., arXiv 2303.13516).

Each objective gets the UNet predictions it needs and returns (loss, ablation term).
Predictions are whatever the scheduler's prediction type says (epsilon, v or sample);
`diffusion_target` gives the matching regression target.
"""

import torch
import torch.nn.functional as F
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ablation_core.config import Objective


def diffusion_target(
    scheduler: SchedulerMixin, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """Return the standard diffusion regression target for the scheduler's prediction type."""
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if prediction_type == "sample":
        return latents
    raise ValueError(f"unsupported prediction_type {prediction_type!r}: use epsilon, v_prediction or sample")


def model_based_loss(pred_target: torch.Tensor, pred_anchor: torch.Tensor) -> torch.Tensor:
    """Eq. 5: the target prompt's prediction matches the stop-gradient prediction for the anchor prompt."""
    return F.mse_loss(pred_target.float(), pred_anchor.detach().float())


def noise_based_loss(pred_target: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 6: the standard diffusion loss on (anchor image, target prompt) pairs."""
    return F.mse_loss(pred_target.float(), target.float())


def regularization_loss(pred_anchor: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Compute the standard diffusion loss on (anchor image, anchor prompt) pairs."""
    return F.mse_loss(pred_anchor.float(), target.float())


def loss_max_baseline(pred_target: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 7's data term: max(1 - L(x*, c*), 0) on images generated from the target prompt."""
    return torch.clamp(1.0 - target_image_loss(pred_target, target), min=0.0)


def target_image_loss(pred_target: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Compute L(x*, c*) of Eq. 7: the diffusion loss on (target image, target prompt) pairs."""
    return F.mse_loss(pred_target.float(), target.float())


def weight_distance(parameters: list[torch.Tensor], base: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 7's regularizer: the squared L2 distance between trained and base weights."""
    total = torch.zeros((), device=parameters[0].device)
    for parameter, original in zip(parameters, base):
        total = total + (parameter.float() - original.to(parameter.device)).pow(2).sum()
    return total


def needs_target_images(objective: str) -> bool:
    """Tell whether the objective trains on images of the target prompt (reverse KL, loss maximization)."""
    return Objective(objective) in (Objective.REVERSE_KL, Objective.LOSS_MAX)
