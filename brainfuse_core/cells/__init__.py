"""Cells built from cylinders: morphology, SWC import, NEURON-style discretisation, biophysics."""

from .cell import Cell
from .layout import NodeLayout, build_layout
from .morphology import Morphology, Section, load_swc

__all__ = ["Cell", "Morphology", "NodeLayout", "Section", "build_layout", "load_swc"]
