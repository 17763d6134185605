"""The package's rooms and the one direction their imports may point (see ARCHITECTURE.md).

Read from the source, not by importing it: every `import`, `from … import`, every
`importlib.import_module("…")` and `__import__("…")`, and every string that names a module path
(rq accepts a job function by its dotted name, so `"workers.jobs.send"` is an import too).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Bottom to top. A module may import its own room and the rooms below it, never one above.
# Rooms on the same rung (web and workers) may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("tipline", "tipline.errors", "tipline.settings", "tipline.db", "tipline.extensions"),
    ("tipline.models",),
    ("tipline.triage",),
    ("tipline.vault",),
    ("tipline.platform",),
    ("tipline.district",),
    ("tipline.outbox",),
    ("tipline.alerting",),
    ("tipline.intake",),
    ("tipline.staff",),
    ("tipline.web", "tipline.app", "workers"),
    ("tipline.cli", "tipline.__main__"),
]
# Rooms on the top rungs that still may not import each other.
APART = {
    "tipline.web": {"workers"},
    "tipline.app": {"workers"},
    "workers": {"tipline.web", "tipline.app"},
}
DOTTED = re.compile(r"^(tipline|workers)(\.[a-z_][a-z0-9_]*)+$")


def room_of(module: str) -> str:
    """The longest room name that `module` is in."""
    best = ""
    for rung in LAYERS:
        for room in rung:
            if (module == room or module.startswith(room + ".")) and len(room) > len(best):
                best = room
    return best


def rung_of(room: str) -> int:
    return next(i for i, rung in enumerate(LAYERS) if room in rung)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every way `tree` names another module of the project."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from tipline.outbox import messages` names a module
                yield node.lineno, f"{target}.{alias.name}"
        elif isinstance(node, ast.Constant) and DOTTED.match(str(node.value)):
            yield node.lineno, str(node.value)


def violations(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        module = module_name(path)
        here = room_of(module)
        tree = ast.parse(path.read_text(), str(path))
        for line, target in imports(tree, module, path.name == "__init__.py"):
            if not (target == "tipline" or target.startswith(("tipline.", "workers"))):
                continue
            there = room_of(target)
            if not there or there in (here, "tipline"):
                continue
            upward = rung_of(there) > rung_of(here)
            if upward or there in APART.get(here, set()):
                found.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {target}")
    return found


def project_files() -> list[Path]:
    return sorted(
        p
        for top in ("tipline", "workers")
        for p in (ROOT / top).rglob("*.py")
        if "migrations" not in p.parts
    )


def test_every_module_is_in_a_room() -> None:
    assert [module_name(p) for p in project_files() if not room_of(module_name(p))] == []


def test_imports_point_down() -> None:
    assert violations(project_files()) == []


@pytest.mark.parametrize(
    "source",
    [
        "from workers import jobs\n",
        "import workers.jobs\n",
        "from tipline.app import create_app\n",
        "import importlib\nimportlib.import_module('tipline.web.sms.views')\n",
        "__import__('tipline.staff.access')\n",
        "queue.enqueue('workers.jobs.send', '1')\n",
        "from ..intake import tips\n",
    ],
)
def test_an_upward_import_fails(tmp_path: Path, source: str) -> None:
    room = ROOT / "tipline" / "outbox"
    planted = room / "_planted_for_test.py"
    planted.write_text(source)
    try:
        assert violations([planted]) != []
    finally:
        planted.unlink()


def test_a_downward_import_passes() -> None:
    planted = ROOT / "tipline" / "intake" / "_planted_for_test.py"
    planted.write_text("from tipline.outbox import messages\nfrom tipline.vault import crypto\n")
    try:
        assert violations([planted]) == []
    finally:
        planted.unlink()


@pytest.mark.parametrize(
    "package",
    [
        "tipline.triage",
        "tipline.vault",
        "tipline.district",
        "tipline.outbox",
        "tipline.alerting",
        "tipline.intake",
        "tipline.staff",
    ],
)
def test_a_domain_room_loads_without_the_app_or_the_worker(package: str) -> None:
    code = (
        f"import sys, {package}, pkgutil, importlib\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m == 'workers' or m.startswith(('workers.',"
        " 'tipline.app', 'tipline.web', 'tipline.cli')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_triage_loads_no_flask() -> None:
    code = (
        "import sys, tipline.triage\n"
        "heavy = ('flask', 'sqlalchemy', 'workers', 'rq', 'redis')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
