"""Training data access behind a small interface, so the loop never touches AnnData.

A store serves two kinds of batches: random expression cells (autoencoder) and, for the
diffusion, (expression cell, set of N morphology cells of the same pairing group) pairs drawn
group-first. Groups can be sharded by rank so each DDP process sees its own part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class PairBatch:
    """A diffusion batch: ``target`` ``"batch n_target"``, ``cells`` ``"batch n_set n_feat"``."""

    target: np.ndarray
    cells: np.ndarray  # "n_sets n_set n_features"
    set_index: np.ndarray  # "batch": the set of each target row
    groups: np.ndarray  # "n_sets" group index


class InMemoryGroupStore:
    """Arrays in memory, indexed by pairing group.

    Parameters
    ----------
    morph_x
        Normalised morphology features ``"n_morph n_features"`` (float32).
    morph_group
        Group index of every morphology row ``"n_morph"``.
    expr_x
        Expression rows ``"n_expr n_target"`` (whatever the phase needs: values or latents).
    expr_group
        Group index of every expression row ``"n_expr"``.
    groups
        Group indices that may be drawn (e.g. the training groups shared by both modalities).
    """

    def __init__(
        self,
        morph_x: np.ndarray,
        morph_group: np.ndarray,
        expr_x: np.ndarray,
        expr_group: np.ndarray,
        groups: Sequence[int],
    ):
        self.morph_x, self.expr_x = morph_x, expr_x
        self.groups = np.asarray(sorted(groups), dtype=np.int64)
        self._morph_rows = _rows_by_group(morph_group, self.groups)
        self._expr_rows = _rows_by_group(expr_group, self.groups)
        empty = [
            g for g in self.groups if not len(self._morph_rows[g]) or not len(self._expr_rows[g])
        ]
        if empty:
            raise ValueError(f"groups {empty[:3]} lack rows in one modality")
        self._expr_pool = np.concatenate([self._expr_rows[g] for g in self.groups])

    def shard(self, rank: int, world_size: int) -> InMemoryGroupStore:
        """The part of the groups this rank draws from (round-robin over sorted groups)."""
        out = object.__new__(InMemoryGroupStore)
        out.__dict__.update(self.__dict__)
        out.groups = self.groups[rank::world_size]
        out._expr_pool = np.concatenate([self._expr_rows[g] for g in out.groups])
        return out

    def expression_batch(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """Random expression rows of the store's groups ``"batch n_target"``."""
        return self.expr_x[rng.choice(self._expr_pool, size=batch_size)]

    def pair_batch(
        self, rng: np.random.Generator, batch_size: int, n_set: int, targets_per_set: int = 1
    ) -> PairBatch:
        """Groups uniformly; per group one set of ``n_set`` morphology rows and
        ``targets_per_set`` expression rows of that group (sharing a set across several targets
        makes the condition encoder cheaper per step without changing the pairing).

        Sets are drawn without replacement when the group has enough cells, else with it.
        """
        n_sets = -(-batch_size // targets_per_set)
        gs = rng.choice(self.groups, size=n_sets)
        cells = np.empty((n_sets, n_set), dtype=np.int64)
        target = np.empty((n_sets, targets_per_set), dtype=np.int64)
        for i, g in enumerate(gs):
            cells[i] = sample_set(rng, self._morph_rows[g], n_set)
            target[i] = rng.choice(self._expr_rows[g], size=targets_per_set)
        set_index = np.repeat(np.arange(n_sets), targets_per_set)[:batch_size]
        rows = target.ravel()[:batch_size]
        return PairBatch(self.expr_x[rows], self.morph_x[cells], set_index, gs)

    def well_batch(
        self, rng: np.random.Generator, batch_size: int, targets_per_set: int, min_cells: int
    ) -> PairBatch:
        """Like :meth:`pair_batch`, with each group's morphology summarised as the mean of a
        random subset of its cells (between ``min(min_cells, n)`` and all ``n`` of them): the
        well-level condition, made as noisy as a smaller well's now and then (augmentation).
        ``cells`` is then ``"n_sets n_features"``."""
        n_sets = -(-batch_size // targets_per_set)
        gs = rng.choice(self.groups, size=n_sets)
        means = np.empty((n_sets, self.morph_x.shape[1]), dtype=np.float32)
        target = np.empty((n_sets, targets_per_set), dtype=np.int64)
        for i, g in enumerate(gs):
            rows = self._morph_rows[g]
            k = int(rng.integers(min(min_cells, len(rows)), len(rows) + 1))
            means[i] = self.morph_x[rng.choice(rows, size=k, replace=False)].mean(axis=0)
            target[i] = rng.choice(self._expr_rows[g], size=targets_per_set)
        set_index = np.repeat(np.arange(n_sets), targets_per_set)[:batch_size]
        rows = target.ravel()[:batch_size]
        return PairBatch(self.expr_x[rows], means, set_index, gs)


class BlockShuffleBuffer:
    """Random rows of a matrix too large for memory, read from disk as blocks of consecutive rows.

    The buffer holds ``n_blocks`` blocks of ``block_rows`` consecutive eligible rows, each from a
    random place of the file; a batch is drawn uniformly from the whole buffer, and every
    ``refresh_every`` batches the oldest block is replaced by a fresh random one. Reads are
    sequential (fast on compressed HDF5/zarr chunks) while a batch still mixes ``n_blocks``
    places of the file; memory is ``n_blocks * block_rows`` rows, whatever the file size.

    Parameters
    ----------
    read
        ``read(lo, hi)`` -> dict of arrays (equal first dimension ``hi - lo``) for file rows
        ``lo:hi``.
    rows
        The eligible file rows (e.g. the training cells); blocks are runs of them.
    rng
        Chooses the blocks (the same seed on every DDP rank gives every rank the same buffer).
    """

    def __init__(
        self,
        read: Callable[[int, int], dict[str, np.ndarray]],
        rows: np.ndarray,
        rng: np.random.Generator,
        block_rows: int = 512,
        n_blocks: int = 32,
        refresh_every: int = 4,
    ):
        self.read, self.rows = read, np.sort(np.asarray(rows))
        if not len(self.rows):
            raise ValueError("no eligible rows")
        self.block_rows = min(block_rows, len(self.rows))
        self.n_blocks = max(1, min(n_blocks, len(self.rows) // self.block_rows))
        self.refresh_every, self._rng, self._steps, self._next = refresh_every, rng, 0, 0
        first = [self._block() for _ in range(self.n_blocks)]
        self.buffer = {k: np.stack([b[k] for b in first]) for k in first[0]}

    def _block(self) -> dict[str, np.ndarray]:
        # circular windows: every eligible row is in the same number of possible blocks
        start = int(self._rng.integers(0, len(self.rows)))
        want = self.rows[(start + np.arange(self.block_rows)) % len(self.rows)]
        runs = np.split(want, np.flatnonzero(np.diff(want) != 1) + 1)  # contiguous file ranges
        parts = [self.read(int(r[0]), int(r[-1]) + 1) for r in runs]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` random rows of the buffer (refreshing one block every few calls)."""
        self._steps += 1
        if self._steps % self.refresh_every == 0:
            for k, v in self._block().items():  # replace the oldest block in place
                self.buffer[k][self._next] = v
            self._next = (self._next + 1) % self.n_blocks
        b = rng.integers(0, self.n_blocks, batch_size)
        r = rng.integers(0, self.block_rows, batch_size)
        return {k: v[b, r] for k, v in self.buffer.items()}


def sample_set(rng: np.random.Generator, rows: np.ndarray, n_set: int) -> np.ndarray:
    """``n_set`` of ``rows``: without replacement when possible, else with replacement."""
    return rng.choice(rows, size=n_set, replace=len(rows) < n_set)


def _rows_by_group(group_of_row: np.ndarray, groups: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(group_of_row, kind="stable")
    sorted_groups = group_of_row[order]
    out = {}
    for g in groups:
        lo, hi = np.searchsorted(sorted_groups, [g, g + 1])
        out[int(g)] = order[lo:hi]
    return out
