"""The experimental design: treatments, replicates and their roles, plates, wells and obs tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _keys as K
from .config import SimulatorConfig

CONTROL = "DMSO"
ROUND = "Round"  # experiment round of a replicate: "1".."K"
_ROWS = "BCDEFGHIJKLMNO"  # inner wells of a 384-well plate (edges left empty, as usual)
_COLS = range(2, 24)
OBS_COLUMNS = (
    K.SAMPLE_ID,
    K.TREATMENT,
    K.COMPOUND,
    K.DOSE,
    K.REPLICATE,
    ROUND,
    K.PLATE,
    K.WELL,
    K.SITE,
)


def replicate_roles(n_replicates: int, rounds: tuple[int, ...] = ()) -> list[str]:
    """Split role of each replicate: in round 1, ``train`` x (size - 2), then ``calib``, then
    ``test`` (the held-out replicate); every replicate of a later round is ``test_round`` (the
    held-out round). ``rounds`` gives the replicates per round (default: one round)."""
    first = rounds[0] if rounds else n_replicates
    if first == 2:
        roles = ["train", "test"]
    else:
        roles = ["train"] * (first - 2) + ["calib", "test"]
    return roles + ["test_round"] * (n_replicates - first)


def dose_label(dose: float) -> str:
    """``0.1 -> '0.1uM'``, ``10.0 -> '10uM'``."""
    return f"{dose:g}uM"


@dataclass(frozen=True)
class Design:
    """Who is where.

    Attributes
    ----------
    treatments
        One row per treatment (DMSO first), index = treatment label; columns ``compound``,
        ``dose``, ``compound_index`` (-1 for DMSO) and ``is_unseen``.
    replicates
        Replicate labels ``"1".."R"``, numbered round by round.
    roles
        Split role of each replicate.
    rounds
        Experiment round labels ``"1".."K"``.
    replicate_rounds
        Round label of each replicate.
    samples
        One row per treatment x replicate present in the experiment: the obs columns (without
        ``Metadata_Site``) plus ``t_index`` and ``r_index``.
    """

    treatments: pd.DataFrame
    replicates: list[str]
    roles: dict[str, str]
    samples: pd.DataFrame
    rounds: list[str]
    replicate_rounds: dict[str, str]

    @property
    def unseen_treatments(self) -> list[str]:
        return list(self.treatments.index[self.treatments["is_unseen"]])

    @property
    def heldout_replicates(self) -> list[str]:
        return [r for r in self.replicates if self.roles[r] != "train"]


def _treatment_table(config: SimulatorConfig, unseen: np.ndarray) -> pd.DataFrame:
    width = max(2, len(str(config.n_compounds)))
    rows = [(CONTROL, CONTROL, 0.0, -1, False)]
    for i in range(config.n_treatments):
        c, d = divmod(i, len(config.doses))
        name = f"cmp{c + 1:0{width}d}"
        dose = float(config.doses[d])
        rows.append((f"{name}_{dose_label(dose)}", name, dose, c, bool(unseen[c])))
    frame = pd.DataFrame(rows, columns=["label", K.COMPOUND, K.DOSE, "compound_index", "is_unseen"])
    return frame.set_index("label").rename_axis(None)


def _wells(n: int, rng: np.random.Generator) -> tuple[list[int], list[str]]:
    """Random plate positions for ``n`` samples: (plate index, well name), 308 wells a plate."""
    names = [f"{r}{c:02d}" for r in _ROWS for c in _COLS]
    order = np.concatenate([rng.permutation(len(names)) for _ in range(n // len(names) + 1)])[:n]
    return [i // len(names) for i in range(n)], [names[j] for j in order]


def make_design(config: SimulatorConfig, rng: np.random.Generator) -> Design:
    """Treatments, unseen compounds (chosen at random), replicate roles and a random plate map."""
    unseen = np.zeros(config.n_compounds, dtype=bool)
    unseen[rng.choice(config.n_compounds, config.n_unseen_compounds, replace=False)] = True
    treatments = _treatment_table(config, unseen)
    replicates = [str(r + 1) for r in range(config.n_replicates)]
    roles = dict(zip(replicates, replicate_roles(config.n_replicates, config.rounds), strict=True))
    rounds = [str(k + 1) for k in range(len(config.round_sizes))]
    replicate_rounds = {
        rep: rounds[k] for rep, k in zip(replicates, config.replicate_round, strict=True)
    }
    rows = []
    for r_index, rep in enumerate(replicates):
        present = [
            t
            for t, row in enumerate(treatments.itertuples())
            if roles[rep] != "train" or not row.is_unseen
        ]
        plates, wells = _wells(len(present), rng)
        for t_index, plate, well in zip(present, plates, wells, strict=True):
            label = treatments.index[t_index]
            suffix = f"-{plate + 1}" if plate else ""
            rows.append(
                {
                    K.SAMPLE_ID: f"{label}_R{rep}",
                    K.TREATMENT: label,
                    K.COMPOUND: treatments[K.COMPOUND].iloc[t_index],
                    K.DOSE: float(treatments[K.DOSE].iloc[t_index]),
                    K.REPLICATE: rep,
                    ROUND: replicate_rounds[rep],
                    K.PLATE: f"SIM-P{rep}{suffix}",
                    K.WELL: well,
                    "t_index": t_index,
                    "r_index": r_index,
                }
            )
    return Design(treatments, replicates, roles, pd.DataFrame(rows), rounds, replicate_rounds)


def obs_for(design: Design, n_per_sample: int, prefix: str, n_sites: int = 0) -> pd.DataFrame:
    """Obs table of ``n_per_sample`` cells for every sample, sample-major.

    Imaged cells (``n_sites > 0``) are spread evenly over sites ``1..n_sites``; sequenced cells
    get ``Metadata_Site = 0`` (not imaged). Row names are ``prefix`` + a running number.
    """
    n_samples = len(design.samples)
    reps = np.repeat(np.arange(n_samples), n_per_sample)
    obs = design.samples.drop(columns=["t_index", "r_index"]).iloc[reps].reset_index(drop=True)
    if n_sites > 0:
        obs[K.SITE] = sites(n_per_sample, n_samples, n_sites)
    else:
        obs[K.SITE] = np.zeros(len(obs), dtype=np.int64)
    obs.index = pd.Index([f"{prefix}{i:07d}" for i in range(len(obs))])
    return _categorical(obs, design)


def sites(n_per_sample: int, n_samples: int, n_sites: int) -> np.ndarray:
    """Imaging site ``1..n_sites`` of each cell, cells of a sample spread evenly over sites."""
    return np.tile(np.arange(n_per_sample) % n_sites + 1, n_samples).astype(np.int64)


def _categorical(obs: pd.DataFrame, design: Design) -> pd.DataFrame:
    cats = {
        K.TREATMENT: list(design.treatments.index),
        K.COMPOUND: list(dict.fromkeys(design.treatments[K.COMPOUND])),
        K.REPLICATE: design.replicates,
        ROUND: design.rounds,
        K.SAMPLE_ID: list(design.samples[K.SAMPLE_ID]),
    }
    for col in (K.SAMPLE_ID, K.TREATMENT, K.COMPOUND, K.REPLICATE, ROUND, K.PLATE, K.WELL):
        obs[col] = pd.Categorical(obs[col].astype(str), categories=cats.get(col))
    return obs[list(OBS_COLUMNS)]
