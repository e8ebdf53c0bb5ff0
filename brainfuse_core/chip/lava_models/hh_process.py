"""A Lava process for a population of one-compartment HH cells, with a fixed-point and a floating-point model.

Imported as a top-level module by ``lava_runner.py`` (which puts ``chip/`` and this folder on the
path): ``fixed_point`` and ``artifact`` are the chip's NumPy-only modules.

Ports: ``a_in`` receives synaptic input for every (receptor, cell) — receptor-major, the
layout of the padded dense matrices the runner builds — and ``s_out`` sends the spike vector.
Each chip step (one ``run_spk``) adds the input to the synaptic state and runs the substeps.
Spikes and probed values are kept in Vars, one row per chip step, read back after the run.

* ``PyHHFixedModel`` (tag ``fixed_pt``): ``fixed_point.substep``, the integer arithmetic of the
  NumPy reference, on int32 Vars.
* ``PyHHFloatModel`` (tag ``floating_pt``): the same step in float64 from the unquantized
  parameters, tables interpolated linearly in V.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

import fixed_point
from artifact import current_at


class HHPopulation(AbstractProcess):
    """``n`` HH cells. ``constants`` (proc_params): the population's constants for the chosen model,
    ``schedule`` (starts, values) of the injected current, ``fmt`` the Formats, ``substeps``,
    ``probe_rows`` [(gate row or None, cells)]; ``v``, ``gates``, ``syn`` the initial state."""

    def __init__(self, *, n, n_receptors, steps, v, gates, syn, n_probed, **params):
        super().__init__(n=n, n_receptors=n_receptors, steps=steps, n_probed=n_probed, **params)
        self.a_in = InPort(shape=(max(1, n_receptors) * n,))
        self.s_out = OutPort(shape=(n,))
        self.v = Var(shape=(n,), init=v)
        self.gates = Var(shape=gates.shape, init=gates)
        self.syn = Var(shape=syn.shape, init=syn)
        self.spikes = Var(shape=(steps, n), init=0)
        self.probed = Var(shape=(steps, max(1, n_probed)), init=0)
        self.saturated = Var(shape=(len(fixed_point.SATURATED),), init=0)


class _HHModel(PyLoihiProcessModel):
    def run_spk(self):
        params = self.proc_params
        n, n_receptors = params["n"], params["n_receptors"]
        arrivals = self.a_in.recv()[: n_receptors * n].reshape(n_receptors, n)
        state = self._load()
        fired = np.zeros(n, dtype=bool)
        counts = {}
        self._receive(state, arrivals, counts)
        first = (self.time_step - 1) * params["substeps"]
        for k in range(params["substeps"]):
            fired |= self._substep(state, current_at(params["schedule"], first + k), counts)
        self._store(state, counts)
        step = self.time_step - 1
        self.spikes[step] = fired
        column = 0
        for gate, cells in params["probe_rows"]:
            values = state["v"] if gate is None else state["gates"][gate]
            self.probed[step, column:column + len(cells)] = values[cells]
            column += len(cells)
        self.s_out.send(fired)


@implements(proc=HHPopulation, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyHHFixedModel(_HHModel):
    """Integer state: V Q7.16 in 24 bits, gates Q1.20, synaptic G Q11.20 (see ``fixed_point``)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    gates: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    syn: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    spikes: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=1)
    probed: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    saturated: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def _load(self):
        return {"v": self.v.astype(np.int64), "gates": self.gates.astype(np.int64), "syn": self.syn.astype(np.int64)}

    def _receive(self, state, arrivals, counts):
        fixed_point.receive(state, arrivals.astype(np.int64), counts)

    def _substep(self, state, current, counts):
        return fixed_point.substep(state, self.proc_params["constants"], self.proc_params["fmt"], current, counts)

    def _store(self, state, counts):
        self.v[:] = state["v"]
        self.gates[:] = state["gates"]
        self.syn[:] = state["syn"]
        self.saturated[:] += [counts.get(name, 0) for name in fixed_point.SATURATED]


@implements(proc=HHPopulation, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyHHFloatModel(_HHModel):
    """Float64 state: V mV, gates fractions, synaptic G = g·dt/C."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    gates: np.ndarray = LavaPyType(np.ndarray, float)
    syn: np.ndarray = LavaPyType(np.ndarray, float)
    spikes: np.ndarray = LavaPyType(np.ndarray, np.int8, precision=1)
    probed: np.ndarray = LavaPyType(np.ndarray, float)
    saturated: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def _load(self):
        return {"v": self.v.copy(), "gates": self.gates.copy(), "syn": self.syn.copy()}

    def _receive(self, state, arrivals, counts):
        state["syn"] = state["syn"] + arrivals

    def _substep(self, state, current, counts):
        c = self.proc_params["constants"]
        v, gates, syn = state["v"], state["gates"], state["syn"]
        drive = current + (syn * (c["syn_e"][:, None] - v)).sum(axis=0)
        total = 1.0 + syn.sum(axis=0)
        for gbar, e_rev, gate_ids, powers in zip(c["gbar"], c["e_rev"], c["channel_gates"], c["channel_powers"]):
            g = gbar * np.prod([gates[gate] ** power for gate, power in zip(gate_ids, powers)], axis=0)
            drive = drive + g * (e_rev - v)
            total = total + g
        v_new = v + drive / total
        spiked = (v < c["threshold"]) & (v_new >= c["threshold"])
        for gate in range(gates.shape[0]):
            inf = np.interp(v_new, c["table_v"], c["inf"][gate])
            gates[gate] = inf + (gates[gate] - inf) * np.interp(v_new, c["table_v"], c["decay"][gate])
        state["syn"] = syn * c["syn_decay"][:, None]
        state["v"] = v_new
        return spiked

    def _store(self, state, counts):
        self.v[:] = state["v"]
        self.gates[:] = state["gates"]
        self.syn[:] = state["syn"]
