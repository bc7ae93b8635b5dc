"""Condition encoder: permutation invariance, masks, set sizes from 1 to hundreds."""

from __future__ import annotations

import pytest
import torch

from phenoseq.nn import ConditionEncoder


@pytest.fixture
def encoder() -> ConditionEncoder:
    torch.manual_seed(0)
    return ConditionEncoder(5, d_model=16, n_heads=2, n_layers=2, n_tokens=3).eval()


def test_shapes_and_permutation_invariance(encoder):
    cells = torch.randn(2, 7, 5)
    pooled, tokens = encoder(cells)
    assert pooled.shape == (2, 16) and tokens.shape == (2, 3, 16)
    out = encoder(cells[:, torch.randperm(7)])
    torch.testing.assert_close(out.pooled, pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.tokens, tokens, atol=1e-5, rtol=1e-5)


def test_padding_is_ignored(encoder):
    cells = torch.randn(2, 7, 5)
    pooled, tokens = encoder(cells)
    padding = torch.full((2, 4, 5), float("nan"))
    padding[1] = 1e4
    mask = torch.cat([torch.ones(2, 7), torch.zeros(2, 4)], dim=1).bool()
    out = encoder(torch.cat([padding[:, :2], cells, padding[:, 2:]], dim=1), mask.roll(2, 1))
    torch.testing.assert_close(out.pooled, pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.tokens, tokens, atol=1e-5, rtol=1e-5)


def test_ragged_batch_equals_groups_encoded_alone(encoder):
    sizes = [1, 4, 6]
    groups = [torch.randn(1, n, 5) for n in sizes]
    cells = torch.zeros(3, 6, 5)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    for i, (n, grp) in enumerate(zip(sizes, groups, strict=True)):
        cells[i, :n], mask[i, :n] = grp[0], True
    batched = encoder(cells, mask).pooled
    alone = torch.cat([encoder(grp).pooled for grp in groups])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_one_cell_and_hundreds(encoder):
    assert encoder(torch.randn(3, 1, 5)).pooled.shape == (3, 16)
    out = encoder(torch.randn(2, 400, 5))
    assert out.tokens.shape == (2, 3, 16) and torch.isfinite(out.pooled).all()


def test_train_mode_without_dropout_matches_eval(encoder):
    cells, mask = torch.randn(2, 5, 5), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
    expected = encoder(cells, mask).pooled
    torch.testing.assert_close(encoder.train()(cells, mask).pooled, expected)


def test_bad_inputs(encoder):
    with pytest.raises(ValueError, match="at least one valid cell"):
        encoder(torch.randn(2, 3, 5), torch.tensor([[1, 0, 0], [0, 0, 0]]).bool())
    with pytest.raises(ValueError, match="n_features=5"):
        encoder(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="mask must be"):
        encoder(torch.randn(2, 3, 5), torch.ones(2, 4).bool())
