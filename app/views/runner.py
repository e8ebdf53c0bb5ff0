"""Running a project off the event loop, for the live views.

A ``Runner`` belongs to one browser session and runs one simulation at a time, each in its own
worker thread (a ``Run``). After every chunk of steps the worker hands what the chunk recorded
to the run's ``LiveData``, which keeps only what the views draw (voltage traces thinned to a
bounded number of points, spikes of batch 0, binned population rates) until the views drain it.
Pausing blocks the worker between chunks; stopping raises ``RunCancelled`` there. Nothing here
imports Panel, so all of it can be tested without a server or a browser.

The worker needs no thread limit of its own: the core runs models whose state tensors hold fewer
than 10⁵ values (a 10⁴-cell network included) on one intra-op thread, so on a 2-core machine a run
leaves a core to the server; bigger models use every core, as they would outside the workbench.
"""

import logging
import math
import os
import threading
import time

import numpy as np

from brainfuse_core import BrainFuseError, Probe, RunCancelled, Simulation

MAX_TRACES = 500
MAX_TRACE_POINTS = 4000
MIN_TRACE_POINTS = 400
# The browser re-indexes every point of every trace on each update, so what all traces together
# keep is bounded; a few traces get the full MAX_TRACE_POINTS each, hundreds get fewer.
TRACE_POINT_BUDGET = 100_000
RATE_BIN_MS = 5.0
CHUNK_TARGET_S = 0.03
SIMULATION_THREADS = max(1, (os.cpu_count() or 1) - 1)
"""Threads a workbench run may use: all cores but one, which stays with the server and the browser so
the page answers clicks (Pause, Stop) while a compiled network kernel runs."""
# Rough wall time of one step on a loaded 2-core machine: a fixed cost per step (Python and
# dispatch) plus a cost per compartment. Only used to size chunks, so a factor of two either way
# just means views update a little more or less often.
STEP_OVERHEAD_S = 4e-4
STEP_PER_NODE_S = 5e-7

log = logging.getLogger(__name__)


