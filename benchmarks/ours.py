"""BrainFuse on the benchmark workloads, with the same result fields as ``benchmarks.peers``.

``build_s`` is model construction plus a one-step first call (numba compiles on first use,
cached on disk afterwards); ``run_s`` the simulation alone.
"""

import time
from pathlib import Path

import torch

import brainfuse_core as bf
from brainfuse_core.project import Project, load_project

from .peers import hh_independent as peer_hh

ROOT = Path(__file__).resolve().parents[1]


def hh_independent(n=peer_hh.N_NEURONS, duration_ms=peer_hh.DURATION_MS, dt_ms=peer_hh.DT_MS, dtype="float32"):
    """The peers' workload: n squid HH cells of 1000 µm², currents spread over 0..20 µA/cm², 6.3 °C."""
    started = time.perf_counter()
    cell = bf.Cell.point(area=peer_hh.AREA_UM2, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")])
    network = bf.Network([bf.Population("hh", cell, n, threshold=peer_hh.V_SPIKE)])
    currents = torch.as_tensor(peer_hh.drive_currents(n), dtype=torch.float64)
    stimulus = bf.Waveform(currents.reshape(1, 1, n), sample_dt=1e9, population="hh", density=True)
    kwargs = dict(stimuli=[stimulus], probes=[], dt=dt_ms, celsius=peer_hh.CELSIUS, dtype=getattr(torch, dtype))
    bf.Simulation(network, **kwargs).run(dt_ms)
    build_s = time.perf_counter() - started
    sim = bf.Simulation(network, **kwargs)
    started = time.perf_counter()
    result = sim.run(duration_ms)
    run_s = time.perf_counter() - started
    steps = int(round(duration_ms / dt_ms))
    return {"simulator": f"brainfuse_{dtype}", "n": n, "steps": steps, "neuron_steps_per_s": n * steps / run_s,
            "build_s": build_s, "run_s": run_s, "n_spikes": len(result.spikes["hh"]), "threads": torch.get_num_threads()}


def cobahh(duration_ms=1000.0, dtype="float32"):
    """projects/cobahh.json (4,000 Traub-Miles HH cells, 1 s at dt 0.1 ms) and its spike statistics."""
    started = time.perf_counter()
    data = load_project(ROOT / "projects" / "cobahh.json").to_dict()
    data["run"]["dtype"] = dtype
    data["recordings"] = []
    sim = Project.from_dict(data).simulation()
    sim.run(0.1)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    result = sim.run(duration_ms)
    run_s = time.perf_counter() - started
    exc, inh = result.spikes["E"], result.spikes["I"]
    cv = [*exc.cv_isi(), *inh.cv_isi()]
    return {"simulator": f"brainfuse_{dtype}", "build_s": build_s, "run_s": run_s, "total_s": build_s + run_s,
            "rate_exc_hz": float(exc.rates().mean()), "rate_inh_hz": float(inh.rates().mean()),
            "cv_isi": float(sum(cv) / len(cv)), "n_spikes": len(exc) + len(inh)}
