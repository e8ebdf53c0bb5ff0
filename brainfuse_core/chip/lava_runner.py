"""The Lava side of the chip backend: run a deployment artifact in Lava (lava-nc 0.10.0, Python 3.10).

    .venv-lava/bin/python brainfuse_core/chip/lava_runner.py ARTIFACT OUT [--mode fixed|float]

Run by path, never imported by the main process: it needs only NumPy, Lava and the chip's
NumPy-only modules (``artifact``, ``fixed_point``, found next to this file) — not torch and not
the brainfuse package. Each population becomes an ``HHPopulation`` (``lava_models/hh_process.py``),
each projection Lava's own ``Dense`` (bit-accurate model in fixed point: 8-bit weights, shared
``weight_exp``; one chip step of delay). Disconnected parts of the network run one after another,
each with its own ``Loihi2SimCfg`` runtime (a Lava run covers the processes connected to the one
it is started on).

Writes ``OUT/result.npz`` (spike steps and cells per population, probe arrays) and
``OUT/result.json`` (activity counts, saturations, timings in s). On failure it prints the
traceback and exits with code 1 at once: Lava's workers of a failed run would otherwise keep it alive.
"""

import argparse
import json
import os
import sys
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "lava_models")]

import numpy as np  # noqa: E402

from artifact import Artifact  # noqa: E402
from fixed_point import SATURATED, Formats, activity_counts, loihi_dense  # noqa: E402

MODES = {"fixed": "fixed_pt", "float": "floating_pt"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact")
    parser.add_argument("out")
    parser.add_argument("--mode", choices=sorted(MODES), default="fixed")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Lava's search for process models re-imports the models' module by path and warns that it could not.
        warnings.simplefilter("ignore")
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense
        from lava.utils.weightutils import SignMode

        from hh_process import HHPopulation
    import_s = time.perf_counter() - started
    artifact = Artifact.load(args.artifact)
    manifest = artifact.manifest
    fixed = args.mode == "fixed"
    pops = [_population(artifact, i, fixed, HHPopulation) for i in range(len(manifest["populations"]))]
    sign_modes = {"excitatory": SignMode.EXCITATORY, "inhibitory": SignMode.INHIBITORY, "mixed": SignMode.MIXED}
    for proj in manifest["projections"]:
        post = manifest["populations"][proj["post"]]
        rows = np.zeros((len(post["receptors"]), post["n"], manifest["populations"][proj["pre"]]["n"]))
        if fixed:
            weights, weight_exp = loihi_dense(artifact.arrays[f"{proj['key']}_mantissa"], proj["exponent"], proj["bits"], proj["sign_mode"])
            rows[proj["receptor"]] = weights
            dense = Dense(weights=rows.reshape(-1, rows.shape[-1]).astype(np.int32), weight_exp=weight_exp, num_weight_bits=8,
                          sign_mode=sign_modes[proj["sign_mode"]])
        else:
            rows[proj["receptor"]] = artifact.arrays[f"{proj['key']}_weights_us"] * manifest["dt"] / post["capacitance_nf"]
            dense = Dense(weights=rows.reshape(-1, rows.shape[-1]))
        pops[proj["pre"]].s_out.connect(dense.s_in)
        dense.a_out.connect(pops[proj["post"]].a_in)
    run_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for component in _components(len(pops), manifest["projections"]):
            root = pops[component[0]]
            root.run(condition=RunSteps(num_steps=manifest["steps"]), run_cfg=Loihi2SimCfg(select_tag=MODES[args.mode]))
            for i in component:
                pops[i].collected = {"spikes": pops[i].spikes.get(), "probed": pops[i].probed.get(), "saturated": pops[i].saturated.get()}
            root.stop()
    run_s = time.perf_counter() - run_start
    _write(args.out, manifest, artifact, pops, {"import_s": import_s, "run_s": run_s, "total_s": time.perf_counter() - started})


def _population(artifact, index, fixed, process):
    manifest = artifact.manifest
    pop = manifest["populations"][index]
    key = pop["key"]
    fmt = Formats(**manifest["formats"])
    probe_rows = [(probe["gate"], probe["cells"]) for probe in manifest["probes"] if probe["population"] == index]
    n_probed = sum(len(cells) for _, cells in probe_rows)
    n, n_receptors = pop["n"], len(pop["receptors"])
    if fixed:
        constants = artifact.population_constants(index)
        state = artifact.initial_state(index)
        schedule = artifact.current_schedule(index)
        initial = {name: state[name].astype(np.int32) for name in ("v", "gates", "syn")}
    else:
        dt = manifest["dt"]
        constants = {
            "gbar": [c["g_us"] * dt / pop["capacitance_nf"] for c in pop["channels"]],
            "e_rev": [c["e_rev_mv"] for c in pop["channels"]],
            "channel_gates": [c["gates"] for c in pop["channels"]],
            "channel_powers": [c["powers"] for c in pop["channels"]],
            "inf": artifact.arrays[f"{key}_inf_float"], "decay": artifact.arrays[f"{key}_decay_float"],
            "table_v": fmt.table_voltages(),
            "syn_e": np.array([r["e_rev_mv"] for r in pop["receptors"]]),
            "syn_decay": np.array([np.exp(-dt / r["tau_ms"]) for r in pop["receptors"]]),
            "threshold": pop["threshold_mv"],
        }
        schedule = (artifact.arrays[f"{key}_current_starts"], artifact.arrays[f"{key}_current_values_float"])
        initial = {"v": artifact.arrays[f"{key}_v0_float"], "gates": artifact.arrays[f"{key}_gates0_float"],
                   "syn": artifact.arrays[f"{key}_syn0_float"]}
    return process(n=n, n_receptors=n_receptors, steps=manifest["steps"], n_probed=n_probed, constants=constants,
                   schedule=schedule, fmt=fmt, substeps=manifest["substeps"], probe_rows=probe_rows, **initial)


def _components(n, projections):
    """Groups of populations connected by projections (Lava runs the processes connected to the one run)."""
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for proj in projections:
        parent[root(proj["pre"])] = root(proj["post"])
    groups = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _write(out, manifest, artifact, pops, timings):
    os.makedirs(out, exist_ok=True)
    arrays, spike_counts = {}, []
    saturated = np.zeros(len(SATURATED), dtype=np.int64)
    probe_columns = {}
    for i, proc in enumerate(pops):
        steps, cells = np.nonzero(proc.collected["spikes"])
        arrays[f"spike_steps_{i}"], arrays[f"spike_cells_{i}"] = steps.astype(np.int64), cells.astype(np.int64)
        spike_counts.append(np.bincount(cells, minlength=manifest["populations"][i]["n"]))
        saturated += proc.collected["saturated"].astype(np.int64)
        probe_columns[i] = 0
    for p, probe in enumerate(manifest["probes"]):
        i = probe["population"]
        width = len(probe["cells"])
        arrays[f"probe_{p}"] = pops[i].collected["probed"][:, probe_columns[i]:probe_columns[i] + width]
        probe_columns[i] += width
    np.savez(os.path.join(out, "result.npz"), **arrays)
    mantissas = [artifact.arrays[f"{proj['key']}_mantissa"] for proj in manifest["projections"]]
    summary = {"counts": activity_counts(manifest, spike_counts, mantissas),
               "saturated": dict(zip(SATURATED, saturated.tolist())), "timings": timings}
    with open(os.path.join(out, "result.json"), "w") as handle:
        json.dump(summary, handle, indent=1)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        # A failed Lava run leaves its runtime's workers alive, and they would keep this process from exiting.
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
