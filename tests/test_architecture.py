"""docs/architecture.md's package map is the code's: imports point the way it says, the modules it
calls torch-free import with torch absent, and functions stay short enough to read."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

FOLDERS = {"synthscape": "synthscape", "core": "synthscape.core", "domains": "synthscape.domains",
           "exports": "synthscape.exports"}
HEAVY = ("torch", "monai", "safetensors", "onnx", "opacus")  # the [train] extra; the edge install has none
MAX_FUNCTION_LINES = 60
LONG_OK = "# long:"  # on the def line or the one above: why this function is better whole


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``__init__`` as its package's name)."""
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def package_of(module: str) -> str:
    return module if module in PACKAGES else module.rpartition(".")[0]


def read_map() -> dict[str, dict]:
    """The table of docs/architecture.md: package -> {"may": set | None (everything), "free": set}."""
    rows = {}
    for line in (REPO / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`synthscape"):
            continue
        package = cells[0].strip("`")
        may = None if cells[2] == "everything" else (
            set() if cells[2] == "nothing" else {"synthscape." + c for c in re.findall(r"`([\w.]+)`", cells[2])})
        own = {m for m in MODULES if package_of(m) == package}
        named = {f"{package}.{n}" for n in re.findall(r"`(\w+)`", cells[3])}
        free = {"all": own, "none": set()}.get(cells[3], own - named if cells[3].startswith("all but") else named)
        rows[package] = {"may": may, "free": free - {f"{package}.__main__"}}
    return rows


MAP = read_map()


def imported(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, anywhere in it (a lazy import inside a function counts too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [(node.lineno, node.module)]
            names += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if f"{node.module}.{a.name}" in MODULES]
    return names


def test_the_map_covers_every_package():
    assert set(MAP) == PACKAGES, f"docs/architecture.md has no row for {PACKAGES - set(MAP)}, or a stale one for {set(MAP) - PACKAGES}"
    assert MAP["synthscape.core.schema"]["may"] == {"synthscape.core"}  # the table was read, not guessed
    assert "synthscape.exports.runtime" in MAP["synthscape.exports"]["free"]


@pytest.mark.parametrize("package", sorted(MAP))
def test_imports_point_the_way_the_map_says(package):
    allowed = MAP[package]["may"]
    wrong = []
    for module, path in MODULES.items():
        if package_of(module) != package or allowed is None:
            continue
        for line, name in imported(path):
            if name.startswith("synthscape.") and name in MODULES and package_of(name) not in allowed | {package}:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not wrong, f"{package} may import only {sorted(allowed)}: " + "; ".join(wrong)


def test_the_torch_free_modules_import_with_torch_absent():
    free = sorted(m for row in MAP.values() for m in row["free"])
    assert {"synthscape", "synthscape.exports.runtime", "synthscape.domains.lung_ct.domain",
            "synthscape.domains.driving.domain", "synthscape.core.evaluation.report"} <= set(free)
    script = (f"import sys, importlib\nfor name in {HEAVY!r}:\n    sys.modules[name] = None  # importing it fails\n"
              f"for name in {free!r}:\n    importlib.import_module(name)\n"
              "from synthscape.domains import available_domains\nassert {'lung-ct', 'driving'} <= set(available_domains())\n"
              f"loaded = sorted(n for n in sys.modules if n.split('.')[0] in {HEAVY!r} and sys.modules[n] is not None)\n"
              "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


def test_the_heavy_modules_really_need_torch():
    """The other side: a module the map calls torch-free is one the check above could catch."""
    result = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None\n"
                             "import synthscape.core.networks.nets"], capture_output=True, text=True)
    assert result.returncode != 0 and "torch" in result.stderr


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[int, str, int]]:
    """``(line, name, length)`` of each function over ``limit`` lines without a ``# long:`` reason."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            first = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            said = any(LONG_OK in lines[i] for i in (first - 1, node.lineno - 1) if i >= 0)
            if length > limit and not said:
                found.append((node.lineno, node.name, length))
    return found


def test_long_functions_is_a_real_check():
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    assert [(n, length) for _, n, length in long_functions(f"def f():\n{body}\n")] == [("f", 71)]
    assert long_functions(f"# long: one table, read top to bottom\ndef f():\n{body}\n") == []
    assert long_functions(f"def f():\n{body}\n", limit=80) == []


def test_no_function_is_over_sixty_lines_without_a_reason():
    found = [f"{path.relative_to(REPO)}:{line} {name} ({length} lines)"
             for path in MODULES.values() for line, name, length in long_functions(path.read_text())]
    assert not found, f"split these at their stage boundaries, or say why not with '{LONG_OK}': {found}"


def test_public_functions_and_classes_say_what_they_are_for():
    missing = []
    for path in MODULES.values():
        def visit(body, prefix=""):
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                    if ast.get_docstring(node) is None:
                        missing.append(f"{path.relative_to(REPO)}:{node.lineno} {prefix}{node.name}")
                    if isinstance(node, ast.ClassDef):
                        visit(node.body, f"{node.name}.")
        visit(ast.parse(path.read_text()).body)
    assert not missing, f"{len(missing)} public names without a docstring: {missing[:20]}"
