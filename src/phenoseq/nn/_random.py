"""Random draws from an explicit generator, on the generator's device, moved to the target's.

A CPU ``torch.Generator`` then gives the same numbers whether the model runs on CPU or GPU
(diffusers' ``randn_tensor`` does the same), and ``generator=None`` falls back to the global
RNG on the target device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _draw(
    fn: Callable[..., torch.Tensor],
    *args: object,
    generator: torch.Generator | None,
    device: torch.device | str,
    **kwargs: object,
) -> torch.Tensor:
    device = torch.device(device)
    source = generator.device if generator is not None else device
    return fn(*args, generator=generator, device=source, **kwargs).to(device)


def randn(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal draws of ``shape``."""
    return _draw(torch.randn, shape, generator=generator, device=device, dtype=dtype)


def rand(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Uniform float32 draws on ``[0, 1)`` of ``shape``."""
    return _draw(torch.rand, shape, generator=generator, device=device)


def randint(
    high: int,
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Long integers uniform on ``[0, high)`` of ``shape``."""
    return _draw(torch.randint, 0, high, shape, generator=generator, device=device)
