"""GPU benchmark (issue 5): the generated Triton point-neuron kernel on an H200-class machine.

Workload: ``benchmarks.peers.hh_independent``'s — n unconnected squid HH cells (hh_na, hh_k, leak;
1000 µm², 6.3 °C, v from −65 mV), constant currents spread over 0..20 µA/cm², dt 0.025 ms,
spikes at upward crossings of 0 mV — advanced by ``gpu.point.run_point_population`` for
n = 10⁴, 10⁵, 10⁶, 10⁷ in float32 and float64. It prints a table and writes JSON (``--out``) with:

* neuron-steps/s. Each call of K steps is timed on its own (synchronised before and after); the
  calls alternate K/2 and K steps, so the per-call host overhead (generating the statements,
  copying the parameters, allocating the spike records) and the kernel's time per step separate:
  t(K) = overhead + K·per-step. "kernel" is n / per-step, "end to end" n·K / t(K). K is as many
  steps as fit the memory budget (the call's input and spike records are (K, n) each), at most
  ``--max-steps``; calls repeat until ``--seconds`` per size. The first call (K/2 steps) is timed apart:
  for the first size of a dtype it includes generating and compiling the kernel ("first s"; "compile s"
  is what it took beyond a warm call of the same length).
* bytes per neuron-step, counted from the generated kernel's source (its AST): every tl.load and
  tl.store whose address depends on the cell, inside the step loop (the step's injected current,
  spike and crossing fraction) per step, outside it (the state) per launch; the scalar parameter
  loads (once per program of 128 cells and launch) are left out. Achieved bandwidth = those bytes × kernel neuron-steps/s, against 4.8 TB/s and
  against a device-to-device copy measured in the same run.
* flops per neuron-step, counted from the same AST's step loop: +, −, ×, ÷ one each (as the
  peaks count an FMA as two); negation, comparison, select (tl.where), abs, min and max none;
  the helpers (_expm1, _explinear, _sigmoid, ...) are expanded, all branches of a select
  included, since every lane evaluates them. exp, log and sqrt are counted apart as
  transcendentals, not as flops. As a cross-check the PTX the kernel compiles to is censused
  (a static count of floating-point instructions, FMA = 2, nearly all in the step loop, which
  has no branches): in float32 Triton lowers tl.exp to ex2.approx (the special-function unit)
  and tl.log and ÷ to instruction sequences; in float64 exp and log become FMA sequences.
* speedup over single-core NEURON (hh, same workload, 10⁴ cells, 100 ms), NEURON measured on the
  same machine in a fresh process if the ``neuron`` package imports there, else the number
  measured on the 2-core CI machine below, and the table says which.
* the Triton tree (Hines) solve (``gpu/hines.py``) on a 100-segment cable for 10⁴..10⁶ cells:
  agreement with the CPU solve (forward and gradients) and time per solve.
* a correctness check of the kernel on the device against the tensor path on the CPU.
* the issue's layer bar on the device: forward + backward of an HHLayer against a LIFLayer of the
  same width (64 × 512 neurons, 100 bins of 1 ms at dt 0.1 ms, float32) through the Triton gradient
  kernels (``gpu/point_backward.py``): time and peak device memory ratios, spikes checked against
  the CPU kernels.

Peaks (NVIDIA H200 Tensor Core GPU datasheet, SXM: nvidia.com/en-us/data-center/h200): HBM3e
4.8 TB/s, FP32 67 TFLOP/s, FP64 34 TFLOP/s (non-tensor). Special-function unit: 16 results per
clock per multiprocessor for compute capability 9.0 (CUDA C++ Programming Guide, arithmetic
instruction throughput), × 132 multiprocessors × 1.98 GHz = 4.2·10¹² exp2/s in float32.

Prepared command for the device machine (kind nvidia-h200: Python 3.12, torch 2.11, triton 3.6 in
its image, which has everything BrainFuse imports; NEURON is not there and travels as wheels,
18 MB; its other needs, numpy, packaging, setuptools and sympy, are there). Once, here, in the repo root:

    echo /.whl/ >> .git/info/exclude
    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \\
        -d .whl neuron==9.0.2 find-libpython

then the device tool's ``run`` with ``carry: [".whl"]``, ``timeout_s: 540`` and the command

    bash benchmarks/gpu.sh

(it installs .whl/*.whl into /tmp/site when present and runs ``python3 -m benchmarks.gpu --out
$OUT/gpu.json``, the log in $OUT/gpu.log and nvidia-smi's clocks in $OUT/nvidia_smi.csv). Not run on
a GPU yet: estimated 2–3 minutes; it starts no measurement after ``--budget-s`` (420 s) and saves
the JSON after each one. Without the wheels the speedup uses the CI machine's NEURON number.

On this CPU, to check the script works (TRITON_INTERPRET=1, tiny sizes; about 40 s, most of it the
interpreter and NEURON's start):

    .venv/bin/python -m benchmarks.gpu --smoke --out /tmp/gpu_smoke.json
"""

