"""gradtx does not need optax: nothing under gradtx/ or notebooks/ imports it.

The optax dialect (gradtx/compat/optax) reproduces optax's names and defaults from gradtx's own
definitions, so it must not import optax either; it may name optax only in type-checking
blocks. The run-time check imports every gradtx module in a fresh interpreter in which
``import optax`` fails.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _optax_imports(source: str, *, allow_type_checking: bool) -> list[int]:
    """Line numbers of ``import optax...`` / ``from optax... import`` in ``source``."""
    tree = ast.parse(source)
    skip: set[int] = set()
    if allow_type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for n in ast.walk(node))
    lines = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import) and any(
            a.name == "optax" or a.name.startswith("optax.") for a in node.names
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "optax" or node.module.startswith("optax."):
                lines.append(node.lineno)
    return lines


def _notebook_source(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    code = []
    for cell in cells:
        if cell["cell_type"] == "code":
            text = "".join(cell["source"])
            code.extend(ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!")))
    return "\n".join(code)


def test_no_file_imports_optax():
    found = []
    for path in sorted((ROOT / "gradtx").rglob("*.py")):
        in_compat = "compat" in path.relative_to(ROOT / "gradtx").parts
        for line in _optax_imports(path.read_text(), allow_type_checking=in_compat):
            found.append(f"{path.relative_to(ROOT)}:{line}")
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        for line in _optax_imports(path.read_text(), allow_type_checking=False):
            found.append(f"{path.relative_to(ROOT)}:{line}")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for line in _optax_imports(_notebook_source(path), allow_type_checking=False):
            found.append(f"{path.relative_to(ROOT)} (code line {line})")
    assert not found, "optax imported at: " + ", ".join(found)


def test_the_scan_finds_an_import():
    assert _optax_imports("import optax.losses as L\nx = 1", allow_type_checking=False) == [1]
    assert _optax_imports("from optax import adam", allow_type_checking=False) == [1]
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import optax"
    assert _optax_imports(guarded, allow_type_checking=True) == []
    assert _optax_imports("import optaxx, jax", allow_type_checking=False) == []


def test_every_module_imports_without_optax():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "gradtx").rglob("*.py")
        if p.name != "__main__.py"
    )
    script = (
        "import sys, importlib\n"
        "sys.modules['optax'] = None  # any import of optax raises ImportError\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
