"""Leak-free splits of pairing groups by replicate or by treatment, saved with every output."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import pandas as pd

from ..config import SplitConfig
from ..errors import InputError

HELD_OUT = ("val", "calib", "test")


@dataclass
class Split:
    """The role (train/val/calib/test) of every pairing group, and how it was decided."""

    config: SplitConfig
    roles: dict[str, str] = field(default_factory=dict)  # group -> role
    labels: dict[str, str] = field(default_factory=dict)  # group -> treatment label

    def groups(self, role: str) -> list[str]:
        return [g for g, r in self.roles.items() if r == role]

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "roles": self.roles, "labels": self.labels}

    @classmethod
    def from_dict(cls, d: Mapping) -> Split:
        cfg = dict(d["config"])
        for k in HELD_OUT:
            cfg[k] = tuple(cfg.get(k, ()))
        return cls(SplitConfig(**cfg), dict(d["roles"]), dict(d.get("labels", {})))

    def check(self) -> None:
        """Re-check the split: no held-out group (or, by treatment, label) is also in training."""
        train = set(self.groups("train"))
        for role in HELD_OUT:
            leaked = sorted(set(self.groups(role)) & train)
            if leaked:
                raise InputError(f"{role} group(s) {leaked[:3]} are also training groups.")
        if self.config.kind == "treatment":
            train_labels = {self.labels.get(g) for g in train}
            for role in HELD_OUT:
                leaked = sorted({self.labels.get(g) for g in self.groups(role)} & train_labels)
                if leaked:
                    raise InputError(
                        f"{role} treatment(s) {leaked[:3]} also appear in training groups.",
                        "hold out every group of those treatments",
                    )

    def check_held_out(self, groups: Iterable[str], role: str = "test") -> None:
        """Refuse evaluation groups that were used for training (a test leak is an error)."""
        leaked = sorted(set(map(str, groups)) & set(self.groups("train")))
        if leaked:
            raise InputError(
                f"{len(leaked)} {role} pairing group(s) were in training, e.g. {leaked[:3]}.",
                "evaluate on held-out groups only (a seen treatment in a new replicate is fine)",
            )


def _check_values(given: Mapping[str, Sequence[str]], known: set[str], what: str) -> None:
    seen: dict[str, str] = {}
    for role, values in given.items():
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"unknown {what} value(s) {unknown} for --{role}; known: {sorted(known)[:12]}.",
                f"pass {what} values present in the data",
            )
        for v in values:
            if v in seen:
                raise InputError(f"{what} '{v}' is given to both --{seen[v]} and --{role}.",
                                 f"pass '{v}' to --{seen[v]} or to --{role}, not both")  # fmt: skip
            seen[v] = role


def _group_replicate(obs_list: Sequence[pd.DataFrame], group_key: str, rep_key: str) -> pd.Series:
    frames = [o[[group_key, rep_key]].astype(str) for o in obs_list if rep_key in o.columns]
    if not frames:
        raise InputError(
            f"--split replicate needs a '{rep_key}' column, found in neither modality.",
            "pass --replicate-key COL naming the replicate column",
        )
    both = pd.concat(frames).drop_duplicates()
    spans = both.groupby(group_key)[rep_key].nunique()
    if (spans > 1).any():
        bad = spans[spans > 1].index[:3].tolist()
        raise InputError(
            f"pairing group(s) {bad} span several replicates, so a replicate split would leak.",
            "pair on a key that includes the replicate (e.g. --pair-key Sample_ID, or "
            "--pair-key Treatment,Replicate)",
        )
    return both.set_index(group_key)[rep_key]


def make_split(
    groups: pd.DataFrame, obs_list: Sequence[pd.DataFrame], group_key: str, config: SplitConfig
) -> Split:
    """Assign a role to every pairing group.

    Parameters
    ----------
    groups
        One row per group (index: group id) with a ``label`` column.
    obs_list
        The ``obs`` of each modality, with the group column ``group_key`` (for replicate lookup).
    """
    labels = groups["label"].astype(str).to_dict()
    given = {r: tuple(map(str, v)) for r, v in config.held_out().items() if v}
    if config.kind == "none":
        if given:
            raise InputError(
                f"--{next(iter(given))} given with --split none.", "add --split replicate|treatment"
            )
        return Split(config, {g: "train" for g in groups.index}, labels)
    if config.kind == "replicate":
        rep = _group_replicate(obs_list, group_key, config.replicate_key)
        _check_values(given, set(rep), "replicate")
        key = rep.reindex(groups.index).astype(str)
    elif config.kind == "treatment":
        _check_values(given, set(labels.values()), "treatment")
        key = pd.Series(labels)
    else:
        raise InputError(f"unknown split '{config.kind}'.", "use none, replicate or treatment")
    role_of = {v: r for r, vs in given.items() for v in vs}
    split = Split(config, {g: role_of.get(key[g], "train") for g in groups.index}, labels)
    split.check()
    return split
