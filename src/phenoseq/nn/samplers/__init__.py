"""Samplers behind one interface (diffusers' contract); one algorithm per file.

``SAMPLERS`` maps the names used in configs and on the command line to the classes.
"""

from __future__ import annotations

from typing import Any, Literal

from .base import Scheduler, SchedulerOutput
from .ddim import DDIMScheduler
from .ddpm import DDPMScheduler
from .dpmpp_2m import DPMSolverMultistepScheduler

SamplerName = Literal["ddpm", "ddim", "dpmpp_2m"]

SAMPLERS: dict[str, type[Scheduler]] = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpmpp_2m": DPMSolverMultistepScheduler,
}


def make_scheduler(name: str, **kwargs: Any) -> Scheduler:
    """A sampler by name.

    Parameters
    ----------
    name
        ``"ddpm"`` (ancestral, ~100+ steps), ``"ddim"`` (deterministic at ``eta=0``, ~50
        steps) or ``"dpmpp_2m"`` (DPM-Solver++ 2M, 10-20 steps; the recommended default).
    **kwargs
        Constructor arguments (``n_train_timesteps``, ``prediction_type``, ``clip_sample``,
        and the sampler's own, e.g. ``eta`` for DDIM).
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {sorted(SAMPLERS)}")
    return SAMPLERS[name](**kwargs)


__all__ = [
    "SAMPLERS",
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "SamplerName",
    "Scheduler",
    "SchedulerOutput",
    "make_scheduler",
]
