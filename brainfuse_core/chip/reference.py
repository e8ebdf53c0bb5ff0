"""The bit-accurate NumPy reference of a deployment: integer HH populations and Loihi dense synapses.

``simulate(artifact)`` runs the artifact's populations with ``fixed_point.substep`` and delivers
spikes through dense synapses as Loihi does (Lava's ``Dense``): the input a population receives in
chip step t is the weighted sum of the spikes of step t − 1, added to its synaptic state before
the step's substeps. Returns a ``ChipResult`` whose raw arrays the Lava fixed-point run must
reproduce bit for bit.
"""

import numpy as np
from tqdm import tqdm

from .artifact import current_at
from .fixed_point import SATURATED, Formats, activity_counts, dense_input, loihi_dense, receive, substep
from .result import ChipResult


def simulate(artifact, progress=False):
    """Run ``artifact`` (an ``Artifact``); ``progress`` shows a progress bar over chip steps."""
    manifest = artifact.manifest
    fmt = Formats(**manifest["formats"])
    steps, substeps = manifest["steps"], manifest["substeps"]
    pops = manifest["populations"]
    constants = [artifact.population_constants(i) for i in range(len(pops))]
    states = [artifact.initial_state(i) for i in range(len(pops))]
    schedules = [artifact.current_schedule(i) for i in range(len(pops))]
    dense = [(proj, *loihi_dense(artifact.arrays[f"{proj['key']}_mantissa"], proj["exponent"], proj["bits"], proj["sign_mode"]))
             for proj in manifest["projections"]]
    arrivals = [np.zeros((len(pop["receptors"]), pop["n"]), dtype=np.int64) for pop in pops]
    saturated = {name: 0 for name in SATURATED + ("dense_input",)}
    spike_steps = [[] for _ in pops]
    spike_cells = [[] for _ in pops]
    probes = [np.zeros((steps, len(probe["cells"])), dtype=np.int64) for probe in manifest["probes"]]
    for step in tqdm(range(steps), disable=not progress, desc="chip reference", unit="step"):
        spiked = []
        for i, pop in enumerate(pops):
            receive(states[i], arrivals[i], saturated)
            fired = np.zeros(pop["n"], dtype=bool)
            for k in range(substeps):
                current = current_at(schedules[i], step * substeps + k)
                fired |= substep(states[i], constants[i], fmt, current, saturated)
            spiked.append(fired)
            cells = np.flatnonzero(fired)
            spike_steps[i].append(np.full(len(cells), step))
            spike_cells[i].append(cells)
        for p, probe in enumerate(manifest["probes"]):
            state = states[probe["population"]]
            values = state["v"] if probe["gate"] is None else state["gates"][probe["gate"]]
            probes[p][step] = values[probe["cells"]]
        arrivals = [np.zeros_like(a) for a in arrivals]
        for proj, weights, weight_exp in dense:
            block = dense_input(weights, weight_exp, spiked[proj["pre"]])
            arrivals[proj["post"]][proj["receptor"]] += block
        for a in arrivals:
            # Lava sums a population's synaptic inputs in int32.
            saturated["dense_input"] += int(np.count_nonzero((a < -(2 ** 31)) | (a > 2 ** 31 - 1)))
    spikes = [(np.concatenate(s).astype(np.int64), np.concatenate(c).astype(np.int64)) for s, c in zip(spike_steps, spike_cells)]
    counts = activity_counts(manifest, [np.bincount(c, minlength=pop["n"]) for (_, c), pop in zip(spikes, pops)],
                             [artifact.arrays[f"{proj['key']}_mantissa"] for proj in manifest["projections"]])
    return ChipResult(manifest, spikes, probes, counts, saturated, backend="numpy-reference")
