"""Learning with BrainFuse: neuron layers, fitting and the HH-vs-LIF experiments, with their data (``training.data``).

``layers``: HHLayer and LIFLayer, spiking ``torch.nn`` layers advanced by the generated gradient
kernels; ``surrogate``: their spike counts and surrogate gradient; ``data``: digits, corruptions,
CIFAR-10-C and SHD loaders, spike encodings and temporal tasks.
"""

from .layers import HHLayer, LIFLayer

__all__ = ["HHLayer", "LIFLayer"]
