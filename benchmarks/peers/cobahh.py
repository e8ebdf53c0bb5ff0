"""COBAHH network (Brette et al. 2007, Benchmark 3) in Brian2 and NEURON.

Reference: R. Brette et al., "Simulation of networks of spiking neurons: a
review of tools and strategies", J Comput Neurosci 23:349 (2007), Benchmark 3,
in the form of Brian2's ``COBAHH`` example: 4000 single-compartment neurons
(3200 excitatory, 800 inhibitory) with Traub-Miles Na/K kinetics and
exponentially decaying conductance synapses, dt = 0.1 ms, 1 s.

Both peers are driven from the *same* network description produced by
:func:`make_network` (numpy RNG: connectivity, initial v/ge/gi), so for a given
seed Brian2 and NEURON simulate the identical network and differ only in their
numerics.  Deliberate choices where the Brian2 example is silent or loose:

* Autapses are excluded (expected ~80 of ~320k synapses; immaterial).
* Gating variables start at their steady state for the initial v.  Brian2's
  example leaves m, h, n at 0; that only changes the first few ms.
* Conductances drawn negative from the Gaussian initialisation are clipped to
  zero.
* A spike is an upward crossing of -20 mV.  Brian2 uses ``v > -20 mV`` plus a
  3 ms refractory period that only blocks re-detection (v is not clamped);
  NEURON's NetCon detects the upward crossing and re-arms once v falls back.
  The action potential spends < 3 ms above -20 mV, so the two coincide.
* Synaptic effect is applied one step after threshold detection in both
  simulators (Brian2: zero synaptic delay; NEURON: NetCon delay 0, delivered
  at the start of the next fixed step).

Units are NEURON-style: mV, ms, um, S/cm2, uF/cm2, nS for synaptic weights.
Run ``python -m benchmarks.peers.cobahh`` from the repo root.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from .brian_util import TRAUB_MILES_GATES, brian_device, brian_thread_info
from .env_info import thread_info
from .isolate import REPO_ROOT, run_isolated

# --- model parameters (NEURON-style units) ---------------------------------
N_EXC = 3200
N_INH = 800
P_CONNECT = 0.02
AREA_UM2 = 20000.0
CM = 1.0  # uF/cm2
G_L = 5e-5  # S/cm2
G_NA = 0.1  # S/cm2 (100 mS/cm2)
G_KD = 0.03  # S/cm2 (30 mS/cm2)
E_L = -60.0  # mV
E_K = -90.0
E_NA = 50.0
V_T = -63.0  # mV, shifts all Traub-Miles rate curves
TAU_E = 5.0  # ms
TAU_I = 10.0
E_E = 0.0  # mV
E_I = -80.0
W_E_NS = 6.0  # nS
W_I_NS = 67.0
V_THRESHOLD = -20.0  # mV
REFRACTORY_MS = 3.0
DT_MS = 0.1
DURATION_MS = 1000.0

SIMULATORS = ("brian2_runtime", "brian2_cpp_standalone", "neuron")
STATS_PATH = REPO_ROOT / "tests" / "data" / "cobahh_peer_stats.json"


# --- shared network description --------------------------------------------
def _x_over_expm1(x: np.ndarray) -> np.ndarray:
    """x / (exp(x) - 1), finite at x = 0 where the rate formulas are 0/0."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-9
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 - x / 2.0, safe / np.expm1(safe))


