"""The package's shape (docs/architecture.md), measured from the source with ``ast``: layers
import only downwards, no cycles, no function-level imports outside the CLI, small modules and
functions. The checker itself is tested on a tiny package that breaks each rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _checker():
    path = Path(__file__).resolve().parents[1] / "bench" / "architecture.py"
    spec = importlib.util.spec_from_file_location("architecture", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def arch():
    return _checker()


def test_the_package_keeps_its_layers(arch):
    m = arch.measure()
    assert m["layer_violations"] == [], "an import runs back up a layer (docs/architecture.md)"
    assert m["import_cycles"] == []
    assert m["function_level_imports"] == []
    assert m["modules_over_500_lines"] == {}
    assert m["function_length_p90"] <= 40
    assert m["cli_command_length_median"] <= 20


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / "phenoseq" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_the_checker_finds_upward_imports_cycles_and_late_imports(arch, tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "",
        "data/__init__.py": "from ..model import thing\n",  # data (tier 1) -> model (tier 4)
        "model/__init__.py": "from ..data import x\n",  # and back: a cycle
        "nn/__init__.py": "def f():\n    from ..data import y\n",  # a function-level import
        "simulate/__init__.py": "from ..imaging import z\n",  # a sibling of the same tier
        "imaging/__init__.py": "",
    })  # fmt: skip
    m = arch.measure(root)
    assert "phenoseq.data -> phenoseq.model" in m["layer_violations"]
    assert "phenoseq.simulate -> phenoseq.imaging" in m["layer_violations"]
    assert ["phenoseq.data", "phenoseq.model"] in m["import_cycles"]
    assert m["function_level_imports"] == ["phenoseq.nn -> phenoseq.data"]


def test_type_checking_imports_do_not_count(arch, tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "",
        "data/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                            "    from ..model import M\n",
        "model/__init__.py": "from ..data import x\n",
    })  # fmt: skip
    m = arch.measure(root)
    assert m["layer_violations"] == [] and m["import_cycles"] == []
