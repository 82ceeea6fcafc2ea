"""The report: a list of sections written as an offline ``index.html`` and a ``summary.md``.

Also the progress bar: a line on stderr, redrawn in place on a terminal.
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path


class Progress:
    """A progress bar on stderr: ``label [#####.....] 3/10 what``.

    To a terminal it is redrawn in place with carriage returns; to anything else (a log file,
    a pipe) it writes one line per phase, when the phase ends: ``label: 10/10 in 4.2 s``.
    """

    def __init__(self, total: int, label: str, stream=None, width: int = 24):
        self.total, self.label, self.width, self.done = max(total, 1), label, width, 0
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.start = time.perf_counter()
        self._draw("")

    def _draw(self, what: str):
        if not self.live:
            return
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total} {what}"
        self.stream.write("\r" + line[:100].ljust(100))
        self.stream.flush()

    def step(self, what: str = ""):
        self.done += 1
        self._draw(what)

    def close(self):
        seconds = time.perf_counter() - self.start
        if self.live:
            self.stream.write("\n")
        else:
            self.stream.write(
                f"{self.label.strip()}: {self.done}/{self.total} in {seconds:.1f} s\n"
            )
        self.stream.flush()


class Report:
    """Sections of paragraphs, pictures and tables; ``write`` renders HTML and Markdown."""

    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []

    def section(self, title: str):
        self.blocks.append(("h2", title))

    def text(self, text: str):
        self.blocks.append(("p", text))

    def image(self, file: str, caption: str):
        self.blocks.append(("img", file, caption))

    def table(self, header, rows, caption: str):
        """A table with a caption (shown above it, and printed with it to stdout)."""
        self.blocks.append(("table", list(header), [[str(c) for c in r] for r in rows], caption))

    def html(self) -> str:
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1400px;margin:auto;padding:1em}"
            "img{max-width:100%}table{border-collapse:collapse;margin:0.5em 0}"
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
            "figcaption,caption{color:#555;font-size:90%;text-align:left}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for kind, *rest in self.blocks:
            if kind == "h2":
                out.append(f"<h2>{html.escape(rest[0])}</h2>")
            elif kind == "p":
                out.append(f"<p>{html.escape(rest[0])}</p>")
            elif kind == "img":
                src, cap = html.escape(rest[0]), html.escape(rest[1])
                out.append(f'<figure><img src="{src}" alt="{cap}"><figcaption>{cap}</figcaption>')
                out.append("</figure>")
            else:
                header, rows, caption = rest
                out.append(f"<table><caption>{html.escape(caption)}</caption><tr>")
                out.append("".join(f"<th>{html.escape(h)}</th>" for h in header))
                for row in rows:
                    cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
                    out.append(f"</tr><tr>{cells}")
                out.append("</tr></table>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, *rest in self.blocks:
            if kind == "h2":
                out += [f"## {rest[0]}", ""]
            elif kind == "p":
                out += [rest[0], ""]
            elif kind == "img":
                out += [f"![{rest[1]}]({rest[0]})", ""]
            else:
                header, rows, caption = rest
                out += [f"Table: {caption}", ""]
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(r) + " |" for r in rows]
                out.append("")
        return "\n".join(out)

    def write(self, out_dir: Path):
        """Write ``index.html`` and ``summary.md`` into ``out_dir``; returns their paths."""
        index, summary = out_dir / "index.html", out_dir / "summary.md"
        index.write_text(self.html(), encoding="utf-8")
        summary.write_text(self.markdown(), encoding="utf-8")
        return index, summary
