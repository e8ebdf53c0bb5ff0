"""SWC files read into sections with 3-D points, cut and attached the way NEURON's Import3d does it.

The same file then gives the same tree (section by section, point by point, attachment by
attachment) here and in NEURON (``Import3d_SWC_read`` + ``Import3d_GUI.instantiate``), so the
two simulators can be compared with the same discretisation. The rules, as NEURON applies them:

* Points are taken in id order; every parent id must be smaller than its child's id, and
  there is exactly one root. A section is a run of consecutive points that ends at a leaf,
  a branch point, a point whose child does not follow it in the file, or a change of type.
  Consecutive soma points (type 1) stay in one section unless a soma point other than the
  first has several soma children.
* The soma: one point is a sphere, represented (like NEURON) as a cylinder along x of
  length = diameter = 2r through 3 points, which has the sphere's area. Three soma points in
  NeuroMorpho's convention (the root and two children of its radius, r away on either side,
  with nothing attached to them) are the same sphere. Any other soma (a stack of points, or
  an outline traced as a chain) becomes a section through its points, frustum by frustum:
  Import3d's SWC reader takes soma points as a path, not as a contour.
* A child section starts with a copy of its parent point, except that a neurite leaving a
  one-point soma, leaving the soma's interior, or sharing its soma point with another soma
  section, is joined to the soma by a wire (no membrane, no resistance) and starts at its
  own first point; where it starts with a copy of a soma point, that copy takes the
  neurite's first diameter, not the soma's.
* Attachment: to the soma's centre (x = 0.5) for a one-point soma and for points inside the
  soma section; x = 0 for the root section's first point; x = 1 otherwise (the parent's last
  point). A branch leaving the first point of a neurite that is wired to the soma attaches
  at that neurite's x = 0. A two-point section of zero length is dropped and its children
  attached where it was.
"""

import math

from ..errors import ModelError
from .morphology import Morphology, Section

SWC_REGIONS = {1: "soma", 2: "axon", 3: "basal", 4: "apical"}
SOMA = 1


def load_swc(path, max_segment_length=None):
    """Read an SWC file into sections with 3-D points (µm), one segment each unless
    ``max_segment_length`` (µm) asks for more: nseg is then the smallest that keeps every
    segment no longer. Sections are named ``soma`` and ``<region>[k]`` (``basal[0]``, …),
    numbered per region in file order, as NEURON's Import3d numbers ``dend[k]``, ``apic[k]``."""
    if max_segment_length is not None and not max_segment_length > 0:
        raise ModelError(f"max_segment_length must be a positive number of µm, got {max_segment_length!r}")
    counters, sections = {}, []
    for piece in _Import3dCut(_read(path)).sections():
        region = SWC_REGIONS.get(piece["type"], f"type{piece['type']}")
        k = counters[region] = counters.get(region, -1) + 1
        piece["name"] = "soma" if (region, k) == ("soma", 0) else f"{region}[{k}]"
        parent = piece["parent"]
        try:
            section = Section(piece["name"], points=piece["points"], region=region,
                              parent=None if parent is None else parent["name"], parent_x=piece["parent_x"])
        except ModelError as err:
            raise ModelError(f"{path}: {err}") from None
        if max_segment_length is not None:
            section.nseg = max(1, math.ceil(section.length / max_segment_length))
        sections.append(section)
    return Morphology(sections)


def _read(path):
    """Points sorted by id: a list of (id, type, x, y, z, diameter, parent index or −1, line number)."""
    rows = {}
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
                raise ModelError(f"{path}:{line_number}: SWC fields must be numbers (id and type and parent integers)") from None
            if not radius > 0:
                raise ModelError(f"{path}:{line_number}: radius must be positive, got {radius:g}")
            if ident in rows:
                raise ModelError(f"{path}:{line_number}: point {ident} is defined twice (also on line {rows[ident][-1]})")
            if parent >= ident:
                raise ModelError(f"{path}:{line_number}: parent {parent} of point {ident} must have a smaller id")
            rows[ident] = (ident, kind, x, y, z, 2.0 * radius, parent, line_number)
    if not rows:
        raise ModelError(f"{path}: no points")
    ordered = sorted(rows.values())
    position = {row[0]: k for k, row in enumerate(ordered)}
    points = []
    for row in ordered:
        parent = row[6]
        if parent < 0:
            parent_index = -1
        elif parent in position:
            parent_index = position[parent]
        else:
            raise ModelError(f"{path}:{row[7]}: parent {parent} of point {row[0]} is not in the file")
        points.append(row[:6] + (parent_index, row[7]))
    roots = [p[7] for p in points if p[6] < 0]
    if len(roots) != 1:
        raise ModelError(f"{path}: one tree expected, but points on lines {', '.join(map(str, roots))} have no parent")
    return points


# Section ends are found as NEURON does: each point counts 100 per child, plus 1 for a child
# that does not follow it in the file or differs in type; a point continues its section only
# at exactly 100 (one adjacent child of its own type), and some rules force it to 100.
CONTINUES = 100


