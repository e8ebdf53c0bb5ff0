"""Source of the Triton kernel that advances a block of one-compartment cells for many steps.

The kernel is written from a CompiledCell's channel set: each gate's curves come from their
``source`` (the same templates and expressions that the tensor path evaluates), mapped to the
Triton helpers of ``functions.py``; the membrane, pool and gate updates follow CompiledCell.step
formula by formula. Every number of the model is a ``p<k>`` loaded from the run-time parameter
array (tables are pointers into it), so the text depends only on the model's structure.
"""

import ast
import math

from ..channels.curves import NotCompilable, scalar
from ..units import DENSITY_TO_ABSOLUTE, FARADAY
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


def curve_source(curve, variables, constant):
    """Triton source of one curve."""
    tree = ast.parse(curve.source(variables, FUNCTIONS, constant), mode="eval")
    return ast.unparse(_Powers().visit(tree))


def body(block, celsius, method, dt, constant):
    """Statements advancing one block of cells by one step of ``dt`` ms: reads s0 (v, mV), s1, ... (gates,
    then [Ca]i) and inj (nA); assigns new_s0, new_s1, ... Numbers the tensor path computes in Python
    floats from dt (−dt·Q10 factor, the pools' decay factor) are passed in computed the same way.
    Raises NotCompilable for what cannot be generated."""
    if block.size != 1:
        raise NotCompilable("a cell of several compartments (this kernel advances point neurons)")
    names = block.state_names()
    local = {name: f"s{k}" for k, name in enumerate(names)}
    lines = []
    currents, conductances, calcium = [], [], []
    for c, (channel, density, reversal) in enumerate(block.channels):
        density = density.detach()
        if density.numel() != 1:
            raise NotCompilable("a batched conductance density")
        powers = [" * ".join([local[f"{channel.name}.{gate.name}"]] * gate.power) for gate in channel.gates]
        fraction = " * ".join(f"({p})" for p in powers)
        lines.append(f"g{c} = {constant(density)}" + (f" * ({fraction})" if fraction else ""))
        lines.append(f"i{c} = g{c} * (s0 - {constant(reversal)})")
        currents.append(f"i{c}")
        conductances.append(f"g{c}")
        if channel.ion == "ca":
            calcium.append(f"i{c}")
    area_factor = constant(block.area_factor.detach())
    step = f"{constant(block.capacitance.detach())} / {constant(dt if method == 'backward_euler' else dt / 2)}"
    lines += [
        f"membrane_g = ({' + '.join(conductances) or '0.0'}) * {area_factor}",
        f"membrane_i = ({' + '.join(currents) or '0.0'}) * {area_factor}",
        f"dv = (inj - membrane_i) / ({step} + membrane_g)",
        "new_s0 = s0 + dv" if method == "backward_euler" else "new_s0 = s0 + 2.0 * dv",
    ]
    variables = {"v": "new_s0"}
    if "cai" in local:
        ca = local["cai"]
        lines.append(f"ca = {ca}")
        i_calcium = " + ".join(calcium) or "0.0"
        for pool, mask in block.pools:
            if bool(mask[0]):
                influx = f"{constant(-pool.gamma * 1e4)} * ({i_calcium}) / {constant(2 * FARADAY * pool.depth)}"
                lines.append(f"target = {constant(pool.rest)} + {influx} * {constant(pool.decay)}")
                lines.append(f"ca = target + (ca - target) * {constant(math.exp(-dt / pool.decay))}")
        lines.append(f"new_{ca} = ca")
        variables["cai"] = "ca"
    for channel, _, _ in block.channels:
        rate = constant(-dt * channel.rate_factor(celsius))
        for gate in channel.gates:
            s = local[f"{channel.name}.{gate.name}"]
            if gate.alpha is not None:
                lines.append(f"a = {curve_source(gate.alpha, variables, constant)}")
                lines.append(f"b = {curve_source(gate.beta, variables, constant)}")
                lines.append("total = a + b")
                lines.append(f"new_{s} = {s} + ({s} - a / total) * _expm1({rate} * total)")
            else:
                lines.append(f"inf = {curve_source(gate.inf, variables, constant)}")
                lines.append(f"tau = {curve_source(gate.tau, variables, constant)}")
                lines.append(f"new_{s} = {s} + ({s} - inf) * _expm1({rate} / tau)")
    return lines


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
        f"        crossed = (s0 < {threshold}) & (new_s0 >= {threshold})",
        "        tl.store(spikes_ptr + cells, tl.where(crossed, 1.0, 0.0), mask=live)",
        f"        tl.store(fraction_ptr + cells, tl.where(crossed, ({threshold} - s0) / tl.where(crossed, new_s0 - s0, 1.0), 0.0), mask=live)",
        "        if RECORD:",
        "            tl.store(trace_ptr + cells, new_s0, mask=live)",
        *[f"{indent}s{k} = new_s{k}" for k in states],
        # Pointers advance a row per step: no step × cells index that could overflow 32 bits.
        *[f"{indent}{name}_ptr += n_cells" for name in ("injected", "spikes", "fraction", "trace")],
        *[f"    tl.store(s{k}_ptr + cells, s{k}, mask=live)" for k in states],
    ]
    return "\n".join(text) + "\n"
