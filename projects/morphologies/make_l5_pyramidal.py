"""Write the L5-pyramidal-like example: ``l5_pyramidal.swc`` (next to this script) and ``../l5_pyramidal.json``.

The morphology is made up, deterministically (no random numbers, no downloads), with the
proportions of a thick-tufted layer 5 pyramidal cell: a 3-point soma of radius 10 µm
(NeuroMorpho's convention), an apical trunk of 740 µm tapering from 4 to 1.6 µm with six
oblique branches and a three-way tuft that forks again, five basal dendrites that fork
once, and an axon (initial segment, main axon, one collateral). Points are about 10–15 µm
apart. The project reads the SWC with ``load_swc`` (as NEURON's Import3d would) and inlines
the sections with their points, nseg odd with segments of at most 20 µm.

Biophysics (NEURON's ``hh`` and ``pas``, so the cell can be run in NEURON unchanged):
soma hh at its defaults; axon hh with gNa 0.25, gK 0.05 S/cm²; apical dendrites weakly
active (gNa 0.012, gK 0.0036 S/cm²) and passive (3e-5 S/cm², −65 mV) like the basal
ones; cm 1 µF/cm², Ra 100 Ω·cm, 6.3 °C. A 1 nA step into the soma from 5 to 105 ms.

Run from the repository root: ``.venv/bin/python projects/morphologies/make_l5_pyramidal.py``.
"""

import math
from pathlib import Path

from brainfuse_core.cells import load_swc
from brainfuse_core.project import Project

HERE = Path(__file__).resolve().parent
SWC = HERE / "l5_pyramidal.swc"
PROJECT = HERE.parent / "l5_pyramidal.json"
SOMA, AXON, BASAL, APICAL = 1, 2, 3, 4
SOMA_RADIUS_UM = 10.0
MAX_SEGMENT_UM = 20.0


class Tree:
    """SWC rows (id, type, x, y, z, radius, parent) built neurite by neurite."""

    def __init__(self):
        self.rows = []

    def point(self, kind, xyz, diameter, parent):
        self.rows.append((len(self.rows) + 1, kind, *xyz, diameter / 2.0, parent))
        return len(self.rows)

    def neurite(self, kind, parent, start, direction, length, d0, d1, step=12.0, wiggle=1.5, phase=0.0):
        """Points from ``start`` along ``direction`` for ``length`` µm, diameter d0 → d1, with a gentle
        sideways sine wiggle (µm) so the path is not straight; returns their ids."""
        unit = _unit(direction)
        side = _unit(_cross(unit, (0.0, 0.0, 1.0)) if abs(unit[2]) < 0.9 else _cross(unit, (1.0, 0.0, 0.0)))
        n = max(2, round(length / step))
        ids = []
        for k in range(n + 1):
            s = length * k / n
            offset = wiggle * math.sin(2.0 * math.pi * s / 80.0 + phase) if k else 0.0
            xyz = tuple(round(c + s * u + offset * v, 2) for c, u, v in zip(start, unit, side))
            ids.append(self.point(kind, xyz, round(d0 + (d1 - d0) * s / length, 3), ids[-1] if ids else parent))
        return ids

    def position(self, ident):
        return self.rows[ident - 1][2:5]

    def text(self):
        header = "# L5-pyramidal-like cell, made up by make_l5_pyramidal.py (deterministic); µm\n# id type x y z radius parent\n"
        return header + "".join(f"{i} {t} {x:g} {y:g} {z:g} {r:g} {p}\n" for i, t, x, y, z, r, p in self.rows)


def _unit(v):
    norm = math.sqrt(sum(c * c for c in v))
    return tuple(c / norm for c in v)


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _on_soma(direction):
    return tuple(SOMA_RADIUS_UM * c for c in _unit(direction))


