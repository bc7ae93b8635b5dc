"""Every typed setting of the commands, in one place: inputs, split, model, diffusion, training,
sampling and uncertainty.

Each is a frozen dataclass with ``Literal`` types for closed choices. The CLI takes its defaults
from here (no restated numbers), ``--config FILE.toml`` fills fields from a file (one TOML table
per config, e.g. ``[train]``), and flags override single fields. The settings used are written
as JSON into the model directory and into ``uns['phenoseq']`` of every output.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from . import _keys as K
from .errors import InputError

ExpressionKind = Literal["counts", "continuous"]  # of an input file (embedding: via obsm)
SplitKind = Literal["none", "replicate", "treatment"]
PredictionType = Literal["epsilon", "v_prediction", "sample"]
Precision = Literal["auto", "fp32", "bf16"]
MeanHeadKind = Literal["mixture", "mean", "krr", "none"]
ConditionKind = Literal["group", "set"]
#: the default interval levels of calibration and summaries
LEVELS = (0.5, 0.8, 0.9, 0.95)

C = TypeVar("C")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _choices(hint: Any) -> tuple | None:
    """The allowed values of a ``Literal`` (or optional ``Literal``) field type, else None."""
    if get_origin(hint) is Literal:
        return get_args(hint)
    if get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _choices(inner[0]) if len(inner) == 1 else None
    return None


class Checked:
    """Mixin of every config: a value outside a ``Literal`` field's choices is an
    :class:`InputError` naming the setting and its choices, when the config is built."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            allowed, value = _choices(_hints(type(self))[f.name]), getattr(self, f.name)
            if allowed is not None and value is not None and value not in allowed:
                flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
                raise InputError(f"unknown {flag} '{value}'.", f"use {one_of(allowed)}")


def one_of(choices: Any) -> str:
    """``a, b or c``."""
    names = [str(c) for c in choices]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


@dataclass(frozen=True)
class SplitConfig(Checked):
    """How to split pairing groups (``--split``, ``--replicate-key``, ``--val/--calib/--test``).

    ``val``/``calib``/``test`` hold replicate values (``kind="replicate"``) or treatment labels
    (``kind="treatment"``); values are compared as strings.
    """

    kind: SplitKind = field(default="none", metadata={"flag": "--split"})
    replicate_key: str = K.REPLICATE
    val: tuple[str, ...] = ()
    calib: tuple[str, ...] = ()
    test: tuple[str, ...] = ()

    def held_out(self) -> dict[str, tuple[str, ...]]:
        return {"val": self.val, "calib": self.calib, "test": self.test}


