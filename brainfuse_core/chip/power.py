"""Power and energy of a mapped network from its activity, as a low–typical–high range.

The chip is taken to run in real time, one chip step per chip_dt of wall time, so an inference (one run
of the deployed duration) lasts its simulated time. Over it:

* static: every active core (one that holds neurons) draws ``static_core_w``;
* neuron updates: every cell runs ``substeps`` HH updates per chip step, each ``hh_cost_factor``
  LIF-compartment updates (``mapping.neuron_cost``) of ``neuron_update_pj``;
* synaptic operations: each spike times its non-zero synapses (the run's ``synaptic_ops``), ``synaptic_op_pj``;
* spike messages: each spike goes to every core holding one of its targets (``Mapping.destination_cores``),
  ``spike_pj`` per message, plus ``hop_pj`` per mesh hop — the mean Manhattan distance between two random
  cores of the occupied part of a chip's mesh — plus ``chip_crossing_pj`` for the share of messages that
  leave their chip (1 − 1/chips, targets spread evenly over the chips).

Every constant comes from the chip profile with its source (``PowerEstimate.sources``). The low estimate
takes every constant's low value, the high one every high value, so low ≤ typical ≤ high always.
"""

import math

CASES = ("low", "typical", "high")
PARTS = ("static", "neuron_updates", "synaptic_ops", "spike_messages", "mesh_hops", "chip_crossings")
PAPER_WATTS = 1.98  # the BrainFuse paper (arXiv 2601.21407): ~38,000 HH neurons, ~100 M synapses on one chip


class PowerEstimate:
    """``watts`` and ``joules_per_inference`` per case (low, typical, high), ``breakdown[case][part]`` in W,
    ``events``: the counts per second behind them, ``sources``: where each constant comes from."""

    def __init__(self, chip, watts, joules, breakdown, events, sources, duration_ms):
        self.chip, self.watts, self.joules_per_inference = chip, watts, joules
        self.breakdown, self.events, self.sources, self.duration_ms = breakdown, events, sources, duration_ms

    @property
    def low(self):
        return self.watts["low"]

    @property
    def typical(self):
        return self.watts["typical"]

    @property
    def high(self):
        return self.watts["high"]

    def summary(self):
        lines = [f"power on {self.chip}: {_w(self.typical)} (range {_w(self.low)} – {_w(self.high)}); "
                 f"{_j(self.joules_per_inference['typical'])} per inference of {self.duration_ms:g} ms "
                 f"(range {_j(self.joules_per_inference['low'])} – {_j(self.joules_per_inference['high'])})"]
        total = self.typical or 1.0
        for part in PARTS:
            lines.append(f"  {part:15s} {_w(self.breakdown['typical'][part]):>10s}  {100 * self.breakdown['typical'][part] / total:5.1f} %")
        return "\n".join(lines)

    def to_dict(self):
        return {"chip": self.chip, "watts": self.watts, "joules_per_inference": self.joules_per_inference,
                "breakdown": self.breakdown, "events_per_second": self.events, "sources": self.sources,
                "duration_ms": self.duration_ms, "paper_watts": PAPER_WATTS}


def _w(watts):
    return f"{watts * 1e3:.3g} mW" if watts < 1 else f"{watts:.3g} W"


def _j(joules):
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9)):
        if joules >= scale:
            return f"{joules / scale:.3g} {unit}"
    return f"{joules:.3g} J"


def mean_mesh_hops(cores, mesh):
    """Mean Manhattan distance between two cores drawn at random from the ``cores`` first cores of a chip,
    laid out row by row on a (rows, columns) mesh: (r² − 1)/(3r) + (c² − 1)/(3c) for an r × c block."""
    rows, columns = mesh
    used = max(1, min(cores, rows * columns))
    c = min(columns, used)
    r = math.ceil(used / c)
    return (r * r - 1) / (3 * r) + (c * c - 1) / (3 * c)


def estimate_power(mapping, activity, duration_ms):
    """A PowerEstimate of ``mapping`` (a Mapping) running ``activity`` over ``duration_ms`` of chip time.

    ``activity``: ``spikes_per_population`` (dict: spikes of each population over the run, sources included for
    their messages), ``synaptic_ops`` (spikes × their synapses); e.g. a ChipResult's ``counts``."""
    profile, stats = mapping.profile, mapping.stats
    seconds = duration_ms * 1e-3
    per_population = mapping.per_population
    substeps_per_s = stats.substeps * 1e3 / stats.chip_dt_ms
    lif_updates = sum(entry["n"] * substeps_per_s * entry["hh_cost_factor"] for entry in per_population.values())
    spikes = activity.get("spikes_per_population", {})
    messages = sum(count / seconds * mapping.destination_cores(name) for name, count in spikes.items() if name in stats.populations)
    chips = max(1, mapping.chips)
    cores_on_chip = min(mapping.cores, profile.cores_per_chip)
    hops = mean_mesh_hops(cores_on_chip, profile.mesh)
    crossing = 1.0 - 1.0 / chips
    events = {"active_cores": mapping.cores, "lif_equivalent_updates": lif_updates,
              "synaptic_ops": activity.get("synaptic_ops", 0) / seconds, "spike_messages": messages,
              "mesh_hops": messages * hops, "chip_crossings": messages * crossing,
              "spikes": sum(spikes.values()) / seconds, "mean_hops_per_message": hops}
    watts, joules, breakdown = {}, {}, {}
    for i, case in enumerate(CASES):
        parts = {
            "static": mapping.cores * profile.static_core_w[i],
            "neuron_updates": lif_updates * profile.neuron_update_pj[i] * 1e-12,
            "synaptic_ops": events["synaptic_ops"] * profile.synaptic_op_pj[i] * 1e-12,
            "spike_messages": messages * profile.spike_pj[i] * 1e-12,
            "mesh_hops": events["mesh_hops"] * profile.hop_pj[i] * 1e-12,
            "chip_crossings": events["chip_crossings"] * profile.chip_crossing_pj[i] * 1e-12,
        }
        breakdown[case] = parts
        watts[case] = float(sum(parts.values()))
        joules[case] = watts[case] * seconds
    keys = ("static_core_w", "neuron_update_pj", "synaptic_op_pj", "spike_pj", "hop_pj", "chip_crossing_pj")
    sources = {key: {"values": list(getattr(profile, key)), "source": profile.source(key), "estimate": key in profile.estimates}
               for key in keys}
    sources["hh_cost_factor"] = {"values": sorted({round(e["hh_cost_factor"], 3) for e in per_population.values()}),
                                 "source": "counted from the fixed-point substep (chip/mapping.py, neuron_cost)", "estimate": True}
    return PowerEstimate(profile.name, watts, joules, breakdown, events, sources, duration_ms)


def activity_from_rates(stats, rates_hz, duration_ms):
    """Expected activity of ``stats`` (NetworkStats) when population p fires at ``rates_hz[p]`` Hz: spikes per
    population and synaptic operations (each spike times its cell's mean out-degree) over ``duration_ms``."""
    seconds = duration_ms * 1e-3
    spikes = {name: stats.populations[name].n * float(rate) * seconds for name, rate in rates_hz.items()}
    synaptic = sum(spikes[proj.pre] / stats.populations[proj.pre].n * proj.synapses
                   for proj in stats.projections if proj.pre in spikes)
    return {"spikes_per_population": spikes, "synaptic_ops": float(synaptic)}

