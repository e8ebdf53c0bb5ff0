"""BrainFuse: differentiable biophysical neuron simulation."""
