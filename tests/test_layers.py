"""The package's layers hold: a lower layer never imports a higher one, and the world needs no torch.

``RANK`` below is the one statement of the layers; ``utils/__init__.py``'s docstring lists them in its order (checked
here) and README's map follows it. A module may import from its own layer's package and from lower layers; two
packages of the same rank may not import each other.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UTILS = ROOT / "utils"
BASE = {"runtime", "checkpoint", "plotting", "report", "numerics", "stats"}
RANK = {"world": 0, "base": 1, "lm": 2, "sft": 3, "reward_models": 4, "rl": 5, "prefs": 5, "search": 6,
        "exercises": 7, "tools": 8}


def _layer(parts: list[str]) -> str:
    """``["utils", "lm", "models"]`` -> ``"lm"``; a top-level helper -> ``"base"``."""
    name = parts[1] if len(parts) > 1 else ""
    if name in BASE:
        return "base"
    if name not in RANK:
        raise AssertionError(f"utils.{name} belongs to no layer: add it to a subpackage or to the map in this test")
    return name


def _imports(path: Path) -> list[tuple[int, list[str]]]:
    """``(line, ["utils", ...])`` of every import of the course's own code in a module (relative ones resolved)."""
    here = list(path.relative_to(ROOT).with_suffix("").parts)
    package = here[:-1]  # the package a relative import starts from (for __init__.py: its own package)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [a.name] for a in node.names] if not node.module else [target]
            else:
                names = [node.module.split(".")] if node.module and node.module.split(".")[0] == "utils" else []
            out += [(node.lineno, t) for t in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")) for a in node.names if a.name.split(".")[0] == "utils"]
    return out


def _docstring_layers() -> list[set[str]]:
    """The packages on each line of ``utils/__init__.py``'s map, in order: ``"rl | prefs"`` -> ``{"rl", "prefs"}``."""
    doc = ast.get_docstring(ast.parse((UTILS / "__init__.py").read_text())) or ""
    rows = [line[4:].split("  ")[0] for line in doc.splitlines() if line.startswith("    ") and line[4] != " "]
    return [{name.strip() for name in re.split(r"[,|]", row)} for row in rows]


def test_the_package_docstring_lists_the_layers_in_rank_order():
    ranks = sorted(set(RANK.values()))
    want = [set().union(*(BASE if name == "base" else {name} for name, r in RANK.items() if r == rank)) for rank in ranks]
    assert _docstring_layers() == want, "utils/__init__.py's map of the layers and tests/test_layers.py:RANK disagree"


MODULES = sorted(p for p in UTILS.rglob("*.py") if p != UTILS / "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(UTILS)))
def test_no_module_imports_a_higher_layer(path):
    mine = _layer(list(path.relative_to(ROOT).with_suffix("").parts))
    for line, target in _imports(path):
        if len(target) < 2:
            continue  # `from utils import X` inside utils is caught as utils.X below
        theirs = _layer(target)
        if theirs == mine:
            continue
        assert RANK[theirs] < RANK[mine], (
            f"{path.relative_to(ROOT)}:{line} imports {'.'.join(target)}: layer {mine!r} (rank {RANK[mine]}) may not "
            f"import layer {theirs!r} (rank {RANK[theirs]})")


def test_the_checker_sees_relative_imports():
    found = {".".join(t[:3]) for _, t in _imports(UTILS / "lm" / "generation.py")}
    assert "utils.world" in found and any(t.startswith("utils.lm.logprobs") for t in found)
    with pytest.raises(AssertionError, match="belongs to no layer"):
        _layer(["utils", "misc"])


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_world_imports_no_torch():
    r = _fresh("import sys, utils.world, utils.world.rewards, utils.world.preferences, utils.world.gsm8k; "
               "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers', 'numpy'}))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"the world layer pulled in {r.stdout.strip()}"


def test_every_family_is_registered_in_a_fresh_interpreter():
    """GSM8K scored without anyone importing utils.world.gsm8k first (it used to score 0 silently)."""
    code = """
from utils.world.core import Problem
from utils.world.rewards import outcome_reward
from utils.world.registry import FAMILIES
p = Problem("gsm8k", "What is 70 + 2?", "72", meta={"split": "test"})
print(sorted(FAMILIES), outcome_reward(p, "<think></think><answer>72</answer>"), outcome_reward(p, "<answer>71</answer>"))
"""
    r = _fresh(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["['addition',", "'countdown',", "'gsm8k',", "'strings']", "1.0", "0.0"]
