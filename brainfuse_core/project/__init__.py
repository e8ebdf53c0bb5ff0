"""Project files: one versioned JSON document holding a whole model and how to run it.

``load_project(path)`` reads and checks a file, ``Project.save(path)`` writes one atomically,
``Project.simulation()`` builds a ready Simulation and ``Project.run()`` runs it. Every problem
in a file is a one-line ``ProjectError`` that starts with the path of the field at fault, e.g.
``cells.soma.morphology.soma.diameter: must be a positive number of µm, got -2``.

The document (units as in NEURON: mV, ms, µm, µF/cm², S/cm², nA, µS, Ω·cm)::

    "format": "brainfuse-project", "version": 1, "description": optional text
    "channels"    name → {"library": "hh_na", overrides such as "gbar": 0.2}
                         or a full definition in Channel.to_dict() form (gates with curves).
                         Library channels may also be inserted by name without being listed.
    "cells"       name → Cell.to_dict() form: "morphology" (section name → length, diameter,
                         or points [[x, y, z, diam], ...] µm as NEURON's pt3d; nseg, parent,
                         parent_x, region, ra, cm), "cm", "ra", "v_init",
                         "reversals", "insert" [{"channel", "where", "gbar"}], "pools".
    "circuit"     "populations": name → {"cell", "n", "threshold", "v_init"}
                                 or {"poisson": {"n", "rate_hz", "seed", "start", "stop"}}
                                 or {"spike_times": [[ms, ...], ...]};
                  "projections": [Projection.to_dict() form: "pre", "post", "synapse",
                                 "connect", "weight", "seed", "delay", "target",
                                 "initial_conductance"]; "target" is {"section", "x"}
                                 (one point) or {"region"} (synapses spread over a
                                 region's or section's segments by membrane area).
                  v_init and initial_conductance are a number or
                  {"normal": {"mean", "std"}, "seed"}: one draw per cell (conductances ≥ 0).
    "stimuli"     [{"type": "iclamp" | "pulse_train" | "noisy" | "waveform" | "vclamp",
                    "population", plus the fields of that stimulus class}]
    "recordings"  [{"population", "variable", "cells", "section", "x", "every", "name"}]
    "run"         {"duration", "dt", "celsius", "method", "dtype", "batch"}

Nothing is filled in on load, so a file saved once is saved again byte for byte.
"""

from .build import Build, RunSettings
from .project import Project, load_project
from .schema import FORMAT, VERSION

__all__ = ["FORMAT", "VERSION", "Build", "Project", "RunSettings", "load_project"]
