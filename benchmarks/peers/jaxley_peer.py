"""Jaxley on the benchmark workloads (runs only inside ``.venv-jaxley``; see ``jaxley_env``).

Model: Jaxley's ``HH`` channel, whose rates are NEURON's ``hh`` at 6.3 degC (Jaxley has no
temperature factor), gNa 0.12, gK 0.036, gLeak 0.0003 S/cm2, ENa 50, EK -77, ELeak -54.3 mV,
1 uF/cm2; voltages start at -65 mV with the gates at steady state (``init_states``).
Solver: Jaxley's default ``bwd_euler``: each step first advances the gates by exponential Euler
at v(t), then solves the voltage implicitly with the channel current linearised at v(t) using
those new gates. NEURON and BrainFuse stagger the other way (voltage first with the old gates,
then the gates at v(t+dt)). From gates at steady state the voltage sequences are nevertheless the
same (see ``benchmarks.gradients.physics_check``), which the cable comparison confirms.

Workloads (all on the CPU, jit-compiled; compile time is measured by ahead-of-time
``jit(...).lower(...).compile()`` and reported apart from run time):

* ``hh_independent``: n point cells of 1000 um2 driven by constant currents spread over
  0..20 uA/cm2 (the workload of ``hh_independent``). One cell's ``integrate`` is batched over the
  cells with ``vmap``, so compile time and memory do not grow with n; the run goes in chunks of
  ``chunk_steps`` steps whose final states seed the next chunk (``all_states``), which keeps only
  one chunk of voltage in memory. Spikes (upward 0 mV crossings) are counted inside each chunk.
* ``gradient_point``: the same cells, loss = mean over cells and samples of (v - V_TARGET)^2,
  gradient w.r.t. gNa, gK, gLeak shared by all cells (three scalars).
* ``gradient_cable``: one unbranched cable, ``ncomp`` compartments, 1000 um long, 1 um thick,
  100 ohm cm, ``HH`` everywhere, a constant 0.1 nA into the first compartment; loss = mean over
  compartments and samples of v^2; gradient w.r.t. gNa, gK, gLeak shared by all compartments.

``checkpoint`` (gradients only) passes Jaxley's nested checkpointing of the time scan,
``checkpoint_lengths = [ceil(sqrt(steps)), ceil(sqrt(steps))]``; without it reverse mode keeps
every step's state. Memory is measured by ``benchmarks.gradients.measure_call`` like every engine.
"""

from __future__ import annotations

import math
import os
import time

from benchmarks.gradients import CABLE, POINT, measure_call
from benchmarks.peers import hh_independent as workload

GATES_AT_REST = ("HH_m", "HH_h", "HH_n")


def _jax(dtype):
    import jax

    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    jax.config.update("jax_enable_x64", dtype == "float64")
    return jax


def _version():
    import jax
    import jaxley

    return {"version": f"jaxley {jaxley.__version__}, jax {jax.__version__}",
            "threads": {"cpu_count": os.cpu_count(), "xla": "default (one intra-op thread per core)"}}


def _rest(module):
    module.set("v", workload.V_INIT)
    module.init_states()


def _point_cell():
    """A cylinder with length = diameter, so its lateral area is pi d^2 = workload.AREA_UM2."""
    import jaxley as jx
    from jaxley.channels import HH

    diameter = math.sqrt(workload.AREA_UM2 / math.pi)
    comp = jx.Compartment()
    comp.set("radius", diameter / 2.0)
    comp.set("length", diameter)
    comp.set("capacitance", workload.CM)
    comp.insert(HH())
    _rest(comp)
    comp.record("v", verbose=False)
    return comp


def _amplitudes_na(n):
    import jax.numpy as jnp

    # uA/cm2 * um2 * 1e-8 cm2/um2 * 1e3 nA/uA
    return jnp.asarray(workload.drive_currents(n) * workload.AREA_UM2 * 1e-5)


def _checkpoints(steps, checkpoint):
    side = math.ceil(math.sqrt(steps))
    return [side, side] if checkpoint else None


