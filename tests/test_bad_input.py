"""Every bad-input case: exit code 2, a one-line message naming problem and fix, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import tiny_pair
from phenoseq.cli import main


def run_validate(capsys, tmp_path: Path, morph: Path, expr: Path, *extra: str) -> tuple[int, str]:
    out = tmp_path / "out" / "summary.json"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "validate",
                "--morphology",
                str(morph),
                "--expression",
                str(expr),
                "--out",
                str(out),
                *extra,
            ]
        )
    err = capsys.readouterr().err.strip()
    assert not out.exists(), "a failed command must not leave its output behind"
    leftovers = list(out.parent.glob(".*")) if out.parent.exists() else []
    assert not leftovers, leftovers
    return exc.value.code, err


def write_pair(tmp_path: Path, morph=None, expr=None) -> tuple[Path, Path]:
    m0, e0 = tiny_pair()
    morph, expr = morph if morph is not None else m0, expr if expr is not None else e0
    m, e = tmp_path / "m.h5ad", tmp_path / "e.h5ad"
    morph.write_h5ad(m)
    expr.write_h5ad(e)
    return m, e


def assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("error: "), err
    assert "Fix: " in err, f"no fix in: {err}"
    for n in needles:
        assert n in err, (n, err)


def test_valid_inputs_write_summary(tmp_path, tiny_files, capsys):
    m, e = tiny_files
    out = tmp_path / "s.json"
    main(
        [
            "validate",
            "--morphology",
            str(m),
            "--expression",
            str(e),
            "--control",
            "DMSO",
            "--split",
            "replicate",
            "--test",
            "3",
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert "9 shared groups" in text and out.exists()


def test_missing_path(tmp_path, tiny_files, capsys):
    _, e = tiny_files
    code, err = run_validate(capsys, tmp_path, tmp_path / "nope.h5ad", e)
    assert_one_line(code, err, "nope.h5ad", "does not exist")


@pytest.mark.parametrize(
    "name,content", [("bad.h5ad", b"not an hdf5 file"), ("bad.parquet", b"PAR1garbage")]
)
def test_corrupt_file(tmp_path, tiny_files, capsys, name, content):
    _, e = tiny_files
    bad = tmp_path / name
    bad.write_bytes(content)
    code, err = run_validate(capsys, tmp_path, bad, e)
    assert_one_line(code, err, name, "cannot be read")


def test_truncated_h5ad(tmp_path, tiny_files, capsys):
    m, e = tiny_files
    data = e.read_bytes()
    cut = tmp_path / "cut.h5ad"
    cut.write_bytes(data[: len(data) // 2])
    code, err = run_validate(capsys, tmp_path, m, cut)
    assert_one_line(code, err, "cut.h5ad", "cannot be read")


def test_zero_rows(tmp_path, tiny_files, capsys):
    _, e = tiny_files
    empty = tmp_path / "empty.csv"
    empty.write_text("Metadata_Well,Sample_ID,Cells_A\n")
    code, err = run_validate(capsys, tmp_path, empty, e)
    assert_one_line(code, err, "empty.csv", "0 rows")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nonfinite_features(tmp_path, capsys, value):
    morph, _ = tiny_pair()
    morph.X[2, 1] = value
    m, e = write_pair(tmp_path, morph=morph)
    code, err = run_validate(capsys, tmp_path, m, e)
    assert_one_line(code, err, "m.h5ad", "NaN/inf", "Cells_F1")


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda x: x.__setitem__((0, 0), -1), "negative"),
        (lambda x: x.__setitem__((0, 0), 0.5), "non-integer"),
        (lambda x: x.__setitem__((slice(0, 2), slice(None)), 0), "zero total counts"),
    ],
)
def test_bad_counts(tmp_path, capsys, edit, needle):
    _, expr = tiny_pair()
    edit(expr.X)
    m, e = write_pair(tmp_path, expr=expr)
    code, err = run_validate(capsys, tmp_path, m, e)
    assert_one_line(code, err, "e.h5ad", needle)


def test_sparse_counts_checked(tmp_path, capsys):
    _, expr = tiny_pair()
    x = expr.X.copy()
    x[1, 1] = 2.5
    expr.X = sp.csr_matrix(x)
    m, e = write_pair(tmp_path, expr=expr)
    code, err = run_validate(capsys, tmp_path, m, e)
    assert_one_line(code, err, "non-integer")


def test_pair_key_absent(tmp_path, capsys):
    _, expr = tiny_pair()
    expr.obs = expr.obs.drop(columns="Sample_ID")
    m, e = write_pair(tmp_path, expr=expr)
    code, err = run_validate(capsys, tmp_path, m, e)
    assert_one_line(code, err, "Sample_ID", "expression", "--pair-key")


def test_no_shared_group(tmp_path, capsys):
    _, expr = tiny_pair()
    expr.obs["Sample_ID"] = "other_" + expr.obs["Sample_ID"].astype(str)
    m, e = write_pair(tmp_path, expr=expr)
    code, err = run_validate(capsys, tmp_path, m, e)
    assert_one_line(code, err, "no pairing group is shared")


def test_duplicated_ids_within_file(tmp_path, capsys):
    morph, _ = tiny_pair()
    morph.obs_names = ["same"] * morph.n_obs
    m, e = write_pair(tmp_path, morph=morph)
    code, err = run_validate(capsys, tmp_path, m, e)
    assert_one_line(code, err, "duplicated cell id")


def test_identical_ids_across_modalities_allowed(tmp_path, capsys):
    morph, expr = tiny_pair()
    expr.obs_names = morph.obs_names
    m, e = write_pair(tmp_path, morph=morph, expr=expr)
    main(["validate", "--morphology", str(m), "--expression", str(e)])
    assert "shared groups" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--split", "replicate", "--test", "7"], "unknown replicate value(s) ['7']"),
        (["--split", "treatment", "--test", "T9"], "unknown treatment value(s) ['T9']"),
        (["--split", "replicate", "--test", "3", "--calib", "3"], "both --calib and --test"),
        (["--test", "3"], "--split none"),
        (["--split", "bogus"], "unknown --split"),
    ],
)
def test_unknown_split_values(tmp_path, tiny_files, capsys, flags, needle):
    m, e = tiny_files
    code, err = run_validate(capsys, tmp_path, m, e, *flags)
    assert_one_line(code, err, needle)


def test_replicate_split_refuses_groups_spanning_replicates(tmp_path, tiny_files, capsys):
    m, e = tiny_files
    code, err = run_validate(
        capsys, tmp_path, m, e, "--pair-key", "Treatment", "--split", "replicate", "--test", "3"
    )
    assert_one_line(code, err, "span several replicates", "--pair-key Sample_ID")


def test_unknown_control(tmp_path, tiny_files, capsys):
    m, e = tiny_files
    code, err = run_validate(capsys, tmp_path, m, e, "--control", "PBS")
    assert_one_line(code, err, "control 'PBS'")


def test_platemap_missing_wells(tmp_path, capsys):
    morph, expr = tiny_pair()
    morph.obs["Metadata_Well"] = "A01"
    m, e = write_pair(tmp_path, morph=morph, expr=expr)
    pm = tmp_path / "pm.tsv"
    pd.DataFrame({"well_position": ["B02"], "broad_sample": ["x"]}).to_csv(
        pm, sep="\t", index=False
    )
    code, err = run_validate(capsys, tmp_path, m, e, "--platemap", str(pm))
    assert_one_line(code, err, "not in the plate map")
