"""Throughput of many independent Hodgkin-Huxley neurons in NEURON, Brian2 and Jaxley.

Workload: ``n`` (default 10^4) unconnected single-compartment squid-axon
neurons with NEURON's ``hh`` kinetics at 6.3 degC, each driven by a constant
current; the currents are spread evenly over 0..20 uA/cm2 so the population
mixes silent, near-threshold and repetitively firing cells (threshold for
repetitive firing is ~6 uA/cm2) rather than running n copies of one trajectory.
1 s at dt = 0.025 ms.  This measures raw per-neuron integration cost: no
synapses, no events other than spike detection.

Peers, each left at its default threading:

* NEURON: fixed step, backward Euler, ``hh`` with its default rate tables
  (``usetable_hh = 1``), ``IClamp`` per cell, spikes recorded by NetCon.
* Brian2 runtime (Cython) and cpp_standalone: the same equations as hh.mod,
  ``exponential_euler``.
* Jaxley (float32 and float64, its own environment, see ``jaxley_env``): its ``HH`` channel
  (= ``hh`` at 6.3 degC), one cell's jit-compiled ``integrate`` batched over the cells with
  ``vmap`` and run in chunks of 2,000 steps (``jaxley_peer.hh_independent``); build_s includes
  the compilation.

Each ``run_*`` returns ``neuron_steps_per_s`` (n * steps / run_s),
``build_s`` (model construction plus code generation/compilation up to the
first simulated step), ``run_s``, ``n_spikes`` and ``threads``.  Use
:func:`measure` (fresh process per peer) for numbers worth reporting.
Run ``python -m benchmarks.peers.hh_independent [--n 1000 --duration-ms 100]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from .brian_util import brian_device, brian_thread_info
from .env_info import thread_info
from .isolate import run_isolated

N_NEURONS = 10_000
DURATION_MS = 1000.0
DT_MS = 0.025
CELSIUS = 6.3
AREA_UM2 = 1000.0
I_MAX = 20.0  # uA/cm2, top of the current spread
V_INIT = -65.0  # mV
V_SPIKE = 0.0  # mV, upward crossing counts as a spike

# hh.mod parameters
CM = 1.0  # uF/cm2
GNABAR = 0.12  # S/cm2
GKBAR = 0.036
GL = 0.0003
ENA = 50.0  # mV
EK = -77.0
EL = -54.3

PEERS = ("neuron", "brian2_runtime", "brian2_cpp_standalone", "jaxley_float32", "jaxley_float64")


def drive_currents(n: int, i_max: float = I_MAX) -> np.ndarray:
    """Per-neuron current density in uA/cm2 (evenly spread over 0..i_max)."""
    return np.linspace(0.0, i_max, n)


def _n_steps(duration_ms: float, dt_ms: float) -> int:
    return int(round(duration_ms / dt_ms))


def _result(simulator, n, duration_ms, dt_ms, build_s, run_s, n_spikes,
            threads, version):
    steps = _n_steps(duration_ms, dt_ms)
    return {
        "simulator": simulator, "n": n, "duration_ms": duration_ms,
        "dt_ms": dt_ms, "steps": steps,
        "neuron_steps_per_s": n * steps / run_s,
        "build_s": build_s, "run_s": run_s, "n_spikes": int(n_spikes),
        "threads": threads, "version": version,
    }


def run_neuron(n: int = N_NEURONS, duration_ms: float = DURATION_MS,
               dt_ms: float = DT_MS, i_max: float = I_MAX) -> dict:
    """n independent ``hh`` sections in NEURON (fixed step, backward Euler)."""
    import neuron
    from neuron import h

    t0 = time.perf_counter()
    h.load_file("stdrun.hoc")
    h.CVode().active(0)
    h.secondorder = 0
    h.dt = dt_ms
    h.celsius = CELSIUS
    # L = diam gives lateral area pi*d^2, so this fixes the area.
    diam = math.sqrt(AREA_UM2 / math.pi)
    # IClamp wants nA: uA/cm2 * um2 * 1e-8 cm2/um2 * 1e3 nA/uA.
    amps_na = drive_currents(n, i_max) * AREA_UM2 * 1e-5
    spike_t, spike_id = h.Vector(), h.Vector()
    keep = []
    for k in range(n):
        sec = h.Section(name=f"hh_{k}")
        sec.L = sec.diam = diam
        sec.nseg = 1
        sec.cm = CM
        sec.insert("hh")  # hh.mod defaults are the parameters above
        sec.ena = ENA
        sec.ek = EK
        stim = h.IClamp(sec(0.5))
        stim.delay = 0.0
        stim.dur = 1e9
        stim.amp = amps_na[k]
        nc = h.NetCon(sec(0.5)._ref_v, None, sec=sec)
        nc.threshold = V_SPIKE
        nc.record(spike_t, spike_id, k)
        keep.append((sec, stim, nc))
    pc = h.ParallelContext()
    pc.set_maxstep(10)
    h.finitialize(V_INIT)
    build_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    # psolve runs the fixed-step loop in C without per-step interpreter work.
    pc.psolve(duration_ms)
    run_s = time.perf_counter() - t1
    return _result("neuron", n, duration_ms, dt_ms, build_s, run_s,
                   spike_t.size(),
                   thread_info(neuron_nthread=int(pc.nthread()),
                               usetable_hh=int(h.usetable_hh)),
                   neuron.__version__)


_BRIAN_EQS = """
dv/dt = (I - gnabar*m**3*h*(v - ENa) - gkbar*n**4*(v - EK)
         - gl*(v - El)) / Cm : volt
