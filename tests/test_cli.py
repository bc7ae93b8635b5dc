"""The command line as a whole: --version, one way of showing defaults (taken from the configs),
no type placeholders on on/off flags, --quiet and --device where they apply, one meaning per
flag name."""

from __future__ import annotations

import re

import pytest

from phenoseq import __version__
from phenoseq.cli import app, main
from phenoseq.config import SampleConfig, TrainConfig, UncertaintyConfig

COMMANDS = ("simulate", "featurize", "embed", "validate", "train", "generate", "calibrate",
            "suggest", "evaluate", "report", "demo")  # fmt: skip


def _help(capsys, command: str) -> str:
    main([command, "--help"])
    return capsys.readouterr().out


def test_version(capsys):
    main(["--version"])
    assert capsys.readouterr().out.strip() == f"phenoseq {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_defaults_one_way_and_no_bool_placeholders(capsys, command):
    text = _help(capsys, command)
    assert "<bool>" not in text and "[default: (" not in text
    assert "default:" not in text.replace("[default:", ""), "defaults are shown as [default: X]"


def test_defaults_shown_are_the_configs(capsys):
    flat = " ".join(_help(capsys, "train").split())
    assert f"Diffusion training steps. [default: {TrainConfig().max_steps}]" in flat
    flat = " ".join(_help(capsys, "generate").split())
    assert f"Sampler steps. [default: {SampleConfig().n_steps}]" in flat
    assert f"[default: {','.join(map(str, UncertaintyConfig().levels))}]" in flat


def test_quiet_and_device_where_they_apply(capsys):
    for command in ("simulate", "featurize", "embed", "train", "generate", "calibrate",
                    "evaluate", "demo"):  # fmt: skip
        assert "--quiet" in _help(capsys, command), command
    for command in ("train", "generate", "calibrate", "evaluate"):
        assert "--device" in _help(capsys, command), command


def test_one_meaning_per_flag_name(capsys):
    helps = {c: " ".join(_help(capsys, c).split()) for c in COMMANDS}
    meanings: dict[str, set[str]] = {}
    for text in helps.values():
        for flag, rest in re.findall(r"(--[a-z-]+)(?: <\w+>)? ([A-Z][^.]*)", text):
            meanings.setdefault(flag, set()).add(rest.split(" [")[0][:25])
    # --features is a column list wherever it appears (featurize's set is --feature-set)
    assert all("Feature columns" in m for m in meanings.get("--features", {"Feature columns"}))
    assert "--feature-set" in helps["featurize"] and "--features " not in helps["featurize"]
    assert "--n-top-genes" not in helps["train"]  # scanpy's name, another meaning: renamed
    assert "[default: Treatment]" in helps["embed"]  # as train's label default


def test_the_app_has_every_stage():
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert names == set(COMMANDS)
