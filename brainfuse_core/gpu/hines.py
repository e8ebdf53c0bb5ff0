"""Tree (Hines) solves for many cells of one morphology in Triton, forward and adjoint.

The systems are those of ``solvers.hines.tree_solve``: for every cell
d_i x_i − g_i x_parent(i) − Σ_children g_c x_c = b_i, nodes in parents-first order
(parent[i] < i, parent[0] = −1), d per cell, g and parent shared by all cells. One Triton
program solves a block of cells, one cell per lane: elimination from the last node to the
root, then back-substitution, each a loop over the nodes in order. The matrix is symmetric,
so the adjoint of x = A⁻¹ b is the same solve, λ = A⁻¹ (∂L/∂x): ∂L/∂b = λ, ∂L/∂d = −λ·x,
∂L/∂g_i = Σ_cells (λ_i x_parent(i) + λ_parent(i) x_i).

On a CUDA device the kernel runs compiled; on the CPU under Triton's interpreter
(TRITON_INTERPRET=1 when the kernel is first built), which is how the tests check it.
"""

import numpy as np
import torch
import triton
import triton.language as tl

from ..errors import ModelError

# Cells per program, and warps so that each lane belongs to exactly one thread: a lane then reads back
# its own stores (elimination writes a parent's pivot, a later iteration reads it) with no barrier.
BLOCK = 64
WARPS = BLOCK // 32

_KERNELS = {}
_PARENTS = {}


def _eliminate_and_substitute(pivot_ptr, x_ptr, axial_ptr, parent_ptr, n_cells, n_nodes, BLOCK: tl.constexpr):
    """In place: ``pivot`` enters as d and leaves as the eliminated diagonal; ``x`` enters as b and leaves as
    the solution. Both (n_cells, n_nodes), row-major."""
    cells = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = cells < n_cells
    row = cells.to(tl.int64) * n_nodes
    for k in range(1, n_nodes):
        i = n_nodes - k
        p = tl.load(parent_ptr + i)
        g = tl.load(axial_ptr + i)
        factor = g / tl.load(pivot_ptr + row + i, mask=live, other=1.0)
        x_i = tl.load(x_ptr + row + i, mask=live, other=0.0)
        tl.store(pivot_ptr + row + p, tl.load(pivot_ptr + row + p, mask=live, other=1.0) - factor * g, mask=live)
        tl.store(x_ptr + row + p, tl.load(x_ptr + row + p, mask=live, other=0.0) + factor * x_i, mask=live)
    root = tl.load(x_ptr + row, mask=live, other=0.0) / tl.load(pivot_ptr + row, mask=live, other=1.0)
    tl.store(x_ptr + row, root, mask=live)
    for i in range(1, n_nodes):
        p = tl.load(parent_ptr + i)
        g = tl.load(axial_ptr + i)
        value = (tl.load(x_ptr + row + i, mask=live, other=0.0) + g * tl.load(x_ptr + row + p, mask=live, other=0.0))
        tl.store(x_ptr + row + i, value / tl.load(pivot_ptr + row + i, mask=live, other=1.0), mask=live)


def _kernel():
    """The kernel jitted under the interpreter setting now in force (the setting is read when jitting)."""
    key = triton.knobs.runtime.interpret
    if key not in _KERNELS:
        _KERNELS[key] = triton.jit(_eliminate_and_substitute)
    return _KERNELS[key]


def _parent_tensor(parent, n_nodes, device):
    """``parent`` (N,) ints, −1 at the root, as an int32 tensor on ``device``; checked and kept per device."""
    array = np.asarray(parent.detach().cpu() if torch.is_tensor(parent) else parent)
    key = (array.tobytes(), str(array.dtype), str(device))
    if key not in _PARENTS:
        if array.shape != (n_nodes,) or not np.issubdtype(array.dtype, np.integer):
            raise ModelError(f"parent must be {n_nodes} integers (one per node), got {array.dtype} of shape {array.shape}")
        if array[0] >= 0 or not bool(((array[1:] >= 0) & (array[1:] < np.arange(1, n_nodes))).all()):
            raise ModelError("parent must list nodes parents-first: parent[0] = -1 (the root) and 0 <= parent[i] < i; "
                             "order the nodes as NodeLayout does")
        _PARENTS[key] = torch.as_tensor(array, dtype=torch.int32, device=device)
    return _PARENTS[key]


