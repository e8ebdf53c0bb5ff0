"""Error types. Every message names the offending field or quantity and the fix."""


class BrainFuseError(Exception):
    """Base class for all errors raised by BrainFuse."""


class ModelError(BrainFuseError, ValueError):
    """A model definition (channel, cell, circuit) is invalid."""


class ExpressionError(ModelError):
    """A user expression uses something outside the whitelist or is malformed."""


class ProjectError(BrainFuseError, ValueError):
    """A project file is malformed; `path` names the bad field (e.g. ``cells.soma.sections[0].diameter_um``)."""

    def __init__(self, path, message):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class SimulationUnstableError(BrainFuseError, FloatingPointError):
    """The simulation produced NaN/inf or a runaway voltage."""
