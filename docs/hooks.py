"""MkDocs hook: the navigation and the API reference, generated from the package at build time.

- The API reference has one page per family, written from ``__all__`` of every public module
  (``gradtx`` and each of its public subpackages that exists when the site is built), so a name
  added to an ``__all__`` gets its entry without anyone editing the docs. A name is documented
  once, on the page of the most specific public module that exports it.
- ``docs/guide/*.md`` and ``notebooks/*.ipynb`` join the navigation on their own, and any other
  page under ``docs/`` that the fixed navigation lacks goes under "More".

Everything here runs offline; ``tests/test_docs.py`` imports ``api_pages`` to check coverage.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# Top-level names that no public subpackage exports are grouped by the private package that
# defines them: (package prefix, page file, page title).
TOP_FAMILIES = (
    ("gradtx._aliases", "optimizers", "Optimizers"),
    ("gradtx._core", "core", "Core: the contract and tree helpers"),
    ("gradtx._state", "state", "State: dictionaries, checkpoints, sharding, flat layout"),
    ("gradtx._data", "data", "Data: mixup and CutMix"),
)
SKIP_MODULES = ("gradtx.demo",)  # the command's internals, documented on the demo page


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def public_modules() -> list[str]:
    """``gradtx`` and its public subpackages and modules that define ``__all__``, sorted."""
    if str(ROOT) not in sys.path[:1]:
        sys.path.insert(0, str(ROOT))  # document this checkout, whatever else is installed
    import gradtx

    if Path(gradtx.__file__).resolve().parent != ROOT / "gradtx":
        raise RuntimeError(f"docs: gradtx was imported from {gradtx.__file__}, not {ROOT}")

    found = ["gradtx"]
    for info in pkgutil.walk_packages(gradtx.__path__, "gradtx."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or info.name.startswith(SKIP_MODULES):
            continue
        module = importlib.import_module(info.name)
        if getattr(module, "__all__", None):
            found.append(info.name)
    return sorted(found)


def _family_title(module_name: str) -> str:
    module = importlib.import_module(module_name)
    title = _first_line(module).rstrip(".")
    short = module_name.rsplit(".", 1)[-1].lstrip("_").replace("_", " ")
    return title or short


def api_pages() -> list[dict]:
    """The API pages: each a dict(file, title, module, sections=[(title, [(name, ident)])]).

    Every public name of every public module appears on exactly one page (the compat dialect's
    page lists its re-exports as links to their gradtx entries).
    """
    modules = public_modules()
    subpackages = [m for m in modules if m != "gradtx" and not m.startswith("gradtx.compat")]
    owner: dict[int, str] = {}  # id(obj) -> identifier of its documented entry
    pages = []
    for name in subpackages:
        module = importlib.import_module(name)
        groups: dict[str, list] = {}
        for public in sorted(module.__all__):
            obj = getattr(module, public)
            home = getattr(obj, "__module__", name) or name
            if not home.startswith(name):
                home = name
            ident = f"{name}.{public}"
            owner.setdefault(id(obj), ident)
            groups.setdefault(home, []).append((public, ident))
        sections = [(_family_title(h), entries) for h, entries in sorted(groups.items())]
        pages.append(
            dict(
                file=f"api/{name.removeprefix('gradtx.').replace('.', '-')}.md",
                title=f"gradtx.{name.removeprefix('gradtx.')}",
                module=name,
                intro=inspect.getdoc(module) or "",
                sections=sections,
            )
        )
    import gradtx

    top: dict[str, dict] = {}
    for public in sorted(gradtx.__all__):
        obj = getattr(gradtx, public)
        if id(obj) in owner:
            continue
        home = getattr(obj, "__module__", "") or ""
        family = [f for f in TOP_FAMILIES if home.startswith(f[0])]
        _, file, title = family[0] if family else (home, home.rsplit(".", 1)[-1].lstrip("_"), home)
        page = top.setdefault(file, dict(file=f"api/{file}.md", title=title, groups={}))
        ident = f"gradtx.{public}"
        owner[id(obj)] = ident
        page["groups"].setdefault(home, []).append((public, ident))
    order = [f for _, f, _ in TOP_FAMILIES]
    for file in sorted(top, key=lambda f: (order.index(f) if f in order else len(order), f)):
        page = top[file]
        sections = [(_family_title(h), e) for h, e in sorted(page.pop("groups").items())]
        pages.insert(
            len([p for p in pages if p["module"] == "gradtx"]),
            dict(page, module="gradtx", intro="", sections=sections),
        )
    for name in [m for m in modules if m.startswith("gradtx.compat")]:
        module = importlib.import_module(name)
        own, linked = [], []
        for public in sorted(module.__all__):
            obj = getattr(module, public)
            if getattr(obj, "__module__", "").startswith("gradtx.compat") or id(obj) not in owner:
                own.append((public, f"{obj.__module__}.{obj.__qualname__}"))
            else:
                linked.append((public, owner[id(obj)]))
        pages.append(
            dict(
                file=f"api/{name.removeprefix('gradtx.').replace('.', '-')}.md",
                title=name,
                module=name,
                intro=inspect.getdoc(module) or "",
                sections=[("Defined by the dialect", own)] if own else [],
                linked=linked,
            )
        )
    return pages


def _render(page: dict) -> str:
    lines = [f"# {page['title']}", ""]
    if page.get("intro"):
        lines += [page["intro"], ""]
    lines += [
        "*This page is generated from the docstrings (`docs/hooks.py`).*",
        "",
        "| name | summary |",
        "|---|---|",
    ]
    for _, entries in page["sections"]:
        for public, ident in entries:
            summary = _first_line(_resolve(ident)).replace("|", "\\|")
            lines.append(f"| [`{public}`][{ident}] | {summary} |")
    lines.append("")
    for title, entries in page["sections"]:
        lines += [f"## {title}", ""]
        for _, ident in entries:
            lines += [f"::: {ident}", ""]
    if page.get("linked"):
        lines += [
            "## The same as in gradtx",
            "",
            "These names are gradtx's own objects, re-exported unchanged (optax's defaults and "
            "gradtx's agree for them).",
            "",
            "| name | documented at |",
            "|---|---|",
        ]
        lines += [f"| `{p}` | [`{i}`][{i}] |" for p, i in page["linked"]]
        lines.append("")
    return "\n".join(lines)


def _resolve(ident: str):
    module_name, _, attr = ident.rpartition(".")
    while True:
        try:
            obj = importlib.import_module(module_name)
            break
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            attr = f"{head}.{attr}"
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _index(pages: list[dict]) -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings of every name in the `__all__` of `gradtx` and its public "
        "subpackages. Every name is also reachable as `gradtx.<name>` unless its page says "
        "otherwise. Each transform's docstring gives its update rule in plain text with the "
        "code's variable names; the original seven optimizers follow "
        "[the CS231n update rules](../reference/update-rules.md).",
        "",
        "| page | names |",
        "|---|---|",
    ]
    for page in pages:
        count = sum(len(e) for _, e in page["sections"]) + len(page.get("linked", []))
        lines.append(f"| [{page['title']}]({Path(page['file']).name}) | {count} |")
    return "\n".join(lines) + "\n"


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip().strip("`")
    return path.stem.replace("-", " ").replace("_", " ").capitalize()


def _nav(pages: list[dict]) -> list:
    guides = sorted((DOCS / "guide").glob("*.md"), key=_title)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    nav = _fixed_nav(pages, guides, notebooks)
    listed = set(re.findall(r"'([^']+\.md)'", repr(nav)))
    others = sorted(
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if "notebooks" not in p.relative_to(DOCS).parts
    )
    more = [{_title(DOCS / rel): rel} for rel in others if rel not in listed]
    return nav + ([{"More": more}] if more else [])


def _fixed_nav(pages, guides, notebooks) -> list:
    return [
        {"Home": "index.md"},
        {"Getting started": "getting-started.md"},
        {
            "Concepts": [
                {"A transform": "concepts/transform.md"},
                {"State": "concepts/state.md"},
                {"Hyperparameters as data": "concepts/hyperparameters.md"},
                {"Chains and combinators": "concepts/combinators.md"},
                {"Wrappers, averaging, clipping": "concepts/wrappers.md"},
                {"The flat layout": "concepts/flat-layout.md"},
                {"Sharding": "concepts/sharding.md"},
            ]
        },
        {
            "Guides": [
                {"Optimizers": "optimizers.md"},
                {"Schedules": "schedules.md"},
                {"Mixup and CutMix": "mixup.md"},
                *[{_title(g): f"guide/{g.name}"} for g in guides],
            ]
        },
        {"Coming from optax": "coming-from-optax.md"},
        {"Coming from PyTorch": "coming-from-pytorch.md"},
        {"Performance": "performance.md"},
        {"The demo": "demo.md"},
        {"Notebooks": [{p.stem.replace("_", " "): f"notebooks/{p.name}"} for p in notebooks]},
        {"API reference": ["api/index.md", *[{p["title"]: p["file"]} for p in pages]]},
        {
            "Reference": [
                {"CS231n update rules": "reference/update-rules.md"},
                {"Design": "design.md"},
                {"Development": "development.md"},
            ]
        },
    ]


_PAGES: list[dict] = []


def on_config(config, **kwargs):
    _PAGES[:] = api_pages()
    config["nav"] = _nav(_PAGES)
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "api/index.md", content=_index(_PAGES)))
    for page in _PAGES:
        files.append(File.generated(config, page["file"], content=_render(page)))
    return files
