"""The live single-cell preview: a current step into one compartment with the channels of the cell
the edited channel belongs to, re-simulated by the core after every accepted edit.

The compartment is the root node of that cell (the first cell that inserts the channel, or the
project's first cell with the channel added at its own gbar), with that node's densities, cm,
reversal potentials and v_init. It runs through the core's generated kernel, whose numbers are
run-time arguments: a dragged curve re-runs the compiled code without compiling anything new.

Units: µA/cm² for the step (a density, so the area does not matter), mV, ms.
"""

import copy
from dataclasses import dataclass

import numpy as np

from brainfuse_core.cells import Cell
from brainfuse_core.errors import BrainFuseError
from brainfuse_core.project.build import build_channels
from brainfuse_core.simulation import Simulation
from brainfuse_core.stimuli import IClamp

from .channel_document import celsius, home_cell

PREVIEW_AREA = 31415.9  # µm², L = diam = 100 µm; any area gives the same voltage under a density step


@dataclass
class StepProtocol:
    """A current step of ``amp`` µA/cm² from ``delay`` for ``dur`` ms, simulated for ``tstop`` ms with step ``dt``."""

    amp: float = 10.0
    delay: float = 5.0
    dur: float = 40.0
    tstop: float = 50.0
    dt: float = 0.025


@dataclass
class Membrane:
    """The preview compartment: a core one-node ``Cell`` taken from cell ``cell`` of the project, at ``celsius`` °C."""

    cell: str
    model: Cell
    celsius: float

    @property
    def channel_names(self):
        return list(self.model.channels)


def preview_membrane(doc, name):
    """The root compartment of the first cell that inserts channel ``name`` (or of the project's first
    cell, with ``name`` added at its own gbar), as a one-node core Cell built from the document."""
    channels = build_channels(doc.get("channels", {}))
    cell_name = home_cell(doc, name) or next(iter(doc["cells"]))
    cell = Cell.from_dict(cell_name, doc["cells"][cell_name], channels)
    if name not in cell.channels:
        cell.insert(channels[name])
    node = cell.location()
    point = Cell.point(area=PREVIEW_AREA, cm=float(cell.capacitance_density()[node]), v_init=float(cell.v_init),
                       reversals=dict(cell.reversals))
    for key, channel in cell.channels.items():
        point.insert(copy.copy(channel), gbar=float(cell.density(key)[node]))
    return Membrane(cell_name, point, celsius(doc))


def simulate_step(membrane, protocol=StepProtocol()):
    """(t ms, v mV) of the membrane under the step, one sample per step from t = 0."""
    stimulus = IClamp(protocol.amp, delay=protocol.delay, dur=protocol.dur, density=True)
    try:
        result = Simulation(membrane.model, [stimulus], dt=protocol.dt, celsius=membrane.celsius).run(protocol.tstop)
    except BrainFuseError as err:
        raise ValueError(f"the preview could not run: {err}") from None
    v = result.traces["cell.v"][0, 0].numpy()
    return np.arange(len(v)) * protocol.dt, v
