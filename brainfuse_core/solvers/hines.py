"""O(n) solve of tree-structured (Hines) linear systems, batched, with an exact adjoint.

Each system is  d_i x_i − g_i x_parent(i) − Σ_children g_c x_c = b_i  with nodes in
parents-first order. The matrix is symmetric, so the adjoint of a solve is another solve
with the same matrix: no dense matrix is formed in either direction.
"""

import numba
import numpy as np
import torch


@numba.njit(cache=True)
def _hines_solve(parent, g, d, b):
    systems, n = d.shape
    x = np.empty_like(b)
    dd = np.empty(n, dtype=d.dtype)
    bb = np.empty(n, dtype=b.dtype)
    for m in range(systems):
        for i in range(n):
            dd[i] = d[m, i]
            bb[i] = b[m, i]
        for i in range(n - 1, 0, -1):
            p = parent[i]
            factor = g[i] / dd[i]
            dd[p] -= factor * g[i]
            bb[p] += factor * bb[i]
        x[m, 0] = bb[0] / dd[0]
        for i in range(1, n):
            x[m, i] = (bb[i] + g[i] * x[m, parent[i]]) / dd[i]
    return x


def _solve_numpy(parent, g, d, b):
    shape = d.shape
    n = shape[-1]
    dtype = d.dtype
    x = _hines_solve(parent, np.ascontiguousarray(g, dtype=dtype), np.ascontiguousarray(d.reshape(-1, n)), np.ascontiguousarray(b.reshape(-1, n)))
    return x.reshape(shape)


class TreeSolve(torch.autograd.Function):
    """x = A⁻¹ b for a batch of tree matrices A(d, g) sharing the structure ``parent``."""

    @staticmethod
    def forward(ctx, d, g, b, parent):
        x = torch.from_numpy(_solve_numpy(parent, g.detach().cpu().numpy(), d.detach().cpu().numpy(), b.detach().cpu().numpy())).to(d.device)
        ctx.save_for_backward(d, g, x)
        ctx.parent = parent
        return x

    @staticmethod
    def backward(ctx, grad_x):
        d, g, x = ctx.saved_tensors
        parent = ctx.parent
        lam = torch.from_numpy(
            _solve_numpy(parent, g.detach().cpu().numpy(), d.detach().cpu().numpy(), grad_x.detach().contiguous().cpu().numpy())
        ).to(d.device)
        grad_d = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_d = -lam * x
        if ctx.needs_input_grad[1]:
            p = torch.as_tensor(np.maximum(parent, 0), device=d.device)
            cross = lam * x[..., p] + lam[..., p] * x
            cross[..., 0] = 0.0
            grad_g = cross.reshape(-1, cross.shape[-1]).sum(0)
        return grad_d, grad_g, lam, None


def tree_solve(d, g, b, parent):
    """Solve the tree systems (last dimension = nodes) for x; differentiable in d, g and b. On a CUDA
    device the Triton kernel solves them there (``gpu/hines.py``) instead of a round trip through numpy."""
    if d.shape[-1] == 1:
        return b / d
    if d.is_cuda:
        from ..gpu.hines import tree_solve as solve_on_gpu

        return solve_on_gpu(d, g, b, parent)
    return TreeSolve.apply(d, g, b, parent)
