"""Gradients through the simulation (checkpointed autograd, tree-solve adjoint) against central finite differences.

Squid cell and a 50-compartment ``hh`` cable, float64, 20 ms; parameters hh_na, hh_k and leak
gbar and one control point of a tabulated α_n; losses: mean squared voltage and the
interpolated time of the first spike.
"""

import numpy as np
import pytest
import torch

from brainfuse_core import spike_times_from_trace, validation


@pytest.mark.parametrize("model", ["squid", "cable"])
def test_gradients_match_central_finite_differences(model):
    checks = validation.gradient_check(model)
    assert set(checks) == {"mean_square_voltage", "first_spike_time"}
    for loss_name, rows in checks.items():
        assert [row[0] for row in rows] == list(validation.GRADIENT_PARAMETERS)
        for parameter, autograd, finite_difference, error in rows:
            assert finite_difference != 0.0, f"{model} {loss_name}: d/d{parameter} vanishes, so the check is empty"
            assert error <= 1e-5, f"{model} {loss_name} d/d{parameter}: autograd {autograd!r} vs FD {finite_difference!r}"


def test_first_spike_time_agrees_with_trace_spike_times():
    dt = 0.1
    t = torch.arange(0.0, 10.0, dt, dtype=torch.float64)
    trace = -65.0 + 80.0 * torch.exp(-((t - 4.0) ** 2))
    expected = spike_times_from_trace(trace, dt, validation.THRESHOLD_MV)[0]
    assert float(validation.first_spike_time(trace, dt)) == pytest.approx(expected, abs=1e-12)
    assert np.isfinite(expected)
