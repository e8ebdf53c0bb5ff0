"""Learning with BrainFuse: neuron layers, fitting and the HH-vs-LIF experiments, with their data (``training.data``)."""
