"""Griffe extension: show a docstring's update rule as a code block on the site.

gradtx docstrings give the update rule as plain-text lines with the code's variable names
(``mu = b1 * mu + (1 - b1) * updates``), readable in ``help()``. Markdown would join those lines
into one paragraph, so every run of lines before the first section (``Args:``, ...) that starts
with an assignment (``name = ...``, ``name += ...``), with its indented continuation lines, is
wrapped in a ``text`` fence.
"""

from __future__ import annotations

import re

import griffe

_NAME = r"[\w.]+(\[[^\]]*\])?"
RULE = re.compile(rf"^\s*{_NAME}(\s*,\s*{_NAME})*\s*(=|\+=|-=|\*=|/=)\s*\S")
SECTION = re.compile(r"^(Args|Arguments|Returns|Raises|Yields|Examples?|References|Notes?):\s*$")


def fence_rules(text: str) -> str:
    """Wrap the runs of update-rule lines of a docstring's description in ``text`` fences."""
    out: list[str] = []
    run: list[str] = []
    in_fence = done = False
    for line in text.splitlines():
        if line.rstrip() == "Example:":  # griffe's Google parser knows only "Examples:"
            line = "Examples:"
        stripped = line.strip()
        done = done or bool(SECTION.match(line))
        if stripped.startswith("```"):
            in_fence = not in_fence
        rule = (
            not done
            and not in_fence
            and stripped
            and not stripped.startswith(">>>")
            and (RULE.match(line) or (run and line[:1] == " "))
        )
        if rule:
            if not run and out and out[-1].strip():
                out.append("")
            run.append(line)
            continue
        if run:
            out += ["```text", *run, "```"]
            run = []
            if stripped:
                out.append("")
        out.append(line)
    if run:
        out += ["```text", *run, "```"]
    return "\n".join(out)


class UpdateRulesAsCode(griffe.Extension):
    """Fence the update rules of every documented function and class."""

    def on_function_instance(self, *, func, **kwargs) -> None:
        if func.docstring is not None:
            func.docstring.value = fence_rules(func.docstring.value)

    def on_class_instance(self, *, cls, **kwargs) -> None:
        if cls.docstring is not None:
            cls.docstring.value = fence_rules(cls.docstring.value)
