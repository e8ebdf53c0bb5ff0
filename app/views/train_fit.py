"""Fitting off the event loop, for the Train pane: the squid-axon problem of ``training.fit_squid``
(recover gNa, gK, gL and the K⁺ gate's tabulated n∞ from noisy current-clamp traces).

A ``FitJob`` runs ``Fit.run`` in a worker thread with the growing time horizons of the example
script (``projects/fitting/squid_fit.py``): every evaluation's loss and values are recorded for the
pane (``Fit.run``'s ``on_evaluation``), and a stop request ends the fit after its current optimiser
step (``should_stop``; the values of the last evaluation are then shown; only a finished fit has a
``FitResult`` to save). Nothing here imports Panel.
"""

import threading

import torch

from brainfuse_core.training.fit_squid import N_POINTS_MV, squid_problem

from .worker import WorkerJob

HORIZONS_MS = (10.0, 20.0, 35.0)
OPTIMIZERS = ("lbfgs", "adam")


class FitLog:
    """(evaluation, loss) of every loss evaluation and the latest values: written by the worker, drained by the pane."""

    def __init__(self):
        self._lock = threading.Lock()
        self._points = []
        self._drained = 0
        self.values = None

    def add(self, loss, values):
        with self._lock:
            self._points.append((len(self._points) + 1, float(loss)))
            self.values = values

    def drain(self):
        with self._lock:
            new, self._drained = self._points[self._drained:], len(self._points)
            return new

    def losses(self):
        with self._lock:
            return [loss for _, loss in self._points]

    def count(self):
        with self._lock:
            return len(self._points)


class FitJob(WorkerJob):
    """Fits the squid problem (targets with ``noise_mv`` mV of noise drawn from ``seed``) with ``optimizer``,
    ``steps`` per restart and stage, ``restarts`` restarts. ``state``: "running", then "finished" (``result``,
    a FitResult), "stopped" or "failed" (``error``). ``true``: the true values once the problem is built."""

    name = "brainfuse-fit"

    def __init__(self, optimizer="lbfgs", steps=40, restarts=1, noise_mv=0.5, seed=0):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.optimizer, self.steps, self.restarts, self.noise_mv, self.seed = optimizer, steps, restarts, noise_mv, seed
        self.log = FitLog()
        self.fit = self.true = self.result = None
        self.stages_done = 0
        self._horizon = "none"
        super().__init__()

    @property
    def fraction_done(self):
        """Share of the stages (horizons × restarts) begun, 1 once finished."""
        if self.state == "finished":
            return 1.0
        return min(1.0, max(0, self.stages_done - 1) / ((len(HORIZONS_MS) + 1) * self.restarts))

    def rows(self):
        """[(label, fitted, true, relative error)] for the latest values (the result's when finished)."""
        values = self.result.values if self.result is not None else self.log.values
        if values is None or self.fit is None:
            return []
        parameters = self.fit.parameters
        fitted = parameters.flat(values)
        true = parameters.flat(parameters.checked(self.true, "true values"))
        return [(label, value, true[label], abs(value - true[label]) / abs(true[label])) for label, value in fitted.items()]

    def n_inf(self):
        """(points mV, true n∞, fitted n∞) at the tabulated gate's fitted control points, or None before any evaluation."""
        values = self.result.values if self.result is not None else self.log.values
        if values is None or self.true is None:
            return None
        points = list(N_POINTS_MV[:-1])
        return points, self.true["n_inf"].tolist(), torch.as_tensor(values["n_inf"]).detach().tolist()

    def _run(self):
        self.phase = "simulating the targets"
        fit, self.true = squid_problem(noise_mv=self.noise_mv, seed=self.seed)
        self.fit = fit

        def evaluated(restart, horizon, loss, values):
            if (restart, horizon) != self._horizon:
                self._horizon = (restart, horizon)
                self.stages_done += 1
                self.phase = "fitting " + ("the whole traces" if horizon is None else f"the first {horizon:g} ms")
            self.log.add(loss, values)

        result = fit.run(optimizer=self.optimizer, steps=self.steps, restarts=self.restarts, seed=self.seed,
                         horizons=HORIZONS_MS, progress=False, on_evaluation=evaluated, should_stop=self.stop_requested)
        if result.stopped:
            return "stopped"
        self.result = result
        return None
