"""Fitting biophysical models to data: named, bounded parameters; a builder; protocols; Adam or L-BFGS.

    fit = Fit({"gna": (0.08, 0.01, 0.5), "gk": (0.05, 0.005, 0.2)},   # name -> (initial, low, high)
              build=lambda p: bf.Cell.point(area=31416.0, channels=[bf.channel("hh_na", gbar=p["gna"]),
                                                                     bf.channel("hh_k", gbar=p["gk"]), bf.channel("leak")]),
              protocols=[Protocol("step", [bf.IClamp(10.0, 5.0, 30.0, density=True)], 50.0,
                                  [bf.Probe("cell", "v")], traces={"cell.v": recorded})], dt=0.05)
    result = fit.run(optimizer="lbfgs", steps=30, restarts=4)
    result.values["gna"]

Every loss evaluation rebuilds the model with ``build(values)`` from the current values (tensors that
carry gradients), runs every protocol and sums their losses (``fit_targets``); the optimiser moves the
unconstrained raw tensors behind the bounds (``transforms``). Whatever the builder puts a value into can
be fitted if the core differentiates through it: channel densities (gbar), curve parameters, tabulated
curve values, Q10, synaptic weights and synapse time constants, stimulus amplitudes. The core turns
morphology (lengths, diameters), cm and ra into plain numbers, so they get no gradient: a parameter that
receives none is refused with an error naming it, unless it is listed in ``finite_differences``: its
gradient then comes from central differences of the loss (two extra runs without gradients per element
and evaluation, on the fast forward kernels).

Restarts run one after another: the first from the given initial values, the others from random points
inside the bounds; the best (lowest loss ever evaluated) wins. The simulation's batch dimension cannot
carry them, because the compiled gradient kernels take scalar parameters only (a batched parameter falls
back to the tensor path, far slower) and a tabulated curve's values are one table.
"""

import math
import time

import torch

from ..errors import ModelError, SimulationUnstableError
from .fit_parameters import FitParameters, Values
from .fit_targets import Protocol

OPTIMIZERS = ("adam", "lbfgs")


