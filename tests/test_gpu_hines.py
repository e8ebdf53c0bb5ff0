"""The Triton tree (Hines) solve, run on the CPU by Triton's interpreter, against the O(n) CPU solve
(solvers.hines.tree_solve) and a dense torch.linalg.solve; its adjoint against torch autograd through
the CPU solve and against central finite differences. An unbranched cable and branched trees (a cell's
layout, random parent arrays).

TRITON_INTERPRET=1 is set by a module fixture before the kernel is first built, and restored afterwards.
"""

import importlib.util

import numpy as np
import pytest
import torch

import brainfuse_core as bf
from brainfuse_core.errors import ModelError
from brainfuse_core.solvers.hines import tree_solve as cpu_tree_solve
from conftest import triton_interpreter

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (test extras)")



@pytest.fixture(scope="module")
def gpu_tree_solve():
    with triton_interpreter(True):
        from brainfuse_core.gpu.hines import tree_solve
        yield tree_solve


def _cable():
    """A 1 mm, 1 µm cable of 20 segments (22 nodes in a line)."""
    return bf.Cell(bf.Morphology([bf.Section("axon", length=1000.0, diameter=1.0, nseg=20)]), ra=35.4).layout


def _branched():
    """A soma with two dendrites, one forking in two, sections of 3-7 segments (31 nodes)."""
    sections = [bf.Section("soma", length=20.0, diameter=20.0, nseg=3),
                bf.Section("dend", length=200.0, diameter=2.0, nseg=5, parent="soma", parent_x=1.0),
                bf.Section("left", length=150.0, diameter=1.0, nseg=7, parent="dend", parent_x=1.0),
                bf.Section("right", length=100.0, diameter=0.8, nseg=4, parent="dend", parent_x=0.5),
                bf.Section("axon", length=300.0, diameter=1.0, nseg=6, parent="soma", parent_x=0.0)]
    return bf.Cell(bf.Morphology(sections), ra=100.0).layout


def _random_tree(nodes, seed):
    """Each node hangs from a random earlier node; conductances spread over three decades (µS)."""
    rng = np.random.default_rng(seed)
    parent = np.array([-1] + [int(rng.integers(0, i)) for i in range(1, nodes)])
    return parent, 10.0 ** rng.uniform(-2.0, 1.0, nodes)


TREES = {"cable": lambda: (_cable().parent, _cable().axial_conductance),
         "branched_cell": lambda: (_branched().parent, _branched().axial_conductance),
         "random_tree": lambda: _random_tree(40, seed=3)}


def _system(tree, shape, dtype, seed=0):
    """d = Σ neighbouring g + a membrane term of 1e-3..1 µS (as the membrane builds it: capacitance/dt plus
    conductances), b random; d, g, b as float64 tensors cast to ``dtype``."""
    parent, axial = TREES[tree]()
    rng = np.random.default_rng(seed)
    n = len(parent)
    axial = np.where(parent < 0, 0.0, axial)
    neighbours = axial.copy()
    np.add.at(neighbours, parent[1:], axial[1:])
    d = neighbours + 10.0 ** rng.uniform(-3.0, 0.0, (*shape, n))
    b = rng.normal(size=(*shape, n))
    as_t = lambda values: torch.as_tensor(values, dtype=torch.float64).to(dtype)
    return as_t(d), as_t(axial), as_t(b), parent


def _dense(d, g, parent):
    """The (…, N, N) matrices of the systems."""
    n = d.shape[-1]
    a = torch.diag_embed(d)
    for i in range(1, n):
        a[..., i, parent[i]] = -g[i]
        a[..., parent[i], i] = -g[i]
    return a


def _relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("tree", sorted(TREES))
def test_solve_matches_cpu_solve_and_dense_solve(gpu_tree_solve, tree, dtype):
    # 2 × 37 = 74 cells: two programs of 64 lanes, the second partly masked.
    d, g, b, parent = _system(tree, (2, 37), dtype)
    x = gpu_tree_solve(d, g, b, parent)
    assert x.shape == b.shape and x.dtype == dtype
    eps = torch.finfo(dtype).eps
    # The same elimination in the same order: equal up to rounding (measured: bit for bit under the interpreter).
    assert _relative(x, cpu_tree_solve(d, g, b, parent)) <= 10 * eps
    matrix = _dense(d.double(), g.double(), parent)
    exact = torch.linalg.solve(matrix, b.double().unsqueeze(-1)).squeeze(-1)
    # Against the exact solution the bound is the condition number (2e2 cable .. 4e4 cell) times eps; measured ≤ 0.01 of it.
    assert _relative(x.double(), exact) <= 0.1 * torch.linalg.cond(matrix).max().item() * eps


