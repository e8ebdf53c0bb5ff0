"""The Potjans–Diesmann cortical microcircuit with Hodgkin–Huxley point neurons, as a project document.

Source of the model's numbers: T. C. Potjans and M. Diesmann (2014), "The cell-type specific cortical
microcircuit: relating structure and activity in a full-scale spiking network model", Cereb. Cortex
24:785–806 (their parameter tables), as tabulated in NEST's PyNEST microcircuit example
(pynest/examples/Potjans_2014/network_params.py), which also lists the full-scale rates used below.

What is kept from the model: the 8 populations and their full-scale sizes, the 8×8 connection
probabilities turned into in-degrees with the model's own formula, the external in-degrees K_ext at
8 Hz each, the mean delays (1.5 ms excitatory, 0.75 ms inhibitory), the 0.5 ms synaptic time
constant, relative inhibition g = 4 and the doubled L4e → L2/3e weight. What differs: the leaky
integrate-and-fire neurons become single-compartment Traub–Miles HH cells (projects/cobahh.json's
channels) with the LIF's capacitance (250 pF) and leak (τ_m = 10 ms, −65 mV) and a rheobase near the LIF's;
current synapses become conductance-based exponential synapses whose charge per spike equals the
model's PSC charge at a reference potential (``V_REF``); weights and delays are fixed per projection
(the model draws them from normal distributions with 10 % and 50 % relative spread). Optionally
(``cell="ball_and_stick"``) every cell gets a thin passive basal dendrite on which all excitatory
synapses, local and external, are spread; inhibition stays on the soma.

External drive: each population has a Poisson source of one train per cell at K_ext × 8 Hz, connected
one to one — the sum of K_ext independent 8 Hz trains is one Poisson train at the summed rate.

Scaling (after S. J. van Albada, M. Helias and M. Diesmann 2015, "Scalability of asymmetric networks
of excitatory and inhibitory neurons by heterogeneous in-degrees", PLoS Comput Biol 11:e1004490):
a scale s multiplies every population size and every local in-degree by s (so connection
probabilities stay those of the model), multiplies local weights by 1/√s so that the synaptic input's
variance is unchanged, and replaces the mean input thereby lost, (1 − √s) of the full-scale mean
synaptic current, by a DC current per population (an iclamp stimulus): the mean synaptic current at
``V_REF_MV`` for the full-scale rates ``FULL_SCALE_RATES_HZ``, van Albada et al.'s DC compensation (a
tonic conductance would carry the same mean but add a shunt the full network only has on average).
At s = 1 the network is the full model without DC; the external drive is never scaled.

Tuning (V_T, V_REF) was done on short runs at 1–5 % scale against ``FULL_SCALE_RATES_HZ``;
benchmarks/potjans_diesmann.py measures the result at 10 % next to Brian2 on the same network.
"""

import math

import numpy as np

from ..errors import ModelError

POPULATIONS = ("L23e", "L23i", "L4e", "L4i", "L5e", "L5i", "L6e", "L6i")
LAYERS = ("L23", "L4", "L5", "L6")
FULL_SIZES = (20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948)

# Connection probabilities, [post][pre] in the order of POPULATIONS (Potjans & Diesmann 2014).
CONNECTION_PROBABILITY = (
    (0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0),
    (0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0),
    (0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0),
    (0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0),
    (0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0),
    (0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0),
    (0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252),
    (0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443),
)
EXTERNAL_IN_DEGREES = (1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100)
BACKGROUND_RATE_HZ = 8.0

# Mean rates of the full-scale model (Hz), NEST's microcircuit example ("full_mean_rates"), which
# reproduce Potjans & Diesmann 2014, Fig. 6: the reference for the rates of this HH version and the
# rates the DC compensation of scaled networks assumes.
FULL_SCALE_RATES_HZ = (0.971, 2.868, 4.746, 5.396, 8.142, 9.078, 0.991, 7.523)

PSP_MV = 0.15          # mean excitatory PSP of the LIF model (mV)
RELATIVE_INHIBITION = 4.0
L4E_TO_L23E_FACTOR = 2.0
DELAY_EXCITATORY_MS, DELAY_INHIBITORY_MS = 1.5, 0.75
TAU_SYN_MS = 0.5
C_M_PF, TAU_M_MS, E_L_MV = 250.0, 10.0, -65.0

