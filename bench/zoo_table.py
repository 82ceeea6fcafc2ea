"""The zoo's Markdown table from ``--zoo`` runs: ``python -m bench.zoo_table A.json B.json``.

One row per optimizer; per workload, for each run that timed it (in the order given), gradtx's
median step time over optax's with the min-max of the per-round ratios (bold above 1.05), and
the two medians (ms) of the workload's first run.
"""

from __future__ import annotations

import json
import sys


def table(paths: list[str]) -> str:
    runs = [json.load(open(p))["zoo"] for p in paths]
    workloads = sorted({r["workload"] for run in runs for r in run})
    names = list(dict.fromkeys(r["optimizer"] for run in runs for r in run))
    # per workload: the runs holding it, each as {optimizer: row}
    by_workload = {
        w: [
            {r["optimizer"]: r for r in run if r["workload"] == w}
            for run in runs
            if any(r["workload"] == w for r in run)
        ]
        for w in workloads
    }
    head = ["optimizer"]
    for w in workloads:
        head += [f"({w[0]}) gradtx / optax ms"]
        head += [f"({w[0]}) run {i + 1}" for i in range(len(by_workload[w]))]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for n in names:
        row = [f"`{n}`"]
        for w in workloads:
            first = by_workload[w][0].get(n)
            ok = first is not None and "ratio" in first
            row.append(f"{first['gradtx_ms']:.1f} / {first['optax_ms']:.1f}" if ok else "")
            for run in by_workload[w]:
                r = run.get(n)
                if r is None:
                    row.append("not run")
                elif "error" in r:
                    row.append("failed")
                else:
                    mark = "**" if r["ratio"] > 1.05 else ""
                    span = f"({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
                    row.append(f"{mark}{r['ratio']:.2f}{mark} {span}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1:]))