def spread(n, count):
    """``count`` cell indices spread evenly over 0..n-1, starting with cell 0."""
    count = min(int(count), int(n))
    return [k * n // count for k in range(count)] if count > 0 else []


def simulated_populations(build):
    """[(name, number of cells)] of the populations that are simulated (not spike sources), in order."""
    return [(name, pop.n) for name, pop in build.network.populations.items() if not pop.is_source]


class TracePlan:
    """Which membrane voltages a run shows: the project's own voltage recordings plus, for each
    population, ``counts[population]`` cells spread over it; at most ``limit`` traces in all."""

    def __init__(self, build, counts, limit=MAX_TRACES):
        sizes = dict(simulated_populations(build))
        sites = {}
        for probe in build.probes:
            if probe.variable == "v":
                cells = range(sizes[probe.population]) if probe.cells is None else probe.cells
                sites.setdefault((probe.population, probe.section, probe.x), []).extend(cells)
        for population, count in counts.items():
            if population in sizes:
                sites.setdefault((population, None, 0.5), []).extend(spread(sizes[population], count))
        self.sites, self.labels, taken = [], [], 0
        wanted = 0
        for (population, section, x), cells in sites.items():
            cells = sorted(set(cells))
            wanted += len(cells)
            cells = cells[: max(0, limit - taken)]
            if not cells:
                continue
            taken += len(cells)
            self.sites.append((population, section, x, cells))
            where = "" if section is None and x == 0.5 else f" @{section or 'root'}({x:g})"
            self.labels += [f"{population}[{cell}]{where}" for cell in cells]
        self.hidden = wanted - taken

    def __len__(self):
        return len(self.labels)

    def probes(self):
        return [Probe(population, "v", cells=cells, section=section, x=x, name=f"live:{k}")
                for k, (population, section, x, cells) in enumerate(self.sites)]


def points_per_trace(n_traces):
    """Display points kept per voltage trace when ``n_traces`` traces are shown."""
    return max(MIN_TRACE_POINTS, min(MAX_TRACE_POINTS, TRACE_POINT_BUDGET // max(1, n_traces)))


def chunk_steps_for(build, n_steps, target_s=CHUNK_TARGET_S):
    """Steps per chunk so that one chunk takes about ``target_s`` of wall time."""
    nodes = sum(pop.n * pop.cell.layout.size for pop in build.network.populations.values() if not pop.is_source)
    per_step = STEP_OVERHEAD_S + STEP_PER_NODE_S * nodes
    return max(1, min(n_steps, int(target_s / per_step)))


class MinMaxThinner:
    """Thins traces sharing one time axis to two points per ``stride`` samples (the minimum and
    the maximum, in the order they occur), so spikes stay visible however long the run."""

    def __init__(self, n_traces, stride):
        self.stride = max(1, int(stride))
        self._t = np.empty(0)
        self._v = np.empty((n_traces, 0))

    def push(self, t, v):
        """Append samples ``t`` (k,), ``v`` (n_traces, k); returns the thinned points now complete."""
        if self.stride == 1:
            return t, v
        self._t = np.concatenate([self._t, t])
        self._v = np.concatenate([self._v, v], axis=1)
        whole = len(self._t) // self.stride * self.stride
        out = self._thin(self._t[:whole], self._v[:, :whole])
        self._t, self._v = self._t[whole:], self._v[:, whole:]
        return out

    def flush(self):
        """The points of the last, partial bucket."""
        out = self._thin(self._t, self._v) if len(self._t) else (np.empty(0), self._v[:, :0])
        self._t, self._v = self._t[:0], self._v[:, :0]
        return out

    def _thin(self, t, v):
        size = min(self.stride, len(t))
        if size <= 1:
            return t, v
        buckets = len(t) // size
        values = v.reshape(v.shape[0], buckets, size)
        low, high = values.argmin(axis=2), values.argmax(axis=2)
        first = np.where(low <= high, values.min(axis=2), values.max(axis=2))
        second = np.where(low <= high, values.max(axis=2), values.min(axis=2))
        times = t.reshape(buckets, size)
        points_t = np.stack([times[:, 0], times[:, -1]], axis=1).reshape(-1)
        points_v = np.stack([first, second], axis=2).reshape(v.shape[0], -1)
        return points_t, points_v


class Update:
    """New data since the last drain. ``trace_t`` (k,) ms and ``trace_v`` (traces, k) mV;
    ``spikes[population]`` = (times ms, raster rows); ``rate_t`` (m,) ms and ``rates`` (populations, m) Hz."""

    def __init__(self, trace_t, trace_v, spikes, rate_t, rates):
        self.trace_t, self.trace_v, self.spikes, self.rate_t, self.rates = trace_t, trace_v, spikes, rate_t, rates

    @property
    def empty(self):
        return not len(self.trace_t) and not len(self.rate_t) and not any(len(t) for t, _ in self.spikes.values())


class LiveData:
    """What the views of one run still have to draw; filled by the worker, drained by the views (thread-safe)."""

    def __init__(self, n_steps, dt, n_traces, populations, rate_bin_ms=RATE_BIN_MS, max_points=MAX_TRACE_POINTS):
        self.n_steps, self.dt, self.n_traces = n_steps, dt, n_traces
        self.populations = list(populations)
        self.duration = n_steps * dt
        self.steps_done = 0
        self.spike_count = 0
        self._lock = threading.Lock()
        stride = 1 if n_steps <= max_points else math.ceil(2 * n_steps / max_points)
        self._thinner = MinMaxThinner(n_traces, stride)
        self._traces = []
        offsets = np.cumsum([0] + [n for _, n in self.populations])
        self.offsets = {name: int(offset) for (name, _), offset in zip(self.populations, offsets)}
        self._spikes = {name: [] for name, _ in self.populations}
        self.rate_bin = max(rate_bin_ms, self.duration / 2000)
        self._counts = np.zeros((len(self.populations), max(1, math.ceil(self.duration / self.rate_bin - 1e-9))))
        self._rates_sent = 0
        self._rates_ready = 0

    @property
    def time(self):
        """Simulated time reached (ms)."""
        return self.steps_done * self.dt

    @property
    def fraction_done(self):
        return self.steps_done / self.n_steps

    def add(self, report, probe_names):
        """Take in one chunk (a ChunkReport); ``probe_names`` in the order of the plan's traces."""
        parts = [report.traces[name][0].cpu().numpy() for name in probe_names]
        values = np.concatenate(parts, axis=0) if parts else np.empty((0, report.stop - report.start))
        t = (report.start + 1 + np.arange(values.shape[1])) * report.dt
        with self._lock:
            self._traces.append(self._thinner.push(t, values))
            for k, (name, _) in enumerate(self.populations):
                times, cells, batch = report.spikes[name]
                keep = batch == 0
                times, cells = times[keep], cells[keep]
                self._spikes[name].append((times, cells + self.offsets[name]))
                self.spike_count += len(times)
                bins = np.minimum((times / self.rate_bin).astype(int), self._counts.shape[1] - 1)
                np.add.at(self._counts[k], bins, 1)
            self.steps_done = report.stop
            self._rates_ready = min(self._counts.shape[1], int(report.time / self.rate_bin + 1e-9))

    def finish(self):
        """The run is complete: release the last partial bucket of trace points and the last rate bin."""
        with self._lock:
            self._traces.append(self._thinner.flush())
            self._rates_ready = self._counts.shape[1]

    def drain(self):
        """An Update with everything added since the last drain."""
        with self._lock:
            traces, self._traces = self._traces, []
            spikes = {}
            for name, parts in self._spikes.items():
                spikes[name] = (np.concatenate([p[0] for p in parts]) if parts else np.empty(0),
                                np.concatenate([p[1] for p in parts]) if parts else np.empty(0, dtype=int))
                self._spikes[name] = []
            first, last = self._rates_sent, self._rates_ready
            self._rates_sent = last
            counts = self._counts[:, first:last].copy()
        trace_t = np.concatenate([t for t, _ in traces]) if traces else np.empty(0)
        trace_v = np.concatenate([v for _, v in traces], axis=1) if traces else np.empty((self.n_traces, 0))
        starts = np.arange(first, last) * self.rate_bin
        widths = np.minimum(self.rate_bin, self.duration - starts)
        sizes = np.array([n for _, n in self.populations], dtype=float)[:, None]
        rates = counts / (sizes * widths * 1e-3) if len(starts) else counts
        return Update(trace_t, trace_v, spikes, starts + widths / 2, rates)


class Run:
    """One simulation of a project build for ``duration`` ms in a worker thread, showing ``plan``'s traces."""

    def __init__(self, build, duration, plan, chunk_steps=None):
        self.build, self.plan = build, plan
        self.dt = build.run.dt
        self.n_steps = max(1, round(duration / self.dt))
        self.duration = self.n_steps * self.dt
        self.chunk_steps = chunk_steps or chunk_steps_for(build, self.n_steps)
        self.data = LiveData(self.n_steps, self.dt, len(plan), simulated_populations(build),
                             max_points=points_per_trace(len(plan)))
        self.state = "running"
        self.error = ""
        self._probes = plan.probes()
        self._resume = threading.Event()
        self._resume.set()
        self._cancel = threading.Event()
        self._started = self._ended = self._blocked_since = None
        self._paused_s = 0.0
        self._state_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="brainfuse-run", daemon=True)

    @property
    def done(self):
        return self.state in ("finished", "stopped", "failed")

    @property
    def wall_s(self):
        """Wall time spent so far (s), not counting time spent paused."""
        if self._started is None:
            return 0.0
        until = self._ended or self._blocked_since or time.perf_counter()
        return until - self._started - self._paused_s

    def start(self):
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def pause(self):
        with self._state_lock:
            if self.state == "running":
                self._resume.clear()
                self.state = "paused"

    def resume(self):
        with self._state_lock:
            if self.state == "paused":
                self.state = "running"
                self._resume.set()

    def stop(self):
        """Ask the worker to stop after its current chunk (it also wakes a paused run)."""
        self._cancel.set()
        self._resume.set()

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self):
        build = self.build
        try:
            simulation = Simulation(build.network, build.stimuli, self._probes, dt=build.run.dt, celsius=build.run.celsius,
                                    method=build.run.method, dtype=build.run.dtype, batch=build.run.batch,
                                    threads=SIMULATION_THREADS)
            if self._cancel.is_set():
                raise RunCancelled
            simulation.run(self.duration, monitor=self._monitor, chunk_steps=self.chunk_steps)
        except RunCancelled:
            self._end("stopped")
        except BrainFuseError as err:
            self._end("failed", _one_line(err))
        except Exception as err:  # noqa: BLE001 - shown to the user as one line; the traceback goes to the log
            log.exception("simulation run failed")
            self._end("failed", _one_line(f"{type(err).__name__}: {err}"))
        else:
            self.data.finish()
            self._end("finished")

    def _monitor(self, report):
        self.data.add(report, [probe.name for probe in self._probes])
        if not self._resume.is_set():
            self._blocked_since = time.perf_counter()
            self._resume.wait()
            self._paused_s += time.perf_counter() - self._blocked_since
            self._blocked_since = None
        if self._cancel.is_set():
            raise RunCancelled

    def _end(self, state, error=""):
        with self._state_lock:
            self._ended = time.perf_counter()
            self.error = error
            self.state = state


class Runner:
    """The runs of one session, one at a time. ``state`` is that of the latest run: "idle" before any,
    then "running", "paused", and at the end "finished", "stopped" or "failed" (with ``run.error``)."""

    def __init__(self):
        self.run = None

    @property
    def state(self):
        return self.run.state if self.run is not None else "idle"

    def start(self, build, duration, plan, chunk_steps=None):
        """Stop any run still going and start a new one; returns it."""
        self.stop()
        self.run = Run(build, duration, plan, chunk_steps).start()
        return self.run

    def pause(self):
        if self.run is not None:
            self.run.pause()

    def resume(self):
        if self.run is not None:
            self.run.resume()

    def stop(self):
        if self.run is not None and not self.run.done:
            self.run.stop()


def _one_line(message):
    return " ".join(str(message).split())
