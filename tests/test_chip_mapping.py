"""Chip profiles and the core mapper (brainfuse_core/chip/profiles.py, mapping.py): the paper-sized column's
report, the mapper's statistics against connections actually drawn, limits kept, user profiles."""

import json
import math

import numpy as np
import pytest

from brainfuse_core.chip.deploy import column_estimate, column_stats
from brainfuse_core.chip.mapping import NetworkStats, PopulationStats, ProjectionStats, map_network, neuron_cost
from brainfuse_core.chip.fixed_point import Formats
from brainfuse_core.chip.profiles import LOIHI1, LOIHI2, get_profile, profile_from_dict
from brainfuse_core.errors import ModelError
from brainfuse_core.networks import FixedInDegree
from brainfuse_core.networks import potjans_diesmann as pd

SQUID_POWERS = ((3, 1), (4,), ())  # hh_na m³h, hh_k n⁴, leak


@pytest.fixture(scope="module")
def column():
    return column_estimate("loihi2")


def test_column_of_the_paper_size_is_mapped_and_reported(column):
    mapping, power, comparison = column
    stats = mapping.stats
    assert stats.neurons == pytest.approx(38_000, abs=10)
    assert stats.synapses == pytest.approx(100e6, rel=1e-3)
    assert comparison["paper_watts"] == 1.98
    assert mapping.cores == sum(entry["cores"] for entry in mapping.per_population.values()) == len(mapping.per_core)
    assert mapping.chips == math.ceil(mapping.cores / 128) and mapping.boards == math.ceil(mapping.chips / 8)
    for name, entry in mapping.per_population.items():
        assert entry["cores"] == math.ceil(entry["n"] / entry["neurons_per_core"])
    # Measured (loihi2): 34,194 cores on 268 chips, bound by fan-in and fan-out: each cell draws ~2,600 local
    # inputs from ~38,000 cells, so two cells on one core already need ~5,000 distinct input axons of 4,096.
    assert 20_000 < mapping.cores < 40_000
    l23e = mapping.per_population["L23e"]
    k_total = sum(stats.in_degree(pre, "L23e") for pre in stats.populations)
    assert l23e["neurons_per_core"] == 1 and l23e["binding"] == "fan_in"
    assert l23e["load"]["fan_in"] == pytest.approx(k_total, rel=1e-9)  # one cell: its in-degree
    two = sum(stats.populations[pre].n * (1 - (1 - stats.in_degree(pre, "L23e") / stats.populations[pre].n) ** 2)
              for pre in stats.populations)
    assert two > LOIHI2.fan_in >= k_total


def test_potjans_diesmann_project_statistics_match_its_in_degrees():
    stats = NetworkStats.from_project(pd.project(0.5))
    sizes = np.array(pd.scaled_sizes(0.5))
    assert stats.neurons == sizes.sum() == 38_586
    local = sum(p.synapses for p in stats.projections if not stats.populations[p.pre].source)
    assert local == pytest.approx((pd.scaled_in_degrees(0.5) * sizes[:, None]).sum())
    assert sum(p.synapses for p in stats.projections if stats.populations[p.pre].source) == sizes.sum()  # one to one
    l4e = stats.populations["L4e"]
    assert l4e.gates == 3 and l4e.receptors == 2  # Traub m, h, n; excitatory and inhibitory exponential synapses


