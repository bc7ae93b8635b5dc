"""Data-parallel training with torchrun (2 CPU processes, gloo) equals one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process(tiny_files, tmp_path):
    morph, expr = tiny_files
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, str(SCRIPT), str(morph), str(expr), str(one)], check=True,
                   env=env, capture_output=True)  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(SCRIPT), str(morph),
         str(expr), str(two)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    # what torch.distributed reported in each process: both joined one group of two
    single = json.loads((tmp_path / "one.ranksingle.json").read_text())
    assert single == {"initialized": False}
    seen = {int(f.name.split(".rank")[1].removesuffix(".json")): json.loads(f.read_text())
            for f in tmp_path.glob("two.rank*.json")}  # fmt: skip
    assert sorted(seen) == [0, 1], seen
    for rank, s in seen.items():
        assert s == {"initialized": True, "rank": rank, "world_size": 2, "backend": "gloo"}, s
    a = load_file(one / "weights.safetensors")
    b = load_file(two / "weights.safetensors")
    assert a.keys() == b.keys()
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
    norm = sum(float((a[k] ** 2).sum()) for k in a)
    assert np.sqrt(diff / norm) < 1e-5  # measured 1.9e-7 (summation order of the all-reduce)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-5  # measured 4e-7
    assert not (two.parent / ".two.checkpoint").exists()  # rank 0 cleaned up; nobody else wrote
