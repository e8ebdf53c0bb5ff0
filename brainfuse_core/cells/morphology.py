"""Morphology: a tree of cylindrical sections (lengths and diameters in µm).

The topology is a networkx DiGraph (parent → child) whose nodes are section names; each
section carries its geometry, its number of segments and its region ("soma", "basal",
"apical", "axon", or any name) used to place channel densities.
"""

import math

import networkx as nx

from ..errors import ModelError


class Section:
    """A cylinder: ``length`` and ``diameter`` (µm), ``nseg`` segments, attached at ``parent_x`` of ``parent``.

    ``ra`` (Ω·cm) and ``cm`` (µF/cm²) override the cell's defaults when given.
    """

    def __init__(self, name, length, diameter, nseg=1, parent=None, parent_x=1.0, region="soma", ra=None, cm=None):
        where = f"section {name!r}"
        if not isinstance(name, str) or not name:
            raise ModelError("a section needs a non-empty name")
        if not (length > 0 and math.isfinite(length)):
            raise ModelError(f"{where}: length must be a positive number of µm, got {length!r}")
        if not (diameter > 0 and math.isfinite(diameter)):
            raise ModelError(f"{where}: diameter must be a positive number of µm, got {diameter!r}")
        if int(nseg) != nseg or nseg < 1:
            raise ModelError(f"{where}: nseg must be a positive integer, got {nseg!r}")
        if not 0.0 <= parent_x <= 1.0:
            raise ModelError(f"{where}: parent_x must lie in [0, 1], got {parent_x!r}")
        if ra is not None and ra <= 0:
            raise ModelError(f"{where}: ra must be positive (Ω·cm), got {ra!r}")
        if cm is not None and cm <= 0:
            raise ModelError(f"{where}: cm must be positive (µF/cm²), got {cm!r}")
        self.name, self.length, self.diameter, self.nseg = name, float(length), float(diameter), int(nseg)
        self.parent, self.parent_x, self.region, self.ra, self.cm = parent, float(parent_x), region, ra, cm

    @property
    def area(self):
        """Lateral area in µm²."""
        return math.pi * self.diameter * self.length

    def to_dict(self):
        data = {"length": self.length, "diameter": self.diameter, "nseg": self.nseg, "region": self.region}
        if self.parent is not None:
            data["parent"] = self.parent
            data["parent_x"] = self.parent_x
        if self.ra is not None:
            data["ra"] = self.ra
        if self.cm is not None:
            data["cm"] = self.cm
        return data

    def __repr__(self):
        return f"Section({self.name!r}, L={self.length} µm, diam={self.diameter} µm, nseg={self.nseg})"


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
        if not isinstance(data, dict) or not data:
            raise ModelError(f"{where}: an object mapping section names to sections")
        sections = []
        for name, sdata in data.items():
            if not isinstance(sdata, dict):
                raise ModelError(f"{where}.{name}: a section is an object with length, diameter, nseg")
            unknown = set(sdata) - {"length", "diameter", "nseg", "parent", "parent_x", "region", "ra", "cm"}
            if unknown:
                raise ModelError(f"{where}.{name}.{sorted(unknown)[0]}: unknown section field")
            for key in ("length", "diameter"):
                if key not in sdata:
                    raise ModelError(f"{where}.{name}.{key}: missing (µm)")
                value = sdata[key]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                    raise ModelError(f"{where}.{name}.{key}: must be a positive number of µm, got {value!r}")
            try:
                sections.append(Section(name, **sdata))
            except ModelError as err:
                raise ModelError(f"{where}.{name}: {err}") from None
        try:
            return cls(sections)
        except ModelError as err:
            raise ModelError(f"{where}: {err}") from None


SWC_REGIONS = {1: "soma", 2: "axon", 3: "basal", 4: "apical"}


