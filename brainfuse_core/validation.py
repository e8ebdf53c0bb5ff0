"""Reference cases that validate the simulator: against NEURON, exact solutions, its own precision, and FD gradients.

Each case is a function ``case(quick=False) -> list[CaseResult]`` with one record per metric;
``run_cases`` runs them all (``brainfuse validate`` prints the records). ``quick=True`` picks
shorter or coarser variants for CI smoke runs; the acceptance numbers are the full ones.

Conventions shared by every case:

* spike times are upward crossings of −20 mV, linearly interpolated between samples, timed
  the same way on every simulator's trace (``spike_times_from_trace``);
* NEURON runs fixed-step backward Euler (``secondorder = 0``) at 6.3 °C with ``usetable_hh = 0``
  so ``hh`` evaluates its rates exactly, as BrainFuse does; NEURON is imported lazily and a
  case without it reports "skipped: neuron not installed";
* the squid cell is NEURON's ``hh`` on a cylinder L = diam = 100 µm, driven by a constant
  current density (µA/cm²) switched on at t = 0 and started from −65 mV.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from .cells import Cell, Morphology, Section
from .channels import Gate, Tabulated, channel
from .errors import ModelError
from .recording import Probe
from .simulation import Simulation
from .solvers.reference_ode import solve_point_cell
from .spikes import spike_times_from_trace
from .stimuli import IClamp
from .units import UA_PER_CM2_TO_NA

THRESHOLD_MV = -20.0
CELSIUS = 6.3
V_INIT_MV = -65.0
SQUID_DIAMETER_UM = 100.0
SQUID_DRIVE_UA_PER_CM2 = 10.0


@dataclass
class CaseResult:
    """One measured number and its acceptance criterion.

    ``limit`` is an upper bound (float), or a (low, high) range where a lower bound matters
    (high may be ``inf``); None means the number is reported, not judged. ``passed`` is None
    for reported-only and skipped records (the note then says which).
    """

    name: str
    metric: str
    value: float
    limit: object
    passed: object
    note: str = ""

    def __str__(self):
        if self.limit is None:
            criterion = "reported"
        elif isinstance(self.limit, tuple):
            low, high = self.limit
            criterion = f"≥ {low:g}" if math.isinf(high) else f"in [{low:g}, {high:g}]"
        else:
            criterion = f"≤ {self.limit:g}"
        verdict = {True: "PASS", False: "FAIL", None: "----"}[self.passed]
        note = f"  ({self.note})" if self.note else ""
        return f"{verdict}  {self.name}: {self.metric} = {self.value:.6g}  [{criterion}]{note}"


def _at_most(name, metric, value, limit, note=""):
    return CaseResult(name, metric, float(value), limit, bool(value <= limit), note)


def _within(name, metric, value, low, high=math.inf, note=""):
    return CaseResult(name, metric, float(value), (low, high), bool(low <= value <= high), note)


def _reported(name, metric, value, note=""):
    return CaseResult(name, metric, float(value), None, None, note)


def _skipped(name, metric, why):
    return CaseResult(name, metric, math.nan, None, None, f"skipped: {why}")


# ------------------------------------------------------------------------------------ models

def squid_cell():
    """NEURON's ``hh`` point cell: hh_na, hh_k and leak at their default densities."""
    return Cell.point(diameter=SQUID_DIAMETER_UM, channels=[channel("hh_na"), channel("hh_k"), channel("leak")])


# Rallpack 1 and 3 (Bhalla et al. 1992): 1 mm × 1 µm axon in 1000 compartments, 0.1 nA at x = 0.
RALLPACK_LENGTH_UM = 1000.0
RALLPACK_DIAMETER_UM = 1.0
RALLPACK_NSEG = 1000
RALLPACK_RA_OHM_CM = 100.0
RALLPACK_RM_OHM_CM2 = 40000.0
RALLPACK_CM_UF_PER_CM2 = 1.0
RALLPACK_CURRENT_NA = 0.1
RALLPACK_DURATION_MS = 250.0
RALLPACK_DT_MS = 0.05


def rallpack_cable(active, nseg=RALLPACK_NSEG):
    """The Rallpack axon: passive (leak 1/Rm, reversal −65 mV) or with NEURON's ``hh`` at default densities."""
    section = Section("cable", RALLPACK_LENGTH_UM, RALLPACK_DIAMETER_UM, nseg=nseg)
    cell = Cell(Morphology([section]), ra=RALLPACK_RA_OHM_CM, cm=RALLPACK_CM_UF_PER_CM2, v_init=V_INIT_MV)
    if active:
        for name in ("hh_na", "hh_k", "leak"):
            cell.insert(channel(name))
    else:
        cell.insert(channel("leak", gbar=1.0 / RALLPACK_RM_OHM_CM2, reversal=V_INIT_MV))
    return cell


def _squid_traces(currents_ua_per_cm2, dt_ms, duration_ms, method="backward_euler", dtype=torch.float64):
    """(B, samples) numpy voltage traces (mV) of the squid cell, one batch element per current density."""
    currents = torch.as_tensor(currents_ua_per_cm2, dtype=torch.float64).reshape(-1)
    stimulus = IClamp(currents if len(currents) > 1 else float(currents[0]), 0.0, 1e9, density=True)
    result = Simulation(squid_cell(), stimuli=[stimulus], dt=dt_ms, celsius=CELSIUS, method=method, dtype=dtype,
                        batch=len(currents)).run(duration_ms)
    return result.traces["cell.v"][:, 0].double().numpy()