# The HH cell: one cylinder of 25,000 µm² (250 pF at 1 µF/cm²) with the LIF's leak and COBAHH's Traub–Miles
# Na/Kd. Their offset V_T is raised from COBAHH's −63 mV (which fires at 0.1 nA and drove every population
# to 10–40 Hz) to −56 mV: a rheobase of 0.25–0.28 nA, near the LIF's g_L·(V_th − E_L) = 0.375 nA.
SOMA_AREA_UM2 = C_M_PF * 100.0            # pF / (1 µF/cm²) in µm²
LEAK_S_PER_CM2 = 1.0 / TAU_M_MS * 1e-3    # g = C/τ: (1 µF/cm²)/(10 ms) = 1e-4 S/cm²
TRAUB_NA_S_PER_CM2, TRAUB_KD_S_PER_CM2, TRAUB_VT_MV = 0.1, 0.03, -56.0
E_EXC_MV, E_INH_MV = 0.0, -80.0
# The membrane potential at which a conductance synapse carries the LIF's PSC charge: near the mean
# subthreshold potential of the active network.
V_REF_MV = -60.0
V_INIT_MEAN_MV, V_INIT_STD_MV = -65.0, 5.0
SPIKE_THRESHOLD_MV = -20.0
CELL_NAMES = {"point": "hh_point", "ball_and_stick": "hh_ball_and_stick"}
CELL = CELL_NAMES["point"]
# The optional dendrite: passive, 7.5 % of the soma's membrane and short against its length constant
# (≈ 1.2 mm), so the cell stays close to the point neuron. Thinner ones (200 × 2 µm, 150 × 4 µm) lost so
# much excitatory drive (the dendrite depolarises under its synapses) that most populations fell silent
# at 2 % scale; with this one rates are still about half the point neuron's (measured, not retuned).
DENDRITE = {"length": 100.0, "diameter": 6.0, "nseg": 2}
DENDRITE_RA = 100.0  # Ω·cm

MIN_SCALE, MAX_SCALE = 0.01, 1.0
LAYOUT_X = {"e_bg": 0.0, "e": 2.5, "i": 5.0, "i_bg": 7.5}
LAYOUT_Y = {"L23": 8.0, "L4": 6.0, "L5": 4.0, "L6": 2.0}


def is_excitatory(population):
    return population.endswith("e")


def full_in_degrees():
    """(8, 8) full-scale in-degrees [post][pre]: the model's synapse count per post cell for its connection
    probabilities, K = ln(1 − C) / ln(1 − 1/(N_pre·N_post)) / N_post (random pairs drawn with repetition)."""
    c = np.asarray(CONNECTION_PROBABILITY)
    n = np.asarray(FULL_SIZES, dtype=float)
    pairs = n[:, None] * n[None, :]
    return np.log1p(-c) / np.log1p(-1.0 / pairs) / n[:, None]


def scaled_sizes(scale):
    return tuple(max(1, round(n * scale)) for n in FULL_SIZES)


def scaled_in_degrees(scale):
    """(8, 8) integer in-degrees [post][pre] at ``scale``: the full ones times ``scale``, rounded."""
    return np.rint(full_in_degrees() * scale).astype(int)


def psc_amplitude_pa():
    """The LIF model's PSC amplitude (pA) for a PSP peak of ``PSP_MV`` with τ_m, τ_syn and C_m as above
    (peak of the membrane response to an exponential current)."""
    t_peak = TAU_SYN_MS * TAU_M_MS / (TAU_M_MS - TAU_SYN_MS) * math.log(TAU_M_MS / TAU_SYN_MS)
    unit_psp = TAU_SYN_MS * TAU_M_MS / (C_M_PF * (TAU_M_MS - TAU_SYN_MS)) * (
        math.exp(-t_peak / TAU_M_MS) - math.exp(-t_peak / TAU_SYN_MS))  # mV per pA
    return PSP_MV / unit_psp


