"""The package's shape, measured from the source with ``ast`` only (nothing is imported).

    .venv/bin/python bench/architecture.py            # prints the numbers, exit 1 on a violation

What it measures (docs/architecture.md states the rules; tests/test_architecture.py asserts them):

- **layers**: every module belongs to a tier (``TIERS``); an import may only reach its own
  package or a lower tier. An import that runs back up a layer is listed as a violation.
- **import cycles** between the package's modules (importing ``a.b.c`` also imports the packages
  ``a.b`` and ``a`` first, so those edges count too), through imports anywhere in a module except
  ``if TYPE_CHECKING:`` blocks;
- **function-level imports** of the package's own modules (outside ``cli/``, which may defer
  heavy imports for start-up time);
- **module sizes** (lines) and **function lengths** (lines from ``def`` to the last line, methods
  and nested functions included): p90 overall, median of the CLI's command functions.
"""

from __future__ import annotations

import ast
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "phenoseq"
#: the data flow, bottom to top; a module may import its own package and anything below it
TIERS: tuple[tuple[str, ...], ...] = (
    ("_keys", "_version", "_lazy", "errors", "config", "io", "writers"),
    ("data",),
    ("nn", "simulate", "imaging"),
    ("train",),
    ("model",),
    ("uncertainty",),
    ("evaluate",),
    ("report",),
    ("demo", "cli", "__main__", "__init__"),
)
MAX_MODULE_LINES = 500
CLI = "cli"


@dataclass
class Module:
    name: str  # dotted, e.g. phenoseq.model._io
    path: Path
    lines: int
    imports: list[tuple[str, bool]] = field(default_factory=list)  # (target, inside a function)
    functions: list[tuple[str, int]] = field(default_factory=list)  # (qualified name, lines)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(mod: Module, node: ast.ImportFrom, names: set[str]) -> list[str]:
    """The package modules an ``import from`` statement loads."""
    if node.level:
        base = mod.name.split(".")
        if not mod.path.name == "__init__.py":
            base = base[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith(PACKAGE):
        return []
    subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in names]
    return subs if len(subs) == len(node.names) else [*subs, target]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Visitor(ast.NodeVisitor):
    def __init__(self, mod: Module, names: set[str]):
        self.mod, self.names, self.stack = mod, names, []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack.append(node.name)
        self.mod.functions.append((".".join(self.stack), node.end_lineno - node.lineno + 1))
        self.generic_visit(node)
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        inside = any(not s[0].isupper() for s in self.stack)  # any function on the stack
        for a in node.names:
            if a.name.startswith(PACKAGE):
                self.mod.imports.append((a.name, inside))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        inside = any(not s[0].isupper() for s in self.stack)
        for target in _resolve(self.mod, node, self.names):
            self.mod.imports.append((target, inside))


def read_package(root: Path = ROOT) -> dict[str, Module]:
    paths = sorted((root / PACKAGE).rglob("*.py"))
    names = {module_name(p, root) for p in paths}
    mods = {}
    for p in paths:
        text = p.read_text()
        mod = Module(module_name(p, root), p, len(text.splitlines()))
        _Visitor(mod, names).visit(ast.parse(text))
        mods[mod.name] = mod
    return mods


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def edges(mods: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> modules it loads (its targets and their parent packages), itself excluded."""
    out = {}
    for name, mod in mods.items():
        targets = set()
        for t, _ in mod.imports:
            targets |= {x for x in [t, *_ancestors(t)] if x in mods}
        out[name] = targets - {name, *_ancestors(name)}
    return out


def cycles(mods: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph, index, low, stack, on, out = edges(mods), {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def tier_of(name: str) -> int:
    """The tier of a module: that of its top-level part below ``phenoseq``."""
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for k, tier in enumerate(TIERS):
        if top in tier:
            return k
    raise KeyError(f"{name}: add '{top}' to TIERS in bench/architecture.py")


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(mods: dict[str, Module]) -> list[str]:
    """Imports that reach a higher tier, or a sibling package of the same tier (the base tier
    and the top tier may import within themselves)."""
    out, edge_tiers = [], (0, len(TIERS) - 1)
    for name, mod in mods.items():
        for target, _ in mod.imports:
            if target not in mods or _top(target) == _top(name):
                continue
            t, here = tier_of(target), tier_of(name)
            if t > here or (t == here and here not in edge_tiers):
                out.append(f"{name} -> {target}")
    return sorted(set(out))


def function_level_imports(mods: dict[str, Module]) -> list[str]:
    return sorted({f"{n} -> {t}" for n, m in mods.items() if _top(n) != CLI
                   for t, inside in m.imports if inside})  # fmt: skip


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def measure(root: Path = ROOT) -> dict:
    """Every number the rules of docs/architecture.md are stated in."""
    mods = read_package(root)
    lengths = [n for m in mods.values() for _, n in m.functions]
    cli = [n for name, m in mods.items() if _top(name) == CLI for f, n in m.functions
           if f.count(".") == 0 and not f.startswith("_")]  # fmt: skip
    big = {n: m.lines for n, m in mods.items() if m.lines > MAX_MODULE_LINES}
    return {
        "modules": len(mods),
        "import_cycles": cycles(mods),
        "function_level_imports": function_level_imports(mods),
        "layer_violations": layer_violations(mods),
        "modules_over_500_lines": big,
        "function_length_p90": _percentile(lengths, 0.9),
        "function_length_median": statistics.median(lengths) if lengths else 0,
        "cli_command_length_median": statistics.median(cli) if cli else 0,
        "largest_module": max((m.lines, n) for n, m in mods.items()),
    }


def main() -> int:
    m = measure()
    print(json.dumps(m, indent=1))
    bad = (m["import_cycles"] or m["function_level_imports"] or m["layer_violations"]
           or m["modules_over_500_lines"] or m["function_length_p90"] > 40
           or m["cli_command_length_median"] > 20)  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
