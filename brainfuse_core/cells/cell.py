"""A cell: a morphology plus its biophysics (channel densities per section or region, cm, Ra, ions).

Densities follow NEURON's ``insert``: ``cell.insert(channel, where="apical", gbar=0.01)``
puts the channel's conductance density (S/cm²) on every section named or in the region
named; later insertions of the same channel override earlier ones where they overlap.
"""

import math

import torch

from ..channels import CalciumPool, Channel
from ..channels.curves import plain_value
from ..errors import ModelError
from .layout import build_layout
from .morphology import Morphology

DEFAULT_REVERSALS = {"na": 50.0, "k": -77.0, "ca": 132.5}


class Insertion:
    def __init__(self, channel, where="all", gbar=None):
        self.channel, self.where, self.gbar = channel, where, gbar


class Cell:
    """Morphology + biophysics. ``cm`` µF/cm², ``ra`` Ω·cm, ``reversals`` mV per ion, ``v_init`` mV."""

    def __init__(self, morphology, cm=1.0, ra=35.4, reversals=None, v_init=-65.0, name="cell"):
        if not isinstance(morphology, Morphology):
            raise ModelError("Cell needs a Morphology (see Morphology.cylinder or load_swc)")
        if not cm > 0:
            raise ModelError(f"cell {name!r}: cm must be positive (µF/cm²), got {cm!r}")
        if not ra > 0:
            raise ModelError(f"cell {name!r}: ra must be positive (Ω·cm), got {ra!r}")
        learnt = [label for label, value in (("cm", cm), ("ra", ra)) if torch.is_tensor(value) and value.requires_grad]
        if learnt:
            raise ModelError(f"cell {name!r}: {learnt[0]} is a tensor that requires grad, but the cell's geometry and "
                             f"cable constants are plain numbers to the solvers, so it would get no gradient; pass a "
                             f"float, and fit it with Fit(..., finite_differences=[...]) (brainfuse_core.training)")
        self.name = name
        self.morphology = morphology
        self.cm, self.ra, self.v_init = cm, ra, v_init
        self.reversals = dict(DEFAULT_REVERSALS, **(reversals or {}))
        self.channels = {}
        self.insertions = []
        self.pools = []
        self._layout = None

    @classmethod
    def point(cls, area=None, diameter=None, channels=(), **kwargs):
        """A one-compartment cell of membrane ``area`` (µm²) or cylinder ``diameter`` (µm, L = diam)."""
        if (area is None) == (diameter is None):
            raise ModelError("Cell.point: give either area (µm²) or diameter (µm)")
        if area is not None and not area > 0:
            raise ModelError(f"Cell.point: area must be positive (µm²), got {area!r}")
        diameter = diameter if diameter is not None else math.sqrt(area / math.pi)
        cell = cls(Morphology.cylinder(diameter, diameter), **kwargs)
        for channel in channels:
            cell.insert(channel)
        return cell

    def insert(self, channel, where="all", gbar=None):
        """Insert ``channel`` (a Channel) on ``where``: "all", a region, a section name, or a list of those."""
        if not isinstance(channel, Channel):
            raise ModelError(f"insert needs a Channel, got {type(channel).__name__}; e.g. channel('hh_na')")
        known = self.channels.get(channel.name)
        if known is not None and known is not channel:
            raise ModelError(f"a different channel named {channel.name!r} is already inserted; rename one of them")
        self._check_where(where)
        self.channels[channel.name] = channel
        self.insertions.append(Insertion(channel.name, where, gbar))
        return self

    def add_pool(self, pool, where="all"):
        if not isinstance(pool, CalciumPool):
            raise ModelError(f"add_pool needs a CalciumPool, got {type(pool).__name__}")
        self._check_where(where)
        self.pools.append((pool, where))
        return self

    def _check_where(self, where):
        names = [where] if isinstance(where, str) else list(where)
        regions = self.morphology.regions()
        for name in names:
            if name != "all" and name not in regions and name not in self.morphology.sections:
                raise ModelError(
                    f"cell {self.name!r}: {name!r} is neither a section nor a region; "
                    f"regions are {', '.join(sorted(regions))}"
                )

    @property
    def layout(self):
        if self._layout is None:
            self._layout = build_layout(self.morphology, self.ra)
        return self._layout

    def invalidate(self):
        """Forget the cached discretisation after editing the morphology."""
        self._layout = None

    def node_mask(self, where):
        """(N,) bool list: which nodes lie in ``where``."""
        names = [where] if isinstance(where, str) else list(where)
        sections = set()
        for name in names:
            if name == "all":
                sections.update(self.morphology.sections)
            elif name in self.morphology.sections:
                sections.add(name)
            else:
                sections.update(self.morphology.regions()[name])
        return [owner in sections for owner in self.layout.section_of]

    def capacitance_density(self):
        """(N,) µF/cm² per node."""
        sections = self.morphology.sections
        return [sections[s].cm if sections[s].cm is not None else self.cm for s in self.layout.section_of]

    def density(self, channel_name, dtype=torch.float64, device=None):
        """(N,) conductance density (S/cm²) of one channel; differentiable in tensor gbars."""
        channel = self.channels[channel_name]
        density = torch.zeros(self.layout.size, dtype=dtype, device=device)
        for insertion in self.insertions:
            if insertion.channel != channel_name:
                continue
            gbar = channel.gbar if insertion.gbar is None else insertion.gbar
            mask = torch.tensor(self.node_mask(insertion.where), device=device)
            density = torch.where(mask, torch.as_tensor(gbar, dtype=dtype, device=device), density)
        return density

    def reversal(self, channel):
        if channel.reversal is not None:
            return channel.reversal
        return self.reversals[channel.ion]

    def location(self, section=None, x=0.5):
        """Node index of ``section(x)``; the root section's centre by default."""
        return self.layout.node(section or self.morphology.root, x)

    def to_dict(self):
        data = {
            "morphology": self.morphology.to_dict(),
            "cm": self.cm, "ra": self.ra, "v_init": self.v_init, "reversals": dict(self.reversals),
            "insert": [
                {"channel": i.channel, "where": i.where, **({} if i.gbar is None else {"gbar": plain_value(i.gbar)})}
                for i in self.insertions
            ],
        }
        if self.pools:
            data["pools"] = [{"pool": p.name, "where": w, **p.to_dict()} for p, w in self.pools]
        return data

    @classmethod
    def from_dict(cls, name, data, channels, where=None):
        """Build from project data; ``channels`` maps names to Channel objects (library or project-defined)."""
        where = where or f"cells.{name}"
        if not isinstance(data, dict):
            raise ModelError(f"{where}: a cell is an object with morphology and insert")
        unknown = set(data) - {"morphology", "cm", "ra", "v_init", "reversals", "insert", "pools"}
        if unknown:
            raise ModelError(f"{where}.{sorted(unknown)[0]}: unknown cell field")
        morphology = Morphology.from_dict(data.get("morphology"), f"{where}.morphology")
        try:
            cell = cls(morphology, cm=data.get("cm", 1.0), ra=data.get("ra", 35.4), reversals=data.get("reversals"),
                       v_init=data.get("v_init", -65.0), name=name)
        except ModelError as err:
            raise ModelError(f"{where}: {err}") from None
        for k, entry in enumerate(data.get("insert", [])):
            path = f"{where}.insert[{k}]"
            if not isinstance(entry, dict) or "channel" not in entry:
                raise ModelError(f"{path}: an insertion is an object with 'channel' and optional 'where', 'gbar'")
            if entry["channel"] not in channels:
                raise ModelError(f"{path}.channel: unknown channel {entry['channel']!r}; known: {', '.join(sorted(channels))}")
            try:
                cell.insert(channels[entry["channel"]], entry.get("where", "all"), entry.get("gbar"))
            except ModelError as err:
                raise ModelError(f"{path}: {err}") from None
        for k, entry in enumerate(data.get("pools", [])):
            path = f"{where}.pools[{k}]"
            if not isinstance(entry, dict):
                raise ModelError(f"{path}: a pool is an object with depth, decay, rest, gamma and optional where")
            fields = {key: value for key, value in entry.items() if key not in ("pool", "where")}
            pool = CalciumPool.from_dict(entry.get("pool", "ca_pool"), fields, path)
            cell.add_pool(pool, entry.get("where", "all"))
        return cell

