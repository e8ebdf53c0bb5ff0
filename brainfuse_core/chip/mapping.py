"""Mapping a network onto a chip's cores: how many neurons of each population one core can hold.

The mapper works from connection statistics (population sizes, mean in-degrees per projection), never
from connection matrices, so a column of 38,000 neurons and 100 M synapses maps in milliseconds.
``NetworkStats.from_artifact`` reads them from a quantized deployment (exact synapse counts);
``NetworkStats.from_project`` from a project document's connection rules without drawing connections.

The HH cost model (time multiplexing, not compartments). On a chip with programmable neurons (Loihi 2)
an HH cell is one neuron program: its state is one 32-bit word each for V, every gate, every synaptic
receptor and the input accumulator; its population's gate tables (x∞ and exp(−dt/τ) over V, sized by
the artifact's Q-formats) are stored once on every core that hosts the population; each chip step runs
the program ``substeps`` times. One substep costs ``hh_cost_factor`` LIF-compartment updates: the
arithmetic of ``fixed_point.substep`` counted (per gate: table position, two interpolations, the
exponential-Euler update, 11 operations; per channel: its open fraction's multiplications and the
g·(E − V) term, 5 more; per receptor: drive and decay, 5; the implicit step's division, taken as 8
operations of microcode, and the saturation and threshold test, 3) over the 7 of Loihi's CUBA LIF
update (two decays, two additions, input, threshold test, reset). On a chip with fixed LIF compartments
(Loihi) HH cannot run; its size is estimated as compartments of state, one per compartment's share of the
neuron memory (24 bytes on Loihi), and no tables are placed.

Per core the mapper checks (``LIMITS``): neuron slots; memory (one shared pool: tables, neuron state,
synapses at weight bits + the bits that index the target neuron on the core, 4 bytes per input axon and
per output route; or separate synapse memory (synapses) and neuron memory (tables and state)); fan-in, the expected number of distinct
presynaptic neurons N·(1 − (1 − K/N)^m) for m neurons of in-degree K from a population of N; fan-out,
the expected output routes, m times the distinct destination cores of one neuron; and, for real-time
operation, the update time of m neurons × substeps × cost factor within one chip step. Each population
gets the largest m that keeps every limit, found by bisection (the loads grow with m) and repeated until
no population's fan-out changes (destinations depend on the other populations' m). Cores hold one
population each and fill chips in order. A population whose single neuron breaks a limit is still
mapped one per core and listed under ``violations``.
"""

import dataclasses
import math

import numpy as np

from ..errors import ModelError
from .fixed_point import Formats
from .profiles import get_profile

LIMITS = ("neurons", "memory", "synapse_memory", "neuron_memory", "fan_in", "fan_out", "time")
WORD_BYTES = 4
AXON_BYTES = 4
ROUTE_BYTES = 4
LIF_OPS = 7


@dataclasses.dataclass
class PopulationStats:
    """``n`` cells; ``source``: a spike source fed from off the chip (no neurons on cores); ``channel_powers``:
    per channel, the powers of its gates; ``receptors``: distinct synaptic receptors; ``compartments`` per cell."""

    name: str
    n: int
    source: bool = False
    channel_powers: tuple = ()
    receptors: int = 0
    compartments: int = 1

    @property
    def gates(self):
        return sum(len(powers) for powers in self.channel_powers)


@dataclasses.dataclass
class ProjectionStats:
    """``synapses`` from ``pre`` onto ``post`` (a count, or its expectation for random rules)."""

    pre: str
    post: str
    synapses: float


