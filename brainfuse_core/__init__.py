"""BrainFuse core: differentiable biophysical neuron simulation in PyTorch.

Channels (``channels``), cells built from cylinders (``cells``), circuits (``networks``),
solvers (``solvers``), stimuli, recording and the simulation loop. Units follow NEURON:
mV, ms, µm, µF/cm², S/cm², mA/cm², nA, µS, Ω·cm.
"""

import os

# Compiled kernels and torch share the cores: torch's idle OpenMP workers would otherwise spin after
# each operation and slow the kernel that follows (by a third on 2 cores). Only effective when this
# package is imported before torch; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cells import Cell, Morphology, Section, load_swc
from .channels import CHANNELS, CalciumPool, Channel, Gate, calcium_pool, channel
from .errors import BrainFuseError, ExpressionError, ModelError, ProjectError, SimulationUnstableError
from .networks import (AllToAll, Exp2Synapse, ExpSynapse, Explicit, FixedInDegree, FixedProbability, Network, OneToOne,
                       PoissonSource, Population, Projection, SpikeTrainSource)
from .recording import Probe, Result
from .simulation import ChunkReport, RunCancelled, Simulation, simulate
from .spikes import spike_times_from_trace
from .stimuli import IClamp, NoisyClamp, PulseTrain, VClamp, Waveform

__version__ = "0.1.0"