import argparse
import ast
import contextlib
import functools
import inspect
import json
import os
import platform
import re
import statistics
import subprocess
import time

import torch
import triton

import brainfuse_core as bf
from brainfuse_core.gpu import functions as gpu_functions
from brainfuse_core.gpu import hines as gpu_hines
from brainfuse_core.gpu.point import compile_for_cuda, run_point_population
from brainfuse_core.gpu.point_source import Parameters, body, kernel_source
from brainfuse_core.solvers.hines import tree_solve as cpu_tree_solve
from brainfuse_core.solvers.membrane import CompiledCell
from brainfuse_core.spikes import threshold_crossing

from .peers import hh_independent as peer_hh
from .peers.isolate import run_isolated

METHOD = "backward_euler"
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PEAKS = {"bandwidth_bytes_per_s": 4.8e12, "flops_per_s": {"float32": 67e12, "float64": 34e12},
         "exp2_per_s_float32": 16 * 132 * 1.98e9,
         "source": "NVIDIA H200 datasheet (SXM): 4.8 TB/s HBM3e, FP32 67 TFLOP/s, FP64 34 TFLOP/s; special-function "
                   "unit 16/clock/SM (CUDA C++ Programming Guide, cc 9.0) x 132 SMs x 1.98 GHz"}
# NEURON 9.0.2 on the 2-core CI machine (Xeon, AVX-512), 2026-11-30, `python -m benchmarks.peers.hh_independent
# --n 10000 --duration-ms 100 --peers neuron`, while other sessions loaded the machine (load average about 3; a
# second run at load 5.5 gave 1.2e6). The README's table has 4.9e6 (1 s, a quieter hour): speedups against this
# number may be up to 1.6x too high, which the report says where it is used.
NEURON_CI = {"simulator": "neuron", "n": 10_000, "duration_ms": 100.0, "steps": 4000, "neuron_steps_per_s": 3.106e6,
             "build_s": 1.13, "run_s": 12.88, "n_spikes": 55579}
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
TREE_SIZES = (10_000, 100_000, 1_000_000)
FREE = {"tl.where", "tl.abs", "tl.minimum", "tl.maximum", "tl.floor", "tl.program_id", "tl.arange"}
TRANSCENDENTAL = {"tl.exp": "exp", "tl.log": "log", "tl.sqrt": "sqrt"}


# --- the workload -------------------------------------------------------------------------------

def hh_block(dtype, device):
    cell = bf.Cell.point(area=peer_hh.AREA_UM2, channels=[bf.channel("hh_na"), bf.channel("hh_k"), bf.channel("leak")])
    return CompiledCell(cell, dtype, device)


def initial_state(block, n, dtype, device):
    return block.initial_state(torch.full((1, n, 1), peer_hh.V_INIT, dtype=dtype, device=device), peer_hh.CELSIUS)


def drive_na(n, dtype, device):
    """Per-cell current (nA): the peers' µA/cm² spread × 1000 µm² × 1e-5 nA/(µA/cm² · µm²)."""
    return torch.as_tensor(peer_hh.drive_currents(n) * peer_hh.AREA_UM2 * 1e-5, dtype=dtype, device=device)


def run(block, state, injected):
    return run_point_population(block, state, peer_hh.DT_MS, injected, peer_hh.V_SPIKE, peer_hh.CELSIUS, METHOD)


# --- counting the kernel's work -----------------------------------------------------------------