def hh_independent(n=workload.N_NEURONS, duration_ms=workload.DURATION_MS, dt_ms=workload.DT_MS, dtype="float32",
                   chunk_steps=2000):
    """n independent squid HH cells; returns the fields of ``hh_independent._result``."""
    jax = _jax(dtype)
    import jax.numpy as jnp
    import jaxley as jx
    from jaxley.integrate import build_init_and_step_fn

    started = time.perf_counter()
    steps = int(round(duration_ms / dt_ms))
    chunk_steps = min(chunk_steps, steps)
    if steps % chunk_steps:
        raise ValueError(f"{steps} steps are not a whole number of chunks of {chunk_steps}")
    cell = _point_cell()
    cell.to_jax()
    init_fn, _ = build_init_and_step_fn(cell, voltage_solver="jaxley.dhs.cpu", solver="bwd_euler")
    states, _ = init_fn([], None, None, dt_ms)
    states = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), states)

    def advance(state, amp_na):
        stimulus = cell.data_stimulate(jnp.full(chunk_steps, amp_na))
        v, state = jx.integrate(cell, data_stimuli=stimulus, delta_t=dt_ms, all_states=state, return_states=True)
        v = v[0]
        return state, jnp.sum((v[:-1] < workload.V_SPIKE) & (v[1:] >= workload.V_SPIKE))

    amplitudes = _amplitudes_na(n)
    compiled = jax.jit(jax.vmap(advance)).lower(states, amplitudes).compile()
    build_s = time.perf_counter() - started

    started = time.perf_counter()
    spikes = 0
    for _ in range(steps // chunk_steps):
        states, counts = compiled(states, amplitudes)
        spikes += counts  # stays on the device; summed once at the end
    spikes = int(jnp.sum(spikes))
    run_s = time.perf_counter() - started
    return {"simulator": f"jaxley_{dtype}", "n": n, "duration_ms": duration_ms, "dt_ms": dt_ms, "steps": steps,
            "neuron_steps_per_s": n * steps / run_s, "build_s": build_s, "run_s": run_s, "n_spikes": spikes,
            **_version(), "method": f"vmap over cells, chunks of {chunk_steps} steps"}


def _shared_conductances(module):
    for name in ("HH_gNa", "HH_gK", "HH_gLeak"):
        module.make_trainable(name, verbose=False)
    return module.get_parameters()


def _gradient_row(workload_name, dtype, checkpoint, prepare, repeats):
    row = measure_call(prepare, repeats)
    return {"engine": f"jaxley_{dtype}" + ("_checkpointed" if checkpoint else ""), "workload": workload_name,
            "dtype": dtype, **row, **_version()}


def _value_and_grad(jax, loss, params):
    """(compile s, call) for the jitted value-and-gradient; the call returns plain floats.

    The executable is compiled ahead of time and called once (it is shape-specific, so the warm-up
    is a full call), as our engines warm up before their measured call."""
    started = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(loss)).lower(params).compile()
    compile_s = time.perf_counter() - started

    def call():
        value, grads = compiled(params)
        value = jax.block_until_ready(value)
        return {"loss": float(value), "gradient": {k: float(g[k].sum()) for g in grads for k in g}}
    call()
    return compile_s, call


def gradient_point(n=POINT["n"], steps=POINT["steps"], dt_ms=POINT["dt_ms"], dtype="float32", checkpoint=False,
                   repeats=3):
    """Workload b: forward + backward of n HH point cells over ``steps`` steps."""
    jax = _jax(dtype)
    import jax.numpy as jnp
    import jaxley as jx

    def prepare():
        cell = _point_cell()
        params = _shared_conductances(cell)
        amplitudes = _amplitudes_na(n)
        lengths = _checkpoints(steps, checkpoint)

        def cell_loss(p, amp_na):
            stimulus = cell.data_stimulate(jnp.full(steps, amp_na))
            v = jx.integrate(cell, params=p, data_stimuli=stimulus, delta_t=dt_ms, checkpoint_lengths=lengths)
            return jnp.mean((v - POINT["v_target_mv"]) ** 2)

        def loss(p):
            return jnp.mean(jax.vmap(cell_loss, in_axes=(None, 0))(p, amplitudes))
        return _value_and_grad(jax, loss, params)
    return _gradient_row("point", dtype, checkpoint, prepare, repeats)


def _cable(ncomp, steps):
    import jax.numpy as jnp
    import jaxley as jx
    from jaxley.channels import HH

    cell = jx.Cell(jx.Branch(jx.Compartment(), ncomp=ncomp), parents=[-1])
    cell.set("radius", CABLE["diameter_um"] / 2.0)
    cell.set("length", CABLE["length_um"] / ncomp)
    cell.set("axial_resistivity", CABLE["ra_ohm_cm"])
    cell.set("capacitance", CABLE["cm_uf_per_cm2"])
    cell.insert(HH())
    _rest(cell)
    cell.branch(0).comp(0).stimulate(jnp.full(steps, CABLE["current_na"]), verbose=False)
    cell.record("v", verbose=False)
    return cell


def gradient_cable(ncomp=CABLE["ncomp"], steps=CABLE["steps"], dt_ms=CABLE["dt_ms"], dtype="float32",
                   checkpoint=False, repeats=5):
    """Workload c: gradient of the HH cable's loss; also returns the far-end trace for the physics check."""
    jax = _jax(dtype)
    import jax.numpy as jnp
    import jaxley as jx

    def prepare():
        cell = _cable(ncomp, steps)
        params = _shared_conductances(cell)
        lengths = _checkpoints(steps, checkpoint)

        def loss(p):
            return jnp.mean(jx.integrate(cell, params=p, delta_t=dt_ms, checkpoint_lengths=lengths) ** 2)
        return _value_and_grad(jax, loss, params)
    row = _gradient_row("cable", dtype, checkpoint, prepare, repeats)
    # The trace is recorded after the timing, so its memory does not count.
    v = jx.integrate(_cable(ncomp, steps), delta_t=dt_ms)
    row["traces"] = {"near": v[0].tolist(), "far": v[-1].tolist(), "dt_ms": dt_ms}
    return row
