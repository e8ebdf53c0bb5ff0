"""Deploy a project to a chip: quantize, run float and fixed point (NumPy reference and Lava), map, estimate power.

``deploy(project, chip="loihi2", ...)`` is what ``brainfuse deploy`` and the workbench's Deploy pane call.
It returns a ``Deployment``: the core ``mapping``, the ``power`` estimate, the float and chip runs
(``float_result``, ``chip_result``: spikes per population and probed traces), their ``agreement``, and
``lava_error`` — a Lava crash, timeout or missing environment is recorded there, never raised, so a caller
keeps working; a model the chip cannot run raises ModelError naming the fix. ``progress(stage, fraction)``
is called as each of the stages (``STAGES``; "Lava run" only with ``use_lava``) starts, ``fraction`` being the
share of the whole deployment done by then, and finally as ("done", 1.0). The float run is the project's model
in float64 at the project's dt, whatever its own dtype.

Agreement: spike times are compared cell by cell (pairwise when the float and chip runs have as many
spikes, else each chip spike against the nearest float spike); ``spike_time_median_error_steps`` is the
median of |t_chip − t_float| in chip steps, ``firing_rate_error_percent`` the difference of the total spike
counts relative to the float run's; ``bit_exact`` whether Lava's fixed-point run equals the NumPy reference
bit for bit (None without a Lava run).

``column_stats`` and ``column_estimate`` give the mapping and power of the Potjans–Diesmann column at the
size of the BrainFuse paper's deployment (about 38,000 HH neurons and 100 M synapses) from connection
statistics; ``chip_column_project`` is a small version of that column the chip runs end to end.
"""

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from ..networks import potjans_diesmann as pd
from ..project import Project, load_project
from ..recording import Probe
from ..simulation import Simulation
from .lava_backend import LavaBackendError, run_lava
from .mapping import NetworkStats, map_network
from .power import PAPER_WATTS, PARTS, activity_from_rates, estimate_power
from .profiles import get_profile
from .quantize import quantize
from .reference import simulate

STAGES = ("quantize", "float run", "chip reference run", "Lava run", "mapping", "power")
_STAGE_SHARE = {"quantize": 0.05, "float run": 0.25, "chip reference run": 0.3, "Lava run": 0.3, "mapping": 0.05, "power": 0.05}


class RunTraces:
    """One run in common units: ``spikes[population]`` (SpikeRecord, ms), ``traces[name]`` ((cells, samples) mV or
    gate fraction) sampled at ``times[name]`` (ms), the ``backend`` and its wall time ``seconds``."""

    def __init__(self, backend, spikes, traces, times, seconds):
        self.backend, self.spikes, self.traces, self.times, self.seconds = backend, spikes, traces, times, seconds

    def to_dict(self):
        return {"backend": self.backend, "seconds": self.seconds,
                "spikes": {name: {"count": int(len(record)), "cells": int(record.n_cells),
                                  "mean_rate_hz": float(len(record) / (record.n_cells * record.duration * 1e-3))}
                           for name, record in self.spikes.items()},
                "traces": {name: {"cells": int(trace.shape[0]), "samples": int(trace.shape[1])} for name, trace in self.traces.items()}}


