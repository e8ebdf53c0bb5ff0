"""Morphology: a tree of sections (lengths and diameters in µm).

A section is either a cylinder (``length``, ``diameter``) or a path through 3-D points
(``points``: [x, y, z, diameter] µm, NEURON's pt3d), in which case its length is the path
length and its membrane and axial resistance follow the frustums between the points exactly
as NEURON computes them (see ``layout.py``). The topology is a networkx DiGraph (parent →
child) whose nodes are section names; each section carries its number of segments and its
region ("soma", "basal", "apical", "axon", or any name) used to place channel densities.
"""

import math

import networkx as nx

from ..errors import ModelError
from ..units import frustum_area_um2

# Derived length and diameter of a section with points are written rounded to this many
# decimals (µm) for readers of the file, and accepted back within this tolerance.
DERIVED_DECIMALS = 4
DERIVED_TOLERANCE_UM = 1e-4


class Section:
    """A cylinder of ``length`` and ``diameter`` (µm), or a path through ``points`` ([x, y, z, diameter] µm).

    ``nseg`` segments, attached at ``parent_x`` of ``parent``; ``ra`` (Ω·cm) and ``cm`` (µF/cm²)
    override the cell's defaults when given. With points, ``length`` is their path length and
    ``diameter`` the area-equivalent one (membrane area / (π length)), both derived: give
    either length and diameter, or points.
    """

    def __init__(self, name, length=None, diameter=None, nseg=1, parent=None, parent_x=1.0, region="soma", ra=None, cm=None,
                 points=None):
        where = f"section {name!r}"
        if not isinstance(name, str) or not name:
            raise ModelError("a section needs a non-empty name")
        if int(nseg) != nseg or nseg < 1:
            raise ModelError(f"{where}: nseg must be a positive integer, got {nseg!r}")
        if not 0.0 <= parent_x <= 1.0:
            raise ModelError(f"{where}: parent_x must lie in [0, 1], got {parent_x!r}")
        if ra is not None and ra <= 0:
            raise ModelError(f"{where}: ra must be positive (Ω·cm), got {ra!r}")
        if cm is not None and cm <= 0:
            raise ModelError(f"{where}: cm must be positive (µF/cm²), got {cm!r}")
        self.name, self.nseg = name, int(nseg)
        self.parent, self.parent_x, self.region, self.ra, self.cm = parent, float(parent_x), region, ra, cm
        if points is None:
            if length is None or diameter is None:
                raise ModelError(f"{where}: give length and diameter (µm), or points ([x, y, z, diameter] µm)")
            if not (length > 0 and math.isfinite(length)):
                raise ModelError(f"{where}: length must be a positive number of µm, got {length!r}")
            if not (diameter > 0 and math.isfinite(diameter)):
                raise ModelError(f"{where}: diameter must be a positive number of µm, got {diameter!r}")
            self.points = None
            self.length, self.diameter = float(length), float(diameter)
        else:
            if length is not None or diameter is not None:
                raise ModelError(f"{where}: a section with points takes its length and diameter from them; "
                                 f"leave length and diameter out")
            self.points = _checked_points(points, where)
            self.length = self.arc_lengths()[-1]
            self.diameter = self.area / (math.pi * self.length)

    @property
    def area(self):
        """Lateral membrane area in µm² (the frustums' lateral surfaces for a section with points)."""
        if self.points is None:
            return math.pi * self.diameter * self.length
        arcs = self.arc_lengths()
        return sum(frustum_area_um2(s1 - s0, p0[3], p1[3])
                   for s0, s1, p0, p1 in zip(arcs, arcs[1:], self.points, self.points[1:]))

    def arc_lengths(self):
        """Path length (µm) from the first point to each point; [0, length] for a cylinder."""
        if self.points is None:
            return [0.0, self.length]
        arcs = [0.0]
        for a, b in zip(self.points, self.points[1:]):
            arcs.append(arcs[-1] + math.dist(a[:3], b[:3]))
        return arcs

    def to_dict(self):
        if self.points is None:
            data = {"length": self.length, "diameter": self.diameter}
        else:
            data = {"length": round(self.length, DERIVED_DECIMALS), "diameter": round(self.diameter, DERIVED_DECIMALS),
                    "points": [list(p) for p in self.points]}
        data.update(nseg=self.nseg, region=self.region)
        if self.parent is not None:
            data["parent"] = self.parent
            data["parent_x"] = self.parent_x
        if self.ra is not None:
            data["ra"] = self.ra
        if self.cm is not None:
            data["cm"] = self.cm
        return data

    def __repr__(self):
        shape = f"{len(self.points)} points, " if self.points is not None else ""
        return f"Section({self.name!r}, {shape}L={self.length:g} µm, diam={self.diameter:g} µm, nseg={self.nseg})"


