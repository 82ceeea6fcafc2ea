"""The report's sections: each runs its experiments, draws its pictures and writes its tables."""

from __future__ import annotations

import numpy as np

from gradtx.demo import _plots, _surfaces, _sweep, _train
from gradtx.demo._jit import compile_many
from gradtx.demo._report import Progress

# The runs of the lessons section: (label, problem, optimizer, mixup).
LESSONS = (
    ("adamw", "spiral", "adamw", False),
    ("adam+l2", "spiral", "adam+l2", False),
    ("adam", "spiral", "adam", False),
    ("adam (no bias corr.)", "spiral", "adam (no bias corr.)", False),
    ("shapes adam", "shapes", "adam", False),
    ("shapes adam+mixup", "shapes", "adam", True),
)


def _fmt(x, spec=".3g"):
    return "diverged" if not np.isfinite(x) else format(x, spec)


def _compile(jobs, label):
    progress = Progress(len(jobs), label)
    compile_many(jobs, progress)
    progress.close()


def surfaces(report, out, names, steps, seed):
    """Trajectories on the 2-D surfaces, their loss curves and step lengths."""
    grid = [(s, n) for s in _surfaces.SURFACES for n in names]
    _compile([_surfaces.trajectory_job(s, n, steps, seed) for s, n in grid], "surfaces")
    paths = {s.name: {} for s in _surfaces.SURFACES}
    for s, name in grid:
        paths[s.name][name] = _surfaces.trajectory(s, name, steps, seed)
    losses = {
        s.name: {n: _surfaces.losses(s, p) for n, p in paths[s.name].items()}
        for s in _surfaces.SURFACES
    }
    _plots.surface_panels(_surfaces.SURFACES, paths, out / "surfaces.png")
    _plots.curves([(k, v) for k, v in losses.items()], out / "surfaces_loss.png", ylabel="loss")
    lengths = {
        s.name: {n: np.linalg.norm(np.diff(p, axis=0), axis=1) for n, p in paths[s.name].items()}
        for s in _surfaces.SURFACES
    }
    _plots.curves(list(lengths.items()), out / "surfaces_steps.png", ylabel="step length")
    report.section("Optimizers on 2-D surfaces")
    report.text(
        "Each panel starts every optimizer at the star; the cross is the minimum and a dot ends "
        "each path. Learning rates are tuned per surface so that each lesson shows."
    )
    for s in _surfaces.SURFACES:
        report.text(f"{s.name}: {s.lesson}.")
    report.image("surfaces.png", "Trajectories over contour plots, one panel per surface")
    report.image("surfaces_loss.png", "Loss against step (log scale)")
    report.image("surfaces_steps.png", "Step length against step: AdaGrad's shrinks for good")
    header = ["optimizer"] + [f"{s.name}: final loss (steps to < 1e-2)" for s in _surfaces.SURFACES]
    rows = []
    for name in names:
        row = [name]
        for s in _surfaces.SURFACES:
            curve = losses[s.name][name]
            hit = _surfaces.steps_to(curve, 1e-2)
            row.append(f"{_fmt(curve[-1])} ({'-' if hit is None else hit})")
        rows.append(row)
    report.table(header, rows)


def _variant(name, decay, bias_correction):
    if name == "adamw" and decay == "l2":
        return "adam+l2"
    if name == "adam" and not bias_correction:
        return "adam (no bias corr.)"
    return name


