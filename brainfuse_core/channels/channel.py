"""Declarative ion channels: gates with exponents, α/β or x∞/τ kinetics, Q10 scaling.

A channel is data. The same object drives the simulation update (``steady_state_and_tau``),
the editor curves (``curves``), and later the generated GPU kernels and the fixed-point
lookup tables: nothing about a channel is written down twice.

Units: conductance density S/cm², reversal potential mV, rates 1/ms, τ ms, temperature °C.
"""

import torch

from ..errors import ModelError
from .curves import Curve, curve_from_dict, plain_value

IONS = ("na", "k", "ca")


class Gate:
    """One gating variable raised to ``power``.

    Kinetics are either ``alpha``/``beta`` rate curves or ``inf``/``tau`` curves. ``variable``
    is what the gate depends on: ``"v"`` (mV) or ``"cai"`` (mM, for calcium-activated channels);
    expression curves may read both.
    """

    def __init__(self, name, power, alpha=None, beta=None, inf=None, tau=None):
        if not name.isidentifier():
            raise ModelError(f"gate name {name!r} must be an identifier such as 'm'")
        if power != int(power) or power < 1:
            raise ModelError(f"gate {name!r}: power must be a positive integer, got {power!r}")
        rate_form = alpha is not None or beta is not None
        inf_form = inf is not None or tau is not None
        if rate_form == inf_form or (rate_form and (alpha is None or beta is None)) or (inf_form and (inf is None or tau is None)):
            raise ModelError(f"gate {name!r}: give either both alpha and beta, or both inf and tau")
        for curve in (alpha, beta, inf, tau):
            if curve is not None and not isinstance(curve, Curve):
                raise ModelError(f"gate {name!r}: kinetics must be Curve objects, got {type(curve).__name__}")
        self.name = name
        self.power = int(power)
        self.alpha, self.beta, self.inf, self.tau = alpha, beta, inf, tau

    @property
    def form(self):
        return "alpha_beta" if self.alpha is not None else "inf_tau"

    def steady_state_and_tau(self, state, rate_factor):
        """x∞ and τ (ms) at ``state``; ``rate_factor`` is the Q10 temperature factor."""
        if self.alpha is not None:
            alpha, beta = self.alpha(state), self.beta(state)
            total = alpha + beta
            return alpha / total, 1.0 / (rate_factor * total)
        return self.inf(state), self.tau(state) / rate_factor

    def advance(self, x, state, rate_factor, dt):
        """Exponential-Euler step of the gate over ``dt`` (ms): exact for kinetics frozen at ``state``."""
        if self.alpha is not None:
            alpha, beta = self.alpha(state), self.beta(state)
            total = alpha + beta
            return x + (x - alpha / total) * torch.expm1(-dt * rate_factor * total)
        return x + (x - self.inf(state)) * torch.expm1(-dt * rate_factor / self.tau(state))

    def kinetics(self):
        if self.alpha is not None:
            return {"alpha": self.alpha, "beta": self.beta}
        return {"inf": self.inf, "tau": self.tau}

    def to_dict(self):
        data = {"power": self.power}
        data.update({key: curve.to_dict() for key, curve in self.kinetics().items()})
        return data

    @classmethod
    def from_dict(cls, name, data, where):
        if not isinstance(data, dict):
            raise ModelError(f"{where}: a gate is an object with 'power' and kinetics")
        unknown = set(data) - {"power", "alpha", "beta", "inf", "tau"}
        if unknown:
            raise ModelError(f"{where}.{sorted(unknown)[0]}: unknown gate field; use power, alpha/beta or inf/tau")
        curves = {key: curve_from_dict(data[key], f"{where}.{key}") for key in ("alpha", "beta", "inf", "tau") if key in data}
        try:
            return cls(name, data.get("power", 1), **curves)
        except ModelError as err:
            raise ModelError(f"{where}: {err}") from None


