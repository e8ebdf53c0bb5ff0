"""Where the Cell builder draws each cylinder, and what a point on the schematic lies on.

Pure geometry on the document's ``morphology`` dict (µm; no Panel, no Bokeh). A section is
drawn as a polyline from where it leaves its parent (``parent_x`` along the parent's drawn
path): along its own ``points`` (from an SWC file; x and y of each point) when it has them,
otherwise as a straight cylinder of its ``length``. A straight cylinder's direction is the one
the user dragged it out in (``angles``, kept by the editor), or else it fans out from its
parent so that siblings do not overlap.
"""

import math
from dataclasses import dataclass

import numpy as np

FAN = math.pi * 0.8  # rad: the spread of several children leaving one point


@dataclass
class Drawn:
    """One section on the schematic: its polyline ``xs``, ``ys`` (µm) and each point's fraction of the path (0..1)."""

    xs: list
    ys: list
    fractions: list

    def at(self, fraction):
        """(x, y) at ``fraction`` (0..1) of the drawn path."""
        return float(np.interp(fraction, self.fractions, self.xs)), float(np.interp(fraction, self.fractions, self.ys))

    @property
    def length(self):
        """The drawn path's length (µm)."""
        return float(np.hypot(np.diff(self.xs), np.diff(self.ys)).sum())

    def direction(self):
        """The angle (rad) from the first point to the last."""
        return math.atan2(self.ys[-1] - self.ys[0], self.xs[-1] - self.xs[0])


def children_of(morphology):
    """{section: [children in document order]} and the root."""
    children = {name: [] for name in morphology}
    root = None
    for name, section in morphology.items():
        parent = section.get("parent")
        if parent in morphology:
            children[parent].append(name)
        elif root is None:
            root = name
    return children, root


def layout(morphology, angles=None):
    """{section: Drawn} for every section reachable from the root."""
    angles = angles or {}
    children, root = children_of(morphology)
    drawn = {}

    def place(name, start, offset, angle):
        section = morphology[name]
        points = _points(section)
        if points is not None:
            if offset is None:  # a traced section hanging off a straight one starts where it is attached
                offset = (start[0] - points[0][0], start[1] - points[0][1])
            xs = [x + offset[0] for x, _ in points]
            ys = [y + offset[1] for _, y in points]
        else:
            angle = angles.get(name, angle)
            xs = [start[0], start[0] + section["length"] * math.cos(angle)]
            ys = [start[1], start[1] + section["length"] * math.sin(angle)]
            offset = None
        drawn[name] = Drawn(xs, ys, _fractions(xs, ys))
        heading = drawn[name].direction() if len(xs) > 1 and (xs[0], ys[0]) != (xs[-1], ys[-1]) else angle
        kids = children[name]
        where = {k: morphology[k].get("parent_x", 1.0) for k in kids}
        groups = (([k for k in kids if where[k] == 0.0], heading + math.pi),
                  ([k for k in kids if 0.0 < where[k] < 1.0], heading + math.pi / 2),
                  ([k for k in kids if where[k] == 1.0], heading))
        for group, base in groups:
            for k, child in enumerate(group):
                spread = 0.0 if len(group) == 1 else (k / (len(group) - 1) - 0.5) * FAN
                place(child, drawn[name].at(morphology[child].get("parent_x", 1.0)), offset, base + spread)

    if root is not None:
        place(root, (0.0, 0.0), (0.0, 0.0) if _points(morphology[root]) is not None else None, 0.0)
    return drawn


def section_ends(morphology, angles=None):
    """(x0, y0, x1, y1) per section: where each drawn section starts and ends."""
    return {name: (d.xs[0], d.ys[0], d.xs[-1], d.ys[-1]) for name, d in layout(morphology, angles).items()}


def outline(drawn, diameter):
    """The cylinder's outline (xs, ys) at its true ``diameter`` (µm): the path offset by ±radius."""
    xs, ys = np.asarray(drawn.xs, float), np.asarray(drawn.ys, float)
    if len(xs) < 2:
        xs, ys = np.array([xs[0] - diameter / 2, xs[0] + diameter / 2]), np.array([ys[0], ys[0]])
    dx, dy = np.gradient(xs), np.gradient(ys)
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    nx, ny = -dy / norm * diameter / 2, dx / norm * diameter / 2
    return list(np.concatenate([xs + nx, (xs - nx)[::-1]])), list(np.concatenate([ys + ny, (ys - ny)[::-1]]))


def nearest(drawn, x, y):
    """(section, fraction along it, distance µm) of the drawn section closest to (x, y), or None.

    Where sections meet, the one whose far end is there wins (its parent's end and its child's start
    are the same point of the cable, and "the end of this section" is what a user points at)."""
    best = None
    for name, d in drawn.items():
        fraction, distance = _project(d, x, y)
        key = (round(distance, 9), -fraction)
        if best is None or key < best[0]:
            best = (key, name, fraction, distance)
    return None if best is None else best[1:]


