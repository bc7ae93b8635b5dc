"""The model directory and the files around it: a damaged directory is one line and exit 2,
files readable as the umask allows, stale temporaries of a killed writer removed, settings from
a TOML file with flags over it, and recorded with every output."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import anndata as ad
import pytest
import torch

from conftest import SMALL, fast, write_pair
from phenoseq.cli import main
from phenoseq.config import InputConfig, SplitConfig
from phenoseq.errors import InputError
from phenoseq.io import remove_stale_temporaries
from phenoseq.model import PhenoSeqModel, train_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("files")
    m, e = write_pair(root, n_treatments=3, n_reps=3, n_cells=8, n_feat=5, n_genes=7)
    split = SplitConfig("replicate", test=("3",))
    old = os.umask(0o022)
    try:
        train_model(InputConfig(m, e, control="DMSO", split=split), root / "model", SMALL,
                    fast(), progress=False)  # fmt: skip
    finally:
        os.umask(old)
    return root


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _generate(root: Path, model: Path, out: Path, capsys, *extra: str) -> tuple[int, str]:
    args = ["generate", "--model", str(model), "--morphology", str(root / "morph.h5ad"),
            "--out", str(out), "--n-cells", "2", "--steps", "2", "--quiet", *extra]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda d: (d / "weights.safetensors").write_bytes(
            (d / "weights.safetensors").read_bytes()[:200]), "weights.safetensors: cannot be read"),
        (lambda d: (d / "ema.safetensors").unlink(), "missing ['ema.safetensors']"),
        (lambda d: (d / "config.json").write_text("{"), "config.json: is not valid JSON"),
        (lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace(
            '"v_prediction"', '"x_prediction"')), "unknown --prediction-type 'x_prediction'"),
        (lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace(
            '"n_latent": 4', '"n_latent": 5')), "weights do not fit the model of config.json"),
    ],
)  # fmt: skip
def test_a_damaged_model_directory_is_one_line_and_exit_2(trained, tmp_path, capsys, damage,
                                                          needle):  # fmt: skip
    model = _copy(trained / "model", tmp_path / "model")
    damage(model)
    code, err = _generate(trained, model, tmp_path / "g.h5ad", capsys)
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    assert err.startswith("error: ") and "Fix:" in err and needle in err, err
    assert not (tmp_path / "g.h5ad").exists()


def test_model_files_are_readable_as_the_umask_allows(trained):
    for f in (trained / "model").iterdir():
        mode = stat.S_IMODE(f.stat().st_mode)
        assert mode == 0o644, (f.name, oct(mode))


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(trained, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "g.h5ad"
    stale = tmp_path / f".g.h5ad.{dead.pid}.abc123.tmp.h5ad"
    live = tmp_path / f".g.h5ad.{os.getpid()}.def456.tmp.h5ad"  # a running writer's: kept
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    main(["generate", "--model", str(trained / "model"), "--morphology",
          str(trained / "morph.h5ad"), "--out", str(out), "--n-cells", "2", "--steps", "2",
          "--quiet"])  # fmt: skip
    assert out.is_file() and not stale.exists() and live.exists()
    assert remove_stale_temporaries(out) == []


def test_settings_come_from_the_config_file_with_flags_over_it(trained, tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[sample]\nn_cells = 3\nn_steps = 2\nguidance = 1.5\n"
                   "[uncertainty]\nn_draws = 3\n")  # fmt: skip
    main(["generate", "--model", str(trained / "model"), "--morphology",
          str(trained / "morph.h5ad"), "--out", str(tmp_path / "g.h5ad"), "--config", str(cfg),
          "--guidance", "2", "--quiet"])  # fmt: skip
    gen = ad.read_h5ad(tmp_path / "g.h5ad")
    sample = gen.uns["phenoseq"]["settings"]["sample"]
    assert sample["n_cells"] == 3 and sample["n_steps"] == 2 and sample["guidance"] == 2.0
    assert gen.n_obs == 3 * gen.obs["phenoseq_group"].nunique()
    cfg.write_text("[sampling]\nn_cells = 3\n")
    code, err = _generate(trained, trained / "model", tmp_path / "x.h5ad", capsys, "--config",
                          str(cfg))  # fmt: skip
    assert code == 2 and "unknown table(s) ['sampling']" in err
    cfg.write_text("[sample]\nn_cell = 3\n")
    code, err = _generate(trained, trained / "model", tmp_path / "x.h5ad", capsys, "--config",
                          str(cfg))  # fmt: skip
    assert code == 2 and "unknown SampleConfig setting(s) ['n_cell']" in err


def test_train_records_its_settings_and_reads_them_from_a_file(trained, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text("[train]\nmax_steps = 3\nae_steps = 2\nbatch_size = 16\nset_size = 4\n"
                   "warmup_steps = 1\n[model]\nn_latent = 4\nae_hidden = 16\nae_layers = 1\n"
                   "d_model = 16\ncond_layers = 1\nn_tokens = 2\nwidth = 32\ndepth = 2\n"
                   "cond_heads = 2\n[diffusion]\ncond_drop_prob = 0.2\n")  # fmt: skip
    main(["train", "--morphology", str(trained / "morph.h5ad"), "--expression",
          str(trained / "expr.h5ad"), "--out", str(tmp_path / "m"), "--config", str(cfg),
          "--max-steps", "4", "--quiet"])  # fmt: skip
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert doc["train_config"]["max_steps"] == 4 and doc["train_config"]["ae_steps"] == 2
    assert doc["model_config"]["diffusion"]["cond_drop_prob"] == 0.2
    model = PhenoSeqModel.load(tmp_path / "m")
    assert model.history["diffusion"][-1]["step"] == 4
    assert model.config.diffusion.cond_drop_prob == 0.2


def test_configs_refuse_unknown_choices():
    from phenoseq.config import SampleConfig, TrainConfig, override

    with pytest.raises(InputError, match="unknown --precision 'fp8'. Fix: use auto, fp32 or bf16"):
        TrainConfig(precision="fp8")
    with pytest.raises(InputError, match="unknown SampleConfig setting"):
        override(SampleConfig(), n_cell=3)
