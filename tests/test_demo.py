"""The ``gradtx`` command end to end in --quick mode, and the seed's lessons as assertions.

Trajectories are checked against NumPy float64 implementations of the CS231n rules (written
here, from docs/reference/update-rules.md) with the demo's own learning rates; the command's
runs reuse compiled programs within this module (``gradtx.demo._jit``), so the file stays fast.
"""

from __future__ import annotations

import io
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.demo import _cli, _report, _sections, _surfaces, _train
from gradtx.demo._optimizers import SEED_NAMES, adam_without_bias_correction

matplotlib_image = pytest.importorskip("matplotlib.image")

GRADS = {  # the surfaces' gradients, by hand
    "ill_conditioned": lambda x, y: np.array([x, 50.0 * y]),
    "saddle": lambda x, y: np.array([x, y**3 - y]),
    "rosenbrock": lambda x, y: np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)]),
    "noisy": lambda x, y: np.array([x, 4.0 * y]),
}


def seed_rule(name, lr):
    """One step of the seed's pseudo-code for optimizer ``name``: (w, g, state, t) -> w, state."""

    def step(w, g, s, t):
        if name == "sgd":
            return w - lr * g, s
        if name == "momentum":
            v = 0.9 * s.get("v", 0) - lr * g
            return w + v, {"v": v}
        if name == "nesterov":
            pre_v = s.get("v", 0)
            v = 0.9 * pre_v - lr * g
            return w - 0.9 * pre_v + 1.9 * v, {"v": v}
        if name == "adagrad":
            sq = s.get("sq", 0) + g * g
            return w - lr * g / (np.sqrt(sq) + 1e-10), {"sq": sq}
        if name == "rmsprop":
            sq = 0.99 * s.get("sq", 0) + 0.01 * g * g
            return w - lr * g / (np.sqrt(sq) + 1e-8), {"sq": sq}
        m = 0.9 * s.get("m", 0) + 0.1 * g
        v = 0.999 * s.get("v", 0) + 0.001 * g * g
        step = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        decay = 1e-2 * w if name == "adamw" else 0.0
        return w - lr * (step + decay), {"m": m, "v": v}

    return step


@pytest.mark.parametrize("surface", _surfaces.SURFACES, ids=lambda s: s.name)
def test_trajectories_match_the_seed_rules(surface):
    steps = 6
    with jax.enable_x64(True):
        noise = np.asarray(_surfaces.gradient_noise(surface, steps, 0, jnp.float64))
        for name in SEED_NAMES:
            path = _surfaces.trajectory(surface, name, steps, 0, jnp.float64)
            rule, w, state = seed_rule(name, surface.learning_rates[name]), None, {}
            w = np.array(surface.start, np.float64)
            expected = [w]
            for t in range(steps):
                w, state = rule(w, GRADS[surface.name](*w) + noise[t], state, t + 1)
                expected.append(w)
            np.testing.assert_allclose(
                path, np.array(expected), rtol=1e-10, atol=1e-12, err_msg=name
            )


def test_lesson_momentum_beats_sgd_in_the_ill_conditioned_valley():
    s = _surfaces.BY_NAME["ill_conditioned"]
    paths = {n: _surfaces.trajectory(s, n, 300) for n in ("sgd", "momentum", "nesterov")}
    reach = {n: _surfaces.steps_to(_surfaces.losses(s, p), 1e-2) for n, p in paths.items()}
    assert reach["sgd"] is not None
    assert reach["momentum"] < reach["sgd"] / 2 and reach["nesterov"] < reach["sgd"] / 2
    sgd = paths["sgd"][:21]  # no noise on this surface: a prefix of a longer run
    assert np.all(np.diff(np.sign(sgd[:, 1])) != 0), "SGD zig-zags across the valley"
    assert paths["momentum"][:81, 0].max() > 0.5, "momentum overshoots the minimum along x"


def test_lesson_saddle_stalls_sgd_not_adam():
    s = _surfaces.BY_NAME["saddle"]
    final = {n: _surfaces.losses(s, _surfaces.trajectory(s, n))[-1] for n in ("sgd", "adam")}
    assert final["sgd"] > 0.1 > 0.01 > final["adam"]  # 0.25 is the loss at the saddle