def load_swc(path, max_segment_length=None):
    """Read an SWC file into cylinder sections.

    Each unbranched run of points of one type becomes a section whose length is the run's
    path length and whose diameter preserves the run's lateral area. A one-point soma
    becomes a cylinder of length = diameter = 2r (the same membrane area as the sphere).
    ``max_segment_length`` (µm) sets nseg so that no segment is longer.
    """
    points = {}
    with open(path) as handle:
        for line_number, line in enumerate(handle, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 7:
                raise ModelError(f"{path}:{line_number}: an SWC line has 7 fields (id type x y z radius parent), got {len(fields)}")
            try:
                ident, kind = int(fields[0]), int(fields[1])
                x, y, z, radius = (float(v) for v in fields[2:6])
                parent = int(fields[6])
            except ValueError:
                raise ModelError(f"{path}:{line_number}: SWC fields must be numbers") from None
            if radius <= 0:
                raise ModelError(f"{path}:{line_number}: radius must be positive, got {radius}")
            if parent != -1 and parent not in points:
                raise ModelError(f"{path}:{line_number}: parent {parent} is not defined before point {ident}")
            points[ident] = (kind, (x, y, z), radius, parent)
    if not points:
        raise ModelError(f"{path}: no points")
    children = {ident: [] for ident in points}
    for ident, (_, _, _, parent) in points.items():
        if parent != -1:
            children[parent].append(ident)
    root = next(ident for ident, p in points.items() if p[3] == -1)
    soma_points = [i for i, p in points.items() if p[0] == 1]
    sections = []
    if len(soma_points) <= 1 or _three_point_soma(points, soma_points, root):
        radius = points[root][2]
        sections.append(Section("soma", 2 * radius, 2 * radius, 1, region="soma"))
    else:
        length, area = _run_geometry([points[p] for p in soma_points])
        sections.append(Section("soma", length, area / (math.pi * length), 1, region="soma"))
    soma_set = set(soma_points) or {root}
    counters = {}

    def start_runs(from_point, parent_name, parent_x):
        for child in children[from_point]:
            if child in soma_set:
                continue
            run = [child]
            while len(children[run[-1]]) == 1 and points[children[run[-1]][0]][0] == points[child][0]:
                run.append(children[run[-1]][0])
            region = SWC_REGIONS.get(points[child][0], f"type{points[child][0]}")
            counters[region] = counters.get(region, -1) + 1
            name = f"{region}[{counters[region]}]"
            start = _soma_surface(points, from_point, run[0]) if from_point in soma_set else points[from_point]
            length, area = _run_geometry([start] + [points[p] for p in run])
            nseg = 1 if max_segment_length is None else max(1, math.ceil(length / max_segment_length))
            sections.append(Section(name, length, area / (math.pi * length), nseg, parent=parent_name, parent_x=parent_x, region=region))
            start_runs(run[-1], name, 1.0)

    for point in soma_set:
        start_runs(point, "soma", 0.5 if point == root else 1.0)
    return Morphology(sections)


def _three_point_soma(points, soma_points, root):
    """NeuroMorpho's convention: the root and two points one radius away on either side, all of
    the root's radius; it stands for a cylinder of length = diameter = 2r."""
    if len(soma_points) != 3 or root not in soma_points:
        return False
    others = [p for p in soma_points if p != root]
    radius = points[root][2]
    return all(points[p][3] == root and math.isclose(points[p][2], radius)
               and math.isclose(math.dist(points[p][1], points[root][1]), radius, rel_tol=1e-3) for p in others)


def _soma_surface(points, soma_point, first):
    """Where a neurite leaves the soma: on the soma's surface towards its first point, with the
    neurite's radius, so the soma's own radius and interior are not counted as neurite."""
    _, centre, radius, _ = points[soma_point]
    kind, position, neurite_radius, parent = points[first]
    distance = math.dist(centre, position)
    if distance <= radius:
        return (kind, position, neurite_radius, parent)
    surface = tuple(c + (p - c) * radius / distance for c, p in zip(centre, position))
    return (kind, surface, neurite_radius, parent)


def _run_geometry(run):
    """Path length and lateral (frustum) area of consecutive (type, xyz, radius, parent) points."""
    length = area = 0.0
    for (_, (xa, ya, za), ra, _), (_, (xb, yb, zb), rb, _) in zip(run, run[1:]):
        piece = math.dist((xa, ya, za), (xb, yb, zb))
        length += piece
        area += math.pi * (ra + rb) * math.sqrt(piece * piece + (ra - rb) ** 2)
    if length <= 0:
        raise ModelError("SWC: a neurite has zero length (its points coincide, or it ends inside the soma)")
    return length, area