@dataclasses.dataclass
class NetworkStats:
    """Populations and projections, the fixed-point ``formats``, weight bits and the chip step (``dt_ms`` the
    substep, ``substeps`` per chip step)."""

    populations: dict
    projections: list
    formats: Formats = dataclasses.field(default_factory=Formats)
    weight_bits: int = 8
    dt_ms: float = 0.025
    substeps: int = 4

    @property
    def chip_dt_ms(self):
        return self.dt_ms * self.substeps

    @property
    def neurons(self):
        return sum(pop.n for pop in self.populations.values() if not pop.source)

    @property
    def synapses(self):
        return sum(proj.synapses for proj in self.projections)

    def in_degree(self, pre, post):
        """Mean in-degree of ``post`` cells from ``pre`` (all projections between them)."""
        return sum(p.synapses for p in self.projections if p.pre == pre and p.post == post) / self.populations[post].n

    @classmethod
    def from_artifact(cls, artifact):
        """Exact statistics of a quantized deployment (non-zero weight mantissas)."""
        manifest = artifact.manifest
        pops = manifest["populations"]
        populations = {pop["name"]: PopulationStats(pop["name"], pop["n"], channel_powers=tuple(tuple(c["powers"]) for c in pop["channels"]),
                                                    receptors=len(pop["receptors"]))
                       for pop in pops}
        projections = [ProjectionStats(pops[proj["pre"]]["name"], pops[proj["post"]]["name"],
                                       float(np.count_nonzero(artifact.arrays[f"{proj['key']}_mantissa"])))
                       for proj in manifest["projections"]]
        return cls(populations, projections, Formats(**manifest["formats"]), manifest["weight_bits"], manifest["dt"], manifest["substeps"])

    @classmethod
    def from_project(cls, project, weight_bits=8, substeps=4, dt_ms=None, formats=None):
        """Statistics of a project (a Project, or its document as a dict) from its connection rules: expected
        synapse counts, no connections drawn. ``dt_ms`` (the substep) defaults to the project's run.dt."""
        from ..project import Project
        from ..project.build import build_cell, build_channels

        data = project.to_dict() if isinstance(project, Project) else project
        channels = build_channels(data.get("channels", {}))
        cells = {}
        populations = {}
        synapse_kinds = {}
        for proj in data["circuit"].get("projections", []):
            synapse_kinds.setdefault(proj["post"], set()).add(tuple(sorted(proj["synapse"].items())))
        for name, entry in data["circuit"]["populations"].items():
            if "cell" not in entry:
                n = entry["poisson"]["n"] if "poisson" in entry else len(entry["spike_times"])
                populations[name] = PopulationStats(name, int(n), source=True)
                continue
            if entry["cell"] not in cells:
                cells[entry["cell"]] = build_cell(entry["cell"], data["cells"][entry["cell"]], channels)
            cell = cells[entry["cell"]]
            powers = tuple(tuple(gate.power for gate in channel.gates) for channel in cell.channels.values())
            populations[name] = PopulationStats(name, int(entry["n"]), channel_powers=powers,
                                                receptors=len(synapse_kinds.get(name, ())), compartments=int(cell.layout.size))
        projections = []
        for k, proj in enumerate(data["circuit"].get("projections", [])):
            n_pre, n_post = populations[proj["pre"]].n, populations[proj["post"]].n
            projections.append(ProjectionStats(proj["pre"], proj["post"],
                                               _expected_synapses(proj.get("connect"), n_pre, n_post, proj["pre"] == proj["post"],
                                                                  f"circuit.projections[{k}]")))
        dt = float(data["run"]["dt"]) if dt_ms is None else float(dt_ms)
        return cls(populations, projections, formats or Formats(), int(weight_bits), dt, int(substeps))


def _expected_synapses(rule, n_pre, n_post, same, where):
    rule = rule or {"rule": "fixed_probability", "p": 1.0, "allow_self": True}
    kind = rule.get("rule")
    no_self = same and not rule.get("allow_self", kind == "all_to_all")
    if kind == "fixed_indegree":
        return float(rule["k"]) * n_post
    if kind == "fixed_probability":
        return float(rule["p"]) * (n_pre * n_post - (n_post if no_self else 0))
    if kind == "all_to_all":
        return float(n_pre * n_post - (n_post if no_self else 0))
    if kind == "one_to_one":
        return float(n_post)
    if kind == "explicit":
        return float(len(rule["pairs"]))
    raise ModelError(f"{where}.connect.rule: the mapper does not know rule {kind!r}")


@dataclasses.dataclass
class NeuronCost:
    """What one HH cell of a population costs a core (see the module docstring)."""

    state_bytes: int
    table_bytes: int
    ops_per_substep: int
    hh_cost_factor: float
    slots: int
    memory_bytes: int


def neuron_cost(pop, formats, compartment_bytes=None):
    """The cost of one cell of ``pop``; ``compartment_bytes``: the state one fixed LIF compartment holds, for chips
    without programmable neurons (the cell then takes as many compartments as its state needs, and no tables)."""
    gates = pop.gates
    words = (2 + gates + pop.receptors) * pop.compartments
    inf_bytes = math.ceil((formats.gate_frac + 1) / 8)
    decay_bytes = math.ceil((formats.decay_frac + 1) / 8)
    table_bytes = gates * (2 ** formats.table_bits + 1) * (inf_bytes + decay_bytes)
    ops = (11 * gates + sum(sum(powers) + 5 for powers in pop.channel_powers) + 5 * pop.receptors + 8 + 3) * pop.compartments
    if compartment_bytes is None:
        return NeuronCost(words * WORD_BYTES, table_bytes, ops, max(1.0, ops / LIF_OPS), 1, words * WORD_BYTES)
    slots = math.ceil(words * WORD_BYTES / compartment_bytes)
    return NeuronCost(words * WORD_BYTES, 0, ops, max(1.0, ops / LIF_OPS), slots, slots * compartment_bytes)