@dataclass(frozen=True)
class InputConfig(Checked):
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
        return from_dict(cls, {k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return to_dict(self)


@dataclass(frozen=True)
class DiffusionConfig(Checked):
    """The diffusion objective: schedule length, what the denoiser predicts, condition dropout
    (which trains the unconditional branch used by classifier-free guidance)."""

    prediction_type: PredictionType = "v_prediction"
    n_train_timesteps: int = 1000
    cond_drop_prob: float = 0.1


@dataclass(frozen=True)
class MeanHeadConfig(Checked):
    """The closed-form mean head (docs/model.md): ``mixture`` generates each cell around the
    training mean of a treatment drawn from the calibrated posterior (or around kernel ridge's
    interpolation for a new compound); ``mean`` around the posterior-weighted mean; ``krr`` around
    kernel ridge alone; ``none`` has no head (the diffusion generates the cells directly)."""

    kind: MeanHeadKind = "mixture"
    temperature: float = 8.0  # divides the posterior's log-likelihoods
    p_new: float = 0.05  # prior of the "new compound" class
    noise_scale: float = 1.0  # per-cell noise of the new component, x kernel ridge's variance
    length_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # x the median well distance
    alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class ModelConfig(Checked):
    """Every constructor argument of the networks, and what registration keeps of the data."""

    n_latent: int = 64
    ae_hidden: int = 256
    ae_layers: int = 2
    ae_dropout: float = 0.1
    d_model: int = 128
    cond_layers: int = 2
    cond_heads: int = 4
    n_tokens: int = 8
    width: int = 256
    depth: int = 3
    use_cross_attention: bool = False
    n_variable_genes: int | None = None
    # morphology normalisation: z-score against the control cells of each batch (this obs
    # column); "auto" = the split's replicate column when every batch has control cells
    batch_key: str | None = "auto"
    # what the diffusion is conditioned on: "group" = the well (all its cells' mean
    # morphology, and the mean head's latent mean), "set" = a random set of set_size cells
    condition: ConditionKind = "group"
    residual: bool = True  # generate each cell's deviation from the mean head's mean (if any)
    max_condition_cells: int = 4096  # cells of a well averaged for its condition (random)
    mean_head: MeanHeadConfig = field(default_factory=MeanHeadConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Optimisation settings (CLI: ``--max-steps``, ``--ae-steps``, ``--batch-size`` ...)."""

    batch_size: int = 256
    set_size: int = 16
    targets_per_set: int = 4  # expression cells supervised per sampled morphology set
    lr: float = 1e-3
    ae_lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    ae_steps: int = 1500
    max_steps: int = 3000  # diffusion steps
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    eval_every: int = 250
    checkpoint_every: int = 500
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (auto: this rank's GPU when visible)
    precision: Precision = "auto"  # auto: bf16 autocast on a GPU that has it, else fp32


@dataclass(frozen=True)
class SampleConfig(Checked):
    """How cells are generated: how many per group, the sampler and its steps, guidance.

    ``sampler`` is a key of :data:`phenoseq.nn.SAMPLERS` (an open registry, so a string).
    ``set_size``: morphology cells each generated cell is conditioned on (None: the training N).
    """

    n_cells: int = 100
    n_steps: int = 20
    guidance: float = 1.0
    sampler: str = "dpmpp_2m"
    seed: int = 0
    set_size: int | None = None
    batch_size: int = 1024


@dataclass(frozen=True)
class UncertaintyConfig(Checked):
    """Draws behind the per-group summary and its calibration: ``n_draws`` pseudo-bulks of
    ``n_cells_per_draw`` generated cells per group, interval ``levels``, and the confidence
    below which a group is flagged out-of-distribution."""

    n_draws: int = 20
    n_cells_per_draw: int = 50
    levels: tuple[float, ...] = LEVELS
    ood_threshold: float = 0.05


#: the TOML table of every config a ``--config`` file may hold
SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "mean_head": MeanHeadConfig,
    "diffusion": DiffusionConfig,
    "train": TrainConfig,
    "sample": SampleConfig,
    "uncertainty": UncertaintyConfig,
}


# ----------------------------------------------------------------------------------------------
# dict <-> config, with the Literal choices checked
# ----------------------------------------------------------------------------------------------


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-able dict of a config (paths as strings, tuples as lists, nested configs)."""

    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(asdict(config))


def _coerce(hint: Any, value: Any) -> Any:
    """``value`` as the field type ``hint`` wants it (nested config, tuple, Path, Literal)."""
    origin, args = get_origin(hint), get_args(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value) if len(inner) == 1 else value
    if is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value)
    if origin is tuple:
        return tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if hint is Path:
        return Path(value)
    return value


def from_dict(cls: type[C], values: dict[str, Any], where: str = "") -> C:
    """Build config ``cls`` from a (JSON / TOML) dict; an unknown key is an error naming it."""
    hints, known = _hints(cls), {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {cls.__name__} setting(s) {unknown}{where}.",
                         f"use {sorted(known)}")  # fmt: skip
    return cls(**{k: _coerce(hints[k], v) for k, v in values.items()})


def override(config: C, **changes: Any) -> C:
    """``config`` with the fields in ``changes`` that are not None replaced (flags over file)."""
    given = {k: v for k, v in changes.items() if v is not None}
    if not given:
        return config
    return from_dict(type(config), to_dict(config) | given)


def default(cls: type, name: str) -> Any:
    """The default value of field ``name`` of config ``cls`` (what the CLI shows)."""
    f = cls.__dataclass_fields__[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def parse_levels(text: str | None) -> tuple[float, ...]:
    """``"0.5,0.8,0.9,0.95"`` -> levels, each in (0, 1)."""
    if not text:
        return LEVELS
    try:
        levels = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise InputError(f"--levels '{text}' is not a list of numbers.",
                         "write e.g. 0.5,0.8,0.9,0.95") from exc  # fmt: skip
    if not levels or not all(0 < lv < 1 for lv in levels):
        raise InputError(f"--levels {levels} must lie strictly between 0 and 1.",
                         "write e.g. 0.5,0.8,0.9,0.95")  # fmt: skip
    return levels


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------


def read_settings(path: str | Path) -> dict:
    """A settings file as a dict: TOML, or JSON for a ``.json`` suffix."""
    path = Path(path)
    if not path.is_file():
        raise InputError("does not exist.", "pass an existing TOML or JSON file", path)
    text = path.read_text()
    try:
        if path.suffix == ".json":
            return json.loads(text)
        try:
            import tomllib
        except ImportError as exc:  # Python 3.10
            raise InputError("TOML configs need Python 3.11 or newer.", "use a .json config",
                             path) from exc  # fmt: skip
        return tomllib.loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise InputError(f"is not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({exc}).",
                         "fix the file", path) from exc  # fmt: skip


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """The configs of a ``--config`` file: section name -> config (only the tables it has).

    ``[diffusion]`` and ``[mean_head]`` are folded into the model config's fields of those names;
    an unknown table or key is an error naming it.
    """
    if path is None:
        return {}
    doc = read_settings(path)
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise InputError(f"unknown table(s) {unknown}.", f"use {sorted(SECTIONS)}", path)
    where = f" in [{{}}] of {path}"
    nested = ("diffusion", "mean_head")  # fields of the model config
    out = {name: from_dict(SECTIONS[name], table, where.format(name))
           for name, table in doc.items() if name not in nested}  # fmt: skip
    for name in (n for n in nested if n in doc):
        part = from_dict(SECTIONS[name], doc[name], where.format(name))
        out["model"] = dataclasses.replace(out.get("model", ModelConfig()), **{name: part})
    return out
