"""Cells built from sections (cylinders or paths through 3-D points): morphology, SWC import, NEURON-style discretisation, biophysics."""

from .cell import Cell
from .layout import NodeLayout, build_layout
from .morphology import Morphology, Section
from .swc import load_swc

__all__ = ["Cell", "Morphology", "NodeLayout", "Section", "build_layout", "load_swc"]
