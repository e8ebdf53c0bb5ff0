"""Chip pipeline: fixed-point quantization, Lava deployment, core mapping and power (see the chip issue).

So far: ``quantize`` (a model of one-compartment HH populations → a fixed-point deployment
``Artifact``; formats in ``fixed_point.Formats``, weights by ``quantize_weights``), ``simulate`` (the
bit-accurate NumPy reference) and ``run_lava`` (the same artifact in Lava, in its own Python 3.10
environment behind a process boundary). Both runs return a ``ChipResult``. Lava is never imported
here: ``lava_runner.py`` and ``lava_models/`` run only in ``.venv-lava``.

Then: chip profiles (``get_profile``: Loihi 2, Loihi 1, user-defined), ``map_network`` (cores and chips from
``NetworkStats``), ``estimate_power`` (watts and joules, low–typical–high), NIR export (``write_nir``,
``read_nir``), and ``deploy`` (all of it for a project: a ``Deployment``, what the CLI and the Deploy pane show).
``deploy_classifier`` runs a trained HH classifier's hidden layer on the chip reference (readout on
the host) and compares its test accuracy with the float model's.
"""

from .artifact import Artifact, ArtifactError
from .classifier import ClassifierDeployment, deploy_classifier
from .deploy import STAGES, Deployment, deploy
from .fixed_point import Formats
from .lava_backend import LavaBackendError, lava_available, run_lava
from .mapping import Mapping, NetworkStats, map_network
from .nir_export import read_nir, to_nir, write_nir
from .power import PowerEstimate, estimate_power
from .profiles import PROFILES, ChipProfile, get_profile, profile_from_dict
from .quantize import quantize
from .reference import simulate
from .result import ChipResult
from .weights import QuantizedWeights, quantize_weights

__all__ = ["PROFILES", "STAGES", "Artifact", "ArtifactError", "ChipProfile", "ChipResult", "ClassifierDeployment",
           "Deployment", "Formats", "deploy_classifier",
           "LavaBackendError", "Mapping", "NetworkStats", "PowerEstimate", "QuantizedWeights", "deploy", "estimate_power",
           "get_profile", "lava_available", "map_network", "profile_from_dict", "quantize", "quantize_weights", "read_nir",
           "run_lava", "simulate", "to_nir", "write_nir"]
