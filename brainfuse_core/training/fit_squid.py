"""The squid-axon fitting problem: recover gNa, gK, gL and the potassium gate's tabulated n∞ curve
from noisy current-clamp traces (the acceptance case of the fitting work; ``projects/fitting/squid_fit.py``
runs it in full, ``tests/test_fitting.py`` a shorter version).

The model is NEURON's hh in one compartment with its K⁺ gate given as tabulated n∞(V) and τn(V) (PCHIP
through control points); the ground truth is the same model with the library's hh_k curves sampled at
the points, so a perfect fit exists and the fitted n∞ values can be compared point by point.
"""

import torch

from ..cells import Cell
from ..channels import Channel, Gate, channel
from ..channels.curves import Tabulated
from ..recording import Probe
from ..stimuli import IClamp
from .fit_targets import Protocol
from .fitting import Fit

AREA_UM2 = 31416.0
N_POINTS_MV = (-75.0, -65.0, -55.0, -40.0, -10.0, 20.0)
STEPS_UA_PER_CM2 = (-5.0, 2.0, 5.0, 10.0, 20.0)  # current-clamp step amplitudes of the protocols
TRUE_CONDUCTANCES = {"gna": 0.12, "gk": 0.036, "gl": 0.0003}  # S/cm², NEURON's hh


def true_n_inf(points=N_POINTS_MV, celsius=6.3):
    """(n∞, τn ms) of the library's hh_k at ``points`` (mV)."""
    curves = channel("hh_k").curves(torch.tensor(points, dtype=torch.float64), celsius=celsius)["n"]
    return curves["inf"], curves["tau"]


def squid_cell(values, points=N_POINTS_MV, celsius=6.3):
    """hh in one compartment with a tabulated n gate: ``values`` holds gna, gk, gl (S/cm²) and n_inf (one
    per point); τn is the library's, tabulated at the same points."""
    anchor, tau = true_n_inf(points, celsius)
    n_inf = torch.cat([values["n_inf"], anchor[-1:]])
    potassium = Channel("tab_k", [Gate("n", 4, inf=Tabulated(points=list(points), values=n_inf),
                                       tau=Tabulated(points=list(points), values=tau))],
                        gbar=values["gk"], ion="k", q10=3.0, temperature=6.3)
    return Cell.point(area=AREA_UM2, channels=[channel("hh_na", gbar=values["gna"]), potassium,
                                               channel("leak", gbar=values["gl"])])


def squid_problem(steps=STEPS_UA_PER_CM2, duration=50.0, delay=5.0, dt=0.05, noise_mv=0.5, seed=0, points=N_POINTS_MV):
    """(Fit, true values): current-clamp steps (µA/cm², from ``delay`` to the end of ``duration`` ms), the
    targets the true model's voltage plus Gaussian noise of ``noise_mv`` mV (drawn from ``seed``)."""
    n_inf, _ = true_n_inf(points)
    true = dict(TRUE_CONDUCTANCES, n_inf=n_inf[:-1])
    model = squid_cell({k: torch.as_tensor(v, dtype=torch.float64) for k, v in true.items()}, points)
    probe = Probe("cell", "v")
    amplitudes = torch.tensor(steps, dtype=torch.float64)
    # The steps differ only in amplitude, so they run as one batch: one simulation per loss evaluation.
    protocol = Protocol("current steps " + ", ".join(f"{a:g}" for a in steps) + " uA/cm2",
                        [IClamp(amplitudes, delay=delay, dur=duration, density=True)], duration, [probe],
                        traces={probe.name: torch.zeros(1)}, batch=len(steps))
    clean = protocol.simulate(model, dt, 6.3, "backward_euler", torch.float64, 1.0).traces[probe.name]
    generator = torch.Generator().manual_seed(int(seed))
    protocol.traces[probe.name] = clean + noise_mv * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    spec = {
        "gna": (0.08, 0.02, 0.5, "log"),
        "gk": (0.05, 0.005, 0.2, "log"),
        "gl": (0.0005, 3e-5, 3e-3, "log"),
        "n_inf": (torch.linspace(0.15, 0.85, len(points) - 1), 0.005, 0.995),
    }
    return Fit(spec, lambda values: squid_cell(values, points), [protocol], dt=dt), true
