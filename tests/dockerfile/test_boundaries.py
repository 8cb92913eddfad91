"""The frontend is shared by the daemon and the planner: it must import neither."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import declarun.dockerfile

PACKAGE = Path(declarun.dockerfile.__file__).parent
ALLOWED_DECLARUN = {"declarun.dockerfile", "declarun.errdefs", "declarun.errors"}
FORBIDDEN_THIRD_PARTY = {"aiohttp", "docker", "networkx", "yaml", "click", "rich", "jinja2"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_errdefs_errors_stdlib_and_the_parser() -> None:
    for module in sorted(PACKAGE.glob("*.py")):
        for name in _imports(module):
            top = name.split(".")[0]
            if top == "declarun":
                assert any(
                    name == allowed or name.startswith(allowed + ".")
                    for allowed in ALLOWED_DECLARUN
                ), f"{module.name} imports {name}"
            assert top not in FORBIDDEN_THIRD_PARTY, f"{module.name} imports {name}"


def test_every_module_declares_all() -> None:
    for module in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(module.read_text())
        assert ast.get_docstring(tree), f"{module.name} has no docstring"
        if module.name == "__init__.py":
            continue
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "__all__" in assigned, f"{module.name} has no __all__"


def test_the_package_names_load_their_modules_on_first_use() -> None:
    # A fresh interpreter: importing the package loads none of the builder's machinery, a
    # name loads its own module, and every name of __all__ resolves.
    code = (
        "import sys, declarun.dockerfile as d\n"
        "assert 'declarun.dockerfile.evaluate' not in sys.modules\n"
        "assert 'declarun.dockerfile.copyplan' not in sys.modules\n"
        "d.hash_context\n"
        "assert 'declarun.dockerfile.context' in sys.modules\n"
        "assert 'declarun.dockerfile.evaluate' not in sys.modules\n"
        "from declarun.dockerfile import plan_copy\n"
        "assert all(getattr(d, name) is not None for name in d.__all__)\n"
        "assert set(d.__all__) <= set(dir(d))\n"
        "try:\n"
        "    d.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
