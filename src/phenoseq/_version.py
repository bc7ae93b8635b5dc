"""The package version (one place; importing it loads nothing else)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("phenoseq")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