class _Import3dCut:
    """Id-ordered SWC points cut into sections (dicts of type, parent, parent_x, points) by Import3d's rules."""

    def __init__(self, points):
        self.n = len(points)
        self.kind = [p[1] for p in points]
        self.xyz = [p[2:5] for p in points]
        self.diameter = [p[5] for p in points]
        self.parent = [p[6] for p in points]
        self.marks, self.to_proximal = self._branch_marks()
        self.soma_children = [0] * self.n
        for i in range(1, self.n):
            if self.kind[i] == SOMA and self.kind[self.parent[i]] == SOMA:
                self.soma_children[self.parent[i]] += 1
        self.sphere = sum(k == SOMA for k in self.kind) == 3 and self._neuromorpho_soma()
        if self.sphere:
            self.parent[2] = 1  # the three points are one section, of which only the root is kept
        for i in range(self.n - 1):
            if (self.kind[i] == SOMA and self.kind[i + 1] == SOMA and self.parent[i + 1] == i
                    and not (i != 0 and self.soma_children[i] > 1)):
                self.marks[i] = CONTINUES

    def _branch_marks(self):
        kind, parent = self.kind, self.parent
        marks, to_proximal = [0] * self.n, [False] * self.n
        for i in range(1, self.n):
            p = parent[i]
            marks[p] += CONTINUES
            if p != i - 1:
                marks[p] += 1
                # A branch from the first point of a neurite wired to the soma (or from a non-soma
                # root) goes to that neurite's x = 0 rather than making a one-point section.
                if (p > 1 and kind[p] != SOMA and kind[parent[p]] == SOMA) or (p == 0 and kind[0] != SOMA):
                    to_proximal[i] = True
                    marks[p] = CONTINUES
            if kind[p] != kind[i]:
                marks[p] += 1
        return marks, to_proximal

    def _neuromorpho_soma(self):
        """The root and two children with its diameter, nothing attached to them, whose distances to it add up to it (1 %)."""
        if self.parent[1] != 0 or self.parent[2] != 0 or self.marks[1] != 0 or self.marks[2] != 0:
            return False
        d = self.diameter[0]
        if self.diameter[1] != d or self.diameter[2] != d:
            return False
        return abs((math.dist(self.xyz[1], self.xyz[0]) + math.dist(self.xyz[2], self.xyz[0])) / d - 1.0) < 0.01

    def sections(self):
        ends = [i for i in range(self.n) if self.marks[i] != CONTINUES]
        section_of, pieces, first = [0] * self.n, [], 0
        for last in ends:
            for i in range(first, last + 1):
                section_of[i] = len(pieces)
            pieces.append(self._root(first, last) if not pieces else self._branch(first, last, pieces[section_of[self.parent[first]]]))
            first = last + 1
        return _drop_zero_length(pieces)

    def _root(self, first, last):
        indices = [0] if self.sphere else list(range(first, last + 1))
        rows = [(*self.xyz[i], self.diameter[i]) for i in indices]
        if len(rows) == 1:
            (x, y, z, d), = rows
            rows = [(x - d / 2, y, z, d), (x, y, z, d), (x + d / 2, y, z, d)]
        return {"type": self.kind[first], "parent": None, "parent_x": 1.0, "points": rows, "first": first, "size": len(indices)}

    def _branch(self, first, last, above):
        at = self.parent[first]
        parent_x, wire = self._attachment(first, last - first + 1, above)
        neurite_on_soma = above["type"] == SOMA and self.kind[first] != SOMA
        rows = [(*self.xyz[at], self.diameter[first] if neurite_on_soma else self.diameter[at])]
        rows += [(*self.xyz[i], self.diameter[i]) for i in range(first, last + 1)]
        return {"type": self.kind[first], "parent": above, "parent_x": 0.0 if self.to_proximal[first] else parent_x,
                "points": rows[1:] if wire else rows, "first": first, "size": last - first + 1}

    def _attachment(self, first, own, above):
        """(parent_x, joined by a wire) of a section of ``own`` points starting at ``first`` on section ``above``."""
        at = self.parent[first]
        neurite_on_soma = above["type"] == SOMA and self.kind[first] != SOMA
        if above["parent"] is None:
            if neurite_on_soma and above["size"] == 1:
                return 0.5, own > 1
            if at == above["first"]:
                return 0.0, self.kind[first] != SOMA and self.soma_children[at] > 1
        if above["type"] == SOMA:
            if at < above["first"] + above["size"] - 1:
                return 0.5, neurite_on_soma and own > 1
            return 1.0, own > 1 and self.soma_children[at] > 1 and self.kind[first] != SOMA
        return 1.0, False


def _drop_zero_length(pieces):
    """Two-point sections whose points coincide are removed; their children take their place."""
    for k in range(len(pieces) - 1, 0, -1):
        piece = pieces[k]
        rows = piece["points"]
        if len(rows) == 2 and rows[0][:3] == rows[1][:3]:
            del pieces[k]
            for child in pieces[k:]:
                if child["parent"] is piece:
                    child["parent"], child["parent_x"] = piece["parent"], piece["parent_x"]
    return pieces
