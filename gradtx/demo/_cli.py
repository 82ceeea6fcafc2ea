"""The ``gradtx`` command: ``demo``, ``surfaces``, ``train`` and ``sweep``; bare, it prints help."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gradtx.demo._optimizers import SEED_NAMES

QUICK_NAMES = ("sgd", "momentum", "adam")  # --quick's optimizers unless --optimizers is given

COMMANDS = ("demo", "surfaces", "train", "sweep")
INSTALL_HINT = 'gradtx: the demo draws with matplotlib; install it with: pip install "gradtx[demo]"'


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage block) and exits with 2."""

    def error(self, message):
        self.exit(2, f"gradtx: error: {message} (see gradtx --help)\n")


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _optimizers(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SEED_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer(s) {', '.join(unknown) or repr(text)}; choose from "
            f"{','.join(SEED_NAMES)}"
        )
    return [n for n in SEED_NAMES if n in names]


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--out",
        type=Path,
        default=Path("gradtx-demo"),
        help="folder for index.html, summary.md and the PNGs (./gradtx-demo/)",
    )
    common.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: three optimizers, fewer steps and learning rates, no mixup study",
    )
    common.add_argument(
        "--steps",
        type=_positive,
        default=None,
        help="training steps (train and sweep: 1000, 150 with --quick; surfaces: per surface)",
    )
    common.add_argument(
        "--optimizers",
        type=_optimizers,
        default=None,
        help=f"comma-separated subset of {','.join(SEED_NAMES)} (default: all; with --quick: "
        f"{','.join(QUICK_NAMES)})",
    )
    common.add_argument("--seed", type=int, default=0, help="seed for data, init and noise")
    parser = _Parser(
        prog="gradtx",
        description="Show the optimization lessons of Stanford's CS231n course with real runs "
        "and pictures, written to an offline HTML report. Start with: gradtx demo",
    )
    from gradtx import __version__

    parser.add_argument("--version", action="version", version=f"gradtx {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.add_parser("demo", parents=[common], help="everything below, one report")
    sub.add_parser("surfaces", parents=[common], help="trajectories on 2-D test functions")
    tr = sub.add_parser(
        "train", parents=[common], help="the spiral classifier, the lessons, the schedules"
    )
    tr.add_argument(
        "--decay",
        choices=("adamw", "l2"),
        default="adamw",
        help="adamw: decoupled decay; l2: Adam with coupled L2 in adamw's place",
    )
    tr.add_argument(
        "--no-bias-correction",
        dest="bias_correction",
        action="store_false",
        help="train Adam without bias correction in adam's place",
    )
    tr.add_argument("--mixup", action="store_true", help="train on mixup batches (alpha 0.2)")
    sub.add_parser("sweep", parents=[common], help="vmapped learning-rate sweeps")
    return parser


def parse(argv):
    """The parsed arguments; ``command`` is None when none was given (then help is printed)."""
    return build_parser().parse_args(list(argv))


def _steps(args, default, quick_default):
    return args.steps or (quick_default if args.quick else default)


def _names(args):
    if args.optimizers is not None:
        return args.optimizers
    return list(QUICK_NAMES if args.quick else SEED_NAMES)


def run(args) -> Path:
    """Run the chosen command; returns the path of the written index.html."""
    from gradtx.demo import _sections
    from gradtx.demo._report import Report

    names, cmd, out = _names(args), args.command, args.out
    out.mkdir(parents=True, exist_ok=True)
    report = Report(f"gradtx {cmd}" + (" (quick)" if args.quick else ""))
    # The sweep's loop reuses the training runs' programs, so both train for the same steps.
    train_steps = sweep_steps = _steps(args, 1000, 150)
    if cmd in ("demo", "surfaces"):
        _sections.surfaces(report, out, names, args.steps, args.seed)
    if cmd in ("demo", "train"):
        options = {"lessons": True}
        if cmd == "train":
            options = dict(decay=args.decay, bias_correction=args.bias_correction, mixup=args.mixup)
        _sections.train(report, out, names, train_steps, args.seed, args.quick, **options)
    if cmd in ("demo", "sweep"):
        _sections.sweep(report, out, names, sweep_steps, args.seed, args.quick)
    index, _ = report.write(out)
    return index


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        build_parser().print_help()
        return 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        index = run(args)
    except OSError as err:
        print(f"gradtx: error: cannot write the report to {args.out}: {err}", file=sys.stderr)
        return 1
    _print_tables(index.parent / "summary.md")
    print(f"gradtx {args.command}: wrote {index} in {time.perf_counter() - start:.1f} s")
    return 0


def _print_tables(summary: Path):
    """Echo the report's headings and captioned tables (final loss, accuracy, ...) to stdout."""
    for line in summary.read_text().splitlines():
        if line.startswith(("#", "|")):
            print(line)
        elif line.startswith("Table: "):
            print()
            print(line)
