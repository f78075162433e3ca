"""Build the anchor-image sampler from a pipeline's own scheduler config."""

from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ablation_core.config import SamplerName


def build_scheduler(name: str, base_config: dict) -> SchedulerMixin:
    """Build scheduler `name` with the base model's noise schedule and prediction type."""
    sampler = SamplerName(name)
    if sampler is SamplerName.DPM_SOLVER:
        return DPMSolverMultistepScheduler.from_config(base_config, algorithm_type="dpmsolver++")
    schedulers = {
        SamplerName.DDIM: DDIMScheduler,
        SamplerName.DDPM: DDPMScheduler,
        SamplerName.EULER: EulerDiscreteScheduler,
        SamplerName.EULER_ANCESTRAL: EulerAncestralDiscreteScheduler,
        SamplerName.PNDM: PNDMScheduler,
    }
    return schedulers[sampler].from_config(base_config)