def _rallpack_traces(active, method="backward_euler", dt_ms=RALLPACK_DT_MS, duration_ms=RALLPACK_DURATION_MS):
    """Voltage traces (mV) at x = 0 and x = 1 of the Rallpack axon, sampled every step from t = 0."""
    probes = [Probe("cell", "v", section="cable", x=0.0), Probe("cell", "v", section="cable", x=1.0)]
    stimulus = IClamp(RALLPACK_CURRENT_NA, 0.0, 1e9, section="cable", x=0.0)
    result = Simulation(rallpack_cable(active), stimuli=[stimulus], probes=probes, dt=dt_ms, celsius=CELSIUS,
                        method=method).run(duration_ms)
    return [result.traces[probe.name][0, 0].numpy() for probe in probes]


def _spike_times(trace, dt_ms):
    return spike_times_from_trace(trace, dt_ms, THRESHOLD_MV)


def _spike_time_difference(times, reference):
    """Max |Δt| (ms) between corresponding spikes; NaN when the counts differ, as no pairing is meaningful then."""
    if len(times) != len(reference):
        return math.nan
    return float(np.max(np.abs(np.asarray(times) - np.asarray(reference)), initial=0.0))


# ------------------------------------------------------------------------------------ NEURON

def _neuron():
    """NEURON's ``h``, or None when NEURON is not installed."""
    try:
        from neuron import h
    except ImportError:
        return None
    return h


def _run_neuron(h, segments, dt_ms, duration_ms):
    """Run NEURON's fixed-step backward Euler from −65 mV; v (mV) of each segment at t = 0, dt, …, duration.

    The global settings changed here are restored afterwards so other users of ``h`` in the
    same process see NEURON's defaults.
    """
    settings = {"dt": dt_ms, "celsius": CELSIUS, "secondorder": 0, "usetable_hh": 0}
    saved = {name: getattr(h, name) for name in settings}
    vectors = [h.Vector().record(segment._ref_v) for segment in segments]
    try:
        for name, value in settings.items():
            setattr(h, name, value)
        h.finitialize(V_INIT_MV)
        for _ in range(int(round(duration_ms / dt_ms))):
            h.fadvance()
    finally:
        for name, value in saved.items():
            setattr(h, name, value)
    return [np.array(vector) for vector in vectors]


def neuron_squid_trace(h, current_ua_per_cm2, dt_ms, duration_ms):
    """NEURON's squid cell (a ``hh`` soma with an IClamp of the given density) voltage trace (mV)."""
    soma = h.Section(name="soma")
    soma.L = soma.diam = SQUID_DIAMETER_UM
    soma.insert("hh")
    clamp = h.IClamp(soma(0.5))
    clamp.delay, clamp.dur = 0.0, 1e9
    clamp.amp = current_ua_per_cm2 * soma(0.5).area() * UA_PER_CM2_TO_NA
    return _run_neuron(h, [soma(0.5)], dt_ms, duration_ms)[0]


def neuron_rallpack_traces(h, active, dt_ms=RALLPACK_DT_MS, duration_ms=RALLPACK_DURATION_MS):
    """NEURON's Rallpack axon: v (mV) at x = 0 and x = 1."""
    cable = h.Section(name="cable")
    cable.L, cable.diam, cable.nseg = RALLPACK_LENGTH_UM, RALLPACK_DIAMETER_UM, RALLPACK_NSEG
    cable.Ra, cable.cm = RALLPACK_RA_OHM_CM, RALLPACK_CM_UF_PER_CM2
    if active:
        cable.insert("hh")
    else:
        cable.insert("pas")
        for segment in cable:
            segment.pas.g, segment.pas.e = 1.0 / RALLPACK_RM_OHM_CM2, V_INIT_MV
    clamp = h.IClamp(cable(0.0))
    clamp.delay, clamp.dur, clamp.amp = 0.0, 1e9, RALLPACK_CURRENT_NA
    return _run_neuron(h, [cable(0.0), cable(1.0)], dt_ms, duration_ms)


# ------------------------------------------------------------------------------------ (a) squid vs NEURON

def squid_vs_neuron(quick=False):
    """Squid cell, 10 µA/cm² for 100 ms, dt 0.025 ms, float64, backward Euler: spike times vs NEURON."""
    name, dt, duration = "squid_vs_neuron", 0.025, 100.0
    h = _neuron()
    if h is None:
        return [_skipped(f"{name}/spike_times", "max |Δ spike time| vs NEURON (ms)", "neuron not installed")]
    ours = _squid_traces([SQUID_DRIVE_UA_PER_CM2], dt, duration)[0]
    theirs = neuron_squid_trace(h, SQUID_DRIVE_UA_PER_CM2, dt, duration)
    ours_spikes, their_spikes = _spike_times(ours, dt), _spike_times(theirs, dt)
    return [
        _at_most(f"{name}/spike_count", "|Δ spike count| vs NEURON", abs(len(ours_spikes) - len(their_spikes)), 0,
                 f"{len(their_spikes)} spikes in NEURON"),
        _at_most(f"{name}/spike_times", "max |Δ spike time| vs NEURON (ms)", _spike_time_difference(ours_spikes, their_spikes), 0.01),
        _reported(f"{name}/voltage", "max |ΔV| vs NEURON (mV)", np.max(np.abs(ours - theirs))),
    ]


