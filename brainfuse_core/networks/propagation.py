"""Spike propagation through a projection: Σ over connections of w · s_pre into each post cell.

With gradients needed (learnable weights, surrogate spikes) it is a dense gather/scatter over all
connections. Without, only the rows of the cells that spiked are visited (CSR by presynaptic
cell), in compiled code: a few spikes per step touch a few hundred connections.
"""

import numba
import numpy as np
import torch


class Connections:
    """One delay group of a projection in CSR form (connections sorted by presynaptic cell)."""

    def __init__(self, pre, post, weights, n_pre):
        self.pre, self.post, self.weights = pre, post, weights
        pre_np = pre.cpu().numpy()
        self.row_pointer = np.searchsorted(pre_np, np.arange(n_pre + 1)).astype(np.int64)
        self.post_np = post.cpu().numpy().astype(np.int64)
        self.weights_np = weights.detach().cpu().numpy()

    def propagate(self, pre_spikes, n_post):
        if torch.is_grad_enabled() and (pre_spikes.requires_grad or self.weights.requires_grad):
            out = torch.zeros(pre_spikes.shape[0], n_post, dtype=pre_spikes.dtype, device=pre_spikes.device)
            return out.index_add(1, self.post, pre_spikes[:, self.pre] * self.weights)
        spikes = pre_spikes.detach().cpu().numpy()
        batch_index, cell_index = np.nonzero(spikes)
        out = np.zeros((spikes.shape[0], n_post), dtype=spikes.dtype)
        if len(cell_index):
            _scatter(batch_index, cell_index, spikes[batch_index, cell_index], self.row_pointer, self.post_np,
                     self.weights_np.astype(spikes.dtype, copy=False), out)
        return torch.from_numpy(out).to(pre_spikes.device)


@numba.njit(cache=True)
def _scatter(batch_index, cell_index, amplitude, row_pointer, post, weights, out):
    for k in range(len(cell_index)):
        b, c, a = batch_index[k], cell_index[k], amplitude[k]
        for e in range(row_pointer[c], row_pointer[c + 1]):
            out[b, post[e]] += a * weights[e]