def _table(report, runs):
    header = ["optimizer", "final loss", "train acc", "test acc", "compile s", "run s", "steps/s"]
    rows = []
    for name, r in runs.items():
        tail = r.loss[-max(1, len(r.loss) // 10) :].mean()
        rate = r.steps / r.run_s if r.run_s > 0 else float("inf")
        rows.append(
            [
                name,
                _fmt(tail, ".4f"),
                f"{r.train_accuracy:.3f}",
                f"{r.test_accuracy[-1]:.3f}",
                f"{r.compile_s:.2f}",
                f"{r.run_s:.3f}",
                f"{rate:.0f}",
            ]
        )
    report.table(header, rows)


def _smooth(x, width):
    width = max(1, min(width, len(x)))
    return np.convolve(x, np.ones(width) / width, mode="valid")


def train(
    report,
    out,
    names,
    steps,
    seed,
    quick,
    *,
    decay="adamw",
    bias_correction=True,
    mixup=False,
    lessons=False,
):
    """Both problems with every optimizer: curves, the spiral's boundaries, a table each.

    With ``lessons`` the runs of the lessons section are compiled in the same batch (two at a
    time) and that section follows.
    """
    names = [_variant(n, decay, bias_correction) for n in names]
    problems = {p.name: p for p in _train.problems(seed, quick)}
    specs = [(p, n, mixup) for p in problems for n in names]
    if lessons:
        specs += [(p, n, m) for _, p, n, m in LESSONS if (p, n, m) not in specs]
    _compile([_train.train_job(problems[p], n, steps, seed, m) for p, n, m in specs], "train   ")
    runs = {(p, n, m): _train.train(problems[p], n, steps, seed, m) for p, n, m in specs}
    results = {p: (problems[p], {n: runs[(p, n, mixup)] for n in names}) for p in problems}
    loss_panels = [
        (p.title, {n: _smooth(r.loss, 10) for n, r in runs.items()}) for p, runs in results.values()
    ]
    acc_panels = [
        (p.title, {n: r.test_accuracy for n, r in runs.items()}) for p, runs in results.values()
    ]
    _plots.curves(loss_panels, out / "train_loss.png", ylabel="training loss (smoothed)")
    _plots.curves(
        acc_panels,
        out / "train_accuracy.png",
        ylabel="test accuracy",
        logy=False,
        xlabel="evaluation (every steps/50)",
    )
    spiral, spiral_runs = results["spiral"]
    grids = {n: _train.decision_grid(r.params) for n, r in spiral_runs.items()}
    _plots.boundaries(spiral_runs, spiral, grids, out / "spiral_boundaries.png")
    report.section("Training two classifiers")
    report.text(
        f"Each optimizer trains a 2-layer MLP for {spiral_runs[names[0]].steps} steps in one "
        f"jitted lax.scan{' with mixup (alpha 0.2)' if mixup else ''}. Final loss is the mean "
        "over the last tenth of the steps; test accuracy is on a held-out set drawn from the "
        "same generator. Learning rates: "
        + ", ".join(f"{n} {_train.TRAIN_LR[n]:g}" for n in names)
        + "."
    )
    report.image("train_loss.png", "Training loss against step")
    report.image("train_accuracy.png", "Held-out accuracy during training")
    report.image("spiral_boundaries.png", "Decision regions on the spiral after training")
    for problem, table_runs in results.values():
        report.text(problem.title)
        _table(report, table_runs)
    if lessons:
        _lessons(report, out, {label: runs[(p, n, m)] for label, p, n, m in LESSONS}, steps)
    return runs


def _lessons(report, out, runs, steps):
    """Coupled L2 against AdamW, Adam without bias correction, and mixup, side by side."""
    early = max(10, min(100, steps // 5))
    _plots.curves(
        [
            ("spiral: decoupled vs coupled decay", {k: runs[k].loss for k in ("adamw", "adam+l2")}),
            (
                "spiral: first steps of Adam",
                {k: runs[k].loss[:early] for k in ("adam", "adam (no bias corr.)")},
            ),
        ],
        out / "lessons.png",
        ylabel="training loss",
    )
    _plots.curves(
        [
            (
                "shapes: held-out accuracy",
                {
                    "adam": runs["shapes adam"].test_accuracy,
                    "adam+mixup": runs["shapes adam+mixup"].test_accuracy,
                },
            )
        ],
        out / "lessons_mixup.png",
        ylabel="test accuracy",
        logy=False,
        xlabel="evaluation",
    )
    report.section("The seed's lessons, measured")
    report.image(
        "lessons.png",
        "Left: AdamW vs Adam with coupled L2 (same weight_decay "
        f"{_train.WEIGHT_DECAY:g}). Right: Adam with and without bias correction",
    )
    report.image("lessons_mixup.png", "Shapes: held-out accuracy of Adam without and with mixup")
    report.text(
        "Coupled L2 sends weight_decay * w through Adam's normalisation, so the same number "
        "regularises far harder than AdamW's decoupled lr * weight_decay * w. Without bias "
        "correction Adam's first update is about (1 - b1) / sqrt(1 - b2) = 3.2 times larger, "
        "the seed's warning; at a small learning rate that only speeds the start, near the "
        "edge of stability it is what overshoots. Mixup trades training fit for held-out "
        "accuracy."
    )
    a, b = runs["adam"].first_step, runs["adam (no bias corr.)"].first_step
    report.table(
        ["comparison", "result"],
        [
            ["first update norm, Adam with / without bias correction", f"{a:.3g} / {b:.3g}"],
            [
                "spiral final loss, AdamW / Adam + coupled L2",
                f"{runs['adamw'].loss[-1]:.3f} / {runs['adam+l2'].loss[-1]:.3f}",
            ],
            [
                "spiral test acc, AdamW / Adam + coupled L2",
                f"{runs['adamw'].test_accuracy[-1]:.3f} / {runs['adam+l2'].test_accuracy[-1]:.3f}",
            ],
            [
                "shapes train acc, Adam / Adam + mixup",
                f"{runs['shapes adam'].train_accuracy:.3f} / "
                f"{runs['shapes adam+mixup'].train_accuracy:.3f}",
            ],
            [
                "shapes test acc, Adam / Adam + mixup",
                f"{runs['shapes adam'].test_accuracy[-1]:.3f} / "
                f"{runs['shapes adam+mixup'].test_accuracy[-1]:.3f}",
            ],
        ],
    )
    return runs


def sweep(report, out, names, steps, seed, quick):
    """A vmapped learning-rate sweep per optimizer, timed beside a loop of single runs."""
    lrs = _sweep.learning_rates(quick)
    _compile([j for n in names for j in _sweep.sweep_jobs(n, lrs, steps, seed)], "sweep   ")
    sweeps = {name: _sweep.sweep(name, lrs, steps, seed) for name in names}
    _plots.sweep_lines(sweeps, out / "sweep.png")
    report.section("Learning-rate sweeps with vmap")
    report.text(
        f"{len(lrs)} learning rates from {lrs[0]:g} to {lrs[-1]:g}, {steps} full-batch steps on "
        "the spiral each. The learning rate is an array, so vmap trains all of them in one "
        "compiled program and one call; the loop compiles one program with the learning rate as "
        "an argument and calls it once per value. Rebuilding the optimizer from a Python float "
        "for each value would instead compile once per value. Which of the two runs faster "
        "depends on the hardware; the table shows this machine's times."
    )
    report.image("sweep.png", "Final training loss against learning rate (x: diverged)")
    rows = []
    for name, s in sweeps.items():
        finite = np.where(np.isfinite(s.final_loss), s.final_loss, np.inf)
        best = int(np.argmin(finite))
        times = (s.vmap_compile_s, s.vmap_run_s, s.loop_compile_s, s.loop_run_s)
        rows.append(
            [name, f"{lrs[best]:.2g}", _fmt(s.final_loss[best], ".4f")]
            + [f"{t:.2f}" for t in times]
        )
    header = ["optimizer", "best lr", "final loss", "vmap: compile s", "vmap: run s"]
    report.table(header + ["loop: compile s", f"loop: run s ({len(lrs)} calls)"], rows)
    return sweeps
