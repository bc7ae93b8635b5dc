"""Samplers behind one interface (diffusers' contract); one algorithm per file."""

from __future__ import annotations

from .base import Scheduler, SchedulerOutput
from .ddim import DDIMScheduler
from .ddpm import DDPMScheduler
from .dpmpp import DPMSolverMultistepScheduler

SAMPLERS: dict[str, type[Scheduler]] = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpmpp_2m": DPMSolverMultistepScheduler,
}


def make_scheduler(name: str, **kwargs) -> Scheduler:
    """A sampler by name: ``ddpm``, ``ddim`` or ``dpmpp_2m`` (DPM-Solver++ 2M, the default)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {sorted(SAMPLERS)}")
    return SAMPLERS[name](**kwargs)


__all__ = [
    "SAMPLERS",
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "Scheduler",
    "SchedulerOutput",
    "make_scheduler",
]
