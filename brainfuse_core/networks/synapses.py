"""Conductance-based synapse kinetics. Conductances in µS, time constants in ms, reversal in mV.

A synapse type keeps per-post-site state and returns the conductance g(t); the post
current is g · (v − e_rev). A presynaptic spike of weight w adds w to the state so that
the conductance peaks at w (exponential: jumps to w; double exponential: normalised peak).
"""

import math

import torch

from ..errors import ModelError


class ExpSynapse:
    kind = "exp"

    def __init__(self, tau=5.0, e_rev=0.0):
        if not tau > 0:
            raise ModelError(f"exp synapse: tau must be positive (ms), got {tau!r}")
        self.tau, self.e_rev = tau, e_rev

    n_states = 1

    def initial_states(self, zero, conductance):
        return [zero if conductance is None else conductance]

    def conductance(self, states):
        return states[0]

    def decay(self, states, dt):
        return [states[0] * _decay(dt, self.tau)]

    def receive(self, states, arrivals):
        return [states[0] + arrivals]

    def to_dict(self):
        return {"kind": self.kind, "tau": self.tau, "e_rev": self.e_rev}


class Exp2Synapse:
    """Double exponential, as NEURON's Exp2Syn: g = A·(e^(−t/τ_decay) − e^(−t/τ_rise)), peak = weight."""

    kind = "exp2"

    def __init__(self, tau_rise=0.5, tau_decay=5.0, e_rev=0.0):
        if not 0 < tau_rise < tau_decay:
            raise ModelError(f"exp2 synapse: need 0 < tau_rise < tau_decay (ms), got {tau_rise!r}, {tau_decay!r}")
        self.tau_rise, self.tau_decay, self.e_rev = tau_rise, tau_decay, e_rev
        t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)
        self.factor = 1.0 / (math.exp(-t_peak / tau_decay) - math.exp(-t_peak / tau_rise))  # time constants are fixed numbers

    n_states = 2

    def initial_states(self, zero, conductance):
        """A given starting conductance sits in the decaying state alone, so g(0) equals it."""
        return [zero, zero if conductance is None else conductance]

    def conductance(self, states):
        return states[1] - states[0]

    def decay(self, states, dt):
        return [states[0] * _decay(dt, self.tau_rise), states[1] * _decay(dt, self.tau_decay)]

    def receive(self, states, arrivals):
        return [states[0] + self.factor * arrivals, states[1] + self.factor * arrivals]

    def to_dict(self):
        return {"kind": self.kind, "tau_rise": self.tau_rise, "tau_decay": self.tau_decay, "e_rev": self.e_rev}


def _decay(dt, tau):
    """exp(−dt/τ), kept differentiable when τ is a tensor."""
    return torch.exp(-dt / tau) if torch.is_tensor(tau) else math.exp(-dt / tau)


SYNAPSES = {cls.kind: cls for cls in (ExpSynapse, Exp2Synapse)}


def synapse_from_dict(data, where):
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in SYNAPSES:
        raise ModelError(f"{where}.kind: unknown synapse kind {kind!r}; use one of {', '.join(SYNAPSES)}")
    try:
        return SYNAPSES[kind](**data)
    except (TypeError, ModelError) as err:
        raise ModelError(f"{where}: {err}") from None

