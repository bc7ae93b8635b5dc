"""The end-to-end demo at a tiny size: runs, writes outputs, same seed gives the same numbers."""

from __future__ import annotations

import json

from conftest import SMALL, fast
from phenoseq.cli import main
from phenoseq.config import SampleConfig
from phenoseq.demo import DemoConfig, run_demo
from phenoseq.simulate import SimulatorConfig

TINY_SIM = SimulatorConfig(
    n_treatments=6, doses=(1.0,), n_unseen_compounds=1, n_morphology_cells=12,
    n_expression_cells=16, n_truth_cells=4, n_genes=40, n_fields=1, n_surrogate_cells=64,
)  # fmt: skip


def tiny(seed: int = 0) -> DemoConfig:
    return DemoConfig(seed=seed, simulator=TINY_SIM, model=SMALL, train=fast(set_size=4),
                      sample=SampleConfig(n_cells=12, n_steps=3))  # fmt: skip


def test_demo_end_to_end_and_deterministic(tmp_path):
    a = run_demo(tmp_path / "a", tiny(), progress=False)
    for f in ("summary.json", "generated.h5ad", "model/config.json", "simulated/morphology.h5ad"):
        assert (tmp_path / "a" / f).exists(), f
    for f in (
        "metrics.json",
        "metrics.plots.npz",
        "report.html",
        "heldout_expression.h5ad",
        "model/calibration.json",
        "prediction_summary.h5ad",
        "prediction.html",
    ):
        assert (tmp_path / "a" / f).exists(), f
    m = a["metrics"]
    assert "pseudobulk/seen" in m["uncertainty"]["coverage"]  # the demo calibrates and scores
    page = (tmp_path / "a" / "prediction.html").read_text()
    assert "confidence" in page and "calibrated" in page
    assert set(m["model"]["energy_distance"]) >= {"seen", "unseen", "all"}
    ti = m["treatment_identification"]["balanced_accuracy"]
    for k in ("imaging", "generated", "imaging_generated", "imaging_real"):
        assert 0.0 <= ti[k] <= 1.0
    assert a["data"]["roles"]["test"]["groups"] > 0
    b = run_demo(tmp_path / "b", tiny(), progress=False)
    strip = {k: v for k, v in m.items() if k != "provenance"}  # provenance holds timings
    same = {k: v for k, v in b["metrics"].items() if k != "provenance"}
    assert json.dumps(strip, sort_keys=True, default=str) == json.dumps(same, sort_keys=True,
                                                                          default=str)  # fmt: skip
    on_disk = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert on_disk["model"]["energy_distance"]["seen"] == m["model"]["energy_distance"]["seen"]


def test_demo_cli_prints_summary(tmp_path, capsys, monkeypatch):
    import phenoseq.demo as demo

    monkeypatch.setattr(demo, "DemoConfig", lambda **kw: tiny(kw.get("seed", 0)))
    main(["demo", "--out", str(tmp_path / "d")])
    out = capsys.readouterr().out
    assert "held-out groups of seen treatments" in out and "treatment identification" in out
    assert "report: " in out and (tmp_path / "d" / "report.html").exists()
    assert "prediction report" in out and (tmp_path / "d" / "prediction.html").exists()
    assert (tmp_path / "d" / "summary.json").exists()


def test_demo_from_rendered_wells(tmp_path):
    """images -> featurize -> train -> generate -> evaluate on the simulator's rendered wells."""
    from dataclasses import replace

    cfg = replace(tiny(), from_images=True)
    a = run_demo(tmp_path / "img", cfg, progress=False)
    assert (tmp_path / "img" / "featurized.h5ad").exists()
    assert (tmp_path / "img" / "simulated" / "images" / "platemap.tsv").exists()
    assert a["seconds"]["featurize"] > 0
    assert a["metrics"]["model"]["energy_distance"]["seen"]["value"] is not None