def _solve(d, g, b, parent):
    """x with A(d, g) x = b, d and b (..., N) of one shape, by the kernel (no autograd)."""
    n_nodes = d.shape[-1]
    pivot = d.detach().contiguous().clone()
    x = b.detach().to(d.dtype).contiguous().clone()
    n_cells = pivot.numel() // n_nodes
    grid = (triton.cdiv(n_cells, BLOCK),)
    _kernel()[grid](pivot, x, g.detach().contiguous(), parent, n_cells, n_nodes, BLOCK=BLOCK, num_warps=WARPS)
    return x


class TritonTreeSolve(torch.autograd.Function):
    """x = A⁻¹ b for a batch of tree matrices A(d, g) sharing ``parent`` (an int32 tensor on their device)."""

    @staticmethod
    def forward(ctx, d, g, b, parent):
        x = _solve(d, g, b, parent)
        ctx.save_for_backward(d, g, x, parent)
        return x

    @staticmethod
    def backward(ctx, grad_x):
        d, g, x, parent = ctx.saved_tensors
        lam = _solve(d, g, grad_x, parent)
        grad_d = -lam * x if ctx.needs_input_grad[0] else None
        grad_g = None
        if ctx.needs_input_grad[1]:
            up = parent.clamp(min=0).long()
            cross = lam * x[..., up] + lam[..., up] * x
            cross[..., 0] = 0.0
            grad_g = cross.reshape(-1, cross.shape[-1]).sum(0)
        return grad_d, grad_g, lam if ctx.needs_input_grad[2] else None, None


def tree_solve(d, g, b, parent):
    """Solve the tree systems for x, as ``solvers.hines.tree_solve``; differentiable in d, g and b.

    ``d``: diagonals, (..., N) (µS where the membrane builds them); ``b``: right-hand sides, the same
    shape; ``g``: (N,) off-diagonal conductances to the parent (g[0] unused); ``parent``: (N,) ints,
    −1 at the root, parents first (``NodeLayout.parent``). Float32 or float64 on one device: CUDA
    runs the compiled kernel, the CPU needs TRITON_INTERPRET=1."""
    n_nodes = d.shape[-1]
    if b.shape != d.shape:
        raise ModelError(f"right-hand side of shape {tuple(b.shape)} does not match the diagonals' {tuple(d.shape)}")
    if g.shape != (n_nodes,):
        raise ModelError(f"axial conductances must have shape ({n_nodes},), one per node; got {tuple(g.shape)}")
    if d.dtype not in (torch.float32, torch.float64) or g.dtype != d.dtype or b.dtype != d.dtype:
        raise ModelError(f"tree solve needs d, g and b of one dtype, float32 or float64; got {d.dtype}, {g.dtype}, {b.dtype}")
    if g.device != d.device or b.device != d.device:
        raise ModelError(f"tree solve needs d, g and b on one device; got {d.device}, {g.device}, {b.device}")
    parent = _parent_tensor(parent, n_nodes, d.device)
    if n_nodes == 1:
        return b / d
    return TritonTreeSolve.apply(d, g, b, parent)


def compile_for_cuda(dtype, capability=90):
    """The solve kernel compiled to a cubin for a CUDA GPU of compute ``capability`` (90: H100, H200),
    with no GPU needed: checks that it lowers, which the interpreter cannot. Run with TRITON_INTERPRET unset."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    pointer = {torch.float32: "*fp32", torch.float64: "*fp64"}[dtype]
    signature = {"pivot_ptr": pointer, "x_ptr": pointer, "axial_ptr": pointer, "parent_ptr": "*i32",
                 "n_cells": "i32", "n_nodes": "i32", "BLOCK": "constexpr"}
    source = ASTSource(_kernel(), signature, constexprs={"BLOCK": BLOCK})
    return triton.compile(source, target=GPUTarget("cuda", capability, 32), options={"num_warps": WARPS})