def _checked_points(points, where):
    try:
        rows = [tuple(float(v) for v in p) for p in points]
    except (TypeError, ValueError):
        raise ModelError(f"{where}: points must be a list of [x, y, z, diameter] numbers (µm)") from None
    if len(rows) < 2:
        raise ModelError(f"{where}: points needs at least 2 points [x, y, z, diameter] (µm), got {len(rows)}")
    for k, row in enumerate(rows):
        if len(row) != 4 or not all(math.isfinite(v) for v in row):
            raise ModelError(f"{where}: points[{k}] must be 4 finite numbers [x, y, z, diameter] (µm), got {list(row)}")
        if not row[3] > 0:
            raise ModelError(f"{where}: points[{k}] has diameter {row[3]:g}; diameters must be positive (µm)")
    if sum(math.dist(a[:3], b[:3]) for a, b in zip(rows, rows[1:])) <= 0:
        raise ModelError(f"{where}: the points all coincide; a section needs a positive path length")
    return tuple(rows)


class Morphology:
    """An ordered collection of sections forming one tree (exactly one root)."""

    def __init__(self, sections):
        self.sections = {}
        for section in sections:
            if section.name in self.sections:
                raise ModelError(f"section name {section.name!r} is used twice")
            self.sections[section.name] = section
        if not self.sections:
            raise ModelError("a morphology needs at least one section")
        for section in self.sections.values():
            if section.parent is not None and section.parent not in self.sections:
                raise ModelError(f"section {section.name!r}: parent {section.parent!r} does not exist")
        roots = [s.name for s in self.sections.values() if s.parent is None]
        if len(roots) != 1:
            raise ModelError(f"a morphology needs exactly one root section (no parent), found {roots or 'none'}")
        self.root = roots[0]
        if len(nx.descendants(self.graph, self.root)) + 1 != len(self.sections):
            raise ModelError("sections must form one tree: some parent chain loops back instead of reaching the root")

    @property
    def graph(self):
        graph = nx.DiGraph()
        for section in self.sections.values():
            graph.add_node(section.name, section=section)
        for section in self.sections.values():
            if section.parent is not None:
                graph.add_edge(section.parent, section.name)
        return graph

    def ordered(self):
        """Sections parents-first (depth-first from the root)."""
        return [self.sections[name] for name in nx.dfs_preorder_nodes(self.graph, self.root)]

    def regions(self):
        regions = {}
        for section in self.sections.values():
            regions.setdefault(section.region, []).append(section.name)
        return regions

    @classmethod
    def cylinder(cls, length, diameter, nseg=1, name="soma", region="soma"):
        return cls([Section(name, length, diameter, nseg, region=region)])

    def to_dict(self):
        return {name: s.to_dict() for name, s in self.sections.items()}

    @classmethod
    def from_dict(cls, data, where="morphology"):
        """Sections from {name: {length, diameter | points, nseg, parent, parent_x, region, ra, cm}}.

        A section with points may also carry the length and diameter its ``to_dict`` writes;
        they must then agree with the points (within 1e-4 µm), so a stale value is an error
        rather than silently ignored.
        """
        if not isinstance(data, dict) or not data:
            raise ModelError(f"{where}: an object mapping section names to sections")
        sections = []
        for name, sdata in data.items():
            if not isinstance(sdata, dict):
                raise ModelError(f"{where}.{name}: a section is an object with length and diameter (or points), nseg")
            unknown = set(sdata) - {"length", "diameter", "points", "nseg", "parent", "parent_x", "region", "ra", "cm"}
            if unknown:
                raise ModelError(f"{where}.{name}.{sorted(unknown)[0]}: unknown section field")
            fields = dict(sdata)
            for key in ("length", "diameter"):
                if key not in fields:
                    if "points" not in fields:
                        raise ModelError(f"{where}.{name}.{key}: missing (µm); give length and diameter, or points")
                    continue
                value = fields[key]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                    raise ModelError(f"{where}.{name}.{key}: must be a positive number of µm, got {value!r}")
            stated = {key: fields.pop(key) for key in ("length", "diameter") if "points" in fields and key in fields}
            try:
                section = Section(name, **fields)
            except ModelError as err:
                raise ModelError(f"{where}.{name}: {err}") from None
            for key, value in stated.items():
                derived = getattr(section, key)
                if abs(value - derived) > DERIVED_TOLERANCE_UM:
                    what = "path length" if key == "length" else "area-equivalent diameter"
                    raise ModelError(f"{where}.{name}.{key}: {value:g} µm, but the points give a {what} of {derived:.4f} µm; "
                                     f"a section with points takes its {key} from them: remove {key} or change the points")
            sections.append(section)
        try:
            return cls(sections)
        except ModelError as err:
            raise ModelError(f"{where}: {err}") from None
