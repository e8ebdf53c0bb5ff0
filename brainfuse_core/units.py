"""Unit conversions between NEURON's density units and the absolute units of the tree solve.

Densities follow NEURON: conductance S/cm², current mA/cm², capacitance µF/cm², area µm².
The tree solve works in absolute units that need no further factors:
conductance µS, current nA, capacitance nF, voltage mV, time ms (nA = µS·mV, nF·mV/ms = nA).
"""

import math

# S/cm² × µm² → µS and mA/cm² × µm² → nA (1 µm² = 1e-8 cm²; S→µS and mA→nA are ×1e6).
DENSITY_TO_ABSOLUTE = 1e-2
# µF/cm² × µm² → nF (1e-8 cm² × 1e3 nF/µF).
CAPACITANCE_TO_NF = 1e-5
# µA/cm² × µm² → nA.
UA_PER_CM2_TO_NA = 1e-5
FARADAY = 96485.309  # C/mol, NEURON's value


def axial_resistance_megaohm(ra_ohm_cm, length_um, diameter_um):
    """Resistance (MΩ) of a cylinder of given length and diameter with axial resistivity Ra (Ω·cm)."""
    return frustum_resistance_megaohm(ra_ohm_cm, length_um, diameter_um, diameter_um)


def frustum_resistance_megaohm(ra_ohm_cm, length_um, diameter0_um, diameter1_um):
    """Resistance (MΩ) of a frustum whose diameter changes linearly from d0 to d1 over its length.

    ∫ 4 Ra / (π d(s)²) ds over a linear d(s) is 4 Ra L / (π d0 d1); 1e-2 turns Ω·cm/µm into MΩ.
    """
    return 1e-2 * ra_ohm_cm * 4.0 * length_um / (math.pi * diameter0_um * diameter1_um)


def frustum_area_um2(length_um, diameter0_um, diameter1_um):
    """Lateral area (µm²) of a frustum of axial length L between diameters d0 and d1: π (r0 + r1) × slant height."""
    r0, r1 = diameter0_um / 2.0, diameter1_um / 2.0
    return math.pi * (r0 + r1) * math.hypot(length_um, r1 - r0)
