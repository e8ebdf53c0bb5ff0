"""Gradient benchmarks: BrainFuse against Jaxley (and NEURON/Brian2 forward-only, which have no gradients).

Workloads (squid ``hh`` kinetics at 6.3 degC, dt 0.025 ms; gradients w.r.t. the three conductance
densities gNa, gK, gL, each ONE scalar shared by every cell or compartment):

* point: forward + backward of ``POINT["n"]`` point cells of 1000 um2 over ``POINT["steps"]`` steps,
  constant currents spread over 0..20 uA/cm2 (as ``peers.hh_independent``); loss = mean over
  cells and samples (t = 0 included) of (v - POINT["v_target_mv"])^2.
* cable: one unbranched cable of ``CABLE["ncomp"]`` compartments (1000 um x 1 um, 100 ohm cm,
  1 uF/cm2, HH everywhere), a constant 0.1 nA into the centre of the first compartment, over
  ``CABLE["steps"]`` steps; loss = mean over compartment centres and samples of v^2.

Every row is measured in a fresh process by ``measure_call``, the same for every engine:
``prepare()`` builds the model, compiles and warms up (ours: a 10-step gradient call on the same
model; Jaxley: ahead-of-time compilation, then one call, its executable being shape-specific);
build s is all of that, compile s the compile/warm-up part. Then freed heap pages go back to the
kernel (glibc ``malloc_trim``), the resident-set high-water mark is reset (writing "5" to
/proc/self/clear_refs) and one gradient call runs (first s): peak MB = VmHWM after it minus VmRSS
before it, so imports, construction, compilation and one-time first-use allocations do not count;
run s is the median of ``repeats`` further calls.

    .venv/bin/python -m benchmarks.gradients [--quick]

Our engines: ``OUR_ENGINES`` maps a row name to ``engine(model, stimuli, probes, dt_ms, steps, dtype)``
-> the run's traces dict ({probe name: tensor}) differentiable w.r.t. the channels' gbar tensors;
adding an engine is one entry there. A 10-step gradient call before the measured one (its time is
"compile s") is where an engine compiles.
This module imports torch and BrainFuse only inside our workloads, because the Jaxley side
(``peers.jaxley_peer``) imports ``measure_call`` from here inside Jaxley's own environment.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import statistics
import time

POINT = {"n": 1000, "steps": 10_000, "dt_ms": 0.025, "v_target_mv": -65.0}
CABLE = {"ncomp": 100, "steps": 2000, "dt_ms": 0.025, "length_um": 1000.0, "diameter_um": 1.0, "ra_ohm_cm": 100.0,
         "cm_uf_per_cm2": 1.0, "current_na": 0.1}
QUICK_POINT = {"n": 100, "steps": 1000}
QUICK_CABLE = {"ncomp": 100, "steps": 400}
CELSIUS = 6.3
CONDUCTANCES = ("gna", "gk", "gl")  # hh_na, hh_k, leak gbar (S/cm2), in this order everywhere


def _status_mb(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _return_free_heap():
    """Give freed heap pages back to the kernel, so that memory the call reuses from earlier work
    (construction, compilation) shows up as resident-set growth instead of hiding in the heap."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure_call(prepare, repeats):
    """``prepare() -> (build_s, call)``; ``call()`` runs one forward + backward and returns
    {"loss": float, "gradient": {name: float}}. See the module docstring for what is measured."""
    started = time.perf_counter()
    compile_s, call = prepare()
    build_s = time.perf_counter() - started
    _return_free_heap()
    baseline_mb = _status_mb("VmRSS")
    _reset_peak()
    if _status_mb("VmHWM") > baseline_mb + 1.0:
        raise RuntimeError("/proc/self/clear_refs did not reset the high-water mark; peak memory cannot be measured")
    started = time.perf_counter()
    result = call()
    first_s = time.perf_counter() - started
    peak_mb = _status_mb("VmHWM") - baseline_mb
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return {"build_s": build_s, "compile_s": compile_s, "first_s": first_s, "run_s": statistics.median(times),
            "peak_mb": peak_mb, "baseline_mb": baseline_mb, "repeats": repeats, **result}