def traub_rates(v: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Traub-Miles (alpha, beta) in 1/ms for gates m, h, n at v in mV."""
    u = v - V_T
    return {
        "m": (0.32 * 4.0 * _x_over_expm1((13.0 - u) / 4.0),
              0.28 * 5.0 * _x_over_expm1((u - 40.0) / 5.0)),
        "h": (0.128 * np.exp((17.0 - u) / 18.0),
              4.0 / (1.0 + np.exp((40.0 - u) / 5.0))),
        "n": (0.032 * 5.0 * _x_over_expm1((15.0 - u) / 5.0),
              0.5 * np.exp((10.0 - u) / 40.0)),
    }


def _bernoulli_pairs(rng, n: int, p: float, chunk: int = 256):
    """All (pre, post) pairs with independent probability p, no autapses.

    Sampled in row blocks so memory stays at chunk*n rather than n*n.
    """
    pres, posts = [], []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        i, j = np.nonzero(rng.random((stop - start, n)) < p)
        i += start
        keep = i != j
        pres.append(i[keep])
        posts.append(j[keep])
    return (np.concatenate(pres).astype(np.int64),
            np.concatenate(posts).astype(np.int64))


def make_network(seed: int, n_exc: int = N_EXC, n_inh: int = N_INH,
                 p_connect: float = P_CONNECT) -> dict:
    """Connectivity and initial state of one COBAHH instance.

    Neurons 0..n_exc-1 are excitatory, the rest inhibitory.  Returns numpy
    arrays: ``exc_pre/exc_post`` and ``inh_pre/inh_post`` (global indices),
    ``v0`` (mV), ``ge0``/``gi0`` (nS, total per neuron), ``m0, h0, n0``.
    """
    rng = np.random.default_rng(seed)
    n = n_exc + n_inh
    pre, post = _bernoulli_pairs(rng, n, p_connect)
    is_exc = pre < n_exc
    v0 = E_L + (rng.standard_normal(n) * 5.0 - 5.0)
    ge0 = np.clip((rng.standard_normal(n) * 1.5 + 4.0) * 10.0, 0.0, None)
    gi0 = np.clip((rng.standard_normal(n) * 12.0 + 20.0) * 10.0, 0.0, None)
    gates = {g: a / (a + b) for g, (a, b) in traub_rates(v0).items()}
    return {
        "n_exc": n_exc, "n_inh": n_inh,
        "exc_pre": pre[is_exc], "exc_post": post[is_exc],
        "inh_pre": pre[~is_exc], "inh_post": post[~is_exc],
        "v0": v0, "ge0": ge0, "gi0": gi0,
        "m0": gates["m"], "h0": gates["h"], "n0": gates["n"],
    }


# --- statistics --------------------------------------------------------------
def spike_statistics(spike_t_ms, spike_i, n_exc: int = N_EXC,
                     n_inh: int = N_INH,
                     duration_ms: float = DURATION_MS) -> dict:
    """Population statistics used to compare simulators.

    Rates average over *all* neurons of a population, silent ones included,
    so they are insensitive to how many neurons happen to fire.  The ISI CV
    needs at least two intervals to mean anything, hence neurons with >= 3
    spikes only.
    """
    t = np.asarray(spike_t_ms, dtype=float)
    i = np.asarray(spike_i, dtype=np.int64)
    n = n_exc + n_inh
    counts = np.bincount(i, minlength=n)
    rate = counts / (duration_ms / 1000.0)

    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    same = i[1:] == i[:-1]
    isi = np.diff(t)[same]
    owner = i[1:][same]
    n_isi = np.bincount(owner, minlength=n)
    mean = np.bincount(owner, isi, minlength=n) / np.maximum(n_isi, 1)
    # Two-pass variance: ISIs are ~10-100 ms with small spread, where
    # E[x^2] - E[x]^2 would lose digits.
    var = np.bincount(owner, (isi - mean[owner]) ** 2, minlength=n)
    var /= np.maximum(n_isi, 1)
    ok = n_isi >= 2
    cv = float(np.mean(np.sqrt(var[ok]) / mean[ok])) if ok.any() else math.nan
    return {
        "rate_exc_hz": float(rate[:n_exc].mean()),
        "rate_inh_hz": float(rate[n_exc:].mean()) if n_inh else math.nan,
        "cv_isi": cv,
        "active_fraction": float(np.mean(counts > 0)),
        "n_spikes": int(counts.sum()),
    }


# --- Brian2 ------------------------------------------------------------------
_BRIAN_EQS = """
dv/dt = (gl*(El - v) + ge*(Ee - v) + gi*(Ei - v)
         - g_na*m**3*h*(v - ENa) - g_kd*n**4*(v - EK)) / Cm : volt
dge/dt = -ge/taue : siemens
dgi/dt = -gi/taui : siemens
""" + TRAUB_MILES_GATES


def run_brian2(seed: int = 0, mode: str = "runtime",
               duration_ms: float = DURATION_MS, n_exc: int = N_EXC,
               n_inh: int = N_INH, cold_cache: bool = False) -> dict:
    """Simulate COBAHH in Brian2 (``mode``: 'runtime' or 'cpp_standalone').

    Returns ``spike_t_ms``, ``spike_i`` (numpy arrays), ``build_s`` (object
    construction + code generation + compilation + standalone I/O),
    ``run_s`` (Brian's own main-loop time), ``total_s``, ``netgen_s`` (numpy
    network generation, not attributed to the simulator) and ``threads``.
    ``cold_cache`` makes runtime mode compile its Cython code from scratch.
    cpp_standalone switches the process-wide Brian2 device and restores
    'runtime' afterwards; prefer :func:`benchmark` via ``run_isolated``.
    """
    import brian2 as b2
    from brian2 import cm, ms, mV, nS, siemens, ufarad, umetre

    t0 = time.perf_counter()
    net_desc = make_network(seed, n_exc, n_inh)
    netgen_s = time.perf_counter() - t0

    area = AREA_UM2 * umetre**2
    namespace = {
        "Cm": CM * ufarad / cm**2 * area,
        "gl": G_L * siemens / cm**2 * area,
        "g_na": G_NA * siemens / cm**2 * area,
        "g_kd": G_KD * siemens / cm**2 * area,
        "El": E_L * mV, "EK": E_K * mV, "ENa": E_NA * mV, "VT": V_T * mV,
        "Ee": E_E * mV, "Ei": E_I * mV,
        "taue": TAU_E * ms, "taui": TAU_I * ms,
        "we": W_E_NS * nS, "wi": W_I_NS * nS, "v_th": V_THRESHOLD * mV,
    }

    with brian_device(mode, cold_cache):
        t1 = time.perf_counter()
        b2.defaultclock.dt = DT_MS * ms
        group = b2.NeuronGroup(n_exc + n_inh, _BRIAN_EQS, threshold="v > v_th",
                               refractory=REFRACTORY_MS * ms,
                               method="exponential_euler")
        group.v = net_desc["v0"] * mV
        group.m = net_desc["m0"]
        group.h = net_desc["h0"]
        group.n = net_desc["n0"]
        group.ge = net_desc["ge0"] * nS
        group.gi = net_desc["gi0"] * nS
        syn_e = b2.Synapses(group, group, on_pre="ge_post += we")
        syn_e.connect(i=net_desc["exc_pre"], j=net_desc["exc_post"])
        syn_i = b2.Synapses(group, group, on_pre="gi_post += wi")
        syn_i.connect(i=net_desc["inh_pre"], j=net_desc["inh_post"])
        mon = b2.SpikeMonitor(group)
        net = b2.Network(group, syn_e, syn_i, mon)
        # An explicit namespace keeps Brian from resolving names in this
        # function's locals.
        net.run(duration_ms * ms, namespace=namespace)
        total_s = time.perf_counter() - t1
        run_s = float(b2.device._last_run_time)
        spike_t = np.asarray(mon.t / ms)
        spike_i = np.asarray(mon.i, dtype=np.int64)
        threads = brian_thread_info()
    return {
        "simulator": f"brian2_{mode}", "seed": seed,
        "duration_ms": duration_ms, "dt_ms": DT_MS,
        "spike_t_ms": spike_t, "spike_i": spike_i,
        "build_s": total_s - run_s, "run_s": run_s, "total_s": total_s,
        "netgen_s": netgen_s, "threads": threads,
        "version": b2.__version__, "cold_cache": cold_cache,
    }


# --- NEURON -------------------------------------------------------------------
_NEURON_CHANNELS: dict | None = None


def _neuron_traub_channels(h) -> dict:
    """Define Traub-Miles Na and Kd as KSChan HH-style channels (once).

    KSChan types live for the whole process (they cannot be destroyed), so
    they are created on first use and reused.  Rate forms (KSChan types):
    2 exp  c0*exp(c1*(v-c2)), 3 linoid  c0*x/(1-exp(-x)) with x=c1*(v-c2),
    4 sigmoid  c0/(1+exp(c1*(v-c2))).  The Traub formulas map onto these
    exactly (checked against :func:`traub_rates` to ~1e-15 relative).
    KSChan integrates HH gates with the exponential-Euler update, like
    Brian2's ``exponential_euler``; its rate tables are off by default.
    """
    global _NEURON_CHANNELS
    if _NEURON_CHANNELS is not None:
        return _NEURON_CHANNELS
    EXP, LINOID, SIGMOID = 2, 3, 4

    def channel(name, ion, gmax, gates):
        ks = h.KSChan()
        ks.name(name)
        ks.ion(ion)
        ks.iv_type(0)  # ohmic, reversal potential from the ion (ena/ek)
        ks.gmax(gmax)
        for gate, power, alpha, beta in gates:
            state = ks.add_hhstate(gate)
            state.gate().power(power)
            trans = ks.trans(state, state)
            trans.type(0)  # alpha/beta form
            trans.set_f(0, alpha[0], h.Vector(alpha[1]))
            trans.set_f(1, beta[0], h.Vector(beta[1]))
        return ks

    na = channel("TraubNa", "na", G_NA, [
        ("m", 3, (LINOID, [1.28, 0.25, V_T + 13.0]),
                 (LINOID, [1.4, -0.2, V_T + 40.0])),
        ("h", 1, (EXP, [0.128, -1.0 / 18.0, V_T + 17.0]),
                 (SIGMOID, [4.0, -0.2, V_T + 40.0])),
    ])
    kd = channel("TraubKd", "k", G_KD, [
        ("n", 4, (LINOID, [0.16, 0.2, V_T + 15.0]),
                 (EXP, [0.5, -1.0 / 40.0, V_T + 10.0])),
    ])
    _NEURON_CHANNELS = {"na": na, "kd": kd}
    return _NEURON_CHANNELS


def run_neuron(seed: int = 0, duration_ms: float = DURATION_MS,
               n_exc: int = N_EXC, n_inh: int = N_INH,
               delay_ms: float = 0.0) -> dict:
    """Simulate COBAHH in NEURON (fixed step, backward Euler, dt 0.1 ms).

    Returns the same keys as :func:`run_brian2`; ``build_s`` covers section,
    synapse and NetCon creation plus ``finitialize``.
    """
    from neuron import h

    t0 = time.perf_counter()
    net_desc = make_network(seed, n_exc, n_inh)
    netgen_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    h.load_file("stdrun.hoc")
    _neuron_traub_channels(h)
    h.CVode().active(0)
    h.dt = DT_MS
    h.secondorder = 0
    # A cylinder with L = diam has lateral area pi*d^2 (end caps excluded).
    diam = math.sqrt(AREA_UM2 / math.pi)
    n = n_exc + n_inh
    cells, esyns, isyns = [], [], []
    for k in range(n):
        sec = h.Section(name=f"cobahh_{k}")
        sec.L = sec.diam = diam
        sec.nseg = 1
        sec.cm = CM
        sec.insert("pas")
        sec.insert("TraubNa")
        sec.insert("TraubKd")
        seg = sec(0.5)
        seg.pas.g = G_L
        seg.pas.e = E_L
        sec.ena = E_NA
        sec.ek = E_K
        esyn = h.ExpSyn(seg)
        esyn.tau, esyn.e = TAU_E, E_E
        isyn = h.ExpSyn(seg)
        isyn.tau, isyn.e = TAU_I, E_I
        cells.append(sec)
        esyns.append(esyn)
        isyns.append(isyn)

    netcons = []
    # ExpSyn weights are in uS.
    for pres, posts, targets, w_ns in (
            (net_desc["exc_pre"], net_desc["exc_post"], esyns, W_E_NS),
            (net_desc["inh_pre"], net_desc["inh_post"], isyns, W_I_NS)):
        w_us = w_ns * 1e-3
        for pre, post in zip(pres.tolist(), posts.tolist()):
            nc = h.NetCon(cells[pre](0.5)._ref_v, targets[post],
                          sec=cells[pre])
            nc.threshold = V_THRESHOLD
            nc.delay = delay_ms
            nc.weight[0] = w_us
            netcons.append(nc)

    spike_t, spike_gid = h.Vector(), h.Vector()
    recorders = []
    for k, sec in enumerate(cells):
        nc = h.NetCon(sec(0.5)._ref_v, None, sec=sec)
        nc.threshold = V_THRESHOLD
        nc.record(spike_t, spike_gid, k)
        recorders.append(nc)

    for k, sec in enumerate(cells):
        sec(0.5).v = net_desc["v0"][k]
    # finitialize() without an argument keeps the per-cell v set above and
    # puts the gates at steady state for it (same as make_network's m0/h0/n0).
    h.finitialize()
    # ExpSyn's INITIAL zeroes g, so the initial conductances go in afterwards.
    for k in range(n):
        esyns[k].g = net_desc["ge0"][k] * 1e-3
        isyns[k].g = net_desc["gi0"][k] * 1e-3
    build_s = time.perf_counter() - t1

    # Not pc.psolve: it refuses NetCon delays below dt, and a zero delay is
    # what matches Brian2's same-step synaptic update.
    t2 = time.perf_counter()
    h.continuerun(duration_ms)
    run_s = time.perf_counter() - t2
    pc = h.ParallelContext()

    import neuron
    return {
        "simulator": "neuron", "seed": seed,
        "duration_ms": duration_ms, "dt_ms": DT_MS,
        "spike_t_ms": np.array(spike_t), "spike_i": np.array(spike_gid, dtype=np.int64),
        "build_s": build_s, "run_s": run_s, "total_s": build_s + run_s,
        "netgen_s": netgen_s,
        "threads": thread_info(neuron_nthread=int(pc.nthread())),
        "version": neuron.__version__,
    }


# --- benchmark entry points ---------------------------------------------------
def benchmark(simulator: str, seed: int = 0,
              duration_ms: float = DURATION_MS,
              cold_cache: bool = False) -> dict:
    """One COBAHH run: statistics + timing, JSON-friendly (no spike arrays).

    ``simulator`` is one of :data:`SIMULATORS`; ``cold_cache`` only affects
    brian2_runtime.  Meant to be called through
    ``run_isolated("benchmarks.peers.cobahh:benchmark", {...})``.
    """
    if simulator == "neuron":
        res = run_neuron(seed=seed, duration_ms=duration_ms)
    elif simulator.startswith("brian2_"):
        res = run_brian2(seed=seed, mode=simulator[len("brian2_"):],
                         duration_ms=duration_ms, cold_cache=cold_cache)
    else:
        raise ValueError(f"unknown simulator {simulator!r}; use {SIMULATORS}")
    stats = spike_statistics(res.pop("spike_t_ms"), res.pop("spike_i"),
                             duration_ms=duration_ms)
    return {**res, **stats}


def timing_table(seed: int = 0, duration_ms: float = DURATION_MS,
                 simulators=SIMULATORS, cold_cache: bool = False) -> list[dict]:
    """Build/run wall times of each peer, each in a fresh process."""
    return [run_isolated(benchmark, {"simulator": sim, "seed": seed,
                                     "duration_ms": duration_ms,
                                     "cold_cache": cold_cache})
            for sim in simulators]


def peer_statistics(seeds=range(5), duration_ms: float = DURATION_MS,
                    simulators=("brian2_cpp_standalone", "neuron")) -> dict:
    """Run every simulator for every seed and assemble the stats document."""
    runs = []
    for sim in simulators:
        for seed in seeds:
            res = run_isolated(benchmark, {"simulator": sim, "seed": seed,
                                           "duration_ms": duration_ms})
            runs.append({
                "simulator": sim, "seed": seed,
                "rate_exc_hz": res["rate_exc_hz"],
                "rate_inh_hz": res["rate_inh_hz"],
                "cv_isi": res["cv_isi"],
                "active_fraction": res["active_fraction"],
                "n_spikes": res["n_spikes"],
                "wall_s": res["total_s"],
                "build_s": res["build_s"], "run_s": res["run_s"],
                "version": res["version"], "threads": res["threads"],
            })
            print(_format_row(runs[-1]), flush=True)
    keys = ("rate_exc_hz", "rate_inh_hz", "cv_isi", "active_fraction")
    return {
        "description": (
            "COBAHH (Brette et al. 2007 Benchmark 3, Brian2 example form) "
            "population statistics from peer simulators; identical network "
            "and initial state per seed (benchmarks/peers/cobahh.py "
            "make_network). Rates average over all neurons of a population; "
            "cv_isi is the mean ISI CV over neurons with >= 3 spikes. "
            "'range' is the min/max over all runs."),
        "dt_ms": DT_MS,
        "duration_ms": duration_ms,
        "runs": runs,
        "range": {k: [min(r[k] for r in runs), max(r[k] for r in runs)]
                  for k in keys},
    }


def _format_row(r: dict) -> str:
    return (f"{r['simulator']:<22} {r['seed']:>4} {r['rate_exc_hz']:>8.2f} "
            f"{r['rate_inh_hz']:>8.2f} {r['cv_isi']:>6.3f} "
            f"{r['active_fraction']:>6.3f} {r.get('build_s', 0):>8.2f} "
            f"{r.get('run_s', 0):>8.2f}")


_HEADER = (f"{'simulator':<22} {'seed':>4} {'exc Hz':>8} {'inh Hz':>8} "
           f"{'CV':>6} {'active':>6} {'build s':>8} {'run s':>8}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--duration-ms", type=float, default=DURATION_MS)
    parser.add_argument("--brian-mode", default="cpp_standalone",
                        choices=("runtime", "cpp_standalone"))
    parser.add_argument("--out", type=Path, default=STATS_PATH,
                        help="where to write the stats JSON")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--timing", action="store_true",
                        help="only print the build/run timing of all peers")
    parser.add_argument("--cold-cache", action="store_true",
                        help="with --timing: brian2_runtime compiles afresh")
    args = parser.parse_args(argv)

    print(_HEADER)
    if args.timing:
        for r in timing_table(duration_ms=args.duration_ms,
                              cold_cache=args.cold_cache):
            print(_format_row(r))
        return
    doc = peer_statistics(range(args.seeds), args.duration_ms,
                          (f"brian2_{args.brian_mode}", "neuron"))
    print("range:", json.dumps(doc["range"]))
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