def full_weights_us():
    """(8, 8) full-scale synaptic weights [post][pre] (µS): the conductance whose current at ``V_REF_MV``
    equals the LIF's PSC amplitude, g = 4 times larger for inhibition, doubled for L4e → L2/3e."""
    j_pa = psc_amplitude_pa()
    w_exc = j_pa / (E_EXC_MV - V_REF_MV) * 1e-3
    w_inh = RELATIVE_INHIBITION * j_pa / (V_REF_MV - E_INH_MV) * 1e-3
    weights = np.array([[w_exc if is_excitatory(pre) else w_inh for pre in POPULATIONS] for _ in POPULATIONS])
    weights[POPULATIONS.index("L23e"), POPULATIONS.index("L4e")] *= L4E_TO_L23E_FACTOR
    return weights


def external_weight_us():
    return full_weights_us()[0, 0]


def compensation_currents_na(scale):
    """(8,) DC current (nA) per population standing in for the mean synaptic current the scaled network lacks:
    −(1 − √s) · Σ_pre K · w · ν_full · τ_syn · (V_REF − E_syn)."""
    conductance = full_in_degrees() * full_weights_us() * np.asarray(FULL_SCALE_RATES_HZ)[None, :] * 1e-3 * TAU_SYN_MS
    reversal = np.array([E_EXC_MV if is_excitatory(pre) else E_INH_MV for pre in POPULATIONS])
    return -(1.0 - math.sqrt(scale)) * (conductance * (V_REF_MV - reversal)[None, :]).sum(1)


def project(scale=0.05, duration=1000.0, dt=0.1, dtype="float32", seed=0, cell="point"):
    """A project document of the microcircuit at ``scale`` (0.01–1) for ``duration`` ms at ``dt`` ms.
    ``seed`` shifts every random seed (initial voltages, connectivity, Poisson drive) together. ``cell``:
    "point" (the HH point neuron) or "ball_and_stick" (the same soma with a passive basal dendrite that
    receives all excitatory synapses, spread over its segments; inhibition stays on the soma)."""
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ModelError(f"Potjans–Diesmann scale must lie in [{MIN_SCALE}, {MAX_SCALE}] (1 % to 100 %), got {scale!r}")
    if cell not in CELL_NAMES:
        raise ModelError(f"Potjans–Diesmann cell must be one of {', '.join(CELL_NAMES)}, got {cell!r}")
    sizes = scaled_sizes(scale)
    in_degrees = scaled_in_degrees(scale)
    weights = full_weights_us() / math.sqrt(scale)
    compensation = compensation_currents_na(scale)

    channels = {
        "leak": {"library": "leak", "gbar": LEAK_S_PER_CM2, "reversal": E_L_MV},
        "traub_na": {"library": "traub_na", "gbar": TRAUB_NA_S_PER_CM2, "vt": TRAUB_VT_MV},
        "traub_kd": {"library": "traub_kd", "gbar": TRAUB_KD_S_PER_CM2, "vt": TRAUB_VT_MV},
    }
    side = math.sqrt(SOMA_AREA_UM2 / math.pi)  # a cylinder with L = diam has area π·L²
    morphology = {"soma": {"length": side, "diameter": side, "nseg": 1}}
    insert = [{"channel": "leak"}, {"channel": "traub_na", "where": "soma"}, {"channel": "traub_kd", "where": "soma"}]
    excitatory_target = None
    if cell == "ball_and_stick":
        morphology["dend"] = {**DENDRITE, "parent": "soma", "region": "basal"}
        excitatory_target = {"region": "basal"}
    cells = {CELL_NAMES[cell]: {"morphology": morphology, "cm": 1.0, "ra": DENDRITE_RA, "v_init": E_L_MV,
                    "reversals": {"na": 50.0, "k": -90.0}, "insert": insert}}
    populations, projections = {}, []
    for k, name in enumerate(POPULATIONS):
        populations[name] = {"cell": CELL_NAMES[cell], "n": sizes[k], "threshold": SPIKE_THRESHOLD_MV,
                             "v_init": {"normal": {"mean": V_INIT_MEAN_MV, "std": V_INIT_STD_MV}, "seed": seed + 1 + k}}
    for k, name in enumerate(POPULATIONS):
        populations[f"{name}_bg"] = {"poisson": {"n": sizes[k], "rate_hz": EXTERNAL_IN_DEGREES[k] * BACKGROUND_RATE_HZ,
                                                 "seed": seed + 101 + k}}
    for post_k, post in enumerate(POPULATIONS):
        for pre_k, pre in enumerate(POPULATIONS):
            k_in = int(in_degrees[post_k, pre_k])
            if k_in == 0:
                continue
            excitatory = is_excitatory(pre)
            projections.append(_targeted({
                "pre": pre, "post": post,
                "synapse": {"kind": "exp", "tau": TAU_SYN_MS, "e_rev": E_EXC_MV if excitatory else E_INH_MV},
                "connect": {"rule": "fixed_indegree", "k": k_in, "allow_self": False},
                "weight": _round(weights[post_k, pre_k]),
                "delay": DELAY_EXCITATORY_MS if excitatory else DELAY_INHIBITORY_MS,
                "seed": seed + 1000 + 8 * post_k + pre_k,
            }, excitatory_target if excitatory else None))
    for k, name in enumerate(POPULATIONS):
        projections.append(_targeted({
            "pre": f"{name}_bg", "post": name, "synapse": {"kind": "exp", "tau": TAU_SYN_MS, "e_rev": E_EXC_MV},
            "connect": {"rule": "one_to_one"},
            "weight": _round(external_weight_us()), "delay": dt,
        }, excitatory_target))
    percent = f"{scale * 100:g}"
    neurons = "HH point neurons" if cell == "point" else "ball-and-stick HH neurons (excitation on a passive dendrite)"
    options = "" if cell == "point" else f" --cell {cell}"
    return {
        "format": "brainfuse-project",
        "version": 1,
        "description": (
            f"Potjans-Diesmann cortical microcircuit (Cereb. Cortex 24:785, 2014) at {percent} % scale "
            f"({sum(sizes)} {neurons} in 8 populations, L2/3-L6 e/i), with Traub-Miles cells, conductance "
            "synapses, Poisson background at K_ext x 8 Hz per cell, and van Albada et al. (2015) scaling "
            "(in-degrees x s, weights / sqrt(s), lost mean input as DC). Generated by "
            f"brainfuse_core.networks.potjans_diesmann.project(scale={scale:g}); regenerate with "
            f"python -m brainfuse_core.networks.potjans_diesmann {scale:g} PATH{options}."),
        "channels": channels,
        "cells": cells,
        "circuit": {"populations": populations, "projections": projections},
        "stimuli": [{"type": "iclamp", "population": name, "amp": _round(compensation[k]), "name": f"{name}_dc"}
                    for k, name in enumerate(POPULATIONS) if scale < MAX_SCALE],
        "recordings": [{"population": name, "variable": "v", "cells": [0]} for name in POPULATIONS],
        "run": {"duration": duration, "dt": dt, "celsius": 36.0, "method": "backward_euler", "dtype": dtype, "batch": 1},
        "layout": {"populations": layout()},
    }