# ------------------------------------------------------------------------------------------- our side

def _simulation(model, stimuli, probes, dt_ms, steps, dtype, **options):
    import brainfuse_core as bf

    sim = bf.Simulation(model, stimuli=stimuli, probes=probes, dt=dt_ms, celsius=CELSIUS, dtype=dtype, **options)
    return sim.run(steps * dt_ms).traces


# The kernels row is the reference of the ratios: a differentiable Simulation takes the compiled gradient
# kernels where it can (``compiled=True``, the default); compiled=False is the tensor path with recomputation.
OUR_ENGINES = {"brainfuse_kernels": _simulation, "brainfuse_tensor": functools.partial(_simulation, compiled=False)}
# torch's idle OpenMP workers otherwise spin after the loss's operations and take the cores the kernels need
# (a third of the cable's time); brainfuse_core sets the same default when it is imported before torch.
OUR_ENVIRONMENT = {"OMP_WAIT_POLICY": "passive"}


def _conductances(dtype):
    import torch

    import brainfuse_core as bf

    values = {name: bf.channel(name).gbar for name in ("hh_na", "hh_k", "leak")}
    return {name: torch.tensor(value, dtype=dtype, requires_grad=True) for name, value in values.items()}


def _gradient_call(engine, model, stimuli, probes, dt_ms, steps, dtype, gbars, loss_of):
    def call():
        for g in gbars.values():
            g.grad = None
        loss = loss_of(OUR_ENGINES[engine](model, stimuli, probes, dt_ms, steps, dtype))
        loss.backward()
        return {"loss": float(loss), "gradient": dict(zip(CONDUCTANCES, (float(g.grad) for g in gbars.values())))}
    return call


WARM_UP_STEPS = 10


def _warmed(engine, model, stimuli, probes, dt_ms, steps, dtype, gbars, loss_of):
    """(compile s, call): a gradient call of WARM_UP_STEPS steps first, so an engine that compiles
    on first use (numba, Triton) does it here, outside the measured call, as Jaxley's AOT compile is."""
    started = time.perf_counter()
    _gradient_call(engine, model, stimuli, probes, dt_ms, min(steps, WARM_UP_STEPS), dtype, gbars, loss_of)()
    compile_s = time.perf_counter() - started
    return compile_s, _gradient_call(engine, model, stimuli, probes, dt_ms, steps, dtype, gbars, loss_of)


def ours_point(engine="brainfuse_tensor", n=POINT["n"], steps=POINT["steps"], dtype="float64", repeats=2):
    import torch

    import brainfuse_core as bf

    from .peers import hh_independent as workload

    def prepare():
        torch_dtype = getattr(torch, dtype)
        gbars = _conductances(torch_dtype)
        cell = bf.Cell.point(area=workload.AREA_UM2, channels=[bf.channel(k, gbar=g) for k, g in gbars.items()])
        network = bf.Network([bf.Population("hh", cell, n)])
        currents = torch.as_tensor(workload.drive_currents(n), dtype=torch.float64).reshape(1, 1, n)
        stimuli = [bf.Waveform(currents, sample_dt=1e9, population="hh", density=True)]
        probes = [bf.Probe("hh", "v")]
        loss_of = lambda traces: ((traces["hh.v"] - POINT["v_target_mv"]) ** 2).mean()
        return _warmed(engine, network, stimuli, probes, POINT["dt_ms"], steps, torch_dtype, gbars, loss_of)
    return {"engine": f"{engine}_{dtype}", "workload": "point", "dtype": dtype, **measure_call(prepare, repeats),
            "threads": torch.get_num_threads()}


