"""Exact gradients through generated Triton kernels: a population of one-compartment cells driven by
a known injected current, forward and backward on the GPU (the counterpart of
``solvers/gradient_kernel.py``, with its contract).

The forward is one launch: each program advances a block of cells through every step with the state
in registers, storing the voltage after each step and the state every ``checkpoint_every`` steps.
The backward runs time in reverse, per segment two launches: the forward kernel replays the segment
from its checkpoint, storing the state before each step into a buffer, and the reverse kernel walks
the segment backwards through the adjoint of one step. Both steps come from the same statements as
the CPU gradient kernels (``step_source.point_step`` and ``adjoint.adjoint`` of it, with the numbers
of ``gradient_kernel.Parameters``), rendered with the Triton helpers of ``functions.py``: no
derivative is written by hand.

Parameter adjoints stay in registers, one per cell and parameter (a table's entries each their
own), summed over the steps of a segment; at the end of a segment each program adds its cells' sum
(``tl.reduce``, a fixed tree) to its own row of a (programs, P) array, which torch sums afterwards: no
atomics, so a run's bits do not depend on scheduling. The parameter array carries the autograd
history of the model's tensors (it is built from the pieces of ``Parameters``), so the gradient
reaches every gbar, curve parameter, Q10 and tabulated-curve point. Everything is computed in the state's dtype (float32 stays
float32). On a CUDA device the kernels run compiled; on the CPU under Triton's interpreter
(TRITON_INTERPRET=1 when a kernel is first generated), which is how the tests check them.
"""

import ast
import math

import torch
import triton

from ..errors import ModelError
from ..solvers import gradient_kernel
from ..solvers.adjoint import render
from .functions import ADJOINT_FUNCTIONS
from .point import _kernel, lower_for_cuda
from .point_source import without_powers


# Cells per program, one warp each: a population of a thousand cells still spreads over 32 of the
# GPU's multiprocessors (each program walks all its steps in sequence), and the per-program sum of
# the parameter adjoints stays within a warp. The reverse step holds 100-250 registers per cell.
BLOCK = 32
WARPS = 1


def supports(block, celsius, method, dt, reset=None):
    """Whether these kernels can run ``block``: exactly what the CPU gradient kernels can (one
    compartment, every number a scalar). Compiles nothing."""
    return gradient_kernel.supports(block, celsius, method, dt, reset)


def run_with_gradients(block, state, dt, injected, celsius, method="backward_euler", checkpoint_every=None, reset=None):
    """Advance ``block`` (a CompiledCell of one compartment; B × C cells) K = ``injected.shape[0]``
    steps of ``dt`` ms, differentiably, in Triton kernels.

    ``state``: the block's state, a dict of (B, C, 1) float32 or float64 tensors (v mV, gates, [Ca]i
    mM) as from ``CompiledCell.initial_state``, on a CUDA device (or the CPU under TRITON_INTERPRET=1);
    ``injected``: (K, B, C) nA per step; ``celsius`` °C; ``method`` "backward_euler" or
    "crank_nicolson"; ``checkpoint_every``: steps between stored states (default √K); ``reset``
    (threshold, v_reset) mV: integrate-and-fire cells, v after every step then being the voltage
    before the reset (which passes no gradient). Returns (v after every step (K, B, C) mV, the final
    state dict), in the state's dtype. Gradients of anything computed from them reach the initial
    state, ``injected`` and every parameter tensor of the model."""
    names = block.state_names()
    v = state["v"]
    shape = v.shape
    if block.size != 1 or len(shape) != 3 or shape[2] != 1:
        raise ModelError("run_with_gradients advances one-compartment cells: state tensors of shape (B, C, 1)")
    if injected.dim() != 3 or tuple(injected.shape[1:]) != tuple(shape[:2]):
        raise ModelError(f"injected current has shape {tuple(injected.shape)}; expected (steps, {shape[0]}, {shape[1]}) nA")
    if v.dtype not in (torch.float32, torch.float64):
        raise ModelError(f"the Triton gradient kernels compute in float32 or float64, not {v.dtype}")
    if v.device.type != "cuda" and not triton.knobs.runtime.interpret:
        raise ModelError(f"the Triton gradient kernels run on a CUDA device (state on {v.device}); on the CPU set "
                         "TRITON_INTERPRET=1 before the kernels are generated, or use solvers.gradient_kernel")
    steps = injected.shape[0]
    every = max(1, round(math.sqrt(steps))) if checkpoint_every is None else int(checkpoint_every)
    if every < 1:
        raise ModelError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every!r}")
    forward, reverse, parameters = _kernels(block, celsius, method, dt, reset)
    # Parameters' pieces live where the model's tensors do (densities on the block's device, curve
    # numbers on the CPU); each moves, with its history, to the run's device and dtype.
    params = torch.cat([piece.to(device=v.device, dtype=v.dtype) for piece in parameters.pieces])
    outputs = _Run.apply((forward, reverse, every), params, injected.to(device=v.device, dtype=v.dtype),
                         *[state[name].to(v.dtype) for name in names])
    return outputs[0], dict(zip(names, outputs[1:]))