def test_lesson_adagrad_step_dies():
    s = _surfaces.BY_NAME["rosenbrock"]
    with jax.enable_x64(True):
        path = _surfaces.trajectory(s, "adagrad", dtype=jnp.float64)
    grads = np.array([GRADS["rosenbrock"](*w) for w in path[:-1]])
    steps = np.diff(path, axis=0)
    effective = np.abs(steps) / np.abs(grads)  # lr / (sqrt(sum of g^2) + eps): only shrinks
    assert np.all(np.diff(effective, axis=0) <= 1e-9 * effective[1:])
    lengths = np.linalg.norm(steps, axis=1)
    assert lengths[-100:].max() < lengths[0] / 20
    assert _surfaces.losses(s, path)[-1] > 0.1, "it stops short of the minimum"


def test_lesson_bias_correction_shrinks_the_first_step():
    g = {"w": jnp.asarray([0.5, -2.0, 1e-3], jnp.float32)}
    lr = 1e-2
    firsts = []
    for tx in (gradtx.adam(lr), adam_without_bias_correction(lr)):
        u, _ = tx.update(g, tx.init(g), g)
        firsts.append(np.abs(np.asarray(u["w"], np.float64)))
    gn = np.abs(np.asarray(g["w"], np.float64))
    np.testing.assert_allclose(firsts[0], lr * gn / (gn + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(firsts[1], lr * 0.1 * gn / (np.sqrt(0.001) * gn + 1e-8), rtol=1e-5)
    assert np.all(firsts[1] > 3 * firsts[0])


def _check_report(out, pngs):
    html = (out / "index.html").read_text()
    refs = re.findall(r'src="([^"]+)"', html)
    assert sorted(refs) == sorted(pngs)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count("<table>") == html.count("</table>") > 0
    md = (out / "summary.md").read_text()
    assert sorted(re.findall(r"\]\(([^)]+\.png)\)", md)) == sorted(pngs)
    for name in pngs:
        image = matplotlib_image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0.01, f"{name} is blank"


SURFACE_PNGS = ["surfaces.png", "surfaces_loss.png", "surfaces_steps.png"]
TRAIN_PNGS = ["train_loss.png", "train_accuracy.png", "spiral_boundaries.png"]


def test_surfaces_command(tmp_path, capsys):
    assert _cli.main(["surfaces", "--quick", "--out", str(tmp_path)]) == 0
    _check_report(tmp_path, SURFACE_PNGS)
    err = capsys.readouterr().err
    # not a terminal: one line per phase, no carriage returns
    assert re.search(r"^surfaces: 3/3 in [\d.]+ s$", err, flags=re.M) and "\r" not in err
    md = (tmp_path / "summary.md").read_text()
    assert "ill_conditioned (" in md and "momentum is faster" in md
    assert "Table: Final loss on each surface" in md


def test_progress_redraws_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    for stream, live in ((Tty(), True), (io.StringIO(), False)):
        bar = _report.Progress(2, "phase", stream=stream)
        bar.step("a")
        bar.step("b")
        bar.close()
        text = stream.getvalue()
        assert ("\r" in text) == live
        assert text.count("\n") == 1
        if not live:
            assert re.fullmatch(r"phase: 2/2 in [\d.]+ s\n", text)


def test_surface_sentences_follow_the_data():
    s = _surfaces.BY_NAME
    still = np.tile([[-2.0, 1e-3]], (61, 1))  # never moves: stays near the saddle
    moving = np.linspace([-2.0, 1e-3], [0.0, 1.0], 61)
    paths = {name: {"sgd": still, "momentum": still, "adagrad": still} for name in s}
    paths["saddle"] = {"sgd": still, "adam": moving}
    text = _surfaces.lessons(paths)
    assert "does not zig-zag" in text["ill_conditioned"]
    assert "does not overshoot" in text["ill_conditioned"]
    assert "momentum is not faster" in text["ill_conditioned"]
    assert "(loss above 0.2; the saddle's is 0.25): sgd;" in text["saddle"]
    assert "at a minimum (loss below 1e-2): adam" in text["saddle"]
    assert "does not lower it here" in text["noisy"]
    assert "within 0.05 of the minimum (1, 1): none" in text["rosenbrock"]


def test_mixup_sentence_follows_the_data():
    def study(test_plain, test_mix, train_plain, train_mix):
        arr = lambda a, b: np.array([a, b], np.float64)
        return _train.MixupStudy(
            (0, 1, 2), arr(train_plain, train_mix), arr(test_plain, test_mix), None, None
        )

    text, gap, spread = _sections.mixup_verdict(
        study([0.80, 0.81, 0.79], [0.86, 0.87, 0.85], [1.0, 1.0, 1.0], [0.9, 0.92, 0.91])
    )
    assert np.isclose(gap, 0.06) and np.isclose(spread, 0.02)
    assert "raises held-out accuracy by 0.060" in text and "trading training fit" in text
    text, _, _ = _sections.mixup_verdict(
        study([0.650, 0.60, 0.70], [0.636, 0.62, 0.69], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    )
    assert "within the seed-to-seed spread" in text and "no effect shown" in text


def test_mixup_study_runs_every_seed_in_one_program(tmp_path):
    study = _train.mixup_study(20, (0, 1, 2))
    assert study.test_accuracy.shape == (2, 3) and study.curves.shape[:2] == (2, 3)
    assert np.all((study.test_accuracy >= 0) & (study.test_accuracy <= 1))
    _sections._mixup(_report.Report("t"), tmp_path, study)
    assert (tmp_path / "lessons_mixup.png").exists()


def test_train_command_with_variants(tmp_path):
    argv = ["train", "--quick", "--out", str(tmp_path), "--optimizers", "adam,adamw"]
    assert _cli.main([*argv, "--decay", "l2", "--no-bias-correction"]) == 0
    _check_report(tmp_path, TRAIN_PNGS)
    md = (tmp_path / "summary.md").read_text()
    assert "| adam+l2 |" in md and "| adam (no bias corr.) |" in md and "| adamw |" not in md
    # --mixup trains on mixed batches; the demo's lessons section runs the mixup study.
    args = _cli.parse(["train", "--mixup", "--decay", "adamw"])
    assert args.mixup and args.bias_correction and args.decay == "adamw"


def test_sweep_command(tmp_path):
    assert _cli.main(["sweep", "--quick", "--out", str(tmp_path), "--optimizers", "sgd,adam"]) == 0
    _check_report(tmp_path, ["sweep.png"])
    rows = [r for r in (tmp_path / "summary.md").read_text().splitlines() if r.startswith("| sgd")]
    assert len(rows) == 1 and "| yes |" in rows[0]  # the best value is inside the grid


def test_demo_command(tmp_path, capsys):
    # After the tests above, only momentum's program (with the schedule zoo) and the lessons'
    # still compile.
    argv = ["demo", "--quick", "--out", str(tmp_path), "--optimizers", "adam"]
    assert _cli.main(argv) == 0
    pngs = SURFACE_PNGS + TRAIN_PNGS + ["lessons.png", "sweep.png", "schedules.png"]
    _check_report(tmp_path, pngs)
    md = (tmp_path / "summary.md").read_text()
    assert "The mixup study (Adam on the shapes, three seeds) runs without --quick." in md
    first = re.search(r"first update norm.*\| ([\d.e-]+) / ([\d.e-]+) \|", md)
    assert float(first.group(2)) > 3 * float(first.group(1))
    out = capsys.readouterr().out
    assert "Table: The schedule zoo on the spiral" in out  # stdout tables carry captions


def test_bare_command_prints_help_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _cli.main([]) == 0
    assert "gradtx demo" in capsys.readouterr().out
    assert not (tmp_path / "gradtx-demo").exists()
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gradtx {gradtx.__version__}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--optimizers", "sgd,lion"], "unknown optimizer(s) lion"),
        (["train", "--steps", "0"], "expected a positive integer, got 0"),
        (["train", "--decay", "l1"], "invalid choice: 'l1'"),
        (["surfaces", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_argument_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_matplotlib_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert _cli.main(["demo", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == _cli.INSTALL_HINT + "\n"