class Fit:
    """Parameters (``FitParameters`` specification), ``build(values) -> Cell or Network``, protocols, and
    the run settings shared by the protocols (dt ms, celsius °C, method, dtype, surrogate width 1/mV).
    ``finite_differences``: names of parameters the core does not differentiate (morphology, cm, ra), whose
    gradients are central differences of step ``difference_step`` in their raw (transformed) values."""

    def __init__(self, parameters, build, protocols, dt=0.025, celsius=6.3, method="backward_euler", dtype=torch.float64,
                 surrogate_beta=1.0, finite_differences=(), difference_step=1e-4):
        self.parameters = parameters if isinstance(parameters, FitParameters) else FitParameters(parameters)
        self.finite_differences = [finite_differences] if isinstance(finite_differences, str) else list(finite_differences)
        for name in self.finite_differences:
            if name not in self.parameters.items:
                raise ModelError(f"finite_differences: unknown parameter {name!r}; the fit's parameters are "
                                 f"{', '.join(self.parameters.names)}")
        if not difference_step > 0:
            raise ModelError(f"difference_step must be positive (a step in raw parameter units), got {difference_step!r}")
        self.difference_step = difference_step
        if not callable(build):
            raise ModelError(f"build must be a function values -> model (Cell or Network), got {type(build).__name__}")
        self.build = build
        self.protocols = [protocols] if isinstance(protocols, Protocol) else list(protocols)
        if not self.protocols or not all(isinstance(p, Protocol) for p in self.protocols):
            raise ModelError("protocols: give one or more Protocol objects")
        names = [p.name for p in self.protocols]
        if len(set(names)) != len(names):
            raise ModelError(f"protocols: names must be unique, got {names}")
        self.dt, self.celsius, self.method, self.dtype, self.surrogate_beta = dt, celsius, method, dtype, surrogate_beta

    def loss(self, values, horizon=None):
        """(total loss, {protocol: {term: value}}) for ``values`` (name -> tensor; keeps their gradients),
        over every protocol or its first ``horizon`` ms."""
        values = self._as_values(values)
        model = self.build(values)
        total, parts = 0.0, {}
        for protocol in self.protocols:
            result = protocol.simulate(model, self.dt, self.celsius, self.method, self.dtype, self.surrogate_beta, horizon)
            loss, terms = protocol.loss(result, self.surrogate_beta)
            total = total + loss
            parts[protocol.name] = terms
        if not any(parts.values()):
            raise ModelError(f"nothing to compare within the first {horizon:g} ms: every spike-feature window ends later "
                             "and there are no target traces; drop that horizon")
        return total, parts

    def simulate(self, values):
        """{protocol name: Result} for ``values``, without gradients (for reports)."""
        with torch.no_grad():
            model = self.build(self._as_values(values))
            return {p.name: p.simulate(model, self.dt, self.celsius, self.method, self.dtype, self.surrogate_beta)
                    for p in self.protocols}

    def _as_values(self, values):
        """``values`` as the builder's mapping: every parameter, tensors kept as given (with their gradients)."""
        checked = self.parameters.checked(values, "values")
        missing = [name for name in self.parameters.names if name not in checked]
        if missing:
            raise ModelError(f"values: parameter {missing[0]!r} has no value; give every one of {', '.join(self.parameters.names)}")
        return Values({name: values[name] if torch.is_tensor(values[name]) else checked[name] for name in checked},
                      self.parameters.names)

    def run(self, optimizer="lbfgs", steps=50, lr=None, restarts=1, seed=0, tolerance=1e-6, patience=3, initial=None,
            horizons=(), lbfgs_iterations=5, progress=True, on_evaluation=None, should_stop=None):
        """Fit; returns a ``FitResult``.

        ``steps`` optimiser steps per restart and stage (Adam: one loss evaluation each; L-BFGS: up to
        ``lbfgs_iterations`` iterations with a strong-Wolfe line search each). ``lr``: Adam's step in raw
        (transformed) units, default 0.05; L-BFGS's initial step, default 1. A stage stops early once its
        best loss has improved by less than ``tolerance`` (relative) over ``patience`` steps.
        ``horizons`` (ms, increasing): fit the first ``h`` ms of every protocol for each ``h`` in turn, each
        stage starting where the last ended, before the whole protocols. Spike trains make a trace loss
        rugged (a spike a little early or late costs as much as a missing one); growing the horizon lets the
        fit align the first spikes before it sees the later ones.
        ``restarts``: the first starts from ``initial`` (default: the specified initial values), the
        others from random points inside the bounds drawn from ``seed``; the lowest final loss wins.
        ``on_evaluation(restart, horizon, loss, values)`` is called after every loss evaluation (values:
        name -> detached tensor), and ``should_stop()`` is polled after every optimiser step: when it
        returns True the fit ends there, and the result (``stopped`` True) holds the best values so far.
        """
        if optimizer not in OPTIMIZERS:
            raise ModelError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        for name, value in (("steps", steps), ("restarts", restarts), ("patience", patience), ("lbfgs_iterations", lbfgs_iterations)):
            if int(value) != value or value < 1:
                raise ModelError(f"{name} must be a positive integer, got {value!r}")
        if not tolerance >= 0:
            raise ModelError(f"tolerance must be ≥ 0 (a relative loss improvement), got {tolerance!r}")
        horizons = [float(h) for h in horizons]
        if any(not h > 0 for h in horizons) or horizons != sorted(set(horizons)):
            raise ModelError(f"horizons must be increasing positive times (ms), got {horizons}")
        stages = [h for h in horizons if h < max(p.duration for p in self.protocols)] + [None]
        generator = torch.Generator().manual_seed(int(seed))
        starts = [initial] + [self.parameters.sample(generator) for _ in range(restarts - 1)]
        records, stopped = [], False
        for k, start in enumerate(starts):
            if stopped:
                break
            raw = self.parameters.raw(start)
            record = RestartRecord(k, {name: p.transform.forward(raw[name]).detach() for name, p in self.parameters.items.items()})
            record.raw = raw
            started = time.perf_counter()
            try:
                for horizon in stages:
                    stopped = self._stage(record, horizon, optimizer, steps, lr, tolerance, patience, lbfgs_iterations,
                                          progress, on_evaluation, should_stop)
                    if stopped:
                        break
            except SimulationUnstableError as err:
                record.error = str(err)
            record.wall_time = time.perf_counter() - started
            records.append(record)
        finished = [r for r in records if r.error is None]
        if not finished:
            raise ModelError("every restart failed: " + "; ".join(f"restart {r.index}: {r.error}" for r in records))
        best = min(finished, key=lambda r: r.loss)
        return FitResult(self.parameters, records, best.index, stopped)

    def _stage(self, record, horizon, optimizer, steps, lr, tolerance, patience, lbfgs_iterations, progress,
               on_evaluation=None, should_stop=None):
        """Optimise ``record``'s parameters on the protocols' first ``horizon`` ms (None: all of them),
        starting from its best values so far. Returns whether ``should_stop`` ended it."""
        raw = {name: value.detach().clone().requires_grad_(True) for name, value in record.raw.items()}
        leaves = list(raw.values())
        if optimizer == "adam":
            opt = torch.optim.Adam(leaves, lr=0.05 if lr is None else lr)
        else:
            opt = torch.optim.LBFGS(leaves, lr=1.0 if lr is None else lr, max_iter=lbfgs_iterations,
                                    line_search_fn="strong_wolfe", history_size=20)
        record.loss, record.stages = math.inf, record.stages + [(horizon, len(record.history))]

        def closure():
            opt.zero_grad()
            tracked = {name: t.detach() if name in self.finite_differences else t for name, t in raw.items()}
            loss, _ = self.loss(self.parameters.values(tracked), horizon)
            if loss.requires_grad:
                loss.backward()
            if record.evaluations == 0:
                self._check_gradients(raw)
            for name in self.finite_differences:
                raw[name].grad = self._difference_gradient(raw, name, horizon)
            value = float(loss.detach())
            record.evaluations += 1
            record.history.append(value)
            if on_evaluation is not None:
                values = self.parameters.values({name: t.detach() for name, t in raw.items()})
                on_evaluation(record.index, horizon, value, {name: v.detach().clone() for name, v in values.items()})
            if math.isfinite(value) and value < record.loss:
                record.loss = value
                record.raw = {name: value.detach().clone() for name, value in raw.items()}
                record.values = {name: p.transform.forward(record.raw[name]) for name, p in self.parameters.items.items()}
            return loss

        bar = None
        if progress:
            from tqdm.auto import tqdm

            stage = "all" if horizon is None else f"first {horizon:g} ms"
            bar = tqdm(total=steps, desc=f"fit restart {record.index} ({stage})", unit="step", leave=False)
        best_at, stopped = [], False
        try:
            for step in range(steps):
                opt.step(closure)
                record.steps += 1
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                best_at.append(record.loss)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{record.loss:.4g}", evals=record.evaluations)
                if len(best_at) > patience and best_at[-1 - patience] - best_at[-1] <= tolerance * abs(best_at[-1 - patience]):
                    record.stopped_early = True
                    break
        finally:
            if bar is not None:
                bar.close()
        if record.values is None:
            raise SimulationUnstableError("no finite loss was evaluated")
        return stopped

    def _difference_gradient(self, raw, name, horizon):
        """d loss / d raw[name] by central differences, element by element."""
        gradient = torch.zeros_like(raw[name])
        h = self.difference_step
        with torch.no_grad():
            for k in range(gradient.numel()):
                losses = []
                for sign in (1.0, -1.0):
                    shifted = {n: t.detach().clone() for n, t in raw.items()}
                    shifted[name].view(-1)[k] += sign * h
                    losses.append(float(self.loss(self.parameters.values(shifted), horizon)[0]))
                gradient.view(-1)[k] = (losses[0] - losses[1]) / (2 * h)
        return gradient

    def _check_gradients(self, raw):
        for name, tensor in raw.items():
            if tensor.grad is None and name not in self.finite_differences:
                raise ModelError(
                    f"parameter {name!r} gets no gradient from the loss: the model built from it does not depend on it "
                    "differentiably. The core keeps gradients through channel densities, curve parameters and "
                    "tabulated values, Q10, synaptic weights and time constants, and stimulus amplitudes; it turns "
                    "morphology lengths and diameters, cm and ra into plain numbers: fit those with "
                    f"Fit(..., finite_differences=[{name!r}]). Otherwise check that build() uses the value (a tensor), "
                    "not float(value).")


