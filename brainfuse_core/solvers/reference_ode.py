"""Exact-ODE reference for a one-compartment cell, solved to near machine precision with scipy.

The right-hand side is built from the cell's own declarative channels (the same
``Channel``/``Gate`` objects and ``CompiledCell.ionic`` the simulator steps), so no
equation is written down twice: what differs from a simulation is only the integrator.

    C dv/dt = I_injected − area · Σ gbar Π xᵢ^pᵢ (v − e)      (nF, mV/ms, nA)
      dx/dt = (x∞(v) − x) / τ(v)                             (per gate, τ in ms)

With DOP853 at rtol = atol = 1e-12 the result stands in for the exact solution when
measuring the convergence of the fixed-step schemes.
"""

from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import solve_ivp

from ..errors import ModelError
from ..units import DENSITY_TO_ABSOLUTE
from .membrane import CompiledCell


@dataclass
class ReferenceSolution:
    """Dense solution of the point-cell ODE: ``solution(t_ms)`` → (states, len(t)) with v (mV) first."""

    state_names: list
    solution: object
    spike_times: np.ndarray  # ms, upward crossings of the threshold located on the dense output
    n_rhs_evaluations: int


class PointCellODE:
    """The point cell's ODE as a numpy right-hand side ``rhs(t, y)``; ``y`` = [v, gates in state-name order]."""

    def __init__(self, cell, injected_na=0.0, celsius=6.3):
        if cell.layout.size != 1:
            raise ModelError("the exact-ODE reference covers one-compartment cells only (Cell.point)")
        self.compiled = CompiledCell(cell, torch.float64, "cpu")
        if self.compiled.uses_calcium:
            raise ModelError("the exact-ODE reference does not model calcium pools")
        self.injected_na = float(injected_na)
        self.celsius = celsius
        # Rate factors are constants of the run; evaluating them once keeps the RHS lean.
        self.gates = [
            (f"{channel.name}.{gate.name}", gate, channel.rate_factor(celsius))
            for channel, _, _ in self.compiled.channels for gate in channel.gates
        ]

    def state_names(self):
        return self.compiled.state_names()

    def initial_state(self, v_init_mv):
        """Gates at steady state for ``v_init_mv``, as the simulator starts."""
        v = torch.full((1, 1, 1), float(v_init_mv), dtype=torch.float64)
        state = self.compiled.initial_state(v, self.celsius)
        return np.array([float(state[name]) for name in self.state_names()])

    def rhs(self, t, y):
        state = {name: torch.tensor(value, dtype=torch.float64) for name, value in zip(self.state_names(), y)}
        current_density, _, _ = self.compiled.ionic(state)
        membrane_na = current_density * self.compiled.area[0] * DENSITY_TO_ABSOLUTE
        derivatives = [float((self.injected_na - membrane_na) / self.compiled.capacitance[0])]
        for key, gate, factor in self.gates:
            inf, tau = gate.steady_state_and_tau(state, factor)
            derivatives.append(float((inf - state[key]) / tau))
        return derivatives


def solve_point_cell(cell, duration_ms, injected_na=0.0, celsius=6.3, threshold_mv=-20.0, rtol=1e-12, atol=1e-12):
    """Integrate the point cell from ``cell.v_init`` (gates at steady state) with a constant ``injected_na`` (nA) from t = 0.

    Spike times are the upward crossings of ``threshold_mv``, found by root finding on
    DOP853's dense output (itself accurate to the integration tolerance).
    """
    ode = PointCellODE(cell, injected_na, celsius)

    def crossing(t, y):
        return y[0] - threshold_mv

    crossing.direction = 1.0
    result = solve_ivp(ode.rhs, (0.0, float(duration_ms)), ode.initial_state(cell.v_init), method="DOP853",
                       rtol=rtol, atol=atol, dense_output=True, events=crossing)
    if not result.success:
        raise ModelError(f"reference ODE solve failed: {result.message}")
    return ReferenceSolution(ode.state_names(), result.sol, np.asarray(result.t_events[0]), int(result.nfev))
