"""Run a population of one-compartment cells with the generated Triton kernels.

For cells whose input is known in advance (injected current, no synapses): one launch advances
every cell ``steps`` steps with its state in registers (``run_point_population``). For cells with
synaptic input from a network: one launch per step (``step_kernel``; ``gpu/network.py`` drives it).
On a CUDA device they run compiled; on the CPU under Triton's interpreter (TRITON_INTERPRET=1 when
a kernel is first generated), which is how the tests compare them with the tensor path.
"""

import linecache

import torch
import triton

from ..channels.curves import NotCompilable
from ..errors import ModelError
from .functions import jitted
from .point_source import Parameters, body, kernel_source, step_kernel_source

_KERNELS = {}


def run_point_population(block, state, dt, injected, threshold, celsius, method="backward_euler", record_v=False):
    """Advance ``block`` (a CompiledCell of one compartment) ``K = injected.shape[0]`` steps of ``dt`` ms.

    ``state``: the block's state dict, tensors (B, C, 1) (v in mV, gates, [Ca]i in mM), as from
    ``CompiledCell.initial_state``; ``injected``: (K, B, C) nA per step; ``threshold`` mV; ``celsius`` °C.
    Returns (new state, spikes (K, B, C) 0/1, crossing fractions (K, B, C) 0..1 where a spike is,
    v after every step (K, B, C) mV or None) — the contract of the CPU kernel's ``run``."""
    advance, names, parameters = _generate(block, celsius, method, dt, threshold)
    shape = state["v"].shape
    dtype, device = state["v"].dtype, state["v"].device
    steps, n_cells = injected.shape[0], shape[0] * shape[1]
    if injected.shape[1:] != shape[:2]:
        raise ModelError(f"injected current has shape {tuple(injected.shape)}; expected (steps, {shape[0]}, {shape[1]})")
    new = [state[name].detach().reshape(-1).to(dtype).clone() for name in names]
    current = injected.detach().to(dtype=dtype, device=device).reshape(steps, n_cells).contiguous()
    params = torch.tensor(parameters.values, dtype=dtype, device=device)
    spikes = torch.empty(steps, n_cells, dtype=dtype, device=device)
    fraction = torch.empty_like(spikes)
    trace = torch.empty_like(spikes) if record_v else torch.empty(1, dtype=dtype, device=device)
    block_size = block_size_for(n_cells)
    grid = (triton.cdiv(n_cells, block_size),)
    advance[grid](*new, current, params, spikes, fraction, trace, n_cells, steps, RECORD=record_v, BLOCK=block_size)
    as_steps = lambda values: values.reshape(steps, *shape[:2])
    return ({name: value.reshape(shape) for name, value in zip(names, new)},
            as_steps(spikes), as_steps(fraction), as_steps(trace) if record_v else None)


def step_kernel(block, celsius, method, dt, threshold):
    """The one-step kernel of ``block`` with synaptic input (``point_source.step_kernel_source``), its
    state names and its run-time parameters (``Parameters``)."""
    return _generate(block, celsius, method, dt, threshold, step=True)


def block_size_for(n):
    """Cells (or sites) per program: 128, fewer for small populations."""
    return min(128, max(16, triton.next_power_of_2(n)))


def compile_for_cuda(block, celsius, method, dt, dtype, capability=90, step=False):
    """The kernel for ``block`` (``advance``, or ``step`` if ``step``) compiled to a cubin for a CUDA GPU of
    compute ``capability`` (90: H100, H200), with no GPU needed: checks that the generated source lowers,
    which the interpreter cannot. Run with TRITON_INTERPRET unset."""
    kernel, names, _ = _generate(block, celsius, method, dt, threshold=0.0, step=step)
    pointer = {torch.float32: "*fp32", torch.float64: "*fp64"}[dtype]
    signature = {f"s{k}_ptr": pointer for k in range(len(names))}
    if step:
        arrays = ("injected", "lin_g", "lin_ge", "params", "spikes", "fraction", "trace")
        signature.update({f"{name}_ptr": pointer for name in arrays})
        signature.update({"n_cells": "i32", "row": "i32", "INJECT": "constexpr", "RECORD": "constexpr", "BLOCK": "constexpr"})
        constants = {"INJECT": True, "RECORD": True, "BLOCK": 128}
    else:
        signature.update({f"{name}_ptr": pointer for name in ("injected", "params", "spikes", "fraction", "trace")})
        signature.update({"n_cells": "i32", "n_steps": "i32", "RECORD": "constexpr", "BLOCK": "constexpr"})
        constants = {"RECORD": True, "BLOCK": 128}
    return lower_for_cuda(kernel, signature, constants, capability)


def lower_for_cuda(kernel, signature, constants, capability=90, warps=4):
    """``kernel`` (a ``triton.jit`` function) compiled for ``signature`` to a cubin for compute ``capability``,
    programs of ``warps`` warps."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    return triton.compile(ASTSource(kernel, signature, constexprs=constants), target=GPUTarget("cuda", capability, 32),
                          options={"num_warps": warps})


def _generate(block, celsius, method, dt, threshold, step=False):
    """The kernel for ``block`` (``advance``, or ``step`` with synaptic input), its state names and the
    run-time parameters (``Parameters``)."""
    parameters = Parameters()
    try:
        lines = body(block, celsius, method, float(dt), parameters, synaptic=step)
        threshold_text = parameters(threshold)
    except NotCompilable as err:
        raise ModelError(f"the Triton point-neuron kernel cannot run this population: {err}; "
                         "run it on the tensor path (Simulation(..., compiled=False))") from None
    names = block.state_names()
    source = (step_kernel_source if step else kernel_source)(names, lines, parameters.scalars, threshold_text)
    return _kernel(source, "step" if step else "advance"), names, parameters


def _kernel(source, name):
    """The compiled kernel ``name`` of ``source``, generated once per source text and interpreter setting
    (a source may hold several kernels)."""
    key = (source, triton.knobs.runtime.interpret)
    if key not in _KERNELS:
        filename = f"<brainfuse triton kernel {len(_KERNELS)}>"
        # Triton reads a kernel's source back through inspect; linecache is where it finds generated text.
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        namespace = jitted({})
        exec(compile(source, filename, "exec"), namespace)  # our generated code, never user text
        _KERNELS[key] = namespace
    return _KERNELS[key][name]
