"""Cost of an HH layer against a LIF layer of the same width in the same engine, forward + backward.

The network is the same for both: ``nn.Linear(inputs, width)`` then the spiking layer (HHLayer,
squid HH channels at 6.3 °C, or LIFLayer, τ_m 10 ms), a batch of random inputs over ``bins`` bins
of 1 ms at dt = 0.1 ms, loss = squared spike count per neuron. Each layer runs in a fresh process;
time is the median of ``repeats`` forward + backward passes after one warm-up (compiling), peak
memory the resident-set high-water mark above the resident set before the first pass.
The issue's bar: HH ≤ 1.3× LIF time and ≤ 1.1× LIF memory (the BrainFuse paper reports 1.58× and 1.2×).

    python -m benchmarks.layers [--batch 32] [--width 256] [--bins 100] [--quick]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def measure(kind, batch, width, bins, inputs, repeats):
    import torch
    from torch import nn

    from brainfuse_core.training.layers import HHLayer, LIFLayer

    torch.manual_seed(0)
    layer = HHLayer(width, bin_ms=1.0, dt=0.1) if kind == "hh" else LIFLayer(width, bin_ms=1.0, dt=0.1)
    model = nn.Sequential(nn.Linear(inputs, width), layer)
    with torch.no_grad():
        model[0].weight.mul_(20.0)
        model[0].bias.fill_(4.0)
    x = torch.rand(batch, bins, inputs)
    baseline = _rss_mb()

    def step():
        model.zero_grad()
        started = time.perf_counter()
        spikes = model(x)
        (spikes.sum(1) ** 2).mean().backward()
        return time.perf_counter() - started, float(spikes.sum())

    compile_s, _ = step()
    times, counts = zip(*[step() for _ in range(repeats)])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    return {"kind": kind, "seconds": statistics.median(times), "first_call_s": compile_s, "peak_mb": peak,
            "spikes_per_neuron": counts[0] / (batch * width), "neuron_steps": batch * width * bins * 10}


def run_isolated(kind, batch, width, bins, inputs, repeats):
    code = (f"import json, benchmarks.layers as m; "
            f"print(json.dumps(m.measure({kind!r}, {batch}, {width}, {bins}, {inputs}, {repeats})))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def compare(quick=False, batch=32, width=256, bins=100, inputs=64, repeats=3):
    if quick:
        batch, width, bins, repeats = 8, 64, 20, 1
    rows = {kind: run_isolated(kind, batch, width, bins, inputs, repeats) for kind in ("lif", "hh")}
    print(f"\nHH vs LIF layer, forward + backward: Linear({inputs}→{width}) + layer, batch {batch}, {bins} bins of 1 ms, "
          f"dt 0.1 ms ({rows['hh']['neuron_steps']:.2e} neuron-steps)")
    print(f"{'layer':<8}{'time (s)':>10}{'first call (s)':>16}{'peak (MB)':>11}{'spikes/neuron':>15}")
    for kind in ("lif", "hh"):
        row = rows[kind]
        print(f"{kind.upper():<8}{row['seconds']:>10.3f}{row['first_call_s']:>16.2f}{row['peak_mb']:>11.1f}"
              f"{row['spikes_per_neuron']:>15.1f}")
    time_ratio = rows["hh"]["seconds"] / rows["lif"]["seconds"]
    memory_ratio = rows["hh"]["peak_mb"] / max(rows["lif"]["peak_mb"], 1e-9)
    print(f"HH / LIF: time {time_ratio:.2f}x (bar ≤ 1.3, paper 1.58), memory {memory_ratio:.2f}x (bar ≤ 1.1, paper 1.2)")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--bins", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    compare(args.quick, args.batch, args.width, args.bins)


if __name__ == "__main__":
    main()
