"""Acceptance criteria of the reference cases in ``brainfuse_core.validation``.

CI runs the quick variants where the full case is slow (``brainfuse validate`` runs the full
ones). The thresholds are written here, independently of the limits the cases report, so a
case that loosened its own limit would still fail.
"""

import math

import numpy as np
from scipy.special import erf

from brainfuse_core import validation


def by_name(records):
    """Records keyed by name, after checking each verdict agrees with its own value and limit."""
    for record in records:
        if isinstance(record.limit, tuple):
            assert record.passed == (record.limit[0] <= record.value <= record.limit[1]), record
        elif record.limit is not None:
            assert record.passed == (record.value <= record.limit), record
    return {record.name: record for record in records}


def test_squid_spike_times_match_neuron(require_neuron):
    records = by_name(validation.squid_vs_neuron())
    assert records["squid_vs_neuron/spike_count"].value == 0
    assert records["squid_vs_neuron/spike_times"].value <= 0.01


def test_crank_nicolson_converges_at_second_order():
    records = by_name(validation.convergence_to_exact(quick=True))
    assert records["convergence_to_exact/crank_nicolson/dt=0.025"].value <= 0.05
    assert records["convergence_to_exact/crank_nicolson/order_0.05_to_0.025"].value >= 1.8
    assert records["convergence_to_exact/crank_nicolson/order_0.025_to_0.0125"].value >= 1.8
    # Backward Euler is first order: halving dt about halves its error.
    assert 0.8 <= records["convergence_to_exact/backward_euler/order_0.025_to_0.0125"].value <= 1.2


def test_float32_matches_float64():
    records = by_name(validation.float32_vs_float64())
    assert records["float32_vs_float64/spike_count"].value == 0
    assert records["float32_vs_float64/spike_times"].value <= 0.2
    assert records["float32_vs_float64/rest"].value <= 0.01


def test_rallpack1_matches_the_analytic_cable():
    records = by_name(validation.rallpack1_vs_analytic())
    for end in ("x=0", "x=1"):
        assert records[f"rallpack1_vs_analytic/backward_euler/{end}/rms"].value < 0.001
        assert records[f"rallpack1_vs_analytic/backward_euler/{end}/max"].value < 0.005


def test_rallpack3_matches_neuron(require_neuron):
    records = by_name(validation.rallpack3_vs_neuron())
    for end in ("x=0", "x=1"):
        assert records[f"rallpack3_vs_neuron/{end}/rms"].value < 0.001
        assert records[f"rallpack3_vs_neuron/{end}/max"].value < 0.005
        assert records[f"rallpack3_vs_neuron/{end}/spike_count"].value == 0
        assert records[f"rallpack3_vs_neuron/{end}/spike_times"].value <= 0.01


def test_fi_curve_matches_neuron_and_onset_is_in_range(require_neuron):
    records = by_name(validation.fi_curve_vs_neuron(quick=True))
    assert records["fi_curve_vs_neuron/rates"].value <= 0.01
    assert 6.1 <= records["fi_curve_vs_neuron/onset"].value <= 6.3


def test_sealed_cable_solution_has_the_known_limits():
    """Early on the sealed cable behaves as a semi-infinite one, V(0, t) = R∞ I erf(√(t/τ)); late it reaches R∞ I coth L."""
    geometry = dict(length_um=1000.0, diameter_um=1.0, ra_ohm_cm=100.0, rm_ohm_cm2=40000.0, cm_uf_per_cm2=1.0, current_na=0.1)
    r_inf_megaohm = 100.0 * 0.1 / (math.pi * 0.5e-4 ** 2) * 1e-6  # λ = 1 mm = 0.1 cm, so L = 1
    t = np.array([0.0, 0.01, 0.04, 2000.0])
    deflection = validation.sealed_cable_step_response(t, 0.0, **geometry)
    assert deflection[0] == 0.0
    np.testing.assert_allclose(deflection[1:3], r_inf_megaohm * 0.1 * erf(np.sqrt(t[1:3] / 40.0)), rtol=1e-9)
    np.testing.assert_allclose(deflection[3], r_inf_megaohm * 0.1 / math.tanh(1.0), rtol=1e-12)


def test_onset_bisection_finds_a_known_threshold():
    threshold = 6.23456

    def fake_fi(currents):
        return [(50.0, True) if current >= threshold else (0.0, False) for current in currents]

    currents = np.arange(0.0, 20.01, 0.5)
    for probes in (1, 15):
        onset = validation.onset_by_bisection(fake_fi, currents, fake_fi(currents), 1e-4, probes)
        assert abs(onset - threshold) <= 1e-4