class _Run(torch.autograd.Function):
    """The forward keeps the states every ``every`` steps; the backward replays each segment from its
    checkpoint (the forward kernel with every = 1 into a buffer) and walks it back (``reverse``).
    Cells are laid out last, as in the (K, B, C) trace."""

    @staticmethod
    def forward(ctx, settings, params, injected, *initial):
        forward, _, every = settings
        shape, steps, n = initial[0].shape, injected.shape[0], initial[0].numel()
        state = torch.stack([value.detach().reshape(n) for value in initial]).contiguous()
        current = injected.detach().reshape(steps, n).contiguous()
        segments = triton.cdiv(steps, every)
        checkpoints = torch.empty(segments, len(initial), n, dtype=state.dtype, device=state.device)
        trace = torch.empty(steps, n, dtype=state.dtype, device=state.device)
        values = params.detach().contiguous()
        if steps:
            forward[(triton.cdiv(n, BLOCK),)](state, current, values, checkpoints, trace, n, steps, every, segments,
                                              RECORD=True, BLOCK=BLOCK, num_warps=WARPS)
        ctx.settings, ctx.shape, ctx.arrays = settings, shape, (current, values, checkpoints)
        return trace.reshape(steps, *shape[:2]), *[row.reshape(shape) for row in state]

    @staticmethod
    def backward(ctx, d_trace, *d_final):
        forward, reverse, every = ctx.settings
        current, values, checkpoints = ctx.arrays
        steps, n = current.shape
        like = dict(dtype=current.dtype, device=current.device)
        d_trace = torch.zeros(steps, n, **like) if d_trace is None else d_trace.detach().reshape(steps, n).contiguous()
        adjoint_ = torch.stack([torch.zeros(n, **like) if d is None else d.detach().reshape(n) for d in d_final]).contiguous()
        inject = ctx.needs_input_grad[2]
        d_injected = torch.empty(steps if inject else 1, n, **like)
        programs = triton.cdiv(n, BLOCK)
        partial = torch.zeros(programs, values.shape[0], **like)
        buffer = torch.empty(min(every, steps), *checkpoints.shape[1:], **like)
        no_trace, state = torch.empty(1, **like), torch.empty(checkpoints.shape[1:], **like)
        for segment in range(checkpoints.shape[0] - 1, -1, -1):
            first, last = segment * every, min(segment * every + every, steps)
            length = last - first
            state.copy_(checkpoints[segment])
            forward[(programs,)](state, current[first:], values, buffer, no_trace, n, length, 1, length,
                                 RECORD=False, BLOCK=BLOCK, num_warps=WARPS)
            # The reverse kernel starts at the segment's last step and moves its pointers back a row per step.
            reverse[(programs,)](buffer[length - 1], current[last - 1], values, d_trace[last - 1], adjoint_,
                                 d_injected[last - 1 if inject else 0], partial, n, length, INJECT=inject, BLOCK=BLOCK,
                                 num_warps=WARPS)
        d_params = partial.sum(0)
        d_injected = d_injected.reshape(steps, *ctx.shape[:2]) if inject else None
        return (None, d_params, d_injected, *[row.reshape(ctx.shape) for row in adjoint_])


def _kernels(block, celsius, method, dt, reset=None):
    """(forward, reverse, parameters): the kernels for ``block`` (with ``reset``, see
    ``run_with_gradients``) and its ``gradient_kernel.Parameters``. Rendering the source costs tens
    of ms, more than a short run: the kernels are kept by the statements and parameter layout, as
    the CPU gradient kernels are."""
    statements, reverse, parameters, traced = gradient_kernel.step_and_adjoint(block, celsius, method, dt, reset)
    key = (statements, reverse, tuple(parameters.slices.items()))
    if key not in _SOURCES:
        _SOURCES[key] = kernel_source(len(block.state_names()), statements, reverse, parameters, traced)
    return _kernel(_SOURCES[key], "forward"), _kernel(_SOURCES[key], "reverse"), parameters


