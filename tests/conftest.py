"""Fixtures shared by the test modules."""

import contextlib
import os

import pytest

import brainfuse_core as bf
from brainfuse_core.channels import Channel, Gate
from brainfuse_core.channels.curves import ExpressionCurve, Tabulated

def traub_cell():
    """COBAHH's Traub–Miles point cell (20,000 µm², V_T −63 mV)."""
    return bf.Cell.point(diameter=79.79, channels=[bf.channel("leak", gbar=5e-5, reversal=-60.0),
                                                   bf.channel("traub_na", gbar=0.1, vt=-63.0),
                                                   bf.channel("traub_kd", gbar=0.03, vt=-63.0)],
                         reversals={"na": 50.0, "k": -90.0})


N_INF_POINTS = [-100.0, -70.0, -50.0, -30.0, 0.0, 40.0]  # mV


def ball_and_two_dendrites(gna=0.12, gk=0.036, gl=3e-4, a=0.07, n_inf=(0.0, 0.25, 0.45, 0.75, 0.95, 1.0)):
    """Soma and two dendrites of 7 segments; a sodium current of expressions (``a`` the h gate's rate,
    1/ms) and a potassium current of tabulated curves (``n_inf`` at N_INF_POINTS) in the soma, leak
    everywhere. Numbers may be tensors (learnable)."""
    soma = bf.Section("soma", 20.0, 20.0)
    dend = [bf.Section(f"dend{k}", 200.0, 1.0 + k, nseg=7, parent="soma", parent_x=0.5 * k + 0.5, region="basal")
            for k in range(2)]
    cell = bf.Cell(bf.Morphology([soma, *dend]), name="custom")
    na = Channel("expr_na", [
        Gate("m", 3, alpha=ExpressionCurve("explinear((v + 40) / 10)"), beta=ExpressionCurve("4 * exp(-(v + 65) / 18)")),
        Gate("h", 1, alpha=ExpressionCurve("a * exp(-(v + 65) / 20)", {"a": a}),
             beta=ExpressionCurve("1 / (1 + exp(-(v + 35) / 10))")),
    ], gbar=gna, ion="na", q10=3.0, temperature=6.3)
    k = Channel("table_k", [Gate("n", 4, inf=Tabulated(points=N_INF_POINTS, values=n_inf),
                                 tau=Tabulated(points=N_INF_POINTS, values=[2.0, 5.0, 5.5, 3.0, 1.5, 1.0]))],
                gbar=gk, ion="k")
    return cell.insert(na, "soma").insert(k, "soma").insert(bf.channel("leak", gbar=gl), "all")


@contextlib.contextmanager
def triton_interpreter(on):
    """TRITON_INTERPRET=1 (``on``: kernels built inside run on the CPU) or unset (they lower for a GPU),
    restored afterwards."""
    saved = os.environ.pop("TRITON_INTERPRET", None)
    if on:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        os.environ.pop("TRITON_INTERPRET", None)
        if saved is not None:
            os.environ["TRITON_INTERPRET"] = saved


@pytest.fixture
def require_neuron():
    """Skip the requesting test where NEURON (an optional test dependency) is not installed."""
    pytest.importorskip("neuron")