def kernel_text(block):
    """The source of the generated ``advance`` kernel for ``block``."""
    parameters = Parameters()
    lines = body(block, peer_hh.CELSIUS, METHOD, peer_hh.DT_MS, parameters)
    threshold = parameters(peer_hh.V_SPIKE)
    return kernel_source(block.state_names(), lines, parameters.scalars, threshold)


class Work:
    """Operations counted in code: flops, transcendentals by name, per-cell loads and stores, scalar loads."""

    def __init__(self):
        self.counts = {"flops": 0, "exp": 0, "log": 0, "sqrt": 0, "cell_loads": 0, "cell_stores": 0, "scalar_loads": 0}

    def add(self, other):
        for key, value in other.counts.items():
            self.counts[key] += value

    def expression(self, node):
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                self.counts["flops"] += 1
            elif not isinstance(node.op, (ast.BitAnd, ast.BitOr)):
                raise ValueError(f"cannot count {ast.unparse(node)}")
            self.expression(node.left)
            self.expression(node.right)
        elif isinstance(node, (ast.UnaryOp, ast.Compare, ast.BoolOp)):
            for child in ast.iter_child_nodes(node):
                self.expression(child)
        elif isinstance(node, ast.Call):
            self.call(ast.unparse(node.func), node)
        elif not isinstance(node, (ast.Name, ast.Constant, ast.Load, ast.cmpop, ast.unaryop, ast.boolop)):
            raise ValueError(f"cannot count {ast.unparse(node)}")

    def call(self, name, node):
        if name in ("tl.load", "tl.store"):
            per_cell = any(isinstance(n, ast.Name) and n.id == "cells" for n in ast.walk(node.args[0]))
            key = ("cell_loads" if name == "tl.load" else "cell_stores") if per_cell else "scalar_loads"
            self.counts[key] += 1
            for value in node.args[1:]:
                self.expression(value)
            return
        for argument in node.args:
            self.expression(argument)
        if name in TRANSCENDENTAL:
            self.counts[TRANSCENDENTAL[name]] += 1
        elif name.startswith("_") and hasattr(gpu_functions, name):
            self.add(helper_work(name))
        elif name not in FREE:
            raise ValueError(f"cannot count a call of {name}")

    def statements(self, statements, record=False):
        for statement in statements:
            if isinstance(statement, (ast.Assign, ast.Expr, ast.Return)):
                self.expression(statement.value)
            elif isinstance(statement, ast.AugAssign) and statement.target.id.endswith("_ptr"):
                continue  # pointer arithmetic
            elif isinstance(statement, ast.If) and ast.unparse(statement.test) == "RECORD":
                if record:
                    self.statements(statement.body)
            else:
                raise ValueError(f"cannot count {ast.unparse(statement)}")


@functools.cache
def helper_work(name):
    """The work of one call of a helper of ``gpu/functions.py`` (its body, every branch)."""
    work = Work()
    function = ast.parse(inspect.getsource(getattr(gpu_functions, name))).body[0]
    statements = function.body[1:] if ast.get_docstring(function) else function.body
    work.statements(statements)
    return work


def kernel_work(source):
    """Work per cell per step (the step loop) and per launch (the rest), RECORD off as the benchmark runs it."""
    function = ast.parse(source).body[0]
    loop = next(s for s in function.body if isinstance(s, ast.For))
    per_step, per_launch = Work(), Work()
    per_step.statements(loop.body)
    per_launch.statements([s for s in function.body if s is not loop])
    return per_step.counts, per_launch.counts


PTX_FLOPS = {"add": 1, "sub": 1, "mul": 1, "div": 1, "fma": 2}
PTX_UNITS = ("ex2", "lg2", "rcp", "sqrt", "rsqrt")


