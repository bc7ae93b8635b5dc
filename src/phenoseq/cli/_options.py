"""The flags the commands share, built from the typed configs of :mod:`phenoseq.config`.

- :func:`with_inputs`: the input flags of every command that reads paired data (one
  :class:`~phenoseq.config.InputConfig` for the command);
- :func:`with_settings`: one flag per chosen config field, its default taken from the config and
  shown as ``[default: X]``, plus ``--config FILE.toml``; the command receives the built configs
  (file first, flags over it).

Every flag a command declares itself is built with :func:`opt`, so defaults read the same
everywhere.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import _keys as K
from ..config import (
    SECTIONS,
    InputConfig,
    SplitConfig,
    default,
    override,
    read_config_file,
)


def shown(value: Any) -> str | None:
    """How a default reads in ``--help`` (None: not shown)."""
    if value is None or value == ():
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def opt(*flags: str, help: str, default_value: Any = None, **kw) -> Any:
    """A ``typer.Option`` whose default (when there is one) is shown as ``[default: X]``."""
    text = shown(default_value)
    full = help if text is None else f"{help} [default: {text}]"
    return typer.Option(*flags, help=full, show_default=False, **kw)


def csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


# ----------------------------------------------------------------------------------------------
# input flags (docs/data-contract.md)
# ----------------------------------------------------------------------------------------------

_S = SplitConfig
INPUT_FLAGS: dict[str, tuple[Any, Any]] = {  # name -> (annotation, default)
    "morphology": (Path, opt("--morphology", help="Morphology: .h5ad, CellProfiler/pycytominer "
                   "table (csv, csv.gz, parquet, SQLite) or a folder of *_Cells.csv ... files.")),
    "expression": (Path, opt("--expression", help="Expression .h5ad (or .gct for continuous "
                   "profiles).")),
    "morphology_obsm": (str | None, opt("--morphology-obsm", help="Use this obsm key of a "
                        "morphology .h5ad as features.")),
    "features": (str | None, opt("--features", help="Feature columns: COL1,COL2,... or @file.",
                 default_value="inferred by Cells_/Cytoplasm_/Nuclei_ prefix")),
    "platemap": (Path | None, opt("--platemap", help="Plate map TSV joined to the morphology by "
                 "well.")),
    "layer": (str | None, opt("--layer", help="Read expression values from this layer instead "
              "of X.")),
    "expression_obsm": (str | None, opt("--expression-obsm", help="Use this obsm embedding "
                        "(e.g. scGPT) as the target.")),
    "expression_kind": (str | None, opt("--expression-kind", help="counts (raw integer counts) "
                        "or continuous (never auto-detected).",
                        default_value=default(InputConfig, "expression_kind"))),
    "backed": (bool | None, opt("--backed/--in-memory", help="Keep expression X on disk and "
               "read it in blocks.", default_value="backed when the dense X exceeds 4 GiB")),
    "pair_key": (str | None, opt("--pair-key", help="Column(s) pairing the modalities, "
                 "comma-separated; MORPH_COL=EXPR_COL for a column the two files name "
                 "differently.", default_value=default(InputConfig, "pair_key"))),
    "label_key": (str | None, opt("--label-key", help="Treatment label column (MORPH_COL="
                  "EXPR_COL if named differently).", default_value=f"{K.TREATMENT} if both "
                  "files have it, else the first pair column")),
    "control": (str | None, opt("--control", help="Label of the control treatment, e.g. "
                "DMSO.")),
    "split": (str | None, opt("--split", help="none | replicate | treatment.",
              default_value=default(_S, "kind"))),
    "replicate_key": (str | None, opt("--replicate-key", help="Replicate column for --split "
                      "replicate (MORPH_COL=EXPR_COL if named differently).",
                      default_value=default(_S, "replicate_key"))),
    "val": (str | None, opt("--val", help="Validation replicates or treatments, "
            "comma-separated.")),
    "calib": (str | None, opt("--calib", help="Calibration replicates or treatments, "
              "comma-separated.")),
    "test": (str | None, opt("--test", help="Test replicates or treatments, comma-separated.")),
}  # fmt: skip


def input_config(**flags: Any) -> InputConfig:
    """The :class:`InputConfig` of the input flags (None: the config's default)."""
    from ..data.features import parse_feature_list  # the data package loads AnnData

    held_out = {r: csv(flags.pop(r)) or None for r in ("val", "calib", "test")}
    split = override(SplitConfig(), kind=flags.pop("split"),
                     replicate_key=flags.pop("replicate_key"), **held_out)  # fmt: skip
    feats = parse_feature_list(flags.pop("features"))
    pair_key = csv(flags.pop("pair_key")) or None
    given = {k: v for k, v in flags.items() if v is not None}
    return InputConfig(
        **given,
        features=tuple(feats) if feats is not None else None,
        pair_key=pair_key or default(InputConfig, "pair_key"),
        split=split,
    )


def _param(name: str, annotation: Any, option: Any, value: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value,
                             annotation=Annotated[annotation, option])  # fmt: skip


def _with_signature(command: Callable, sig: inspect.Signature) -> Callable:
    """Give a wrapper the signature typer reads (resolved annotations: the wrapped function's
    names live in another module)."""
    command.__signature__ = sig
    command.__annotations__ = {p.name: p.annotation for p in sig.parameters.values()}
    del command.__wrapped__  # typer must see the new signature, not the wrapped one
    return command


def with_inputs(fn: Callable) -> Callable:
    """Give a command the input flags; it receives them as one ``inputs: InputConfig``."""
    required = {"morphology", "expression"}
    extra = [_param(n, ann, o, inspect.Parameter.empty if n in required else None)
             for n, (ann, o) in INPUT_FLAGS.items()]  # fmt: skip
    own = inspect.signature(fn, eval_str=True).parameters
    params = [p for p in own.values() if p.name != "inputs"]

    @functools.wraps(fn)
    def command(**kwargs):
        flags = {n: kwargs.pop(n) for n in INPUT_FLAGS}
        return fn(inputs=input_config(**flags), **kwargs)

    return _with_signature(
        command,
        inspect.Signature(extra + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]),
    )


