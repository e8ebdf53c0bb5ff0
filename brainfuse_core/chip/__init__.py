"""Chip pipeline: fixed-point quantization, Lava deployment, core mapping and power (see the chip issue).

So far: ``quantize`` (a model of one-compartment HH populations → a fixed-point deployment
``Artifact``; formats in ``fixed_point.Formats``, weights by ``quantize_weights``), ``simulate`` (the
bit-accurate NumPy reference) and ``run_lava`` (the same artifact in Lava, in its own Python 3.10
environment behind a process boundary). Both runs return a ``ChipResult``. Lava is never imported
here: ``lava_runner.py`` and ``lava_models/`` run only in ``.venv-lava``.
"""

from .artifact import Artifact, ArtifactError
from .fixed_point import Formats
from .lava_backend import LavaBackendError, lava_available, run_lava
from .quantize import quantize
from .reference import simulate
from .result import ChipResult
from .weights import QuantizedWeights, quantize_weights

__all__ = ["Artifact", "ArtifactError", "ChipResult", "Formats", "LavaBackendError", "QuantizedWeights", "lava_available",
           "quantize", "quantize_weights", "run_lava", "simulate"]
