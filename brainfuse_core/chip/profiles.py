"""Chip profiles: the limits a mapping must respect and the energy constants of the power estimate.

Each number carries its source; where no published figure exists the value is an estimate and is
listed in ``ChipProfile.estimates`` with the reasoning in its source line. Sources:

* [D18] M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning", IEEE Micro
  38(1):82–99, 2018 — Table 1 (core resources) and Table 2 (energy and time per operation, 14 nm,
  measured at 0.75 V). The paper's text was not at hand here: the figures are those widely quoted
  from its tables (e.g. the Nengo forum thread "Theoretical Energy Usage Loihi").
* [I21] Intel Labs, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology brief,
  2021 — 128 neuron cores per chip in an 8 × 16 mesh, 6 embedded processors, up to 1 M neurons and
  120 M synapses per chip, 192 KB of flexibly partitioned memory per core, programmable neurons with
  0–4096 bytes of state each, 1–8-bit weights; Kapoho Point boards of 8 chips. The brief itself was not at
  hand either: core, neuron, synapse and processor counts are as summarised by open-neuromorphic.org ("Loihi 2 -
  Intel"), the mesh and the board as in a press summary of the brief; the 192 KB per core is the brief's
  table as recalled here (the press summary says 128 KB), so it is listed as an estimate.
* [O21] G. Orchard et al., "Efficient Neuromorphic Signal Processing with Loihi 2", IEEE SiPS 2021 —
  Loihi 2 processes spikes up to 10× faster than Loihi; no per-operation energy table.
* [D21] M. Davies et al., "Advancing Neuromorphic Computing With Loihi: A Survey of Results and
  Outlook", Proc. IEEE 109(5), 2021 — Nahuku boards of 32 Loihi chips.

Energies are (low, typical, high) triples; ``profile_from_dict`` reads a user-defined profile (a dict
or a JSON file), optionally starting from a built-in one (``"base": "loihi2"``) and overriding fields.
"""

import dataclasses
import json
import math
from pathlib import Path

from ..errors import ModelError

# Energy constants (pJ per event, or W per active core for static power), each (low, typical, high).
ENERGY_KEYS = ("synaptic_op_pj", "neuron_update_pj", "spike_pj", "hop_pj", "chip_crossing_pj", "static_core_w")
LIMIT_KEYS = ("cores_per_chip", "chips_per_board", "neurons_per_core", "fan_in", "fan_out", "max_weight_bits")
MEMORY_KEYS = ("core_memory_bytes", "synapse_memory_bytes", "neuron_memory_bytes")


@dataclasses.dataclass
class ChipProfile:
    """A chip's limits and energy constants.

    Limits per core: ``neurons_per_core`` (neuron slots), ``fan_in`` (distinct input axons, i.e. presynaptic
    neurons or input channels whose spikes the core receives), ``fan_out`` (output axon routes: one per
    (neuron, destination core)). Memory per core: either one shared pool ``core_memory_bytes`` (neuron
    state, tables, synapses and axon tables together: Loihi 2) or, when it is 0, separate
    ``synapse_memory_bytes`` and ``neuron_memory_bytes`` (Loihi). ``programmable_neurons``: whether the
    core runs user neuron programs (HH), or only its fixed LIF compartments. ``neuron_update_ns``
    (low, typical, high): time of one LIF-compartment update, which bounds how many HH neurons a core
    can update within a real-time chip step. ``mesh``: (rows, columns) of cores on a chip."""

    name: str
    description: str
    cores_per_chip: int
    chips_per_board: int
    mesh: tuple
    neurons_per_core: int
    fan_in: int
    fan_out: int
    max_weight_bits: int
    core_memory_bytes: int
    synapse_memory_bytes: int
    neuron_memory_bytes: int
    programmable_neurons: bool
    neuron_update_ns: tuple
    synaptic_op_pj: tuple
    neuron_update_pj: tuple
    spike_pj: tuple
    hop_pj: tuple
    chip_crossing_pj: tuple
    static_core_w: tuple
    sources: dict
    estimates: tuple = ()

    def to_dict(self):
        data = dataclasses.asdict(self)
        data["mesh"] = list(self.mesh)
        data["estimates"] = list(self.estimates)
        for key in ENERGY_KEYS + ("neuron_update_ns",):
            data[key] = list(data[key])
        return data

    def source(self, key):
        return self.sources.get(key, "user-defined")