dm/dt = q10*(alpha_m*(1 - m) - beta_m*m) : 1
dh/dt = q10*(alpha_h*(1 - h) - beta_h*h) : 1
dn/dt = q10*(alpha_n*(1 - n) - beta_n*n) : 1
alpha_m = 1/exprel(-(v + 40*mV)/(10*mV))/ms : Hz
beta_m = 4*exp(-(v + 65*mV)/(18*mV))/ms : Hz
alpha_h = 0.07*exp(-(v + 65*mV)/(20*mV))/ms : Hz
beta_h = 1/(1 + exp(-(v + 35*mV)/(10*mV)))/ms : Hz
alpha_n = 0.1/exprel(-(v + 55*mV)/(10*mV))/ms : Hz
beta_n = 0.125*exp(-(v + 65*mV)/(80*mV))/ms : Hz
I : amp/meter**2 (constant)
"""


def _hh_steady_state(v_mv: float) -> dict:
    """hh.mod gate steady states at v (q10 cancels in alpha/(alpha+beta))."""
    def x_over_expm1(x):
        return 1.0 - x / 2.0 if abs(x) < 1e-9 else x / math.expm1(x)

    rates = {
        "m": (x_over_expm1(-(v_mv + 40.0) / 10.0),
              4.0 * math.exp(-(v_mv + 65.0) / 18.0)),
        "h": (0.07 * math.exp(-(v_mv + 65.0) / 20.0),
              1.0 / (1.0 + math.exp(-(v_mv + 35.0) / 10.0))),
        "n": (0.1 * x_over_expm1(-(v_mv + 55.0) / 10.0),
              0.125 * math.exp(-(v_mv + 65.0) / 80.0)),
    }
    return {g: a / (a + b) for g, (a, b) in rates.items()}


def run_brian2(n: int = N_NEURONS, duration_ms: float = DURATION_MS,
               dt_ms: float = DT_MS, i_max: float = I_MAX,
               mode: str = "runtime", cold_cache: bool = False) -> dict:
    """n independent HH neurons in Brian2 (``mode``: runtime/cpp_standalone).

    Per-area formulation (no area needed): Cm in uF/cm2, g in S/cm2,
    I in uA/cm2.  ``run_s`` is Brian's own main-loop time; everything else
    up to the end of ``run`` (codegen, compilation, standalone binary start
    and result I/O) is ``build_s``.  ``cold_cache`` makes runtime mode
    compile its Cython code from scratch.
    """
    import brian2 as b2
    from brian2 import cm, ms, mV, siemens, uA, ufarad

    namespace = {
        "Cm": CM * ufarad / cm**2,
        "gnabar": GNABAR * siemens / cm**2,
        "gkbar": GKBAR * siemens / cm**2,
        "gl": GL * siemens / cm**2,
        "ENa": ENA * mV, "EK": EK * mV, "El": EL * mV,
        "q10": 3.0 ** ((CELSIUS - 6.3) / 10.0),
        "v_spike": V_SPIKE * mV,
    }
    with brian_device(mode, cold_cache):
        t0 = time.perf_counter()
        b2.defaultclock.dt = dt_ms * ms
        # Refractory while above threshold = count upward crossings only,
        # like NEURON's NetCon.
        group = b2.NeuronGroup(n, _BRIAN_EQS, threshold="v > v_spike",
                               refractory="v > v_spike",
                               method="exponential_euler")
        group.v = V_INIT * mV
        for gate, value in _hh_steady_state(V_INIT).items():
            setattr(group, gate, value)
        group.I = drive_currents(n, i_max) * uA / cm**2
        mon = b2.SpikeMonitor(group, record=False)
        net = b2.Network(group, mon)
        net.run(duration_ms * ms, namespace=namespace)
        total_s = time.perf_counter() - t0
        run_s = float(b2.device._last_run_time)
        n_spikes = int(mon.num_spikes)
        threads = brian_thread_info()
    return {**_result(f"brian2_{mode}", n, duration_ms, dt_ms,
                      total_s - run_s, run_s, n_spikes, threads,
                      b2.__version__),
            "cold_cache": cold_cache}


def run_peer(peer: str, n: int = N_NEURONS, duration_ms: float = DURATION_MS,
             dt_ms: float = DT_MS, cold_cache: bool = False) -> dict:
    """Dispatch by name (one of :data:`PEERS`); target for ``run_isolated``."""
    if peer == "neuron":
        return run_neuron(n=n, duration_ms=duration_ms, dt_ms=dt_ms)
    if peer.startswith("brian2_"):
        return run_brian2(n=n, duration_ms=duration_ms, dt_ms=dt_ms,
                          mode=peer[len("brian2_"):], cold_cache=cold_cache)
    if peer.startswith("jaxley_"):
        from . import jaxley_env

        return jaxley_env.run("hh_independent", {"n": n, "duration_ms": duration_ms, "dt_ms": dt_ms,
                                                 "dtype": peer[len("jaxley_"):]})
    raise ValueError(f"unknown peer {peer!r}; use {PEERS}")


def measure(n: int = N_NEURONS, duration_ms: float = DURATION_MS,
            peers=PEERS, cold_cache: bool = False,
            timeout: float | None = None) -> list[dict]:
    """Run each peer in its own fresh process and collect the results."""
    return [run_isolated(run_peer, {"peer": p, "n": n,
                                    "duration_ms": duration_ms,
                                    "cold_cache": cold_cache},
                         timeout=timeout)
            for p in peers]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=N_NEURONS)
    parser.add_argument("--duration-ms", type=float, default=DURATION_MS)
    parser.add_argument("--peers", nargs="+", default=list(PEERS),
                        choices=PEERS)
    parser.add_argument("--cold-cache", action="store_true",
                        help="brian2_runtime compiles its Cython code afresh")
    args = parser.parse_args(argv)
    print(f"{'peer':<22} {'n':>7} {'steps':>7} {'neuron-steps/s':>15} "
          f"{'build s':>8} {'run s':>8} {'spikes':>9}")
    for r in measure(args.n, args.duration_ms, args.peers, args.cold_cache):
        print(f"{r['simulator']:<22} {r['n']:>7} {r['steps']:>7} "
              f"{r['neuron_steps_per_s']:>15.3e} {r['build_s']:>8.2f} "
              f"{r['run_s']:>8.2f} {r['n_spikes']:>9}", flush=True)


if __name__ == "__main__":
    main()
