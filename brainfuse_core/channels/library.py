"""The shipped channel library. Each function returns a fresh, editable Channel.

Sources are named per channel; parameters are those of the cited models, rewritten in the
parametric forms of ``curves.py`` (exp, sigmoid, exp_linear, bell, hill) or, where no form
fits, as whitelisted expressions.
"""

import math

from ..errors import ModelError
from .channel import CalciumPool, Channel, Gate
from .curves import BellTau, Boltzmann, Constant, ExpLinearRate, ExpRate, ExpressionCurve, SigmoidRate


def hh_na(gbar=0.12):
    """Squid-axon sodium current, NEURON's ``hh`` (Hodgkin & Huxley 1952), m³h, Q10 3 at 6.3 °C."""
    return Channel(
        "hh_na",
        [
            Gate("m", 3, alpha=ExpLinearRate(rate=1.0, midpoint=-40.0, scale=10.0), beta=ExpRate(rate=4.0, midpoint=-65.0, scale=-18.0)),
            Gate("h", 1, alpha=ExpRate(rate=0.07, midpoint=-65.0, scale=-20.0), beta=SigmoidRate(rate=1.0, midpoint=-35.0, scale=10.0)),
        ],
        gbar=gbar, ion="na", q10=3.0, temperature=6.3, description="Squid-axon Na (NEURON hh)",
    )


def hh_k(gbar=0.036):
    """Squid-axon delayed-rectifier potassium current, NEURON's ``hh``, n⁴, Q10 3 at 6.3 °C."""
    return Channel(
        "hh_k",
        [Gate("n", 4, alpha=ExpLinearRate(rate=0.1, midpoint=-55.0, scale=10.0), beta=ExpRate(rate=0.125, midpoint=-65.0, scale=-80.0))],
        gbar=gbar, ion="k", q10=3.0, temperature=6.3, description="Squid-axon K (NEURON hh)",
    )


def leak(gbar=0.0003, reversal=-54.3):
    """Passive leak; defaults are NEURON ``hh``'s gl and el (pas: set gbar 1/Rm, reversal e_pas)."""
    return Channel("leak", [], gbar=gbar, reversal=reversal, description="Passive leak")


def traub_na(gbar=0.1, vt=-63.0):
    """Traub & Miles (1991) sodium current as in the COBAHH benchmark (Brette et al. 2007), m³h, VT in mV."""
    return Channel(
        "traub_na",
        [
            Gate("m", 3, alpha=ExpLinearRate(rate=1.28, midpoint=vt + 13.0, scale=4.0), beta=ExpLinearRate(rate=1.4, midpoint=vt + 40.0, scale=-5.0)),
            Gate("h", 1, alpha=ExpRate(rate=0.128, midpoint=vt + 17.0, scale=-18.0), beta=SigmoidRate(rate=4.0, midpoint=vt + 40.0, scale=5.0)),
        ],
        gbar=gbar, ion="na", description="Traub-Miles Na (COBAHH, Brette et al. 2007)",
    )


def traub_kd(gbar=0.03, vt=-63.0):
    """Traub & Miles (1991) delayed-rectifier potassium current as in COBAHH, n⁴."""
    return Channel(
        "traub_kd",
        [Gate("n", 4, alpha=ExpLinearRate(rate=0.16, midpoint=vt + 15.0, scale=5.0), beta=ExpRate(rate=0.5, midpoint=vt + 10.0, scale=-40.0))],
        gbar=gbar, ion="k", description="Traub-Miles Kd (COBAHH, Brette et al. 2007)",
    )


def m_current(gbar=1e-4):
    """Slow non-inactivating K⁺ M-current (Yamada et al. 1989 as in Destexhe's im.mod), Q10 2.3 at 36 °C."""
    return Channel(
        "m_current",
        [Gate("p", 1, inf=Boltzmann(midpoint=-35.0, slope=10.0),
              tau=BellTau(base=0.0, amplitude=1000.0, mid_rise=-35.0 - 20.0 * math.log(3.3), scale_rise=20.0, mid_fall=-35.0, scale_fall=20.0))],
        gbar=gbar, ion="k", q10=2.3, temperature=36.0, description="M-current (Yamada 1989 / Destexhe im.mod)",
    )


def ih(gbar=2e-5, reversal=-45.0):
    """Hyperpolarisation-activated cation current (Kole et al. 2006, as in Hay et al. 2011), m¹."""
    return Channel(
        "ih",
        [Gate("m", 1, alpha=ExpLinearRate(rate=0.076517, midpoint=-154.9, scale=-11.9), beta=ExpRate(rate=0.193, midpoint=0.0, scale=33.1))],
        gbar=gbar, reversal=reversal, description="Ih (Kole 2006 / Hay 2011)",
    )


def ca_hva(gbar=1e-5):
    """High-voltage-activated calcium current (Reuveni et al. 1993, as in Hay et al. 2011), m²h."""
    return Channel(
        "ca_hva",
        [
            Gate("m", 2, alpha=ExpLinearRate(rate=0.209, midpoint=-27.0, scale=3.8), beta=ExpRate(rate=0.94, midpoint=-75.0, scale=-17.0)),
            Gate("h", 1, alpha=ExpRate(rate=0.000457, midpoint=-13.0, scale=-50.0), beta=SigmoidRate(rate=0.0065, midpoint=-15.0, scale=28.0)),
        ],
        gbar=gbar, ion="ca", description="Ca HVA (Reuveni 1993 / Hay 2011)",
    )


def k_ahp(gbar=1e-4):
    """Calcium-activated K⁺ afterhyperpolarisation current (Destexhe & Paré 1999 iahp): α = 48·[Ca]²/ms, β = 0.03/ms, Q10 3 at 22 °C."""
    return Channel(
        "k_ahp",
        [Gate("w", 1, alpha=ExpressionCurve("48 * cai ** 2", variable="cai"), beta=Constant(value=0.03))],
        gbar=gbar, ion="k", q10=3.0, temperature=22.0, description="Ca-activated K AHP (Destexhe & Pare 1999)",
    )


def calcium_pool(depth=0.1, decay=80.0, rest=5e-5):
    """Submembrane calcium pool (Destexhe's cad.mod style): depth µm, decay ms, rest mM."""
    return CalciumPool("ca_pool", depth=depth, decay=decay, rest=rest)


CHANNELS = {f.__name__: f for f in (hh_na, hh_k, leak, traub_na, traub_kd, m_current, ih, ca_hva, k_ahp)}


def channel(name, **overrides):
    """A library channel by name, e.g. ``channel("hh_na", gbar=0.2)``."""
    if name not in CHANNELS:
        raise ModelError(f"unknown channel {name!r}; the library has {', '.join(sorted(CHANNELS))}, or define it in the project")
    return CHANNELS[name](**overrides)
