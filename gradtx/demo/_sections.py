"""The report's sections: each runs its experiments, draws its pictures and writes its tables.

Every sentence that states a result is computed from the data it describes: the statistic is
measured, printed with the sentence, and the wording follows it, so a run that does not show
a lesson says so.
"""

from __future__ import annotations

import numpy as np

from gradtx.demo import _plots, _surfaces, _sweep, _train
from gradtx.demo._jit import compile_many
from gradtx.demo._report import Progress

SEEDS = (0, 1, 2)  # the mixup study's seeds


def _fmt(x, spec=".3g"):
    return "diverged" if not np.isfinite(x) else format(x, spec)


def _compile(jobs, label):
    progress = Progress(len(jobs), label)
    compile_many(jobs, progress)
    progress.close()


def surfaces(report, out, names, steps, seed):
    """Trajectories on the 2-D surfaces, their loss curves and step lengths."""
    _compile([_surfaces.trajectory_job(n, steps, seed) for n in names], "surfaces")
    by_name = {n: _surfaces.trajectories(n, steps, seed) for n in names}
    paths = {s.name: {n: by_name[n][s.name] for n in names} for s in _surfaces.SURFACES}
    losses = {
        s.name: {n: _surfaces.losses(s, p) for n, p in paths[s.name].items()}
        for s in _surfaces.SURFACES
    }
    lessons = _surfaces.lessons(paths)
    _plots.surface_panels(_surfaces.SURFACES, paths, out / "surfaces.png")
    _plots.curves([(k, v) for k, v in losses.items()], out / "surfaces_loss.png", ylabel="loss")
    lengths = {
        s.name: {n: _surfaces.step_lengths(p) for n, p in paths[s.name].items()}
        for s in _surfaces.SURFACES
    }
    _plots.curves(list(lengths.items()), out / "surfaces_steps.png", ylabel="step length")
    report.section("Optimizers on 2-D surfaces")
    report.text(
        "Each panel starts every optimizer at the star; the cross is the minimum and a dot ends "
        "each path. Learning rates are tuned per surface. What each panel shows, measured on "
        "the paths drawn:"
    )
    for s in _surfaces.SURFACES:
        report.text(f"{s.name} ({s.formula}): {lessons[s.name]}.")
    report.image("surfaces.png", "Trajectories over contour plots, one panel per surface")
    best = {
        s.name: min(losses[s.name], key=lambda n, s=s: losses[s.name][n][-1])
        for s in _surfaces.SURFACES
    }
    report.image(
        "surfaces_loss.png",
        "Loss against step (log scale); lowest final loss: "
        + ", ".join(f"{k} {v}" for k, v in best.items()),
    )
    if "adagrad" in names:
        factors = ", ".join(
            f"{s.name} {_surfaces.shrink_factor(paths[s.name]['adagrad']):.3g}x"
            for s in _surfaces.SURFACES
        )
        steps_caption = (
            "Step length against step. AdaGrad's falls from its first 10 steps to its last 10 "
            f"by: {factors}"
        )
    else:
        steps_caption = "Step length against step"
    report.image("surfaces_steps.png", steps_caption)
    header = ["optimizer"] + [f"{s.name}: final loss (steps to < 1e-2)" for s in _surfaces.SURFACES]
    rows = []
    for name in names:
        row = [name]
        for s in _surfaces.SURFACES:
            curve = losses[s.name][name]
            hit = _surfaces.steps_to(curve, 1e-2)
            row.append(f"{_fmt(curve[-1])} ({'-' if hit is None else hit})")
        rows.append(row)
    report.table(
        header,
        rows,
        "Final loss on each surface, and in brackets the first step with loss below 1e-2 "
        "(- if never)",
    )
    return paths


def _variant(name, decay, bias_correction):
    if name == "adamw" and decay == "l2":
        return "adam+l2"
    if name == "adam" and not bias_correction:
        return "adam (no bias corr.)"
    return name


def _smooth(x, width):
    width = max(1, min(width, len(x)))
    return np.convolve(x, np.ones(width) / width, mode="valid")


