"""The fitted quantities: named parameters with bounds, their unconstrained raw tensors, and their values.

A specification is a dict ``name -> (initial, low, high)`` or ``(initial, low, high, transform)``:
``initial`` a number or a sequence (a vector parameter, e.g. a tabulated curve's values), ``low`` and
``high`` numbers or per-element sequences, None for no bound; ``transform`` one of
``transforms.KINDS`` (default: sigmoid between finite bounds). Units are those of the quantity the
builder puts the value into (S/cm² for densities, µS for weights, ...).
"""

import torch

from ..errors import ModelError
from .transforms import transform_for


class FitParameter:
    """One named parameter: ``initial`` (a float64 tensor of shape () or (n,)) and its ``transform``."""

    def __init__(self, name, initial, transform):
        self.name, self.initial, self.transform = name, initial, transform

    @property
    def shape(self):
        return tuple(self.initial.shape)

    def labels(self):
        """One label per element: ``name`` for a scalar, ``name[k]`` for the elements of a vector."""
        return [self.name] if self.initial.dim() == 0 else [f"{self.name}[{k}]" for k in range(self.initial.numel())]


class FitParameters:
    """The parameters of a fit, in the order given."""

    def __init__(self, spec):
        if not isinstance(spec, dict) or not spec:
            raise ModelError("parameters: give a dict name -> (initial, low, high), e.g. {'gna': (0.1, 0.01, 0.5)}")
        self.items = {}
        for name, entry in spec.items():
            self.items[name] = _parameter(name, entry)

    @property
    def names(self):
        return list(self.items)

    def raw(self, initial=None):
        """Leaf tensors (requires_grad) whose transforms are ``initial`` (default: the specified initial values)."""
        initial = self.checked(initial, "initial values") if initial is not None else {}
        for name, value in initial.items():
            transform = self.items[name].transform
            if not transform.contains(value):
                raise ModelError(f"initial values: parameter {name!r} = {_text(value)} lies outside its bounds "
                                 f"{transform.describe()}; give a value strictly between low and high")
        return {name: p.transform.inverse(initial.get(name, p.initial)).reshape(p.shape).requires_grad_(True)
                for name, p in self.items.items()}

    def values(self, raw):
        """The constrained values of ``raw`` tensors, as a ``Values`` mapping (differentiable)."""
        return Values({name: p.transform.forward(raw[name]) for name, p in self.items.items()}, self.names)

    def sample(self, generator):
        """Random values inside the bounds, for a restart."""
        return {name: p.transform.sample(p.shape, generator) for name, p in self.items.items()}

    def checked(self, values, what):
        """``values`` (name -> number or sequence) as float64 tensors, each a known name of the right shape
        inside its bounds; a ModelError names the first that is not."""
        if not isinstance(values, dict):
            raise ModelError(f"{what}: give a dict parameter name -> value")
        result = {}
        for name, value in values.items():
            if name not in self.items:
                raise ModelError(f"{what}: unknown parameter {name!r}; the fit's parameters are {', '.join(self.names)}")
            p = self.items[name]
            tensor = torch.as_tensor(value.detach() if torch.is_tensor(value) else value, dtype=torch.float64)
            if tuple(tensor.shape) != p.shape:
                raise ModelError(f"{what}: parameter {name!r} has shape {p.shape}, got a value of shape {tuple(tensor.shape)}")
            result[name] = tensor
        return result

    def flat(self, values):
        """{label: float} for every element of ``values`` (name -> tensor), labels as ``FitParameter.labels``."""
        table = {}
        for name, p in self.items.items():
            if name in values:
                numbers = torch.as_tensor(values[name].detach() if torch.is_tensor(values[name]) else values[name],
                                          dtype=torch.float64).reshape(-1).tolist()
                table.update(zip(p.labels(), numbers))
        return table


class Values(dict):
    """The values handed to a builder: a dict of tensors that names the fit's parameters when asked for
    one it does not have (a misspelt name in the builder would otherwise be a bare KeyError)."""

    def __init__(self, values, names):
        super().__init__(values)
        self._names = names

    def __missing__(self, name):
        raise ModelError(f"the model builder asked for parameter {name!r}, which the fit does not have; "
                         f"its parameters are {', '.join(self._names)}")


def _parameter(name, entry):
    where = f"parameter {name!r}"
    if not isinstance(name, str) or not name:
        raise ModelError(f"parameter names must be non-empty strings, got {name!r}")
    if not isinstance(entry, (tuple, list)) or len(entry) not in (3, 4):
        raise ModelError(f"{where}: give (initial, low, high) or (initial, low, high, transform), got {entry!r}")
    initial, low, high = entry[:3]
    kind = entry[3] if len(entry) == 4 else None
    try:
        initial = torch.as_tensor(initial.detach() if torch.is_tensor(initial) else initial, dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{where}: the initial value must be a number or a sequence of numbers ({err})") from None
    if initial.dim() > 1 or initial.numel() == 0:
        raise ModelError(f"{where}: the initial value must be a number or a non-empty 1-D sequence, got shape {tuple(initial.shape)}")
    for bound_name, bound in (("low", low), ("high", high)):
        if bound is not None:
            size = torch.as_tensor(bound, dtype=torch.float64).numel()
            if size not in (1, initial.numel()):
                raise ModelError(f"{where}: {bound_name} has {size} elements for {initial.numel()} values; give one bound or one per value")
    try:
        transform = transform_for(low, high, kind)
    except ModelError as err:
        raise ModelError(f"{where}: {err}") from None
    if not transform.contains(initial):
        raise ModelError(f"{where}: initial value {_text(initial)} lies outside its bounds {transform.describe()}; "
                         "give an initial value strictly between low and high")
    return FitParameter(name, initial, transform)


def _text(tensor):
    return f"{float(tensor):g}" if tensor.dim() == 0 else "[" + ", ".join(f"{v:g}" for v in tensor.tolist()) + "]"
