"""The ``gradtx`` command end to end in --quick mode, and the seed's lessons as assertions.

Trajectories are checked against NumPy float64 implementations of the seed's rules (written
here, from REFERENCE.md) with the demo's own learning rates; the command's runs reuse compiled
programs within this module (``gradtx.demo._jit``), so the file stays fast.
"""

from __future__ import annotations

import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.demo import _cli, _surfaces
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
    reach = {
        n: _surfaces.steps_to(_surfaces.losses(s, _surfaces.trajectory(s, n, 300)), 1e-2)
        for n in ("sgd", "momentum", "nesterov")
    }
    assert reach["sgd"] is not None
    assert reach["momentum"] < reach["sgd"] / 2 and reach["nesterov"] < reach["sgd"] / 2
    sgd = _surfaces.trajectory(s, "sgd", 20)
    assert np.all(np.diff(np.sign(sgd[:, 1])) != 0), "SGD zig-zags across the valley"
    mom = _surfaces.trajectory(s, "momentum", 80)
    assert mom[:, 0].max() > 0.5, "momentum overshoots the minimum along x"


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
    assert "surfaces [########################] 28/28" in capsys.readouterr().err


def test_train_command_with_variants(tmp_path):
    argv = ["train", "--quick", "--out", str(tmp_path), "--optimizers", "adam,adamw"]
    assert _cli.main([*argv, "--decay", "l2", "--no-bias-correction"]) == 0
    _check_report(tmp_path, TRAIN_PNGS)
    md = (tmp_path / "summary.md").read_text()
    assert "| adam+l2 |" in md and "| adam (no bias corr.) |" in md and "| adamw |" not in md
    # --mixup trains on mixed batches; its runs are exercised by the demo's lessons section.
    args = _cli.parse(["train", "--mixup", "--decay", "adamw"])
    assert args.mixup and args.bias_correction and args.decay == "adamw"


def test_sweep_command(tmp_path):
    assert _cli.main(["sweep", "--quick", "--out", str(tmp_path), "--optimizers", "sgd,adam"]) == 0
    _check_report(tmp_path, ["sweep.png"])
    rows = [r for r in (tmp_path / "summary.md").read_text().splitlines() if r.startswith("| sgd")]
    assert len(rows) == 1


def test_demo_command(tmp_path):
    # After the tests above, only adam's runs, adamw's spiral and the mixup run still compile.
    argv = ["--quick", "--out", str(tmp_path), "--optimizers", "adam"]
    assert _cli.main(argv) == 0  # demo is the default
    pngs = SURFACE_PNGS + TRAIN_PNGS + ["lessons.png", "lessons_mixup.png", "sweep.png"]
    _check_report(tmp_path, pngs)
    md = (tmp_path / "summary.md").read_text()
    assert "shapes test acc, Adam / Adam + mixup" in md
    first = re.search(r"first update norm.*\| ([\d.e-]+) / ([\d.e-]+) \|", md)
    assert float(first.group(2)) > 3 * float(first.group(1))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizers", "sgd,lion"], "unknown optimizer(s) lion"),
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
    assert _cli.main(["--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == _cli.INSTALL_HINT + "\n"
