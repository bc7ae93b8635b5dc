"""Atomic outputs: build in a temporary sibling path, rename into place when complete.

Every command that writes uses these, so a failure never leaves a half-written file or folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def readable_by_umask(mode: int = 0o666) -> int:
    """``mode`` as the process umask allows it (what ``open`` would have created)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove the temporary siblings ``.<name>.<pid>.*.tmp*`` of ``final`` left by a killed
    writer (its process no longer runs); a live writer's are kept. Returns the removed paths."""
    removed = []
    for p in final.parent.glob(f".{final.name}.*.tmp*"):
        pid = p.name[len(final.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(p)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(final: str | Path, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it onto ``final`` only if the block succeeds.

    With ``is_dir=True`` the temporary path is an (empty, existing) directory. An existing
    ``final`` is replaced only after the new output is complete. The temporary path is
    ``.<name>.<pid>.<random>.tmp``: one left behind by a killed process is removed by the next
    write to the same ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp",
                                dir=final.parent))  # fmt: skip
    os.chmod(tmp, readable_by_umask(0o777))  # mkdtemp makes 0700; outputs get the usual modes
    if not is_dir:
        tmp.rmdir()
        tmp = tmp.with_name(tmp.name + final.suffix)  # keep the suffix: writers dispatch on it
    try:
        yield tmp
        if final.exists() or final.is_symlink():
            old = final.with_name(f".{final.name}.old")
            _remove(old)
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def write_h5ad(adata: Any, path: str | Path) -> Path:
    """Write an AnnData atomically (compressed)."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
    return Path(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _strict(obj: Any) -> Any:
    """``obj`` with NaN/inf floats (which JSON cannot hold) replaced by ``None``."""
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [_strict(v) for v in obj]
    if isinstance(obj, float | np.floating) and not np.isfinite(obj):
        return None
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """Write strict JSON atomically (numpy scalars/arrays and paths converted, NaN -> null)."""
    text = json.dumps(_strict(obj), indent=2, default=_json_default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file or, for a folder, of its files' names and contents in sorted order."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()