class RestartRecord:
    """One restart: its ``initial`` values, best ``values`` (name -> tensor) and their ``raw`` tensors, the
    ``loss`` of those values in its last stage, the loss of every evaluation (``history``), the ``stages`` as (horizon ms or
    None, index of the stage's first evaluation in ``history``), ``steps`` taken, ``evaluations``, whether
    a stage ``stopped_early``, ``wall_time`` (s), and the ``error`` that ended it (None when it finished)."""

    def __init__(self, index, initial):
        self.index, self.initial, self.raw = index, initial, None
        self.values, self.loss, self.history, self.stages = None, math.inf, [], []
        self.steps = self.evaluations = 0
        self.stopped_early, self.wall_time, self.error = False, 0.0, None


class FitResult:
    """The outcome of ``Fit.run``: ``values`` (name -> tensor) and ``loss`` of the best restart
    (``best``, an index into ``restarts``), every restart's record, and whether the user ``stopped`` it."""

    def __init__(self, parameters, restarts, best, stopped=False):
        self.parameters, self.restarts, self.best, self.stopped = parameters, restarts, best, stopped

    @property
    def values(self):
        return self.restarts[self.best].values

    @property
    def loss(self):
        return self.restarts[self.best].loss

    @property
    def wall_time(self):
        return sum(r.wall_time for r in self.restarts)

    def relative_errors(self, true_values):
        """{label: |fitted − true| / |true|} per element (labels 'name' or 'name[k]'), for the names in ``true_values``."""
        true = self.parameters.flat(self.parameters.checked(true_values, "true values"))
        fitted = self.parameters.flat(self.values)
        return {label: abs(fitted[label] - value) / abs(value) if value != 0 else abs(fitted[label])
                for label, value in true.items()}

    def table(self, true_values=None):
        """Rows {parameter, initial, fitted, true, relative_error} per element (true and error None when unknown)."""
        initial = self.parameters.flat(self.restarts[self.best].initial)
        fitted = self.parameters.flat(self.values)
        true = self.parameters.flat(self.parameters.checked(true_values, "true values")) if true_values else {}
        errors = self.relative_errors(true_values) if true_values else {}
        return [{"parameter": label, "initial": initial[label], "fitted": value, "true": true.get(label),
                 "relative_error": errors.get(label)} for label, value in fitted.items()]
