"""The ``brainfuse`` command line.

``brainfuse serve [PROJECT]`` starts the workbench (a web app on localhost);
``brainfuse run PROJECT`` simulates a project file and writes traces, spikes, a summary and a
plot; ``brainfuse validate`` runs the validation cases against the reference simulators;
``brainfuse train PROJECT`` runs a project's HH-vs-LIF experiment (its "training" section) and
writes the results table, plots and trained models; ``brainfuse deploy PROJECT --chip NAME`` quantizes a
project for a neuromorphic chip, runs it in float, fixed point and Lava, and reports its core map, power
and float-vs-chip agreement (a failed Lava run exits with status 3 after the other results).
Problems with the user's input print one line ``error: ...`` and exit with status 2; a
failed validation case exits with status 1.
"""

import argparse
import importlib
import sys
from pathlib import Path

from .errors import BrainFuseError
from .project import load_project

EXIT_FAILED_CASES = 1
EXIT_ERROR = 2
EXIT_LAVA_FAILED = 3


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except BrainFuseError as err:
        return _error(err)
    except OSError as err:
        # Output directories that cannot be created or written.
        return _error(f"{err.filename}: {err.strerror}" if err.filename else err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser():
    parser = argparse.ArgumentParser(prog="brainfuse", description="Differentiable biophysical neuron simulation.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    serve = verbs.add_parser("serve", help="start the workbench in the browser",
                             description="Start the BrainFuse workbench, a web app served on this machine.")
    serve.add_argument("project", type=Path, nargs="?", help="a project file to open (default: the squid-axon example)")
    serve.add_argument("--port", type=_port, default=5006, help="TCP port (default 5006)")
    serve.add_argument("--address", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 exposes it to the network)")
    serve.add_argument("--show", action="store_true", help="open a browser tab")
    serve.set_defaults(handler=_serve)

    run = verbs.add_parser("run", help="simulate a project file", description="Simulate a project file and save the results.")
    run.add_argument("project", type=Path, help="a project file (.json)")
    run.add_argument("--out", type=Path, help="output directory (default: out/<project name>)")
    run.add_argument("--duration", type=_positive_ms, help="simulated time in ms (default: the project's run.duration)")
    run.set_defaults(handler=_run)

    validate = verbs.add_parser("validate", help="compare against reference simulators",
                                description="Run the validation cases and print a pass/fail table.")
    validate.add_argument("--quick", action="store_true", help="shorter, coarser variants of each case (for CI)")
    validate.set_defaults(handler=_validate)

    train = verbs.add_parser("train", help="run a project's HH-vs-LIF training experiment",
                             description="Train the project's network with HH and LIF neurons over several seeds, evaluate "
                                         "them and save the results table, plots and models.")
    train.add_argument("project", type=Path, help="a project file (.json) with a training section")
    train.add_argument("--out", type=Path, help="output directory (default: out/<project name>)")
    train.add_argument("--quick", action="store_true", help="the project's short smoke-test settings")
    train.add_argument("--neuron", choices=("hh", "lif", "both"), default="both", help="which neurons (default both)")
    train.add_argument("--seeds", type=_positive_count, help="use seeds 0..N-1 (default: the project's seeds)")
    train.set_defaults(handler=_train)

    deploy = verbs.add_parser("deploy", help="deploy a project to a neuromorphic chip profile",
                              description="Quantize a project to fixed point, run it in float, in the fixed-point reference "
                                          "and in Lava, map it onto a chip's cores and estimate its power.")
    deploy.add_argument("project", type=Path, help="a project file (.json)")
    deploy.add_argument("--chip", default="loihi2", help="chip profile: loihi2, loihi1 or a profile JSON file (default loihi2)")
    deploy.add_argument("--out", type=Path, help="output directory (default: out/<project name>/deploy)")
    deploy.add_argument("--no-lava", action="store_true", help="skip the Lava run (the NumPy fixed-point reference still runs)")
    deploy.add_argument("--weight-bits", type=_positive_count, default=8, help="weight mantissa bits, 2-8 (default 8)")
    deploy.add_argument("--substeps", type=_positive_count, default=4, help="HH substeps per chip step (default 4)")
    deploy.add_argument("--duration", type=_positive_ms, help="simulated time in ms (default: the project's run.duration)")
    deploy.add_argument("--timeout", type=_positive_ms, default=120.0, help="seconds the Lava run may take (default 120)")
    deploy.set_defaults(handler=_deploy)
    return parser


def _positive_ms(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of ms: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of ms, got {text}")
    return value


def _positive_count(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {value}")
    return value


def _serve(args):
    if args.project is not None:
        load_project(args.project)  # a broken file is reported here, before any server starts
    try:
        from app.server import serve
    except ModuleNotFoundError as err:
        return _error(f"the workbench needs the {err.name!r} package; install BrainFuse with its dependencies "
                      f"(bash .ci/setup.sh, or pip install -e .)")
    print(f"BrainFuse workbench: http://{'localhost' if args.address == '127.0.0.1' else args.address}:{args.port}/ "
          f"(Ctrl+C stops it)", flush=True)
    serve(args.project, port=args.port, address=args.address, show=args.show)
    return 0


def _run(args):
    project = load_project(args.project)
    out = args.out if args.out is not None else Path("out") / args.project.stem
    result = project.run(args.duration, progress=True)
    result.save(out)
    result.plot(out / "plot.png")
    print(f"{args.project.stem}: {result.duration:g} ms simulated in {result.wall_time:.1f} s")
    for name, summary in result.spike_summary().items():
        n_cells = result.spikes[name].n_cells
        print(f"  {name}: {_count(summary['spikes'], 'spike')}, mean rate {summary['mean_rate_hz']:.2f} Hz "
              f"over {_count(n_cells, 'cell')}")
    print(f"wrote {out}/: traces.npz, spikes.csv, summary.json, plot.png")
    return 0


def _train(args):
    from .training.experiments import TrainingSpec, run_experiment

    spec = TrainingSpec.from_project(load_project(args.project))
    if args.quick:
        spec = spec.quick()
    if args.neuron != "both":
        spec = spec.replace(neurons=(args.neuron,))
    if args.seeds is not None:
        spec = spec.replace(seeds=tuple(range(args.seeds)))
    out = args.out if args.out is not None else Path("out") / args.project.stem
    results = run_experiment(spec, out, quick=args.quick)
    print((out / "results.md").read_text(encoding="utf-8"))
    plots = "learning_curves.png" + (", accuracy_vs_severity.png" if spec.task == "digits_noise" else "")
    print(f"wrote {out}/: results.json, results.md, {plots}, models/ ({len(results['runs'])} trained models)")
    return 0


def _deploy(args):
    from .chip.deploy import deploy

    out = args.out if args.out is not None else Path("out") / args.project.stem / "deploy"
    deployment = deploy(args.project, chip=args.chip, weight_bits=args.weight_bits, substeps=args.substeps,
                        duration=args.duration, use_lava=not args.no_lava, timeout=args.timeout,
                        progress=lambda stage, fraction: print(f"[{100 * fraction:3.0f} %] {stage}", file=sys.stderr, flush=True))
    files = deployment.save(out)
    print(deployment.summary())
    print(f"wrote {out}/: {', '.join(path.name for path in files)}")
    if deployment.lava_error:
        print("error: the Lava run failed (the results above come from the NumPy fixed-point reference):", file=sys.stderr)
        print(deployment.lava_error, file=sys.stderr)
        return EXIT_LAVA_FAILED
    return 0


def _count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


VALIDATION_FIELDS = ("name", "metric", "value", "limit", "passed", "note")


def _validate(args):
    try:
        validation = importlib.import_module("brainfuse_core.validation")
    except ModuleNotFoundError as err:
        if err.name == "brainfuse_core.validation":
            return _error("the validation cases (brainfuse_core.validation) are not part of this installation")
        return _error(f"the validation cases need the {err.name!r} package, which is not installed")
    run_cases = getattr(validation, "run_cases", None)
    if run_cases is None:
        return _error("brainfuse_core.validation has no run_cases(); this installation is incomplete")
    rows = [_case_fields(case) for case in run_cases(quick=args.quick)]
    if not rows:
        return _error("no validation cases ran")
    print(_table(rows))
    failed = [row["name"] for row in rows if row["passed"] is False]
    judged = sum(row["passed"] is not None for row in rows)
    print(f"{judged - len(failed)} of {judged} judged results passed"
          + (f"; failed: {', '.join(dict.fromkeys(failed))}" if failed else ""))
    return EXIT_FAILED_CASES if failed else 0


def _case_fields(case):
    """A case result may be a mapping or an object with the same fields."""
    get = case.get if isinstance(case, dict) else lambda field: getattr(case, field, None)
    row = {field: get(field) for field in VALIDATION_FIELDS}
    row["passed"] = None if row["passed"] is None else bool(row["passed"])  # numpy booleans too
    return row


# passed is None for numbers that are reported but not judged, and for skipped cases.
VERDICTS = {True: "pass", False: "FAIL", None: "-"}


def _table(rows):
    header = ("case", "metric", "value", "limit", "result", "note")
    cells = [header] + [
        (str(row["name"]), str(row["metric"]), _number(row["value"]), _number(row["limit"]),
         VERDICTS[row["passed"]], str(row["note"] or ""))
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _number(value):
    """Floats to 4 significant digits; a (low, high) limit as a range; None as blank."""
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _error(message):
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
