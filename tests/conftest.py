"""Fixtures shared by the test modules."""

import pytest


@pytest.fixture
def require_neuron():
    """Skip the requesting test where NEURON (an optional test dependency) is not installed."""
    pytest.importorskip("neuron")
