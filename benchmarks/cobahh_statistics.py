"""COBAHH statistics of BrainFuse over several seeds, next to the peers' range (tests/data).

Every seed in projects/cobahh.json (connectivity, initial voltages and conductances) is
offset by the run's seed, so each run is an independent draw of the same network model.

    .venv/bin/python -m benchmarks.cobahh_statistics [--seeds 5]
"""

import argparse
import json
from pathlib import Path

import numpy as np

from brainfuse_core.project import Project, load_project

ROOT = Path(__file__).resolve().parents[1]


def _reseed(node, offset):
    if isinstance(node, dict):
        return {k: (v + offset if k == "seed" else _reseed(v, offset)) for k, v in node.items()}
    if isinstance(node, list):
        return [_reseed(v, offset) for v in node]
    return node


def statistics(seed):
    data = load_project(ROOT / "projects" / "cobahh.json").to_dict()
    data = _reseed(data, 1000 * seed)
    data["recordings"] = []
    result = Project.from_dict(data).run()
    exc, inh = result.spikes["E"], result.spikes["I"]
    return {"seed": seed, "rate_exc_hz": float(exc.rates().mean()), "rate_inh_hz": float(inh.rates().mean()),
            "cv_isi": float(np.concatenate([exc.cv_isi(), inh.cv_isi()]).mean()), "wall_s": result.wall_time}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    peers = json.loads((ROOT / "tests" / "data" / "cobahh_peer_stats.json").read_text())["range"]
    keys = ("rate_exc_hz", "rate_inh_hz", "cv_isi")
    print(f"{'run':<22}" + "".join(f"{k:>14}" for k in keys) + f"{'inside':>8}")
    print(f"{'peers (min-max)':<22}" + "".join(f"{f'{peers[k][0]:.2f}-{peers[k][1]:.2f}':>14}" for k in keys))
    for seed in range(args.seeds):
        row = statistics(seed)
        inside = all(peers[k][0] <= row[k] <= peers[k][1] for k in keys)
        print(f"{f'brainfuse seed {seed}':<22}" + "".join(f"{row[k]:>14.3f}" for k in keys) + f"{str(inside):>8}", flush=True)


if __name__ == "__main__":
    main()
