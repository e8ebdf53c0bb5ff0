"""The Potjans–Diesmann microcircuit with HH point neurons in Brian2, on the network BrainFuse simulated.

The network comes from ``benchmarks.potjans_diesmann.export_network``: a JSON file of the model's
numbers (cells, synapses, drive, run settings, read from the BrainFuse project document) and an npz
of the connections BrainFuse drew and the initial voltages, so both simulators run the identical
network; only the external Poisson drive is drawn by each simulator itself (independently, at the
same rates). Deliberate choices:

* Cells: one compartment of the same area, leak, Traub–Miles Na/Kd (same V_T), integrated with
  Brian2's ``exponential_euler`` (as in the COBAHH peer); gates start at steady state for v0.
* Synapses: one exponentially decaying conductance per cell for excitation (0 mV) and one for
  inhibition (−80 mV), τ = 0.5 ms; each spike adds its connection's weight after the projection's
  delay (1.5 ms excitatory, 0.75 ms inhibitory).
* External drive: ``PoissonInput`` with K_ext inputs at 8 Hz per cell, the model's own form (the
  BrainFuse project draws one Poisson train at K_ext × 8 Hz per cell, the same process).
* A spike is an upward crossing of −20 mV (``refractory="v > v_th"`` only blocks re-detection).

Units as the project: mV, ms, µm, S/cm², µF/cm², µS, nA.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

from .brian_util import TRAUB_MILES_GATES, brian_device, brian_thread_info

SIMULATORS = ("brian2_runtime", "brian2_cpp_standalone")
SYNCHRONY_BIN_MS = 3.0

_EQUATIONS = """
dv/dt = (gl*(El - v) + ge*(Ee - v) + gi*(Ei - v) - g_na*m**3*h*(v - ENa) - g_kd*n**4*(v - EK) + I_dc) / Cm : volt
dge/dt = -ge/tau_syn : siemens
dgi/dt = -gi/tau_syn : siemens
I_dc : amp (constant)
""" + TRAUB_MILES_GATES


def _steady_gates(v, vt):
    """Traub–Miles m∞, h∞, n∞ at v (mV) for threshold offset vt (mV)."""
    u = np.asarray(v, dtype=float) - vt

    def linoid(rate, x):  # rate · x / (exp(x) − 1), finite at x = 0
        x = np.where(np.abs(x) < 1e-9, 1e-9, x)
        return rate * x / np.expm1(x)

    rates = {
        "m": (4.0 * linoid(0.32, (13.0 - u) / 4.0), 5.0 * linoid(0.28, (u - 40.0) / 5.0)),
        "h": (0.128 * np.exp((17.0 - u) / 18.0), 4.0 / (1.0 + np.exp((40.0 - u) / 5.0))),
        "n": (5.0 * linoid(0.032, (15.0 - u) / 5.0), 0.5 * np.exp((10.0 - u) / 40.0)),
    }
    return {gate: alpha / (alpha + beta) for gate, (alpha, beta) in rates.items()}


def population_statistics(spike_t_ms, spike_i, names, sizes, t_start_ms, t_stop_ms):
    """Per population: rate (Hz, mean over all cells, silent ones included) and CV of ISI (mean over cells with
    ≥ 3 spikes) in [t_start, t_stop); ``cv_poisson`` is what the same estimator gives for Poisson trains with
    the same spike counts (uniform times in the window): an ideal irregular reference for this window length.
    ``synchrony`` is Potjans & Diesmann's (2014) measure: variance over mean of the population's spike count
    in 3 ms bins (1 for independent Poisson trains, large for volleys)."""
    t, cell = np.asarray(spike_t_ms, float), np.asarray(spike_i, np.int64)
    keep = (t >= t_start_ms) & (t < t_stop_ms)
    t, cell = t[keep], cell[keep]
    window_s = (t_stop_ms - t_start_ms) * 1e-3
    rng = np.random.default_rng(0)
    rows, offset = {}, 0
    for name, n in zip(names, sizes):
        mine = (cell >= offset) & (cell < offset + n)
        counts = np.bincount(cell[mine] - offset, minlength=n)
        poisson_times = [np.sort(rng.uniform(t_start_ms, t_stop_ms, c)) for c in counts if c >= 3]
        histogram = np.histogram(t[mine], np.arange(t_start_ms, t_stop_ms + SYNCHRONY_BIN_MS / 2, SYNCHRONY_BIN_MS))[0]
        rows[name] = {"rate_hz": float(counts.sum() / n / window_s), "cv_isi": _mean_cv(t[mine], cell[mine]),
                      "cv_poisson": float(np.mean([_cv(x) for x in poisson_times])) if poisson_times else math.nan,
                      "synchrony": float(histogram.var() / histogram.mean()) if histogram.sum() else math.nan,
                      "active_fraction": float(np.mean(counts > 0))}
        offset += n
    return rows


def _mean_cv(times, cells):
    order = np.lexsort((times, cells))
    times, cells = times[order], cells[order]
    groups = np.split(times, np.flatnonzero(np.diff(cells)) + 1) if len(times) else []
    values = [_cv(group) for group in groups if len(group) >= 3]
    return float(np.mean(values)) if values else math.nan


def _cv(times):
    isi = np.diff(times)
    return float(isi.std() / isi.mean())


def run_brian2(network_json, mode="runtime"):
    """Simulate the exported network in Brian2 (``mode``: 'runtime' or 'cpp_standalone').

    Returns spike times/indices, ``build_s`` (objects, code generation, compilation) and ``run_s``
    (Brian's own main-loop time)."""
    import brian2 as b2
    from brian2 import Hz, cm, ms, mV, nA, siemens, uS, ufarad, umetre

    spec = json.loads(open(network_json).read())
    arrays = np.load(spec["arrays"])
    cell = spec["cell"]
    area = cell["area_um2"] * umetre ** 2
    namespace = {
        "Cm": cell["cm"] * ufarad / cm ** 2 * area, "gl": cell["g_leak"] * siemens / cm ** 2 * area,
        "g_na": cell["g_na"] * siemens / cm ** 2 * area, "g_kd": cell["g_kd"] * siemens / cm ** 2 * area,
        "El": cell["e_leak"] * mV, "ENa": cell["e_na"] * mV, "EK": cell["e_k"] * mV, "VT": cell["vt"] * mV,
        "Ee": spec["e_exc"] * mV, "Ei": spec["e_inh"] * mV, "tau_syn": spec["tau_syn"] * ms,
        "v_th": spec["threshold"] * mV,
    }
    sizes, names = spec["sizes"], spec["populations"]
    offsets = np.cumsum([0] + sizes)
    with brian_device(mode):
        started = time.perf_counter()
        b2.defaultclock.dt = spec["dt"] * ms
        group = b2.NeuronGroup(int(offsets[-1]), _EQUATIONS, threshold="v > v_th", refractory="v > v_th",
                               method="exponential_euler", namespace=namespace)
        v0 = arrays["v0"]
        group.v = v0 * mV
        for gate, value in _steady_gates(v0, cell["vt"]).items():
            setattr(group, gate, value)
        group.I_dc = arrays["dc_na"] * nA
        objects = [group]
        for kind, variable in (("exc", "ge"), ("inh", "gi")):
            synapses = b2.Synapses(group, group, "w : siemens", on_pre=f"{variable}_post += w",
                                   delay=spec[f"delay_{kind}"] * ms)
            synapses.connect(i=arrays[f"{kind}_pre"], j=arrays[f"{kind}_post"])
            synapses.w = arrays[f"{kind}_weight"] * uS
            objects.append(synapses)
        for k, name in enumerate(names):
            objects.append(b2.PoissonInput(group[int(offsets[k]):int(offsets[k + 1])], "ge", N=spec["k_ext"][k],
                                           rate=spec["background_rate_hz"] * Hz, weight=spec["w_ext"] * uS))
        monitor = b2.SpikeMonitor(group)
        net = b2.Network(*objects, monitor)
        net.run(spec["duration"] * ms)
        total_s = time.perf_counter() - started
        run_s = float(b2.device._last_run_time)
        spike_t, spike_i = np.asarray(monitor.t / ms), np.asarray(monitor.i, dtype=np.int64)
        threads = brian_thread_info()
    return {"simulator": f"brian2_{mode}", "spike_t_ms": spike_t, "spike_i": spike_i, "build_s": total_s - run_s,
            "run_s": run_s, "total_s": total_s, "threads": threads, "version": b2.__version__}


def benchmark(network_json, simulator="brian2_runtime", t_start_ms=100.0):
    """One Brian2 run of the exported network: timing and per-population statistics (JSON-friendly).
    Meant for ``run_isolated("benchmarks.peers.potjans_diesmann:benchmark", {...})``."""
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; use {SIMULATORS}")
    result = run_brian2(network_json, simulator[len("brian2_"):])
    spec = json.loads(open(network_json).read())
    stats = population_statistics(result.pop("spike_t_ms"), result.pop("spike_i"), spec["populations"], spec["sizes"],
                                  t_start_ms, spec["duration"])
    return {**result, "populations": stats}