def _tail(r):
    return float(r.loss[-max(1, len(r.loss) // 10) :].mean())


def _ranked(values: dict, spec=".3f", reverse=False) -> str:
    order = sorted(values, key=lambda n: values[n], reverse=reverse)
    return ", ".join(f"{n} {format(values[n], spec)}" for n in order)


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
    """The spiral with every optimizer: loss and accuracy curves, decision regions, a table.

    Each optimizer's program also holds the sweep's runs (``_sweep.optimizer_job``). With
    ``lessons`` the lessons' programs (the four variants of Adam, the mixup study unless
    ``quick``, the schedule zoo) are compiled in the same batch (two at a time) and those
    sections follow.
    """
    names = [_variant(n, decay, bias_correction) for n in names]
    problem = _train.spiral(seed)
    jobs = [_sweep.optimizer_job(n, steps, seed, quick, mixup) for n in names]
    if lessons:
        jobs.append(_train.lessons_job(steps, seed))
        if not quick:  # a smoke run skips the mixup study: one program, six runs
            jobs.append(_train.mixup_job(2 * steps, SEEDS))
        if _sweep.ZOO_OPTIMIZER not in names:
            jobs.append(_sweep.optimizer_job(_sweep.ZOO_OPTIMIZER, steps, seed, quick))
    _compile(jobs, "train   ")
    shown = {n: _sweep.optimizer_runs(n, steps, seed, quick, mixup).train for n in names}
    _plots.curves(
        [(problem.title, {n: _smooth(r.loss, 10) for n, r in shown.items()})],
        out / "train_loss.png",
        ylabel="training loss (smoothed over 10 steps)",
    )
    _plots.curves(
        [(problem.title, {n: (r.eval_steps, r.test_accuracy) for n, r in shown.items()})],
        out / "train_accuracy.png",
        ylabel="held-out accuracy",
        logy=False,
    )
    grids = {n: _train.decision_grid(r.params) for n, r in shown.items()}
    _plots.boundaries(shown, problem, grids, out / "spiral_boundaries.png")
    first = next(iter(shown.values()))
    report.section("Training the spiral classifier")
    report.text(
        f"Each optimizer trains a 2-layer MLP (2-100-3) for {first.steps} full-batch steps in "
        f"one jitted lax.scan{' on mixup batches (alpha 0.2)' if mixup else ''}. Final loss is "
        "the mean over the last tenth of the steps; held-out accuracy is on 300 points drawn "
        "from the same generator with another seed, measured every "
        f"{first.eval_steps[0]} steps. Learning rates: "
        + ", ".join(f"{n} {_train.TRAIN_LR[n]:g}" for n in names)
        + ". Each run is one row of its optimizer's program, which also trains the sweep below."
    )
    report.image(
        "train_loss.png",
        "Training loss against step; final loss, lowest first: "
        + _ranked({n: _tail(r) for n, r in shown.items()}),
    )
    acc = {n: float(r.test_accuracy[-1]) for n, r in shown.items()}
    report.image(
        "train_accuracy.png",
        "Held-out accuracy against step; at the end, highest first: "
        + _ranked(acc, reverse=True)
        + f" (spread {max(acc.values()) - min(acc.values()):.3f})",
    )
    report.image("spiral_boundaries.png", "Decision regions on the spiral after training")
    header = ["optimizer", "final loss", "train acc", "test acc", "first update norm"]
    rows = [
        [
            name,
            _fmt(_tail(r), ".4f"),
            f"{r.train_accuracy:.3f}",
            f"{r.test_accuracy[-1]:.3f}",
            f"{r.first_step:.3g}",
        ]
        for name, r in shown.items()
    ]
    report.table(header, rows, f"{problem.title}: each optimizer after {first.steps} steps")
    if lessons:
        _lessons(report, out, _train.lessons(steps, seed), steps)
        if quick:
            report.text("The mixup study (Adam on the shapes, three seeds) runs without --quick.")
        else:
            _mixup(report, out, _train.mixup_study(2 * steps, SEEDS))
        _schedules(report, out, _sweep.optimizer_runs(_sweep.ZOO_OPTIMIZER, steps, seed, quick))
    return shown


def _norm(params):
    return float(np.sqrt(sum(float(np.sum(np.square(layer["w"]))) for layer in params)))


def _lessons(report, out, runs, steps):
    """Coupled L2 against AdamW, and Adam without bias correction, side by side."""
    early = max(10, min(100, steps // 5))
    a, b = runs["adam"], runs["adam (no bias corr.)"]
    w, l2 = runs["adamw"], runs["adam+l2"]
    _plots.curves(
        [
            ("spiral: decoupled vs coupled decay", {"adamw": w.loss, "adam+l2": l2.loss}),
            (
                "spiral: first steps of Adam",
                {k: runs[k].loss[:early] for k in ("adam", "adam (no bias corr.)")},
            ),
        ],
        out / "lessons.png",
        ylabel="training loss",
    )
    nw, nl = _norm(w.params), _norm(l2.params)
    ratio = b.first_step / a.first_step
    report.section("The lecture's lessons, measured")
    report.image(
        "lessons.png",
        f"Left: AdamW vs Adam with coupled L2 (same weight_decay {_train.WEIGHT_DECAY:g}): final "
        f"loss {_tail(w):.3f} vs {_tail(l2):.3f}. Right: Adam with and without bias correction "
        f"over the first {early} steps: loss at step {early} {a.loss[early - 1]:.3f} vs "
        f"{b.loss[early - 1]:.3f}",
    )
    harder = nl < nw
    report.text(
        f"Coupled L2 sends weight_decay * w through Adam's normalisation: with the same "
        f"weight_decay, Adam + coupled L2 ends with weights of norm {nl:.2f} against AdamW's "
        f"{nw:.2f}, so here it regularises {'harder' if harder else 'no harder'} than AdamW's "
        f"decoupled lr * weight_decay * w. Without bias correction Adam's first update is "
        f"{ratio:.2f} times larger in norm (the formula (1 - b1) / sqrt(1 - b2) gives 3.16 for "
        f"a coordinate whose gradient is far above eps)"
        + (
            "; at this small learning rate that only speeds the start."
            if b.loss[early - 1] <= a.loss[early - 1]
            else f"; here it costs loss early on ({b.loss[early - 1]:.3f} vs "
            f"{a.loss[early - 1]:.3f} at step {early})."
        )
    )
    report.table(
        ["comparison", "result"],
        [
            [
                "first update norm, Adam with / without bias correction",
                f"{a.first_step:.3g} / {b.first_step:.3g}",
            ],
            ["spiral final loss, AdamW / Adam + coupled L2", f"{_tail(w):.3f} / {_tail(l2):.3f}"],
            ["spiral weight norm, AdamW / Adam + coupled L2", f"{nw:.2f} / {nl:.2f}"],
            [
                "spiral test acc, AdamW / Adam + coupled L2",
                f"{w.test_accuracy[-1]:.3f} / {l2.test_accuracy[-1]:.3f}",
            ],
        ],
        "Decoupled against coupled weight decay, and the bias correction, on the spiral",
    )


def mixup_verdict(study) -> tuple[str, float, float]:
    """The mixup sentence, from the per-seed accuracies: ``(text, mean gap, spread)``.

    The gap is the mean over seeds of (held-out accuracy with mixup - without); the spread is
    the largest seed-to-seed range of either arm. The lesson shows only if |gap| > spread.
    """
    test, train = study.test_accuracy, study.train_accuracy
    gap = float(np.mean(test[1] - test[0]))
    spread = float(max(np.ptp(test[0]), np.ptp(test[1])))
    fit = float(np.mean(train[1] - train[0]))
    k = len(study.seeds)
    if abs(gap) > spread:
        held = f"{'raises' if gap > 0 else 'lowers'} held-out accuracy by {abs(gap):.3f}"
        held += f", more than the seed-to-seed spread ({spread:.3f})"
    else:
        held = (
            f"changes held-out accuracy by {gap:+.3f}, within the seed-to-seed spread "
            f"({spread:.3f}): no effect shown at this size"
        )
    trade = "trading training fit for held-out accuracy" if fit < 0 < gap and gap > spread else ""
    text = (
        f"Over {k} seeds, mixup (alpha {_train.MIXUP_ALPHA:g}) {held}; it changes training "
        f"accuracy by {fit:+.3f}" + (f", {trade}" if trade else "") + "."
    )
    return text, gap, spread


def _mixup(report, out, study):
    """Adam on the small shapes set with and without mixup, over several seeds."""
    panel = {}
    for arm, label in ((0, "adam"), (1, "adam+mixup")):
        for i, s in enumerate(study.seeds):
            panel[f"{label}" if i == 0 else f"{label} seed {s}"] = (
                study.eval_steps,
                study.curves[arm, i],
            )
    _plots.curves(
        [("shapes: held-out accuracy, every seed", panel)],
        out / "lessons_mixup.png",
        ylabel="held-out accuracy",
        logy=False,
    )
    text, gap, spread = mixup_verdict(study)
    report.image(
        "lessons_mixup.png",
        f"Shapes: held-out accuracy of Adam without and with mixup, {len(study.seeds)} seeds "
        f"each (mean gap {gap:+.3f}, seed-to-seed spread {spread:.3f})",
    )
    report.text(text)
    report.table(
        ["seed", "train acc: Adam / + mixup", "test acc: Adam / + mixup"],
        [
            [
                str(s),
                f"{study.train_accuracy[0, i]:.3f} / {study.train_accuracy[1, i]:.3f}",
                f"{study.test_accuracy[0, i]:.3f} / {study.test_accuracy[1, i]:.3f}",
            ]
            for i, s in enumerate(study.seeds)
        ],
        f"Mixup on {_train.shapes().title}, per seed",
    )


def _schedules(report, out, runs):
    """The schedule zoo and the spiral losses each schedule produces."""
    tables = {n: table for n, (table, _) in runs.schedules.items()}
    losses = {n: r.loss for n, (_, r) in runs.schedules.items()}
    final = {n: r.final_loss for n, (_, r) in runs.schedules.items()}
    _plots.curves(
        [
            ("learning rate", dict(tables), "learning rate"),
            (
                "spiral, momentum",
                {n: _smooth(v, 10) for n, v in losses.items()},
                "training loss (log scale)",
                True,
            ),
        ],
        out / "schedules.png",
        ylabel="",
        logy=False,
    )
    report.section("Learning-rate schedules")
    order = sorted(final, key=final.get)
    report.image(
        "schedules.png",
        f"Left: six schedules with peak {_sweep.ZOO_PEAK:g} over "
        f"{len(next(iter(tables.values())))} steps. Right: the training loss each gives SGD with "
        "momentum 0.9 on the spiral. Final loss, lowest first: "
        + ", ".join(f"{n} {final[n]:.3f}" for n in order),
    )
    decayed = [n for n in tables if n != "constant"]
    beat = [n for n in decayed if final[n] < final["constant"]]
    report.text(
        f"{len(beat)} of the {len(decayed)} decaying schedules end below the constant learning "
        f"rate's final loss ({final['constant']:.3f})" + (f": {', '.join(beat)}." if beat else ".")
    )
    report.table(
        ["schedule", "lr at start", "lr peak", "lr at end", "final loss"],
        [
            [n, f"{t[0]:.3g}", f"{t.max():.3g}", f"{t[-1]:.3g}", f"{final[n]:.4f}"]
            for n, t in tables.items()
        ],
        f"The schedule zoo on the spiral (SGD with momentum 0.9, peak learning rate "
        f"{_sweep.ZOO_PEAK:g})",
    )


def sweep(report, out, names, steps, seed, quick):
    """A vmapped learning-rate sweep per optimizer, timed beside a loop of single runs.

    The vmapped program is the training section's (cached when both run). With ``quick`` the
    loop is not timed (it would compile one more program per optimizer).
    """
    lrs = _sweep.learning_rates(quick)
    problem = _train.spiral(seed)
    jobs = [_sweep.optimizer_job(n, steps, seed, quick) for n in names]
    if not quick:
        jobs += [_train.single_job(problem, n, steps, seed) for n in names]
    _compile(jobs, "sweep   ")
    sweeps = {name: _sweep.sweep(name, steps, seed, quick, loop=not quick) for name in names}
    _plots.sweep_lines(sweeps, out / "sweep.png")
    report.section("Learning-rate sweeps with vmap")
    report.text(
        f"{len(lrs)} learning rates from {lrs[0]:g} to {lrs[-1]:g}, {_train._round(steps)[1]} "
        "full-batch steps on the spiral each. The learning rate is an array, so vmap trains all "
        "of them in one compiled program and one call (the same program trains the section "
        "above). "
        + (
            "The loop is not timed with --quick. "
            if quick
            else "The loop compiles one program whose learning rate is an argument and calls it "
            "once per value. "
        )
        + "Rebuilding the optimizer from a Python float for each value would instead compile "
        "once per value. Which of the two runs faster depends on the hardware; the table shows "
        "this machine's times."
    )
    inside = {n: _sweep.best(s)[1] for n, s in sweeps.items()}
    edge = [n for n, ok in inside.items() if not ok]
    report.image(
        "sweep.png",
        "Final training loss against learning rate (x: diverged); the best value is inside "
        "the grid for "
        + ("every optimizer" if not edge else f"all but {', '.join(edge)} (widen the grid)"),
    )
    rows = []
    for name, s in sweeps.items():
        i, ok = _sweep.best(s)
        times = (s.vmap_compile_s, s.vmap_run_s, s.loop_compile_s, s.loop_run_s)
        rows.append(
            [name, f"{lrs[i]:.2g}", "yes" if ok else "no (edge)", _fmt(s.final_loss[i], ".4f")]
            + ["-" if not np.isfinite(x) else f"{x:.2f}" for x in times]
        )
    header = ["optimizer", "best lr", "inside grid", "final loss", "vmap: compile s"]
    header += ["vmap: run s (all rows)", "loop: compile s", f"loop: run s ({len(lrs)} calls)"]
    report.table(header, rows, "The best learning rate of each optimizer, and the sweep's cost")
    return sweeps
