"""One time step of the membrane of a block of identical cells, NEURON's fixed-step scheme.

State tensors have shape (B, C, N): batch, cells in the block, nodes per cell.

Order within a step (as NEURON's ``fadvance``): ionic currents and their conductances are
evaluated at v(t) with the gates from the previous half step; the cable equation is solved
implicitly for v(t+dt) (backward Euler, or Crank–Nicolson as a backward-Euler half step
followed by extrapolation); then the gates advance by exponential Euler using v(t+dt), so
gates live half a step behind the voltage. Started from rest this staggering is exact at
t = 0, which is what makes the Crank–Nicolson variant second order.
"""

import torch

from ..units import CAPACITANCE_TO_NF, DENSITY_TO_ABSOLUTE, FARADAY
from .hines import tree_solve

METHODS = ("backward_euler", "crank_nicolson")


class CompiledCell:
    """Tensors derived from a Cell for one dtype/device; rebuilt each run so gradients reach tensor parameters."""

    def __init__(self, cell, dtype, device):
        layout = cell.layout
        self.cell = cell
        self.size = layout.size
        self.parent = layout.parent
        as_t = lambda values: torch.as_tensor(values, dtype=dtype, device=device)
        self.area = as_t(layout.area)
        self.area_factor = self.area * DENSITY_TO_ABSOLUTE
        self.capacitance = as_t(cell.capacitance_density()) * self.area * CAPACITANCE_TO_NF
        self.axial = as_t(layout.axial_conductance)
        axial_sum = self.axial.clone()
        if self.size > 1:
            axial_sum = axial_sum.index_add(0, torch.as_tensor(layout.parent[1:], device=device), self.axial[1:])
        self.axial_sum = axial_sum
        self._parent_index = torch.as_tensor(layout.parent.clip(min=0), device=device)
        self.channels = [
            (channel, cell.density(name, dtype, device), cell.reversal(channel)) for name, channel in cell.channels.items()
        ]
        self.pools = [(pool, torch.as_tensor(cell.node_mask(where), device=device)) for pool, where in cell.pools]
        self.uses_calcium = bool(self.pools) or any(ch.uses_calcium for ch, _, _ in self.channels)

    def state_names(self):
        names = ["v"] + [f"{ch.name}.{gate.name}" for ch, _, _ in self.channels for gate in ch.gates]
        return names + (["cai"] if self.uses_calcium else [])

    def initial_state(self, v, celsius):
        """Gates at their steady state for ``v`` (B, C, N); calcium at the pools' rest level."""
        state = {"v": v}
        if self.uses_calcium:
            rest = self.pools[0][0].rest if self.pools else 5e-5
            state["cai"] = torch.full_like(v, rest)
        for channel, _, _ in self.channels:
            factor = channel.rate_factor(celsius)
            for gate in channel.gates:
                inf, _ = gate.steady_state_and_tau(state, factor)
                state[f"{channel.name}.{gate.name}"] = inf.expand_as(v).clone() if torch.is_tensor(inf) else torch.full_like(v, inf)
        return state

    def ionic(self, state):
        """Total ionic current density (mA/cm²), its conductance (S/cm²), and the calcium current density."""
        v = state["v"]
        current = conductance = calcium = 0.0
        for channel, density, reversal in self.channels:
            g = density * channel.open_fraction({gate.name: state[f"{channel.name}.{gate.name}"] for gate in channel.gates})
            i = g * (v - reversal)
            current = current + i
            conductance = conductance + g
            if channel.ion == "ca":
                calcium = calcium + i
        return current, conductance, calcium

    def axial_current(self, v):
        """Σ_j g_ij (v_j − v_i) into each node (nA)."""
        if self.size == 1:
            return torch.zeros_like(v)
        flow = self.axial * (v[..., self._parent_index] - v)
        return flow.index_add(-1, self._parent_index[1:], -flow[..., 1:])

    def use_compiled(self, celsius, method, dt):
        """Switch this block to the generated CPU kernel (runs without gradients only).

        The kernel's loop over cells vectorises (``solvers/fastmath.py``); measured on 2 cores with
        squid HH it is 10-40x faster than the tensor path at 10³, 10⁴ and 10⁵ cells in float32 and
        float64, so it is taken whatever the size. Cells of several compartments take the cable kernel
        (``solvers/cable_kernel.py``)."""
        from .cable_kernel import cable_kernel
        from .compiled import point_kernel

        generate = point_kernel if self.size == 1 else cable_kernel
        self.kernel = generate(self, celsius, method, dt) if self.area.device.type == "cpu" else None

    kernel = None

    def step(self, state, dt, celsius, method, injected, linear_g, linear_ge):
        """Advance one step. ``injected`` nA; ``linear_g`` µS and ``linear_ge`` nA describe synapses and clamps
        whose current is linear_g·v − linear_ge. Returns the new state dict."""
        if self.kernel is not None:
            return self.kernel(state, dt, injected, linear_g, linear_ge)
        v = state["v"]
        i_density, g_density, i_calcium = self.ionic(state)
        membrane_g = g_density * self.area_factor
        membrane_i = i_density * self.area_factor
        if torch.is_tensor(linear_g):
            membrane_g = membrane_g + linear_g
            membrane_i = membrane_i + linear_g * v - linear_ge
        step = dt if method == "backward_euler" else dt / 2
        diag = self.capacitance / step + membrane_g
        rhs = injected - membrane_i
        if self.size > 1:
            diag = diag + self.axial_sum
            rhs = rhs + self.axial_current(v)
        dv = tree_solve(diag, self.axial, rhs, self.parent)
        v_new = v + dv if method == "backward_euler" else v + 2 * dv
        new_state = {"v": v_new}
        gate_inputs = {"v": v_new}
        if self.uses_calcium:
            cai = self.advance_calcium(state["cai"], i_calcium, dt)
            new_state["cai"] = cai
            gate_inputs["cai"] = cai
        for channel, _, _ in self.channels:
            factor = channel.rate_factor(celsius)
            for gate in channel.gates:
                key = f"{channel.name}.{gate.name}"
                new_state[key] = gate.advance(state[key], gate_inputs, factor, dt)
        return new_state

    def advance_calcium(self, cai, i_calcium, dt):
        """Exponential-Euler step of each pool, influx from the step's calcium current."""
        for pool, mask in self.pools:
            influx = -pool.gamma * 1e4 * i_calcium / (2 * FARADAY * pool.depth)
            target = pool.rest + influx * pool.decay
            updated = target + (cai - target) * torch.exp(torch.as_tensor(-dt / pool.decay, dtype=cai.dtype))
            cai = torch.where(mask, updated, cai)
        return cai
