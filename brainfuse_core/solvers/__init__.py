"""Numerical solvers: the O(n) tree (Hines) solve with its adjoint, and the membrane time step."""

from .hines import tree_solve
from .membrane import METHODS, CompiledCell

__all__ = ["CompiledCell", "METHODS", "tree_solve"]