def _scaled(triple, factors):
    return tuple(value * factor for value, factor in zip(triple, factors))


# Loihi's Table 2 energies [D18]: one figure each; the range around it spans the E-W/N-S hop difference,
# the active/inactive neuron update and a factor for the supply voltage (0.75 V there; up to ~1.25 V).
_LOIHI1_SYNOP = (23.6, 23.6, 23.6 * 1.5)
_LOIHI1_NEURON = (52.0, 81.0, 81.0 * 1.5)
_LOIHI1_SPIKE = (1.7, 1.7, 1.7 * 1.5)
_LOIHI1_HOP = (3.0, 3.5, 4.0 * 1.5)
_LOIHI1_UPDATE_NS = (5.3, 8.4, 8.4)
# Loihi 2 has no published per-operation table: Loihi's figures scaled by 1/4 (low) to 1 (high), typical
# 1/2, for the Intel 4 process against 14 nm and the brief's faster, leaner cores [I21, O21]. An estimate.
_LOIHI2_SCALE = (0.25, 0.5, 1.0)

LOIHI2 = ChipProfile(
    name="loihi2",
    description="Intel Loihi 2 (Intel 4): 128 programmable neuron cores per chip, Kapoho Point board of 8 chips",
    cores_per_chip=128, chips_per_board=8, mesh=(8, 16),
    neurons_per_core=8192, fan_in=4096, fan_out=4096, max_weight_bits=8,
    core_memory_bytes=192 * 1024, synapse_memory_bytes=0, neuron_memory_bytes=0, programmable_neurons=True,
    neuron_update_ns=(_LOIHI1_UPDATE_NS[0] / 10, _LOIHI1_UPDATE_NS[1] / 4, _LOIHI1_UPDATE_NS[2] / 2),
    synaptic_op_pj=_scaled(_LOIHI1_SYNOP, _LOIHI2_SCALE), neuron_update_pj=_scaled(_LOIHI1_NEURON, _LOIHI2_SCALE),
    spike_pj=_scaled(_LOIHI1_SPIKE, _LOIHI2_SCALE), hop_pj=_scaled(_LOIHI1_HOP, _LOIHI2_SCALE),
    chip_crossing_pj=(10.0, 50.0, 200.0), static_core_w=(0.1e-3, 0.5e-3, 1.5e-3),
    sources={
        "cores_per_chip": "[I21] 128 neuron cores per chip",
        "chips_per_board": "[I21] Kapoho Point: 8 Loihi 2 chips",
        "mesh": "[I21] cores in an 8 × 16 mesh",
        "neurons_per_core": "[I21] up to 1 M neurons per chip / 128 cores = 8192",
        "fan_in": "estimate: not published for Loihi 2; Loihi's 4096 input axons per core [D18]",
        "fan_out": "estimate: not published for Loihi 2; Loihi's 4096 output axon routes per core [D18]",
        "max_weight_bits": "[I21] 1-8-bit signed weights",
        "core_memory_bytes": "estimate: 192 KB per core, partitioned freely between synapses, neuron state and routing "
                             "([I21] as recalled; a press summary of it gives 128 KB)",
        "programmable_neurons": "[I21] neuron models are microcode programs with 0-4096 bytes of state",
        "neuron_update_ns": "estimate: Loihi's 5.3-8.4 ns per update [D18] divided by 2-10 ('up to 10x faster' [O21])",
        "synaptic_op_pj": "estimate: Loihi's 23.6 pJ [D18] × 0.25/0.5/1 for Intel 4 [I21]",
        "neuron_update_pj": "estimate: Loihi's 52/81 pJ (inactive/active) [D18] × 0.25/0.5/1",
        "spike_pj": "estimate: Loihi's within-tile spike energy 1.7 pJ [D18] × 0.25/0.5/1",
        "hop_pj": "estimate: Loihi's 3.0/4.0 pJ per tile hop (E-W/N-S) [D18] × 0.25/0.5/1",
        "chip_crossing_pj": "estimate: no published figure; an off-chip link message taken as 10-200 pJ",
        "static_core_w": "estimate: no published figure; 0.1-1.5 mW per active core (13-190 mW per full chip), "
                         "within the ~1 W whole-chip figure quoted for Loihi 2 under load",
    },
    estimates=("fan_in", "fan_out", "core_memory_bytes", "neuron_update_ns", "synaptic_op_pj", "neuron_update_pj", "spike_pj", "hop_pj",
               "chip_crossing_pj", "static_core_w"),
)

