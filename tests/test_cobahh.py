"""COBAHH (Brette et al. 2007, benchmark 3) against the statistics NEURON and Brian2 give.

The network is chaotic, so single spike times cannot be compared; its statistics can. The
peers' range (5 seeds each of Brian2 cpp_standalone and NEURON 9, 1 s at dt 0.1 ms) was
measured by ``python -m benchmarks.peers.cobahh`` and stored in tests/data.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from brainfuse_core.project import load_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cobahh_statistics():
    result = load_project(ROOT / "projects" / "cobahh.json").run()
    exc, inh = result.spikes["E"], result.spikes["I"]
    cv = np.concatenate([exc.cv_isi(), inh.cv_isi()])
    return {"rate_exc_hz": exc.rates().mean(), "rate_inh_hz": inh.rates().mean(), "cv_isi": cv.mean()}


@pytest.mark.parametrize("statistic", ["rate_exc_hz", "rate_inh_hz", "cv_isi"])
def test_cobahh_statistics_lie_in_the_peer_range(cobahh_statistics, statistic):
    peers = json.loads((ROOT / "tests" / "data" / "cobahh_peer_stats.json").read_text())
    low, high = peers["range"][statistic]
    assert low <= cobahh_statistics[statistic] <= high, (statistic, cobahh_statistics[statistic], (low, high))
