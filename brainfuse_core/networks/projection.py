"""Projections: connections between populations with synapses, weights (µS) and delays (ms).

Weights are per connection and may be learnable: after the network is built,
``projection.weights`` is a 1-D tensor in the order of ``projection.pre_index`` and
``projection.post_index`` (sorted by presynaptic cell). Give ``weight`` as a tensor with
``requires_grad`` (one value, or one per connection in the rule's order), or pass
``learnable=True``, to train them.
Delays are whole time steps, at least one: a spike detected in step n acts from step n + d.

Where the synapses sit on a multi-compartment post cell: ``target=(section, x)`` puts every
connection at one point; ``target="basal"`` (a region, a section name, or "all") spreads the
connections over that part's segments, each segment drawing connections in proportion to its
membrane area (a uniform density of synapses per µm², drawn from the projection's seed).
"""

import numpy as np
import torch

from ..errors import ModelError
from .connectivity import FixedProbability


class Projection:
    def __init__(self, pre, post, synapse, weight, rule=None, delay=None, target=None, seed=0, learnable=False, name=None,
                 initial_conductance=None):
        """``initial_conductance`` (µS): the synaptic conductance at t = 0, a number or one value per post cell."""
        self.pre, self.post = pre, post
        self.initial_conductance = initial_conductance
        self.synapse = synapse
        self.weight = weight
        self.rule = rule or FixedProbability(1.0, allow_self=True)
        self.delay = delay
        self.target = target
        self.seed = seed
        self.learnable = learnable
        self.name = name or f"{pre}->{post}"
        if not np.all(np.asarray(weight.detach() if torch.is_tensor(weight) else weight) >= 0):
            raise ModelError(f"projection {self.name}: weights are conductances (µS) and must be ≥ 0; "
                             "use an inhibitory reversal potential for inhibition")
        self.pre_index = self.post_index = self.weights = None
        self.site_nodes = self.site_of = None

    def build(self, populations):
        """Draw the connections (once) and set up per-connection weights."""
        for end in (self.pre, self.post):
            if end not in populations:
                raise ModelError(f"projection {self.name}: no population {end!r}; populations are {', '.join(populations)}")
        if populations[self.post].is_source:
            raise ModelError(f"projection {self.name}: a spike source cannot receive connections")
        if self.pre_index is None:
            rng = np.random.default_rng(self.seed)
            pre, post = self.rule.connect(populations[self.pre].n, populations[self.post].n, self.pre == self.post, rng)
            order = np.lexsort((post, pre))
            self._order = torch.as_tensor(order, dtype=torch.long)
            self.pre_index = torch.as_tensor(pre[order], dtype=torch.long)
            self.post_index = torch.as_tensor(post[order], dtype=torch.long)
        self.weights = self._connection_weights()
        self._place_synapses(populations[self.post].cell)

    def _place_synapses(self, cell):
        """``site_nodes``: the post cell's nodes that carry synapses of this projection; ``site_of``:
        for each connection, which of them (an index into ``site_nodes``)."""
        if not isinstance(self.target, str):
            self.site_nodes = np.array([cell.location(*self.target) if self.target else cell.location()])
            self.site_of = torch.zeros(self.n_connections, dtype=torch.long)
            return
        try:
            inside = np.array(cell.node_mask(self.target))
        except (KeyError, ModelError):
            regions = ", ".join(sorted(cell.morphology.regions()))
            raise ModelError(f"projection {self.name}: target {self.target!r} is neither a region nor a section of cell "
                             f"{cell.name!r}; regions are {regions}") from None
        self.site_nodes = np.flatnonzero(inside & (cell.layout.area > 0))
        if self.initial_conductance is not None and len(self.site_nodes) > 1:
            raise ModelError(f"projection {self.name}: an initial conductance needs a one-point target (section and x), "
                             f"not synapses spread over {self.target!r}")
        area = cell.layout.area[self.site_nodes]
        rng = np.random.default_rng([int(self.seed), 1])
        self.site_of = torch.as_tensor(rng.choice(len(self.site_nodes), size=self.n_connections, p=area / area.sum()))

    def _connection_weights(self):
        n = self.n_connections
        weight = self.weight
        if not torch.is_tensor(weight):
            weights = torch.full((n,), float(weight), dtype=torch.float64)
            if self.learnable:
                self.weight = weights.requires_grad_(True)
            return weights
        if weight.numel() == 1:
            return weight.reshape(1).expand(n)
        if weight.numel() != n:
            raise ModelError(f"projection {self.name}: {weight.numel()} weights for {n} connections")
        return weight.reshape(-1)[self._order]

    @property
    def n_connections(self):
        return 0 if self.pre_index is None else len(self.pre_index)

    def delay_steps(self, dt):
        delay = self.delay if self.delay is not None else dt
        steps = torch.as_tensor(np.rint(np.asarray(delay, dtype=float) / dt).astype(np.int64)).clamp_min(1)
        if steps.dim() == 0:
            return steps.expand(self.n_connections)
        if steps.numel() != self.n_connections:
            raise ModelError(f"projection {self.name}: {steps.numel()} delays for {self.n_connections} connections")
        return steps[self._order]

    def to_dict(self):
        if torch.is_tensor(self.weight) and self.weight.numel() > 1:
            raise ModelError(f"projection {self.name}: per-connection weights cannot be written to a project yet; "
                             "save them with torch.save(projection.weights)")
        data = {"pre": self.pre, "post": self.post, "synapse": self.synapse.to_dict(), "connect": self.rule.to_dict(),
                "weight": float(self.weight.detach()) if torch.is_tensor(self.weight) else self.weight, "seed": self.seed}
        if self.delay is not None:
            data["delay"] = self.delay
        if isinstance(self.target, str):
            data["target"] = {"region": self.target}
        elif self.target is not None:
            data["target"] = {"section": self.target[0], "x": self.target[1]}
        return data
