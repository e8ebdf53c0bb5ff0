"""Fit the dendritic channel densities of the L5-like cell (projects/l5_pyramidal.json) to somatic and dendritic traces.

    .venv/bin/python projects/fitting/l5_fit.py [--quick] [--out out/fitting/l5]

The targets are the project's own cell (apical hh_na 0.012, hh_k 0.0036, passive leak 3e-5 S/cm² on the
apical and basal dendrites) recorded at the soma, 400 µm up the apical trunk and at a basal tip, plus
Gaussian noise, under two protocols: current steps into the soma (-0.5 and 1 nA, one batched run) and a
step into the apical trunk. The fit starts with every density off by a factor of two or more and
recovers the four densities on a log scale between a tenth and ten times the truth.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

import brainfuse_core as bf
from brainfuse_core.project import load_project
from brainfuse_core.training.fit_report import write_report
from brainfuse_core.training.fit_targets import Protocol
from brainfuse_core.training.fitting import Fit

PROJECT = Path(__file__).resolve().parents[1] / "l5_pyramidal.json"
TRUE = {"apical_gna": 0.012, "apical_gk": 0.0036, "apical_pas": 3e-5, "basal_pas": 3e-5}  # S/cm², the project's
INITIAL = {"apical_gna": 0.006, "apical_gk": 0.008, "apical_pas": 8e-5, "basal_pas": 1.2e-5}
PROBES = ("soma", "trunk_400um", "basal_tip")
FULL = {"duration": 80.0, "dt": 0.025, "horizons": (15.0, 40.0)}
QUICK = {"duration": 25.0, "dt": 0.05, "horizons": ()}


def l5_model(project, values):
    """The project's cell with the fitted densities inserted over the file's own (later insertions win)."""
    network = project.build().network
    cell = network.populations["l5"].cell
    cell.insert(cell.channels["hh_na"], "apical", gbar=values["apical_gna"])
    cell.insert(cell.channels["hh_k"], "apical", gbar=values["apical_gk"])
    cell.insert(cell.channels["pas"], "apical", gbar=values["apical_pas"])
    cell.insert(cell.channels["pas"], "basal", gbar=values["basal_pas"])
    return network


def l5_problem(duration, dt, noise_mv=0.5, seed=0):
    project = load_project(PROJECT)
    probes = [probe for probe in project.build().probes if probe.name in PROBES]
    soma = Protocol("soma steps -0.5, 1 nA", [bf.IClamp(torch.tensor([-0.5, 1.0], dtype=torch.float64), delay=5.0,
                                                         dur=duration, population="l5", section="soma")],
                    duration, probes, traces={name: torch.zeros(1) for name in PROBES}, batch=2)
    trunk = Protocol("trunk step 0.6 nA", [bf.IClamp(0.6, delay=5.0, dur=duration, population="l5", section="apical[5]",
                                                     x=0.333)], duration, probes, traces={name: torch.zeros(1) for name in PROBES})
    truth = l5_model(project, {name: torch.tensor(value, dtype=torch.float64) for name, value in TRUE.items()})
    generator = torch.Generator().manual_seed(int(seed))
    for protocol in (soma, trunk):
        result = protocol.simulate(truth, dt, 6.3, "backward_euler", torch.float64, 1.0)
        for name in PROBES:
            clean = result.traces[name]
            protocol.traces[name] = clean + noise_mv * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    spec = {name: (INITIAL[name], TRUE[name] / 10, TRUE[name] * 10, "log") for name in TRUE}
    return Fit(spec, lambda values: l5_model(project, values), [soma, trunk], dt=dt)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="25 ms protocols at dt 0.05 ms")
    parser.add_argument("--out", default="out/fitting/l5", help="output folder (default out/fitting/l5)")
    parser.add_argument("--noise", type=float, default=0.5, help="noise standard deviation (mV)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20, help="L-BFGS steps per stage")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    fit = l5_problem(settings["duration"], settings["dt"], args.noise, args.seed)
    started = time.perf_counter()
    result = fit.run("lbfgs", steps=args.steps, horizons=settings["horizons"], tolerance=1e-5, seed=args.seed)
    elapsed = time.perf_counter() - started
    write_report(fit, result, args.out, TRUE, title="L5-like cell: dendritic densities from somatic and dendritic traces")
    errors = result.relative_errors(TRUE)
    print(f"best loss {result.loss:.5g} after {result.restarts[result.best].evaluations} evaluations in {elapsed:.1f} s")
    for label, error in errors.items():
        print(f"  {label:11s} fitted {float(result.values[label]):.6g} (true {TRUE[label]:g})  error {100 * error:.2f} %")
    print(f"report in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