def _our_cable(ncomp, gbars):
    import brainfuse_core as bf

    section = bf.Section("cable", CABLE["length_um"], CABLE["diameter_um"], nseg=ncomp)
    cell = bf.Cell(bf.Morphology([section]), ra=CABLE["ra_ohm_cm"], cm=CABLE["cm_uf_per_cm2"], v_init=POINT["v_target_mv"])
    for name, g in gbars.items():
        cell.insert(bf.channel(name, gbar=g))
    # Into the first compartment's centre, as Jaxley injects (x = 0 would be NEURON's zero-area end node).
    stimulus = bf.IClamp(CABLE["current_na"], 0.0, 1e9, section="cable", x=0.5 / ncomp)
    return cell, [stimulus], [bf.Probe("cell", "v", nodes="all")]


def _centres(traces):
    """(compartments, samples) at the compartment centres: the all-node probe without the two end nodes."""
    return traces["cell.v@all"][0, 0, 1:-1]


def ours_cable(engine="brainfuse_tensor", ncomp=CABLE["ncomp"], steps=CABLE["steps"], dtype="float64", repeats=5):
    import torch

    def prepare():
        torch_dtype = getattr(torch, dtype)
        gbars = _conductances(torch_dtype)
        cell, stimuli, probes = _our_cable(ncomp, gbars)
        loss_of = lambda traces: (_centres(traces) ** 2).mean()
        return _warmed(engine, cell, stimuli, probes, CABLE["dt_ms"], steps, torch_dtype, gbars, loss_of)
    row = {"engine": f"{engine}_{dtype}", "workload": "cable", "dtype": dtype, **measure_call(prepare, repeats),
           "threads": torch.get_num_threads()}
    with torch.no_grad():
        cell, stimuli, probes = _our_cable(ncomp, _conductances(getattr(torch, dtype)))
        v = _centres(OUR_ENGINES[engine](cell, stimuli, probes, CABLE["dt_ms"], steps, getattr(torch, dtype)))
    row["traces"] = {"near": v[0].tolist(), "far": v[-1].tolist(), "dt_ms": CABLE["dt_ms"]}
    return row


# ------------------------------------------------------------------------------------------ comparison

def first_spike(trace, dt_ms, threshold_mv=0.0):
    """(time ms, amplitude mV) of the first spike's peak, or (None, max) when the trace never crosses."""
    above = [i for i, v in enumerate(trace) if v >= threshold_mv]
    if not above:
        return None, max(trace)
    end = above[0]
    while end + 1 < len(trace) and trace[end + 1] >= trace[end]:
        end += 1
    return end * dt_ms, trace[end]


def physics_check(ours, jaxley):
    """Near- and far-end first-spike peaks, loss and gradients of the cable, BrainFuse vs Jaxley (same dtype, same sizes).

    The two order a step differently (NEURON's and ours: v with the old gates, then the gates at
    v(t+dt); Jaxley: the gates at v(t), then v), yet the voltages coincide here: the gates start at
    steady state, which Jaxley's first gate update leaves unchanged, and from then on its sequence is
    ours with the gates one step behind in the record; HH currents are linear in v for given gates,
    so Jaxley's linearisation is exact. What remains is round-off (and float32's larger share)."""
    print(f"\nSame physics, cable ({ours['dtype']}), BrainFuse / Jaxley:")
    for site in ("near", "far"):
        (t_o, a_o), (t_j, a_j) = (first_spike(row["traces"][site], row["traces"]["dt_ms"]) for row in (ours, jaxley))
        timing = f"{t_o:.3f} / {t_j:.3f} ms (diff {t_o - t_j:+.3f})" if t_o is not None and t_j is not None else f"{t_o} / {t_j}"
        print(f"  {site}-end first spike peak: time {timing}, amplitude {a_o:.2f} / {a_j:.2f} mV (diff {a_o - a_j:+.2f})")
    print(f"  loss (mV^2): {ours['loss']:.6g} / {jaxley['loss']:.6g} (rel diff {ours['loss'] / jaxley['loss'] - 1:+.2e})")
    jaxley_names = {"gna": "HH_gNa", "gk": "HH_gK", "gl": "HH_gLeak"}
    for name in CONDUCTANCES:
        o, j = ours["gradient"][name], jaxley["gradient"][jaxley_names[name]]
        print(f"  dloss/d{name} (mV^2 cm2/S): {o:.6g} / {j:.6g} (ratio {o / j:.4f})")


