"""Discretisation of a morphology into nodes, as NEURON does it.

Each section of ``nseg`` segments contributes one node at every segment centre (with the
segment's membrane) and a zero-area node at its far end (x = 1); the root section also
gets a zero-area node at x = 0. A child's x = 0 is its parent's node at ``parent_x``.
Neighbouring nodes are joined by the axial conductance of the half-segments between them.
A one-section, one-segment cell reduces to a single node: its end nodes carry no membrane
and no current, so they always equal the centre voltage.

Node order is parents-first (Hines order), so the tree solve is O(n).
"""

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..units import axial_resistance_megaohm


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
        if (section, "nseg") not in self.index:
            raise ModelError(f"no section {section!r}; sections are {', '.join(sorted({s for s, _ in self.index}))}")
        if not 0.0 <= x <= 1.0:
            raise ModelError(f"location {section}({x}): x must lie in [0, 1]")
        if x == 0.0:
            return self.index[(section, 0.0)]
        if x == 1.0:
            return self.index[(section, 1.0)]
        nseg = self.index[(section, "nseg")]
        return self.index[(section, "first")] + min(int(x * nseg), nseg - 1)


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

    layout = None
    for section in sections:
        ra = section.ra if section.ra is not None else default_ra
        half = 1.0 / axial_resistance_megaohm(ra, section.length / (2 * section.nseg), section.diameter)
        if section.parent is None:
            start = add(-1, 0.0, 0.0, section, 0.0)
        else:
            layout = NodeLayout(np.array(parent), np.array(area), np.array(conductance), owner, np.array(xs), index)
            start = layout.node(section.parent, section.parent_x)
        index[(section.name, 0.0)] = start
        index[(section.name, "nseg")] = section.nseg
        previous = start
        for j in range(section.nseg):
            g = half if j == 0 else half / 2.0
            previous = add(previous, section.area / section.nseg, g, section, (j + 0.5) / section.nseg)
            if j == 0:
                index[(section.name, "first")] = previous
        index[(section.name, 1.0)] = add(previous, 0.0, half, section, 1.0)
    return NodeLayout(np.array(parent), np.array(area, dtype=float), np.array(conductance, dtype=float), owner, np.array(xs), index)