def _targeted(projection, target):
    return projection if target is None else {**projection, "target": target}


def layout():
    """Canvas positions: one row per layer, top to bottom L2/3 → L6; excitatory and inhibitory populations in
    the middle, each with its background source on its outer side."""
    positions = {}
    for layer in LAYERS:
        for kind in ("e", "i", "e_bg", "i_bg"):
            positions[f"{layer}{kind}"] = [LAYOUT_X[kind], LAYOUT_Y[layer]]
    return positions


def _round(value):
    """Six significant digits keep the file readable; far below the model's own precision."""
    return float(f"{value:.6g}")


def main(argv=None):
    """``python -m brainfuse_core.networks.potjans_diesmann SCALE PATH``: write the project at SCALE (0.01–1) to PATH."""
    import argparse

    from ..project import Project

    parser = argparse.ArgumentParser(description="Write the Potjans-Diesmann microcircuit as a BrainFuse project file")
    parser.add_argument("scale", type=float, help="fraction of the full model's neurons and in-degrees, 0.01 to 1")
    parser.add_argument("path", help="the project file to write")
    parser.add_argument("--duration", type=float, default=1000.0, help="run length (ms)")
    parser.add_argument("--cell", choices=list(CELL_NAMES), default="point", help="the neuron model of every population")
    args = parser.parse_args(argv)
    Project(project(args.scale, duration=args.duration, cell=args.cell)).save(args.path)


if __name__ == "__main__":
    main()