def _print_table(title, rows, ours_by_dtype):
    print(f"\n{title}")
    print(f"{'engine':<38}{'build s':>10}{'run s':>10}{'first s':>10}{'peak MB':>10}{'speed x':>10}{'memory x':>10}")
    for row in rows:
        ours = ours_by_dtype.get(row.get("dtype"))
        if "peak_mb" not in row:
            print(f"{row['engine']:<38}{row['build_s']:>10.2f}{row['run_s']:>10.3f}{'':>10}{'no gradient':>12}")
            continue
        speed = row["run_s"] / ours["run_s"] if ours else float("nan")
        memory = ours["peak_mb"] / row["peak_mb"] if ours else float("nan")
        print(f"{row['engine']:<38}{row['build_s']:>10.2f}{row['run_s']:>10.3f}{row['first_s']:>10.3f}"
              f"{row['peak_mb']:>10.1f}{speed:>10.2f}{memory:>10.2f}")
    print("speed x = row run s / our same-dtype run s (> 1: ours faster); memory x = our peak / row peak (< 1: ours smaller)")


def _rows(ours_fn, jaxley_fn, sizes, dtypes, checkpoints):
    from .peers import jaxley_env
    from .peers.isolate import run_isolated

    ours = [run_isolated(f"benchmarks.gradients:{ours_fn}", {"engine": e, "dtype": d, **sizes}, env=OUR_ENVIRONMENT)
            for e in OUR_ENGINES for d in dtypes]
    peers = [jaxley_env.run(jaxley_fn, {"dtype": d, "checkpoint": c, **sizes}) for d in dtypes for c in checkpoints]
    return ours, peers


def _by_dtype(ours):
    """The first of our engines of each dtype is the reference of the ratios."""
    reference = {}
    for row in ours:
        reference.setdefault(row["dtype"], row)
    return reference


def compare(quick=False):
    """Both workloads, every engine in its own process; prints the tables and the cable physics check."""
    from .peers import hh_independent as peer_hh
    from .peers.isolate import run_isolated

    point = {**POINT, **(QUICK_POINT if quick else {})}
    cable = {**CABLE, **(QUICK_CABLE if quick else {})}
    dtypes = ("float32", "float64")

    ours, peers = _rows("ours_point", "gradient_point", {"n": point["n"], "steps": point["steps"]}, dtypes, (False, True))
    duration_ms = point["steps"] * point["dt_ms"]
    forward = [run_isolated(peer_hh.run_peer, {"peer": p, "n": point["n"], "duration_ms": duration_ms})
               for p in ("neuron", "brian2_cpp_standalone")]
    forward = [{**row, "engine": f"{row['simulator']} (forward only)"} for row in forward]
    _print_table(f"Forward + backward, {point['n']} HH point cells x {point['steps']} steps of {point['dt_ms']} ms, "
                 "d(mean (v+65)^2)/d(gNa, gK, gL shared)", ours + peers + forward, _by_dtype(ours))

    ours, peers = _rows("ours_cable", "gradient_cable", {"ncomp": cable["ncomp"], "steps": cable["steps"]}, dtypes,
                        (False, True))
    _print_table(f"Gradient of a {cable['ncomp']}-compartment HH cable, {cable['steps']} steps of {cable['dt_ms']} ms, "
                 "d(mean v^2)/d(gNa, gK, gL shared)", ours + peers, _by_dtype(ours))
    for dtype in dtypes:
        physics_check(_by_dtype(ours)[dtype], next(p for p in peers if p["dtype"] == dtype))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    compare(parser.parse_args(argv).quick)


if __name__ == "__main__":
    main()