def _dense_solve(d, g, b, parent):
    return torch.linalg.solve(_dense(d, g, parent), b.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("tree", sorted(TREES))
def test_gradients_match_autograd(gpu_tree_solve, tree, dtype):
    """∂/∂d, ∂/∂g, ∂/∂b of a weighted sum of x, against float64 autograd through the CPU solve (its own
    adjoint) and through a dense torch.linalg.solve (torch's)."""
    d, g, b, parent = _system(tree, (3, 5), dtype, seed=1)
    weights = torch.randn(d.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def gradients(solve, d, g, b):
        leaves = [t.clone().requires_grad_(True) for t in (d, g, b)]
        (solve(*leaves, parent) * weights.to(d.dtype)).sum().backward()
        return [leaf.grad.double() for leaf in leaves]

    ours = gradients(gpu_tree_solve, d, g, b)
    # Measured: float64 within 1e-15 of both; float32 within 2e-6 (cable, random tree) and 1e-5 (the cell,
    # condition number 4e4). 1e-4 relative is the bar for float32 gradients.
    tolerance = {torch.float64: 1e-11, torch.float32: 1e-4}[dtype]
    for reference in (cpu_tree_solve, _dense_solve):
        expected = gradients(reference, d.double(), g.double(), b.double())
        for name, mine, theirs in zip(("d", "g", "b"), ours, expected):
            assert _relative(mine, theirs) < tolerance, (reference.__name__, name)


def test_gradients_match_finite_differences(gpu_tree_solve):
    d, g, b, parent = _system("branched_cell", (2,), torch.float64, seed=4)
    weights = torch.randn(d.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    loss = lambda d, g, b: (gpu_tree_solve(d, g, b, parent) * weights).sum()
    leaves = [t.clone().requires_grad_(True) for t in (d, g, b)]
    loss(*leaves).backward()
    for index, leaf in enumerate(leaves):
        for k in (0, 7, leaf.numel() - 1):
            flat = [t.clone().reshape(-1) for t in (d, g, b)]
            h = 1e-6 * max(1.0, abs(flat[index][k].item()))
            flat[index][k] += h
            up = loss(*(t.reshape(s.shape) for t, s in zip(flat, (d, g, b)))).item()
            flat[index][k] -= 2 * h
            down = loss(*(t.reshape(s.shape) for t, s in zip(flat, (d, g, b)))).item()
            numeric = (up - down) / (2 * h)
            analytic = leaf.grad.reshape(-1)[k].item()
            assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric)), (index, k, analytic, numeric)


def test_single_node_and_bad_input(gpu_tree_solve):
    d = torch.tensor([[2.0], [4.0]], dtype=torch.float64)
    b = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    assert torch.equal(gpu_tree_solve(d, torch.zeros(1, dtype=torch.float64), b, np.array([-1])), b / d)
    d, g, b, parent = _system("cable", (2,), torch.float64)
    with pytest.raises(ModelError, match="parents-first"):
        gpu_tree_solve(d, g, b, parent[::-1].copy())
    with pytest.raises(ModelError, match="does not match"):
        gpu_tree_solve(d, g, b[:1], parent)
    with pytest.raises(ModelError, match="one dtype"):
        gpu_tree_solve(d, g.float(), b, parent)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_kernel_lowers_to_a_cuda_binary(dtype):
    """What the interpreter cannot check: the kernel compiles for an H100/H200 (no GPU needed)."""
    from brainfuse_core.gpu.hines import compile_for_cuda

    with triton_interpreter(False):
        compiled = compile_for_cuda(dtype)
    assert ".entry _eliminate_and_substitute" in compiled.asm["ptx"] and len(compiled.asm["cubin"]) > 5_000
