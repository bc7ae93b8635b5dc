"""EMA of weights: hand-computed averages, warmup, buffers, state round trip."""

from __future__ import annotations

import pytest
import torch

from phenoseq.nn import EMA


def set_weight(lin: torch.nn.Linear, value: float) -> None:
    with torch.no_grad():
        lin.weight.fill_(value)


def test_hand_computed_with_warmup():
    lin = torch.nn.Linear(1, 1, bias=False)
    set_weight(lin, 0.0)
    ema = EMA(lin, decay=0.5)
    set_weight(lin, 1.0)
    ema.update(lin)  # d = min(0.5, 1/10) = 0.1: 0.1 * 0 + 0.9 * 1
    assert ema.shadow["weight"].item() == pytest.approx(0.9)
    set_weight(lin, 2.0)
    ema.update(lin)  # d = min(0.5, 2/11)
    assert ema.shadow["weight"].item() == pytest.approx(2 / 11 * 0.9 + 9 / 11 * 2)
    for _ in range(20):
        ema.update(lin)
    assert ema.current_decay() == 0.5


def test_hand_computed_without_warmup_and_buffers_copied():
    bn = torch.nn.BatchNorm1d(1)
    with torch.no_grad():
        bn.weight.fill_(0.0)
    ema = EMA(bn, decay=0.75, use_warmup=False)
    with torch.no_grad():
        bn.weight.fill_(4.0)
        bn.running_mean.fill_(3.0)
    ema.update(bn)
    assert ema.shadow["weight"].item() == pytest.approx(0.75 * 0 + 0.25 * 4)
    assert ema.shadow["running_mean"].item() == 3.0  # buffers are copied, not averaged
    assert ema.shadow["num_batches_tracked"].item() == 0


def test_state_dict_round_trip_and_copy_to():
    lin = torch.nn.Linear(2, 2)
    ema = EMA(lin, decay=0.9)
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update(lin)
    ema.update(lin)
    restored = EMA(torch.nn.Linear(2, 2))
    restored.load_state_dict(ema.state_dict())
    assert restored.n_updates == 2
    target = torch.nn.Linear(2, 2)
    restored.copy_to(target)
    torch.testing.assert_close(target.weight, ema.shadow["weight"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="EMA state mismatch"):
        EMA(torch.nn.Linear(2, 2, bias=False)).load_state_dict(ema.state_dict())


def test_bad_decay():
    with pytest.raises(ValueError, match="decay"):
        EMA(torch.nn.Linear(1, 1), decay=1.0)
