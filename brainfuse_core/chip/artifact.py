"""The deployment artifact: a folder with ``manifest.json`` and one ``.npy`` file per array.

NumPy and json only (the Lava side imports this file as a top-level module under Python 3.10).

The manifest (``ARTIFACT_VERSION``) holds the run (substep dt in ms, substeps per chip step, chip
steps, temperature), the fixed-point ``formats``, and lists of ``populations`` (size, channels with
their quantized G·dt/C and reversal, gates, synaptic receptors, threshold, the names of their
arrays), ``projections`` (pre, post, receptor, mantissa bits, shared exponent, sign mode, the
weight-quantization error) and ``probes``. Every array is named in the manifest by the key of its
``.npy`` file, so a reader needs nothing else.
"""

import json
import os

import numpy as np

ARTIFACT_FORMAT = "brainfuse-chip-deployment"
ARTIFACT_VERSION = 1


class ArtifactError(ValueError):
    """A deployment folder is missing, of another format or version, or incomplete."""


class Artifact:
    """``manifest`` (a JSON-able dict) and ``arrays`` (name → ndarray)."""

    def __init__(self, manifest, arrays):
        self.manifest, self.arrays = manifest, arrays

    def save(self, folder):
        os.makedirs(folder, exist_ok=True)
        for name, array in self.arrays.items():
            np.save(os.path.join(folder, f"{name}.npy"), np.asarray(array), allow_pickle=False)
        manifest = dict(self.manifest, format=ARTIFACT_FORMAT, version=ARTIFACT_VERSION, arrays=sorted(self.arrays))
        with open(os.path.join(folder, "manifest.json"), "w") as handle:
            json.dump(manifest, handle, indent=1)
        return folder

    @classmethod
    def load(cls, folder):
        path = os.path.join(folder, "manifest.json")
        if not os.path.isfile(path):
            raise ArtifactError(f"{folder}: no manifest.json; write a deployment with Artifact.save or quantize(...).save(folder)")
        with open(path) as handle:
            manifest = json.load(handle)
        if manifest.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"{path}: format {manifest.get('format')!r} is not {ARTIFACT_FORMAT!r}")
        if manifest.get("version") != ARTIFACT_VERSION:
            raise ArtifactError(f"{path}: version {manifest.get('version')!r}; this reader understands version {ARTIFACT_VERSION} "
                                "(re-run the quantization to write it again)")
        arrays = {}
        for name in manifest["arrays"]:
            file = os.path.join(folder, f"{name}.npy")
            if not os.path.isfile(file):
                raise ArtifactError(f"{folder}: array {name}.npy named in the manifest is missing")
            arrays[name] = np.load(file, allow_pickle=False)
        return cls(manifest, arrays)

    def population_constants(self, index):
        """The constants ``fixed_point.substep`` needs for population ``index`` (int64 arrays)."""
        pop = self.manifest["populations"][index]
        prefix = pop["key"]
        return {
            "gbar": np.array([c["gbar"] for c in pop["channels"]], dtype=np.int64),
            "e_rev": np.array([c["e_rev"] for c in pop["channels"]], dtype=np.int64),
            "channel_gates": [c["gates"] for c in pop["channels"]],
            "channel_powers": [c["powers"] for c in pop["channels"]],
            "inf": self.arrays[f"{prefix}_inf"].astype(np.int64),
            "decay": self.arrays[f"{prefix}_decay"].astype(np.int64),
            "syn_e": np.array([r["e_rev"] for r in pop["receptors"]], dtype=np.int64),
            "syn_decay": np.array([r["decay"] for r in pop["receptors"]], dtype=np.int64),
            "threshold": np.int64(pop["threshold"]),
        }

    def initial_state(self, index):
        """Fresh int64 state arrays of population ``index``: v (n,), gates (n_gates, n), syn (n_receptors, n)."""
        pop = self.manifest["populations"][index]
        prefix = pop["key"]
        return {
            "v": self.arrays[f"{prefix}_v0"].astype(np.int64).copy(),
            "gates": self.arrays[f"{prefix}_gates0"].astype(np.int64).copy(),
            "syn": self.arrays[f"{prefix}_syn0"].astype(np.int64).copy(),
        }

    def current_schedule(self, index):
        """(starts, values): from global substep ``starts[k]`` on, cell i receives ``values[k, i]`` (raw I·dt/C)."""
        prefix = self.manifest["populations"][index]["key"]
        return self.arrays[f"{prefix}_current_starts"].astype(np.int64), self.arrays[f"{prefix}_current_values"].astype(np.int64)


def current_at(schedule, substep):
    """The injected current (raw) of every cell at global substep ``substep``."""
    starts, values = schedule
    return values[np.searchsorted(starts, substep, side="right") - 1]