def test_expected_fan_in_matches_connections_drawn():
    """The mapper's N·(1 − (1 − K/N)^m) against the distinct presynaptic cells of actual fixed in-degree draws."""
    n_pre, n_post, k, m = 2000, 600, 150, 12
    pre, post = FixedInDegree(k).connect(n_pre, n_post, False, np.random.default_rng(5))
    distinct = [len(np.unique(pre[(post >= c) & (post < c + m)])) for c in range(0, n_post, m)]
    stats = NetworkStats({"a": PopulationStats("a", n_pre, channel_powers=SQUID_POWERS),
                          "b": PopulationStats("b", n_post, channel_powers=SQUID_POWERS, receptors=1)},
                         [ProjectionStats("a", "b", k * n_post)])
    profile = profile_from_dict({"base": "loihi2", "neurons_per_core": m})
    mapping = map_network(stats, profile)
    entry = mapping.per_population["b"]
    assert entry["neurons_per_core"] == m and entry["binding"] == "neurons"
    assert entry["load"]["fan_in"] == pytest.approx(np.mean(distinct), rel=0.01)
    # Fan-out of a's cores: each a cell reaches the b cores holding one of its targets.
    reached = [len(np.unique(post[pre == i] // m)) for i in range(n_pre)]
    per_cell = mapping.per_population["a"]["load"]["fan_out"] / mapping.per_population["a"]["neurons_per_core"]
    assert per_cell == pytest.approx(np.mean(reached), rel=0.02)


def test_every_core_keeps_its_limits_and_memory_binds_by_hand():
    cost = neuron_cost(PopulationStats("b", 1, channel_powers=SQUID_POWERS, receptors=1), Formats())
    # Hand count: state words V, 3 gates, 1 receptor, input = 6 words; tables 3 gates × 4097 × (3 + 4) bytes;
    # operations 3·11 + (4+5) + (4+5) + 5 + 5 + 8 + 3 = 72 → 72/7 LIF updates.
    assert cost.state_bytes == 24 and cost.table_bytes == 3 * 4097 * 7
    assert cost.ops_per_substep == 72 and cost.hh_cost_factor == pytest.approx(72 / 7)
    n, k = 300, 40
    stats = NetworkStats({"a": PopulationStats("a", n, channel_powers=SQUID_POWERS),
                          "b": PopulationStats("b", n, channel_powers=SQUID_POWERS, receptors=1)},
                         [ProjectionStats("a", "b", k * n)], weight_bits=8)
    memory = 100_000
    profile = profile_from_dict({"base": "loihi2", "core_memory_bytes": memory, "fan_in": 10_000, "fan_out": 10_000})
    mapping = map_network(stats, profile)
    m = mapping.per_population["b"]["neurons_per_core"]
    assert mapping.per_population["b"]["binding"] == "memory"

    def need(m):
        fan_in = n * (1 - (1 - k / n) ** m)
        index_bits = math.ceil(math.log2(m)) if m > 1 else 0
        return cost.table_bytes + m * cost.state_bytes + m * k * (8 + index_bits) / 8 + 4 * fan_in

    assert need(m) <= memory < need(m + 1)  # b sends nowhere: no output routes
    assert mapping.fits
    for core in mapping.per_core:
        assert all(value <= 1.0 + 1e-12 for value in core["utilisation"].values()), core
        assert core["chip"] == core["core"] // 128


def test_a_cell_too_big_for_any_core_is_a_violation():
    stats = NetworkStats({"a": PopulationStats("a", 10, channel_powers=SQUID_POWERS)}, [])
    mapping = map_network(stats, profile_from_dict({"base": "loihi2", "core_memory_bytes": 50_000}))
    assert not mapping.fits
    assert mapping.violations[0]["limit"] == "memory" and mapping.violations[0]["need"] > 50_000
    assert mapping.cores == 10 and "VIOLATION" in mapping.summary()
    with pytest.raises(ModelError, match="weight_bits"):
        map_network(NetworkStats(stats.populations, [], weight_bits=8), profile_from_dict({"base": "loihi2", "max_weight_bits": 4}))


def test_loihi1_counts_hh_state_as_compartments():
    stats = NetworkStats({"a": PopulationStats("a", 5000, channel_powers=SQUID_POWERS, receptors=2)}, [])
    mapping = map_network(stats, "loihi1", real_time=False)
    entry = mapping.per_population["a"]
    assert entry["slots_per_neuron"] == math.ceil(7 * 4 / 24) == 2
    assert entry["neurons_per_core"] == 1024 // 2 and entry["table_bytes"] == 0
    assert any("fixed LIF" in note for note in mapping.notes)


def test_profiles_name_their_sources_and_user_profiles_are_checked(tmp_path):
    for profile in (LOIHI1, LOIHI2):
        for key in ("cores_per_chip", "neurons_per_core", "fan_in", "fan_out", "synaptic_op_pj", "neuron_update_pj",
                    "static_core_w"):
            assert profile.source(key) != "user-defined", (profile.name, key)
        for key in profile.estimates:
            assert "estimate" in profile.source(key), (profile.name, key)
    assert LOIHI1.synaptic_op_pj[1] == 23.6 and LOIHI1.neuron_update_pj[1] == 81.0 and LOIHI2.cores_per_chip == 128
    custom = profile_from_dict({"base": "loihi2", "name": "big", "fan_in": 16384, "static_core_w": 1e-3})
    assert custom.fan_in == 16384 and custom.source("fan_in") == "user-defined" and "fan_in" not in custom.estimates
    assert custom.static_core_w == (1e-3, 1e-3, 1e-3) and custom.cores_per_chip == 128
    path = tmp_path / "chip.json"
    path.write_text(json.dumps(LOIHI2.to_dict() | {"name": "copy"}))
    assert get_profile(path).to_dict() == LOIHI2.to_dict() | {"name": "copy"}
    for bad, message in (({"base": "loihi2", "fan_in": 0}, "fan_in"), ({"base": "loihi2", "hop_pj": [3, 2, 4]}, "ordered"),
                         ({"base": "loihi9"}, "base"), ({"base": "loihi2", "speed": 1}, "unknown field"),
                         ({"name": "x"}, "missing field"), ({"base": "loihi2", "mesh": [2, 2]}, "mesh")):
        with pytest.raises(ModelError, match=message):
            profile_from_dict(bad)
    with pytest.raises(ModelError, match="unknown chip"):
        get_profile("truenorth")


def test_column_stats_keep_the_column_structure():
    stats = column_stats(neurons=38_000, synapses=90e6)
    full = pd.full_in_degrees()
    ratio = [stats.in_degree(pre, post) / full[i, j] for i, post in enumerate(pd.POPULATIONS)
             for j, pre in enumerate(pd.POPULATIONS) if full[i, j] > 100]
    assert np.ptp(ratio) / np.mean(ratio) < 0.02  # every local in-degree scaled alike (up to the project's integer in-degrees)
    assert stats.synapses - sum(stats.populations[f"{p}_bg"].n for p in pd.POPULATIONS) == pytest.approx(90e6)


def test_separate_neuron_memory_holds_tables_and_state():
    """A Loihi-like chip with programmable neurons: tables and state go to the neuron memory, synapses to their own."""
    stats = NetworkStats({"a": PopulationStats("a", 4000, channel_powers=SQUID_POWERS, receptors=1)}, [])
    cost = neuron_cost(stats.populations["a"], Formats(table_bits=8))
    stats.formats = Formats(table_bits=8)
    memory = cost.table_bytes + 500 * cost.state_bytes
    mapping = map_network(stats, profile_from_dict({"base": "loihi1", "programmable_neurons": True, "neuron_memory_bytes": memory}),
                          real_time=False)
    assert mapping.per_population["a"]["neurons_per_core"] == 500 and mapping.per_population["a"]["binding"] == "neuron_memory"
    with pytest.raises(ModelError, match="neuron_memory_bytes"):
        profile_from_dict({"base": "loihi1", "neuron_memory_bytes": 0})
