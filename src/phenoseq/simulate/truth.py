"""Fresh cells from the true distribution p(expression | treatment, replicate) of a simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import _keys as K
from ..errors import InputError
from .design import ROUND
from .model import GroundTruthModel, sample_counts, sample_state
from .world import stream_rng

TRUTH_FILE = "truth.h5ad"
_BLOCK = 4096


def read_truth_info(directory: str | Path) -> dict[str, Any]:
    """``uns['phenoseq']`` of ``<directory>/truth.h5ad`` (model parameters included)."""
    path = Path(directory) / TRUTH_FILE
    if not path.is_file():
        raise InputError(
            "has no truth.h5ad.", "pass a folder written by `phenoseq simulate`", directory
        )
    with h5py.File(path, "r") as f:
        return ad.io.read_elem(f["uns"])[K.UNS]


def _index(values: list[str], value: str, what: str, directory: str | Path) -> int:
    if value not in values:
        raise InputError(
            f"unknown {what} {value!r} (known: {values[:6]}...).", f"pass a known {what}", directory
        )
    return values.index(value)


def _obs(info: dict[str, Any], t: int, r: int, n: int) -> pd.DataFrame:
    tr, rep = info["treatments"], str(r + 1)
    label = str(tr["label"][t])
    samples = info["samples"]
    hit = [i for i, s in enumerate(samples[K.SAMPLE_ID]) if s == f"{label}_R{rep}"]
    well = str(samples[K.WELL][hit[0]]) if hit else ""
    plate = str(samples[K.PLATE][hit[0]]) if hit else f"SIM-P{rep}"
    row = {
        K.SAMPLE_ID: f"{label}_R{rep}",
        K.TREATMENT: label,
        K.COMPOUND: str(tr[K.COMPOUND][t]),
        K.DOSE: float(tr[K.DOSE][t]),
        K.REPLICATE: rep,
        ROUND: str(info.get("replicate_rounds", {}).get(rep, "1")),
        K.PLATE: plate,
        K.WELL: well,
        K.SITE: 0,
    }
    obs = pd.DataFrame([row] * n, index=pd.Index([f"s{i:07d}" for i in range(n)]))
    for col in (K.SAMPLE_ID, K.TREATMENT, K.COMPOUND, K.REPLICATE, ROUND, K.PLATE, K.WELL):
        obs[col] = obs[col].astype("category")
    return obs


def sample_truth(
    directory: str | Path, treatment: str, replicate: str | int, n: int, seed: int = 0
) -> ad.AnnData:
    """Draw ``n`` new cells of ``treatment`` in ``replicate`` from the simulation's true model
    (the replicate's effects and those of its experiment round included).

    Parameters
    ----------
    directory
        A folder written by :func:`~phenoseq.simulate.simulate` (reads its ``truth.h5ad``).
    treatment
        Treatment label, e.g. ``"cmp03_1uM"`` or ``"DMSO"``; any treatment in any replicate,
        also combinations absent from the experiment.
    replicate
        Replicate label ``"1".."R"`` (or its int).
    n
        Number of cells.
    seed
        Seed of these draws (independent of the simulation's streams).

    Returns
    -------
    AnnData ``"n n_genes"``: integer counts in ``X`` (CSR float32), the obs columns of
    ``expression.h5ad`` (``Round`` included) plus ``responder``, hidden states in
    ``obsm['X_state']``.
    """
    info = read_truth_info(directory)
    model = GroundTruthModel.from_uns(info["model"])
    labels = [str(x) for x in info["treatments"]["label"]]
    t = _index(labels, treatment, "treatment", directory)
    r = _index(
        [str(i + 1) for i in range(int(info["config"]["n_replicates"]))],
        str(replicate),
        "replicate",
        directory,
    )
    rng = stream_rng(int(info["seed"]), "sample_truth", int(seed), t, r)
    counts, states, resp = [], [], []
    for start in range(0, n, _BLOCK):
        state, responder = sample_state(model, t, r, min(_BLOCK, n - start), rng)
        counts.append(sample_counts(model, state, t, r, rng))
        states.append(state.astype(np.float32))
        resp.append(responder)
    width = max(4, len(str(model.n_genes)))
    obs = _obs(info, t, r, n)
    obs["responder"] = np.concatenate(resp) if resp else np.zeros(0, bool)
    x = (
        sp.vstack(counts, format="csr")
        if counts
        else sp.csr_matrix((0, model.n_genes), dtype=np.float32)
    )
    var = pd.DataFrame(index=pd.Index([f"G{i + 1:0{width}d}" for i in range(model.n_genes)]))
    state = (
        np.concatenate(states) if states else np.zeros((0, model.basal_chol.shape[0]), np.float32)
    )
    return ad.AnnData(X=x, obs=obs, var=var, obsm={"X_state": state})
