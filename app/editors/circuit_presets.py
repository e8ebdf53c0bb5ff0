"""Ready-made circuits for the circuit editor: the COBAHH E/I network and the Potjans–Diesmann column.

A preset is a partial project (channels, cells, circuit, stimuli, recordings, run, layout).
Applying one replaces the document's circuit, stimuli, recordings, run settings and layout, and
adds the preset's channels and cells next to the document's own (renamed where a name is taken).
"""

import copy

from brainfuse_core.networks import potjans_diesmann as pd_column
from brainfuse_core.project.files import read_json

from ..state import PROJECTS_DIR
from .circuit_graph import merge_definitions

COBAHH = "COBAHH E/I network"
COLUMN = "Potjans-Diesmann column"
COBAHH_FILE = PROJECTS_DIR / "cobahh.json"
COBAHH_SCALES = {"100 % (4000 cells)": 1.0, "25 % (1000 cells)": 0.25, "10 % (400 cells)": 0.1}
# From this size on a scale's label warns that the column runs slowly (minutes per simulated second).
SLOW_PERCENT = 25


def cobahh(scale=1.0):
    """The COBAHH benchmark of ``projects/cobahh.json`` (Brette et al. 2007) with ``scale`` times as many
    cells; the connection probability grows by 1/scale so each cell keeps its number of inputs."""
    project = read_json(COBAHH_FILE)
    populations = project["circuit"]["populations"]
    for entry in populations.values():
        entry["n"] = max(1, round(entry["n"] * scale))
    for projection in project["circuit"]["projections"]:
        connect = projection["connect"]
        connect["p"] = min(1.0, round(connect["p"] / scale, 6))
    return {
        "channels": project["channels"], "cells": project["cells"], "circuit": project["circuit"],
        "stimuli": project.get("stimuli", []), "recordings": project.get("recordings", []), "run": project["run"],
        "layout": {"populations": {"E": [2.0, 4.0], "I": [7.0, 4.0]}},
    }


def potjans_diesmann(scale=0.05):
    """The Potjans–Diesmann microcircuit with HH point neurons (``brainfuse_core.networks.potjans_diesmann``)
    at ``scale`` (0.01–1), one row of populations per layer."""
    project = pd_column.project(scale)
    return {key: project[key] for key in ("channels", "cells", "circuit", "stimuli", "recordings", "run", "layout")}


PD_SCALES = {f"{percent:g} % ({sum(pd_column.scaled_sizes(percent / 100)):,} cells{', slow' if percent >= SLOW_PERCENT else ''})":
             percent / 100 for percent in (1, 2, 5, 10, 25, 50, 100)}
PRESETS = {COBAHH: cobahh, COLUMN: potjans_diesmann}
SCALES = {COBAHH: COBAHH_SCALES, COLUMN: PD_SCALES}
DEFAULT_SCALE = {COBAHH: "10 % (400 cells)", COLUMN: next(label for label, s in PD_SCALES.items() if s == 0.05)}


def make_preset(name, label):
    """The preset ``name`` at the size its scale menu calls ``label``."""
    return PRESETS[name](SCALES[name][label])


def apply_preset(doc, preset):
    """Replace the document's circuit (and what hangs on it) by ``preset``'s, adding its channels and cells."""
    preset = copy.deepcopy(preset)
    cell_names = merge_definitions(doc, preset["channels"], preset["cells"])
    for entry in preset["circuit"]["populations"].values():
        if "cell" in entry:
            entry["cell"] = cell_names[entry["cell"]]
    for key in ("circuit", "stimuli", "recordings", "run", "layout"):
        doc[key] = preset[key]
