"""Learning with BrainFuse: neuron layers, fitting and the HH-vs-LIF experiments, with their data (``training.data``).

``layers``: HHLayer and LIFLayer, spiking ``torch.nn`` layers advanced by the generated gradient
kernels; ``surrogate``: their spike counts and surrogate gradient; ``fitting`` (with
``fit_parameters``, ``fit_targets``, ``transforms``, ``fit_report``): fitting a model's parameters
to traces and spike features; ``models`` and ``experiments``: the HH-vs-LIF experiments of a
project's "training" section (``brainfuse train``, the Train pane); ``data``: digits, corruptions,
CIFAR-10-C and SHD loaders, spike encodings and temporal tasks.
"""

from .experiments import TrainedModel, TrainingSpec, evaluate, run_experiment, train
from .fit_parameters import FitParameters
from .fit_report import write_report
from .fit_targets import Protocol, SpikeFeatures
from .fitting import Fit, FitResult
from .layers import HHLayer, LIFLayer
from .transforms import Bounded, LogBounded, Positive, Unbounded

__all__ = ["Bounded", "Fit", "FitParameters", "FitResult", "HHLayer", "LIFLayer", "LogBounded", "Positive", "Protocol",
           "SpikeFeatures", "TrainedModel", "TrainingSpec", "Unbounded", "evaluate", "run_experiment", "train",
           "write_report"]
