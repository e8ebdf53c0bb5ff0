"""Ion channels: declarative definitions, curve forms, whitelisted expressions and the shipped library."""

from .channel import CalciumPool, Channel, Gate
from .curves import BellTau, Boltzmann, Constant, ExpLinearRate, ExpRate, ExpressionCurve, Hill, SigmoidRate, Tabulated, curve_from_dict
from .expressions import Expression
from .library import CHANNELS, calcium_pool, channel

__all__ = [
    "BellTau", "Boltzmann", "CHANNELS", "CalciumPool", "Channel", "Constant", "ExpLinearRate", "ExpRate", "Expression",
    "ExpressionCurve", "Gate", "Hill", "SigmoidRate", "Tabulated", "calcium_pool", "channel", "curve_from_dict",
]