LOIHI1 = ChipProfile(
    name="loihi1",
    description="Intel Loihi (14 nm): 128 neuron cores of 1024 fixed LIF compartments, Nahuku board of 32 chips",
    cores_per_chip=128, chips_per_board=32, mesh=(8, 16),
    neurons_per_core=1024, fan_in=4096, fan_out=4096, max_weight_bits=8,
    core_memory_bytes=0, synapse_memory_bytes=128 * 1024, neuron_memory_bytes=1024 * 24, programmable_neurons=False,
    neuron_update_ns=_LOIHI1_UPDATE_NS,
    synaptic_op_pj=_LOIHI1_SYNOP, neuron_update_pj=_LOIHI1_NEURON, spike_pj=_LOIHI1_SPIKE, hop_pj=_LOIHI1_HOP,
    chip_crossing_pj=(10.0, 50.0, 200.0), static_core_w=(0.1e-3, 0.5e-3, 1.5e-3),
    sources={
        "cores_per_chip": "[D18] 128 neuromorphic cores per chip",
        "chips_per_board": "[D21] Nahuku: 32 Loihi chips",
        "mesh": "estimate: cores taken as an 8 × 16 mesh for hop counts (as Loihi 2 [I21])",
        "neurons_per_core": "[D18] 1024 compartments per core",
        "fan_in": "[D18] 4096 input axons per core",
        "fan_out": "[D18] 4096 output axon routes per core",
        "max_weight_bits": "[D18] 1-9-bit weights (8 magnitude bits)",
        "synapse_memory_bytes": "[D18] 128 KB synaptic memory per core",
        "neuron_memory_bytes": "[I21] neuron state fixed at 24 bytes per compartment (1024 per core)",
        "programmable_neurons": "[D18] fixed CUBA LIF compartments: HH dynamics cannot run natively",
        "neuron_update_ns": "[D18] 5.3/8.4 ns per neuron update (inactive/active)",
        "synaptic_op_pj": "[D18] 23.6 pJ per synaptic spike op (minimum); high ×1.5 for higher supply voltage",
        "neuron_update_pj": "[D18] 52/81 pJ per neuron update (inactive/active); high ×1.5",
        "spike_pj": "[D18] 1.7 pJ within-tile spike energy; high ×1.5",
        "hop_pj": "[D18] 3.0/4.0 pJ per tile hop (E-W/N-S), typical their mean; high ×1.5",
        "chip_crossing_pj": "estimate: no published figure; an off-chip link message taken as 10-200 pJ",
        "static_core_w": "estimate: no published figure; 0.1-1.5 mW per active core (13-190 mW per full chip)",
    },
    estimates=("mesh", "chip_crossing_pj", "static_core_w"),
)

PROFILES = {profile.name: profile for profile in (LOIHI2, LOIHI1)}


def get_profile(chip):
    """A ChipProfile from a built-in name ("loihi2", "loihi1"), a ChipProfile, a dict, or the path of a JSON file."""
    if isinstance(chip, ChipProfile):
        return chip
    if isinstance(chip, dict):
        return profile_from_dict(chip)
    if isinstance(chip, (str, Path)) and str(chip).lower() in PROFILES:
        return PROFILES[str(chip).lower()]
    path = Path(chip)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ModelError(f"chip profile file {path} does not exist")
        try:
            data = json.loads(path.read_text())
        except ValueError as err:
            raise ModelError(f"chip profile file {path}: not valid JSON ({err})") from None
        return profile_from_dict(data)
    raise ModelError(f"unknown chip {chip!r}; use one of {', '.join(PROFILES)} or the path of a profile JSON file")


