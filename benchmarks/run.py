"""All benchmarks in one command: BrainFuse next to NEURON, Brian2 and Jaxley, with ratios.

    .venv/bin/python -m benchmarks.run            # full sizes (about 45 minutes on 2 cores)
    .venv/bin/python -m benchmarks.run --quick    # small sizes, a smoke run
    .venv/bin/python -m benchmarks.run --only workbench   # the workbench's responsiveness
    .venv/bin/python -m benchmarks.run --only potjans_diesmann   # the 10 % cortical column against Brian2
    .venv/bin/python -m benchmarks.run --only gradients   # forward + backward against Jaxley (time, peak memory)
    .venv/bin/python -m benchmarks.run --only layers   # an HH layer's cost against a LIF layer's (time, peak memory)

Jaxley runs in its own environment, ``.venv-jaxley``, installed on first use (``peers.jaxley_env``).

Every measurement runs in a fresh process (``benchmarks.peers.isolate``), so no simulator
profits from another's caches. Tables report throughput and the split between build/compile
(first call) and run time; "ratio" is BrainFuse's run speed over the peer's (> 1: faster).
"""

import argparse
import subprocess
import sys

from .gradients import compare as gradients
from .layers import compare as layers
from .memory_backward import NAMES as MEMORY_NAMES
from .memory_backward import VARIANTS as MEMORY_VARIANTS
from .memory_backward import run_isolated as run_memory
from .potjans_diesmann import compare as potjans_diesmann
from .peers import hh_independent as peer_hh
from .peers.cobahh import SIMULATORS as COBAHH_PEERS
from .peers.isolate import run_isolated


def _table(title, rows, ours, speed_key, unit):
    """``speed_key`` is a throughput (higher is better) or "run_s" (lower is better); the ratio is
    always BrainFuse's speed over the row's, so > 1 means BrainFuse is faster."""
    print(f"\n{title}")
    print(f"{'simulator':<26}{unit:>16}{'build s':>10}{'run s':>10}{'ratio':>10}")
    for row in rows:
        ratio = row[speed_key] / ours[speed_key] if speed_key == "run_s" else ours[speed_key] / row[speed_key]
        print(f"{row['simulator']:<26}{row[speed_key]:>16.3g}{row['build_s']:>10.2f}{row['run_s']:>10.2f}{ratio:>10.2f}")


def independent_neurons(n, duration_ms):
    ours = [run_isolated("benchmarks.ours:hh_independent", {"n": n, "duration_ms": duration_ms, "dtype": d})
            for d in ("float32", "float64")]
    peers = [run_isolated(peer_hh.run_peer, {"peer": p, "n": n, "duration_ms": duration_ms}) for p in peer_hh.PEERS]
    fastest_ours = max(ours, key=lambda r: r["neuron_steps_per_s"])
    _table(f"{n} independent squid HH neurons, {duration_ms:g} ms at dt 0.025 ms (ratio = our fastest / row)",
           ours + peers, fastest_ours, "neuron_steps_per_s", "steps/s")
    return ours, peers


def cobahh(duration_ms):
    ours = [run_isolated("benchmarks.ours:cobahh", {"duration_ms": duration_ms, "dtype": d}) for d in ("float32", "float64")]
    peers = [run_isolated("benchmarks.peers.cobahh:benchmark", {"simulator": s, "duration_ms": duration_ms}) for s in COBAHH_PEERS]
    fastest_ours = min(ours, key=lambda r: r["run_s"])
    _table(f"COBAHH, 4,000 HH neurons, {duration_ms:g} ms at dt 0.1 ms (ratio = row run s / our fastest)", ours + peers,
           fastest_ours, "run_s", "run s")
    print(f"{'simulator':<26}{'rate E Hz':>12}{'rate I Hz':>12}{'CV ISI':>10}")
    for row in ours + peers:
        print(f"{row['simulator']:<26}{row['rate_exc_hz']:>12.2f}{row['rate_inh_hz']:>12.2f}{row['cv_isi']:>10.3f}")
    return ours, peers


def main(argv=None):
    parser = argparse.ArgumentParser(description="BrainFuse benchmarks against NEURON, Brian2 and Jaxley")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--only", choices=("independent", "cobahh", "potjans_diesmann", "memory", "gradients", "layers",
                                                 "workbench"), help="run one table")
    args = parser.parse_args(argv)
    wanted = lambda name: args.only in (None, name)
    if wanted("independent"):
        independent_neurons(1000, 50.0) if args.quick else independent_neurons(10_000, 1000.0)
    if wanted("cobahh"):
        cobahh(50.0 if args.quick else 1000.0)
    if wanted("potjans_diesmann"):
        potjans_diesmann(*((0.02, 300.0) if args.quick else (0.1, 1000.0)))
    if wanted("memory"):
        memory(*((100, 1000) if args.quick else (1000, 10_000)))
    if wanted("gradients"):
        gradients(args.quick)
    if wanted("layers"):
        layers(args.quick)
    if wanted("workbench"):
        workbench(args.quick)


def workbench(quick):
    """Curve drag → redrawn curves, and live-view update rate, each in a fresh process with its own server."""
    print("\nWorkbench: curve drag → updated curves (bar: median < 150 ms)", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks.workbench_drag", "--drags", "30"] + (["--no-browser"] if quick else []),
                   check=True)
    print("\nWorkbench: live view updates per second (bar: ≥ 10/s with 100 traces and a 10⁴-neuron raster)", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks.workbench_live"] + (["--window", "4"] if quick else []), check=True)


def memory(cells, steps):
    rows = [run_memory(cells, steps, variant) for variant in MEMORY_VARIANTS]
    print(f"\nBackward pass, {cells} HH cells x {steps} steps (float64): peak memory above the pre-run baseline")
    for row in rows:
        print(f"{MEMORY_NAMES[row['variant']]:<32}{row['peak_mb']:>10.1f} MB{row['wall_s']:>10.1f} s")
    print(f"ratio gradient kernels / plain: {rows[0]['peak_mb'] / rows[-1]['peak_mb']:.3f} (bar < 0.25)")


if __name__ == "__main__":
    main()
