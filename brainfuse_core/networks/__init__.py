"""Circuits: populations of identical cells, spike sources, connection rules, synapses, projections."""

from .connectivity import AllToAll, Explicit, FixedInDegree, FixedProbability, OneToOne
from .network import Network
from .population import PoissonSource, Population, SpikeTrainSource
from .projection import Projection
from .synapses import Exp2Synapse, ExpSynapse

__all__ = ["AllToAll", "Exp2Synapse", "ExpSynapse", "Explicit", "FixedInDegree", "FixedProbability", "Network", "OneToOne",
           "PoissonSource", "Population", "Projection", "SpikeTrainSource"]