def profile_from_dict(data):
    """A user-defined ChipProfile. ``data`` holds every field of ChipProfile, or ``"base"`` (a built-in
    profile's name) and the fields to override. Energies are a number or [low, typical, high]; fields a
    user sets are sourced "user-defined" unless ``sources`` says otherwise."""
    if not isinstance(data, dict):
        raise ModelError(f"a chip profile is a JSON object, got {type(data).__name__}")
    data = dict(data)
    base_name = data.pop("base", None)
    fields = {field.name for field in dataclasses.fields(ChipProfile)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ModelError(f"chip profile: unknown field(s) {', '.join(unknown)}; fields are {', '.join(sorted(fields))}")
    if base_name is not None:
        if base_name not in PROFILES:
            raise ModelError(f"chip profile: base {base_name!r} is not a built-in profile; use one of {', '.join(PROFILES)}")
        values = PROFILES[base_name].to_dict()
        values["sources"] = dict(values["sources"])
        for key in data:
            values["sources"].pop(key, None)
        values["estimates"] = [key for key in values["estimates"] if key not in data]
        values["name"] = data.get("name", f"{base_name}-custom")
        values["description"] = data.get("description", f"{base_name} with user-defined {', '.join(sorted(data))}")
    else:
        missing = sorted(fields - set(data) - {"sources", "estimates", "description"})
        if missing:
            raise ModelError(f"chip profile: missing field(s) {', '.join(missing)}; give them, or \"base\": \"loihi2\" "
                             "to start from a built-in profile")
        values = {"sources": {}, "estimates": [], "description": data.get("name", "user-defined chip")}
    values.update({key: value for key, value in data.items() if key not in ("sources",)})
    values["sources"] = {**values.get("sources", {}), **data.get("sources", {})}
    return _checked(values)


def _checked(values):
    for key in LIMIT_KEYS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
            raise ModelError(f"chip profile: {key} must be a positive whole number, got {value!r}")
        values[key] = int(value)
    for key in MEMORY_KEYS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 0:
            raise ModelError(f"chip profile: {key} must be a whole number of bytes ≥ 0, got {value!r}")
        values[key] = int(value)
    if values["core_memory_bytes"] == 0 and (values["synapse_memory_bytes"] == 0 or values["neuron_memory_bytes"] == 0):
        raise ModelError("chip profile: give core_memory_bytes (one shared pool per core) or both synapse_memory_bytes "
                         "and neuron_memory_bytes")
    if values["programmable_neurons"] is False and values["neuron_memory_bytes"] < values["neurons_per_core"]:
        raise ModelError("chip profile: a chip without programmable neurons needs neuron_memory_bytes (the state of its "
                         "neurons_per_core compartments), to count an HH cell's state in compartments")
    mesh = values["mesh"]
    if not (isinstance(mesh, (list, tuple)) and len(mesh) == 2 and all(isinstance(m, int) and m >= 1 for m in mesh)):
        raise ModelError(f"chip profile: mesh must be [rows, columns] of positive whole numbers, got {mesh!r}")
    if mesh[0] * mesh[1] < values["cores_per_chip"]:
        raise ModelError(f"chip profile: a {mesh[0]} × {mesh[1]} mesh cannot hold {values['cores_per_chip']} cores")
    values["mesh"] = tuple(mesh)
    if not isinstance(values["programmable_neurons"], bool):
        raise ModelError(f"chip profile: programmable_neurons must be true or false, got {values['programmable_neurons']!r}")
    for key in ENERGY_KEYS + ("neuron_update_ns",):
        values[key] = _triple(key, values[key])
    for key in ("name", "description"):
        if not isinstance(values[key], str) or not values[key]:
            raise ModelError(f"chip profile: {key} must be a non-empty string")
    if not isinstance(values["sources"], dict):
        raise ModelError("chip profile: sources must map field names to the source of their values")
    values["estimates"] = tuple(values.get("estimates", ()))
    return ChipProfile(**values)


def _triple(key, value):
    triple = [value] * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if not (isinstance(triple, (list, tuple)) and len(triple) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in triple)):
        raise ModelError(f"chip profile: {key} must be a number ≥ 0 or [low, typical, high], got {value!r}")
    if not triple[0] <= triple[1] <= triple[2]:
        raise ModelError(f"chip profile: {key} must be ordered low ≤ typical ≤ high, got {list(triple)}")
    return tuple(float(v) for v in triple)
