"""Discretisation of a morphology into nodes, as NEURON does it.

Each section of ``nseg`` segments contributes one node at every segment centre (with the
segment's membrane) and a zero-area node at its far end (x = 1); the root section also
gets a zero-area node at x = 0. A child's x = 0 is its parent's node at ``parent_x``.
Neighbouring nodes are joined by the axial resistance of the half-segments between them.
A one-section, one-segment cell reduces to a single node: its end nodes carry no membrane
and no current, so they always equal the centre voltage.

For a cylinder every segment has area π d L / nseg and each half-segment the resistance of
a cylinder of length L / (2 nseg). For a section with 3-D points the integrals follow
NEURON's ``diam_from_list`` (src/nrnoc/treeset.cpp): the path is cut at the half-segment
boundaries (multiples of L / (2 nseg) of arc length), the diameter is interpolated linearly
in arc length at each cut, and over every piece between consecutive cuts and points the
frustum's lateral area π (r0 + r1) √(δ² + (r1 − r0)²) and resistance 4 Ra δ / (π d0 d1)
are summed into the half-segment it lies in.

Node order is parents-first (Hines order), so the tree solve is O(n).
"""

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..units import axial_resistance_megaohm, frustum_area_um2, frustum_resistance_megaohm


@dataclass
class NodeLayout:
    parent: np.ndarray          # (N,) int, −1 for the root
    area: np.ndarray            # (N,) µm² of membrane (0 at section ends)
    axial_conductance: np.ndarray  # (N,) µS to the parent (0 at the root)
    section_of: list            # (N,) section name owning each node
    x: np.ndarray               # (N,) position of each node along its section, 0..1
    index: dict                 # (section, x-key) → node for the named points

    @property
    def size(self):
        return len(self.parent)

    def node(self, section, x=0.5):
        """The node NEURON would use for ``section(x)``: an end node at x = 0 or 1, else the segment centre."""
        return _node(self.index, section, x)


def _node(index, section, x):
    if (section, "nseg") not in index:
        raise ModelError(f"no section {section!r}; sections are {', '.join(sorted({s for s, _ in index}))}")
    if not 0.0 <= x <= 1.0:
        raise ModelError(f"location {section}({x}): x must lie in [0, 1]")
    if x == 0.0:
        return index[(section, 0.0)]
    if x == 1.0:
        return index[(section, 1.0)]
    nseg = index[(section, "nseg")]
    return index[(section, "first")] + min(int(x * nseg), nseg - 1)


def segment_geometry(section, ra):
    """Per segment: membrane area (µm²), resistance of its left and of its right half (MΩ), as three lists."""
    n = section.nseg
    if section.points is None:
        half = axial_resistance_megaohm(ra, section.length / (2 * n), section.diameter)
        return [section.area / n] * n, [half] * n, [half] * n
    areas, resistances = _half_segment_integrals(section, ra)
    return ([areas[2 * j] + areas[2 * j + 1] for j in range(n)], resistances[0::2], resistances[1::2])


def _half_segment_integrals(section, ra):
    """Area (µm²) and axial resistance (MΩ) of each of the 2·nseg half-segments of a section with points."""
    arcs, diameters = section.arc_lengths(), [p[3] for p in section.points]
    last, halves = len(arcs) - 1, 2 * section.nseg
    step = arcs[-1] / halves
    areas, resistances = [0.0] * halves, [0.0] * halves
    j, s0, d0 = 0, arcs[0], diameters[0]
    for k in range(halves):
        end = arcs[-1] if k == halves - 1 else (k + 1) * step
        while True:
            following = j + 1
            if arcs[following] > end or following == last:
                span = arcs[following] - arcs[j]
                # NEURON treats points closer than 1e-10 µm as one: the cut takes the later diameter.
                fraction = 1.0 if span < 1e-10 else (end - arcs[j]) / span
                s1, d1, done = end, (1.0 - fraction) * diameters[j] + fraction * diameters[following], True
            else:
                s1, d1, done = arcs[following], diameters[following], False
            areas[k] += frustum_area_um2(s1 - s0, d0, d1)
            resistances[k] += frustum_resistance_megaohm(ra, s1 - s0, d0, d1)
            s0, d0 = s1, d1
            if done:
                break
            j = following
    return areas, resistances


def build_layout(morphology, default_ra):
    sections = morphology.ordered()
    if len(sections) == 1 and sections[0].nseg == 1:
        section = sections[0]
        index = {(section.name, 0.0): 0, (section.name, 1.0): 0, (section.name, "first"): 0, (section.name, "nseg"): 1}
        return NodeLayout(np.array([-1]), np.array([section.area]), np.zeros(1), [section.name], np.array([0.5]), index)

    parent, area, conductance, owner, xs, index = [], [], [], [], [], {}

    def add(parent_node, node_area, g, section, x):
        parent.append(parent_node)
        area.append(node_area)
        conductance.append(g)
        owner.append(section.name)
        xs.append(x)
        return len(parent) - 1

    for section in sections:
        ra = section.ra if section.ra is not None else default_ra
        areas, left, right = segment_geometry(section, ra)
        if section.parent is None:
            start = add(-1, 0.0, 0.0, section, 0.0)
        else:
            start = _node(index, section.parent, section.parent_x)
        index[(section.name, 0.0)] = start
        index[(section.name, "nseg")] = section.nseg
        previous, to_previous = start, 0.0
        for j in range(section.nseg):
            previous = add(previous, areas[j], 1.0 / (to_previous + left[j]), section, (j + 0.5) / section.nseg)
            to_previous = right[j]
            if j == 0:
                index[(section.name, "first")] = previous
        index[(section.name, 1.0)] = add(previous, 0.0, 1.0 / to_previous, section, 1.0)
    return NodeLayout(np.array(parent), np.array(area, dtype=float), np.array(conductance, dtype=float), owner, np.array(xs), index)
