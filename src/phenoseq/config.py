"""Typed configs shared by the commands; each is stored as JSON with the outputs it produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import _keys as K
from .data.expression import ExpressionKind
from .data.split import SplitConfig


@dataclass(frozen=True)
class InputConfig:
    """Where the two modalities come from and how they pair (the CLI's shared input flags)."""

    morphology: Path
    expression: Path
    morphology_obsm: str | None = None
    features: tuple[str, ...] | None = None
    platemap: Path | None = None
    layer: str | None = None
    expression_obsm: str | None = None
    expression_kind: ExpressionKind = "counts"
    pair_key: tuple[str, ...] = (K.SAMPLE_ID,)
    label_key: str | None = None
    control: str | None = None
    split: SplitConfig = field(default_factory=SplitConfig)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