# ----------------------------------------------------------------------------------------------
# settings flags: one per config field
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """A flag for one field of one config section (``model``, ``train``, ``sample``, ...)."""

    section: str
    field: str
    help: str
    flag: str | None = None  # None: --field-name
    parse: Callable[[str], Any] | None = None  # the flag is then a string
    shown: str | None = None  # how the default reads where the config's is None

    @property
    def name(self) -> str:
        return f"{self.section}__{self.field}"

    def parameter(self) -> inspect.Parameter:
        cls = SECTIONS[self.section]
        hint = typing.get_type_hints(cls)[self.field]
        flag = self.flag or "--" + self.field.replace("_", "-")
        base = str if self.parse else _plain(hint)
        if base is bool:
            flag = f"{flag}/--no-{flag[2:]}"
        option = opt(flag, help=self.help, default_value=self.shown or default(cls, self.field))
        return _param(self.name, base | None, option)


def _plain(hint: Any) -> type:
    """``int`` of ``int | None`` (flags take one plain type; a Literal becomes ``str``)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return str
    if args and typing.get_origin(hint) is not typing.Literal:
        return _plain(args[0])
    return hint


CONFIG_FILE = _param("config_file", Path | None, opt(
    "--config", help="TOML file of settings: tables [model], [mean_head], [diffusion], "
    "[train], [sample], [uncertainty]; flags override it."))  # fmt: skip


def with_settings(*settings: Setting):
    """Give a command a flag per setting and ``--config``; it receives ``settings``: section ->
    config (the file's, else the default, with the given flags applied)."""
    sections = sorted({s.section for s in settings})

    def decorate(fn: Callable) -> Callable:
        extra = [s.parameter() for s in settings] + [CONFIG_FILE]
        sig = inspect.signature(fn, eval_str=True)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()
               if p.name != "settings"]  # fmt: skip

        @functools.wraps(fn)
        def command(**kwargs):
            from_file = read_config_file(kwargs.pop("config_file"))
            out = {}
            for sec in sections:
                given = {s.field: _value(s, kwargs.pop(s.name)) for s in settings
                         if s.section == sec}  # fmt: skip
                out[sec] = override(from_file.get(sec, SECTIONS[sec]()), **given)
            return fn(settings=out, **kwargs)

        return _with_signature(command, sig.replace(parameters=extra + own))

    return decorate


def _value(setting: Setting, value: Any) -> Any:
    if value is None or setting.parse is None:
        return value
    return setting.parse(value)
