"""The layout holds: imports point down, no import cycle, one definition per public name.

Read from the source (ast), deferred imports inside functions included, so a shortcut that only
runs at call time is caught too.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "consumer_assets"
# Layers from the bottom up: a module imports only its own layer or lower ones.
DOMAIN = ("events", "ingest", "histories", "ml", "storage", "simulation", "serving")
ABOVE_DOMAIN = ("assets", "resources", "automation", "definitions", "cli", "service")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """The modules `path` imports anywhere (absolute names; `from package import module` resolved to the module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES}
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) in DOMAIN))
def test_domain_code_knows_neither_dagster_nor_the_layers_above(module: str) -> None:
    wrong = sorted(
        name
        for name in imports(MODULES[module])
        if name.split(".")[0] in {"dagster", "dagster_aws", "dagster_pyspark"}
        or (name.startswith("consumer_assets.") and layer(name) in ABOVE_DOMAIN)
    )
    assert not wrong, f"{module} imports {wrong}"


def test_assets_do_not_import_automation() -> None:
    wrong = {
        module: sorted(n for n in imports(path) if n.startswith("consumer_assets.automation"))
        for module, path in MODULES.items()
        if layer(module) in {"assets", "resources"}
    }
    assert not {m: names for m, names in wrong.items() if names}


def test_no_import_cycle_deferred_imports_included() -> None:
    graph = {module: {n for n in imports(path) if n in MODULES and n != module} for module, path in MODULES.items()}
    # A package's __init__ importing its own submodules is how a package exposes them, not a cycle.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not (MODULES[module].name == "__init__.py" and t.startswith(module))}
    visiting, done, cycles = set(), set(), []

    def visit(node: str, trail: list[str]) -> None:
        visiting.add(node)
        for target in sorted(graph[node]):
            if target in visiting:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        visiting.discard(node)
        done.add(node)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_each_public_name_is_defined_once() -> None:
    where = collections.defaultdict(list)
    for module, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                names = []
            for name in names:
                if not name.startswith("_"):
                    where[name].append(module)
    twice = {name: modules for name, modules in where.items() if len(modules) > 1}
    assert not twice, twice