def bounds(drawn, morphology, margin=0.25, minimum=500.0):
    """(x0, x1, y0, y1) around every drawn cylinder with ``margin`` of the cell's size on each side (room
    to drag new cylinders out), and at least ``minimum`` µm across, so a lone soma leaves room to grow."""
    xs = [x for d in drawn.values() for x in d.xs]
    ys = [y for d in drawn.values() for y in d.ys]
    if not xs:
        return -minimum / 2, minimum / 2, -minimum / 2, minimum / 2
    pad = max(morphology[name]["diameter"] for name in drawn) / 2
    x0, x1, y0, y1 = min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad
    size = max(x1 - x0, y1 - y0)
    half = max(size * (0.5 + margin), minimum / 2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - half, cx + half, cy - half, cy + half


def fit_aspect(box, width, height):
    """``box`` (x0, x1, y0, y1) grown on one axis so that one µm is as many pixels across as up."""
    x0, x1, y0, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    span_x, span_y = x1 - x0, y1 - y0
    if span_x / width > span_y / height:
        span_y = span_x * height / width
    else:
        span_x = span_y * width / height
    return cx - span_x / 2, cx + span_x / 2, cy - span_y / 2, cy + span_y / 2


def path_to(morphology, tip):
    """The sections from the root to ``tip``, root first."""
    path = [tip]
    while morphology[path[-1]].get("parent") in morphology:
        path.append(morphology[path[-1]]["parent"])
    return path[::-1]


def tips(morphology):
    """Sections without children (the ends a space–time path can run to), in document order."""
    children, _ = children_of(morphology)
    return [name for name, kids in children.items() if not kids]


def path_nodes(layout_nodes, morphology, tip):
    """(node indices, distances µm) along the cable from the root's start (x = 0) to ``tip``'s far end.

    ``layout_nodes`` is the core's NodeLayout of the cell. Each section on the path contributes its
    segment centres up to where the next section of the path leaves it; the tip's far end (x = 1)
    closes the path."""
    path = path_to(morphology, tip)
    nodes, distances, start = [], [], 0.0
    for k, name in enumerate(path):
        section = morphology[name]
        nseg, length = int(section.get("nseg", 1)), float(section["length"])
        until = morphology[path[k + 1]].get("parent_x", 1.0) if k + 1 < len(path) else 1.0
        for j in range(nseg):
            x = (j + 0.5) / nseg
            if x <= until or k + 1 == len(path):
                nodes.append(layout_nodes.node(name, x))
                distances.append(start + x * length)
        start += until * length
    nodes.append(layout_nodes.node(tip, 1.0))
    distances.append(start)
    return nodes, distances


def segment_pieces(drawn, morphology, layout_nodes):
    """The schematic cut into one piece per segment, for a shape plot: (xs, ys, node, diameter) each."""
    pieces = []
    for name, d in drawn.items():
        nseg = int(morphology[name].get("nseg", 1))
        for j in range(nseg):
            a, b = j / nseg, (j + 1) / nseg
            inside = [k for k, f in enumerate(d.fractions) if a < f < b]
            xs = [d.at(a)[0]] + [d.xs[k] for k in inside] + [d.at(b)[0]]
            ys = [d.at(a)[1]] + [d.ys[k] for k in inside] + [d.at(b)[1]]
            pieces.append((xs, ys, layout_nodes.node(name, (j + 0.5) / nseg), morphology[name]["diameter"]))
    return pieces


def _points(section):
    """The (x, y) of a section's traced points, or None when it has fewer than two."""
    points = section.get("points")
    if not points or len(points) < 2:
        return None
    return [(float(p[0]), float(p[1])) for p in points]


def _fractions(xs, ys):
    steps = np.hypot(np.diff(xs), np.diff(ys))
    total = float(steps.sum())
    if total == 0:
        return list(np.linspace(0.0, 1.0, len(xs)))
    return [0.0] + list(np.cumsum(steps) / total)


def _project(drawn, x, y):
    """(fraction, distance) of the point of ``drawn`` closest to (x, y)."""
    best = (0.0, math.inf)
    for k in range(len(drawn.xs) - 1):
        ax, ay, bx, by = drawn.xs[k], drawn.ys[k], drawn.xs[k + 1], drawn.ys[k + 1]
        length2 = (bx - ax) ** 2 + (by - ay) ** 2
        t = 0.0 if length2 == 0 else min(1.0, max(0.0, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length2))
        distance = math.hypot(ax + t * (bx - ax) - x, ay + t * (by - ay) - y)
        if distance < best[1]:
            f0, f1 = drawn.fractions[k], drawn.fractions[k + 1]
            best = (f0 + t * (f1 - f0), distance)
    if len(drawn.xs) == 1:
        best = (0.0, math.hypot(drawn.xs[0] - x, drawn.ys[0] - y))
    return best
