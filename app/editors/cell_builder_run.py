"""Running one cell of the project under a current step at its soma, off the event loop.

The cell is built from the document by the core (its channels, the project's own included),
simulated by ``brainfuse_core.Simulation`` in a worker thread with a probe of every node, and
each chunk the monitor reports is copied into ``node_v`` (nodes × samples, mV) for the views to
read while the run goes on. Nothing here imports Panel, so it is testable without a server.
Units: nA, ms, mV, µm.
"""

import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from brainfuse_core import BrainFuseError, IClamp, Probe, RunCancelled, Simulation
from brainfuse_core.project.build import build_cell, build_channels, run_settings

from ..views.runner import CHUNK_TARGET_S, STEP_OVERHEAD_S, STEP_PER_NODE_S
from . import cell_builder_geometry as geometry

MAX_SAMPLES = 2000      # per node; a longer run keeps every k-th step
MAX_VALUES = 4_000_000  # node × sample voltages kept (32 MB); a cell of many nodes keeps fewer samples

log = logging.getLogger(__name__)


@dataclass
class Step:
    """A current step of ``amp`` nA into the soma (the root section's centre) from ``delay`` for ``dur`` ms,
    the whole run lasting ``tstop`` ms."""

    amp: float = 1.0
    delay: float = 1.0
    dur: float = 2.0
    tstop: float = 20.0


class CellRun:
    """One run of cell ``cell_name`` of ``doc`` under ``step``, with a space–time path from the soma to ``tip``."""

    def __init__(self, doc, cell_name, tip, step):
        entry = doc["cells"][cell_name]
        self.cell = build_cell(cell_name, entry, build_channels(doc.get("channels", {})))
        settings = run_settings(doc["run"])
        self.dt, self.celsius, self.method = settings.dt, settings.celsius, settings.method
        self.step, self.cell_name, self.tip = step, cell_name, tip
        morphology = entry["morphology"]
        layout = self.cell.layout
        self.path, self.distances = geometry.path_nodes(layout, morphology, tip)
        self.soma_node, self.tip_node = self.cell.location(), layout.node(tip, 1.0)
        self.n_steps = max(1, round(step.tstop / self.dt))
        self.every = max(1, math.ceil(self.n_steps / min(MAX_SAMPLES, max(1, MAX_VALUES // layout.size))))
        samples = self.n_steps // self.every + 1
        self.t = np.arange(samples) * self.every * self.dt
        self.node_v = np.full((layout.size, samples), np.nan)
        self.node_v[:, 0] = float(self.cell.v_init)
        self.filled = 1  # columns of node_v written so far
        self.state, self.error = "running", ""
        self._probe = Probe("cell", "v", cells=[0], nodes="all", every=self.every, name="cell.v@all")
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._work, name="brainfuse-cell-run", daemon=True)

    @property
    def done(self):
        return self.state in ("finished", "stopped", "failed")

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._cancel.set()

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self):
        stimulus = IClamp(self.step.amp, delay=self.step.delay, dur=self.step.dur)
        per_step = STEP_OVERHEAD_S + STEP_PER_NODE_S * self.cell.layout.size
        chunk = max(self.every, min(self.n_steps, int(CHUNK_TARGET_S / per_step)) // self.every * self.every)
        try:
            simulation = Simulation(self.cell, [stimulus], [self._probe], dt=self.dt, celsius=self.celsius, method=self.method)
            simulation.run(self.n_steps * self.dt, monitor=self._monitor, chunk_steps=chunk)
        except RunCancelled:
            self.state = "stopped"
        except BrainFuseError as err:
            self.state, self.error = "failed", " ".join(str(err).split())
        except Exception as err:  # noqa: BLE001 - shown to the user as one line; the traceback goes to the log
            log.exception("cell run failed")
            self.state, self.error = "failed", " ".join(f"{type(err).__name__}: {err}".split())
        else:
            self.state = "finished"

    def _monitor(self, report):
        values = report.traces[self._probe.name][0, 0].cpu().numpy()  # (nodes, samples of this chunk)
        columns = [s // self.every for s in range(report.start + 1, report.stop + 1) if s % self.every == 0]
        if columns:
            self.node_v[:, columns[0]:columns[-1] + 1] = values[:, :len(columns)]
            self.filled = columns[-1] + 1
        if self._cancel.is_set():
            raise RunCancelled

    # ------------------------------------------------------------------ reading (any thread)
    @property
    def time(self):
        """Simulated time reached (ms)."""
        return self.t[self.filled - 1]

    def latest(self):
        """(nodes,) mV at the latest sample."""
        return self.node_v[:, self.filled - 1].copy()

    def path_image(self, rows=120):
        """(rows, filled) mV along the path resampled to ``rows`` evenly spaced distances, and their span (µm)."""
        distances = np.asarray(self.distances)
        grid = np.linspace(distances[0], distances[-1], rows)
        values = self.node_v[self.path, :self.filled]
        image = np.empty((rows, values.shape[1]))
        for column in range(values.shape[1]):
            image[:, column] = np.interp(grid, distances, values[:, column])
        return image, (float(distances[0]), float(distances[-1]))

    def peak_times(self):
        """(distances µm, time of each path node's highest voltage ms), for the nodes along the path."""
        values = self.node_v[self.path, :self.filled]
        return np.asarray(self.distances), self.t[np.argmax(values, axis=1)]
