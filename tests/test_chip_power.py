"""Power estimate (brainfuse_core/chip/power.py): a hand calculation on round constants, the mesh-hop mean
against all pairs, the range's order, units, and the paper-sized column next to the paper's 1.98 W."""

import itertools

import numpy as np
import pytest

from brainfuse_core.chip.deploy import column_estimate
from brainfuse_core.chip.mapping import NetworkStats, PopulationStats, ProjectionStats, map_network
from brainfuse_core.chip.power import PARTS, activity_from_rates, estimate_power, mean_mesh_hops
from brainfuse_core.chip.profiles import profile_from_dict

SQUID_POWERS = ((3, 1), (4,), ())


def round_profile(**overrides):
    return profile_from_dict({"base": "loihi2", "synaptic_op_pj": [5, 10, 20], "neuron_update_pj": [50, 100, 200],
                              "spike_pj": [1, 2, 4], "hop_pj": [1, 3, 9], "chip_crossing_pj": [0, 0, 0],
                              "static_core_w": [1e-3, 2e-3, 4e-3], **overrides})


def test_power_by_hand():
    """Two populations of 100 cells, a → b all to all; a fires 2,000 spikes in 0.5 s."""
    stats = NetworkStats({"a": PopulationStats("a", 100, channel_powers=SQUID_POWERS),
                          "b": PopulationStats("b", 100, channel_powers=SQUID_POWERS, receptors=1)},
                         [ProjectionStats("a", "b", 100 * 100)], dt_ms=0.025, substeps=4)
    profile = round_profile(neurons_per_core=50)
    mapping = map_network(stats, profile)
    assert mapping.cores == 4 and mapping.chips == 1
    assert mapping.destination_cores("a") == pytest.approx(2.0)  # all to all: both b cores
    spikes, seconds = 2000, 0.5
    estimate = estimate_power(mapping, {"spikes_per_population": {"a": spikes, "b": 0}, "synaptic_ops": spikes * 100}, 500.0)
    factor_a = (33 + 9 + 9 + 5 + 11) / 7   # no receptor
    factor_b = (33 + 9 + 9 + 5 + 5 + 11) / 7
    substeps_per_s = 4 / 0.1e-3
    hops = mean_mesh_hops(4, (8, 16))
    assert hops == pytest.approx(np.mean([abs(i - j) for i, j in itertools.product(range(4), repeat=2)]))
    for i, case in enumerate(("low", "typical", "high")):
        neurons = 100 * substeps_per_s * (factor_a + factor_b) * [50, 100, 200][i] * 1e-12
        synaptic = spikes * 100 / seconds * [5, 10, 20][i] * 1e-12
        messages = spikes * 2 / seconds
        expected = {"static": 4 * [1e-3, 2e-3, 4e-3][i], "neuron_updates": neurons, "synaptic_ops": synaptic,
                    "spike_messages": messages * [1, 2, 4][i] * 1e-12, "mesh_hops": messages * hops * [1, 3, 9][i] * 1e-12,
                    "chip_crossings": 0.0}
        for part in PARTS:
            assert estimate.breakdown[case][part] == pytest.approx(expected[part], rel=1e-12), (case, part)
        assert estimate.watts[case] == pytest.approx(sum(expected.values()))
        assert estimate.joules_per_inference[case] == pytest.approx(estimate.watts[case] * seconds)
    assert estimate.low < estimate.typical < estimate.high
    # Units: 200 HH cells × 40,000 substeps/s × ~10 LIF updates × 100 pJ is ~8 mW.
    assert 5e-3 < estimate.breakdown["typical"]["neuron_updates"] < 1e-2


def test_mean_mesh_hops_against_all_pairs():
    for cores in (1, 5, 16, 40, 128):
        cells = [divmod(k, 16) for k in range(cores)]
        brute = np.mean([abs(a[0] - b[0]) + abs(a[1] - b[1]) for a in cells for b in cells])
        if cores % 16 == 0 or cores < 16:
            assert mean_mesh_hops(cores, (8, 16)) == pytest.approx(brute)
        else:
            assert mean_mesh_hops(cores, (8, 16)) == pytest.approx(brute, rel=0.15)  # a partly filled last row


def test_activity_from_rates():
    stats = NetworkStats({"a": PopulationStats("a", 10), "b": PopulationStats("b", 20)},
                         [ProjectionStats("a", "b", 60), ProjectionStats("b", "a", 40)])
    activity = activity_from_rates(stats, {"a": 5.0, "b": 2.0}, 2000.0)
    assert activity["spikes_per_population"] == {"a": 100.0, "b": 80.0}
    assert activity["synaptic_ops"] == pytest.approx(100 * 6 + 80 * 2)  # spikes × mean out-degree


def test_chip_crossings_grow_with_chips():
    stats = NetworkStats({"a": PopulationStats("a", 1000, channel_powers=SQUID_POWERS, receptors=1)},
                         [ProjectionStats("a", "a", 1000 * 100)])
    profile = round_profile(chip_crossing_pj=[10, 10, 10], neurons_per_core=10, cores_per_chip=20, mesh=[4, 5])
    mapping = map_network(stats, profile)
    assert mapping.cores == 100 and mapping.chips == 5
    estimate = estimate_power(mapping, activity_from_rates(stats, {"a": 10.0}, 1000.0), 1000.0)
    messages = estimate.events["spike_messages"]
    assert estimate.breakdown["typical"]["chip_crossings"] == pytest.approx(messages * (1 - 1 / 5) * 10e-12)


def test_column_power_next_to_the_paper():
    mapping, power, comparison = column_estimate("loihi2")
    assert comparison["paper_watts"] == 1.98
    assert power.low < power.typical < power.high
    assert comparison["estimate_watts"]["typical"] == power.typical
    for case in ("low", "typical", "high"):
        assert sum(power.breakdown[case].values()) == pytest.approx(power.watts[case])
    # Measured: 17.8 W typical (3.7-54 W), 96 % of it static power of 34,194 active cores; the dynamic part,
    # mostly the HH updates of 38,000 cells × 40,000 substeps/s × 11 LIF updates × 40 pJ, is ~0.7 W.
    dynamic = power.typical - power.breakdown["typical"]["static"]
    assert power.breakdown["typical"]["static"] == pytest.approx(mapping.cores * 0.5e-3)
    # Traub m³h, n⁴, leak and two receptors: 77 operations per substep, 11 LIF updates; Loihi 2's 81 pJ × 0.5.
    assert power.breakdown["typical"]["neuron_updates"] == pytest.approx(mapping.stats.neurons * 4e4 * 77 / 7 * 40.5e-12)
    assert 0.3 < dynamic < 2.0
    assert all(entry["source"] for entry in power.sources.values())