_SOURCES = {}


def _triton_lines(statements, parameters):
    """Neutral statements in Triton: functions renamed (``ADJOINT_FUNCTIONS``), powers rewritten, a
    table argument followed by its length (as the helpers take tables), and each
    ``accumulate(d_tab<k>, index, value)`` expanded into one register update per entry of the table,
    ``_d<slot>`` (slot: the entry's place in the parameter array)."""
    tables = {name: (start, stop - start) for name, (start, stop) in parameters.slices.items()
              if name not in parameters.scalars}
    lines = []
    for line in render(statements, ADJOINT_FUNCTIONS):
        tree = ast.parse(without_powers(line))
        statement = tree.body[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                args = []
                for arg in node.args:
                    args.append(arg)
                    if isinstance(arg, ast.Name) and arg.id in tables:
                        args.append(ast.Constant(tables[arg.id][1]))
                node.args = args
        call = statement.value if isinstance(statement, ast.Expr) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "accumulate":
            table, index, value = call.args
            start, length = tables[table.id.removeprefix("d_")]
            lines += [f"_index = {ast.unparse(index)}", f"_value = {ast.unparse(value)}"]
            lines += [f"_d{start + k} = _d{start + k} + tl.where(_index == {k}, _value, 0.0)" for k in range(length)]
        else:
            lines.append(ast.unparse(tree))
    return lines


def kernel_source(n_states, statements, reverse, parameters, traced="new_s0"):
    """The source of two ``@triton.jit`` kernels over blocks of BLOCK cells (the statements' state and
    parameter names, ``s<k>``, ``p<k>``, ``tab<k>``; the kernels' own names start with an underscore,
    which no statement name and no adjoint temporary (an underscore and digits) takes):

    ``forward(state (S, n), injected (K, n), params (P,), checkpoints, trace (K, n), n, K, every,
    segments)`` advances the state in place K steps, storing it before step k in ``checkpoints[k //
    every]`` where k % every is 0 and (if RECORD) v after step k (the statements' ``traced``) in
    ``trace[k]``.

    ``reverse(states, injected, params, d_trace, adjoint (S, n), d_injected, partial (programs, P), n,
    K)`` walks K steps back: ``states``, ``injected``, ``d_trace`` and ``d_injected`` point at the
    rows of the last step (the states before it, (S, n) per row), each moving a row back per step. It
    turns the adjoints of the state after the last step (``adjoint``, in place) into those before the
    first, with v's trace adjoint added after each step, writes inj's adjoints (if INJECT) and adds
    each program's sum of the parameter adjoints to its row of ``partial``."""
    states = range(n_states)
    slots = [parameters.slices[name][0] for name in parameters.scalars]
    slots += [k for name in parameters.tables for k in range(*parameters.slices[name])]
    pad = lambda lines, depth: [" " * (4 * depth) + line for line in lines]
    prologue = [
        "_cells = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
        "_live = _cells < _n_cells",
        *[f"{name} = tl.load(_params_ptr + {parameters.slices[name][0]})" for name in parameters.scalars],
        *[f"{name} = _params_ptr + {start}" for name, (start, _) in parameters.slices.items() if name not in parameters.scalars],
    ]
    load = lambda pointer, k, other: f"tl.load({pointer} + {k} * _n_cells + _cells, mask=_live, other={other})"
    store = lambda pointer, k, value: f"tl.store({pointer} + {k} * _n_cells + _cells, {value}, mask=_live)"
    text = [
        "@triton.jit",
        "def forward(_state_ptr, _injected_ptr, _params_ptr, _checkpoints_ptr, _trace_ptr, _n_cells, _n_steps, _every,",
        "            _n_segments, RECORD: tl.constexpr, BLOCK: tl.constexpr):",
        *pad(prologue, 1),
        *pad([f"s{k} = {load('_state_ptr', k, 1.0)}" for k in states], 1),
        "    for _segment in range(_n_segments):",
        *pad([store("_checkpoints_ptr", k, f"s{k}") for k in states], 2),
        f"        _checkpoints_ptr += {n_states} * _n_cells",
        "        for _step in range(_segment * _every, tl.minimum(_segment * _every + _every, _n_steps)):",
        "            inj = tl.load(_injected_ptr + _cells, mask=_live, other=0.0)",
        *pad(_triton_lines(statements, parameters), 3),
        *pad([f"s{k} = new_s{k}" for k in states], 3),
        "            if RECORD:",
        f"                tl.store(_trace_ptr + _cells, {traced}, mask=_live)",
        # Pointers advance a row per step: no step × cells index that could overflow 32 bits.
        "            _injected_ptr += _n_cells",
        "            _trace_ptr += _n_cells",
        *pad([store("_state_ptr", k, f"s{k}") for k in states], 1),
        "",
        "@triton.jit",
        "def reverse(_states_ptr, _injected_ptr, _params_ptr, _d_trace_ptr, _adjoint_ptr, _d_injected_ptr, _partial_ptr,",
        "            _n_cells, _n_steps, INJECT: tl.constexpr, BLOCK: tl.constexpr):",
        *pad(prologue, 1),
        "    _zero = tl.full([BLOCK], 0.0, _params_ptr.dtype.element_ty)",
        *pad([f"_a{k} = {load('_adjoint_ptr', k, 0.0)}" for k in states], 1),
        *pad([f"_d{slot} = _zero" for slot in slots], 1),
        "    for _step in range(_n_steps):",
        *pad([f"s{k} = {load('_states_ptr', k, 1.0)}" for k in states], 2),
        "        inj = tl.load(_injected_ptr + _cells, mask=_live, other=0.0)",
        *(["        d_new_s0 = _a0 + tl.load(_d_trace_ptr + _cells, mask=_live, other=0.0)"] if traced == "new_s0" else
          ["        d_new_s0 = _a0", f"        d_{traced} = tl.load(_d_trace_ptr + _cells, mask=_live, other=0.0)"]),
        *pad([f"d_new_s{k} = _a{k}" for k in states if k], 2),
        *pad(_triton_lines(reverse, parameters), 2),
        # + _zero: an adjoint that is a plain 0.0 stays a block of the loop-carried type.
        *pad([f"_a{k} = d_s{k} + _zero" for k in states], 2),
        *pad([f"_d{parameters.slices[name][0]} = _d{parameters.slices[name][0]} + d_{name}" for name in parameters.scalars], 2),
        "        if INJECT:",
        "            tl.store(_d_injected_ptr + _cells, d_inj, mask=_live)",
        f"        _states_ptr -= {n_states} * _n_cells",
        "        _injected_ptr -= _n_cells",
        "        _d_trace_ptr -= _n_cells",
        "        _d_injected_ptr -= _n_cells",
        *pad([store("_adjoint_ptr", k, f"_a{k}") for k in states], 1),
        f"    _row = _partial_ptr + tl.program_id(0) * {parameters.size}",
        *pad([f"tl.store(_row + {slot}, tl.load(_row + {slot}) + tl.reduce(tl.where(_live, _d{slot}, 0.0), 0, _add))"
              for slot in slots], 1),
    ]
    return "\n".join(text) + "\n"


def compile_for_cuda(block, celsius, method, dt, dtype, capability=90, reset=None):
    """The forward and reverse kernels for ``block`` compiled to cubins for a CUDA GPU of compute
    ``capability`` (90: H100, H200), with no GPU needed: checks that the generated source lowers, which
    the interpreter cannot. Run with TRITON_INTERPRET unset."""
    forward, reverse, _ = _kernels(block, celsius, method, dt, reset)
    pointer = {torch.float32: "*fp32", torch.float64: "*fp64"}[dtype]
    arrays = {f"_{name}_ptr": pointer for name in ("state", "injected", "params", "checkpoints", "trace")}
    signature = {**arrays, "_n_cells": "i32", "_n_steps": "i32", "_every": "i32", "_n_segments": "i32",
                 "RECORD": "constexpr", "BLOCK": "constexpr"}
    compiled_forward = lower_for_cuda(forward, signature, {"RECORD": True, "BLOCK": BLOCK}, capability, WARPS)
    arrays = {f"_{name}_ptr": pointer for name in ("states", "injected", "params", "d_trace", "adjoint", "d_injected", "partial")}
    signature = {**arrays, "_n_cells": "i32", "_n_steps": "i32", "INJECT": "constexpr", "BLOCK": "constexpr"}
    return compiled_forward, lower_for_cuda(reverse, signature, {"INJECT": True, "BLOCK": BLOCK}, capability, WARPS)
