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
    backed: bool | None = None  # expression X on disk (None: when the dense X exceeds 4 GiB)
    pair_key: tuple[str, ...] = (K.SAMPLE_ID,)
    label_key: str | None = None
    control: str | None = None
    split: SplitConfig = field(default_factory=SplitConfig)

    @classmethod
    def from_dict(cls, d: dict) -> InputConfig:
        """The inverse of :meth:`to_dict` (extra keys, e.g. a recorded sha256, are ignored)."""
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("morphology", "expression", "platemap"):
            if d.get(k) is not None:
                d[k] = Path(d[k])
        for k in ("features", "pair_key"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        if isinstance(d.get("split"), dict):
            s = dict(d["split"])
            d["split"] = SplitConfig(**{k: tuple(v) if isinstance(v, list) else v
                                        for k, v in s.items()})  # fmt: skip
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
