"""The Potjans–Diesmann microcircuit with HH point neurons: BrainFuse next to Brian2 on the same network.

    .venv/bin/python -m benchmarks.potjans_diesmann                 # 10 % (7,717 cells), 1 s: a few minutes per simulator
    .venv/bin/python -m benchmarks.potjans_diesmann --scale 0.02 --duration 300   # a smoke run

BrainFuse runs ``brainfuse_core.networks.potjans_diesmann.project(scale)`` and writes the network it drew
(connections, weights, initial voltages, DC compensation, cell and synapse numbers) for the Brian2 peer
(``benchmarks.peers.potjans_diesmann``), each simulator in a fresh process. Printed: build and run wall
times with the ratio (peer run s / ours), then per population the rate, CV of ISI and synchrony of each
simulator next to the published full-scale rates, over [100 ms, end) to leave out the start-up transient.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .peers import potjans_diesmann as peer
from .peers.isolate import run_isolated

T_START_MS = 100.0


def ours(scale, duration_ms, dtype, export_dir):
    """BrainFuse on the column at ``scale`` for ``duration_ms``; writes the drawn network to ``export_dir``
    (network.json + arrays.npz) for the peers. ``build_s``: project → compiled first step; ``run_s``: the run."""
    from brainfuse_core.networks import potjans_diesmann as pd
    from brainfuse_core.project import Project

    started = time.perf_counter()
    doc = pd.project(scale, duration=duration_ms, dtype=dtype)
    doc["recordings"] = []
    sim = Project(doc).simulation()
    sim.run(doc["run"]["dt"])
    build_s = time.perf_counter() - started
    export_network(doc, sim.network, Path(export_dir))
    started = time.perf_counter()
    result = sim.run(duration_ms)
    run_s = time.perf_counter() - started
    names = list(pd.POPULATIONS)
    sizes = [doc["circuit"]["populations"][name]["n"] for name in names]
    offsets = dict(zip(names, np.cumsum([0] + sizes)))
    times = np.concatenate([result.spikes[name].time for name in names])
    cells = np.concatenate([result.spikes[name].cell + offsets[name] for name in names])
    stats = peer.population_statistics(times, cells, names, sizes, T_START_MS, duration_ms)
    return {"simulator": f"brainfuse_{dtype}", "build_s": build_s, "run_s": run_s, "total_s": build_s + run_s,
            "n_cells": int(sum(sizes)), "populations": stats}


def export_network(doc, network, directory):
    """The network as drawn: connections in global cell indices (populations in model order), per-connection
    weights (µS), initial voltages (mV) and DC (nA) per cell; the numbers of the cell, synapses and drive."""
    from brainfuse_core.networks import potjans_diesmann as pd

    directory.mkdir(parents=True, exist_ok=True)
    names = list(pd.POPULATIONS)
    populations = network.populations
    offsets = dict(zip(names, np.cumsum([0] + [populations[name].n for name in names])))
    edges = {"exc": ([], [], []), "inh": ([], [], [])}
    delays = {"exc": set(), "inh": set()}
    for projection in network.projections:
        if projection.pre not in offsets:
            continue  # the Poisson background: each simulator draws its own
        kind = "exc" if pd.is_excitatory(projection.pre) else "inh"
        pre, post, weight = edges[kind]
        pre.append(projection.pre_index.numpy() + offsets[projection.pre])
        post.append(projection.post_index.numpy() + offsets[projection.post])
        weight.append(projection.weights.detach().numpy())
        delays[kind].add(projection.delay)
    v0 = np.concatenate([np.broadcast_to(np.asarray(populations[name].v_init, dtype=float), (populations[name].n,))
                         for name in names])
    dc = {entry["population"]: entry["amp"] for entry in doc["stimuli"]}
    dc_na = np.concatenate([np.full(populations[name].n, dc.get(name, 0.0)) for name in names])
    arrays = {"v0": v0, "dc_na": dc_na}
    for kind, (pre, post, weight) in edges.items():
        arrays[f"{kind}_pre"], arrays[f"{kind}_post"] = np.concatenate(pre), np.concatenate(post)
        arrays[f"{kind}_weight"] = np.concatenate(weight)
    np.savez(directory / "arrays.npz", **arrays)
    (delay_exc,), (delay_inh,) = delays["exc"], delays["inh"]
    channels, cell = doc["channels"], doc["cells"][pd.CELL]
    soma = cell["morphology"]["soma"]
    spec = {
        "arrays": str(directory / "arrays.npz"), "populations": names, "sizes": [populations[n].n for n in names],
        "dt": doc["run"]["dt"], "duration": doc["run"]["duration"], "threshold": pd.SPIKE_THRESHOLD_MV,
        "cell": {"area_um2": np.pi * soma["diameter"] * soma["length"], "cm": cell["cm"],
                 "g_leak": channels["leak"]["gbar"], "e_leak": channels["leak"]["reversal"],
                 "g_na": channels["traub_na"]["gbar"], "g_kd": channels["traub_kd"]["gbar"],
                 "vt": channels["traub_na"]["vt"], "e_na": cell["reversals"]["na"], "e_k": cell["reversals"]["k"]},
        "tau_syn": pd.TAU_SYN_MS, "e_exc": pd.E_EXC_MV, "e_inh": pd.E_INH_MV,
        "delay_exc": delay_exc, "delay_inh": delay_inh,
        "k_ext": list(pd.EXTERNAL_IN_DEGREES), "background_rate_hz": pd.BACKGROUND_RATE_HZ,
        "w_ext": pd.external_weight_us(),
    }
    (directory / "network.json").write_text(json.dumps(spec, indent=1))
    return directory / "network.json"


def compare(scale=0.1, duration_ms=1000.0, dtype="float32", simulators=peer.SIMULATORS):
    """Ours, then each peer on the network ours drew; prints the tables and returns every row."""
    from brainfuse_core.networks import potjans_diesmann as pd

    with tempfile.TemporaryDirectory(prefix="bf_pd_") as directory:
        mine = run_isolated("benchmarks.potjans_diesmann:ours",
                            {"scale": scale, "duration_ms": duration_ms, "dtype": dtype, "export_dir": directory})
        peers = [run_isolated("benchmarks.peers.potjans_diesmann:benchmark",
                              {"network_json": str(Path(directory) / "network.json"), "simulator": simulator,
                               "t_start_ms": T_START_MS}) for simulator in simulators]
    rows = [mine] + peers
    print(f"\nPotjans-Diesmann column, {scale:.0%} scale ({mine['n_cells']:,} HH cells), {duration_ms:g} ms at dt 0.1 ms "
          "(ratio = row run s / ours)")
    print(f"{'simulator':<26}{'build s':>10}{'run s':>10}{'ratio':>10}")
    for row in rows:
        print(f"{row['simulator']:<26}{row['build_s']:>10.2f}{row['run_s']:>10.2f}{row['run_s'] / mine['run_s']:>10.2f}")
    print(f"\nOver [{T_START_MS:g}, {duration_ms:g}) ms: rates (Hz) next to the published full-scale ones (Potjans & "
          "Diesmann 2014, Fig. 6, as NEST's microcircuit example lists them); CV of ISI, and what the same estimator gives "
          "for Poisson trains with our spike counts; synchrony (variance/mean of 3 ms population counts, 1 = Poisson)")
    for key, title, reference in (("rate_hz", "rate (Hz)", "published"), ("cv_isi", "CV of ISI", "Poisson"),
                                  ("synchrony", "synchrony", None)):
        print(f"\n{title:<12}" + (f"{reference:>12}" if reference else "") + "".join(f"{row['simulator']:>24}" for row in rows))
        for k, name in enumerate(pd.POPULATIONS):
            first = {"published": pd.FULL_SCALE_RATES_HZ[k], "Poisson": mine["populations"][name]["cv_poisson"]}.get(reference)
            print(f"{name:<12}" + (f"{first:>12.2f}" if reference else "")
                  + "".join(f"{row['populations'][name][key]:>24.2f}" for row in rows))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description="Potjans-Diesmann column: BrainFuse and Brian2 on the same network")
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of the full model (0.01-1)")
    parser.add_argument("--duration", type=float, default=1000.0, help="biological time (ms)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--peers", nargs="*", choices=peer.SIMULATORS, default=list(peer.SIMULATORS))
    args = parser.parse_args(argv)
    compare(args.scale, args.duration, args.dtype, args.peers)


if __name__ == "__main__":
    main()