def build_tree():
    tree = Tree()
    root = tree.point(SOMA, (0.0, 0.0, 0.0), 2 * SOMA_RADIUS_UM, -1)
    tree.point(SOMA, (0.0, -SOMA_RADIUS_UM, 0.0), 2 * SOMA_RADIUS_UM, root)
    tree.point(SOMA, (0.0, SOMA_RADIUS_UM, 0.0), 2 * SOMA_RADIUS_UM, root)

    trunk = tree.neurite(APICAL, root, (0.0, SOMA_RADIUS_UM, 0.0), (0.0, 1.0, 0.0), 740.0, 4.0, 1.6, step=15.0, wiggle=2.0)
    # Obliques: (trunk height µm, direction, length µm, fork after this fraction or None)
    obliques = [(60, (1.0, 0.9, 0.2), 150, None), (130, (-1.0, 0.8, -0.3), 170, 0.6), (200, (0.8, 1.0, -0.5), 160, None),
                (280, (-0.9, 1.0, 0.4), 140, 0.5), (360, (0.6, 1.0, 0.8), 130, None), (450, (-0.7, 1.0, -0.6), 120, None)]
    for k, (height, direction, length, fork) in enumerate(obliques):
        at = min(trunk, key=lambda i: abs(tree.position(i)[1] - SOMA_RADIUS_UM - height))
        ids = tree.neurite(APICAL, at, tree.position(at), direction, length, 1.0, 0.5, step=12.0, phase=k)
        if fork is not None:
            branch = ids[round(fork * (len(ids) - 1))]
            tree.neurite(APICAL, branch, tree.position(branch), (direction[0] * 1.5, 0.4, -direction[2]), 80.0, 0.6, 0.4,
                         step=10.0, phase=k + 0.5)
    nexus = trunk[-1]
    for k, (direction, length) in enumerate((((-0.6, 0.8, 0.1), 220.0), ((0.1, 1.0, -0.3), 260.0), ((0.7, 0.7, 0.2), 230.0))):
        ids = tree.neurite(APICAL, nexus, tree.position(nexus), direction, length, 1.4, 0.8, step=15.0, phase=2 * k)
        end = ids[-1]
        for turn in (-0.5, 0.5):
            tree.neurite(APICAL, end, tree.position(end), (direction[0] + turn, direction[1], direction[2] - turn), 130.0,
                         0.7, 0.4, step=13.0, phase=k + turn)

    basal = [((-1.0, -0.4, 0.3), 60.0), ((-0.5, -1.0, -0.5), 70.0), ((0.4, -1.0, 0.6), 55.0), ((1.0, -0.3, -0.2), 65.0),
             ((0.2, 0.1, 1.0), 50.0)]
    for k, (direction, length) in enumerate(basal):
        ids = tree.neurite(BASAL, root, _on_soma(direction), direction, length, 1.6, 1.1, step=10.0, phase=k)
        end = ids[-1]
        for turn, daughter in ((-0.4, 120.0), (0.4, 140.0)):
            tree.neurite(BASAL, end, tree.position(end), (direction[0] + turn, direction[1] - abs(turn), direction[2] + turn),
                         daughter, 0.9, 0.4, step=12.0, phase=k - turn)

    initial = tree.neurite(AXON, root, (0.0, -SOMA_RADIUS_UM, 0.0), (0.0, -1.0, 0.0), 40.0, 1.4, 1.0, step=8.0, wiggle=0.0)
    main = tree.neurite(AXON, initial[-1], tree.position(initial[-1]), (0.05, -1.0, 0.0), 500.0, 1.0, 0.8, step=20.0, wiggle=3.0)
    branch = main[10]
    tree.neurite(AXON, branch, tree.position(branch), (1.0, -0.6, 0.3), 150.0, 0.5, 0.4, step=15.0, phase=1.0)
    return tree


def odd_nseg(length):
    n = max(1, math.ceil(length / MAX_SEGMENT_UM))
    return n if n % 2 else n + 1


def recording_sites(morphology):
    """(label, section, x): the soma, the trunk about 400 µm up, a tuft tip, a basal tip, the axon's far end."""
    sections = morphology.sections

    def nearest(region, target):
        best = None
        for name, section in sections.items():
            if section.region != region:
                continue
            arcs = section.arc_lengths()
            for arc, point in zip(arcs, section.points):
                distance = math.dist(point[:3], target)
                if best is None or distance < best[0]:
                    best = (distance, name, round(arc / section.length, 3))
        return best[1], best[2]

    tips = {region: max((n for n, s in sections.items() if s.region == region and not any(c.parent == n for c in sections.values())),
                        key=lambda n: math.dist(sections[n].points[-1][:3], (0.0, 0.0, 0.0)))
            for region in ("apical", "basal", "axon")}
    return [("soma", "soma", 0.5), ("trunk_400um", *nearest("apical", (0.0, 410.0, 0.0))), ("tuft_tip", tips["apical"], 1.0),
            ("basal_tip", tips["basal"], 1.0), ("axon_end", tips["axon"], 1.0)]


def project(morphology):
    for section in morphology.sections.values():
        section.nseg = odd_nseg(section.length)
    insert = [
        {"channel": "hh_na", "where": "soma"}, {"channel": "hh_k", "where": "soma"}, {"channel": "leak", "where": ["soma", "axon"]},
        {"channel": "hh_na", "where": "axon", "gbar": 0.25}, {"channel": "hh_k", "where": "axon", "gbar": 0.05},
        {"channel": "hh_na", "where": "apical", "gbar": 0.012}, {"channel": "hh_k", "where": "apical", "gbar": 0.0036},
        {"channel": "pas", "where": ["basal", "apical"]},
    ]
    return {
        "format": "brainfuse-project",
        "version": 1,
        "description": ("L5-pyramidal-like cell from projects/morphologies/l5_pyramidal.swc (made by make_l5_pyramidal.py; "
                        "read as NEURON's Import3d reads it): hh soma and axon, weakly active apical and passive basal "
                        "dendrites; 1 nA into the soma from 5 to 105 ms, 6.3 °C."),
        "channels": {
            "hh_na": {"library": "hh_na", "gbar": 0.12},
            "hh_k": {"library": "hh_k", "gbar": 0.036},
            "leak": {"library": "leak", "gbar": 0.0003, "reversal": -54.3},
            "pas": {"library": "leak", "gbar": 3e-05, "reversal": -65.0},
        },
        "cells": {"l5": {"morphology": morphology.to_dict(), "cm": 1.0, "ra": 100.0, "v_init": -65.0, "insert": insert}},
        "circuit": {"populations": {"l5": {"cell": "l5", "n": 1, "threshold": -20.0}}},
        "stimuli": [{"type": "iclamp", "population": "l5", "section": "soma", "x": 0.5, "amp": 1.0, "delay": 5.0, "dur": 100.0}],
        "recordings": [{"population": "l5", "variable": "v", "section": section, "x": x, "name": label}
                       for label, section, x in recording_sites(morphology)],
        "run": {"duration": 120.0, "dt": 0.025, "celsius": 6.3, "method": "backward_euler", "dtype": "float64", "batch": 1},
    }


def main():
    SWC.write_text(build_tree().text())
    Project(project(load_swc(SWC))).save(PROJECT)
    print(f"wrote {SWC} and {PROJECT}")


if __name__ == "__main__":
    main()
