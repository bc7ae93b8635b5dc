"""Atomic outputs: complete or absent, never half-written."""

from __future__ import annotations

import pytest

from phenoseq.io import atomic_path, sha256_file, write_json


def test_atomic_file_replaced_only_on_success(tmp_path):
    target = tmp_path / "a.json"
    write_json({"v": 1}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("crash mid-write")
    assert target.read_text().strip().endswith("}") and '"v": 1' in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_atomic_dir(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(ValueError), atomic_path(target, is_dir=True) as tmp:
        (tmp / "weights").write_text("x")
        raise ValueError
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "weights").write_text("x")
    assert (target / "weights").read_text() == "x"
    with atomic_path(target, is_dir=True) as tmp:  # replacing an existing folder
        (tmp / "other").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["other"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_sha256_file_and_dir(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    d1 = sha256_file(tmp_path)
    (tmp_path / "g").write_bytes(b"")
    assert sha256_file(tmp_path) != d1