class Channel:
    """An HH-type ionic current  i = gbar · Π xᵢ^pᵢ · (v − e)  (mA/cm²).

    ``ion`` ("na", "k", "ca" or None) selects the reversal potential from the cell's ion
    settings and, for "ca", feeds calcium pools; ``reversal`` (mV) overrides it.
    Rates scale by ``q10 ** ((celsius − temperature) / 10)``.
    """

    def __init__(self, name, gates=(), gbar=0.0, ion=None, reversal=None, q10=1.0, temperature=6.3, description=""):
        if not name.isidentifier():
            raise ModelError(f"channel name {name!r} must be an identifier such as 'hh_na'")
        if ion is not None and ion not in IONS:
            raise ModelError(f"channel {name!r}: ion must be one of {', '.join(IONS)} or None, got {ion!r}")
        if ion is None and reversal is None:
            raise ModelError(f"channel {name!r}: give an ion or a reversal potential (mV)")
        if bool((torch.as_tensor(gbar) < 0).any()):
            raise ModelError(f"channel {name!r}: gbar is a conductance density (S/cm²) and must be ≥ 0, got {gbar!r}")
        names = [g.name for g in gates]
        if len(set(names)) != len(names):
            raise ModelError(f"channel {name!r}: gate names must be unique, got {names}")
        self.name = name
        self.gates = list(gates)
        self.gbar = gbar
        self.ion = ion
        self.reversal = reversal
        self.q10 = q10
        self.temperature = temperature
        self.description = description

    @property
    def uses_calcium(self):
        return any(_reads(curve, "cai") for gate in self.gates for curve in gate.kinetics().values())

    def rate_factor(self, celsius):
        if torch.is_tensor(self.q10) or torch.is_tensor(self.temperature):
            return torch.as_tensor(self.q10) ** ((celsius - torch.as_tensor(self.temperature)) / 10.0)
        return self.q10 ** ((celsius - self.temperature) / 10.0)

    def open_fraction(self, gate_states):
        """Π xᵢ^pᵢ over the gates (1 for a leak)."""
        fraction = 1.0
        for gate in self.gates:
            fraction = fraction * gate_states[gate.name] ** gate.power
        return fraction

    def curves(self, v, celsius=6.3, cai=None):
        """Curves an editor draws, at voltages ``v`` (mV): per gate x∞, τ (ms) and, for α/β gates, α and β (1/ms)."""
        v = torch.as_tensor(v, dtype=torch.float64)
        state = {"v": v, "cai": torch.full_like(v, 5e-5) if cai is None else torch.as_tensor(cai, dtype=v.dtype)}
        factor = self.rate_factor(celsius)
        result = {}
        for gate in self.gates:
            inf, tau = gate.steady_state_and_tau(state, factor)
            entry = {"inf": inf, "tau": tau}
            if gate.alpha is not None:
                entry["alpha"] = gate.alpha(state) * factor
                entry["beta"] = gate.beta(state) * factor
            result[gate.name] = entry
        return result

    def steady_state_current(self, v, reversal, celsius=6.3, cai=None):
        """Steady-state I–V curve i∞(v) = gbar Π x∞ᵢ(v)^pᵢ (v − e) in mA/cm²."""
        curves = self.curves(v, celsius, cai)
        fraction = self.open_fraction({name: c["inf"] for name, c in curves.items()})
        return self.gbar * fraction * (torch.as_tensor(v, dtype=torch.float64) - reversal)

    def to_dict(self):
        data = {"gbar": plain_value(self.gbar), "gates": {g.name: g.to_dict() for g in self.gates}}
        if self.ion is not None:
            data["ion"] = self.ion
        if self.reversal is not None:
            data["reversal"] = plain_value(self.reversal)
        if self.q10 != 1.0:
            data["q10"] = plain_value(self.q10)
            data["temperature"] = plain_value(self.temperature)
        if self.description:
            data["description"] = self.description
        return data

    @classmethod
    def from_dict(cls, name, data, where=None):
        where = where or f"channels.{name}"
        if not isinstance(data, dict):
            raise ModelError(f"{where}: a channel is an object with gbar, gates and ion or reversal")
        unknown = set(data) - {"gbar", "gates", "ion", "reversal", "q10", "temperature", "description"}
        if unknown:
            raise ModelError(f"{where}.{sorted(unknown)[0]}: unknown channel field")
        gates_data = data.get("gates", {})
        if not isinstance(gates_data, dict):
            raise ModelError(f"{where}.gates: an object mapping gate names to gates")
        gates = [Gate.from_dict(gname, gdata, f"{where}.gates.{gname}") for gname, gdata in gates_data.items()]
        try:
            return cls(
                name, gates, gbar=data.get("gbar", 0.0), ion=data.get("ion"), reversal=data.get("reversal"),
                q10=data.get("q10", 1.0), temperature=data.get("temperature", 6.3), description=data.get("description", ""),
            )
        except ModelError as err:
            raise ModelError(f"{where}: {err}") from None

    def __repr__(self):
        gates = " ".join(f"{g.name}^{g.power}" for g in self.gates) or "leak"
        return f"Channel({self.name!r}: {gates}, gbar={plain_value(self.gbar)} S/cm²)"


class CalciumPool:
    """Submembrane calcium concentration [Ca]i (mM), as NEURON's ``cad``/``CaDynamics``.

    d[Ca]/dt = −gamma · 10⁴ · i_ca / (2 F depth) + ([Ca]rest − [Ca]) / decay
    with i_ca in mA/cm², depth in µm, decay in ms; ``gamma`` is the fraction of influx
    not buffered immediately.
    """

    def __init__(self, name="ca_pool", depth=0.1, decay=80.0, rest=5e-5, gamma=1.0):
        if depth <= 0 or decay <= 0:
            raise ModelError(f"calcium pool {name!r}: depth (µm) and decay (ms) must be positive")
        self.name, self.depth, self.decay, self.rest, self.gamma = name, depth, decay, rest, gamma

    def to_dict(self):
        return {"depth": plain_value(self.depth), "decay": plain_value(self.decay), "rest": plain_value(self.rest), "gamma": plain_value(self.gamma)}

    @classmethod
    def from_dict(cls, name, data, where=None):
        where = where or f"pools.{name}"
        if not isinstance(data, dict):
            raise ModelError(f"{where}: a calcium pool is an object with depth, decay, rest, gamma")
        unknown = set(data) - {"depth", "decay", "rest", "gamma"}
        if unknown:
            raise ModelError(f"{where}.{sorted(unknown)[0]}: unknown calcium-pool field")
        try:
            return cls(name, **data)
        except ModelError as err:
            raise ModelError(f"{where}: {err}") from None


def _reads(curve, name):
    names = curve.expression.names if hasattr(curve, "expression") else {curve.variable}
    return name in names