class Deployment:
    """What ``deploy`` returns (see the module docstring)."""

    def __init__(self, project_name, profile, settings, artifact, mapping, power, float_result, chip_result, agreement,
                 lava_error, overflow, timings, notes):
        self.project_name, self.profile, self.settings, self.artifact = project_name, profile, settings, artifact
        self.mapping, self.power = mapping, power
        self.float_result, self.chip_result, self.agreement = float_result, chip_result, agreement
        self.lava_error, self.overflow, self.timings, self.notes = lava_error, overflow, timings, notes

    def to_dict(self):
        return {"project": self.project_name, "chip": self.profile.name, "settings": self.settings,
                "mapping": self.mapping.to_dict(), "power": self.power.to_dict(),
                "float_result": self.float_result.to_dict(), "chip_result": self.chip_result.to_dict(),
                "agreement": self.agreement, "lava_error": self.lava_error, "overflow": self.overflow,
                "timings_s": self.timings, "notes": self.notes}

    def summary(self):
        """The command line's report: core map, power, agreement."""
        a = self.agreement
        exact = {True: "bit-exact with the NumPy reference", False: f"DIFFERS from the NumPy reference ({a['bit_exact_detail']})",
                 None: "not run"}[a["bit_exact"]]
        median, rate = a["spike_time_median_error_steps"], a["firing_rate_error_percent"]
        median = "n/a" if median is None else f"{median:.2f} chip steps"
        rate = "n/a" if rate is None else f"{rate:.2f} %"
        lines = [self.mapping.summary(), self.power.summary(),
                 f"agreement (chip step {self.settings['chip_dt_ms']:g} ms): spike-time median error {median}, "
                 f"firing-rate error {rate} ({a['float_spikes']} float, {a['chip_spikes']} chip spikes); Lava fixed point: {exact}"]
        saturated = {name: entry["saturated"] for name, entry in self.overflow.items() if entry["saturated"]}
        if saturated:
            lines.append(f"saturations: {saturated}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def save(self, out_dir):
        """Write ``deployment.json``, ``core_map.png``, ``power.png``, ``traces.png``, ``rasters.png`` and the
        deployment artifact (``artifact/``) into ``out_dir``; returns the paths written."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "deployment.json").write_text(json.dumps(_jsonable(self.to_dict()), indent=1))
        self.artifact.save(out / "artifact")
        return [out / "deployment.json", out / "artifact", _plot_core_map(self, out / "core_map.png"),
                _plot_power(self, out / "power.png"), _plot_traces(self, out / "traces.png"), _plot_rasters(self, out / "rasters.png")]


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


def deploy(project, chip="loihi2", out_dir=None, weight_bits=8, substeps=4, duration=None, use_lava=True, timeout=120,
           progress=None):
    """Deploy ``project`` (a Project or the path of a project file) to ``chip`` (see the module docstring).

    The project's run.dt is the substep; a chip step is ``substeps`` of them. ``duration`` (ms) defaults to the
    project's. ``use_lava``: also run the artifact in Lava (fixed point) and compare it bit for bit with the NumPy
    reference; ``timeout`` (s) bounds that run. ``out_dir``: where ``Deployment.save`` writes, if given."""
    report = progress or (lambda stage, fraction: None)
    done = 0.0
    timings = {}

    def stage(name):
        report(name, done)
        started = time.perf_counter()

        def finish():
            nonlocal done
            timings[name] = time.perf_counter() - started
            done += _STAGE_SHARE[name]
        return finish

    if not isinstance(project, Project):
        project = load_project(project)
    name = project.path.stem if project.path is not None else "project"
    profile = get_profile(chip)
    if weight_bits > profile.max_weight_bits:
        raise ModelError(f"{weight_bits}-bit weights exceed {profile.name}'s {profile.max_weight_bits}-bit synapses; "
                         f"deploy with weight_bits ≤ {profile.max_weight_bits}")
    parts = project.build()
    run = parts.run
    duration = float(project.duration if duration is None else duration)
    notes = []
    probes = _chip_probes(parts.network, parts.probes, notes)

    finish = stage("quantize")
    artifact = quantize(parts.network, duration, stimuli=parts.stimuli, probes=probes, dt=run.dt, substeps=substeps,
                        celsius=run.celsius, weight_bits=weight_bits)
    finish()
    manifest = artifact.manifest
    chip_dt = manifest["chip_dt"]
    for proj in manifest["projections"]:
        if any(delay > chip_dt + 1e-9 for delay in proj["float_delay_ms"]):
            notes.append(f"projection {proj['name']}: its delay ({', '.join(f'{d:g}' for d in proj['float_delay_ms'])} ms) is "
                         f"longer than a chip step; the chip delivers every spike at the next chip step ({chip_dt:g} ms)")
    chip_duration = manifest["steps"] * chip_dt

    finish = stage("float run")
    started = time.perf_counter()
    float_run = Simulation(parts.network, parts.stimuli, probes, dt=run.dt, celsius=run.celsius, dtype=torch.float64).run(chip_duration)
    float_result = RunTraces("brainfuse float64", float_run.spikes,
                             {p.name: float_run.traces[p.name][0].detach().numpy() for p in probes},
                             {p.name: float_run.times[p.name].numpy() for p in probes}, time.perf_counter() - started)
    finish()

    finish = stage("chip reference run")
    started = time.perf_counter()
    reference = simulate(artifact)
    chip_result = RunTraces("numpy fixed-point reference", reference.spikes, reference.traces,
                            {p["name"]: reference.times for p in manifest["probes"]}, time.perf_counter() - started)
    finish()

    lava_error, bit_exact, detail = None, None, None
    if use_lava:
        finish = stage("Lava run")
        try:
            lava = run_lava(artifact, mode="fixed", timeout=timeout)
            bit_exact, detail = lava.same_bits(reference)
            timings["Lava run (inside the Lava process)"] = lava.timings["total_s"]
        except LavaBackendError as err:
            lava_error = str(err)
        finish()
    else:
        done += _STAGE_SHARE["Lava run"]

    finish = stage("mapping")
    mapping = map_network(NetworkStats.from_artifact(artifact), profile)
    finish()

    finish = stage("power")
    power = estimate_power(mapping, reference.counts, chip_duration)
    finish()
    report("done", 1.0)

    agreement = compare_spikes(float_result.spikes, chip_result.spikes, chip_dt)
    agreement.update({"bit_exact": bit_exact, "bit_exact_detail": detail})
    settings = {"weight_bits": weight_bits, "substeps": substeps, "dt_ms": run.dt, "chip_dt_ms": chip_dt,
                "duration_ms": chip_duration, "steps": manifest["steps"], "celsius": run.celsius, "use_lava": use_lava,
                "formats": manifest["format_notes"]}
    deployment = Deployment(name, profile, settings, artifact, mapping, power, float_result, chip_result, agreement,
                            lava_error, reference.overflow_report(), timings, notes)
    if out_dir is not None:
        deployment.save(out_dir)
    return deployment


def _chip_probes(network, probes, notes):
    """The project's recordings the chip can make (V or a gate of a point cell); the others are noted and left out."""
    kept = []
    for probe in probes:
        pop = network.populations[probe.population]
        gates = {f"{channel.name}.{gate.name}" for channel in pop.cell.channels.values() for gate in channel.gates}
        if probe.variable == "v" or probe.variable in gates:
            kept.append(Probe(probe.population, probe.variable, cells=probe.cells, name=probe.name))
        else:
            notes.append(f"recording {probe.name} left out: the chip records V and gates only")
    if not kept:
        first = next(iter(network.populations))
        kept.append(Probe(first, "v", cells=[0]))
    return kept


def compare_spikes(float_spikes, chip_spikes, chip_dt):
    """Spike-time and firing-rate agreement of two runs ({population: SpikeRecord}), overall and per population."""
    per_population, errors = {}, []
    total_float = total_chip = 0
    for name, float_record in float_spikes.items():
        chip_record = chip_spikes[name]
        pop_errors = []
        for cell in range(float_record.n_cells):
            t_float, t_chip = np.sort(float_record.times(cell)), np.sort(chip_record.times(cell))
            if len(t_float) == len(t_chip):
                pop_errors.append(np.abs(t_chip - t_float))
            elif len(t_float) and len(t_chip):
                index = np.clip(np.searchsorted(t_float, t_chip), 1, len(t_float) - 1) if len(t_float) > 1 else np.zeros(len(t_chip), int)
                nearest = np.minimum(np.abs(t_chip - t_float[index]), np.abs(t_chip - t_float[np.maximum(index - 1, 0)]))
                pop_errors.append(nearest)
        pop_errors = np.concatenate(pop_errors) if pop_errors else np.zeros(0)
        errors.append(pop_errors)
        n_float, n_chip = len(float_record), len(chip_record)
        total_float += n_float
        total_chip += n_chip
        per_population[name] = {"float_spikes": n_float, "chip_spikes": n_chip,
                                "firing_rate_error_percent": _rate_error(n_float, n_chip),
                                "spike_time_median_error_steps": float(np.median(pop_errors) / chip_dt) if len(pop_errors) else None}
    errors = np.concatenate(errors) if errors else np.zeros(0)
    return {"spike_time_median_error_steps": float(np.median(errors) / chip_dt) if len(errors) else None,
            "spike_time_max_error_steps": float(errors.max() / chip_dt) if len(errors) else None,
            "firing_rate_error_percent": _rate_error(total_float, total_chip),
            "float_spikes": total_float, "chip_spikes": total_chip, "per_population": per_population}


def _rate_error(n_float, n_chip):
    if n_float == 0:
        return 0.0 if n_chip == 0 else None
    return 100.0 * abs(n_chip - n_float) / n_float


PAPER_NEURONS, PAPER_SYNAPSES = 38_000, 100e6


def column_stats(neurons=PAPER_NEURONS, synapses=PAPER_SYNAPSES, dt_ms=0.025, substeps=4, weight_bits=8):
    """NetworkStats of the Potjans–Diesmann column with ``neurons`` HH cells (its scale s = neurons / 77,169) and
    its local in-degrees scaled together so that the column has ``synapses`` synapses (the paper's sizes; the
    van Albada scaling alone would give 74.8 M at s = 0.5). The Poisson background stays one input per cell."""
    scale = neurons / sum(pd.FULL_SIZES)
    stats = NetworkStats.from_project(pd.project(scale, dt=dt_ms), weight_bits=weight_bits, substeps=substeps, dt_ms=dt_ms)
    local = [p for p in stats.projections if not stats.populations[p.pre].source]
    factor = synapses / sum(p.synapses for p in local)
    for proj in local:
        proj.synapses *= factor
    return stats


def column_rates_hz():
    """Mean rates of the column's populations (the full-scale model's, ``potjans_diesmann.FULL_SCALE_RATES_HZ``) and of
    its Poisson inputs (K_ext × 8 Hz per cell)."""
    rates = dict(zip(pd.POPULATIONS, pd.FULL_SCALE_RATES_HZ))
    rates.update({f"{name}_bg": k * pd.BACKGROUND_RATE_HZ for name, k in zip(pd.POPULATIONS, pd.EXTERNAL_IN_DEGREES)})
    return rates


def column_estimate(chip="loihi2", neurons=PAPER_NEURONS, synapses=PAPER_SYNAPSES, duration_ms=1000.0):
    """(Mapping, PowerEstimate) of the paper-sized column on ``chip`` at the column's mean rates, and a dict that
    puts the typical, low and high watts next to the paper's 1.98 W."""
    stats = column_stats(neurons, synapses)
    mapping = map_network(stats, chip)
    power = estimate_power(mapping, activity_from_rates(stats, column_rates_hz(), duration_ms), duration_ms)
    comparison = {"paper_watts": PAPER_WATTS, "estimate_watts": power.watts, "ratio_typical": power.typical / PAPER_WATTS,
                  "cores": mapping.cores, "chips": mapping.chips, "neurons": stats.neurons, "synapses": stats.synapses,
                  "dominant_part": max(PARTS, key=lambda part: power.breakdown["typical"][part])}
    return mapping, power, comparison


def chip_column_project(scale=0.01, duration=100.0, dt=0.025, substeps=4):
    """The Potjans–Diesmann column at ``scale`` in a form the chip runs: its Poisson background replaced by the
    mean current it carries at the reference potential (rate × weight × τ_syn × (E_exc − V_REF), added to each
    population's DC), and every delay ``substeps // 2`` substeps: the chip delivers a spike at the start of the next
    chip step, 1 to ``substeps`` substeps after the one it was detected in, and the float model's delay is set to the
    middle of that range (measured at 1 %, 200 ms: 550 spikes on the chip, 550 in float with this delay, 482 with a
    whole chip step)."""
    doc = pd.project(scale, duration=duration, dt=dt, dtype="float64")
    populations = doc["circuit"]["populations"]
    sources = {name for name, entry in populations.items() if "poisson" in entry}
    weight = pd.external_weight_us()
    background = {name: k * pd.BACKGROUND_RATE_HZ * 1e-3 * weight * pd.TAU_SYN_MS * (pd.E_EXC_MV - pd.V_REF_MV)
                  for name, k in zip(pd.POPULATIONS, pd.EXTERNAL_IN_DEGREES)}
    for name in sources:
        del populations[name]
    projections = [dict(p, delay=dt * max(1, substeps // 2)) for p in doc["circuit"]["projections"] if p["pre"] not in sources]
    doc["circuit"]["projections"] = projections
    dc = {stim["population"]: stim for stim in doc["stimuli"]}
    for name, amp in background.items():
        if name in dc:
            dc[name]["amp"] = float(f"{dc[name]['amp'] + amp:.6g}")
        else:
            doc["stimuli"].append({"type": "iclamp", "population": name, "amp": float(f"{amp:.6g}"), "name": f"{name}_dc"})
    doc.pop("layout", None)
    doc["description"] = (f"Potjans-Diesmann column at {scale * 100:g} % scale for chip deployment: Poisson background "
                          "replaced by its mean current at -60 mV, delays of half a chip step (the chip's mean). Generated by "
                          f"brainfuse_core.chip.deploy.chip_column_project(scale={scale:g}).")
    return doc


def _figure(width, height):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height))


def _save(plt, figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_core_map(deployment, path):
    """Every core as a cell of its chip's mesh, coloured by population, darker the fuller its most-used limit."""
    mapping = deployment.mapping
    rows, columns = mapping.profile.mesh
    chips = max(1, mapping.chips)
    across = math.ceil(math.sqrt(chips * rows / columns))
    down = math.ceil(chips / across)
    image = np.ones((down * rows, across * columns, 3))
    names = list(mapping.per_population)
    plt, figure = _figure(8, 4.5)
    colours = plt.get_cmap("tab10")
    base = {name: np.array(colours(k % 10)[:3]) for k, name in enumerate(names)}
    for core in mapping.per_core:
        chip, slot = divmod(core["core"], mapping.profile.cores_per_chip)
        r = (chip // across) * rows + slot // columns
        c = (chip % across) * columns + slot % columns
        fullness = min(1.0, max(core["utilisation"].values()))
        image[r, c] = 1.0 - (1.0 - base[core["population"]]) * (0.35 + 0.65 * fullness)
    axes = figure.add_subplot(1, 1, 1)
    axes.imshow(image, interpolation="nearest", aspect="equal")
    for k in range(1, across):
        axes.axvline(k * columns - 0.5, color="black", linewidth=0.8)
    for k in range(1, down):
        axes.axhline(k * rows - 0.5, color="black", linewidth=0.8)
    axes.set_xticks([])
    axes.set_yticks([])
    for k, name in enumerate(names):
        entry = mapping.per_population[name]
        axes.plot([], [], "s", color=colours(k % 10), label=f"{name}: {entry['cores']} cores × ≤{entry['neurons_per_core']}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.set_title(f"{mapping.profile.name}: {mapping.cores} cores on {mapping.chips} chip(s) "
                   f"({'fits' if mapping.fits else f'{len(mapping.violations)} violation(s)'}); shade = fullest limit")
    return _save(plt, figure, path)


def _plot_power(deployment, path):
    power = deployment.power
    plt, figure = _figure(7, 3.5)
    axes = figure.add_subplot(1, 1, 1)
    typical = [power.breakdown["typical"][part] for part in PARTS]
    low = [power.breakdown["low"][part] for part in PARTS]
    high = [power.breakdown["high"][part] for part in PARTS]
    y = np.arange(len(PARTS))
    axes.barh(y, typical, color="tab:blue", label="typical")
    axes.errorbar(typical, y, xerr=[np.subtract(typical, low), np.subtract(high, typical)], fmt="none", ecolor="black",
                  capsize=3, label="low–high")
    axes.set_yticks(y, PARTS)
    axes.set_xscale("symlog", linthresh=max(1e-9, min(v for v in low + typical if v > 0) if any(low + typical) else 1e-9))
    axes.set_xlabel("W")
    axes.set_title(f"power on {power.chip}: {power.typical:.3g} W typical ({power.low:.3g}–{power.high:.3g} W), "
                   f"{power.joules_per_inference['typical']:.3g} J per {power.duration_ms:g} ms", fontsize=9)
    axes.legend(fontsize=8)
    return _save(plt, figure, path)


def _plot_traces(deployment, path):
    float_result, chip_result = deployment.float_result, deployment.chip_result
    names = list(chip_result.traces)[:4]
    plt, figure = _figure(8, 2.2 * len(names))
    for k, name in enumerate(names):
        axes = figure.add_subplot(len(names), 1, k + 1)
        axes.plot(float_result.times[name], float_result.traces[name][0], color="black", linewidth=1.0, label="float")
        axes.plot(chip_result.times[name], chip_result.traces[name][0], color="tab:red", linewidth=0.8, linestyle="--",
                  label=f"chip ({deployment.settings['chip_dt_ms']:g} ms steps)")
        axes.set_ylabel(f"{name}\ncell 0", fontsize=8)
        if k == 0:
            axes.legend(fontsize=8, loc="upper right")
    figure.axes[-1].set_xlabel("time (ms)")
    return _save(plt, figure, path)


def _plot_rasters(deployment, path):
    populations = list(deployment.chip_result.spikes)
    plt, figure = _figure(9, 1.2 + 1.6 * len(populations))
    for row, name in enumerate(populations):
        for column, (label, result) in enumerate((("float", deployment.float_result), ("chip", deployment.chip_result))):
            axes = figure.add_subplot(len(populations), 2, 2 * row + column + 1)
            record = result.spikes[name]
            axes.scatter(record.time, record.cell, s=2, color="black" if column == 0 else "tab:red", marker="|")
            axes.set_xlim(0, deployment.settings["duration_ms"])
            axes.set_ylim(-0.5, record.n_cells - 0.5)
            axes.set_ylabel(f"{name} cell", fontsize=8)
            if row == 0:
                axes.set_title(f"{label}: {deployment.agreement[f'{label}_spikes']} spikes", fontsize=9)
    for axes in figure.axes[-2:]:
        axes.set_xlabel("time (ms)")
    return _save(plt, figure, path)
