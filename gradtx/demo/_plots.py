"""matplotlib figures for the demo (Agg backend, PNG files)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gradtx.demo._optimizers import COLORS  # noqa: E402

DPI = 80


def _save(fig, path):
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def surface_panels(surfaces, paths, out_png):
    """One contour panel per surface with every optimizer's path drawn over it."""
    fig, axes = plt.subplots(1, len(surfaces), figsize=(4.2 * len(surfaces), 4.2), squeeze=False)
    for ax, surface in zip(axes[0], surfaces):
        x0, x1, y0, y1 = surface.box
        xs, ys = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
        zs = np.asarray(surface.loss(np.stack([xs, ys])))
        levels = np.quantile(zs, np.linspace(0.0, 1.0, 25) ** 2.5)
        ax.contour(xs, ys, zs, levels=np.unique(levels), colors="0.75", linewidths=0.6)
        for name, path in paths[surface.name].items():
            path = np.clip(path, [x0 - 1, y0 - 1], [x1 + 1, y1 + 1])
            style = "--" if name == "adamw" else ".-"
            ax.plot(path[:, 0], path[:, 1], style, color=COLORS[name], lw=1.0, ms=2.5, label=name)
            ax.plot(*path[-1], "o", color=COLORS[name], ms=6, mec="k", mew=0.5)
        ax.plot(*surface.start, "k*", ms=9)
        ax.plot(*surface.minimum, "kx", ms=8)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_title(surface.name.replace("_", "-"), fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    return _save(fig, out_png)


def curves(panels, out_png, *, ylabel, logy=True, xlabel="step"):
    """One panel per ``(title, {name: ys or (xs, ys)})`` item, a line per series.

    A panel may be ``(title, series, ylabel)`` or ``(title, series, ylabel, logy)`` to override
    the y label and scale; xs default to the index (the step).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, series, *label) in zip(axes[0], panels):
        for name, ys in series.items():
            xs, ys = ys if isinstance(ys, tuple) else (np.arange(len(ys)), ys)
            ax.plot(np.asarray(xs), np.asarray(ys), color=COLORS.get(name), lw=1.2, label=name)
        if label[1] if len(label) > 1 else logy:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label[0] if label else ylabel)
        ax.grid(alpha=0.3)
        if ax is axes[0][0] or len(series) <= 3:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_png)


def boundaries(runs, problem, grids, out_png, lim=1.1):
    """The spiral's predicted class regions, one panel per optimizer, with the training points."""
    fig, axes = plt.subplots(1, len(runs), figsize=(2.6 * len(runs), 2.8), squeeze=False)
    x, y = (np.asarray(a) for a in problem.train)
    for ax, (name, run) in zip(axes[0], runs.items()):
        ax.imshow(
            grids[name],
            origin="lower",
            extent=(-lim, lim, -lim, lim),
            cmap="Pastel1",
            vmin=0,
            vmax=8,
            interpolation="nearest",
        )
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="Set1", vmin=0, vmax=8, s=5)
        ax.set_title(f"{name}\ntest acc {run.test_accuracy[-1]:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, out_png)


def sweep_lines(sweeps, out_png):
    """Final loss against learning rate (log-log), one line per optimizer; x marks divergence."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, s in sweeps.items():
        loss = np.where(np.isfinite(s.final_loss), s.final_loss, np.nan)
        ax.plot(s.learning_rates, loss, "o-", color=COLORS[name], ms=3, label=name)
        bad = ~np.isfinite(s.final_loss)
        ax.plot(s.learning_rates[bad], np.full(bad.sum(), 5.0), "x", color=COLORS[name])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final training loss (spiral)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_png)
