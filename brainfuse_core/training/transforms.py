"""Bounds by reparametrisation: an optimiser moves an unconstrained ``raw`` tensor, the model sees
``value = transform(raw)``, which can never leave its bounds, so no step needs clipping or projection.

* ``Bounded(low, high)``     value = low + (high − low) · sigmoid(raw)
* ``LogBounded(low, high)``  value = exp(log low + (log high − log low) · sigmoid(raw)), 0 < low:
                             equal steps in raw are equal factors in value (densities spanning decades)
* ``Positive(low)``          value = low + softplus(raw)
* ``Unbounded()``            value = raw

Bounds are open: a value on a bound has no finite raw, so initial values must lie strictly inside.
``low``/``high`` are numbers or per-element sequences (a tabulated curve's values).
"""

import math

import torch

from ..errors import ModelError


class Transform:
    kind = None

    def forward(self, raw):
        raise NotImplementedError

    def inverse(self, value):
        raise NotImplementedError

    def contains(self, value):
        """Whether every element of ``value`` lies strictly inside the bounds."""
        raise NotImplementedError

    def sample(self, shape, generator, margin=0.05):
        """Values drawn uniformly (in this transform's own scale) from the bounds less ``margin`` of their
        width at each end (restarts start there)."""
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError


class Bounded(Transform):
    kind = "sigmoid"

    def __init__(self, low, high):
        self.low, self.high = _bound(low), _bound(high)
        if not bool((self.high > self.low).all()):
            raise ModelError(f"bounds must satisfy low < high, got low={_text(self.low)}, high={_text(self.high)}")

    def _unit(self, value):
        return (value - self.low) / (self.high - self.low)

    def forward(self, raw):
        return self.low + (self.high - self.low) * torch.sigmoid(raw)

    def inverse(self, value):
        return torch.logit(self._unit(_bound(value)))

    def contains(self, value):
        value = _bound(value)
        return bool(((value > self.low) & (value < self.high)).all())

    def sample(self, shape, generator, margin=0.05):
        unit = margin + (1 - 2 * margin) * torch.rand(shape, generator=generator, dtype=torch.float64)
        return self.low + (self.high - self.low) * unit

    def describe(self):
        return f"({_text(self.low)}, {_text(self.high)})"


class LogBounded(Bounded):
    kind = "log"

    def __init__(self, low, high):
        super().__init__(low, high)
        if not bool((self.low > 0).all()):
            raise ModelError(f"a log-scaled parameter needs low > 0, got low={_text(self.low)}")
        self._log_low, self._log_high = torch.log(self.low), torch.log(self.high)

    def forward(self, raw):
        # exp(log low) may round just below low; the clamp keeps the promise (and only acts where the
        # sigmoid is saturated, so no useful gradient is lost).
        value = torch.exp(self._log_low + (self._log_high - self._log_low) * torch.sigmoid(raw))
        return torch.clamp(value, self.low, self.high)

    def inverse(self, value):
        return torch.logit((torch.log(_bound(value)) - self._log_low) / (self._log_high - self._log_low))

    def sample(self, shape, generator, margin=0.05):
        unit = margin + (1 - 2 * margin) * torch.rand(shape, generator=generator, dtype=torch.float64)
        return torch.exp(self._log_low + (self._log_high - self._log_low) * unit)


class Positive(Transform):
    kind = "softplus"

    def __init__(self, low=0.0):
        self.low = _bound(low)

    def forward(self, raw):
        return self.low + torch.nn.functional.softplus(raw)

    def inverse(self, value):
        excess = _bound(value) - self.low
        return excess + torch.log(-torch.expm1(-excess))  # softplus⁻¹, stable for large excess

    def contains(self, value):
        return bool((_bound(value) > self.low).all())

    def sample(self, shape, generator, margin=0.05):
        raise ModelError("random restarts need finite bounds (low, high); this parameter has no upper bound")

    def describe(self):
        return f"({_text(self.low)}, ∞)"


class Unbounded(Transform):
    kind = "identity"

    def forward(self, raw):
        return raw

    def inverse(self, value):
        return _bound(value).clone()

    def contains(self, value):
        return bool(torch.isfinite(_bound(value)).all())

    def sample(self, shape, generator, margin=0.05):
        raise ModelError("random restarts need finite bounds (low, high); this parameter is unbounded")

    def describe(self):
        return "(−∞, ∞)"


KINDS = ("sigmoid", "log", "softplus", "identity")


def transform_for(low, high, kind=None):
    """The transform for bounds ``low``..``high`` (None or ±inf for none): by default a sigmoid between two
    finite bounds, softplus above a lower bound, identity without bounds; ``kind="log"`` for log scale."""
    low = -math.inf if low is None else low
    high = math.inf if high is None else high
    finite_low, finite_high = bool(torch.isfinite(_bound(low)).all()), bool(torch.isfinite(_bound(high)).all())
    if kind is None:
        kind = "sigmoid" if finite_low and finite_high else "softplus" if finite_low else "identity"
    if kind not in KINDS:
        raise ModelError(f"unknown transform {kind!r}; use one of {', '.join(KINDS)}")
    if kind in ("sigmoid", "log") and not (finite_low and finite_high):
        raise ModelError(f"a {kind} transform needs finite low and high, got ({_text(low)}, {_text(high)})")
    if kind == "softplus" and (not finite_low or finite_high):
        raise ModelError(f"a softplus transform needs a finite low and high=None (no upper bound), got ({_text(low)}, {_text(high)})")
    if kind == "identity" and (finite_low or finite_high):
        raise ModelError(f"an identity transform takes no bounds; give low=high=None, got ({_text(low)}, {_text(high)})")
    if kind == "sigmoid":
        return Bounded(low, high)
    if kind == "log":
        return LogBounded(low, high)
    return Positive(low) if kind == "softplus" else Unbounded()


def _bound(value):
    if torch.is_tensor(value):
        return value.detach().to(torch.float64)
    return torch.as_tensor(value, dtype=torch.float64)


def _text(value):
    value = _bound(value)
    return f"{float(value):g}" if value.numel() == 1 else "[" + ", ".join(f"{v:g}" for v in value.tolist()) + "]"