class Mapping:
    """The result of ``map_network``. ``per_population[name]``: neurons per core, cores, the binding limit and the
    load of a full core; ``per_core``: one dict per core (chip, population, neurons, first cell, utilisation of
    each limit as a fraction); ``violations``: limits broken even at one neuron per core; ``notes``."""

    def __init__(self, profile, stats, per_population, per_core, violations, notes, real_time):
        self.profile, self.stats = profile, stats
        self.per_population, self.per_core = per_population, per_core
        self.violations, self.notes, self.real_time = violations, notes, real_time

    @property
    def cores(self):
        return len(self.per_core)

    @property
    def chips(self):
        return math.ceil(self.cores / self.profile.cores_per_chip) if self.cores else 0

    @property
    def boards(self):
        return math.ceil(self.chips / self.profile.chips_per_board) if self.chips else 0

    @property
    def fits(self):
        return not self.violations

    def destination_cores(self, pre):
        """Expected distinct cores one spike of a ``pre`` cell is sent to (one message each)."""
        return sum(_destinations(self.stats, pre, post, self.per_population[post]["neurons_per_core"])
                   for post in self.per_population if self.stats.in_degree(pre, post) > 0)

    def mean_utilisation(self):
        if not self.per_core:
            return {}
        return {limit: float(np.mean([core["utilisation"][limit] for core in self.per_core])) for limit in self.per_core[0]["utilisation"]}

    def summary(self):
        """A few lines for the command line."""
        lines = [f"chip {self.profile.name}: {self.stats.neurons:,} neurons, {self.stats.synapses:,.0f} synapses → "
                 f"{self.cores:,} cores on {self.chips:,} chip(s) ({self.boards:,} board(s) of {self.profile.chips_per_board})"]
        for name, entry in self.per_population.items():
            lines.append(f"  {name}: {entry['n']:,} cells, {entry['neurons_per_core']} per core on {entry['cores']:,} cores "
                         f"(bound by {entry['binding']}; HH cost {entry['hh_cost_factor']:.1f} LIF updates per substep)")
        mean = self.mean_utilisation()
        if mean:
            lines.append("  mean utilisation: " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in mean.items()))
        for violation in self.violations:
            lines.append(f"  VIOLATION {violation['population']}: {violation['message']}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self):
        return {"chip": self.profile.name, "cores": self.cores, "chips": self.chips, "boards": self.boards, "fits": self.fits,
                "neurons": self.stats.neurons, "synapses": self.stats.synapses, "real_time": self.real_time,
                "limits": self.limits(), "per_population": self.per_population, "per_core": self.per_core,
                "mean_utilisation": self.mean_utilisation(), "violations": self.violations, "notes": self.notes}

    def limits(self):
        return _limits(self.profile, self.stats, self.real_time)


def _limits(profile, stats, real_time):
    limits = {"neurons": profile.neurons_per_core, "fan_in": profile.fan_in, "fan_out": profile.fan_out}
    if profile.core_memory_bytes:
        limits["memory"] = profile.core_memory_bytes
    else:
        limits["synapse_memory"] = profile.synapse_memory_bytes
        limits["neuron_memory"] = profile.neuron_memory_bytes
    if real_time:
        limits["time"] = stats.chip_dt_ms * 1e6  # ns per chip step
    return limits


def _fraction_reached(p, m):
    """1 − (1 − p)^m: the chance that at least one of m cells draws a given presynaptic cell."""
    p = min(max(p, 0.0), 1.0)
    return 1.0 if p == 1.0 else -math.expm1(m * math.log1p(-p))


def _destinations(stats, pre, post, m_post):
    n_pre, n_post = stats.populations[pre].n, stats.populations[post].n
    k = stats.in_degree(pre, post)
    return math.ceil(n_post / m_post) * _fraction_reached(k / n_pre, m_post)


def _load(stats, profile, name, m, cost, sizes, real_time):
    """What a core holding ``m`` cells of population ``name`` needs, per limit."""
    inputs = [(pre, stats.in_degree(pre, name)) for pre in stats.populations]
    inputs = [(pre, k) for pre, k in inputs if k > 0]
    fan_in = sum(stats.populations[pre].n * _fraction_reached(k / stats.populations[pre].n, m) for pre, k in inputs)
    synapses = m * sum(k for _, k in inputs)
    index_bits = math.ceil(math.log2(m)) if m > 1 else 0
    synapse_bytes = synapses * (stats.weight_bits + index_bits) / 8
    routes = 0.0
    if sizes is not None:
        routes = m * sum(_destinations(stats, name, post, sizes[post]) for post in sizes if stats.in_degree(name, post) > 0)
    load = {"neurons": m * cost.slots, "fan_in": fan_in, "fan_out": routes}
    if profile.core_memory_bytes:
        load["memory"] = cost.table_bytes + m * cost.memory_bytes + synapse_bytes + AXON_BYTES * fan_in + ROUTE_BYTES * routes
    else:
        load["synapse_memory"] = synapse_bytes
        load["neuron_memory"] = cost.table_bytes + m * cost.memory_bytes
    if real_time:
        load["time"] = m * stats.substeps * cost.hh_cost_factor * profile.neuron_update_ns[1]
    return load


def _largest(stats, profile, name, cost, sizes, limits, real_time):
    """The largest m whose load keeps every limit (at least 1), and the limit that binds."""
    def fits(m):
        load = _load(stats, profile, name, m, cost, sizes, real_time)
        return all(load[key] <= limits[key] for key in limits)

    high = min(stats.populations[name].n, max(1, profile.neurons_per_core // cost.slots))
    if fits(high):
        return high, "population size" if high == stats.populations[name].n else "neurons"
    low = 1
    if not fits(low):
        return 1, None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    over = _load(stats, profile, name, high, cost, sizes, real_time)
    binding = next(key for key in limits if over[key] > limits[key])
    return low, binding


def map_network(stats, chip="loihi2", real_time=True):
    """Map ``stats`` (a NetworkStats) onto ``chip`` (a profile name, ChipProfile, dict or JSON path); returns a Mapping.
    ``real_time``: every chip step must finish within its own chip_dt of wall time."""
    profile = get_profile(chip)
    notes = []
    if stats.weight_bits > profile.max_weight_bits:
        raise ModelError(f"{stats.weight_bits}-bit weights exceed {profile.name}'s {profile.max_weight_bits}-bit synapses; "
                         f"quantize with weight_bits ≤ {profile.max_weight_bits}")
    compartment_bytes = None
    if not profile.programmable_neurons:
        compartment_bytes = profile.neuron_memory_bytes // profile.neurons_per_core
        notes.append(f"{profile.name} runs fixed LIF compartments only: HH neurons cannot run on it; their size is counted "
                     f"as compartments of state ({compartment_bytes} bytes each) and gate tables are not placed")
    limits = _limits(profile, stats, real_time)
    neurons = [name for name, pop in stats.populations.items() if not pop.source]
    costs = {name: neuron_cost(stats.populations[name], stats.formats, compartment_bytes) for name in neurons}
    sizes = {name: _largest(stats, profile, name, costs[name], None, limits, real_time)[0] for name in neurons}
    binding = {}
    for _ in range(50):
        found = {name: _largest(stats, profile, name, costs[name], sizes, limits, real_time) for name in neurons}
        new = {name: m for name, (m, _) in found.items()}
        binding = {name: b for name, (_, b) in found.items()}
        if new == sizes:
            break
        sizes = new
    per_population, per_core, violations = {}, [], []
    for name in neurons:
        pop, m, cost = stats.populations[name], sizes[name], costs[name]
        load = _load(stats, profile, name, m, cost, sizes, real_time)
        broken = [key for key in limits if load[key] > limits[key]] if binding[name] is None else []
        for key in broken:
            violations.append({"population": name, "limit": key, "need": load[key], "have": limits[key],
                               "message": f"one cell per core needs {load[key]:,.0f} of the core's {limits[key]:,.0f} ({key})"})
        n_cores = math.ceil(pop.n / m)
        per_population[name] = {"n": pop.n, "neurons_per_core": m, "cores": n_cores,
                                "binding": binding[name] or f"{', '.join(broken)} (violated)",
                                "hh_cost_factor": cost.hh_cost_factor, "ops_per_substep": cost.ops_per_substep,
                                "state_bytes": cost.state_bytes, "table_bytes": cost.table_bytes, "slots_per_neuron": cost.slots,
                                "load": load}
        last = pop.n - (n_cores - 1) * m
        last_load = load if last == m else _load(stats, profile, name, last, cost, sizes, real_time)
        for c in range(n_cores):
            core_load = load if c < n_cores - 1 else last_load
            index = len(per_core)
            per_core.append({"core": index, "chip": index // profile.cores_per_chip, "population": name,
                             "neurons": m if c < n_cores - 1 else last, "first_cell": c * m,
                             "utilisation": {key: core_load[key] / limits[key] for key in limits}})
    return Mapping(profile, stats, per_population, per_core, violations, notes, real_time)
