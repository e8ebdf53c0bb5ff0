"""Ready-made circuits for the circuit editor: the COBAHH E/I network and a small layered column.

A preset is a partial project (channels, cells, circuit, stimuli, recordings, run, layout).
Applying one replaces the document's circuit, stimuli, recordings, run settings and layout, and
adds the preset's channels and cells next to the document's own (renamed where a name is taken).
"""

import copy

from brainfuse_core.project.files import read_json

from ..state import PROJECTS_DIR
from .circuit_graph import merge_definitions

COBAHH = "COBAHH E/I network"
COLUMN = "Small layered column"
COBAHH_FILE = PROJECTS_DIR / "cobahh.json"
COBAHH_SCALES = {"100 % (4000 cells)": 1.0, "25 % (1000 cells)": 0.25, "10 % (400 cells)": 0.1}


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


# Connection probabilities of the column, pre → post, after Potjans & Diesmann (2014), "The cell-type
# specific cortical microcircuit: relating structure and activity in a full-scale spiking network model",
# Cereb. Cortex 24:785–806 (their connection probabilities), for the layers 2/3, 4 and 5. Their probabilities are for
# populations of thousands of cells; with tens of cells each here, they are raised (×4, at most 0.6)
# so that every cell still receives a few dozen local inputs.
COLUMN_SIZES = {"L23_E": 80, "L23_I": 20, "L4_E": 80, "L4_I": 20, "L5_E": 60, "L5_I": 15}
COLUMN_PROBABILITIES = {
    ("L23_E", "L23_E"): 0.101, ("L23_E", "L23_I"): 0.135, ("L23_I", "L23_E"): 0.169, ("L23_I", "L23_I"): 0.137,
    ("L4_E", "L4_E"): 0.050, ("L4_E", "L4_I"): 0.079, ("L4_I", "L4_E"): 0.135, ("L4_I", "L4_I"): 0.160,
    ("L5_E", "L5_E"): 0.083, ("L5_E", "L5_I"): 0.060, ("L5_I", "L5_E"): 0.373, ("L5_I", "L5_I"): 0.316,
    ("L4_E", "L23_E"): 0.044, ("L4_E", "L23_I"): 0.032, ("L23_E", "L5_E"): 0.100, ("L23_E", "L5_I"): 0.055,
}
COLUMN_SCALE = 4.0
EXCITATORY = {"kind": "exp", "tau": 5, "e_rev": 0}
INHIBITORY = {"kind": "exp", "tau": 10, "e_rev": -80}
EXCITATORY_WEIGHT, INHIBITORY_WEIGHT = 0.006, 0.067  # µS, as in COBAHH
COLUMN_LAYOUT = {"L23_E": [2.0, 7.0], "L23_I": [5.0, 7.0], "L4_E": [2.0, 4.5], "L4_I": [5.0, 4.5],
                 "L5_E": [2.0, 2.0], "L5_I": [5.0, 2.0], "thalamus": [8.5, 4.5], "background": [8.5, 7.0]}


def layered_column():
    """A small three-layer cortical column (L2/3, L4, L5; excitatory and inhibitory Traub-Miles cells of the
    COBAHH benchmark) wired in the pattern of Potjans & Diesmann (2014): strong local loops in every layer,
    the feed-forward path L4 → L2/3 → L5, and a Poisson thalamic input to L4 and background input to all."""
    cobahh_project = read_json(COBAHH_FILE)
    populations = {name: {"cell": "traub", "n": n, "threshold": -20,
                          "v_init": {"normal": {"mean": -65, "std": 5}, "seed": seed}}
                   for seed, (name, n) in enumerate(COLUMN_SIZES.items(), start=1)}
    populations["thalamus"] = {"poisson": {"n": 50, "rate_hz": 15, "seed": 101}}
    populations["background"] = {"poisson": {"n": 100, "rate_hz": 8, "seed": 102}}
    projections = []
    for (pre, post), p in COLUMN_PROBABILITIES.items():
        excitatory = pre.endswith("_E")
        projections.append(_projection(pre, post, min(0.6, round(p * COLUMN_SCALE, 3)), excitatory, len(projections)))
    for post in ("L4_E", "L4_I"):
        projections.append(_projection("thalamus", post, 0.2, True, len(projections)))
    for post in COLUMN_SIZES:
        projections.append(_projection("background", post, 0.1, True, len(projections)))
    return {
        "channels": cobahh_project["channels"], "cells": cobahh_project["cells"],
        "circuit": {"populations": populations, "projections": projections},
        "stimuli": [],
        "recordings": [{"population": name, "variable": "v", "cells": [0]} for name in ("L23_E", "L4_E", "L5_E")],
        "run": {**cobahh_project["run"], "duration": 300},
        "layout": {"populations": COLUMN_LAYOUT},
    }


def _projection(pre, post, p, excitatory, index):
    return {"pre": pre, "post": post, "synapse": dict(EXCITATORY if excitatory else INHIBITORY),
            "connect": {"rule": "fixed_probability", "p": p, "allow_self": False},
            "weight": EXCITATORY_WEIGHT if excitatory else INHIBITORY_WEIGHT, "delay": 1.0, "seed": 201 + index}


PRESETS = {COBAHH: cobahh, COLUMN: layered_column}


def apply_preset(doc, preset):
    """Replace the document's circuit (and what hangs on it) by ``preset``'s, adding its channels and cells."""
    preset = copy.deepcopy(preset)
    cell_names = merge_definitions(doc, preset["channels"], preset["cells"])
    for entry in preset["circuit"]["populations"].values():
        if "cell" in entry:
            entry["cell"] = cell_names[entry["cell"]]
    for key in ("circuit", "stimuli", "recordings", "run", "layout"):
        doc[key] = preset[key]
