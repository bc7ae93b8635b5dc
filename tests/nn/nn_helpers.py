"""Helpers shared by the network tests (imported by name; not a test module)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread (thread sync on a busy 2-core host cost 40x)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every weight off its initialisation (as after some training): zero-initialised
    adaLN-Zero layers would otherwise hide the inputs' effects."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model
