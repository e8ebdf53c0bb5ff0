"""Sources of the Triton kernels that advance a block of one-compartment cells: ``advance`` (many
steps per launch, state in registers, for input known in advance) and ``step`` (one step per launch,
state in global memory, with synaptic input, for cells in a recurrent network).

The step is ``step_source.point_step`` (the one generator of a point cell's step, shared with the
compiled CPU kernels) rendered with the Triton helpers of ``functions.py``. Every number of the model is a ``p<k>`` loaded from the run-time parameter
array (tables are pointers into it), so the text depends only on the model's structure.
"""

import ast

from ..channels.curves import scalar
from ..solvers.step_source import point_step
from .functions import FUNCTIONS


class Parameters:
    """The model's numbers, collected while the source is written. A scalar becomes ``p<k>`` (loaded
    once per program); a table becomes ``params_ptr + start, length`` (as _pchip takes it)."""

    def __init__(self):
        self.values = []
        self.scalars = []

    def __call__(self, value):
        start = len(self.values)
        if isinstance(value, (list, tuple)):
            self.values.extend(float(v) for v in value)
            return f"params_ptr + {start}, {len(value)}"
        self.values.append(scalar(value))
        self.scalars.append(start)
        return f"p{start}"


class _Powers(ast.NodeTransformer):
    """``a ** b`` → helper calls (Triton tensors have no ``**``): squares and cubes multiply, as torch's pow
    does for those exponents; other powers use _pow. Powers of two plain numbers stay Python arithmetic."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, ast.Pow) or not (_reads_values(node.left) or _reads_values(node.right)):
            return node
        exponent = node.right.value if isinstance(node.right, ast.Constant) else None
        if exponent in (2.0, 3.0):
            return ast.Call(ast.Name("_square" if exponent == 2.0 else "_cube", ast.Load()), [node.left], [])
        return ast.Call(ast.Name("_pow", ast.Load()), [node.left, node.right], [])


def _reads_values(node):
    return any(isinstance(sub, (ast.Name, ast.Call)) for sub in ast.walk(node))


def without_powers(text):
    """``text`` (an expression or a statement) with its powers rewritten as helper calls (``_Powers``)."""
    return ast.unparse(_Powers().visit(ast.parse(text)))


def body(block, celsius, method, dt, constant, synaptic=False):
    """Statements advancing one block of cells by one step of ``dt`` ms (``step_source.point_step`` in
    Triton's functions, powers rewritten; with ``synaptic`` they read ``lin_g`` µS and ``lin_ge`` nA);
    raises NotCompilable for what cannot be generated."""
    return point_step(block, celsius, method, dt, constant, FUNCTIONS, rewrite=without_powers, synaptic=synaptic)


def _detection(threshold, row, indent):
    """Spike (upward crossing of ``threshold``), crossing fraction and (if RECORD) v stored at ``row + cells``."""
    return [indent + line for line in (
        f"crossed = (s0 < {threshold}) & (new_s0 >= {threshold})",
        f"tl.store(spikes_ptr + {row}cells, tl.where(crossed, 1.0, 0.0), mask=live)",
        f"tl.store(fraction_ptr + {row}cells, tl.where(crossed, ({threshold} - s0) / tl.where(crossed, new_s0 - s0, 1.0), 0.0), mask=live)",
        "if RECORD:",
        f"    tl.store(trace_ptr + {row}cells, new_s0, mask=live)",
    )]


def kernel_source(names, lines, scalars, threshold):
    """The ``@triton.jit`` kernel ``advance`` around ``lines`` (see ``body``): state in registers for
    ``n_steps`` steps, injected current (nA) read per step, spikes (upward crossings of ``threshold``,
    the text of its parameter), crossing fractions and (if RECORD) v written per step, the state
    stored back at the end."""
    states = range(len(names))
    indent = " " * 8
    text = [
        "@triton.jit",
        f"def advance({', '.join(f's{k}_ptr' for k in states)}, injected_ptr, params_ptr, spikes_ptr, fraction_ptr,",
        "            trace_ptr, n_cells, n_steps, RECORD: tl.constexpr, BLOCK: tl.constexpr):",
        "    cells = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
        "    live = cells < n_cells",
        *[f"    p{k} = tl.load(params_ptr + {k})" for k in scalars],
        *[f"    s{k} = tl.load(s{k}_ptr + cells, mask=live, other=1.0)" for k in states],
        "    for step in range(n_steps):",
        "        inj = tl.load(injected_ptr + cells, mask=live, other=0.0)",
        *[indent + line for line in lines],
        *_detection(threshold, "", indent),
        *[f"{indent}s{k} = new_s{k}" for k in states],
        # Pointers advance a row per step: no step × cells index that could overflow 32 bits.
        *[f"{indent}{name}_ptr += n_cells" for name in ("injected", "spikes", "fraction", "trace")],
        *[f"    tl.store(s{k}_ptr + cells, s{k}, mask=live)" for k in states],
    ]
    return "\n".join(text) + "\n"


def step_kernel_source(names, lines, scalars, threshold):
    """The ``@triton.jit`` kernel ``step`` around ``lines`` (see ``body``, written with ``synaptic``):
    one step of every cell, its state loaded from and stored back to global memory, so that synaptic
    input computed from the other cells' spikes can enter every step. Reads per cell ``lin_g`` (µS),
    ``lin_ge`` (nA) and, if INJECT, the injected current (nA) at ``injected_ptr + row``; writes spike,
    crossing fraction and (if RECORD) v at ``row`` of their (steps, cells) records."""
    states = range(len(names))
    text = [
        "@triton.jit",
        f"def step({', '.join(f's{k}_ptr' for k in states)}, injected_ptr, lin_g_ptr, lin_ge_ptr, params_ptr, spikes_ptr,",
        "         fraction_ptr, trace_ptr, n_cells, row, INJECT: tl.constexpr, RECORD: tl.constexpr, BLOCK: tl.constexpr):",
        "    cells = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
        "    live = cells < n_cells",
        *[f"    p{k} = tl.load(params_ptr + {k})" for k in scalars],
        *[f"    s{k} = tl.load(s{k}_ptr + cells, mask=live, other=1.0)" for k in states],
        "    if INJECT:",
        "        inj = tl.load(injected_ptr + row + cells, mask=live, other=0.0)",
        "    else:",
        "        inj = tl.full([BLOCK], 0.0, s0.dtype)",
        "    lin_g = tl.load(lin_g_ptr + cells, mask=live, other=0.0)",
        "    lin_ge = tl.load(lin_ge_ptr + cells, mask=live, other=0.0)",
        *["    " + line for line in lines],
        *_detection(threshold, "row + ", "    "),
        *[f"    tl.store(s{k}_ptr + cells, new_s{k}, mask=live)" for k in states],
    ]
    return "\n".join(text) + "\n"
