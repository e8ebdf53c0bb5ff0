"""Rallpack 2: the passive binary tree against NEURON (same tree, same discretisation) and its equivalent cylinder.

Thresholds are written here, independently of the limits the case reports: RMS and max of the
voltage difference relative to the reference trace's range (max − min over the 250 ms run).
"""

import math

from brainfuse_core import validation

RMS_LIMIT, MAX_LIMIT = 0.0025, 0.005


def test_the_tree_is_the_rallpack_2_specification():
    branches = validation.rallpack2_geometry("specification")
    assert len(branches) == 1023
    assert branches[0][1:] == (None, 32.0, 16.0)
    terminals = branches[511:]
    assert all(math.isclose(length, 4.0) and math.isclose(diameter, 0.25) for _, _, length, diameter in terminals)
    # Rall's 3/2 rule at every branch point, and equal electrotonic length (L / √d) on every level.
    geometry = {name: (length, diameter) for name, _, length, diameter in branches}
    for name, parent, length, diameter in branches[1:]:
        parent_length, parent_diameter = geometry[parent]
        assert math.isclose(parent_diameter ** 1.5, 2 * diameter ** 1.5)
        assert math.isclose(parent_length / math.sqrt(parent_diameter), length / math.sqrt(diameter))
    issue = validation.rallpack2_geometry("issue_ratios")
    assert math.isclose(issue[1][2], 16.0 / 2 ** (2 / 3)) and math.isclose(issue[1][3], 32.0 / 2 ** (1 / 3))


def test_rallpack2_matches_neuron_and_the_equivalent_cylinder(require_neuron):
    records = {record.name: record for record in validation.rallpack2_vs_neuron()}
    for tree in ("specification", "issue_ratios"):
        for where in ("root", "tip"):
            assert records[f"rallpack2/{tree}/neuron/{where}/rms"].value <= RMS_LIMIT
            assert records[f"rallpack2/{tree}/neuron/{where}/max"].value <= MAX_LIMIT
    for simulator in ("brainfuse", "neuron"):
        for where in ("root", "tip"):
            assert records[f"rallpack2/specification/analytic/{simulator}/{where}/rms"].value <= RMS_LIMIT
            assert records[f"rallpack2/specification/analytic/{simulator}/{where}/max"].value <= MAX_LIMIT
    assert all(record.passed for record in records.values())


def test_rallpack2_settles_at_the_equivalent_cylinders_input_resistance():
    # R_in = R∞ coth(L/λ) for the 16 µm × 320 µm sealed cable (λ = 4 mm): 0.1 nA gives ≈ 24.9 mV.
    root, tip = validation._rallpack2_traces("specification")
    lam_cm = math.sqrt(40000.0 * 16e-4 / (4 * 100.0))
    r_inf_megaohm = 100.0 * lam_cm / (math.pi * (16e-4) ** 2 / 4) * 1e-6
    steady = r_inf_megaohm * 0.1 / math.tanh(0.032 / lam_cm)
    # 250 ms is 6.25 membrane time constants: e^-6.25 of the step is still to come.
    assert abs((root[-1] + 65.0) - steady * (1 - math.exp(-6.25))) < 0.002 * steady
    assert root[-1] > tip[-1] > -65.0
