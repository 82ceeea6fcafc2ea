"""The zoo's Markdown table from ``--zoo`` runs: ``python -m bench.zoo_table A.json B.json``.

One row per optimizer; per workload and run, gradtx's median step time over optax's with the
min-max of the per-round ratios, and the two medians (ms) of the first run.
"""

from __future__ import annotations

import json
import sys


def table(paths: list[str]) -> str:
    runs = [json.load(open(p))["zoo"] for p in paths]
    workloads = sorted({r["workload"] for run in runs for r in run})
    names = list(dict.fromkeys(r["optimizer"] for run in runs for r in run))
    cell = {(i, r["workload"], r["optimizer"]): r for i, run in enumerate(runs) for r in run}
    head = ["optimizer"]
    for w in workloads:
        head += [f"{w[:1]} gradtx / optax ms"] + [f"{w[:1]} run {i + 1}" for i in range(len(runs))]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for n in names:
        row = [f"`{n}`"]
        for w in workloads:
            first = next((cell[(i, w, n)] for i in range(len(runs)) if (i, w, n) in cell), None)
            row.append(
                f"{first['gradtx_ms']:.1f} / {first['optax_ms']:.1f}"
                if first and "ratio" in first
                else ""
            )
            for i in range(len(runs)):
                r = cell.get((i, w, n))
                if r is None:
                    row.append("not run")
                elif "error" in r:
                    row.append("failed")
                else:
                    mark = "**" if r["ratio"] > 1.05 else ""
                    row.append(
                        f"{mark}{r['ratio']:.2f}{mark} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
                    )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1:]))
