"""Peak memory of a backward pass through a long HH run: the compiled gradient kernels and the tensor
path's recomputation (both checkpointed) vs plain autograd.

1,000 squid HH cells (a batch of different stimulus amplitudes), 10,000 steps of 0.025 ms,
loss = mean squared voltage; gradients for the three conductance densities. Each variant runs
in a fresh process; its peak is the resident-set high-water mark minus the resident set just
before the run, so imports and set-up are not counted.

    python benchmarks/memory_backward.py [--cells 1000] [--steps 10000]
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def _rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


VARIANTS = {"kernels": {}, "recompute": {"compiled": False}, "plain": {"compiled": False, "checkpoint": False}}
NAMES = {"kernels": "BrainFuse (gradient kernels)", "recompute": "tensor path (recompute)", "plain": "plain autograd"}


def measure(cells, steps, variant):
    import torch

    import brainfuse_core as bf

    gbars = {name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in
             (("hh_na", 0.12), ("hh_k", 0.036), ("leak", 0.0003))}
    channels = [bf.channel(name, gbar=g) for name, g in gbars.items()]
    cell = bf.Cell.point(diameter=100.0, channels=channels)
    network = bf.Network([bf.Population("hh", cell, cells)])
    amplitudes = torch.linspace(0.0, 20.0, cells, dtype=torch.float64)
    stimulus = bf.Waveform(amplitudes.expand(1, 1, cells), sample_dt=1e9, population="hh", density=True)
    sim = bf.Simulation(network, stimuli=[stimulus], probes=[bf.Probe("hh", "v", every=10)], dt=0.025, **VARIANTS[variant])
    baseline = _rss_mb()
    started = time.perf_counter()
    result = sim.run(steps * 0.025)
    loss = (result.traces["hh.v"] ** 2).mean()
    loss.backward()
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "peak_mb": peak - baseline, "wall_s": elapsed,
            "grad_hh_na": float(gbars["hh_na"].grad)}


def run_isolated(cells, steps, variant):
    code = f"import json, benchmarks.memory_backward as m; print(json.dumps(m.measure({cells}, {steps}, {variant!r})))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10000)
    args = parser.parse_args(argv)
    rows = [run_isolated(args.cells, args.steps, variant) for variant in VARIANTS]
    print(f"Backward pass, {args.cells} HH cells x {args.steps} steps (float64)")
    print(f"{'variant':<32}{'peak MB':>10}{'wall s':>10}{'dL/dgNa':>16}")
    for row in rows:
        print(f"{NAMES[row['variant']]:<32}{row['peak_mb']:>10.1f}{row['wall_s']:>10.1f}{row['grad_hh_na']:>16.6g}")
    ratio = rows[0]["peak_mb"] / rows[-1]["peak_mb"]
    print(f"memory ratio gradient kernels/plain: {ratio:.3f} (bar < 0.25)")
    return {"rows": rows, "ratio": ratio}


if __name__ == "__main__":
    main()