@contextlib.contextmanager
def compiled_mode():
    """TRITON_INTERPRET unset for the duration (compiling for CUDA needs it off; the smoke run has it on)."""
    saved = os.environ.pop("TRITON_INTERPRET", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["TRITON_INTERPRET"] = saved


def ptx_census(dtype):
    """Floating-point instructions in the PTX of the kernel compiled for sm_90 (no GPU needed)."""
    with compiled_mode():
        compiled = compile_for_cuda(hh_block(dtype, "cpu"), peer_hh.CELSIUS, METHOD, peer_hh.DT_MS, dtype)
    suffix = "f32" if dtype == torch.float32 else "f64"
    counts = {}
    for match in re.finditer(rf"^\s*(?:@!?%p\d+\s+)?([a-z0-9]+)(?:\.[a-z0-9]+)*\.{suffix}\b", compiled.asm["ptx"], re.M):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    flops = sum(PTX_FLOPS.get(op, 0) * n for op, n in counts.items())
    return {"instructions": counts, "flops_fma_as_2": flops, "special_function": {op: counts.get(op, 0) for op in PTX_UNITS}}


def bytes_per_neuron_step(per_step, per_launch, itemsize, steps):
    """Bytes moved per neuron-step by a launch of ``steps`` steps: per-step cell traffic, the state once per launch."""
    per_cell_launch = (per_launch["cell_loads"] + per_launch["cell_stores"]) * itemsize
    return (per_step["cell_loads"] + per_step["cell_stores"]) * itemsize + per_cell_launch / steps


# --- measurements -------------------------------------------------------------------------------

def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device, gib=2.0, repeats=10):
    """A device-to-device copy of ``gib`` GiB: bytes read plus written per second."""
    source = torch.empty(int(gib * 2**30) // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        target.copy_(source)
    synchronize(device)
    return 2 * source.numel() * 4 * repeats / (time.perf_counter() - started)


def check_against_tensor_path(device, dtype, cells, steps):
    """The kernel on ``device`` against CompiledCell.step on the CPU (float64 for float64, float32 for float32):
    max |Δv| over the run (mV) and the spike counts of both."""
    block, reference = hh_block(dtype, device), hh_block(dtype, "cpu")
    state, expected = initial_state(block, cells, dtype, device), initial_state(reference, cells, dtype, "cpu")
    current = drive_na(cells, dtype, "cpu")
    injected = current.expand(steps, 1, cells).contiguous()
    _, spikes, _, trace = run_point_population(block, state, peer_hh.DT_MS, injected.to(device), peer_hh.V_SPIKE,
                                               peer_hh.CELSIUS, METHOD, record_v=True)
    trace = trace.cpu()
    error, expected_spikes = 0.0, 0
    for k in range(steps):
        old = expected["v"]
        expected = reference.step(expected, peer_hh.DT_MS, peer_hh.CELSIUS, METHOD, current.reshape(1, cells, 1), 0.0, 0.0)
        error = max(error, (trace[k] - expected["v"][..., 0]).abs().max().item())
        expected_spikes += int(threshold_crossing(old[..., 0], expected["v"][..., 0], peer_hh.V_SPIKE).sum())
    return {"cells": cells, "steps": steps, "max_abs_dv_mv": error, "spikes": int(spikes.sum()), "spikes_reference": expected_spikes}


def throughput(device, dtype, n, max_steps, memory_budget, seconds):
    """One size: the first call, then alternating calls of K/2 and K steps (see the module docstring)."""
    itemsize = torch.finfo(dtype).bits // 8
    # Input, spikes and fractions are (K, n) each; the input is one tensor sliced for K/2.
    steps = max(2, min(max_steps, int(memory_budget // (3 * itemsize * n))))
    half = steps // 2
    block = hh_block(dtype, device)
    state = initial_state(block, n, dtype, device)
    injected = drive_na(n, dtype, device).expand(steps, 1, n).contiguous()

    def call(k):
        nonlocal state
        synchronize(device)
        started = time.perf_counter()
        state, spikes, _, _ = run(block, state, injected[:k])
        synchronize(device)
        return time.perf_counter() - started, spikes

    # Triton specialises a kernel on its integer arguments (divisibility by 16): one untimed call of each
    # length compiles whatever variant it needs before the timing starts.
    first_s, _ = call(half)
    call(steps)
    times = {half: [], steps: []}
    spikes_total, full_steps = 0, 0
    started = time.perf_counter()
    while not times[steps] or time.perf_counter() - started < seconds:
        for k in (half, steps):
            elapsed, spikes = call(k)
            times[k].append(elapsed)
            if k == steps:
                spikes_total += int(spikes.sum())
                full_steps += k
    t_half, t_full = statistics.median(times[half]), statistics.median(times[steps])
    per_step = (t_full - t_half) / (steps - half)
    overhead = t_half - per_step * half if per_step > 0 else None
    simulated_s = full_steps * peer_hh.DT_MS * 1e-3
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "steps_per_call": steps, "calls": 2 * len(times[steps]),
            "neuron_steps": n * (half + steps) * len(times[steps]), "first_call_s": first_s,
            "first_call_beyond_warm_s": first_s - t_half, "overhead_per_call_s": overhead,
            "kernel_neuron_steps_per_s": n / per_step if per_step > 0 else None,
            "end_to_end_neuron_steps_per_s": n * steps / t_full,
            "spikes_per_neuron_per_s": spikes_total / (n * simulated_s)}


def neuron_peer(smoke):
    """Single-core NEURON on the workload here, in a fresh process; the CI machine's number if it cannot run."""
    n, duration = (200, 5.0) if smoke else (10_000, 100.0)
    try:
        result = run_isolated(peer_hh.run_peer, {"peer": "neuron", "n": n, "duration_ms": duration}, timeout=300)
        return {**result, "where": "measured on this machine, this run"}
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return {**NEURON_CI, "where": f"the 2-core CI machine's number, measured under load (up to 1.6x low; "
                                      f"NEURON did not run here: {reason})"}


def tree_solves(device, dtype, sizes, seconds):
    """The Triton tree solve on a 100-segment cable (102 nodes): checked against the CPU solve, then timed."""
    layout = bf.Cell(bf.Morphology([bf.Section("cable", length=1000.0, diameter=1.0, nseg=100)]), ra=35.4).layout
    parent, n_nodes = layout.parent, layout.size
    axial = torch.as_tensor(layout.axial_conductance, dtype=dtype, device=device)
    neighbours = axial.clone().index_add(0, torch.as_tensor(parent[1:], device=device), axial[1:])
    generator = torch.Generator(device=device).manual_seed(0)

    def system(cells):
        # µS: axial coupling plus a membrane term (capacitance/dt and channels) of 1e-3..1.
        d = neighbours + 10.0 ** (3.0 * torch.rand(cells, n_nodes, generator=generator, device=device, dtype=dtype) - 3.0)
        return d, torch.randn(cells, n_nodes, generator=generator, device=device, dtype=dtype)

    rows = []
    d, b = system(min(sizes[0], 1000))
    leaves = [t.clone().requires_grad_(True) for t in (d, axial, b)]
    x = gpu_hines.tree_solve(*leaves, parent)
    x.square().sum().backward()
    cpu = [t.detach().cpu().double().requires_grad_(True) for t in (d, axial, b)]
    reference = cpu_tree_solve(*cpu, parent)
    reference.square().sum().backward()
    relative = lambda a, e: ((a.detach().cpu().double() - e).abs().max() / e.abs().max()).item()
    check = {"cells": d.shape[0], "x": relative(x, reference.detach()),
             **{f"grad_{name}": relative(mine.grad, theirs.grad) for name, mine, theirs in zip("dgb", leaves, cpu)}}
    for cells in sizes:
        d, b = system(cells)
        gpu_hines.tree_solve(d, axial, b, parent)
        synchronize(device)
        count, started = 0, time.perf_counter()
        while count < 2 or time.perf_counter() - started < seconds:
            gpu_hines.tree_solve(d, axial, b, parent)
            count += 1
        synchronize(device)
        per_solve = (time.perf_counter() - started) / count
        moved = 3 * cells * n_nodes * d.element_size()
        rows.append({"cells": cells, "nodes": n_nodes, "solve_s": per_solve, "cells_per_s": cells / per_solve,
                     "bandwidth_d_b_in_x_out_bytes_per_s": moved / per_solve})
        del d, b
    return {"dtype": str(dtype).removeprefix("torch."), "check_relative_to_cpu": check, "rows": rows}


# --- report -------------------------------------------------------------------------------------

def fmt(value, spec=".3g"):
    return "-" if value is None else format(value, spec)


def print_report(report):
    print(f"\nDevice: {report['device']}; torch {report['torch']}, triton {report['triton']}, Python {report['python']}")
    if report.get("copy_bandwidth_bytes_per_s"):
        print(f"Device-to-device copy (read + write): {report['copy_bandwidth_bytes_per_s'] / 1e12:.2f} TB/s "
              f"(datasheet {PEAKS['bandwidth_bytes_per_s'] / 1e12:.1f} TB/s)")
    for name, census in report["work"].items():
        step, ptx = census["per_step"], census["ptx"]
        print(f"{name}: per neuron-step {step['flops']} flops and {step['exp']} exp + {step['log']} log + {step['sqrt']} sqrt "
              f"(AST); {step['cell_loads']} loads + {step['cell_stores']} stores per cell per step, "
              f"{census['per_launch']['cell_loads']} + {census['per_launch']['cell_stores']} per launch")
        if "error" in ptx:
            print(f"  PTX census failed: {ptx['error']}")
        else:
            print(f"  PTX (static count, nearly all in the step loop): {ptx['flops_fma_as_2']} flops (FMA = 2, transcendental sequences "
                  f"included), special-function {ptx['special_function']}, {ptx['instructions']}")
    for name, check in report["checks"].items():
        print(f"check {name}: {check['cells']} cells x {check['steps']} steps on the device vs the tensor path on the CPU: "
              f"max |dv| {check['max_abs_dv_mv']:.2e} mV, spikes {check['spikes']} (reference {check['spikes_reference']})")
    neuron = report["neuron"]
    print(f"NEURON (1 core): {neuron['neuron_steps_per_s']:.3g} neuron-steps/s, {neuron['n']} cells, "
          f"{neuron['duration_ms']:g} ms — {neuron['where']}")
    header = (f"{'dtype':<8}{'n':>10}{'K':>7}{'calls':>7}{'first s':>9}{'compile s':>10}{'ovh ms':>8}{'kernel st/s':>13}{'e2e st/s':>11}"
              f"{'GB/s':>9}{'%BW':>6}{'GFLOP/s':>9}{'%FL':>6}{'%SFU':>6}{'sp/n/s':>8}{'xNEURON':>9}")
    print("\nSquid HH point neurons, Triton kernel (st/s: neuron-steps per second; %BW, %FL: of the datasheet's "
          "4.8 TB/s and FP32 67 / FP64 34 TFLOP/s; %SFU: float32 exp of the 4.2e12/s ex2 peak; xNEURON: kernel st/s over NEURON's at 10^4 cells)")
    print(header)
    for row in report["rows"]:
        if "skipped" in row:
            print(f"{row['dtype']:<8}{row['n']:>10}  skipped: {row['skipped']}")
            continue
        overhead = None if row["overhead_per_call_s"] is None else 1e3 * row["overhead_per_call_s"]
        print(f"{row['dtype']:<8}{row['n']:>10}{row['steps_per_call']:>7}{row['calls']:>7}{row['first_call_s']:>9.2f}"
              f"{row['first_call_beyond_warm_s']:>10.2f}"
              f"{fmt(overhead, '.1f'):>8}{fmt(row['kernel_neuron_steps_per_s']):>13}{row['end_to_end_neuron_steps_per_s']:>11.3g}"
              f"{fmt(row.get('bandwidth_bytes_per_s') and row['bandwidth_bytes_per_s'] / 1e9, '.0f'):>9}"
              f"{fmt(row.get('bandwidth_fraction') and 100 * row['bandwidth_fraction'], '.1f'):>6}"
              f"{fmt(row.get('flops_per_s') and row['flops_per_s'] / 1e9, '.0f'):>9}"
              f"{fmt(row.get('flops_fraction') and 100 * row['flops_fraction'], '.1f'):>6}"
              f"{fmt(row.get('exp_unit_fraction') and 100 * row['exp_unit_fraction'], '.1f'):>6}"
              f"{row['spikes_per_neuron_per_s']:>8.1f}{fmt(row.get('speedup_vs_neuron'), '.0f'):>9}")


def print_trees(trees):
    for tree in trees:
        if "error" in tree:
            print(f"\nTree solve failed: {tree['error']}")
            continue
        check = tree["check_relative_to_cpu"]
        print(f"\nTree solve, 100-segment cable, {tree['dtype']}: vs the CPU solve (float64) x {check['x']:.1e}, "
              f"grad d {check['grad_d']:.1e}, g {check['grad_g']:.1e}, b {check['grad_b']:.1e} ({check['cells']} cells)")
        for row in tree["rows"]:
            print(f"{row['cells']:>10} cells: {1e3 * row['solve_s']:.3f} ms per solve, {row['cells_per_s']:.3g} cells/s, "
                  f"{row['bandwidth_d_b_in_x_out_bytes_per_s'] / 1e9:.0f} GB/s on d, b in and x out")


def layers_hh_vs_lif(device, batch, width, bins, repeats):
    """Forward + backward of Linear(64 → width) + HHLayer or LIFLayer (bins of 1 ms at dt 0.1 ms) on
    ``device``, float32, through the Triton gradient kernels: median time after a warm-up and peak
    device memory (torch.cuda.max_memory_allocated above what the model held before), with the
    spikes and gradients of the same run on the CPU kernels as a check (float64 there)."""
    from torch import nn

    from brainfuse_core.training.layers import HHLayer, LIFLayer

    rows = {}
    for kind, make in (("lif", LIFLayer), ("hh", HHLayer)):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, width), make(width, bin_ms=1.0, dt=0.1, engine="triton")).to(device)
        with torch.no_grad():
            model[0].weight.mul_(20.0)
            model[0].bias.fill_(4.0)
        x = torch.rand(batch, bins, 64, device=device)

        def step():
            model.zero_grad()
            synchronize(device)
            started = time.perf_counter()
            spikes = model(x)
            (spikes.sum(1) ** 2).mean().backward()
            synchronize(device)
            return time.perf_counter() - started, spikes

        first_s, _ = step()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        held = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        times = [step()[0] for _ in range(repeats)]
        peak = torch.cuda.max_memory_allocated(device) - held if device.type == "cuda" else None
        _, spikes = step()
        reference = model.to("cpu", torch.float64)
        reference[1].engine = "auto"
        expected = reference(x.to("cpu", torch.float64))
        rows[kind] = {"seconds": statistics.median(times), "first_call_s": first_s, "peak_bytes": peak,
                      "neuron_steps": batch * width * bins * 10,
                      "spikes_differing_from_cpu": int((spikes.detach().cpu().double() != expected.detach()).sum()),
                      "spikes": float(expected.sum())}
    rows["time_ratio_hh_over_lif"] = rows["hh"]["seconds"] / rows["lif"]["seconds"]
    if rows["hh"]["peak_bytes"]:
        rows["memory_ratio_hh_over_lif"] = rows["hh"]["peak_bytes"] / rows["lif"]["peak_bytes"]
    return rows


def print_layers(layers):
    if "error" in layers:
        print(f"\nHH vs LIF layers: {layers['error']}")
        return
    print("\nHH vs LIF layer, forward + backward (float32, Triton gradient kernels): "
          f"{layers['hh']['neuron_steps']:.2e} neuron-steps")
    for kind in ("lif", "hh"):
        row = layers[kind]
        peak = "" if row["peak_bytes"] is None else f", peak {row['peak_bytes'] / 2**20:.0f} MiB"
        print(f"{kind.upper():>4}: {row['seconds']:.4f} s (first {row['first_call_s']:.1f} s){peak}, "
              f"{row['spikes_differing_from_cpu']} of {row['spikes']:.0f} spikes differ from the CPU kernels")
    memory = layers.get("memory_ratio_hh_over_lif")
    print(f"HH / LIF: time {layers['time_ratio_hh_over_lif']:.2f}x (bar ≤ 1.3)"
          + (f", memory {memory:.2f}x (bar ≤ 1.1)" if memory else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Triton kernels on a CUDA GPU: throughput, bandwidth, flops, NEURON")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--smoke", action="store_true", help="on the CPU under TRITON_INTERPRET=1 at tiny sizes")
    parser.add_argument("--sizes", type=int, nargs="+", help=f"neurons per population (default {SIZES})")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["float32", "float64"])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per size and dtype")
    parser.add_argument("--max-steps", type=int, default=20_000, help="most steps per call")
    parser.add_argument("--memory-gb", type=float, default=24.0, help="device memory for a call's input and records")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no measurement after this many seconds")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.smoke:
        os.environ["TRITON_INTERPRET"] = "1"
        device, sizes, tree_sizes = torch.device("cpu"), args.sizes or [16, 200], [70]
        max_steps, seconds, check = min(args.max_steps, 8), 0.0, (8, 120)
    elif torch.cuda.is_available():
        device, sizes, tree_sizes = torch.device("cuda"), args.sizes or list(SIZES), list(TREE_SIZES)
        max_steps, seconds, check = args.max_steps, args.seconds, (1000, 4000)
    else:
        parser.error("no CUDA device here: run on the GPU machine, or with --smoke on the CPU")
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (Triton interpreter)",
              "torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version(),
              "smoke": args.smoke, "peaks": PEAKS, "workload": {"dt_ms": peer_hh.DT_MS, "celsius": peer_hh.CELSIUS,
              "area_um2": peer_hh.AREA_UM2, "drive_ua_per_cm2": [0.0, peer_hh.I_MAX], "threshold_mv": peer_hh.V_SPIKE},
              "work": {}, "checks": {}, "rows": [], "tree_solve": []}

    def save():
        if args.out:
            with open(args.out, "w") as handle:
                json.dump(report, handle, indent=1)

    if device.type == "cuda":
        report["copy_bandwidth_bytes_per_s"] = copy_bandwidth(device)
    for name in args.dtypes:
        per_step, per_launch = kernel_work(kernel_text(hh_block(DTYPES[name], "cpu")))
        report["work"][name] = {"per_step": per_step, "per_launch": per_launch, "ptx": guarded(ptx_census, DTYPES[name])}
    report["neuron"] = neuron_peer(args.smoke)
    save()
    for name in args.dtypes:
        dtype = DTYPES[name]
        report["checks"][name] = check_against_tensor_path(device, dtype, *check)
        work = report["work"][name]
        for n in sizes:
            if time.perf_counter() - began > args.budget_s:
                report["rows"].append({"dtype": name, "n": n, "skipped": f"time budget of {args.budget_s:g} s spent"})
                continue
            row = throughput(device, dtype, n, max_steps, args.memory_gb * 1e9, seconds)
            rate = row["kernel_neuron_steps_per_s"]
            if rate is not None:
                moved = bytes_per_neuron_step(work["per_step"], work["per_launch"], torch.finfo(dtype).bits // 8,
                                              row["steps_per_call"])
                row.update({"bytes_per_neuron_step": moved, "bandwidth_bytes_per_s": moved * rate,
                            "bandwidth_fraction": moved * rate / PEAKS["bandwidth_bytes_per_s"],
                            "flops_per_s": work["per_step"]["flops"] * rate,
                            "flops_fraction": work["per_step"]["flops"] * rate / PEAKS["flops_per_s"][name],
                            "transcendentals_per_s": (work["per_step"]["exp"] + work["per_step"]["log"]) * rate,
                            # float32 exp is one ex2 on the special-function unit; float64 has none.
                            "exp_unit_fraction": work["per_step"]["exp"] * rate / PEAKS["exp2_per_s_float32"]
                            if dtype == torch.float32 else None,
                            "speedup_vs_neuron": rate / report["neuron"]["neuron_steps_per_s"],
                            "speedup_end_to_end_vs_neuron": row["end_to_end_neuron_steps_per_s"]
                            / report["neuron"]["neuron_steps_per_s"]})
            report["rows"].append(row)
            save()
    print_report(report)
    for name in args.dtypes:
        if time.perf_counter() - began < args.budget_s:
            report["tree_solve"].append(guarded(tree_solves, device, DTYPES[name], tree_sizes, min(seconds, 1.0)))
    print_trees(report["tree_solve"])
    if time.perf_counter() - began < args.budget_s:
        shape = (2, 8, 4, 1) if args.smoke else (64, 512, 100, 5)
        report["layers"] = guarded(layers_hh_vs_lif, device, *shape)
        print_layers(report["layers"])
    report["wall_s"] = time.perf_counter() - began
    save()
    print(f"\nwall {report['wall_s']:.0f} s" + (f"; JSON in {args.out}" if args.out else ""))


def guarded(measure, *args):
    """``measure(*args)``, or the error it raised: a side measurement failing on the device must not cost the
    run's other results (the device time is scarce)."""
    try:
        return measure(*args)
    except Exception as err:  # noqa: BLE001 — reported in the table and the JSON
        return {"error": f"{type(err).__name__}: {err}"}


if __name__ == "__main__":
    main()
